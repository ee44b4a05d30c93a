"""Delegation: a child session's grant is a subset of its parent's, at depth + 1, with decay."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import intentguard as ig
from intentguard.decision import Effect, ReasonCode
from intentguard.schema import Confirm
from intentguard.testing import FrozenClock, capture_decisions, sequential_ids

from .identity_schemas import PARAMS, crm_schema

ACME = ig.Principal(user="u-7", tenant="acme", auth_event="login-42")
BOT = ig.AgentIdentity(id="support-bot")
HELPER = ig.AgentIdentity(id="researcher")
WORKER = ig.AgentIdentity(id="worker", version="2.1")


@pytest.fixture
def crm_guard(clock: FrozenClock) -> ig.Guard:
    with ig.Guard(schemas=[crm_schema()], clock=clock, ids=sequential_ids("s")) as guard:
        yield guard


@pytest.fixture
def root(crm_guard: ig.Guard) -> ig.Session:
    return crm_guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)


def read(tenant: str = "acme") -> ig.ToolCall:
    return ig.ToolCall("read_record", {"tenant_id": tenant, "record_id": "R-1"})


def test_a_child_is_one_hop_deeper_in_the_same_tree(root: ig.Session) -> None:
    """A child carries the root's id, depth + 1, the chain of actors and the root authorization event."""
    child = root.delegate(HELPER)
    grandchild = child.delegate(WORKER)
    assert (root.depth, child.depth, grandchild.depth) == (0, 1, 2)
    assert root.root_id == root.id
    assert child.root_id == grandchild.root_id == root.id
    assert grandchild.chain.actors == ("u-7", "support-bot", "researcher", "worker")
    assert grandchild.chain.parent_session == child.id
    assert grandchild.chain.sessions == (root.id, child.id, grandchild.id)
    assert grandchild.root_auth == "login-42"
    assert grandchild.principal == ACME
    assert root.chain.parent_session is None


def test_lifetime_shrinks_with_each_hop(root: ig.Session, clock: FrozenClock) -> None:
    """Each hop lives at most half (hop_ttl_factor) of its parent's remaining lifetime, or less if asked."""
    child = root.delegate(HELPER)
    assert child.grant.expires_at - clock() == pytest.approx(1800)
    grandchild = child.delegate(WORKER)
    assert grandchild.grant.expires_at - clock() == pytest.approx(900)
    short = root.delegate(HELPER, ttl="PT5M")
    assert short.grant.expires_at - clock() == pytest.approx(300)
    capped = root.delegate(HELPER, ttl="PT10H")
    assert capped.grant.expires_at == child.grant.expires_at


def test_beyond_max_depth_is_refused(root: ig.Session) -> None:
    """Delegating below max_depth is refused with DEPTH_EXCEEDED and a sentence naming the depths."""
    grandchild = root.delegate(HELPER).delegate(WORKER)
    with pytest.raises(ig.Denied) as denied:
        grandchild.delegate(ig.AgentIdentity(id="too-deep"))
    assert denied.value.decision.codes == (ReasonCode.DEPTH_EXCEEDED,)
    assert "allows 2 delegation hop(s); 'too-deep' would be at depth 3" in str(denied.value)


def test_no_delegation_when_the_schema_allows_none(clock: FrozenClock) -> None:
    """An intent with max_depth 0 refuses every delegation."""
    with ig.Guard(schemas=[crm_schema(max_depth=0)], clock=clock) as guard:
        session = guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
        with pytest.raises(ig.Denied, match=r"allows 0 delegation"):
            session.delegate(HELPER)


def test_budgets_are_what_the_parent_has_left(root: ig.Session) -> None:
    """A child gets at most the calls its parent has left, per tool and in all."""
    assert root.check(read()).allowed
    assert root.check(read()).allowed
    child = root.delegate(HELPER)
    assert child.grant.tools["read_record"].max_calls == 3
    assert child.grant.max_calls == 18
    with pytest.raises(ig.GrantWideningError, match="exceeds the 3 call"):
        root.delegate(HELPER, tool_max_calls={"read_record": 4})
    with pytest.raises(ig.GrantWideningError, match="exceeds the 18 call"):
        root.delegate(HELPER, max_calls=19)
    small = root.delegate(HELPER, tool_max_calls={"read_record": 1}, max_calls=2)
    assert small.check(read()).allowed
    assert small.check(read()).codes == (ReasonCode.BUDGET_EXHAUSTED,)


