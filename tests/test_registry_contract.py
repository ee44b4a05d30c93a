"""One contract for every session registry: memory, SQLite (a file) and Redis (a real server).

Two registry objects on the same backend stand for two processes: a session is started through
one, the scope is invalidated through the other, and ``sync()`` plays the part of the next poll.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import intentguard as ig
from intentguard.decision import ReasonCode
from intentguard.registry import Scope, ScopeKind, open_registry, scopes_of
from intentguard.testing import FrozenClock, sequential_ids
from tests.conftest import REFUND, REFUND_PARAMS

LOOKUP = ig.ToolCall("lookup_order", {"order_id": "A123"})
_names = itertools.count()


@dataclass
class Backend:
    """A way to open registries that share one store, as separate processes would."""

    name: str
    open: Callable[[], ig.SessionRegistry]
    clock: FrozenClock

    def guard(self, registry: ig.SessionRegistry | None = None) -> ig.Guard:
        """A guard on a registry of this backend, with session ids no other guard uses."""
        return ig.Guard(
            schemas=[REFUND],
            clock=self.clock,
            ids=sequential_ids(f"s{next(_names)}"),
            registry=registry if registry is not None else self.open(),
        )


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock) -> Iterator[Backend]:
    opened: list[ig.SessionRegistry] = []

    def track(registry: ig.SessionRegistry) -> ig.SessionRegistry:
        opened.append(registry)
        return registry

    if request.param == "memory":
        shared = track(ig.MemoryRegistry(clock=clock))
        yield Backend("memory", lambda: shared, clock)
    elif request.param == "sqlite":
        path = tmp_path / "registry.db"
        yield Backend("sqlite", lambda: track(ig.SQLiteRegistry(path, clock=clock)), clock)
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"test-{uuid.uuid4().hex}:"
        yield Backend("redis", lambda: track(ig.RedisRegistry(url, clock=clock, prefix=prefix)), clock)
    for registry in opened:
        registry.close()


def start(guard: ig.Guard, *, user: str = "u-7", tenant: str = "acme", agent: str = "support-bot") -> ig.Session:
    return guard.start(
        "refund_request",
        REFUND_PARAMS,
        principal=ig.Principal(user=user, tenant=tenant),
        agent=ig.AgentIdentity(id=agent),
    )


def sync(registry: ig.SessionRegistry) -> None:
    registry.sync()  # type: ignore[attr-defined]


def test_a_new_session_is_live(backend: Backend) -> None:
    """A session registered on any backend is allowed and not revoked."""
    session = start(backend.guard())
    assert session.check(LOOKUP).allowed
    assert session.revoked is None


@pytest.mark.parametrize(
    "scope_of",
    [
        lambda s: Scope.session("acme", s.id),
        lambda s: Scope.agent("acme", "support-bot"),
        lambda s: Scope.user("acme", "u-7"),
        lambda s: Scope.of_tenant("acme"),
        lambda s: Scope.intent("acme", "refund_request"),
    ],
    ids=["session", "agent", "user", "tenant", "intent"],
)
def test_invalidating_any_scope_of_a_session_revokes_it_elsewhere(
    backend: Backend, scope_of: Callable[[ig.Session], Scope]
) -> None:
    """Invalidating a session's own, agent, user, tenant or intent scope through another registry
    denies its next call (after a poll) with SESSION_REVOKED naming who and why."""
    here = backend.open()
    session = start(backend.guard(here))
    assert session.check(LOOKUP).allowed
    elsewhere = backend.open()
    record = elsewhere.invalidate(scope_of(session), reason="the user was offboarded", by="hr-system")
    sync(here)
    decision = session.check(LOOKUP)
    assert decision.codes == (ReasonCode.SESSION_REVOKED,)
    assert "hr-system invalidated" in decision.explain()
    assert "the user was offboarded" in decision.explain()
    assert str(record.scope) in decision.explain()
    assert session.allowed_tools() == frozenset()


def test_an_invalidation_stops_only_its_own_tenant_and_user(backend: Backend) -> None:
    """Offboarding u-7 of acme leaves u-7 of another tenant and another user of acme running."""
    here = backend.open()
    guard = backend.guard(here)
    target, namesake, colleague = start(guard), start(guard, tenant="globex"), start(guard, user="u-8")
    backend.open().invalidate(Scope.user("acme", "u-7"), reason="offboarded", by="hr")
    sync(here)
    assert target.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,)
    assert namesake.check(LOOKUP).allowed
    assert colleague.check(LOOKUP).allowed


def test_sessions_started_after_an_invalidation_are_live(backend: Backend) -> None:
    """Epochs stop the sessions that started before the invalidation, not those started after it."""
    here = backend.open()
    guard = backend.guard(here)
    before = start(guard)
    backend.open().invalidate(Scope.user("acme", "u-7"), reason="password reset", by="idp")
    sync(here)
    after = start(guard)
    assert not before.check(LOOKUP).allowed
    assert after.check(LOOKUP).allowed


def test_the_invalidating_process_sees_it_at_once(backend: Backend) -> None:
    """The registry that wrote an invalidation applies it to its own sessions without a poll."""
    registry = backend.open()
    session = start(backend.guard(registry))
    registry.invalidate(Scope.session("acme", session.id), reason="stop", by="ops")
    assert session.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,)


def test_epochs_only_rise_and_records_say_who_and_why(backend: Backend) -> None:
    """Each invalidation of a scope gets a higher epoch and a later sequence number, and keeps
    who asked and why."""
    registry = backend.open()
    scope = Scope.user("acme", "u-7")
    first = registry.invalidate(scope, reason="one", by="a")
    second = backend.open().invalidate(scope, reason="two", by="b")
    assert second.epoch > first.epoch
    assert second.seq > first.seq
    assert (second.by, second.reason, second.scope) == ("b", "two", scope)


def test_revocation_is_permanent(backend: Backend) -> None:
    """Once revoked, a session stays revoked with its first reason: later invalidations, polls,
    time and a local revoke change nothing."""
    here = backend.open()
    session = start(backend.guard(here))
    elsewhere = backend.open()
    elsewhere.invalidate(Scope.agent("acme", "support-bot"), reason="agent compromised", by="secops")
    sync(here)
    first = session.check(LOOKUP)
    elsewhere.invalidate(Scope.of_tenant("acme"), reason="tenant downgraded", by="billing")
    backend.clock.advance(seconds=1)
    sync(here)
    session.revoke("also revoked here")
    again = session.check(LOOKUP)
    assert again.codes == first.codes == (ReasonCode.SESSION_REVOKED,)
    assert "agent compromised" in again.explain()
    assert session.revoked is not None
    assert "agent compromised" in session.revoked


def test_the_revoked_property_sees_a_registry_revocation_before_any_call(backend: Backend) -> None:
    """session.revoked reports a registry revocation once the registry knows of it."""
    registry = backend.open()
    session = start(backend.guard(registry))
    registry.invalidate(Scope.session("acme", session.id), reason="ticket 42", by="ops")
    assert session.revoked is not None
    assert "ticket 42" in session.revoked


def test_invalidate_refuses_what_it_cannot_record(backend: Backend) -> None:
    """invalidate() needs a Scope, a reason sentence and who asked; otherwise nothing is written."""
    registry = backend.open()
    with pytest.raises(ig.ConfigurationError, match="Scope"):
        registry.invalidate(("user", "acme", "u-7"), reason="x", by="y")  # type: ignore[arg-type]
    with pytest.raises(ig.ConfigurationError, match="reason"):
        registry.invalidate(Scope.user("acme", "u-7"), reason=" ", by="hr")
    with pytest.raises(ig.ConfigurationError, match="by"):
        registry.invalidate(Scope.user("acme", "u-7"), reason="offboarded", by="")


def test_caep_session_revoked_stops_the_subject(backend: Backend) -> None:
    """A CAEP session-revoked SET about a user (email subject) stops that user's sessions."""
    here = backend.open()
    session = start(backend.guard(here), user="ann@example.com")
    event = {
        "iss": "https://idp.example.com/",
        "jti": "set-1",
        "sub_id": {"format": "email", "email": "ann@example.com"},
        "events": {
            "https://schemas.openid.net/secevent/caep/event-type/session-revoked": {
                "initiating_entity": "policy",
                "reason_admin": {"en": "Landspeed policy violation"},
            }
        },
    }
    applied = backend.open().apply_caep(event, tenant="acme")  # type: ignore[attr-defined]
    sync(here)
    assert [record.scope for record in applied] == [Scope.user("acme", "ann@example.com")]
    decision = session.check(LOOKUP)
    assert decision.codes == (ReasonCode.SESSION_REVOKED,)
    assert "Landspeed policy violation" in decision.explain()
    assert "https://idp.example.com/" in decision.explain()


