"""Durations are normalised in one place; the shipped test helpers behave as documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import intentguard as ig
from intentguard.clock import SystemClock, format_duration, to_duration
from intentguard.decision import Effect
from intentguard.testing import FrozenClock, ScriptedAgent, sequential_ids


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (900, timedelta(minutes=15)),
        (0.5, timedelta(milliseconds=500)),
        ("PT15M", timedelta(minutes=15)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        (timedelta(hours=1), timedelta(hours=1)),
    ],
)
def test_durations_normalise(value: ig.clock.DurationLike, expected: timedelta) -> None:
    """Seconds, ISO-8601 durations and timedeltas become one timedelta."""
    assert to_duration(value) == expected


@pytest.mark.parametrize(
    "value", [True, 0, -5, float("nan"), float("inf"), "15m", "900", "P", "PT-5M", [15], None, timedelta(0)]
)
def test_ambiguous_durations_are_errors(value: object) -> None:
    """Bools, zero, negatives, NaN, bare strings and other types are refused, never guessed."""
    with pytest.raises(ig.ConfigurationError):
        to_duration(value)  # type: ignore[arg-type]


def test_format_duration() -> None:
    """Durations read naturally in reason sentences."""
    assert format_duration(timedelta(minutes=10)) == "10 min"
    assert format_duration(timedelta(hours=1, minutes=30, seconds=5)) == "1 h 30 min 5 s"
    assert format_duration(timedelta(0)) == "0 s"


def test_system_clock_is_a_clock() -> None:
    """The default clock satisfies the Clock protocol and reads the wall time."""
    clock = SystemClock()
    assert isinstance(clock, ig.Clock)
    assert abs(clock() - datetime.now(tz=UTC).timestamp()) < 60
    assert repr(clock) == "SystemClock()"


def test_frozen_clock_moves_only_when_told() -> None:
    """A FrozenClock stands still, advances by units or timedeltas, and never goes back."""
    clock = FrozenClock(datetime(2026, 5, 1, tzinfo=UTC))
    start = clock()
    assert clock() == start
    clock.advance(minutes=16)
    clock.advance(timedelta(seconds=4))
    assert clock() - start == 16 * 60 + 4
    assert clock.now() == datetime(2026, 5, 1, 0, 16, 4, tzinfo=UTC)
    assert "2026-05-01" in repr(clock)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(seconds=-1)
    with pytest.raises(ValueError, match="aware"):
        FrozenClock(datetime(2026, 5, 1))
    assert FrozenClock(100.0)() == 100.0


def test_sequential_ids() -> None:
    """sequential_ids gives deterministic, distinct ids."""
    ids = sequential_ids("s")
    assert [ids(), ids()] == ["s-1", "s-2"]


def test_scripted_agent_runs_only_allowed_tools(session: ig.Session, clock: FrozenClock) -> None:
    """The scripted agent runs a tool only on ALLOW, runs plain callables between steps, and records turns."""
    ran: list[str] = []
    seen: list[Effect] = []
    agent = ScriptedAgent(
        session,
        {"lookup_order": lambda order_id: ran.append(order_id) or {"id": order_id}},
        on_turn=lambda turn: seen.append(turn.decision.effect),
    )
    turns = agent.run(
        [
            ("lookup_order", {"order_id": "A123"}),
            ig.ToolCall("lookup_order", {"order_id": "Z9"}),
            lambda: clock.advance(minutes=20),
            ("lookup_order", {"order_id": "A123"}),
        ]
    )
    assert [turn.decision.effect for turn in turns] == [Effect.ALLOW, Effect.DENY, Effect.DENY]
    assert seen == [Effect.ALLOW, Effect.DENY, Effect.DENY]
    assert ran == ["A123"]
    assert turns[0].result == {"id": "A123"}
    assert turns[1].result is None
    assert [turn.call.id for turn in agent.turns] == ["call-1", "call-2", "call-3"]
