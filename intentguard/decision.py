"""Decisions are values: an effect, stable reason codes with sentences, and a score."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ALLOW", "Decision", "Effect", "Reason", "ReasonCode"]


class Effect(enum.IntEnum):
    """What happens to a call, ordered by strictness: ``max()`` of two effects is the stricter."""

    ALLOW = 0
    CONFIRM = 1
    DENY = 2

    def __str__(self) -> str:
        return self.name


class ReasonCode(enum.StrEnum):
    """Stable machine-readable reasons. Codes are never renamed; new ones may be added."""

    TOOL_NOT_IN_INTENT = "TOOL_NOT_IN_INTENT"
    TOOL_DECAYED = "TOOL_DECAYED"
    UNKNOWN_ARGUMENT = "UNKNOWN_ARGUMENT"
    MISSING_ARGUMENT = "MISSING_ARGUMENT"
    ARG_CONSTRAINT = "ARG_CONSTRAINT"
    DENY_RULE = "DENY_RULE"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    GRANT_EXPIRED = "GRANT_EXPIRED"
    GRANT_NOT_YET_VALID = "GRANT_NOT_YET_VALID"
    SESSION_REVOKED = "SESSION_REVOKED"
    MALFORMED_CALL = "MALFORMED_CALL"
    TAINTED_ARGUMENT = "TAINTED_ARGUMENT"
    UNTRUSTED_INSTRUCTION = "UNTRUSTED_INSTRUCTION"
    HIGH_PRIVILEGE_MID_CHAIN = "HIGH_PRIVILEGE_MID_CHAIN"
    CONFIRMATION_REQUIRED = "CONFIRMATION_REQUIRED"
    CONFIRMATION_DENIED = "CONFIRMATION_DENIED"
    APPROVAL_INVALID = "APPROVAL_INVALID"
    INTENT_UNRESOLVED = "INTENT_UNRESOLVED"
    CHECK_FAILED = "CHECK_FAILED"
    # identity, delegation and the tenant boundary
    TENANT_MISMATCH = "TENANT_MISMATCH"
    DEPTH_EXCEEDED = "DEPTH_EXCEEDED"
    TOKEN_INVALID = "TOKEN_INVALID"  # noqa: S105 - a reason code, not a credential
    TENANT_CONTEXT = "TENANT_CONTEXT"
    # the session registry
    REGISTRY_UNAVAILABLE = "REGISTRY_UNAVAILABLE"
    # divergence scoring
    DIVERGENCE = "DIVERGENCE"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason behind a decision: a stable code and a sentence a person understands."""

    code: ReasonCode
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class Decision:
    """The guard's answer for one tool call.

    ``effect`` is ALLOW, CONFIRM or DENY; ``reasons`` explain every effect stricter than
    ALLOW (an ALLOW has none); ``score`` is the divergence score in [0, 1].
    """

    effect: Effect
    reasons: tuple[Reason, ...] = ()
    score: float = 0.0

    @property
    def allowed(self) -> bool:
        """True only for ALLOW: a CONFIRM must be approved before the call runs."""
        return self.effect is Effect.ALLOW

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        """The reason codes, in the order the stages found them."""
        return tuple(reason.code for reason in self.reasons)

    def explain(self) -> str:
        """One line for people: the effect and every reason sentence."""
        if not self.reasons:
            return f"{self.effect}"
        return f"{self.effect}: " + " ".join(reason.message for reason in self.reasons)


ALLOW = Decision(Effect.ALLOW)
"""The decision for a call that every stage allowed (score 0)."""
