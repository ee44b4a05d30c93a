"""JSONL trails across restarts: the chain continues, a torn or shortened trail is never chained onto."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import intentguard as ig
from intentguard.audit import AuditRecord, verify_jsonl
from intentguard.audit.record import GENESIS, build_record
from intentguard.testing import capture_decisions

from .test_audit_verify import lines_of, write_trail


def test_a_second_guard_continues_the_files_chain(tmp_path: Path, refund_schema: ig.IntentSchema) -> None:
    """Appending to an existing trail numbers on from its last record and links to that line's hash."""
    path = tmp_path / "audit.jsonl"
    write_trail(ig.JsonlSink(path), refund_schema, calls=3)
    write_trail(ig.JsonlSink(path), refund_schema, calls=4)
    records = [AuditRecord.from_line(line.decode()) for line in lines_of(path)]
    assert [record.pos for record in records] == list(range(1, 8))
    assert records[3].prev == records[2].digest()
    report = verify_jsonl(path)
    assert report.ok, report.lines()
    assert report.head is not None
    assert (report.head.pos, report.head.digest) == (7, records[-1].digest())


def test_sink_reports_where_it_stands(tmp_path: Path, refund_schema: ig.IntentSchema) -> None:
    """A sink opened on a trail knows its last record: number and hash; an empty trail stands at genesis."""
    path = tmp_path / "audit.jsonl"
    empty = ig.JsonlSink(path)
    assert (empty.head.pos, empty.head.digest) == (0, GENESIS)
    empty.close()
    write_trail(ig.JsonlSink(path), refund_schema, calls=2)
    sink = ig.JsonlSink(path)
    last = AuditRecord.from_line(lines_of(path)[-1].decode())
    assert (sink.head.pos, sink.head.digest) == (2, last.digest())
    sink.close()


def test_torn_tail_is_refused_naming_file_and_line(tmp_path: Path, refund_schema: ig.IntentSchema) -> None:
    """Opening a trail that ends in half a record raises, naming the file and the line; nothing is appended."""
    path = tmp_path / "audit.jsonl"
    write_trail(ig.JsonlSink(path), refund_schema, calls=3)
    with path.open("ab") as file:
        file.write(b'{"jti":"r-9","iss":"intent')
    before = path.read_bytes()
    with pytest.raises(ig.AuditTrailError, match=r"audit\.jsonl' ends in a torn record at line 4 \(byte \d+\)"):
        ig.JsonlSink(path)
    assert path.read_bytes() == before


def test_quarantine_moves_the_torn_bytes_aside_and_continues(
    tmp_path: Path, refund_schema: ig.IntentSchema, caplog: pytest.LogCaptureFixture
) -> None:
    """With quarantine_torn the torn bytes go to FILE.torn, the trail is cut back and continues verifiably."""
    path = tmp_path / "audit.jsonl"
    write_trail(ig.JsonlSink(path), refund_schema, calls=3)
    torn = b'{"jti":"r-9","iss":"intent'
    with path.open("ab") as file:
        file.write(torn)
    with caplog.at_level(logging.WARNING, logger="intentguard.audit"):
        sink = ig.JsonlSink(path, quarantine_torn=True)
    assert "moved a torn record (line 4" in caplog.text
    assert Path(str(path) + ".torn").read_bytes() == torn + b"\n"
    write_trail(sink, refund_schema, calls=2)
    report = verify_jsonl(path)
    assert report.ok, report.lines()
    assert report.records == 5


def test_a_damaged_last_line_is_refused(tmp_path: Path, refund_schema: ig.IntentSchema) -> None:
    """A complete last line that is not a record cannot be continued from: the sink refuses to open."""
    path = tmp_path / "audit.jsonl"
    write_trail(ig.JsonlSink(path), refund_schema, calls=2)
    with path.open("ab") as file:
        file.write(b"not a record\n")
    with pytest.raises(ig.AuditTrailError, match=r"line 3 of audit trail .* is not an audit record"):
        ig.JsonlSink(path)


def test_a_trail_shorter_than_its_head_is_refused(tmp_path: Path, refund_schema: ig.IntentSchema) -> None:
    """If records were cut from the end, the head file is ahead of the trail and the sink will not continue."""
    path = tmp_path / "audit.jsonl"
    write_trail(ig.JsonlSink(path), refund_schema, calls=4)
    path.write_bytes(b"".join(lines_of(path)[:2]))
    with pytest.raises(ig.AuditTrailError, match="ends at record 2 but its head file says record 4"):
        ig.JsonlSink(path)


