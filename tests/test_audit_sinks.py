"""SQLite and Redis Streams trails: one chain per table or stream, queries for reviewers, no secrets anywhere."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

import intentguard as ig
from intentguard.audit import Fault, verify_sqlite, verify_stream
from intentguard.cli import main
from intentguard.testing import FrozenClock, sequential_ids

from .conftest import REFUND_PARAMS
from .test_audit_verify import write_trail

API_KEY = "sk-live-51HxyzSECRETabcdef0123"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJlc2VjcmV0"
PASSWORD = "hunter2-correct-horse-battery"
NOTE_SECRET = "swordfish-0xDEADBEEF-vault"
SECRETS = [API_KEY, BEARER, BEARER.split()[1], PASSWORD, NOTE_SECRET]


@pytest.fixture
def redis_url(private_redis_url: str) -> str:
    """This module's own redis-server: its tests empty the database."""
    return private_redis_url


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on an emptied database."""
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.close()


def test_sqlite_query_and_counts_answer_a_reviewer(tmp_path: Path, refund_schema: ig.IntentSchema) -> None:
    """Records can be listed by session, tenant, effect, tool and time, and counted per effect, reason and tool."""
    clock = FrozenClock(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
    sink = ig.SqliteSink(tmp_path / "audit.db")
    guard = ig.Guard(schemas=[refund_schema], clock=clock, ids=sequential_ids(), audit=[sink])
    ann = guard.start(
        "refund_request",
        REFUND_PARAMS,
        principal=ig.Principal(user="ann", tenant="acme"),
        agent=ig.AgentIdentity(id="bot"),
    )
    bob = guard.start(
        "refund_request",
        REFUND_PARAMS,
        principal=ig.Principal(user="bob", tenant="globex"),
        agent=ig.AgentIdentity(id="bot"),
    )
    ann.check(ig.ToolCall("lookup_order", {"order_id": "A123"}))
    ann.check(ig.ToolCall("wire_money", {"to": "x"}))
    clock.advance(minutes=1)
    bob.check(ig.ToolCall("search_kb", {"query": "policy"}))
    bob.check(ig.ToolCall("issue_refund", {"order_id": "A123", "amount": 900}))
    bob.check(ig.ToolCall("delete_all", {}))
    guard.flush()

    assert [r.decision.tool for r in sink.query(session=ann.id)] == ["lookup_order", "wire_money"]
    assert [r.sub for r in sink.query(tenant="globex")] == ["bob"] * 3
    assert [r.decision.tool for r in sink.query(effect="DENY")] == ["wire_money", "issue_refund", "delete_all"]
    assert [r.decision.tool for r in sink.query(tool="search_kb")] == ["search_kb"]
    assert len(sink.query(since=datetime(2026, 1, 1, 9, 1, tzinfo=UTC))) == 3
    assert len(sink.query(until=clock() - 30)) == 2
    assert len(sink.query(effect="DENY", limit=1)) == 1
    assert sink.counts() == {"DENY": 3, "ALLOW": 2}
    assert sink.counts("reason") == {"TOOL_NOT_IN_INTENT": 2, "ARG_CONSTRAINT": 1}
    assert sink.counts("tenant", effect="DENY") == {"globex": 2, "acme": 1}
    assert sink.counts("tool", session=bob.id)["issue_refund"] == 1
    with pytest.raises(ig.ConfigurationError, match="cannot count by 'colour'"):
        sink.counts("colour")  # type: ignore[arg-type]
    with pytest.raises(ig.ConfigurationError, match="aware datetime"):
        sink.query(since=datetime(2026, 1, 1))
    guard.close()
    assert verify_sqlite(tmp_path / "audit.db").ok
    with pytest.raises(ValueError, match="closed"):
        sink.query()


def test_sqlite_writers_in_many_threads_share_one_chain(tmp_path: Path, refund_schema: ig.IntentSchema) -> None:
    """Several guards (each its own connection) writing one table form one unbroken chain."""
    path = tmp_path / "audit.db"
    threads = [threading.Thread(target=write_trail, args=(ig.SqliteSink(path), refund_schema, 25)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    report = verify_sqlite(path)
    assert report.ok, report.lines()
    assert report.records == 100


def test_sqlite_rejects_odd_table_names(tmp_path: Path) -> None:
    """A table name that is not a plain identifier is refused before any SQL runs."""
    with pytest.raises(ig.ConfigurationError, match="not a plain identifier"):
        ig.SqliteSink(tmp_path / "a.db", table="audit; DROP TABLE x")


def test_a_failing_sqlite_batch_is_rolled_back(tmp_path: Path, refund_schema: ig.IntentSchema) -> None:
    """A batch that cannot be written leaves nothing behind, and the chain continues after it."""
    path = tmp_path / "audit.db"
    sink = ig.SqliteSink(path)
    write_trail(sink, refund_schema, calls=2)
    reopened = ig.SqliteSink(path, busy_timeout=0)
    errors: list[BaseException] = []
    guard = ig.Guard(
        schemas=[refund_schema],
        clock=FrozenClock(),
        audit=[reopened],
        on_audit_error=lambda sink, record, exc: errors.append(exc),
    )
    session = guard.start(
        "refund_request", REFUND_PARAMS, principal=ig.Principal(user="u", tenant="t"), agent=ig.AgentIdentity(id="bot")
    )
    # Another connection holds the write lock longer than this sink waits: the batch fails whole.
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    session.check(ig.ToolCall("search_kb", {"query": "x"}))
    guard.flush()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert [type(exc).__name__ for exc in errors] == ["OperationalError"]
    session.check(ig.ToolCall("search_kb", {"query": "y"}))
    guard.close()
    report = verify_sqlite(path)
    assert report.ok, report.lines()
    assert report.records == 3


def test_redis_stream_holds_a_chain_that_verifies(
    client: redis.Redis, redis_url: str, refund_schema: ig.IntentSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records go to the stream as their exact lines; the chain verifies from the stream and its head key."""
    write_trail(ig.RedisStreamSink(redis_url, stream="audit"), refund_schema, calls=5)
    write_trail(ig.RedisStreamSink(client=client, stream="audit"), refund_schema, calls=3)
    report = verify_stream(client, "audit")
    assert report.ok, report.lines()
    assert (report.records, report.last) == (8, 8)
    assert main(["audit", "verify", redis_url, "--stream", "audit"]) == 0
    assert capsys.readouterr().out.startswith("ok  stream 'audit': 8 records")