def test_a_closed_guard_closes_the_registry_it_opened(backend: Backend) -> None:
    """guard.close() closes a registry it opened from a URL, never one it was handed."""
    handed = backend.open()
    guard = backend.guard(handed)
    guard.close()
    assert start(backend.guard(handed)).check(LOOKUP).allowed


def test_scopes_include_every_hop_above_a_delegated_session() -> None:
    """A session delegated from others belongs to the session and agent scopes of every hop above it."""
    schema = SimpleNamespace(name="refund_request")
    principal = ig.Principal(user="u-7", tenant="acme")
    chain = ig.DelegationChain.start(principal, ig.AgentIdentity(id="bot"), "root")
    chain = chain.extend(ig.AgentIdentity(id="helper"), "middle").extend(ig.AgentIdentity(id="helper"), "leaf")
    leaf = SimpleNamespace(
        id="leaf",
        chain=chain,
        principal=principal,
        agent=ig.AgentIdentity(id="helper"),
        intent=SimpleNamespace(schema=schema),
    )
    scopes = scopes_of(leaf)
    assert [scope for scope in scopes if scope.kind is ScopeKind.SESSION] == [
        Scope.session("acme", name) for name in ("root", "middle", "leaf")
    ]
    assert [scope for scope in scopes if scope.kind is ScopeKind.AGENT] == [
        Scope.agent("acme", "bot"),
        Scope.agent("acme", "helper"),
    ]
    assert {scope.kind for scope in scopes} == set(ScopeKind)
    assert len(scopes) == len(set(scopes)) == 8


