"""The team pattern: a sub-agent's GuardedWorkbench on a session delegated from its planner's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core.models import CreateResult
from intentguard_autogen import GuardedWorkbench

import intentguard as ig
from intentguard.testing import capture_decisions
from tests.integrations._autogen import Shop, agent, calls, offered

ORDER = {"order_id": "A123"}
TASK = "Look up order A123 and the refund policy."  # written by the planner, an agent


def researcher(
    planner: ig.Session, shop: Shop, *, held: Sequence[str] = ("lookup_order", "search_kb"), **narrowing: Any
) -> tuple[ig.Session, GuardedWorkbench, list[ig.Decision]]:
    """The researcher's session, delegated from ``planner``, and its workbench holding ``shop``'s ``held`` tools."""
    child = planner.delegate(ig.AgentIdentity(id="researcher"), **narrowing)
    seen: list[ig.Decision] = []
    tools = [tool for tool in shop.tools() if tool.name in held]
    return child, GuardedWorkbench(child, tools, on_decision=lambda _, d: seen.append(d)), seen


def play(workbench: GuardedWorkbench, replies: Sequence[str | CreateResult]) -> tuple[list[bool], list[list[str]]]:
    """Run a researcher agent on ``workbench``; the is_error flag of each tool result and the tools it was shown."""
    assistant, client = agent(workbench, replies, name="researcher", trusted_sources=())
    result = asyncio.run(assistant.run(task=TASK))
    errors = [r.is_error for m in result.messages if isinstance(m, ToolCallExecutionEvent) for r in m.content]
    return errors, offered(client)


def test_the_researcher_cannot_use_a_tool_the_planner_lacks(session: ig.Session) -> None:
    """A tool the planner's grant lacks cannot be delegated; one the planner lacks or kept back is
    hidden from the researcher even when its workbench holds it, and denied if called; neither runs."""
    session.attenuate(tools=["lookup_order", "search_kb", "issue_refund"])  # the planner has no send_email
    shop = Shop()
    with pytest.raises(ig.GrantWideningError, match="send_email"):
        researcher(session, shop, tools=["lookup_order", "send_email"])
    every_tool = ("lookup_order", "search_kb", "issue_refund", "send_email")
    child, workbench, seen = researcher(session, shop, held=every_tool, tools=["lookup_order", "search_kb"])
    assert (child.depth, child.chain.parent_session, child.root_id) == (1, session.id, session.id)
    replies = [
        calls(("issue_refund", {"order_id": "A123", "amount": 42.5})),
        calls(("send_email", {"to": "ann@example.com", "subject": "hi", "body": "hi"})),
        "I may only read.",
    ]
    errors, shown = play(workbench, replies)
    assert shown[0] == ["lookup_order", "search_kb"]
    assert [d.codes for d in seen] == [(ig.ReasonCode.TOOL_NOT_IN_INTENT,)] * 2
    assert errors == [True, True]
    assert shop.ran == []


def test_the_researchers_calls_count_against_the_planners_budget(guard: ig.Guard, session: ig.Session) -> None:
    """Each allowed call of the researcher is charged to the planner too, so together they never
    spend more than the planner's budget: once the planner has used the rest, the researcher is
    refused with BUDGET_EXHAUSTED naming the planner's session."""
    shop = Shop()
    child, workbench, seen = researcher(session, shop, tools=["lookup_order", "search_kb"])
    replies = [calls(("lookup_order", ORDER)), calls(("lookup_order", ORDER)), "Kettle, 42.50."]
    errors, _ = play(workbench, replies)
    assert errors == [False, False]
    assert (child.used("lookup_order"), session.used("lookup_order"), session.used_total) == (2, 2, 2)
    assert session.check(ig.ToolCall("lookup_order", ORDER)).allowed  # the third and last of refund_request's 3
    with capture_decisions(guard) as captured:
        errors, _ = play(workbench, [calls(("lookup_order", ORDER)), "Out of budget."])
    assert errors == [True]
    assert seen[-1].codes == (ig.ReasonCode.BUDGET_EXHAUSTED,)
    assert f"session {session.id!r}, above this one in the delegation chain" in seen[-1].explain()
    [record] = captured.records
    assert (record.decision.agent, record.decision.depth, record.decision.parent) == ("researcher", 1, session.id)
    assert shop.names == ["lookup_order", "lookup_order"]


def test_revoking_the_planner_stops_the_researcher_mid_run(session: ig.Session) -> None:
    """Revoking the planner's session while the researcher works hides its tools and refuses its next
    call with SESSION_REVOKED; that call never runs."""
    shop = Shop(on_lookup=lambda: session.revoke("the customer withdrew the request", by="supervisor"))
    child, workbench, seen = researcher(session, shop, tools=["lookup_order", "search_kb"], ttl="PT5M", max_calls=4)
    replies = [calls(("lookup_order", ORDER)), calls(("search_kb", {"query": "refunds"})), "Stopped."]
    errors, shown = play(workbench, replies)
    assert shown == [["lookup_order", "search_kb"], [], []]
    assert [d.effect for d in seen] == [ig.Effect.ALLOW, ig.Effect.DENY]
    assert seen[-1].codes == (ig.ReasonCode.SESSION_REVOKED,)
    assert f"parent session {session.id!r} was revoked" in seen[-1].explain()
    assert errors == [False, True]
    assert shop.names == ["lookup_order"]
    assert child.revoked is not None


def test_the_delegated_lifetime_is_cut_from_the_planners(guard: ig.Guard, session: ig.Session) -> None:
    """The researcher's grant ends at half of what is left of the planner's (refund_request's
    hop_ttl_factor), or at its own ttl when that is sooner."""
    now = guard.clock()
    child, _, _ = researcher(session, Shop(), tools=["lookup_order"])
    assert child.grant.expires_at == now + (session.grant.expires_at - now) / 2
    short, _, _ = researcher(session, Shop(), tools=["lookup_order"], ttl="PT1M")
    assert short.grant.expires_at == now + 60
