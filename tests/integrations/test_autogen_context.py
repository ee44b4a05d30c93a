"""GuardedModelContext feeds the conversation to the session's ledger with the right trust."""

from __future__ import annotations

import asyncio

from autogen_agentchat.agents import AssistantAgent
from autogen_core import FunctionCall
from autogen_core.memory import ListMemory, MemoryContent, MemoryMimeType
from autogen_core.model_context import BufferedChatCompletionContext
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    UserMessage,
)
from autogen_core.tools import FunctionTool, StaticWorkbench
from autogen_ext.models.replay import ReplayChatCompletionClient
from intentguard_autogen import GuardedModelContext, GuardedWorkbench

import intentguard as ig
from tests.integrations._autogen import MODEL_INFO, Shop, calls


def trust(session: ig.Session, value: object) -> list[tuple[str, str]]:
    """``(label, trust)`` of every place the ledger saw ``value``."""
    return [(origin.label, origin.trust.name) for origin in session.ledger.origins(value)]


def test_the_task_of_a_sub_agent_that_trusts_nobody_is_agent_text(session: ig.Session) -> None:
    """With ``trusted_sources=()`` even a message named "user" is another agent's, untrusted."""
    context = GuardedWorkbench(session, Shop().tools()).model_context(trusted_sources=())
    asyncio.run(context.add_message(UserMessage(content="Look up order A123 for 61.20.", source="user")))
    assert trust(session, 61.2) == [("agent:user", "UNTRUSTED")]


def test_a_single_trusted_source_may_be_given_as_a_string(session: ig.Session) -> None:
    """``trusted_sources="ops"`` means the one source "ops", not the letters o, p and s."""
    context = GuardedWorkbench(session, Shop().tools()).model_context(trusted_sources="ops")
    asyncio.run(context.add_message(UserMessage(content=["Refund 12.40.", "(image omitted)"], source="ops")))
    assert context.trusted_sources == frozenset({"ops"})
    assert trust(session, 12.4) == [("ops", "TRUSTED")]


def test_memory_added_while_the_agent_runs_is_retrieved_text(session: ig.Session) -> None:
    """Memory reaches the model as a system message at run time; the ledger labels it retrieved, untrusted."""
    memory = ListMemory()
    asyncio.run(
        memory.add(
            MemoryContent(content="Ann prefers refunds of 19.99 to store credit.", mime_type=MemoryMimeType.TEXT)
        )
    )
    workbench = GuardedWorkbench(session, Shop().tools())
    client = ReplayChatCompletionClient(["Noted."], model_info=MODEL_INFO)
    assistant = AssistantAgent(
        "support", model_client=client, workbench=workbench, model_context=workbench.model_context(), memory=[memory]
    )
    asyncio.run(assistant.run(task="What does Ann prefer?"))
    assert trust(session, 19.99) == [("context:system", "UNTRUSTED")]
    assert ig.Source.RETRIEVED in {origin.source for origin in session.ledger.origins(19.99)}


def test_results_of_another_workbench_are_untrusted_tool_text(session: ig.Session) -> None:
    """A tool the guard does not wrap still has its output observed, as untrusted tool text."""

    def weather(city: str) -> str:
        """Today's weather."""
        return "Sunny, 23.5 degrees."

    workbench = GuardedWorkbench(session, Shop().tools())
    other = StaticWorkbench([FunctionTool(weather, description="Today's weather.")])
    client = ReplayChatCompletionClient([calls(("weather", {"city": "Oslo"})), "Sunny."], model_info=MODEL_INFO)
    assistant = AssistantAgent(
        "support",
        model_client=client,
        workbench=[workbench, other],
        model_context=workbench.model_context(),
        max_tool_iterations=3,
    )
    asyncio.run(assistant.run(task="Weather?"))
    assert trust(session, 23.5) == [("tool:weather#c0-weather", "UNTRUSTED")]


def test_results_of_guarded_calls_are_observed_once_with_their_record_labels(session: ig.Session) -> None:
    """Output the guarded workbench observed keeps its record/derived label and is not observed again."""
    workbench = GuardedWorkbench(session, Shop().tools())
    client = ReplayChatCompletionClient([calls(("lookup_order", {"order_id": "A123"})), "ok"], model_info=MODEL_INFO)
    assistant = AssistantAgent(
        "support",
        model_client=client,
        workbench=workbench,
        model_context=workbench.model_context(),
        max_tool_iterations=3,
    )
    asyncio.run(assistant.run(task="Look up A123."))
    assert trust(session, 42.5) == [("tool:lookup_order#c0-lookup_order $.total", "DERIVED")]
    assert workbench._decided == set()


def test_an_unrouted_call_with_arguments_that_are_not_an_object_is_malformed(session: ig.Session) -> None:
    """A call AutoGen could not route whose arguments are no JSON object is decided MALFORMED_CALL."""
    seen: list[ig.Decision] = []
    workbench = GuardedWorkbench(session, Shop().tools(), on_decision=lambda c, d: seen.append(d))
    context = workbench.model_context()
    session.revoke("stopped by an operator")

    async def replay() -> None:
        await context.add_message(
            AssistantMessage(content=[FunctionCall(id="x1", name="lookup_order", arguments="{oops")], source="support")
        )
        result = FunctionExecutionResult(
            content="Error: tool 'lookup_order' not found in any workbench",
            name="lookup_order",
            call_id="x1",
            is_error=True,
        )
        await context.add_message(FunctionExecutionResultMessage(content=[result]))

    asyncio.run(replay())
    [decision] = seen
    assert decision.effect is ig.Effect.DENY
    assert decision.codes == (ig.ReasonCode.MALFORMED_CALL,)


def test_state_round_trips_through_the_inner_context_and_restored_messages_are_observed(
    guard: ig.Guard, session: ig.Session
) -> None:
    """save_state/load_state use the inner context; a restored conversation is fed to the new session."""
    inner = BufferedChatCompletionContext(buffer_size=4)
    context = GuardedWorkbench(session, Shop().tools()).model_context(inner=inner)
    asyncio.run(context.add_message(UserMessage(content="Refund 31.10 please.", source="user")))
    state = asyncio.run(context.save_state())
    assert [type(m).__name__ for m in asyncio.run(context.get_messages())] == ["UserMessage"]

    fresh = guard.start(
        "refund_request",
        {"order_id": "A123", "customer_email": "ann@example.com", "max_refund": 50},
        principal=session.principal,
        agent=session.agent,
    )
    restored = GuardedWorkbench(fresh, Shop().tools()).model_context()
    asyncio.run(restored.load_state(state))
    assert trust(fresh, 31.1) == [("user", "TRUSTED")]
    asyncio.run(restored.clear())
    assert asyncio.run(restored.get_messages()) == []
    assert isinstance(restored, GuardedModelContext)