def test_a_child_cannot_ask_for_a_tool_its_parent_lacks(root: ig.Session) -> None:
    """Asking for a tool outside the parent's grant is a GrantWideningError, and so is a grandchild's."""
    child = root.delegate(HELPER, tools=["read_record", "search_notes"])
    assert set(child.grant.tools) == {"read_record", "search_notes"}
    with pytest.raises(ig.GrantWideningError, match="update_record"):
        child.delegate(WORKER, tools=["update_record"])
    with pytest.raises(ig.GrantWideningError, match="delete_all"):
        root.delegate(HELPER, tools=["delete_all"])


def test_a_tool_left_out_of_a_delegation_is_named_as_taken_out_not_as_outside_the_intent(root: ig.Session) -> None:
    """A child calling a tool of the intent it was not given hears that delegation took it out, not that the
    intent lacks it; a tool outside the intent still reads as outside it."""
    child = root.delegate(HELPER, tools=["read_record"])
    update = ig.ToolCall("update_record", {"tenant_id": "acme", "record_id": "R-1", "fields": {}})
    [reason] = child.check(update).reasons
    assert reason.code is ReasonCode.TOOL_NOT_IN_INTENT
    assert "was taken out of this session's grant" in reason.message
    [outside] = child.check(ig.ToolCall("delete_all", {})).reasons
    assert "is not in intent 'crm_update'" in outside.message


def test_extra_argument_constraints_bind_the_child_only(root: ig.Session) -> None:
    """Argument constraints added at delegation hold in the child and its children, not the parent."""
    child = root.delegate(HELPER, args={"search_notes": {"query": {"max_length": 5}}})
    long = ig.ToolCall("search_notes", {"query": "much too long"})
    assert child.check(long).codes == (ReasonCode.ARG_CONSTRAINT,)
    assert child.delegate(WORKER).check(long).codes == (ReasonCode.ARG_CONSTRAINT,)
    assert root.check(long).allowed


def test_high_privilege_tools_decay_at_the_same_age_in_children(root: ig.Session, clock: FrozenClock) -> None:
    """Decay counts from the root's start: a child made late loses its high-privilege tools when the root does."""
    clock.advance(minutes=20)
    child = root.delegate(HELPER, drop_high_privilege=False)
    assert "update_record" in child.allowed_tools()
    clock.advance(minutes=11)
    assert "update_record" not in child.allowed_tools()
    update = ig.ToolCall("update_record", {"tenant_id": "acme", "record_id": "R-1", "status": "open"})
    assert child.check(update).codes == (ReasonCode.TOOL_DECAYED,)
    with pytest.raises(ig.GrantWideningError, match="decayed"):
        root.delegate(HELPER, tools=["update_record"])
    assert "update_record" not in root.delegate(HELPER).grant.tools


def test_revoking_a_parent_stops_its_whole_subtree(root: ig.Session) -> None:
    """Revoking a session denies every later call of its children and grandchildren with SESSION_REVOKED."""
    child = root.delegate(HELPER)
    grandchild = child.delegate(WORKER)
    sibling = root.delegate(WORKER)
    child.revoke("the researcher went off task")
    assert grandchild.check(read()).codes == (ReasonCode.SESSION_REVOKED,)
    assert "parent session" in grandchild.revoked  # type: ignore[operator]
    assert sibling.check(read()).allowed
    root.revoke("the user logged out")
    assert sibling.check(read()).codes == (ReasonCode.SESSION_REVOKED,)
    with pytest.raises(ig.Denied, match="revoked"):
        root.delegate(HELPER)


def test_an_expired_parent_cannot_delegate(root: ig.Session, clock: FrozenClock) -> None:
    """Once the parent's grant expired, delegation is refused with GRANT_EXPIRED."""
    clock.advance(hours=2)
    with pytest.raises(ig.Denied) as denied:
        root.delegate(HELPER)
    assert denied.value.decision.codes == (ReasonCode.GRANT_EXPIRED,)


def test_the_agent_must_be_an_agent_identity(root: ig.Session) -> None:
    """A plain string is not an agent: a ConfigurationError, not a child."""
    with pytest.raises(ig.ConfigurationError, match="AgentIdentity"):
        root.delegate("researcher")  # type: ignore[arg-type]


def test_audit_records_carry_the_delegation_chain(crm_guard: ig.Guard, root: ig.Session) -> None:
    """A child's audit record names every actor, its depth, its parent session and the root authorization."""
    child = root.delegate(HELPER)
    with capture_decisions(crm_guard) as captured:
        child.check(read())
        root.check(read())
    child_event, root_event = (record.decision for record in captured.records)
    assert child_event.actors == ["u-7", "support-bot", "researcher"]
    assert (child_event.depth, child_event.parent, child_event.root_auth) == (1, root.id, "login-42")
    assert (root_event.depth, root_event.parent, root_event.actors) == (0, None, ["u-7", "support-bot"])


