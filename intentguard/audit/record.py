"""The audit record: one per decision, shaped after RFC 8417 security event tokens.

``jti`` identifies the record, ``iat`` is when it was written and ``toe`` when the decision
was taken, ``txn`` is the task (the session), ``aud`` the tenant and ``sub`` the human.
The decision itself is the one event under :data:`DECISION_EVENT`. Arguments appear only as
a SHA-256 of their canonical JSON, never raw. ``prev`` is the SHA-256 of the previous
record's JSON line, so a trail is a hash chain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = [
    "DECISION_EVENT",
    "GENESIS",
    "ApprovalEntry",
    "AuditRecord",
    "DecisionEvent",
    "ReasonEntry",
    "args_digest",
    "build_record",
]

DECISION_EVENT = "https://intentguard.dev/events/decision"
GENESIS = "0" * 64
"""The ``prev`` of the first record in a trail."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReasonEntry(_Frozen):
    """A reason as recorded: its stable code and its sentence."""

    code: str
    message: str


class ApprovalEntry(_Frozen):
    """A human's answer to a confirmation request, as recorded."""

    request: str
    approver: str
    approved: bool
    note: str
    args_sha256: str


class DecisionEvent(_Frozen):
    """What was asked, for whom, and what the guard answered."""

    seq: int = Field(ge=0, description="The decision's number within its session.")
    session: str
    intent: str
    intent_version: str
    agent: str
    actors: list[str] = Field(description="The actor chain, the human first and the acting agent last.")
    root_auth: str = Field(description="The human authorization event the run hangs from.")
    depth: int = Field(0, ge=0, description="Delegation hops between the root session and this one.")
    parent: str | None = Field(None, description="The session that delegated to this one (None for a root).")
    call_id: str | None
    tool: str
    args_sha256: str
    effect: str
    reasons: list[ReasonEntry]
    score: float = Field(ge=0.0, le=1.0)
    approval: ApprovalEntry | None = Field(None, description="The human answer this decision rests on.")


class AuditRecord(_Frozen):
    """One audit record (a security event token's claims), immutable."""

    jti: str
    iss: str = "intentguard"
    iat: int
    toe: float
    txn: str
    aud: str
    sub: str
    events: dict[str, DecisionEvent]
    prev: str = Field(pattern=r"^[0-9a-f]{64}$")
    _line: str | None = PrivateAttr(None)

    @classmethod
    def from_line(cls, line: str) -> AuditRecord:
        """Parse and validate one JSON line of a trail; the record keeps the exact line it came from."""
        record = cls.model_validate_json(line)
        record._line = line.rstrip("\n")
        return record

    @property
    def decision(self) -> DecisionEvent:
        """The decision event this record carries."""
        return self.events[DECISION_EVENT]

    def to_json(self) -> str:
        """The record as one line of compact JSON: the exact line hashed into the next ``prev``."""
        if self._line is None:
            self._line = self.model_dump_json()
        return self._line

    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`to_json`: what the next record's ``prev`` must be."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()


def args_digest(args: Any) -> str:
    """SHA-256 (hex) of the arguments' canonical JSON; values that are not JSON use their repr."""
    try:
        text = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(args)
        except RecursionError:
            text = "<arguments nested too deep to serialise>"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_record(
    *,
    jti: str,
    iat: int,
    toe: float,
    txn: str,
    aud: str,
    sub: str,
    event: dict[str, Any],
    prev: str,
) -> AuditRecord:
    """Assemble and validate a record, serialising it exactly once.

    The writer calls this for every decision; ``event`` holds :class:`DecisionEvent`'s fields
    with ``reasons`` as ``(code, message)`` pairs. The JSON line is kept on the record, so the
    hash chain and every sink see the same bytes.
    """
    data = {
        "jti": jti,
        "iss": "intentguard",
        "iat": iat,
        "toe": toe,
        "txn": txn,
        "aud": aud,
        "sub": sub,
        "events": {DECISION_EVENT: {**event, "reasons": [{"code": c, "message": m} for c, m in event["reasons"]]}},
        "prev": prev,
    }
    record = AuditRecord.model_validate(data)
    record._line = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return record