def test_a_delegated_session_counts_from_its_roots_start(backend: Backend) -> None:
    """An invalidation after the root started, not yet seen here, still refuses a delegation made now;
    one from before the root started does not."""
    here = backend.open()
    guard = backend.guard(here)
    backend.open().invalidate(Scope.agent("acme", "helper"), reason="an old incident", by="secops")
    backend.clock.advance(seconds=1)
    root = start(guard)
    assert root.delegate(ig.AgentIdentity(id="helper")).check(LOOKUP).allowed
    backend.clock.advance(seconds=1)
    backend.open().invalidate(Scope.agent("acme", "helper"), reason="the helper leaked data", by="secops")
    with pytest.raises(ig.Denied) as denied:
        root.delegate(ig.AgentIdentity(id="helper"))
    assert denied.value.decision.codes == (ReasonCode.SESSION_REVOKED,)
    assert "the helper leaked data" in str(denied.value)
    assert root.check(LOOKUP).allowed  # the root's own agent was not invalidated


def test_revoking_a_session_reaches_its_children_through_the_registry(backend: Backend) -> None:
    """session.revoke() writes the session's scope: the child as another process holds it is revoked after a poll."""
    here, there = backend.open(), backend.open()
    root = start(backend.guard(here))
    child = root.delegate(ig.AgentIdentity(id="helper"))
    # The child as another process holds it (what guard.resume builds there from its tokens):
    elsewhere = ig.Session(
        backend.guard(there),
        child.id,
        child.intent,
        child.grant,
        principal=child.principal,
        agent=child.agent,
        chain=child.chain,
    )
    assert elsewhere.check(LOOKUP).allowed
    backend.clock.advance(seconds=1)
    root.revoke("the user logged out", by="ann")
    assert child.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,)
    assert "its parent session" in (child.revoked or "")  # here: at once, not through the registry
    sync(there)
    assert elsewhere.check(LOOKUP).codes == (ReasonCode.SESSION_REVOKED,)
    assert f"ann invalidated session {root.id!r}" in (elsewhere.revoked or "")


