"""When pushes are lost, the backend dies or a writer dies: nothing is lost or silently accepted.

Real parts only: a redis-server this test starts and kills, an SQLite file it moves away, a
writer process it kills mid-transaction. Time is a FrozenClock; the only waits are bounded
waits on the registry's own poll thread or on another process.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import intentguard as ig
from intentguard.decision import ReasonCode
from intentguard.registry import Scope
from intentguard.testing import FrozenClock, capture_decisions, redis_server, sequential_ids
from tests.conftest import REFUND, REFUND_PARAMS

LOOKUP = ig.ToolCall("lookup_order", {"order_id": "A123"})


def start(guard: ig.Guard, user: str = "u-7") -> ig.Session:
    return guard.start(
        "refund_request",
        REFUND_PARAMS,
        principal=ig.Principal(user=user, tenant="acme"),
        agent=ig.AgentIdentity(id="support-bot"),
    )


def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0) -> bool:
    """Wait (bounded) for the registry's poll thread or another process to make ``condition`` true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_lost_push_is_caught_by_the_poll(redis_url: str, clock: FrozenClock) -> None:
    """An invalidation whose pub/sub message nobody receives still reaches the session through
    the periodic poll."""
    prefix = f"lost-{uuid.uuid4().hex}:"
    here = ig.RedisRegistry(redis_url, clock=clock, prefix=prefix, poll_interval=0.1)
    deaf = ig.RedisRegistry(redis_url, clock=clock, prefix=prefix, channel=f"{prefix}nobody-listens")
    with ig.Guard(schemas=[REFUND], clock=clock, ids=sequential_ids("lost"), registry=here) as guard:
        session = start(guard)
        assert session.check(LOOKUP).allowed
        deaf.invalidate(Scope.user("acme", "u-7"), reason="offboarded", by="hr")
        assert wait_until(lambda: session.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,))
    here.close()
    deaf.close()


def test_a_push_arrives_without_waiting_for_a_poll(redis_url: str, clock: FrozenClock) -> None:
    """With polls an hour apart, an invalidation still reaches another registry by pub/sub."""
    prefix = f"push-{uuid.uuid4().hex}:"
    here = ig.RedisRegistry(redis_url, clock=clock, prefix=prefix, poll_interval=3600, max_staleness=7200)
    there = ig.RedisRegistry(redis_url, clock=clock, prefix=prefix)
    with ig.Guard(schemas=[REFUND], clock=clock, ids=sequential_ids("push"), registry=here) as guard:
        session = start(guard)
        # The listener subscribes right after its first poll; give it that moment (bounded).
        assert wait_until(lambda: here._pubsub is not None and here._pubsub.subscribed)
        there.invalidate(Scope.session("acme", session.id), reason="stop", by="ops")
        assert wait_until(lambda: not session.check(LOOKUP).allowed)
        assert session.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,)
    for registry in (here, there):
        registry.close()


def test_redis_down_past_the_bound_fails_closed_and_recovers(clock: FrozenClock) -> None:
    """With Redis gone, checks allow until max_staleness has passed since the last good poll,
    then deny with REGISTRY_UNAVAILABLE; writes and new sessions raise RegistryError; once Redis
    is back, a poll makes the session usable again."""
    with redis_server() as server:
        registry = ig.RedisRegistry(server.url, clock=clock, poll_interval=0.1, max_staleness=2)
        guard = ig.Guard(schemas=[REFUND], clock=clock, ids=sequential_ids("down"), registry=registry)
        session = start(guard)
        assert session.check(LOOKUP).allowed
        registry.invalidate(Scope.user("acme", "u-9"), reason="earlier offboarding", by="hr")
        server.stop()
        with pytest.raises(ig.RegistryError, match="cannot"):
            registry.sync()
        assert wait_until(lambda: not registry._healthy)  # the poll thread noticed too
        assert session.check(LOOKUP).allowed  # within the bound
        clock.advance(seconds=2)
        decision = session.check(LOOKUP)
        assert decision.codes == (ReasonCode.REGISTRY_UNAVAILABLE,)
        assert "cannot vouch" in decision.explain()
        with pytest.raises(ig.RegistryError):
            start(guard)
        with pytest.raises(ig.RegistryError):
            registry.invalidate(Scope.user("acme", "u-7"), reason="offboarded", by="hr")
        server.start()  # empty: this Redis kept nothing
        registry.sync()
        assert session.check(LOOKUP).allowed
        assert wait_until(lambda: registry._healthy)
        # Epochs are time-based, so an invalidation written to the emptied store still outranks
        # the epochs this process remembers.
        other = ig.RedisRegistry(server.url, clock=clock)
        other.invalidate(Scope.user("acme", "u-7"), reason="offboarded", by="hr")
        registry.sync()
        assert session.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,)
        guard.close()
        for each in (registry, other):
            each.close()
        with pytest.raises(ig.RegistryError, match="closed"):
            other.invalidate(Scope.user("acme", "u-7"), reason="again", by="hr")


