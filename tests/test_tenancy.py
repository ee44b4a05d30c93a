"""The tenant boundary on every call: resources of other tenants, tenant state, plan downgrades."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import intentguard as ig
from intentguard.decision import ReasonCode
from intentguard.tenancy import TenantCache
from intentguard.testing import FrozenClock, TenantDirectory, sequential_ids

from .identity_schemas import PARAMS, crm_schema

ACME = ig.Principal(user="u-7", tenant="acme", auth_event="login-42")
BOT = ig.AgentIdentity(id="support-bot")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def read(tenant: str = "acme") -> ig.ToolCall:
    return ig.ToolCall("read_record", {"tenant_id": tenant, "record_id": "R-1"})


EXPORT = ig.ToolCall("export_report", {})


@pytest.fixture
def directory() -> TenantDirectory:
    return TenantDirectory({"acme": {"exports"}, "beta": None})


@pytest.fixture
def tenant_guard(clock: FrozenClock, directory: TenantDirectory) -> ig.Guard:
    with ig.Guard(
        schemas=[crm_schema()], clock=clock, ids=sequential_ids("g"), tenants=directory, tenant_max_age="PT1M"
    ) as guard:
        yield guard


@pytest.fixture
def crm_session(tenant_guard: ig.Guard) -> ig.Session:
    return tenant_guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)


def test_another_tenants_record_is_a_tenant_mismatch(crm_session: ig.Session) -> None:
    """An argument that names another tenant's resource is denied with TENANT_MISMATCH, ours is allowed."""
    assert crm_session.check(read()).allowed
    decision = crm_session.check(read("beta"))
    assert decision.codes == (ReasonCode.TENANT_MISMATCH,)
    assert "names tenant 'beta', but this session acts for tenant 'acme'" in decision.explain()
    assert crm_session.check(ig.ToolCall("read_record", {"tenant_id": 7, "record_id": "R-1"})).codes == (
        ReasonCode.TENANT_MISMATCH,
    )


def test_tenant_arguments_are_checked_without_a_provider(clock: FrozenClock) -> None:
    """The resource check needs no tenant provider: it compares with the session's own tenant."""
    with ig.Guard(schemas=[crm_schema()], clock=clock) as guard:
        session = guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
        assert session.check(read()).allowed
        assert session.check(read("beta")).codes == (ReasonCode.TENANT_MISMATCH,)


def test_the_provider_is_asked_once_per_staleness_window(
    crm_session: ig.Session, directory: TenantDirectory, clock: FrozenClock
) -> None:
    """Within tenant_max_age the cached answer serves every call; past it the provider is asked again."""
    for _ in range(4):
        assert crm_session.check(ig.ToolCall("search_notes", {"query": "x"})).allowed
    assert directory.lookups == 1
    clock.advance(seconds=61)
    assert crm_session.check(ig.ToolCall("search_notes", {"query": "x"})).allowed
    assert directory.lookups == 2


def test_a_suspended_tenant_stops_within_the_bound(
    crm_session: ig.Session, directory: TenantDirectory, clock: FrozenClock
) -> None:
    """Suspending the tenant denies its agents' calls with TENANT_CONTEXT once the cached answer is stale."""
    assert crm_session.check(read()).allowed
    directory.suspended.add("acme")
    clock.advance(seconds=61)
    decision = crm_session.check(read())
    assert decision.codes == (ReasonCode.TENANT_CONTEXT,)
    assert "tenant 'acme' is not active" in decision.explain()


def test_a_deactivated_user_stops_their_agents(
    tenant_guard: ig.Guard, crm_session: ig.Session, directory: TenantDirectory, clock: FrozenClock
) -> None:
    """When the user is deactivated, invalidating the cache stops their agents at the next re-validation."""
    assert crm_session.check(read()).allowed
    directory.inactive_users.add(("acme", "u-7"))
    tenant_guard.tenancy.invalidate("acme")  # type: ignore[union-attr]
    clock.advance(seconds=61)
    assert "user 'u-7' is no longer active in tenant 'acme'" in crm_session.check(read()).explain()


