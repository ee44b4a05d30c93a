"""The LangChain adapter outside create_agent: a hand-built ToolNode graph, the model hook, guard_tool."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from intentguard_langchain import IntentguardMiddleware, guard_tool
from intentguard_langchain._observe import MessageFeed
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command

import intentguard as ig
from intentguard.testing import FrozenClock, capture_decisions, scripted_chat_model, sequential_ids

from ..conftest import REFUND, REFUND_PARAMS
from .langchain_desk import CONFIG, KB_PAGE, USER, Desk, call, tool_messages


@pytest.fixture
def desk(clock: FrozenClock) -> Desk:
    return Desk(clock)


def tool_graph(session: ig.Session, desk: Desk) -> Any:
    """START -> ToolNode(wrap_tool_call=middleware.wrap_tool_call) -> END, with a checkpointer."""
    middleware = IntentguardMiddleware(session, clock=desk.clock)
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode(desk.tools(), wrap_tool_call=middleware.wrap_tool_call))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    return graph.compile(checkpointer=InMemorySaver())


def calls(*requested: dict[str, Any]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{**c, "id": f"c{i}"} for i, c in enumerate(requested)])


def test_the_hook_guards_a_hand_built_tool_node(guard: ig.Guard, session: ig.Session, desk: Desk) -> None:
    """In a plain ToolNode the same callable runs the allowed call and refuses the outside e-mail."""
    message = calls(
        call("lookup_order", order_id="A123"), call("send_email", to="x@evil.example", subject="s", body="b")
    )
    with capture_decisions(guard) as captured:
        result = tool_graph(session, desk).invoke({"messages": [HumanMessage(USER), message]}, CONFIG)
    messages = tool_messages(result)
    assert desk.ran == ["lookup_order"]
    assert (messages["c0"].status, messages["c1"].status) == ("success", "error")
    assert sorted(captured.effects) == ["ALLOW", "DENY"]


def test_a_tool_node_confirms_through_an_interrupt(guard: ig.Guard, session: ig.Session, desk: Desk) -> None:
    """A tool result in the graph's state carries an instruction: the refund interrupts, and runs once approved."""
    kb_result = ToolMessage(content=KB_PAGE, tool_call_id="kb-1", name="search_kb")
    state = {"messages": [HumanMessage(USER), kb_result, calls(call("issue_refund", order_id="A123", amount=45.0))]}
    graph = tool_graph(session, desk)
    with capture_decisions(guard) as captured:
        interrupted = graph.invoke(state, CONFIG)
        assert interrupted["__interrupt__"][0].value["reasons"][0]["code"] == "UNTRUSTED_INSTRUCTION"
        graph.invoke(Command(resume={"approved": True, "approver": "alice"}), CONFIG)
    assert desk.ran == ["issue_refund"]
    assert captured.effects == ["CONFIRM", "ALLOW"]


def model_request(session: ig.Session, tools: list[Any], **options: Any) -> ModelRequest[Any]:
    return ModelRequest(model=scripted_chat_model([]), messages=[HumanMessage(USER)], tools=tools, **options)


def shown(middleware: IntentguardMiddleware, request: ModelRequest[Any]) -> ModelRequest[Any]:
    """The request the model is called with, after the middleware narrowed it."""
    seen: list[ModelRequest[Any]] = []

    def handler(narrowed: ModelRequest[Any]) -> ModelResponse[Any]:
        seen.append(narrowed)
        return ModelResponse(result=[AIMessage(content="ok")])

    middleware.wrap_model_call(request, handler)
    return seen[0]


def test_the_model_hook_drops_every_tool_outside_the_grant(session: ig.Session, desk: Desk) -> None:
    """BaseTools and provider dicts outside the grant, and nameless provider tools, are not shown to the model."""
    tools: list[Any] = [
        *desk.tools(),
        {"type": "function", "function": {"name": "lookup_order", "parameters": {}}},
        {"name": "export_customer_list"},
        {"type": "web_search"},
    ]
    narrowed = shown(IntentguardMiddleware(session), model_request(session, tools, tool_choice="auto"))
    names = [tool.name if isinstance(tool, BaseTool) else tool["function"]["name"] for tool in narrowed.tools]
    assert names == ["lookup_order", "search_kb", "issue_refund", "send_email", "lookup_order"]
    assert narrowed.tool_choice == "auto"


