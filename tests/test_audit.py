"""Audit: one record per decision, RFC 8417 shape, a hash chain, no raw arguments, sinks never decide."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from pathlib import Path

import pytest

import intentguard as ig
from intentguard.audit import DECISION_EVENT, GENESIS, AuditRecord, args_digest
from intentguard.testing import FrozenClock, capture_decisions, sequential_ids

from .conftest import REFUND_PARAMS

SECRET = "sk-live-51HxyzSECRET"


def test_one_record_per_decision_in_order(guard: ig.Guard, session: ig.Session) -> None:
    """Every check, allowed or not, yields exactly one record, in order, with the decision's reasons."""
    with capture_decisions(guard) as captured:
        session.check(ig.ToolCall("lookup_order", {"order_id": "A123"}, "c1"))
        session.check(ig.ToolCall("wire_money", {}, "c2"))
    records = captured.records
    assert [r.decision.tool for r in records] == ["lookup_order", "wire_money"]
    assert captured.effects == ["ALLOW", "DENY"]
    assert [r.decision.seq for r in records] == [0, 1]
    assert records[1].decision.reasons[0].code == "TOOL_NOT_IN_INTENT"


def test_record_carries_identity_and_rfc8417_claims(guard: ig.Guard, session: ig.Session, clock: FrozenClock) -> None:
    """A record names the task (txn), tenant (aud), human (sub), actor chain and root authorization."""
    with capture_decisions(guard) as captured:
        session.check(ig.ToolCall("lookup_order", {"order_id": "A123"}, "c1"))
    record = captured.records[0]
    assert (record.txn, record.aud, record.sub, record.iss) == (session.id, "acme", "u-7", "intentguard")
    assert record.toe == clock()
    event = record.events[DECISION_EVENT]
    assert event.actors == ["u-7", "support-bot"]
    assert event.root_auth == "login-42"
    assert (event.intent, event.intent_version, event.call_id) == ("refund_request", "1.0", "c1")
    assert event.args_sha256 == args_digest({"order_id": "A123"})


def test_records_form_a_hash_chain(guard: ig.Guard, session: ig.Session) -> None:
    """Each record's prev is the SHA-256 of the previous record's JSON line; the first links to GENESIS."""
    with capture_decisions(guard) as captured:
        for index in range(4):
            session.check(ig.ToolCall("search_kb", {"query": f"q{index}"}))
    records = captured.records
    assert records[0].prev == GENESIS
    for before, after in itertools.pairwise(records):
        assert after.prev == hashlib.sha256(before.to_json().encode()).hexdigest() == before.digest()


def test_raw_argument_values_never_reach_the_record(guard: ig.Guard, session: ig.Session, tmp_path: Path) -> None:
    """Argument values appear in the trail only as a hash, allowed or denied."""
    path = tmp_path / "audit.jsonl"
    sink = ig.JsonlSink(path)
    guard.audit.add_sink(sink)
    session.check(ig.ToolCall("search_kb", {"query": SECRET}))
    session.check(ig.ToolCall("send_sms", {"token": SECRET}))
    guard.flush()
    text = path.read_text()
    assert len(text.splitlines()) == 2
    assert SECRET not in text


def test_jsonl_sink_writes_parseable_chained_lines(guard: ig.Guard, session: ig.Session, tmp_path: Path) -> None:
    """The JSONL file holds one valid record per line and each line hashes into the next prev."""
    path = tmp_path / "audit.jsonl"
    guard.audit.add_sink(ig.JsonlSink(path))
    for _ in range(3):
        session.check(ig.ToolCall("lookup_order", {"order_id": "A123"}))
    guard.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    records = [AuditRecord.model_validate_json(line) for line in lines]
    for line, record in zip(lines, records[1:], strict=False):
        assert record.prev == hashlib.sha256(line.encode()).hexdigest()


def test_failing_sink_is_reported_and_never_changes_a_decision(
    clock: FrozenClock, refund_schema: ig.IntentSchema, principal: ig.Principal, agent: ig.AgentIdentity
) -> None:
    """A sink that raises is reported to on_audit_error; decisions and the other sinks are unaffected."""
    errors: list[tuple[str, BaseException]] = []
    good: list[AuditRecord] = []

    def broken(record: AuditRecord, /) -> None:
        raise OSError("disk full")

    guard = ig.Guard(
        schemas=[refund_schema],
        clock=clock,
        audit=[broken, good.append],
        on_audit_error=lambda sink, record, exc: errors.append((record.jti, exc)),
    )
    session = guard.start("refund_request", REFUND_PARAMS, principal=principal, agent=agent)
    decision = session.check(ig.ToolCall("lookup_order", {"order_id": "A123"}))
    guard.close()
    assert decision.allowed
    assert len(good) == 1
    assert [type(exc) for _, exc in errors] == [OSError]
    assert errors[0][0] == good[0].jti


