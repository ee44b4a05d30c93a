"""Resuming elsewhere: a session rebuilt from its hop tokens re-validates everything, trusting nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import intentguard as ig
from intentguard.decision import ReasonCode
from intentguard.registry import Scope
from intentguard.testing import FrozenClock, TenantDirectory, sequential_ids

from .identity_schemas import PARAMS, crm_schema

ROOT = Path(__file__).resolve().parent.parent
ACME = ig.Principal(user="u-7", tenant="acme", auth_event="login-42")
BOT = ig.AgentIdentity(id="support-bot")
JOB = ig.AgentIdentity(id="nightly-job")
LONG = {"ttl": "PT12H", "decay": [{"after": "PT4H", "drop": "high"}]}


def read(tenant: str = "acme") -> ig.ToolCall:
    return ig.ToolCall("read_record", {"tenant_id": tenant, "record_id": "R-1"})


@pytest.fixture
def keys() -> ig.MemoryKeyStore:
    store = ig.MemoryKeyStore()
    store.generate("acme")
    return store


@pytest.fixture
def origin(clock: FrozenClock, keys: ig.MemoryKeyStore) -> ig.Guard:
    with ig.Guard(schemas=[crm_schema(**LONG)], clock=clock, ids=sequential_ids("o"), keys=keys) as guard:
        yield guard


@pytest.fixture
def job(origin: ig.Guard) -> ig.Session:
    root = origin.start("crm_update", PARAMS, principal=ACME, agent=BOT)
    root.check(read())
    return root.delegate(
        JOB, tools=["read_record", "update_record"], args={"read_record": {"record_id": {"prefix": "R-"}}}
    )


def elsewhere(clock: FrozenClock, keys: ig.MemoryKeyStore, **options: object) -> ig.Guard:
    """Another guard, as another process would build it, sharing only the keys."""
    return ig.Guard(schemas=[crm_schema(**LONG)], clock=clock, ids=sequential_ids("e"), keys=keys, **options)  # type: ignore[arg-type]


def test_a_resumed_session_is_the_delegated_session(
    job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock
) -> None:
    """The resumed session has the child's id, chain, grant, budgets and added constraints."""
    with elsewhere(clock, keys) as guard:
        resumed = guard.resume(job.tokens, tenant="acme")
        assert (resumed.id, resumed.root_id, resumed.depth) == (job.id, job.root_id, 1)
        assert resumed.chain.actors == ("u-7", "support-bot", "nightly-job")
        assert resumed.root_auth == "login-42"
        assert set(resumed.grant.tools) == set(job.grant.tools) == {"read_record", "update_record"}
        assert resumed.grant.tools["read_record"].max_calls == 4
        assert resumed.grant.expires_at == job.grant.expires_at
        assert resumed.grant.decay == job.grant.decay
        assert resumed.check(read()).allowed
        other = ig.ToolCall("read_record", {"tenant_id": "acme", "record_id": "X-1"})
        assert resumed.check(other).codes == (ReasonCode.ARG_CONSTRAINT,)
        assert resumed.tokens == job.tokens
        grandchild = resumed.delegate(ig.AgentIdentity(id="helper"))
        assert ig.verify_chain(grandchild.tokens, keys, now=clock()).ok
        assert grandchild.chain.sessions == (job.root_id, job.id, grandchild.id)


@pytest.mark.parametrize(
    "scope_of",
    [
        lambda job: Scope.session("acme", job.root_id),
        lambda job: Scope.session("acme", job.id),
        lambda job: Scope.agent("acme", "support-bot"),
        lambda job: Scope.agent("acme", "nightly-job"),
        lambda job: Scope.user("acme", "u-7"),
        lambda job: Scope.of_tenant("acme"),
        lambda job: Scope.intent("acme", "crm_update"),
    ],
    ids=["root-session", "own-session", "root-agent", "own-agent", "user", "tenant", "intent"],
)
def test_resume_refuses_a_chain_invalidated_since_its_root_started(
    job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock, tmp_path: Path, scope_of: Callable[[Any], Scope]
) -> None:
    """An invalidation of any scope of the chain after its root started, before the resume, refuses the resume."""
    clock.advance(minutes=10)
    with ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock) as admin:
        admin.invalidate(scope_of(job), reason="ann was offboarded", by="hr-system")
    clock.advance(hours=1)
    registry = ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock)
    with registry, elsewhere(clock, keys, registry=registry) as guard, pytest.raises(ig.Denied) as denied:
        guard.resume(job.tokens, tenant="acme")
    assert denied.value.decision.codes == (ReasonCode.SESSION_REVOKED,)
    assert "hr-system invalidated" in str(denied.value)
    assert "ann was offboarded" in str(denied.value)