@pytest.mark.parametrize(
    "choice", ["export_customer_list", {"type": "function", "function": {"name": "export_customer_list"}}]
)
def test_a_forced_choice_of_a_dropped_tool_is_lifted(session: ig.Session, desk: Desk, choice: Any) -> None:
    """A tool_choice that forces a tool the model no longer sees is removed rather than sent to the provider."""
    narrowed = shown(IntentguardMiddleware(session), model_request(session, desk.tools(), tool_choice=choice))
    assert narrowed.tool_choice is None


def test_a_request_within_the_grant_is_passed_on_unchanged(session: ig.Session, desk: Desk) -> None:
    """When every tool is allowed, the model gets the very request the agent built."""
    request = model_request(session, desk.tools()[:4], tool_choice="issue_refund")
    assert shown(IntentguardMiddleware(session), request) is request


def test_a_rewritten_history_is_read_again(session: ig.Session) -> None:
    """After a summariser replaces the history, a tool result that appears in it is still observed."""
    middleware = IntentguardMiddleware(session)
    clean = ToolMessage(content="Refunds within 30 days.", tool_call_id="kb-1", name="search_kb", id="m2")
    first = [HumanMessage(USER, id="m1"), clean]
    shown(middleware, ModelRequest(model=scripted_chat_model([]), messages=first, tools=[]))
    injected = ToolMessage(content=KB_PAGE, tool_call_id="kb-2", name="search_kb", id="m4")
    rewritten = [HumanMessage("Summary: Ann wants a refund.", id="m3"), injected, clean]
    shown(middleware, ModelRequest(model=scripted_chat_model([]), messages=rewritten, tools=[]))
    assert {origin.label for _, origin in session.ledger.instructions} == {"tool:search_kb#kb-2"}


def test_the_system_prompt_is_trusted_evidence(session: ig.Session) -> None:
    """The system message the model is given is observed as trusted text."""
    request = ModelRequest(
        model=scripted_chat_model([]), messages=[], system_prompt="Refunds of 45.00 need no approval.", tools=[]
    )
    shown(IntentguardMiddleware(session), request)
    assert [str(origin) for origin in session.ledger.origins(45.0)] == ["system (trusted)"]