def test_an_unreadable_head_file_is_refused(tmp_path: Path, refund_schema: ig.IntentSchema) -> None:
    """A head file that is not what the sink writes is an error naming it, not a silent restart."""
    path = tmp_path / "audit.jsonl"
    write_trail(ig.JsonlSink(path), refund_schema, calls=1)
    Path(str(path) + ".head").write_text("{}", encoding="utf-8")
    with pytest.raises(ig.AuditTrailError, match=r"head file .*audit\.jsonl\.head' cannot be read"):
        ig.JsonlSink(path)


def test_a_missing_head_file_is_logged_and_rewritten(
    tmp_path: Path, refund_schema: ig.IntentSchema, caplog: pytest.LogCaptureFixture
) -> None:
    """A trail without its head file can be continued, with a warning, and gets a new head."""
    path = tmp_path / "audit.jsonl"
    write_trail(ig.JsonlSink(path), refund_schema, calls=1)
    Path(str(path) + ".head").unlink()
    with caplog.at_level(logging.WARNING, logger="intentguard.audit"):
        write_trail(ig.JsonlSink(path), refund_schema, calls=1)
    assert "has no head file" in caplog.text
    assert verify_jsonl(path).ok


def test_one_writer_per_file(tmp_path: Path) -> None:
    """A second sink on a file that a sink holds open is refused; after close it may open."""
    path = tmp_path / "audit.jsonl"
    first = ig.JsonlSink(path)
    with pytest.raises(ig.AuditTrailError, match="being written by another sink or process"):
        ig.JsonlSink(path)
    first.close()
    ig.JsonlSink(path).close()


def test_a_failed_write_is_reported_and_leaves_no_half_record(
    tmp_path: Path, guard: ig.Guard, session: ig.Session
) -> None:
    """When the device refuses a write the sink raises and stops, rather than leaving a record half written."""
    if not Path("/dev/full").exists():  # pragma: no cover - Linux has it
        pytest.skip("needs /dev/full")
    path = tmp_path / "full.jsonl"
    path.symlink_to("/dev/full")
    sink = ig.JsonlSink(path)
    with capture_decisions(guard) as captured:
        session.check(ig.ToolCall("search_kb", {"query": "x"}))
    record = captured.records[0]
    with pytest.raises(OSError, match="No space left"):
        sink(record)
    # /dev/full cannot be cut back either: the sink says so instead of writing on.
    with pytest.raises(ig.AuditTrailError, match="could not be restored after a failed write"):
        sink(record)
    sink.close()
    with pytest.raises(ValueError, match="closed"):
        sink(record)


def test_writer_built_records_equal_validated_ones(guard: ig.Guard, session: ig.Session) -> None:
    """The writer skips validation; reading its line back validates to an equal record with the same bytes."""
    with capture_decisions(guard) as captured:
        session.check(ig.ToolCall("lookup_order", {"order_id": "A123"}, "c1"))
        session.check(ig.ToolCall("wire_money", {"to": "x"}))
    for record in captured.records:
        parsed = AuditRecord.from_line(record.to_json())
        assert parsed.model_dump() == record.model_dump()
        assert type(parsed.decision) is type(record.decision)
        assert parsed.model_dump_json() == record.to_json()
        assert parsed.digest() == record.digest()


def test_relinking_changes_only_pos_and_prev(guard: ig.Guard, session: ig.Session) -> None:
    """A record relinked into another trail keeps every claim and differs only in pos and prev."""
    with capture_decisions(guard) as captured:
        session.check(ig.ToolCall("lookup_order", {"order_id": "A123"}))
    record = captured.records[0]
    line, digest = record.linked(7, "a" * 64)
    moved = AuditRecord.from_line(line)
    assert (moved.pos, moved.prev) == (7, "a" * 64)
    assert moved.model_dump(exclude={"pos", "prev"}) == record.model_dump(exclude={"pos", "prev"})
    assert digest == moved.digest()
    assert moved.linked(1, GENESIS)[0] == json.dumps(
        {**json.loads(line), "pos": 1, "prev": GENESIS}, separators=(",", ":"), ensure_ascii=False
    )
    assert record.linked(record.pos, record.prev) == (record.to_json(), record.digest())


