"""``IntentguardMiddleware``: every tool call of a LangChain agent goes through one session.

::

    agent = create_agent(model, tools, middleware=[IntentguardMiddleware(session)],
                         checkpointer=InMemorySaver())

The model is shown only the tools the grant allows now; before a tool runs, the messages of the
run feed the session's provenance ledger and the session decides the call: ALLOW runs it, DENY
returns an error ``ToolMessage`` carrying the decision's sentence, CONFIRM interrupts the graph
with a :class:`ConfirmationPayload` until it is resumed with a person's answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse, ToolCallRequest
from langchain.agents.middleware.types import ExtendedModelResponse
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.types import Command, interrupt

import intentguard as ig
from intentguard.audit import args_digest
from intentguard_langchain._confirm import payload, stale_answer, to_approval
from intentguard_langchain._observe import MessageFeed, messages_of

__all__ = ["IntentguardMiddleware", "refusal"]

_OPEN_LIMIT = 256  # open confirmation requests kept per middleware; an evicted one is asked afresh
# Effects named on every call: on Python 3.11 ``ig.Effect.ALLOW`` costs ~100 ns more than a global.
_ALLOWED, _DENIED = ig.Effect.ALLOW, ig.Effect.DENY

ToolResult = ToolMessage | Command[Any]
ModelResult = ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]


def refusal(call: ig.ToolCall, decision: ig.Decision) -> ToolMessage:
    """The error ``ToolMessage`` the model gets instead of a tool's result: the decision's sentence,
    with the effect and reason codes in the message's ``artifact`` (which the model never sees)."""
    return ToolMessage(
        content=decision.explain(),
        tool_call_id=call.id or "",
        name=call.name,
        status="error",
        artifact={"effect": str(decision.effect), "reasons": [str(code) for code in decision.codes]},
    )


def _tool_name(tool: Any) -> str | None:
    """The name of a tool as ``ModelRequest.tools`` holds it: a ``BaseTool`` or a provider dict."""
    if isinstance(tool, dict):
        name = tool.get("name")
        function = tool.get("function")
        if name is None and isinstance(function, dict):
            name = function.get("name")
        return name if isinstance(name, str) else None
    name = getattr(tool, "name", None)
    return name if isinstance(name, str) else None


class IntentguardMiddleware(AgentMiddleware):
    """Guards the tool calls of an agent run with one intentguard session.

    ``approver`` names who answers when the graph is resumed with a bare ``True``/``False``;
    without it, resume with an :class:`intentguard.Approval` or a :class:`ResumeAnswer`.
    ``clock`` stamps the approvals built from such answers (default: the wall clock).

    The hooks are safe to run on several threads at once (LangGraph runs the calls of one model
    message in parallel). The middleware also works outside ``create_agent``:
    ``ToolNode(tools, wrap_tool_call=middleware.wrap_tool_call)``.
    """

    def __init__(self, session: ig.Session, *, approver: str | None = None, clock: ig.Clock | None = None) -> None:
        super().__init__()
        self.session = session
        self.approver = approver
        self._clock: ig.Clock = clock if clock is not None else ig.SystemClock()
        self._feed = MessageFeed(session)
        self._open: OrderedDict[str, ig.ConfirmationRequest] = OrderedDict()
        self._lock = threading.Lock()

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ModelResult:
        """Call the model with only the tools the grant allows now."""
        return handler(self._narrow(request))

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
    ) -> ModelResult:
        """The async twin of :meth:`wrap_model_call`."""
        return await handler(self._narrow(request))

    def wrap_tool_call(self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], ToolResult]) -> ToolResult:
        """Run the tool only if the session allows the call (a person approving it, if need be)."""
        refused = self._admit(request)
        if refused is not None:
            return refused
        return self._observed(handler(request))

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Awaitable[ToolResult]]
    ) -> ToolResult:
        """The async twin of :meth:`wrap_tool_call`."""
        refused = self._admit(request)
        if refused is not None:
            return refused
        return self._observed(await handler(request))

    def _narrow(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        self._feed.feed(request.messages, system=request.system_message)
        allowed = self.session.allowed_tools()
        tools = [tool for tool in request.tools if _tool_name(tool) in allowed]
        if len(tools) == len(request.tools):
            return request
        choice = request.tool_choice
        # A choice that forces a tool the model no longer sees would make the provider refuse the request.
        named = choice if isinstance(choice, str) else _tool_name(choice) if isinstance(choice, dict) else None
        if not tools or (named not in (None, "auto", "none", "any", "required") and named not in allowed):
            choice = None
        return request.override(tools=tools, tool_choice=choice)

    def _admit(self, request: ToolCallRequest) -> ToolMessage | None:
        """Feed the state's messages, then decide; ``None`` means run the tool."""
        raw = request.tool_call
        call = ig.ToolCall(raw["name"], raw["args"], raw.get("id"))
        self._feed.feed(messages_of(request.state))
        key = call.id if call.id is not None else f"{call.name}:{args_digest(call.args)}"
        with self._lock:
            opened = self._open.get(key)
        fresh = opened is None
        if opened is None:
            decision = self.session.check(call)
            if decision.effect is _ALLOWED:
                return None
            if decision.effect is _DENIED:
                return self._refuse(call, decision)
            opened = self.session.confirmation_request(call, decision)
            with self._lock:
                if len(self._open) >= _OPEN_LIMIT:
                    self._open.popitem(last=False)
                self._open[key] = opened
        # LangGraph runs the node again from the start once resumed: the request opened on the first
        # run is found above, so the call is checked, audited and put to a person exactly once, and
        # here interrupt() returns the resume value instead of raising.
        answer = interrupt(payload(opened))
        with self._lock:
            self._open.pop(key, None)
        if fresh:
            # interrupt() returned at once for a request opened just now: the answer was given to a
            # confirmation an earlier run showed (before a restart, or in another process), whose
            # reasons this request need not share. Nobody saw this one, so it is a denial.
            approval = stale_answer(opened, now=self._clock())
        else:
            approval = to_approval(answer, opened, approver=self.approver, now=self._clock())
        decision = self.session.apply_approval(call, approval)
        return None if decision.effect is _ALLOWED else self._refuse(call, decision)

    def _refuse(self, call: ig.ToolCall, decision: ig.Decision) -> ToolMessage:
        message = refusal(call, decision)
        self._feed.mark(message)
        return message

    def _observed(self, result: ToolResult) -> ToolResult:
        # A Command's messages reach the ledger through the state, at the next hook.
        if isinstance(result, ToolMessage):
            self._feed.output(result)
        return result