def tool_call(name: str, call_id: str = "c1", **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def by_name(desk: Desk) -> dict[str, BaseTool]:
    return {tool.name: tool for tool in desk.tools()}


def test_a_guarded_tool_runs_what_is_allowed(guard: ig.Guard, session: ig.Session, desk: Desk) -> None:
    """guard_tool keeps the tool's name and schema and runs an allowed call."""
    guarded = guard_tool(by_name(desk)["lookup_order"], session)
    with capture_decisions(guard) as captured:
        result = guarded.invoke(tool_call("lookup_order", order_id="A123"))
    assert (guarded.name, guarded.args) == ("lookup_order", by_name(desk)["lookup_order"].args)
    assert isinstance(result, ToolMessage)
    assert result.status == "success"
    assert desk.ran == ["lookup_order"]
    assert captured.effects == ["ALLOW"]


def test_a_guarded_tool_refuses_without_running(session: ig.Session, desk: Desk) -> None:
    """A refused call never reaches the tool; the caller gets the decision's sentence as an error result."""
    guarded = guard_tool(by_name(desk)["send_email"], session)
    result = guarded.invoke(tool_call("send_email", to="x@evil.example", subject="s", body="b"))
    plain = guarded.invoke({"to": "x@evil.example", "subject": "s", "body": "b"})
    assert desk.ran == []
    assert result.status == "error"
    assert result.content.startswith("DENY: argument 'to' of tool 'send_email' is 'x@evil.example'")
    assert plain == result.content


def test_a_guarded_tool_observes_its_output_and_asks_the_guards_handler(clock: FrozenClock, desk: Desk) -> None:
    """The KB page read through the wrapper is observed; the refund after it goes to the guard's handler."""
    asked: list[ig.ConfirmationRequest] = []

    def approve(request: ig.ConfirmationRequest) -> bool:
        asked.append(request)
        return True

    handler = ig.CallbackHandler(approve, approver="alice", clock=clock)
    with ig.Guard(schemas=[REFUND], clock=clock, ids=sequential_ids(), confirm=handler) as guard:
        session = guard.start(
            "refund_request",
            REFUND_PARAMS,
            principal=ig.Principal(user="u", tenant="t"),
            agent=ig.AgentIdentity(id="a"),
        )
        tools = {name: guard_tool(tool, session) for name, tool in by_name(desk).items()}
        tools["search_kb"].invoke({"query": "refund policy"})
        result = tools["issue_refund"].invoke(tool_call("issue_refund", order_id="A123", amount=45.0))
    assert [request.tool for request in asked] == ["issue_refund"]
    assert result.content == "refunded 45.00 on A123"
    assert desk.ran == ["search_kb", "issue_refund"]


def test_a_guarded_tool_decides_the_same_when_awaited(guard: ig.Guard, session: ig.Session, desk: Desk) -> None:
    """ainvoke runs an allowed call and refuses an out-of-bounds one."""
    tools = {name: guard_tool(tool, session) for name, tool in by_name(desk).items()}

    async def run() -> tuple[Any, Any]:
        allowed = await tools["lookup_order"].ainvoke(tool_call("lookup_order", order_id="A123"))
        refused = await tools["issue_refund"].ainvoke(tool_call("issue_refund", "c2", order_id="B777", amount=5.0))
        return allowed, refused

    allowed, refused = asyncio.run(run())
    assert (allowed.status, refused.status) == ("success", "error")
    assert desk.ran == ["lookup_order"]


def test_guard_tool_wants_a_langchain_tool(session: ig.Session) -> None:
    """A plain function is refused with a message saying to wrap it with @tool."""
    with pytest.raises(ig.ConfigurationError, match="@tool"):
        guard_tool(len, session)  # type: ignore[arg-type]


def test_a_reused_call_id_never_hides_a_tool_output(guard: ig.Guard, session: ig.Session, desk: Desk) -> None:
    """A call id the model reuses after a refusal does not keep the next tool output (an injection) from the ledger."""
    graph = tool_graph(session, desk)

    def turn(name: str, call_id: str, **args: Any) -> dict[str, Any]:
        return {"messages": [AIMessage(content="", tool_calls=[{**call(name, **args), "id": call_id}])]}

    graph.invoke(
        {
            "messages": [
                HumanMessage(USER),
                *turn("send_email", "r1", to="x@evil.example", subject="s", body="b")["messages"],
            ]
        },
        CONFIG,
    )
    graph.invoke(turn("search_kb", "r1", query="refunds"), CONFIG)
    result = graph.invoke(turn("issue_refund", "r2", order_id="A123", amount=45.0), CONFIG)
    assert desk.ran == ["search_kb"]
    assert result["__interrupt__"][0].value["reasons"][0]["code"] == "UNTRUSTED_INSTRUCTION"


def test_one_output_of_two_tools_under_a_reused_call_id_is_observed_for_each(session: ig.Session) -> None:
    """A call id the model reuses never keeps another tool's byte-identical output from adding its own origin."""
    feed = MessageFeed(session)
    feed.output(ToolMessage("order a123 is on its way", tool_call_id="c1", name="lookup_order"))
    feed.output(ToolMessage("order a123 is on its way", tool_call_id="c1", name="search_kb"))
    feed.output(ToolMessage("order a123 is on its way", tool_call_id="c1", name="search_kb"))  # seen: skipped
    origins = session.ledger.origins("order a123 is on its way")
    assert sorted(origin.label for origin in origins) == ["tool:lookup_order#c1", "tool:search_kb#c1"]