def test_a_chain_needs_one_session_per_agent() -> None:
    """A delegation chain whose agents and sessions do not pair up is refused."""
    with pytest.raises(ig.ConfigurationError, match="one session per agent"):
        ig.DelegationChain(principal=ACME, agents=(BOT, HELPER), sessions=("s-1",), root_auth="login-42")


TOOLS = ["read_record", "search_notes", "update_record", "export_report", "not_a_tool"]
requests = st.fixed_dictionaries(
    {},
    optional={
        "tools": st.lists(st.sampled_from(TOOLS), max_size=4, unique=True),
        "ttl": st.integers(1, 10_000),
        "max_calls": st.integers(0, 25),
        "tool_max_calls": st.dictionaries(st.sampled_from(TOOLS[:4]), st.integers(0, 6), max_size=3),
        "drop_high_privilege": st.booleans(),
    },
)
steps = st.lists(st.tuples(st.integers(0, 3), requests, st.integers(0, 600), st.integers(0, 2)), max_size=6)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_no_sequence_of_delegations_ever_widens(script: list[tuple[int, dict, int, int]]) -> None:  # type: ignore[type-arg]
    """Whatever is asked, every child's tools, budgets, lifetime, decay and depth are within its parent's."""
    clock = FrozenClock()
    with ig.Guard(schemas=[crm_schema()], clock=clock, ids=sequential_ids("p")) as guard:
        sessions = [guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)]
        for pick, request, wait, reads in script:
            parent = sessions[pick % len(sessions)]
            for _ in range(reads):
                parent.check(read())
            clock.advance(seconds=wait)
            try:
                child = parent.delegate(WORKER, **request)
            except (ig.Denied, ig.GrantWideningError):
                continue
            mine, theirs = child.grant, parent.grant
            assert child.depth == parent.depth + 1 <= theirs.max_depth
            assert set(mine.tools) <= theirs.active_tools(clock())
            assert mine.expires_at <= theirs.expires_at
            assert mine.issued_at == theirs.issued_at
            assert mine.decay == theirs.decay
            for name, policy in mine.tools.items():
                assert policy.max_calls <= theirs.tools[name].max_calls - parent.used(name)
                assert policy.checks[: len(theirs.tools[name].checks)] == theirs.tools[name].checks
            if theirs.max_calls is not None:
                assert mine.max_calls is not None
                assert mine.max_calls <= theirs.max_calls - parent.used_total
            for moment in (clock(), mine.expires_at - 1, mine.expires_at + 1):
                assert mine.active_tools(moment) <= theirs.active_tools(moment)
            sessions.append(child)
        assert all(session.check(read()).effect in (Effect.ALLOW, Effect.DENY) for session in sessions)


def test_a_childs_calls_are_charged_to_every_session_above_it(root: ig.Session) -> None:
    """An allowed call of a child or grandchild counts against its parent's and the root's budgets too."""
    child = root.delegate(HELPER)
    grandchild = child.delegate(WORKER)
    assert root.check(read()).allowed
    assert child.check(read()).allowed
    assert grandchild.check(read()).allowed
    assert (root.used("read_record"), child.used("read_record"), grandchild.used("read_record")) == (3, 2, 1)
    assert (root.used_total, child.used_total, grandchild.used_total) == (3, 2, 1)
    assert root.check(read()).allowed
    assert root.check(read()).allowed
    decision = grandchild.check(read())
    assert decision.codes == (ReasonCode.BUDGET_EXHAUSTED,)
    assert f"session {root.id!r}, above this one in the delegation chain, has no call of 'read_record'" in (
        decision.explain()
    )
    assert (root.used("read_record"), child.used("read_record"), grandchild.used("read_record")) == (5, 2, 1)
    assert child.check(read()).codes == (ReasonCode.BUDGET_EXHAUSTED,)
    assert root.check(read()).codes == (ReasonCode.BUDGET_EXHAUSTED,)


def test_the_session_budget_is_shared_too(clock: FrozenClock) -> None:
    """A child's call is refused once the root has spent its session budget, whatever the tool."""
    with ig.Guard(schemas=[crm_schema(max_calls=8)], clock=clock, ids=sequential_ids("b")) as guard:
        root = guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
        for _ in range(3):
            assert root.check(read()).allowed
        child = root.delegate(HELPER)
        assert child.grant.max_calls == 5
        for _ in range(5):
            assert root.check(ig.ToolCall("search_notes", {"query": "refund"})).allowed
        decision = child.check(read())
        assert decision.codes == (ReasonCode.BUDGET_EXHAUSTED,)
        assert f"session {root.id!r}, above this one in the delegation chain, has no call left (8 spent" in (
            decision.explain()
        )
        assert (root.used_total, child.used_total) == (8, 0)