def test_a_closed_registry_vouches_for_nobody(tmp_path: Path, clock: FrozenClock) -> None:
    """After guard.close() the registry it opened is closed: its sessions are denied with
    REGISTRY_UNAVAILABLE and it registers no new ones."""
    guard = ig.Guard(schemas=[REFUND], clock=clock, registry=f"sqlite:///{tmp_path}/closed.db")
    session = start(guard)
    assert session.check(LOOKUP).allowed
    guard.close()
    assert session.check(LOOKUP).codes == (ReasonCode.REGISTRY_UNAVAILABLE,)
    with pytest.raises(ig.RegistryError, match="closed"):
        start(guard)
    with pytest.raises(ig.RegistryError, match="closed"):
        guard.registry.sync()  # type: ignore[attr-defined]


def test_a_replaced_sqlite_file_fails_closed(tmp_path: Path, clock: FrozenClock) -> None:
    """When the database file is moved away (others would now write elsewhere), polls fail and,
    past the bound, checks deny with REGISTRY_UNAVAILABLE instead of watching a dead file."""
    path = tmp_path / "registry.db"
    registry = ig.SQLiteRegistry(path, clock=clock, max_staleness=2)
    with ig.Guard(schemas=[REFUND], clock=clock, registry=registry) as guard:
        session = start(guard)
        assert session.check(LOOKUP).allowed
        path.rename(tmp_path / "moved.db")
        with pytest.raises(ig.RegistryError, match="replaced"):
            registry.sync()
        clock.advance(seconds=3)
        assert session.check(LOOKUP).codes == (ReasonCode.REGISTRY_UNAVAILABLE,)
    registry.close()


def test_an_sqlite_file_that_cannot_be_opened_is_a_registry_error(tmp_path: Path) -> None:
    """A path in a missing directory is refused at setup, naming the path."""
    with pytest.raises(ig.RegistryError, match="no-such-dir"):
        ig.SQLiteRegistry(tmp_path / "no-such-dir" / "r.db")


