"""Reading audit trails for reports: tolerant of fields we do not know, strict about those we use.

Other versions of intentguard may add fields to a record (a delegation depth, a parent hop):
a report ignores them, and never shows or trusts them. Every field a report uses is
validated, and every problem is reported with its file and line, all at once.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intentguard.audit.record import DECISION_EVENT, GENESIS
from intentguard.errors import InvalidAuditTrail, Problem

__all__ = ["ChainStatus", "Entry", "TrailApproval", "TrailEvent", "TrailReason", "TrailRecord", "read_trails"]

MAX_PROBLEMS = 50
"""Stop listing problems after this many: a wrong file is recognised long before."""


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class TrailReason(_Tolerant):
    """A reason as recorded: its code and its sentence (both attacker-reachable text)."""

    code: str
    message: str


class TrailApproval(_Tolerant):
    """A person's answer recorded with the decision it led to."""

    approver: str
    approved: bool
    args_sha256: str = ""


class TrailEvent(_Tolerant):
    """The fields of a decision event a report uses."""

    seq: int = Field(ge=0)
    session: str
    intent: str
    intent_version: str
    agent: str
    actors: list[str] = Field(default_factory=list)
    call_id: str | None = None
    tool: str
    args_sha256: str
    effect: Literal["ALLOW", "CONFIRM", "DENY"]
    reasons: list[TrailReason] = Field(default_factory=list)
    score: float = Field(ge=0.0, le=1.0)
    approval: TrailApproval | None = None

    @field_validator("score", mode="before")
    @classmethod
    def _plain_number(cls, value: object) -> object:
        # JSON has no int/float split: 0 and 0.0 are one score; a bool or NaN is not a score.
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


class TrailRecord(_Tolerant):
    """The claims of an audit record a report uses."""

    jti: str
    toe: float
    txn: str
    aud: str
    sub: str
    prev: str = Field(pattern=r"^[0-9a-f]{64}$")
    events: dict[str, dict[str, object]]

    @field_validator("toe", mode="before")
    @classmethod
    def _finite_time(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("the time of the event must be a finite number")
        return value


@dataclass(frozen=True, slots=True)
class Entry:
    """One decision read from a trail, with where it came from."""

    source: str
    line: int
    record: TrailRecord
    event: TrailEvent


@dataclass(slots=True)
class ChainStatus:
    """Whether one file's records link into hash chains (each ``prev`` is the SHA-256 of the line before)."""

    source: str
    records: int = 0
    chains: int = 0
    breaks: list[int] = field(default_factory=list)
    """Line numbers whose ``prev`` matches neither the line before nor a fresh start."""

    @property
    def intact(self) -> bool:
        """True when no record breaks the chain."""
        return not self.breaks


def read_trails(paths: Iterable[str | Path]) -> tuple[list[Entry], list[ChainStatus]]:
    """Read audit trails (JSON Lines); raise :class:`InvalidAuditTrail` naming every bad line."""
    entries: list[Entry] = []
    chains: list[ChainStatus] = []
    problems: list[Problem] = []
    for path in paths:
        status = ChainStatus(str(path))
        chains.append(status)
        _read_file(Path(path), status, entries, problems)
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise InvalidAuditTrail(problems[:MAX_PROBLEMS])
    return entries, chains


def _read_file(path: Path, status: ChainStatus, entries: list[Entry], problems: list[Problem]) -> None:
    source = str(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        problems.append(Problem(source, "$", f"cannot read file: {exc.strerror}", "check the path"))
        return
    previous = GENESIS
    with handle:
        for number, raw in enumerate(handle, start=1):
            where = f"line {number}"
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                problems.append(Problem(source, where, f"not UTF-8 (byte {exc.start})", "is this an audit trail?"))
                continue
            if not text.strip():
                continue
            try:
                entry = _parse(text, source, number)
            except _BadLine as exc:
                problems.append(Problem(source, where, str(exc), "each line must be one intentguard audit record"))
                if len(problems) >= MAX_PROBLEMS:
                    return
                previous = GENESIS
                continue
            entries.append(entry)
            status.records += 1
            if entry.record.prev == GENESIS:
                status.chains += 1
            elif entry.record.prev != previous:
                status.breaks.append(number)
            previous = hashlib.sha256(text.encode("utf-8")).hexdigest()


class _BadLine(Exception):
    """One line is not a usable audit record; the message says why."""


def _parse(text: str, source: str, number: int) -> Entry:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _BadLine(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _BadLine(f"a record is a JSON object, not {type(data).__name__}")
    try:
        record = TrailRecord.model_validate(data)
        raw_event = record.events.get(DECISION_EVENT)
        if raw_event is None:
            raise _BadLine(f"no decision event ({DECISION_EVENT!r} is missing from 'events')")
        event = TrailEvent.model_validate(raw_event)
    except ValidationError as exc:
        raise _BadLine(_explain(exc)) from None
    if event.session != record.txn:
        raise _BadLine(f"the event's session {event.session!r} is not the record's txn {record.txn!r}")
    return Entry(source, number, record, event)


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item["loc"]) or "record"
        parts.append(f"{where!r}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
