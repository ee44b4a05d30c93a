"""Offline replay: feed recorded agent runs through a guard and decide every tool call.

The trace format is DESIGN.md's contract: JSON Lines, one agent run per line, with an
optional declared ``intent``, the principal and agent, free ``metadata`` and the messages in
order. Replay feeds the messages in order — system and user text as trusted, tool output
through ``observe_result`` — and gives every assistant tool call a decision as if it were
about to run. Output: one JSON line per tool call, ``{trace_id, call_id, tool, effect,
reasons, score}``.

Replay streams: one trace in memory at a time, whatever the file's size. A trace whose
intent is null is resolved by an :data:`IntentResolver` from its first user message and its
metadata (the spawn-time parser).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intentguard.decision import Effect, ReasonCode
from intentguard.errors import ConfigurationError, IntentguardError
from intentguard.identity import AgentIdentity, Principal
from intentguard.pipeline import ToolCall
from intentguard.provenance import Source

if TYPE_CHECKING:
    from intentguard.guard import Guard
    from intentguard.session import Session

__all__ = [
    "IntentResolver",
    "ReplayStats",
    "ResolvedIntent",
    "Trace",
    "TraceError",
    "read_traces",
    "replay_trace",
    "structured_resolver",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraceToolCall(_Model):
    """One tool call an assistant message asked for."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class TraceMessage(_Model):
    """One message of a recorded run."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[Any] | dict[str, Any] | None = None
    tool_calls: list[TraceToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class TraceIntent(_Model):
    """The intent declared at spawn time: a schema name and its parameters."""

    schema_: str = Field(alias="schema", min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class TracePrincipal(_Model):
    user: str
    tenant: str


class TraceAgent(_Model):
    id: str


class Trace(_Model):
    """One recorded agent run in the neutral trace format."""

    id: str = Field(min_length=1)
    intent: TraceIntent | None = None
    principal: TracePrincipal | None = None
    agent: TraceAgent | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    messages: list[TraceMessage]

    def first_user_message(self) -> str:
        """The text of the first user message ('' when there is none)."""
        for message in self.messages:
            if message.role == "user":
                return _text(message.content)
        return ""


class TraceError(IntentguardError):
    """A trace line cannot be read; the message names the line number."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {problem}")


@dataclass(frozen=True, slots=True)
class ResolvedIntent:
    """What a resolver decided a run is for: a schema name and its parameters."""

    schema: str
    params: Mapping[str, Any] = field(default_factory=dict)


IntentResolver = Callable[[str, Mapping[str, Any]], ResolvedIntent | None]
"""Given the first user message and a trace's metadata, the intent (or None: unresolvable)."""


def structured_resolver(text: str, metadata: Mapping[str, Any]) -> ResolvedIntent | None:
    """The resolver for traces that carry their own intent: it resolves nothing else."""
    return None


def read_traces(lines: Iterable[str], *, skip_bad: bool = False, stats: ReplayStats | None = None) -> Iterator[Trace]:
    """Parse trace lines lazily. A malformed line raises :class:`TraceError` naming its line
    number, or is skipped and counted in ``stats.skipped`` when ``skip_bad``."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Trace.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "$"
            problem = f"not a trace: {where}: {first['msg']}"
            if not skip_bad:
                raise TraceError(number, problem) from exc
            if stats is not None:
                stats.skipped.append((number, problem))


@dataclass
class ReplayStats:
    """What a replay saw: traces, calls, effects, unresolved intents, skipped lines."""

    traces: int = 0
    calls: int = 0
    effects: Counter[str] = field(default_factory=Counter)
    unresolved: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def replay_trace(
    guard: Guard, trace: Trace, *, resolver: IntentResolver = structured_resolver, stats: ReplayStats | None = None
) -> Iterator[dict[str, Any]]:
    """Decide every tool call of one trace; yields one output record per call.

    An unresolvable intent (or one the guard rejects) makes every call of the trace a DENY
    with ``INTENT_UNRESOLVED``: no intent, no authority.
    """
    stats = stats if stats is not None else ReplayStats()
    stats.traces += 1
    try:
        session = _start(guard, trace, resolver)
    except ConfigurationError as exc:
        stats.unresolved += 1
        for call in _calls(trace):
            stats.calls += 1
            stats.effects[Effect.DENY.name] += 1
            yield _record(
                trace.id,
                call.id,
                call.name,
                Effect.DENY.name,
                [{"code": ReasonCode.INTENT_UNRESOLVED.value, "message": f"no intent for this run: {exc}"}],
                0.0,
            )
        return
    for message in trace.messages:
        if message.role in ("system", "user"):
            session.observe(_text(message.content), source=Source(message.role))
        elif message.role == "tool":
            session.observe_result(message.tool_call_id, message.name or "", _content(message.content))
        for call in message.tool_calls:
            decision = session.check(ToolCall(call.name, call.arguments, call.id))
            stats.calls += 1
            stats.effects[decision.effect.name] += 1
            reasons = [{"code": reason.code.value, "message": reason.message} for reason in decision.reasons]
            yield _record(trace.id, call.id, call.name, decision.effect.name, reasons, decision.score)


def _start(guard: Guard, trace: Trace, resolver: IntentResolver) -> Session:
    if trace.intent is not None:
        name, params = trace.intent.schema_, trace.intent.params
    else:
        resolved = resolver(trace.first_user_message(), trace.metadata)
        if resolved is None:
            raise ConfigurationError("the resolver found no intent for the first user message")
        name, params = resolved.schema, dict(resolved.params)
    principal = trace.principal
    return guard.start(
        name,
        params,
        principal=Principal(
            user=principal.user if principal else "replay", tenant=principal.tenant if principal else "replay"
        ),
        agent=AgentIdentity(id=trace.agent.id if trace.agent else "replay-agent"),
    )


def _calls(trace: Trace) -> Iterator[TraceToolCall]:
    for message in trace.messages:
        yield from message.tool_calls


def _record(
    trace_id: str, call_id: str, tool: str, effect: str, reasons: list[dict[str, str]], score: float
) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "call_id": call_id,
        "tool": tool,
        "effect": effect,
        "reasons": reasons,
        "score": score,
    }


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI-style content parts
        return "\n".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return json.dumps(content, ensure_ascii=False)


def _content(content: Any) -> Any:
    """Tool output as the ledger should see it: structured when it is structured."""
    if isinstance(content, list) and all(isinstance(part, dict) and "text" in part for part in content):
        return "\n".join(part["text"] for part in content)
    return "" if content is None else content