_DYING_WRITER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE intentguard_epochs SET epoch = epoch + 1000000000000000, seq = seq + 1000")
print("holding", flush=True)
time.sleep(60)
"""


def test_a_writer_killed_mid_transaction_leaves_nothing_half_done(tmp_path: Path, clock: FrozenClock) -> None:
    """A writer process killed inside its transaction changes nothing; the next writer gets the
    lock and its invalidation reaches every session."""
    path = tmp_path / "registry.db"
    registry = ig.SQLiteRegistry(path, clock=clock)
    with ig.Guard(schemas=[REFUND], clock=clock, registry=registry) as guard:
        session, bystander = start(guard), start(guard, user="u-8")
        registry.invalidate(Scope.user("acme", "u-9"), reason="earlier offboarding", by="hr")
        writer = subprocess.Popen([sys.executable, "-c", _DYING_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "holding"
        writer.kill()
        writer.wait(timeout=10)
        writer.stdout.close()
        other = ig.SQLiteRegistry(path, clock=clock)
        registry.sync()
        assert session.check(LOOKUP).allowed
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT MAX(seq) FROM intentguard_epochs").fetchone() == (1,)
        other.invalidate(Scope.user("acme", "u-7"), reason="offboarded", by="hr")
        registry.sync()
        assert session.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,)
        assert bystander.check(LOOKUP).allowed
        other.close()
    registry.close()


def test_redis_server_helper_names_a_missing_executable() -> None:
    """The shipped redis_server() helper says what to install when redis-server is missing."""
    with pytest.raises(ig.ConfigurationError, match="not on PATH"), redis_server("no-such-redis-server"):
        pass


def test_a_fresh_process_registers_at_the_current_epoch(tmp_path: Path, clock: FrozenClock) -> None:
    """A registry that starts after an invalidation registers new sessions as live and still
    revokes them on the next invalidation."""
    path = tmp_path / "registry.db"
    with ig.SQLiteRegistry(path, clock=clock) as earlier:
        earlier.invalidate(Scope.user("acme", "u-7"), reason="old offboarding", by="hr")
        with ig.SQLiteRegistry(path, clock=clock) as later:
            session = start(ig.Guard(schemas=[REFUND], clock=clock, registry=later))
            assert session.check(LOOKUP).allowed
            earlier.invalidate(Scope.user("acme", "u-7"), reason="offboarded again", by="hr")
            later.sync()
            assert "offboarded again" in session.check(LOOKUP).explain()


def test_a_failed_sqlite_write_changes_nothing(tmp_path: Path, clock: FrozenClock) -> None:
    """A write the database refuses (here by a trigger) is rolled back and raised as RegistryError."""
    path = tmp_path / "registry.db"
    with ig.SQLiteRegistry(path, clock=clock) as registry:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON intentguard_epochs BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
            db.commit()
        with pytest.raises(ig.RegistryError, match="refused"):
            registry.invalidate(Scope.user("acme", "u-7"), reason="offboarded", by="hr")
        assert registry._backend_head() == 0


def test_a_malformed_channel_message_is_ignored(redis_url: str, clock: FrozenClock) -> None:
    """Garbage published on the registry's channel is skipped; real invalidations still arrive."""
    import redis

    prefix = f"junk-{uuid.uuid4().hex}:"
    here = ig.RedisRegistry(redis_url, clock=clock, prefix=prefix, poll_interval=3600, max_staleness=7200)
    with ig.Guard(schemas=[REFUND], clock=clock, ids=sequential_ids("junk"), registry=here) as guard:
        session = start(guard)
        assert wait_until(lambda: here._pubsub is not None and here._pubsub.subscribed)
        with redis.Redis.from_url(redis_url) as raw:
            raw.publish(here.channel, "not json")
            raw.publish(here.channel, '{"key": "no epoch"}')
        ig.RedisRegistry(redis_url, clock=clock, prefix=prefix).invalidate(
            Scope.session("acme", session.id), reason="stop", by="ops"
        )
        assert wait_until(lambda: session.revoked is not None)
    here.close()


def test_a_redis_url_redis_py_cannot_read_is_a_registry_error(clock: FrozenClock) -> None:
    """A URL redis-py refuses is a RegistryError naming it."""
    with pytest.raises(ig.RegistryError, match=r"http://example\.com"):
        ig.RedisRegistry("http://example.com", clock=clock)
    assert "prefix='p:'" in repr(ig.RedisRegistry("redis://127.0.0.1:1/0", clock=clock, prefix="p:"))


def test_redis_server_helper_reports_a_server_that_never_answers() -> None:
    """The helper fails with a clear error when the program exits instead of serving."""
    with pytest.raises(ig.ConfigurationError, match="did not answer"), redis_server("false"):
        pass