def test_an_unreachable_provider_past_the_bound_fails_closed(
    crm_session: ig.Session, directory: TenantDirectory, clock: FrozenClock
) -> None:
    """Within the bound the last answer serves; past it an unreachable provider is a DENY, until it answers."""
    assert crm_session.check(read()).allowed
    directory.down = True
    clock.advance(seconds=30)
    assert crm_session.check(read()).allowed
    clock.advance(seconds=31)
    decision = crm_session.check(read())
    assert decision.codes == (ReasonCode.TENANT_CONTEXT,)
    assert "could not be confirmed (ConnectionError: tenant directory unreachable)" in decision.explain()
    assert "older than 1 min" in decision.explain()
    directory.down = False
    assert crm_session.check(read()).allowed


def test_a_provider_that_answers_garbage_fails_closed(clock: FrozenClock) -> None:
    """A provider that returns anything but a TenantContext is treated as unreachable."""
    with ig.Guard(schemas=[crm_schema()], clock=clock, tenants=lambda tenant, user: True) as guard:  # type: ignore[arg-type,return-value]
        session = guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
        assert "returned bool, not a TenantContext" in session.check(read()).explain()


def test_a_downgrade_removes_the_feature_tools_from_live_grants(
    tenant_guard: ig.Guard, crm_session: ig.Session, directory: TenantDirectory, clock: FrozenClock
) -> None:
    """When the plan loses a feature, its tools leave every live grant of the tenant, children included."""
    child = crm_session.delegate(ig.AgentIdentity(id="reporter"))
    assert "export_report" in crm_session.allowed_tools()
    directory.features["acme"] = frozenset()
    clock.advance(seconds=61)
    decision = crm_session.check(EXPORT)
    assert decision.codes == (ReasonCode.TENANT_CONTEXT,)
    assert "needs plan feature 'exports', which tenant 'acme' no longer has" in decision.explain()
    assert "export_report" not in crm_session.allowed_tools()
    assert child.check(EXPORT).codes == (ReasonCode.TENANT_CONTEXT,)
    directory.features["acme"] = frozenset({"exports"})
    clock.advance(seconds=61)
    assert crm_session.check(EXPORT).codes == (ReasonCode.TENANT_CONTEXT,)  # grants only narrow


def test_an_unknown_tenant_is_not_active(tenant_guard: ig.Guard) -> None:
    """A session for a tenant the directory does not know is denied."""
    stranger = tenant_guard.start("crm_update", PARAMS, principal=ig.Principal(user="u-1", tenant="gamma"), agent=BOT)
    assert stranger.check(ig.ToolCall("search_notes", {"query": "x"})).codes == (ReasonCode.TENANT_CONTEXT,)


def test_the_cache_is_bounded(directory: TenantDirectory, clock: FrozenClock) -> None:
    """The cache keeps at most max_entries answers, dropping the oldest; invalidate() forgets them all."""
    bounded = TenantCache(directory, clock=clock, max_age=timedelta(minutes=1), max_entries=1)
    bounded.lookup("acme", "u-1", clock())
    bounded.lookup("acme", "u-2", clock())
    bounded.lookup("acme", "u-1", clock())
    assert directory.lookups == 3
    bounded.invalidate()
    bounded.lookup("acme", "u-1", clock())
    assert directory.lookups == 4


def test_multi_tenant_example() -> None:
    """The multi-tenant example shows an agent of tenant A denied tenant B's record with TENANT_MISMATCH."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "multi_tenant.py")], capture_output=True, text=True, check=True, timeout=60
    )
    assert "ALLOW  read_record(tenant_id='acme', record_id='R-1')" in result.stdout
    assert "DENY   read_record(tenant_id='globex', record_id='G-9')" in result.stdout
    assert "TENANT_MISMATCH: argument 'tenant_id' of tool 'read_record' names tenant 'globex'" in result.stdout
    assert result.stderr == ""
