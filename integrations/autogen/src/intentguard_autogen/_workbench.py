"""GuardedWorkbench: an AutoGen workbench whose every tool call an intentguard session decides first."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from autogen_core import CancellationToken
from autogen_core.model_context import ChatCompletionContext
from autogen_core.tools import BaseTool, StaticWorkbench, TextResultContent, ToolResult, ToolSchema, Workbench

from intentguard import AsyncConfirmationHandler, ConfirmationHandler, Decision, Session, ToolCall

if TYPE_CHECKING:
    from intentguard_autogen._context import GuardedModelContext

__all__ = ["DecisionHook", "GuardedWorkbench"]

_log = logging.getLogger("intentguard.autogen")

DecisionHook = Callable[[ToolCall, Decision], object]
"""Called with every call the guard decided and its final decision (for logs and UIs, never to decide)."""


class GuardedWorkbench(Workbench):
    """A workbench for ``AssistantAgent(workbench=...)`` that puts ``session`` in front of ``inner``.

    - :meth:`list_tools` shows the model only the tools the live grant allows now (narrowing,
      decay and expiry applied; none once the session is revoked or expired).
    - :meth:`call_tool` asks ``session.adecide`` first; a CONFIRM goes to ``confirm`` (an async
      or plain confirmation handler; default: the guard's). Only a final ALLOW runs the inner tool,
      whose output is fed back with ``session.observe_result``. Anything else is an error
      :class:`ToolResult` carrying the decision's sentences; the inner tool never runs.
    - :meth:`model_context` gives the agent's model context, which feeds the conversation to the
      session: it must be passed to the same agent, or values from the task are unseen.

    ``inner`` is a workbench or a sequence of AutoGen tools (wrapped in a ``StaticWorkbench``).
    ``on_decision`` sees each decided call; an exception in it is logged and changes nothing.
    """

    def __init__(
        self,
        session: Session,
        inner: Workbench | Sequence[BaseTool[Any, Any]],
        *,
        confirm: ConfirmationHandler | AsyncConfirmationHandler | None = None,
        on_decision: DecisionHook | None = None,
    ) -> None:
        self.session = session
        self.inner = inner if isinstance(inner, Workbench) else StaticWorkbench(list(inner))
        self.confirm = confirm
        self.on_decision = on_decision
        # Ids of the calls this workbench decided, until the model context sees their results:
        # those outputs were observed here, with the call's record/derived labels.
        self._decided: set[str] = set()
        self._tracking = False

    def __repr__(self) -> str:
        return f"GuardedWorkbench({self.session!r}, {self.inner!r})"

    async def list_tools(self) -> list[ToolSchema]:
        """The inner workbench's tools that the grant allows right now."""
        allowed = self.session.allowed_tools()
        return [tool for tool in await self.inner.list_tools() if tool["name"] in allowed]

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        call_id: str | None = None,
    ) -> ToolResult:
        """Decide the call; run the inner tool only on a final ALLOW and observe its output."""
        call = ToolCall(name, {} if arguments is None else arguments, call_id)
        # adecide awaits the handler's answer only when it is awaitable: plain handlers work too.
        handler = cast("AsyncConfirmationHandler | None", self.confirm)
        decision = await self.session.adecide(call, handler=handler)
        self.report(call, decision)
        if self._tracking and call_id is not None:
            self._decided.add(call_id)
        if not decision.allowed:
            return ToolResult(name=name, result=[TextResultContent(content=decision.explain())], is_error=True)
        result = await self.inner.call_tool(name, arguments, cancellation_token, call_id)
        self.session.observe_result(call_id, name, result.to_text(replace_image="[image]"))
        return result

    def model_context(
        self, *, inner: ChatCompletionContext | None = None, trusted_sources: Iterable[str] = ("user",)
    ) -> GuardedModelContext:
        """The model context to give the same agent: it feeds every message to the session.

        Messages whose ``source`` is in ``trusted_sources`` (AutoGen names the human ``"user"``) are
        trusted; messages from other agents are untrusted (``Source.AGENT``). A sub-agent whose task
        is written by another agent should trust nothing: ``trusted_sources=()``.
        """
        from intentguard_autogen._context import GuardedModelContext

        self._tracking = True
        return GuardedModelContext(self, inner=inner, trusted_sources=trusted_sources)

    def report(self, call: ToolCall, decision: Decision) -> None:
        """Hand a decision to ``on_decision``; a failing hook is logged and never changes anything."""
        if self.on_decision is None:
            return
        try:
            self.on_decision(call, decision)
        except Exception:  # noqa: BLE001 - an observer must not turn into a decision
            _log.exception("the on_decision hook of %r failed", self)

    def _settled(self, call_id: str) -> bool:
        """True once for each call this workbench decided (its output is already in the ledger)."""
        if call_id in self._decided:
            self._decided.discard(call_id)
            return True
        return False

    async def start(self) -> None:
        """Start the inner workbench."""
        await self.inner.start()

    async def stop(self) -> None:
        """Stop the inner workbench."""
        await self.inner.stop()

    async def reset(self) -> None:
        """Reset the inner workbench; the session (budgets, ledger, expiry) is not reset."""
        await self.inner.reset()

    async def save_state(self) -> Mapping[str, Any]:
        """The inner workbench's state (the session lives in intentguard's registry, not here)."""
        return await self.inner.save_state()

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Load the inner workbench's state."""
        await self.inner.load_state(state)
