"""Test helpers we ship and use ourselves: a frozen clock, a scripted agent, decision capture.

Nothing here is a mock of intentguard: these parts drive the real guard.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from intentguard.decision import Decision
from intentguard.errors import ConfigurationError
from intentguard.pipeline import ToolCall
from intentguard.tenancy import TenantContext
from intentguard.testing_openai import ScriptedOpenAIServer, ScriptedReply

if TYPE_CHECKING:
    from intentguard.audit import AuditRecord
    from intentguard.guard import Guard
    from intentguard.session import Session

__all__ = [
    "CapturedRecords",
    "FrozenClock",
    "RedisServer",
    "ScriptedAgent",
    "ScriptedOpenAIServer",
    "ScriptedReply",
    "TenantDirectory",
    "Turn",
    "capture_decisions",
    "redis_server",
    "scripted_chat_model",
    "sequential_ids",
]


class FrozenClock:
    """A clock that stands still until told to move: ``clock.advance(minutes=16)``."""

    def __init__(self, start: datetime | float = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)) -> None:
        if isinstance(start, datetime):
            if start.tzinfo is None:
                raise ValueError("FrozenClock needs an aware datetime, e.g. datetime(..., tzinfo=UTC)")
            start = start.timestamp()
        self._now = float(start)

    def __call__(self) -> float:
        return self._now

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self._now, tz=UTC)

    def advance(self, delta: timedelta | None = None, /, **units: float) -> None:
        """Move forward by a ``timedelta`` or by keyword units (``seconds=``, ``minutes=``, ...)."""
        step = (delta or timedelta()) + timedelta(**units)
        if step < timedelta(0):
            raise ValueError("a FrozenClock only moves forward")
        self._now += step.total_seconds()

    def __repr__(self) -> str:
        return f"FrozenClock({self.now().isoformat()})"


def sequential_ids(prefix: str = "id") -> Callable[[], str]:
    """Deterministic ids (``id-1``, ``id-2``, ...) for tests and examples."""
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter)}"


@dataclass(frozen=True, slots=True)
class Turn:
    """One step of a scripted run: the call, the guard's decision, and the tool's result if it ran."""

    call: ToolCall
    decision: Decision
    result: Any = None


Step = tuple[str, Mapping[str, Any]] | ToolCall | Callable[[], object]


class ScriptedAgent:
    """Plays a fixed script of tool calls through a session, running only what is allowed.

    A step is ``(tool, args)``, a :class:`ToolCall`, or a plain callable (for example
    ``lambda: clock.advance(minutes=16)``) run between calls. Tool results are fed back with
    ``session.observe_result``, as a real agent loop would. ``on_turn`` sees every turn.
    """

    def __init__(
        self,
        session: Session,
        tools: Mapping[str, Callable[..., Any]],
        *,
        on_turn: Callable[[Turn], None] | None = None,
    ) -> None:
        self.session = session
        self.tools = tools
        self.on_turn = on_turn
        self.turns: list[Turn] = []
        self._ids = itertools.count(1)

    def call(self, tool: str, args: Mapping[str, Any] | None = None) -> Turn:
        """Ask the guard about one call (a CONFIRM goes to the guard's confirmation handler), run
        the tool only if the final decision is ALLOW, and feed its result to the session."""
        call = ToolCall(tool, {} if args is None else args, f"call-{next(self._ids)}")
        decision = self.session.decide(call)
        result = None
        if decision.allowed and tool in self.tools:
            result = self.tools[tool](**call.args)
            self.session.observe_result(call.id, tool, result)
        turn = Turn(call, decision, result)
        self.turns.append(turn)
        if self.on_turn is not None:
            self.on_turn(turn)
        return turn

    def run(self, script: Iterable[Step]) -> list[Turn]:
        """Play every step in order; returns the turns of this run."""
        start = len(self.turns)
        for step in script:
            if isinstance(step, ToolCall):
                self.call(step.name, step.args)
            elif isinstance(step, tuple):
                self.call(*step)
            else:
                step()
        return self.turns[start:]


class CapturedRecords:
    """The audit records a guard wrote while capturing; reading them flushes the guard first."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._records: list[AuditRecord] = []

    def __call__(self, record: AuditRecord, /) -> None:
        self._records.append(record)

    @property
    def records(self) -> list[AuditRecord]:
        """Every record so far, in order."""
        self._guard.flush()
        return list(self._records)

    @property
    def effects(self) -> list[str]:
        """The effect of every record so far, e.g. ``['ALLOW', 'DENY']``."""
        return [record.decision.effect for record in self.records]


@contextmanager
def capture_decisions(guard: Guard) -> Iterator[CapturedRecords]:
    """Collect the audit records ``guard`` writes inside the ``with`` block."""
    captured = CapturedRecords(guard)
    guard.audit.add_sink(captured)
    try:
        yield captured
    finally:
        guard.audit.remove_sink(captured)


class TenantDirectory:
    """An in-memory tenant directory (a :class:`~intentguard.tenancy.TenantContextProvider`):
    tenants with plan features, suspended tenants, deactivated users, and an outage switch
    (``directory.down = True`` makes every lookup raise, as an unreachable service would).
    ``lookups`` counts the questions it was asked."""

    def __init__(self, tenants: Mapping[str, Iterable[str] | None] | None = None) -> None:
        self.features: dict[str, frozenset[str] | None] = {
            tenant: None if features is None else frozenset(features) for tenant, features in (tenants or {}).items()
        }
        self.suspended: set[str] = set()
        self.inactive_users: set[tuple[str, str]] = set()
        self.down = False
        self.lookups = 0

    def __call__(self, tenant: str, user: str, /) -> TenantContext:
        self.lookups += 1
        if self.down:
            raise ConnectionError("tenant directory unreachable")
        return TenantContext(
            active=tenant in self.features and tenant not in self.suspended,
            user_active=(tenant, user) not in self.inactive_users,
            features=self.features.get(tenant),
        )


def scripted_chat_model(tool_calls: Iterable[Mapping[str, Any] | Sequence[Mapping[str, Any]] | str]) -> Any:
    """A LangChain chat model that answers each call with the next scripted reply: a tool call
    (``{"name": ..., "args": {...}}``, optionally with an ``"id"``), a list of them (parallel calls in
    one message) or a string (a final answer without tool calls). A stand-in for a model endpoint:
    it supports ``bind_tools`` (so ``with_structured_output`` and ``create_agent``) and keeps the
    names of the tools it was shown, per call, in ``model.shown_tools``. Needs ``langchain-core``."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from pydantic import Field

    class _ScriptedToolModel(GenericFakeChatModel):
        shown_tools: list[list[str]] = Field(default_factory=list)

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            self.shown_tools.append([convert_to_openai_tool(tool)["function"]["name"] for tool in tools])
            return self

    def reply(i: int, step: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str) -> AIMessage:
        if isinstance(step, str):
            return AIMessage(content=step)
        calls = [step] if isinstance(step, Mapping) else list(step)
        ids = [f"s{i}"] if isinstance(step, Mapping) else [f"s{i}.{j}" for j in range(len(calls))]
        return AIMessage(
            content="",
            tool_calls=[
                {"name": c["name"], "args": dict(c["args"]), "id": c.get("id", default)}
                for c, default in zip(calls, ids, strict=True)
            ],
        )

    return _ScriptedToolModel(messages=iter([reply(i, step) for i, step in enumerate(tool_calls)]))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A real ``redis-server`` on a free loopback port, without persistence: for tests that need
    Redis (the registry, the audit stream). ``stop()`` kills it, ``start()`` brings it back on
    the same port (empty), so a test can take the backend away and return it."""

    def __init__(self, executable: str = "redis-server") -> None:
        found = shutil.which(executable)
        if found is None:
            raise ConfigurationError(f"{executable!r} is not on PATH; install it (apt-get install redis-server)")
        self.executable = found
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the server and wait (at most ``timeout`` seconds) until it answers PING."""
        self._process = subprocess.Popen(  # noqa: S603 - a fixed executable and arguments
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)  # waiting on another process to come up, bounded by the deadline
        self.stop()
        raise ConfigurationError(f"redis-server did not answer on port {self.port} within {timeout:g} s")

    def stop(self) -> None:
        """Kill the server and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def redis_server(executable: str = "redis-server") -> Iterator[RedisServer]:
    """A running :class:`RedisServer` for the ``with`` block; killed at its end."""
    server = RedisServer(executable)
    server.start()
    try:
        yield server
    finally:
        server.stop()