def test_an_invalidation_before_the_root_started_does_not_refuse_it(
    job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock, tmp_path: Path
) -> None:
    """A user offboarded (and back) before the chain's root started does not stop the chain; nor does another user's."""
    with ig.SQLiteRegistry(tmp_path / "registry.db", clock=FrozenClock(clock() - 3600)) as admin:
        admin.invalidate(Scope.user("acme", "u-7"), reason="old offboarding", by="hr-system")
    clock.advance(minutes=10)
    with ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock) as admin:
        admin.invalidate(Scope.user("acme", "u-8"), reason="another user", by="hr-system")
    registry = ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock)
    with registry, elsewhere(clock, keys, registry=registry) as guard:
        assert guard.resume(job.tokens, tenant="acme").check(read()).allowed


def test_resume_rechecks_the_tenant_and_the_user(job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock) -> None:
    """A deactivated user's chain is refused at resume with TENANT_CONTEXT."""
    directory = TenantDirectory({"acme": None})
    directory.inactive_users.add(("acme", "u-7"))
    with elsewhere(clock, keys, tenants=directory) as guard, pytest.raises(ig.Denied, match="user 'u-7' is no longer"):
        guard.resume(job.tokens, tenant="acme")


def test_resume_rechecks_the_intent(job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock) -> None:
    """A guard whose schema moved to another version, or lacks the intent, refuses the chain."""
    newer = ig.Guard(schemas=[crm_schema(version="2.0", **LONG)], clock=clock, keys=keys)
    with newer, pytest.raises(ig.Denied, match=r"the token names '1\.0'"):
        newer.resume(job.tokens, tenant="acme")
    other = ig.Guard(schemas=[crm_schema(name="other", **LONG)], clock=clock, keys=keys)
    with other, pytest.raises(ig.Denied, match="unknown intent 'crm_update'"):
        other.resume(job.tokens, tenant="acme")


BACKGROUND_JOB = """
import json, sys
import intentguard as ig
from intentguard.testing import FrozenClock
from tests.identity_schemas import PARAMS, crm_schema

work = json.load(open(sys.argv[1]))
guard = ig.Guard(
    schemas=[crm_schema(ttl="PT12H", decay=[{"after": "PT4H", "drop": "high"}])],
    clock=FrozenClock(work["now"]),
    keys=ig.MemoryKeyStore.load(work["keys"]),
    registry=work["registry"],
)
with guard:
    try:
        session = guard.resume(work["tokens"], tenant=work["tenant"])
    except ig.Denied as denied:
        print(json.dumps({"resumed": False, "codes": list(denied.decision.codes), "why": denied.decision.explain()}))
        sys.exit(0)
    call = ig.ToolCall("read_record", {"tenant_id": "acme", "record_id": "R-1"})
    update = ig.ToolCall("update_record", {"tenant_id": "acme", "record_id": "R-1", "status": "closed"})
    print(json.dumps({"resumed": True, "depth": session.depth, "root": session.root_id,
                      "read": session.check(call).effect.name, "update": list(session.check(update).codes)}))
"""