def test_build_record_lines_match_pydantic() -> None:
    """A record built directly serialises exactly as pydantic would serialise the same record."""
    event = {
        "seq": 0,
        "session": "s",
        "intent": "i",
        "intent_version": "1",
        "agent": "a",
        "actors": ["u", "a"],
        "root_auth": "r",
        "call_id": None,
        "tool": "t",
        "args_sha256": "0" * 64,
        "effect": "DENY",
        "reasons": [("X", 'ünïcode "quoted" sentence')],
        "score": 0.25,
        "approval": {
            "request": "q",
            "approver": "al",
            "approved": False,
            "note_sha256": "1" * 64,
            "args_sha256": "2" * 64,
        },
    }
    record = build_record(jti="j", iat=1, toe=2.5, txn="t", aud="a", sub="s", event=event, pos=1, prev=GENESIS)
    assert AuditRecord.model_validate_json(record.to_json()).model_dump_json() == record.to_json()


def test_a_head_file_that_cannot_be_written_is_logged(
    tmp_path: Path, refund_schema: ig.IntentSchema, caplog: pytest.LogCaptureFixture
) -> None:
    """The records are written even when the head file cannot be; the failure is logged, never silent."""
    path = tmp_path / "audit.jsonl"
    sink = ig.JsonlSink(path)
    Path(str(path) + ".head").mkdir()
    assert repr(sink) == f"JsonlSink({str(path)!r})"
    with caplog.at_level(logging.ERROR, logger="intentguard.audit"):
        write_trail(sink, refund_schema, calls=2)
    assert "cannot update its head file" in caplog.text
    assert verify_jsonl(path, use_head=False).ok


def test_a_validated_record_serialises_itself(guard: ig.Guard, session: ig.Session) -> None:
    """A record made by validation (not read from a line) still gives the line and hash the writer would."""
    with capture_decisions(guard) as captured:
        session.check(ig.ToolCall("lookup_order", {"order_id": "A123"}))
    built = captured.records[0]
    validated = AuditRecord.model_validate(built.model_dump())
    assert validated.to_json() == built.to_json()
    assert validated.digest() == built.digest()


def test_build_record_refuses_unknown_or_missing_event_fields() -> None:
    """A record is never written with a field DecisionEvent lacks, or without one it requires."""
    base = {"seq": 0, "session": "s", "intent": "i", "intent_version": "1", "agent": "a", "actors": ["u", "a"]}
    base |= {"root_auth": "r", "call_id": None, "tool": "t", "args_sha256": "0" * 64, "effect": "ALLOW"}
    base |= {"reasons": [], "score": 0.0, "approval": None}
    record = build_record(jti="j", iat=1, toe=1.0, txn="s", aud="a", sub="u", event=base, pos=1, prev=GENESIS)
    assert record.decision.depth == 0
    with pytest.raises(ValueError, match="surprise"):
        build_record(
            jti="j", iat=1, toe=1.0, txn="s", aud="a", sub="u", event=base | {"surprise": 1}, pos=1, prev=GENESIS
        )
    del base["tool"]
    with pytest.raises(ValueError, match="tool"):
        build_record(jti="j", iat=1, toe=1.0, txn="s", aud="a", sub="u", event=base, pos=1, prev=GENESIS)


def test_lone_surrogates_in_a_call_never_erase_its_record(guard: ig.Guard, session: ig.Session, tmp_path: Path) -> None:
    """A call whose tool name or arguments hold lone surrogates (what JSON's \\ud800 escapes decode to)
    still gets its record in every sink, and the trails verify."""
    jsonl, db = tmp_path / "audit.jsonl", tmp_path / "audit.db"
    guard.audit.add_sink(ig.JsonlSink(jsonl))
    guard.audit.add_sink(ig.SqliteSink(db))
    refund = session.check(ig.ToolCall("issue_refund", {"order_id": "A123", "amount": 5, "reason": "x\ud800"}, "c1"))
    denied = session.check(ig.ToolCall("wire\udc80", {}, "c2\ud800"))
    guard.flush()
    assert (refund.effect, denied.effect) == (ig.Effect.ALLOW, ig.Effect.DENY)
    records = [AuditRecord.from_line(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    # Spelled out (a backslash, "u", four hex digits): neither UTF-8 nor pydantic's JSON reader takes them raw.
    spelled = [(r.decision.tool, r.decision.call_id) for r in records]
    assert spelled == [("issue_refund", "c1"), ("wire\\udc80", "c2\\ud800")]
    assert verify_jsonl(jsonl).ok
    assert ig.audit.verify_sqlite(db).ok
