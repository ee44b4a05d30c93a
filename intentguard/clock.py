"""Time: the injected clock and the one place durations are normalised.

The hot path compares floats (seconds since the Unix epoch); aware datetimes appear
only at the boundaries (audit records, reports, user-facing values).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from intentguard.errors import ConfigurationError

__all__ = ["Clock", "DurationLike", "SystemClock", "format_duration", "format_time", "to_datetime", "to_duration"]

DurationLike = int | float | str | timedelta
"""Seconds, an ISO-8601 duration such as ``"PT15M"``, or a ``timedelta``."""


@runtime_checkable
class Clock(Protocol):
    """A source of the current time in seconds since the Unix epoch (like ``time.time``)."""

    def __call__(self) -> float: ...


class SystemClock:
    """The wall clock."""

    __slots__ = ()

    def __call__(self) -> float:
        return time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


def to_duration(value: DurationLike, *, what: str = "duration") -> timedelta:
    """Normalise seconds, an ISO-8601 duration or a ``timedelta`` into a positive ``timedelta``.

    Anything ambiguous (a bool, a numeric string, ``"15m"``, zero, a negative span,
    NaN or infinity) is an error rather than a guess.
    """
    result: timedelta
    if isinstance(value, bool):
        raise ConfigurationError(f"{what} {value!r} is a bool; give seconds or an ISO-8601 duration")
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigurationError(f"{what} {value!r} is not a finite number of seconds")
        try:
            result = timedelta(seconds=value)
        except OverflowError as exc:
            raise ConfigurationError(f"{what} {value!r} is too long") from exc
    elif isinstance(value, str):
        if not value.startswith("P"):
            raise ConfigurationError(
                f"{what} {value!r} is not an ISO-8601 duration; write e.g. 'PT15M' or a number of seconds"
            )
        # pydantic is imported here, not at module level: `import intentguard` stays light.
        from pydantic import TypeAdapter, ValidationError

        try:
            result = TypeAdapter(timedelta).validate_python(value)
        except (ValidationError, OverflowError) as exc:
            raise ConfigurationError(
                f"{what} {value!r} is not an ISO-8601 duration; write e.g. 'PT15M' or 'P1DT2H'"
            ) from exc
    else:
        raise ConfigurationError(
            f"{what} {value!r} has type {type(value).__name__}; give seconds, 'PT15M' or a timedelta"
        )
    if result <= timedelta(0):
        raise ConfigurationError(f"{what} {value!r} must be longer than zero")
    return result


def to_datetime(timestamp: float) -> datetime:
    """An epoch timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, tz=UTC)


def format_duration(span: timedelta) -> str:
    """A duration for people: ``'10 min'``, ``'1 h 30 min'``, ``'45 s'``."""
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{seconds} s" if seconds else ""]
    return " ".join(part for part in parts if part) or "0 s"


def format_time(timestamp: float) -> str:
    """An epoch timestamp for people: ``'2026-01-01 09:15:00 UTC'``."""
    return f"{to_datetime(timestamp):%Y-%m-%d %H:%M:%S} UTC"
