"""A persisted approval queue: a request waits in SQLite until a human decides it out of band.

``ApprovalQueue`` is a :class:`~intentguard.gates.ConfirmationHandler`: ``queue(request)``
stores the request and waits until someone calls :meth:`ApprovalQueue.approve` or
:meth:`ApprovalQueue.deny` from another thread, process or service on the same file, or until
it expires (a denial by ``"intentguard:timeout"``). ``queue.acall`` is the
:class:`~intentguard.gates.AsyncConfirmationHandler`. For flows that cannot block (a LangGraph
interrupt, a web form), :meth:`ApprovalQueue.submit` stores without waiting; submitting the same
request again is harmless. :meth:`ApprovalQueue.consume` spends an approval: once, and only for
the exact arguments.

Requests are stored as JSON with their arguments as given: whoever can read the file (every
approver) sees them, so keep secrets out of tool arguments or out of this queue. Every decision,
expiry and use is kept with who and when: :meth:`ApprovalQueue.history` is the audit trail.
Each operation opens its own connection (WAL mode; ``BEGIN IMMEDIATE`` for every change), so
one file serves many threads and processes.
"""

from __future__ import annotations

import asyncio
import enum
import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from intentguard.clock import Clock, DurationLike, SystemClock, format_time, to_duration
from intentguard.decision import Reason, ReasonCode
from intentguard.errors import ApprovalError
from intentguard.gates import TIMEOUT_APPROVER, Approval, ConfirmationRequest, handler_failed, require_approver

__all__ = ["ApprovalError", "ApprovalQueue", "ApprovalState", "QueueEntry"]


