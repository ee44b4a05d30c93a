"""GuardedModelContext: an agent's model context that feeds the conversation to its session.

Every message an ``AssistantAgent`` adds to its model context passes here first, so this is the
one place that sees the task, messages from other agents, memory and every tool result:

- a ``UserMessage`` from a trusted source (the human, ``"user"``) is trusted text; one from any
  other source is another agent's message: untrusted (``Source.AGENT``);
- a ``SystemMessage`` added while the agent runs comes from memory (the developer's system
  prompt never passes through ``add_message``): untrusted (``Source.RETRIEVED``);
- a tool result the guarded workbench produced is already in the ledger, with its record labels;
  any other tool result (another workbench, a handoff) is untrusted tool text;
- the model's own messages are not evidence of anything and are not observed.

``AssistantAgent`` routes a call only to a workbench that lists the tool, and the guarded
workbench lists only what the grant allows now; a call of any other tool (one the model was
never shown, or one that expired or decayed meanwhile) is refused by AutoGen as "not found".
This context still hands such a call to the session, so it is decided (DENY, with the reason)
and audited like every other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from autogen_core.model_context import ChatCompletionContext, UnboundedChatCompletionContext
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)

from intentguard import Source, ToolCall
from intentguard_autogen._workbench import GuardedWorkbench

__all__ = ["GuardedModelContext"]


class GuardedModelContext(ChatCompletionContext):
    """Wraps ``inner`` (default: unbounded) and observes each message before adding it.

    Create it with :meth:`GuardedWorkbench.model_context` and pass both to the same agent.
    """

    def __init__(
        self,
        workbench: GuardedWorkbench,
        *,
        inner: ChatCompletionContext | None = None,
        trusted_sources: Iterable[str] = ("user",),
    ) -> None:
        super().__init__()
        if isinstance(trusted_sources, str):
            trusted_sources = (trusted_sources,)
        self.workbench = workbench
        self.inner = UnboundedChatCompletionContext() if inner is None else inner
        self.trusted_sources = frozenset(trusted_sources)
        self._calls: dict[str, tuple[str, str]] = {}

    async def add_message(self, message: LLMMessage) -> None:
        """Observe ``message``, then add it to the inner context."""
        self._observe(message)
        await self.inner.add_message(message)

    async def get_messages(self) -> list[LLMMessage]:
        """The inner context's messages."""
        return await self.inner.get_messages()

    async def clear(self) -> None:
        """Clear the inner context (the session's ledger keeps what it saw)."""
        self._calls.clear()
        await self.inner.clear()

    async def save_state(self) -> Mapping[str, Any]:
        """The inner context's state."""
        return await self.inner.save_state()

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Load the inner context's state and observe the restored messages as if they had arrived."""
        await self.inner.load_state(state)
        for message in await self.inner.get_messages():
            self._observe(message)

    def _observe(self, message: LLMMessage) -> None:
        session = self.workbench.session
        if isinstance(message, UserMessage):
            text = _text(message.content)
            if message.source in self.trusted_sources:
                session.observe(text, source=Source.USER, origin=message.source)
            else:
                session.observe(text, source=Source.AGENT, origin=f"agent:{message.source}")
        elif isinstance(message, SystemMessage):
            session.observe(message.content, source=Source.RETRIEVED, origin="context:system")
        elif isinstance(message, AssistantMessage):
            if isinstance(message.content, list):
                self._calls = {call.id: (call.name, call.arguments) for call in message.content}
        elif isinstance(message, FunctionExecutionResultMessage):
            for result in message.content:
                self._settle(result)

    def _settle(self, result: FunctionExecutionResult) -> None:
        """Account for one tool result the workbench did not produce."""
        wanted = self._calls.pop(result.call_id, None)
        if self.workbench._settled(result.call_id):
            return
        session = self.workbench.session
        unrouted = result.is_error and result.content == f"Error: tool '{result.name}' not found in any workbench"
        if wanted is not None and unrouted and result.name not in session.allowed_tools():
            name, raw = wanted
            try:
                args: Any = json.loads(raw)
            except ValueError:
                args = raw  # the session answers MALFORMED_CALL
            call = ToolCall(name, args, result.call_id)
            self.workbench.report(call, session.check(call))
            return
        session.observe(result.content, source=Source.TOOL, origin=f"tool:{result.name}#{result.call_id}")


def _text(content: str | list[Any]) -> str:
    """The text parts of a message (images carry no text the guard could match)."""
    if isinstance(content, str):
        return content
    return "\n".join(part for part in content if isinstance(part, str))
