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

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DECISION_EVENT", "GENESIS", "AuditRecord", "DecisionEvent", "args_digest"]

DECISION_EVENT = "https://intentguard.dev/events/decision"
GENESIS = "0" * 64
"""The ``prev`` of the first record in a trail."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReasonEntry(_Frozen):
    """A reason as recorded: its stable code and its sentence."""

    code: str
    message: str


class DecisionEvent(_Frozen):
    """What was asked, for whom, and what the guard answered."""

    seq: int = Field(ge=0, description="The decision's number within its session.")
    session: str
    intent: str
    intent_version: str
    agent: str
    actors: list[str] = Field(description="The actor chain, the human first and the acting agent last.")
    root_auth: str = Field(description="The human authorization event the run hangs from.")
    call_id: str | None
    tool: str
    args_sha256: str
    effect: str
    reasons: list[ReasonEntry]
    score: float = Field(ge=0.0, le=1.0)


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

    @property
    def decision(self) -> DecisionEvent:
        """The decision event this record carries."""
        return self.events[DECISION_EVENT]

    def to_json(self) -> str:
        """The record as one line of compact JSON (deterministic for a given record)."""
        return self.model_dump_json()

    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`to_json`: what the next record's ``prev`` must be."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()


def args_digest(args: Any) -> str:
    """SHA-256 (hex) of the arguments' canonical JSON; values that are not JSON use their repr."""
    try:
        text = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(args)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