def test_a_key_is_claimed_once_across_registries(backend: Backend) -> None:
    """claim_once holds across registries of one backend until the claim expires."""
    first, second = backend.open(), backend.open()
    key = f"jti-{uuid.uuid4().hex}"
    now = backend.clock()
    assert first.claim_once(key, until=now + 60)
    assert not second.claim_once(key, until=now + 60)
    assert not first.claim_once(key, until=now + 60)
    assert second.claim_once(key + "-other", until=now + 60)
    with pytest.raises(ig.ConfigurationError, match="non-empty key"):
        first.claim_once("", until=now + 60)


def test_a_claim_expires_with_its_token(backend: Backend) -> None:
    """After ``until`` the key can be claimed again (Redis expires it on the server: waited for, bounded)."""
    registry = backend.open()
    key = f"jti-{uuid.uuid4().hex}"
    assert registry.claim_once(key, until=backend.clock() + 0.001)
    backend.clock.advance(seconds=1)
    deadline = time.monotonic() + 10
    while not registry.claim_once(key, until=backend.clock() + 60):
        assert backend.name == "redis"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not registry.claim_once(key, until=backend.clock() + 60)


def test_scope_values_are_checked_and_round_trip() -> None:
    """Scopes refuse bad ids, print for people and survive their backend key."""
    scope = Scope.user("acme", "u-7")
    assert Scope.from_key(scope.key) == scope
    assert str(scope) == "user 'u-7' of tenant 'acme'"
    assert str(Scope.of_tenant("acme")) == "tenant 'acme'"
    with pytest.raises(ig.ConfigurationError):
        Scope.user("acme", "")
    with pytest.raises(ig.ConfigurationError):
        Scope(ScopeKind.TENANT, "acme", "u-7")
    with pytest.raises(ig.ConfigurationError):
        Scope("user", "acme", "u-7")  # type: ignore[arg-type]


_SCOPES = st.sampled_from(
    [
        Scope.user("acme", "u-7"),
        Scope.user("acme", "u-8"),
        Scope.user("globex", "u-7"),
        Scope.of_tenant("acme"),
        Scope.of_tenant("globex"),
        Scope.agent("acme", "support-bot"),
        Scope.intent("acme", "refund_request"),
    ]
)
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("invalidate"), _SCOPES),
        st.tuples(st.just("start"), st.sampled_from(["u-7", "u-8"])),
        st.tuples(st.just("advance"), st.integers(min_value=1, max_value=600)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS)
def test_property_revocation_is_permanent(ops: list[tuple[str, object]]) -> None:
    """For any sequence of invalidations, new sessions and time passing, a session once denied
    SESSION_REVOKED is denied on every later call, and a session is revoked exactly when a scope
    it belongs to was invalidated after it started."""
    clock = FrozenClock()
    registry = ig.MemoryRegistry(clock=clock)
    guard = ig.Guard(schemas=[REFUND], clock=clock, ids=sequential_ids(), registry=registry)
    sessions: list[tuple[ig.Session, list[Scope]]] = [(start(guard), [])]
    revoked: set[str] = set()
    for op, arg in ops:
        if op == "invalidate":
            assert isinstance(arg, Scope)
            registry.invalidate(arg, reason="r", by="b")
            for session, hits in sessions:
                if arg in scopes_of(session):
                    hits.append(arg)
        elif op == "start":
            sessions.append((start(guard, user=str(arg)), []))
        else:
            clock.advance(seconds=float(str(arg)))
        for session, hits in sessions:
            denied = session.check(ig.ToolCall("search_kb", {"query": "refund policy"})).codes
            if session.id in revoked:
                assert denied
                assert denied[0] is ReasonCode.SESSION_REVOKED
            if denied and denied[0] is ReasonCode.SESSION_REVOKED:
                revoked.add(session.id)
            assert (session.id in revoked) == bool(hits)
    guard.close()