class ApprovalState(enum.StrEnum):
    """Where a queued request stands. Only a pending request can be decided."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry:
    """One request in the audit trail: its state, the decision (who, when, why) and when it was used."""

    request: ConfirmationRequest
    state: ApprovalState
    approval: Approval | None
    queued_at: float
    deadline: float
    used_at: float | None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS intentguard_approvals (
    id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    args_sha256 TEXT NOT NULL,
    request TEXT NOT NULL,
    queued_at REAL NOT NULL,
    deadline REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
    approver TEXT,
    decided_at REAL,
    note TEXT NOT NULL DEFAULT '',
    used_at REAL
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS intentguard_approvals_state ON intentguard_approvals (state, deadline)"
_SELECT = "SELECT request, state, approver, decided_at, note, queued_at, deadline, used_at FROM intentguard_approvals"
_ONE = _SELECT + " WHERE id = ?"
_ALL = _SELECT + " ORDER BY queued_at, id"
_IN_STATE = _SELECT + " WHERE state = ? ORDER BY queued_at, id"
_PENDING = "SELECT request FROM intentguard_approvals WHERE state = 'pending' AND deadline > ? ORDER BY queued_at, id"
_KNOWN = "SELECT tool, args_sha256 FROM intentguard_approvals WHERE id = ?"
_INSERT = (
    "INSERT INTO intentguard_approvals (id, tool, args_sha256, request, queued_at, deadline, state)"
    " VALUES (?, ?, ?, ?, ?, ?, 'pending')"
)
_DECIDE = "UPDATE intentguard_approvals SET state = ?, approver = ?, decided_at = ?, note = ? WHERE id = ?"
_EXPIRE = (
    "UPDATE intentguard_approvals SET state = 'expired', approver = ?, decided_at = deadline, note = ?"
    " WHERE state = 'pending' AND deadline <= ?"
)
_CONSUME = (
    "UPDATE intentguard_approvals SET used_at = ?"
    " WHERE id = ? AND args_sha256 = ? AND state = 'approved' AND used_at IS NULL"
)
_BUSY_TIMEOUT = 10.0


class ApprovalQueue:
    """Requests wait in the SQLite file at ``path`` until approved, denied, or ``timeout`` passes.

    A request expires at its own ``expires_at`` or ``timeout`` after it was queued, whichever
    comes first. ``clock`` and ``sleep`` are injected (tests advance a FrozenClock in ``sleep``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock | None = None,
        timeout: DurationLike = 300,
        poll_interval: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if str(path) in ("", ":memory:"):
            raise ApprovalError(f"approval queue path {path!r} is not a file; give a file path all parties can open")
        number = isinstance(poll_interval, int | float) and not isinstance(poll_interval, bool)
        if not number or not 0 < poll_interval < math.inf:
            raise ApprovalError(f"poll_interval {poll_interval!r} must be a positive number of seconds, e.g. 0.2")
        self.path = Path(path)
        self._clock: Clock = SystemClock() if clock is None else clock
        self._timeout = to_duration(timeout, what="approval timeout").total_seconds()
        self._poll_interval = float(poll_interval)
        self._sleep = sleep
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            conn.execute(_INDEX)

    def __repr__(self) -> str:
        return f"ApprovalQueue({str(self.path)!r})"

    def __call__(self, request: ConfirmationRequest, /) -> Approval:
        """Queue ``request`` and block until it is decided or expires; any failure is a denial."""
        try:
            self.submit(request)
            return self.wait(request.id)
        except Exception as exc:  # noqa: BLE001 - fail closed: the denial's note names the exception
            return handler_failed(request, exc, at=self._clock())

    async def acall(self, request: ConfirmationRequest, /) -> Approval:
        """The async twin of calling the queue: pass ``queue.acall`` as an async handler."""
        try:
            await asyncio.to_thread(self.submit, request)
            return await self.wait_async(request.id)
        except Exception as exc:  # noqa: BLE001 - fail closed: the denial's note names the exception
            return handler_failed(request, exc, at=self._clock())

    def submit(self, request: ConfirmationRequest) -> None:
        """Store ``request`` as pending without waiting; storing the same request again changes nothing."""
        payload = _dump(request)
        now = self._clock()
        deadline = min(request.expires_at, now + self._timeout)
        with self._transaction() as conn:
            row = conn.execute(_KNOWN, (request.id,)).fetchone()
            if row is None:
                values = (request.id, request.tool, request.args_sha256, payload, now, deadline)
                conn.execute(_INSERT, values)
            elif tuple(row) != (request.tool, request.args_sha256):
                raise ApprovalError(
                    f"request {request.id!r} is already queued for tool {row[0]!r} with other arguments; "
                    "every request needs its own id"
                )

    def wait(self, request_id: str) -> Approval:
        """Block until ``request_id`` is decided or expires, polling every ``poll_interval`` seconds."""
        while (approval := self.decision(request_id)) is None:
            self._sleep(self._poll_interval)
        return approval

    async def wait_async(self, request_id: str) -> Approval:
        """The async twin of :meth:`wait`: polls in a worker thread, waits with ``asyncio.sleep``."""
        while (approval := await asyncio.to_thread(self.decision, request_id)) is None:
            await asyncio.sleep(self._poll_interval)
        return approval

    def pending(self) -> list[ConfirmationRequest]:
        """Every request still waiting for a decision, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(_PENDING, (self._clock(),)).fetchall()
        return [_load(row[0]) for row in rows]

    def get(self, request_id: str) -> ConfirmationRequest | None:
        """The stored request ``request_id`` in any state, or None if it was never queued."""
        entry = self._entry(request_id)
        return None if entry is None else entry.request

    def approve(self, request_id: str, *, approver: str, note: str = "") -> Approval:
        """Approve a pending request as ``approver``; an unknown, expired or decided one is an ApprovalError."""
        return self._decide(request_id, approved=True, approver=approver, note=note)

    def deny(self, request_id: str, *, approver: str, note: str = "") -> Approval:
        """Deny a pending request as ``approver``; an unknown, expired or decided one is an ApprovalError."""
        return self._decide(request_id, approved=False, approver=approver, note=note)

    def decision(self, request_id: str) -> Approval | None:
        """The decision on ``request_id`` (expiry is a denial by ``"intentguard:timeout"``); None while pending."""
        entry = self._entry(request_id)
        if entry is None:
            raise ApprovalError(f"request {request_id!r} is not in approval queue {str(self.path)!r}")
        if entry.state is ApprovalState.PENDING and entry.deadline <= self._clock():
            self._expire_overdue()
            entry = self._entry(request_id)
        return None if entry is None else entry.approval

    def consume(self, request_id: str, args_sha256: str) -> bool:
        """Spend the approval of ``request_id``: True only the first time, only for the same arguments hash."""
        with self._transaction() as conn:
            return conn.execute(_CONSUME, (self._clock(), request_id, args_sha256)).rowcount == 1

    def history(self, *, state: ApprovalState | None = None) -> list[QueueEntry]:
        """Every request ever queued (or those in ``state``), oldest first, with decision and use."""
        self._expire_overdue()
        with self._connect() as conn:
            rows = (conn.execute(_ALL) if state is None else conn.execute(_IN_STATE, (str(state),))).fetchall()
        return [_row_entry(row) for row in rows]

    def _decide(self, request_id: str, *, approved: bool, approver: str, note: str) -> Approval:
        require_approver(approver, error=ApprovalError)
        if not isinstance(note, str):
            raise ApprovalError(f"note {note!r} must be a string")
        now = self._clock()
        with self._transaction() as conn:
            row = conn.execute(_ONE, (request_id,)).fetchone()
            if row is None:
                raise ApprovalError(f"request {request_id!r} is not in approval queue {str(self.path)!r}; check the id")
            entry = _row_entry(row)
            if entry.state is ApprovalState.PENDING and entry.deadline <= now:
                raise ApprovalError(
                    f"request {request_id!r} expired at {format_time(entry.deadline)}; it can no longer be decided, "
                    "the agent must ask again"
                )
            if entry.approval is not None:
                raise ApprovalError(
                    f"request {request_id!r} is already {entry.state} by {entry.approval.approver!r}; "
                    "a request is decided once"
                )
            state = ApprovalState.APPROVED if approved else ApprovalState.DENIED
            conn.execute(_DECIDE, (str(state), approver, now, note, request_id))
        make = Approval.approve if approved else Approval.deny
        return make(entry.request, approver=approver, at=now, note=note)

    def _expire_overdue(self) -> None:
        with self._transaction() as conn:
            conn.execute(_EXPIRE, (TIMEOUT_APPROVER, "nobody decided before the deadline", self._clock()))

    def _entry(self, request_id: str) -> QueueEntry | None:
        with self._connect() as conn:
            row = conn.execute(_ONE, (request_id,)).fetchone()
        return None if row is None else _row_entry(row)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            raise ApprovalError(f"cannot open approval queue {str(self.path)!r}: {exc}; check the path") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise ApprovalError(
                f"approval queue {str(self.path)!r} failed: {exc}; check that it is a writable SQLite file"
            ) from exc
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def _dump(request: ConfirmationRequest) -> str:
    document = {field.name: getattr(request, field.name) for field in fields(ConfirmationRequest)}
    document["args"] = dict(request.args)
    document["reasons"] = [[str(reason.code), reason.message] for reason in request.reasons]
    document["provenance"] = {name: list(origins) for name, origins in request.provenance.items()}
    try:
        return json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ApprovalError(
            f"request {request.id!r} cannot be stored as JSON ({exc}); the approval queue holds JSON arguments only"
        ) from exc


def _load(text: str) -> ConfirmationRequest:
    try:
        data: dict[str, Any] = json.loads(text)
        reasons = tuple(Reason(ReasonCode(code), message) for code, message in data["reasons"])
        provenance = {name: tuple(origins) for name, origins in data["provenance"].items()}
        return ConfirmationRequest(**{**data, "reasons": reasons, "provenance": provenance})
    except (KeyError, TypeError, ValueError) as exc:
        raise ApprovalError(
            f"a stored request cannot be read ({exc}); was it written by a newer intentguard? Upgrade this one"
        ) from exc


def _row_entry(row: tuple[Any, ...]) -> QueueEntry:
    text, state, approver, decided_at, note, queued_at, deadline, used_at = row
    request = _load(text)
    approval = None
    if state != ApprovalState.PENDING:
        approval = Approval(
            request_id=request.id,
            args_sha256=request.args_sha256,
            approved=state == ApprovalState.APPROVED,
            approver=approver,
            decided_at=decided_at,
            note=note,
        )
    return QueueEntry(
        request=request,
        state=ApprovalState(state),
        approval=approval,
        queued_at=queued_at,
        deadline=deadline,
        used_at=used_at,
    )