def test_a_failed_sqlite_claim_claims_nothing(tmp_path: Path, clock: FrozenClock) -> None:
    """A claim the database refuses is rolled back and raised as RegistryError; the key stays claimable."""
    path = tmp_path / "registry.db"
    with ig.SQLiteRegistry(path, clock=clock) as registry:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON intentguard_claims BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
            db.commit()
        with pytest.raises(ig.RegistryError, match="refused"):
            registry.claim_once("jti-1", until=clock() + 60)
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("DROP TRIGGER refuse")
            db.commit()
        assert registry.claim_once("jti-1", until=clock() + 60)


def test_revoke_holds_here_when_the_registry_cannot_be_written(tmp_path: Path, clock: FrozenClock) -> None:
    """With the registry unreachable, revoke() still stops the session and its children here, then raises."""
    registry = ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock)
    with ig.Guard(schemas=[REFUND], clock=clock, ids=sequential_ids("r"), registry=registry) as guard:
        session = start(guard)
        child = session.delegate(ig.AgentIdentity(id="helper"))
        registry.close()
        with pytest.raises(ig.RegistryError, match="closed"):
            session.revoke("the user logged out")
        assert session.revoked == "the user logged out"
        assert child.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,)
        assert "its parent session" in (child.revoked or "")


def test_a_divergence_revocation_the_registry_cannot_take_still_returns_a_decision(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """check() never raises: a divergence score that revokes the session while the registry cannot be written
    stops the session here, and the call gets its DENY and its audit record."""
    registry = ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock, poll_interval=3600, max_staleness=7200)
    divergence = ig.DivergenceConfig(revoke=0.001)
    with ig.Guard(schemas=[REFUND], clock=clock, registry=registry, divergence=divergence) as guard:
        session = start(guard)
        registry.close()
        with capture_decisions(guard) as captured:
            decision = session.check(LOOKUP)
        assert decision.effect is ig.Effect.DENY
        assert ReasonCode.DIVERGENCE in decision.codes
        assert "revoke threshold" in (session.revoked or "")
        assert captured.effects == ["DENY"]


def _sqlite_pair(tmp_path: Path, clock: FrozenClock) -> tuple[ig.SessionRegistry, ig.SessionRegistry]:
    here = ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock, poll_interval=3600, max_staleness=7200)
    return here, ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock)


def _redis_pair(url: str, clock: FrozenClock) -> tuple[ig.SessionRegistry, ig.SessionRegistry]:
    prefix = f"swallow-{uuid.uuid4().hex}:"
    # "here" hears no pushes and polls hourly, so the registration below reads the change first.
    here = ig.RedisRegistry(
        url, clock=clock, prefix=prefix, channel=f"{prefix}nobody", poll_interval=3600, max_staleness=7200
    )
    return here, ig.RedisRegistry(url, clock=clock, prefix=prefix)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_registration_that_reads_an_invalidation_first_still_revokes_older_sessions(
    kind: str, tmp_path: Path, clock: FrozenClock, request: pytest.FixtureRequest
) -> None:
    """A tenant invalidated elsewhere stops this process's older sessions of the tenant even when a
    new session of that tenant registers here before the poll or push brings the change."""
    if kind == "sqlite":
        here, there = _sqlite_pair(tmp_path, clock)
    else:
        here, there = _redis_pair(request.getfixturevalue("redis_url"), clock)
    with ig.Guard(schemas=[REFUND], clock=clock, ids=sequential_ids("swallow"), registry=here) as guard:
        older = start(guard)
        assert older.check(LOOKUP).allowed
        # Wait (bounded) for the poll thread's first poll; its next one is an hour away.
        assert wait_until(lambda: (here._version if kind == "sqlite" else here._pubsub) is not None)
        there.invalidate(Scope.of_tenant("acme"), reason="tenant suspended", by="billing")
        newer = start(guard, user="u-8")  # registers after the invalidation: it is not affected
        here.sync()
        assert newer.check(LOOKUP).allowed
        assert older.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,)
    here.close()
    there.close()