def test_failing_sink_is_logged_by_default(
    clock: FrozenClock,
    refund_schema: ig.IntentSchema,
    principal: ig.Principal,
    agent: ig.AgentIdentity,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without an error handler a failing sink is logged on the intentguard.audit logger."""

    def broken(record: AuditRecord, /) -> None:
        raise OSError("disk full")

    guard = ig.Guard(schemas=[refund_schema], clock=clock, audit=[broken])
    session = guard.start("refund_request", REFUND_PARAMS, principal=principal, agent=agent)
    with caplog.at_level(logging.ERROR, logger="intentguard.audit"):
        assert session.check(ig.ToolCall("lookup_order", {"order_id": "A123"})).allowed
        guard.close()
    assert "disk full" in caplog.text


def test_background_writer_delivers_without_flush(
    refund_schema: ig.IntentSchema, principal: ig.Principal, agent: ig.AgentIdentity, tmp_path: Path
) -> None:
    """Records reach the sink from the writer thread on its own, and close() delivers the rest."""
    path = tmp_path / "audit.jsonl"
    guard = ig.Guard(schemas=[refund_schema], audit=[ig.JsonlSink(path)], ids=sequential_ids("r"))
    session = guard.start("refund_request", REFUND_PARAMS, principal=principal, agent=agent)
    for _ in range(50):
        session.check(ig.ToolCall("search_kb", {"query": "refunds"}))
    guard.close()
    guard.close()
    assert len(path.read_text().splitlines()) == 50


def test_closed_jsonl_sink_refuses_records(tmp_path: Path, guard: ig.Guard, session: ig.Session) -> None:
    """Writing to a closed sink raises (and the writer reports it) rather than losing records silently."""
    sink = ig.JsonlSink(tmp_path / "a.jsonl")
    sink.close()
    with capture_decisions(guard) as captured:
        session.check(ig.ToolCall("search_kb", {"query": "x"}))
    with pytest.raises(ValueError, match="closed"):
        sink(captured.records[0])


def test_args_digest_ignores_key_order() -> None:
    """Two mappings with the same items hash alike whatever their order."""
    assert args_digest({"b": 1, "a": [1, 2]}) == args_digest({"a": [1, 2], "b": 1})
    assert args_digest({"a": 1}) != args_digest({"a": 2})


@pytest.mark.parametrize("args", [{"x": {1, 2}}, {1: "a", "b": 2}, {"n": float("nan")}])
def test_args_digest_is_total(args: dict[object, object]) -> None:
    """Arguments that are not plain JSON still hash (by repr) instead of breaking the trail."""
    assert len(args_digest(args)) == 64


def test_record_is_frozen_and_strict() -> None:
    """Audit records reject unknown fields and cannot be modified after creation."""
    data = json.loads(
        '{"jti":"j","iat":1,"toe":1.0,"txn":"t","aud":"a","sub":"s","events":{},"pos":1,"prev":"' + GENESIS + '"}'
    )
    record = AuditRecord.model_validate(data)
    with pytest.raises(ValueError, match="frozen"):
        record.jti = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="Extra inputs"):
        AuditRecord.model_validate({**data, "raw_args": {"token": SECRET}})


def test_malformed_calls_are_audited_and_the_writer_survives(guard: ig.Guard, session: ig.Session) -> None:
    """A denied call with a non-string tool name and id still gets its record, and later records follow."""
    with capture_decisions(guard) as captured:
        session.check(ig.ToolCall(123, {}, 456))  # type: ignore[arg-type]
        session.check(ig.ToolCall("search_kb", {"query": "x"}))
    records = captured.records
    assert [(r.decision.tool, r.decision.call_id) for r in records] == [("123", "456"), ("search_kb", None)]
    assert records[0].decision.effect == "DENY"


def test_an_entry_that_cannot_be_built_is_logged_and_skipped(
    guard: ig.Guard, session: ig.Session, caplog: pytest.LogCaptureFixture
) -> None:
    """If a record cannot be built the failure is logged and the next records are still written."""
    with capture_decisions(guard) as captured, caplog.at_level(logging.ERROR, logger="intentguard.audit"):
        guard.audit.submit((None, 0, 0.0, "x", None, {}, None, None))  # type: ignore[arg-type]
        session.check(ig.ToolCall("search_kb", {"query": "x"}))
        assert [r.decision.tool for r in captured.records] == ["search_kb"]
    assert "could not build an audit record" in caplog.text


def test_args_digest_survives_absurd_nesting() -> None:
    """Arguments nested deeper than Python can serialise still hash, so no check or record breaks on them."""
    deep: object = "x"
    for _ in range(100_000):
        deep = [deep]
    assert len(args_digest({"a": deep})) == 64


def test_args_digest_hashes_lone_surrogates() -> None:
    """Arguments holding lone surrogates (what JSON's \\ud800 escapes decode to) hash, and differently from others."""
    assert len(args_digest({"a": "x\ud800"})) == 64
    assert args_digest({"a": "x\ud800"}) != args_digest({"a": "x\\ud800"})