def test_redis_many_writers_share_one_chain(
    client: redis.Redis, redis_url: str, refund_schema: ig.IntentSchema
) -> None:
    """Writers on several connections (standing in for hosts) append to one chain without forking it."""
    threads = [
        threading.Thread(target=write_trail, args=(ig.RedisStreamSink(redis_url, stream="shared"), refund_schema, 30))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    report = verify_stream(client, "shared")
    assert report.ok, report.lines()
    assert report.records == 120


def test_redis_tampering_is_named_by_entry(client: redis.Redis, redis_url: str, refund_schema: ig.IntentSchema) -> None:
    """A deleted entry and entries cut from the end are reported; a trimmed start is only noted."""
    write_trail(ig.RedisStreamSink(redis_url, stream="audit"), refund_schema, calls=6)
    ids = [entry_id for entry_id, _ in client.xrange("audit")]
    client.xdel("audit", ids[2], ids[5])
    report = verify_stream(client, "audit")
    assert [(p.fault, p.record) for p in report.problems] == [(Fault.MISSING, 4), (Fault.TRUNCATED, 6)]
    assert report.problems[0].where == f"entry {ids[3].decode()}"
    client.xdel("audit", ids[0])
    client.set("audit:head", client.get("audit:head").replace(b'"pos": 6', b'"pos": 5'))  # type: ignore[union-attr]
    trimmed = verify_stream(client, "audit")
    assert [p.fault for p in trimmed.problems] == [Fault.MISSING, Fault.MODIFIED]
    assert trimmed.notes[0].startswith("the trail starts at record 2: record 1 was trimmed or removed")


def test_redis_maxlen_trims_and_the_rest_still_verifies(client: redis.Redis, refund_schema: ig.IntentSchema) -> None:
    """With maxlen the stream keeps its newest records and verifies from its first remaining one."""
    sink = ig.RedisStreamSink(client=client, stream="capped", maxlen=10)
    write_trail(sink, refund_schema, calls=300)
    report = verify_stream(client, "capped")
    assert report.ok, report.lines()
    assert report.last == 300
    assert 10 <= report.records < 300
    with pytest.raises(ValueError, match="closed"):
        sink.write_many([])


def test_redis_sink_needs_exactly_one_connection() -> None:
    """Giving both a URL and a client (or neither) is a configuration error."""
    with pytest.raises(ig.ConfigurationError, match="either url"):
        ig.RedisStreamSink()


def test_no_sink_ever_holds_a_secret(
    tmp_path: Path, redis_url: str, client: redis.Redis, refund_schema: ig.IntentSchema
) -> None:
    """API keys, bearer tokens, passwords and approvers' notes never reach a JSONL file, a SQLite
    database or a Redis stream, whether the call was allowed, denied, confirmed or malformed."""
    clock = FrozenClock()

    def answer(request: ig.ConfirmationRequest) -> ig.Approval:
        note = f"the vault code is {NOTE_SECRET}"
        if request.args.get("amount") == 37.5:
            return ig.Approval.deny(request, approver="alice", at=clock(), note=note)
        return ig.Approval.approve(request, approver="alice", at=clock(), note=note)

    sinks = [
        ig.JsonlSink(tmp_path / "audit.jsonl"),
        ig.SqliteSink(tmp_path / "audit.db"),
        ig.RedisStreamSink(redis_url, stream="secrets"),
    ]
    guard = ig.Guard(
        schemas=[refund_schema],
        clock=clock,
        audit=sinks,
        confirm=ig.CallbackHandler(answer, approver="alice", clock=clock),
    )
    for amount in (37.5, 12.5):
        session = guard.start(
            "refund_request",
            REFUND_PARAMS,
            principal=ig.Principal(user="u", tenant="t"),
            agent=ig.AgentIdentity(id="bot"),
        )
        session.observe_result("c0", "search_kb", f"Refunds are usually {amount} dollars. Ask for {API_KEY}.")
        session.check(ig.ToolCall("send_email", {"to": API_KEY, "subject": PASSWORD, "body": BEARER}))
        session.check(ig.ToolCall("search_kb", {"query": BEARER + " " + "x" * 300}))
        session.check(ig.ToolCall("search_kb", {"query": f"password={PASSWORD}"}))
        session.check(ig.ToolCall("lookup_order", {"order_id": PASSWORD}))
        session.check(ig.ToolCall("search_kb", {"query": {"nested": [API_KEY, PASSWORD]}}))
        session.check(ig.ToolCall("search_kb", {"query": PASSWORD.encode()}))
        session.check(ig.ToolCall("wire_money", {"authorization": BEARER}))
        session.decide(ig.ToolCall("issue_refund", {"order_id": "A123", "amount": amount}))
    guard.close()

    outputs = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    outputs["redis"] = b"\n".join(fields[b"line"] for _, fields in client.xrange("secrets"))
    assert set(outputs) >= {"audit.jsonl", "audit.db", "audit.jsonl.head", "redis"}
    assert outputs["audit.jsonl"].count(b"\n") == 18
    assert b"CONFIRMATION_DENIED" in outputs["audit.jsonl"]
    assert b"note_sha256" in outputs["audit.jsonl"]
    for name, data in outputs.items():
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret!r} leaked into {name}"
            assert secret[:12].encode() not in data, f"the start of {secret!r} leaked into {name}"