def test_an_approved_call_of_a_child_is_charged_to_its_parent(clock: FrozenClock) -> None:
    """A call a person approved in a child counts against the parent; once the parent has none left it is refused."""
    schema = crm_schema()
    schema.tools["update_record"] = schema.tools["update_record"].model_copy(update={"confirm": Confirm.ALWAYS})

    def approve(request: ig.ConfirmationRequest) -> ig.Approval:
        return ig.Approval.approve(request, approver="ann", at=clock())

    update = ig.ToolCall("update_record", {"tenant_id": "acme", "record_id": "R-1", "status": "closed"})
    with ig.Guard(schemas=[schema], clock=clock, ids=sequential_ids("a"), confirm=approve) as guard:
        root = guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
        child = root.delegate(HELPER)
        assert child.check(update).effect is Effect.CONFIRM
        assert child.decide(update).allowed
        assert root.decide(update).allowed
        assert root.used("update_record") == 2
        decision = child.decide(update)
        assert decision.codes == (ReasonCode.BUDGET_EXHAUSTED,)
        assert child.used("update_record") == 1


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["read_record", "search_notes"])), max_size=40))
def test_no_interleaving_of_calls_exceeds_the_roots_budgets(calls: list[tuple[int, str]]) -> None:
    """Whatever order root, child and grandchild call in, the tree's allowed calls stay within the root's budgets."""
    schema = crm_schema(max_calls=8)
    with ig.Guard(schemas=[schema], clock=FrozenClock(), ids=sequential_ids("h")) as guard:
        root = guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
        root.check(read())
        child = root.delegate(HELPER)
        grandchild = child.delegate(WORKER, max_calls=5)
        tree = [root, child, grandchild]
        allowed = {"read_record": 1, "search_notes": 0}
        for who, tool in calls:
            call = read() if tool == "read_record" else ig.ToolCall("search_notes", {"query": "q"})
            if tree[who].check(call).allowed:
                allowed[tool] += 1
        assert allowed["read_record"] <= 5
        assert allowed["search_notes"] <= 5
        assert sum(allowed.values()) <= 8
        assert root.used_total == sum(allowed.values())
        for session in tree:
            assert session.used_total <= (session.grant.max_calls or 0)


def test_parent_and_child_calling_from_threads_never_overspend(root: ig.Session) -> None:
    """Parent and child threads calling at once spend exactly the root's budget, no more (and do not deadlock)."""
    import threading

    child = root.delegate(HELPER)
    grandchild = child.delegate(WORKER)
    notes = ig.ToolCall("search_notes", {"query": "q"})
    results: list[bool] = []

    def spend(session: ig.Session) -> None:
        results.extend(session.check(notes).allowed for _ in range(20))

    threads = [threading.Thread(target=spend, args=(session,)) for session in (root, child, grandchild) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(results) == 5 == root.used("search_notes")


def test_a_parent_revoked_through_the_registry_cannot_delegate(crm_guard: ig.Guard, root: ig.Session) -> None:
    """Once the registry revoked the parent (here its user), delegating from it is refused with SESSION_REVOKED."""
    crm_guard.registry.invalidate(ig.Scope.user("acme", "u-7"), reason="offboarded", by="hr-system")
    with pytest.raises(ig.Denied) as denied:
        root.delegate(HELPER)
    assert denied.value.decision.codes == (ReasonCode.SESSION_REVOKED,)
    assert "hr-system invalidated user 'u-7'" in str(denied.value)


def test_revoke_needs_a_reason(root: ig.Session) -> None:
    """revoke() without a reason sentence is a configuration error, and revokes nothing."""
    with pytest.raises(ig.ConfigurationError, match="needs a reason"):
        root.revoke("")
    assert root.revoked is None


def test_a_tool_its_parent_has_since_lost_is_denied_to_the_child(root: ig.Session) -> None:
    """Once a parent's grant narrows (attenuated, or for divergence), its earlier child loses the dropped tool."""
    child = root.delegate(HELPER, tools=["read_record", "search_notes"])
    search = ig.ToolCall("search_notes", {"query": "refunds"})
    assert child.check(search).allowed
    root.attenuate(tools={"read_record"})
    decision = child.check(search)
    assert decision.codes == (ReasonCode.TOOL_NOT_IN_INTENT,)
    assert f"session {root.id!r}" in decision.explain()
    assert child.check(read()).allowed


def test_a_child_stops_when_its_parent_is_cut_short(root: ig.Session, clock: FrozenClock) -> None:
    """A parent whose lifetime was shortened after it delegated takes its child's remaining time with it."""
    child = root.delegate(HELPER, tools=["read_record"])
    root.attenuate(expires_at=clock() + 60)
    assert child.check(read()).allowed
    clock.advance(minutes=2)
    assert child.check(read()).codes == (ReasonCode.GRANT_EXPIRED,)