def run_job(tmp_path: Path, job: ig.Session, keys: ig.MemoryKeyStore, now: float, **work: object) -> dict[str, object]:
    keys.save(tmp_path / "public-keys.json")  # the job's process gets public keys only
    spec = {"tokens": list(job.tokens), "keys": str(tmp_path / "public-keys.json"), "now": now}
    spec.update({"tenant": "acme", "registry": "memory:"}, **work)
    (tmp_path / "work.json").write_text(json.dumps(spec))
    result = subprocess.run(
        [sys.executable, "-c", BACKGROUND_JOB, str(tmp_path / "work.json")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.stderr == ""
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_background_job_resumes_hours_later_in_another_process(
    tmp_path: Path, job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock
) -> None:
    """Hours later another process resumes the job from its tokens; decay has removed the high-privilege tool."""
    early = run_job(tmp_path, job, keys, clock() + 2 * 3600)
    assert early == {"resumed": True, "depth": 1, "root": job.root_id, "read": "ALLOW", "update": []}
    late = run_job(tmp_path, job, keys, clock() + 5 * 3600)
    assert late == {"resumed": True, "depth": 1, "root": job.root_id, "read": "ALLOW", "update": ["TOOL_DECAYED"]}


def test_the_other_process_trusts_nothing_from_spawn_time(
    tmp_path: Path, job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock
) -> None:
    """In the other process: wrong tenant, revocation (in the shared registry) and expiry are each refused."""
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    beta = run_job(tmp_path, job, keys, clock() + 3600, tenant="beta", registry=registry)
    assert beta["codes"] == ["TENANT_MISMATCH"]
    clock.advance(minutes=5)
    with ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock) as admin:
        admin.invalidate(Scope.session("acme", job.id), reason="job cancelled by ann", by="ann")
    revoked = run_job(tmp_path, job, keys, clock() + 3600, registry=registry)
    assert revoked["codes"] == ["SESSION_REVOKED"]
    assert "ann invalidated session" in revoked["why"]  # type: ignore[operator]
    assert "job cancelled by ann" in revoked["why"]  # type: ignore[operator]
    expired = run_job(tmp_path, job, keys, clock() + 7 * 3600)
    assert expired["codes"] == ["GRANT_EXPIRED"]


@pytest.fixture(params=["sqlite", "redis"])
def shared_registry(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a registry every process of the test shares: an SQLite file, or a real redis-server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return f"{request.getfixturevalue('redis_url')}?prefix=resume-{uuid.uuid4().hex}:"


def test_a_hop_resumed_in_one_process_is_a_replay_in_another(
    tmp_path: Path, job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock, shared_registry: str
) -> None:
    """Processes sharing a registry resume a hop token once: the second process is refused TOKEN_INVALID (a replay)."""
    first = run_job(tmp_path, job, keys, clock() + 60, registry=shared_registry)
    assert first["resumed"] is True
    second = run_job(tmp_path, job, keys, clock() + 120, registry=shared_registry)
    assert second["codes"] == ["TOKEN_INVALID"]
    assert f"hop token {claims_jti(job.tokens[-1])!r} was already resumed (a replay" in second["why"]  # type: ignore[operator]
    child = job.delegate(ig.AgentIdentity(id="helper"))  # a fresh hop of the same chain resumes
    fresh = run_job(tmp_path, child, keys, clock() + 180, registry=shared_registry)
    assert fresh["resumed"] is True


def test_a_refused_resume_leaves_the_token_unused(
    job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock, tmp_path: Path
) -> None:
    """A resume refused for another reason (a user deactivated for a while) does not spend the token."""
    directory = TenantDirectory({"acme": None})
    directory.inactive_users.add(("acme", "u-7"))
    registry = ig.SQLiteRegistry(tmp_path / "registry.db", clock=clock)
    with registry, elsewhere(clock, keys, registry=registry, tenants=directory) as guard:
        with pytest.raises(ig.Denied, match="no longer"):
            guard.resume(job.tokens, tenant="acme")
        directory.inactive_users.clear()
        clock.advance(minutes=1)
        assert guard.resume(job.tokens, tenant="acme").check(read()).allowed


def claims_jti(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


WORKER = """
import json, sys, time
import intentguard as ig
from intentguard.testing import FrozenClock, sequential_ids
from tests.identity_schemas import crm_schema

work = json.load(open(sys.argv[1]))
with ig.Guard(
    schemas=[crm_schema(ttl="PT12H", decay=[{"after": "PT4H", "drop": "high"}])],
    clock=FrozenClock(work["now"]),
    ids=sequential_ids("w"),
    keys=ig.MemoryKeyStore.load(work["keys"]),
    registry=work["registry"],
) as guard:
    resumed = guard.resume(work["tokens"], tenant="acme")
    helper = resumed.delegate(ig.AgentIdentity(id="helper"))
    call = ig.ToolCall("read_record", {"tenant_id": "acme", "record_id": "R-1"})
    print(json.dumps({"before": [resumed.check(call).effect.name, helper.check(call).effect.name]}), flush=True)
    sys.stdin.readline()  # the other process has revoked the session by now
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (resumed.revoked is None or helper.revoked is None):
        time.sleep(0.01)
    after = [resumed.check(call), helper.check(call)]
    print(json.dumps({"codes": [list(d.codes) for d in after], "why": [d.explain() for d in after]}), flush=True)
"""


def read_line(worker: subprocess.Popen[str]) -> Any:
    """The worker's next JSON line; if it died instead, fail with what it printed on stderr."""
    assert worker.stdout is not None
    assert worker.stderr is not None
    line = worker.stdout.readline()
    if not line:
        worker.wait(timeout=60)
        pytest.fail(f"the worker exited {worker.returncode}: {worker.stderr.read()}")
    return json.loads(line)


def test_revoking_a_session_stops_its_subtree_in_another_process(
    tmp_path: Path, keys: ig.MemoryKeyStore, clock: FrozenClock
) -> None:
    """session.revoke() here denies the session resumed in another process and the child it delegated there;
    the session above the revoked one keeps running."""
    path = tmp_path / "registry.db"
    keys.save(tmp_path / "keys.json", private=True)  # the worker delegates, so it signs
    registry = ig.SQLiteRegistry(path, clock=clock)
    with (
        registry,
        ig.Guard(
            schemas=[crm_schema(**LONG)], clock=clock, ids=sequential_ids("o"), keys=keys, registry=registry
        ) as guard,
    ):
        root = guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
        job = root.delegate(JOB)
        spec = {"tokens": list(job.tokens), "keys": str(tmp_path / "keys.json"), "now": clock() + 60}
        (tmp_path / "work.json").write_text(json.dumps({**spec, "registry": f"sqlite:///{path}"}))
        with subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / "work.json")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        ) as worker:
            try:
                assert worker.stdout is not None
                assert worker.stdin is not None
                assert read_line(worker) == {"before": ["ALLOW", "ALLOW"]}
                clock.advance(minutes=2)
                job.revoke("the nightly job was cancelled", by="ann")
                worker.stdin.write("revoked\n")
                worker.stdin.flush()
                result = read_line(worker)
                assert worker.wait(timeout=60) == 0
            finally:
                worker.kill()
        assert result["codes"] == [["SESSION_REVOKED"], ["SESSION_REVOKED"]]
        for why in result["why"]:
            assert f"ann invalidated session {job.id!r} of tenant 'acme'" in why
            assert "the nightly job was cancelled" in why
        assert job.check(read()).codes == (ReasonCode.SESSION_REVOKED,)
        assert root.check(read()).allowed


def test_a_delegated_chain_cannot_resume_its_ancestors(
    keys: ig.MemoryKeyStore, clock: FrozenClock, tmp_path: Path
) -> None:
    """Whoever holds a child's chain cannot resume a prefix of it to act with the parent's wider grant."""
    path = tmp_path / "registry.db"
    with ig.SQLiteRegistry(path, clock=clock) as here, ig.SQLiteRegistry(path, clock=clock) as there:
        schemas = [crm_schema(**LONG)]
        with ig.Guard(schemas=schemas, clock=clock, ids=sequential_ids("o"), keys=keys, registry=here) as origin:
            root = origin.start("crm_update", PARAMS, principal=ACME, agent=BOT)
            reader = root.delegate(JOB, tools=["read_record"])
        with elsewhere(clock, keys, registry=there) as guard:
            with pytest.raises(ig.Denied) as denied:
                guard.resume(reader.tokens[:1], tenant="acme")
            assert denied.value.decision.codes == (ReasonCode.TOKEN_INVALID,)
            assert set(guard.resume(reader.tokens, tenant="acme").grant.tools) == {"read_record"}