def test_urls_open_the_right_registry(tmp_path: Path, clock: FrozenClock, redis_url: str) -> None:
    """memory:, sqlite:/// and redis:// URLs open their backend with the given options; the
    guard owns (and closes) what it opened."""
    memory, owned = open_registry("memory:", clock=clock)
    assert isinstance(memory, ig.MemoryRegistry)
    assert owned
    sqlite, _ = open_registry(f"sqlite:///{tmp_path}/r.db?poll_interval=0.5&max_staleness=3", clock=clock)
    assert isinstance(sqlite, ig.SQLiteRegistry)
    assert (sqlite.path, sqlite.poll_interval, sqlite.max_staleness) == (Path(f"{tmp_path}/r.db"), 0.5, 3.0)
    redis, _ = open_registry(f"{redis_url}?prefix=p1:&max_staleness=5", clock=clock)
    assert isinstance(redis, ig.RedisRegistry)
    assert redis.channel == "p1:invalidations"
    assert redis.max_staleness == 5.0
    for registry in (memory, sqlite, redis):
        registry.close()
    handed = ig.MemoryRegistry(clock=clock)
    assert open_registry(handed, clock=clock) == (handed, False)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("postgres://db/1", "unknown scheme"),
        ("memory:?colour=red", "unknown options"),
        ("sqlite:///r.db?poll_interval=soon", "not a number"),
        ("sqlite:///", "names no file"),
        ("memory:?max_staleness=2", "unknown options"),
        ("sqlite:///r.db?max_staleness=0", "positive number"),
        ("sqlite:///r.db?max_staleness=1&poll_interval=2", "must exceed"),
    ],
)
def test_bad_registry_urls_are_configuration_errors(url: str, match: str, clock: FrozenClock) -> None:
    """A registry URL that cannot be read is an error naming what to fix, never a default."""
    with pytest.raises(ig.ConfigurationError, match=match):
        open_registry(url, clock=clock)


def test_the_guard_reads_the_environment_when_given_no_registry(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without registry=, INTENTGUARD_REGISTRY chooses the backend; without either, memory."""
    monkeypatch.setenv("INTENTGUARD_REGISTRY", f"sqlite:///{tmp_path}/env.db")
    with ig.Guard(schemas=[REFUND], clock=clock) as guard:
        assert isinstance(guard.registry, ig.SQLiteRegistry)
    monkeypatch.delenv("INTENTGUARD_REGISTRY")
    with ig.Guard(schemas=[REFUND], clock=clock) as guard:
        assert isinstance(guard.registry, ig.MemoryRegistry)


def test_a_registry_must_keep_the_guards_time(clock: FrozenClock) -> None:
    """A registry on another clock than the guard's is refused: staleness would be misjudged."""
    with pytest.raises(ig.ConfigurationError, match="clock"):
        ig.Guard(schemas=[REFUND], clock=clock, registry=ig.MemoryRegistry())
    with pytest.raises(ig.ConfigurationError, match="neither a registry nor a URL"):
        ig.Guard(schemas=[REFUND], clock=clock, registry=42)  # type: ignore[arg-type]
    with ig.Guard(schemas=[REFUND], registry=ig.MemoryRegistry()) as guard:
        assert isinstance(guard.registry, ig.MemoryRegistry)


def test_records_round_trip_and_registries_are_context_managers(clock: FrozenClock) -> None:
    """An invalidation record survives its JSON form; a registry closes at the end of a with block."""
    with ig.MemoryRegistry(clock=clock) as registry:
        record = registry.invalidate(Scope.user("acme", "u-7"), reason="offboarded", by="hr")
        assert ig.Invalidation.from_json(record.to_json()) == record
    assert "1 invalidated scope" in repr(registry)
    with pytest.raises(AttributeError, match="NoSuchRegistry"):
        ig.registry.NoSuchRegistry  # type: ignore[attr-defined]  # noqa: B018
