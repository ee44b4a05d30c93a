"""The timeline of one session: each attempted call, the guard's answer, and a person's if asked.

A CONFIRM is followed in the trail by a second decision for the same call carrying the
person's answer (approver, approved); the two become one :class:`Call`, so a
timeline counts attempts, not records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from intentguard.report.reader import Entry, TrailReason
from intentguard.report.taint import parse_taint

__all__ = ["CIRCUMSTANCE_CODES", "Call", "Confirmation", "build_calls", "confirmation_of"]

# Reasons that describe the run's circumstances, not the agent acting outside its intent.
# Any other reason on a call that was not allowed (unknown future codes included) counts as leaving it.
CIRCUMSTANCE_CODES = frozenset(
    {
        "GRANT_EXPIRED",
        "GRANT_NOT_YET_VALID",
        "SESSION_REVOKED",
        "CONFIRMATION_REQUIRED",
        "CONFIRMATION_DENIED",
        "HIGH_PRIVILEGE_MID_CHAIN",
        "APPROVAL_INVALID",
        "CHECK_FAILED",
        "REGISTRY_UNAVAILABLE",
        "INTENT_UNRESOLVED",
        "TOKEN_INVALID",
    }
)
# Reasons only a tool inside the grant can get: without schemas they show the tool was planned.
_IN_GRANT_CODES = frozenset(
    {"ARG_CONSTRAINT", "UNKNOWN_ARGUMENT", "MISSING_ARGUMENT", "BUDGET_EXHAUSTED", "TOOL_DECAYED", "TAINTED_ARGUMENT"}
)


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call the agent attempted: the guard's answer and, if a person was asked, theirs."""

    seq: int
    time: float
    call_id: str | None
    tool: str
    effect: str
    reasons: tuple[TrailReason, ...]
    score: float
    planned: bool | None
    departs: bool
    """True when this call took the run outside its intent (see the module docstring)."""
    approver: str | None = None
    approved: bool | None = None
    final_effect: str = ""
    """The effect after the person's answer (or ``effect`` when nobody was asked)."""
    final_reasons: tuple[TrailReason, ...] = ()
    args_sha256: str = ""
    source: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A call a person was asked about, who answered, and what came of it."""

    seq: int
    tool: str
    asked_because: tuple[TrailReason, ...]
    approver: str | None
    outcome: str
    """``approved``, ``denied``, ``approved, then denied on recheck`` or ``unanswered``."""


def build_calls(entries: Iterable[Entry], planned_tools: Mapping[str, str] | None, narrow: float) -> list[Call]:
    """One :class:`Call` per attempt, in order; a person's answer joins the call it was asked about."""
    calls: list[Call] = []
    for entry in entries:
        event = entry.event
        approval = event.approval
        reasons = tuple(event.reasons)
        if approval is not None:
            index = _asked_call(calls, event.tool, approval.args_sha256 or event.args_sha256)
            if index is not None:
                asked = calls[index]
                calls[index] = _with_answer(asked, entry)
                continue
        codes = {reason.code for reason in reasons}
        if planned_tools is not None:
            planned: bool | None = event.tool in planned_tools
        elif "TOOL_NOT_IN_INTENT" in codes:
            planned = False
        else:
            planned = True if event.effect == "ALLOW" or codes & _IN_GRANT_CODES else None
        departs = event.score >= narrow or (event.effect != "ALLOW" and any(map(_departs, reasons)))
        call = Call(
            seq=event.seq,
            time=entry.record.toe,
            call_id=event.call_id,
            tool=event.tool,
            effect="CONFIRM" if approval is not None else event.effect,
            reasons=reasons,
            score=event.score,
            planned=planned,
            departs=departs,
            final_effect=event.effect,
            final_reasons=reasons,
            source=entry.source,
            line=entry.line,
            args_sha256=event.args_sha256,
        )
        calls.append(call if approval is None else _with_answer(call, entry))
    return calls


def _departs(reason: TrailReason) -> bool:
    """Whether a reason says the agent acted outside its intent (unknown codes do: fail loud)."""
    if reason.code in CIRCUMSTANCE_CODES:
        return False
    taint = parse_taint(reason.code, reason.message)
    # "an instruction was found earlier, so a person confirms every later call" is about the run,
    # not about this call; the calls that carry what the instruction asked for do depart.
    return taint is None or taint.kind != "instruction"


def _asked_call(calls: list[Call], tool: str, digest: str) -> int | None:
    """The latest unanswered CONFIRM for this tool and these exact arguments: what a person answered."""
    for index in range(len(calls) - 1, -1, -1):
        call = calls[index]
        if call.effect == "CONFIRM" and call.approver is None and call.tool == tool and call.args_sha256 == digest:
            return index
    return None


def _with_answer(call: Call, entry: Entry) -> Call:
    event = entry.event
    approval = event.approval
    if approval is None:  # pragma: no cover - only called for answered decisions
        return call
    return replace(
        call,
        approver=approval.approver,
        approved=approval.approved,
        final_effect=event.effect,
        final_reasons=tuple(event.reasons),
        score=max(call.score, event.score),
    )


def confirmation_of(call: Call) -> Confirmation:
    """What came of asking a person about ``call`` (a CONFIRM)."""
    if call.approver is None:
        outcome = "unanswered"
    elif not call.approved:
        outcome = "denied"
    elif call.final_effect == "ALLOW":
        outcome = "approved"
    else:
        outcome = "approved, then denied on recheck"
    return Confirmation(call.seq, call.tool, call.reasons, call.approver, outcome)
