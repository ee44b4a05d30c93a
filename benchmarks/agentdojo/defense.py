"""intentguard as a live defense inside AgentDojo's own agent pipeline.

:class:`GuardedToolsExecutor` takes the place of AgentDojo's ``ToolsExecutor`` in a
``ToolsExecutionLoop``. Before any tool runs it asks the guard: ALLOW runs the call through the
real executor; DENY becomes an error tool result carrying the reason sentence (the model sees
why); CONFIRM goes to the configured confirmation handler (default: nobody answers, which is a
denial). Tool results are fed back to the session's provenance ledger, so later calls are
judged on where their values came from. The element only translates; the guard decides.

    pipeline = AgentPipeline([
        SystemMessage(system_prompt), InitQuery(), llm,
        ToolsExecutionLoop([GuardedToolsExecutor(guard, resolver, suite="banking"), llm]),
    ])

One session per task run: it is started on the first tool call from the user's prompt (the
spawn-time intent, via the resolver) and kept in ``extra_args``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentdojo.agent_pipeline.base_pipeline_element import BasePipelineElement
from agentdojo.agent_pipeline.tool_execution import ToolsExecutor
from agentdojo.functions_runtime import Env, FunctionsRuntime
from agentdojo.types import ChatMessage, ChatToolResultMessage, get_text_content_as_str, text_content_block_from_string

import intentguard as ig

SESSION_KEY = "intentguard_session"

__all__ = ["SESSION_KEY", "GuardedToolsExecutor"]


class GuardedToolsExecutor(BasePipelineElement):
    """AgentDojo's tool executor with intentguard deciding every call first."""

    name = "intentguard"

    def __init__(
        self,
        guard: ig.Guard,
        resolver: Callable[[str, Mapping[str, Any]], ig.ResolvedIntent | None],
        *,
        suite: str,
        principal: ig.Principal | None = None,
        agent: ig.AgentIdentity | None = None,
        handler: ig.ConfirmationHandler | None = None,
        executor: ToolsExecutor | None = None,
    ) -> None:
        self.guard = guard
        self.resolver = resolver
        self.suite = suite
        self.principal = principal or ig.Principal(user="agentdojo-user", tenant="agentdojo")
        self.agent = agent or ig.AgentIdentity(id="agentdojo-agent")
        self.handler = handler
        self.executor = executor or ToolsExecutor()

    def query(
        self,
        query: str,
        runtime: FunctionsRuntime,
        env: Env,
        messages: Sequence[ChatMessage],
        extra_args: dict[str, Any],
    ) -> tuple[str, FunctionsRuntime, Env, Sequence[ChatMessage], dict[str, Any]]:
        if not messages or messages[-1]["role"] != "assistant" or not messages[-1].get("tool_calls"):
            return query, runtime, env, messages, extra_args
        session = extra_args[SESSION_KEY] if SESSION_KEY in extra_args else self._start(messages)
        extra_args = {**extra_args, SESSION_KEY: session}
        assistant = messages[-1]
        calls = assistant["tool_calls"] or []
        decisions = {id(call): self._decide(session, call) for call in calls}
        allowed = [call for call in calls if decisions[id(call)] is None]
        results: dict[int, ChatToolResultMessage] = {}
        if allowed:
            _, runtime, env, executed, extra_args = self.executor.query(
                query, runtime, env, [*messages[:-1], {**assistant, "tool_calls": allowed}], extra_args
            )
            for call, result in zip(allowed, executed[len(messages) :], strict=True):
                results[id(call)] = result
                if session is not None:
                    session.observe_result(call.id, call.function, get_text_content_as_str(result["content"]))
        tool_messages: list[ChatMessage] = []
        for call in calls:
            refusal = decisions[id(call)]
            if refusal is None:
                tool_messages.append(results[id(call)])
            else:
                tool_messages.append(
                    ChatToolResultMessage(
                        role="tool",
                        content=[text_content_block_from_string("")],
                        tool_call_id=call.id,
                        tool_call=call,
                        error=f"intentguard {refusal}",
                    )
                )
        return query, runtime, env, [*messages, *tool_messages], extra_args

    def _start(self, messages: Sequence[ChatMessage]) -> ig.Session | None:
        """The session for this run, or None when no intent can be resolved (then nothing runs)."""
        prompt = next((_text(m) for m in messages if m["role"] == "user"), "")
        resolved = self.resolver(prompt, {"suite": self.suite})
        if resolved is None:
            return None
        try:
            session = self.guard.start(
                resolved.schema, dict(resolved.params), principal=self.principal, agent=self.agent
            )
        except ig.ConfigurationError:
            return None
        for message in messages:
            if message["role"] in ("system", "user"):
                session.observe(_text(message), source=ig.Source(message["role"]))
        return session

    def _decide(self, session: ig.Session | None, call: Any) -> str | None:
        """None when the call may run, else the refusal text the model is shown."""
        if session is None:
            return "DENY: no intent could be resolved for this request, so no tool may run (INTENT_UNRESOLVED)."
        decision = session.decide(ig.ToolCall(call.function, dict(call.args), call.id), handler=self.handler)
        return None if decision.allowed else decision.explain()


def _text(message: Any) -> str:
    content = message.get("content")
    if content is None:
        return ""
    return content if isinstance(content, str) else get_text_content_as_str(content)
