"""Resuming elsewhere: a session rebuilt from its hop tokens re-validates everything, trusting nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import intentguard as ig
from intentguard.decision import ReasonCode
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


def test_resume_rechecks_revocation_of_every_hop(job: ig.Session, keys: ig.MemoryKeyStore, clock: FrozenClock) -> None:
    """A chain whose root was revoked anywhere cannot be resumed."""
    revoked = {job.root_id: "the user logged out"}
    with elsewhere(clock, keys, revocations=revoked.get) as guard, pytest.raises(ig.Denied) as denied:
        guard.resume(job.tokens, tenant="acme")
    assert denied.value.decision.codes == (ReasonCode.SESSION_REVOKED,)
    assert "the user logged out" in str(denied.value)


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
revoked = work["revoked"]
guard = ig.Guard(
    schemas=[crm_schema(ttl="PT12H", decay=[{"after": "PT4H", "drop": "high"}])],
    clock=FrozenClock(work["now"]),
    keys=ig.MemoryKeyStore.load(work["keys"]),
    revocations=revoked.get,
)
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
    spec.update({"tenant": "acme", "revoked": {}}, **work)
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
    """In the other process: wrong tenant, revocation and expiry are each refused with their own reason."""
    beta = run_job(tmp_path, job, keys, clock() + 3600, tenant="beta")
    assert beta["codes"] == ["TENANT_MISMATCH"]
    revoked = run_job(tmp_path, job, keys, clock() + 3600, revoked={job.id: "job cancelled by ann"})
    assert revoked["codes"] == ["SESSION_REVOKED"]
    assert "job cancelled by ann" in revoked["why"]  # type: ignore[operator]
    expired = run_job(tmp_path, job, keys, clock() + 7 * 3600)
    assert expired["codes"] == ["GRANT_EXPIRED"]
