"""The check pipeline: stages that may only make a decision stricter, assembled once.

A stage looks at a call and returns ``None`` (no objection) or a :class:`Verdict`. The
pipeline combines verdicts with ``max`` over effects, so no stage can loosen what an
earlier one decided; it stops at the first DENY. A stage that raises turns the call into
a DENY with ``CHECK_FAILED`` naming the exception: the pipeline never raises and never
fails open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from intentguard.constraints import describe
from intentguard.decision import ALLOW, Decision, Effect, Reason, ReasonCode
from intentguard.tenancy import tenant_reasons

if TYPE_CHECKING:
    from intentguard.session import Session

__all__ = [
    "CORE_STAGES",
    "DEFAULT_STAGES",
    "PLAIN_SCALARS",
    "Stage",
    "ToolCall",
    "Verdict",
    "gate_stage",
    "grant_stage",
    "is_plain",
    "liveness_stage",
    "provenance_stage",
    "run_pipeline",
    "shape_stage",
    "snapshot_args",
    "tenant_stage",
]


class ToolCall(NamedTuple):
    """A tool call the agent is about to make: the tool's name, its arguments, the call id.

    A named tuple (immutable, built in C): adapters make one per tool call."""

    name: str
    args: Mapping[str, Any]
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One stage's objection: an effect stricter than ALLOW and the reasons for it."""

    effect: Effect
    reasons: tuple[Reason, ...]


class Stage(Protocol):
    """A pipeline stage: reads the session and the call at ``now``, objects or returns None."""

    def __call__(self, session: Session, call: ToolCall, now: float, /) -> Verdict | None: ...


PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
_NONE = object()


def snapshot_args(args: Any) -> Any:
    """A shallow copy of a call's arguments, so later changes by the caller cannot reach the trail."""
    if args.__class__ is dict:
        return args.copy()
    return dict(args) if isinstance(args, Mapping) else args


def is_plain(value: Any, depth: int = 0) -> bool:
    """Plain JSON data of exact built-in types: a subclass could answer comparisons, hashing or
    string methods its own way and slip past a constraint or the provenance ledger."""
    cls = value.__class__
    if cls in PLAIN_SCALARS:
        return True
    if depth >= 64:
        return False
    if cls is list or cls is tuple:
        return all(is_plain(item, depth + 1) for item in value)
    if cls is dict:
        return all(key.__class__ is str and is_plain(item, depth + 1) for key, item in value.items())
    return False


def shape_stage(session: Session, call: ToolCall, now: float, /) -> Verdict | None:
    """Deny calls that are not shaped like a tool call: a non-string name, non-mapping args,
    argument values that are not plain JSON data.

    Non-string argument names need no check here: they are never declared, so the grant
    treats them as unknown arguments.
    """
    name, args = call.name, call.args
    if not isinstance(name, str):
        sentence = f"the tool name {describe(name)} is not a string."
    elif not isinstance(args, Mapping):
        sentence = f"the arguments of tool {name!r} are a {type(args).__name__}, not a mapping of names to values."
    else:
        odd = next((arg for arg, value in args.items() if not is_plain(value)), _NONE)
        if odd is _NONE:
            return None
        sentence = (
            f"argument {describe(odd)} of tool {name!r} is not plain JSON data (strings, numbers, booleans, "
            "null, lists and string-keyed objects of those, without subclasses)."
        )
    return Verdict(Effect.DENY, (Reason(ReasonCode.MALFORMED_CALL, sentence),))


def liveness_stage(session: Session, call: ToolCall, now: float, /) -> Verdict | None:
    """Deny every call of a revoked session, and every call the session registry cannot vouch for."""
    revoked = session._revoked
    if revoked is None:
        problem = session._lease.check(now)
        return None if problem is None else Verdict(Effect.DENY, (problem,))
    return Verdict(Effect.DENY, (Reason(ReasonCode.SESSION_REVOKED, f"session {session.id!r} was revoked: {revoked}"),))


def tenant_stage(session: Session, call: ToolCall, now: float, /) -> Verdict | None:
    """The tenant boundary: tenant and user still active (re-validated when the cached answer is
    stale), the tool's plan feature still held, every tenant-naming argument names this tenant."""
    reasons = tenant_reasons(session, call, now)
    return Verdict(Effect.DENY, reasons) if reasons else None


def grant_stage(session: Session, call: ToolCall, now: float, /) -> Verdict | None:
    """Tool in the grant, not expired or decayed, budgets left, arguments within constraints."""
    name = call.name
    reasons = session.grant.evaluate(name, call.args, now, session.used(name), session.used_total)
    if not reasons:
        return None
    return Verdict(Effect.DENY, tuple(reasons))


def provenance_stage(session: Session, call: ToolCall, now: float, /) -> Verdict | None:
    """Stage 4: arguments whose value came only from sources the schema does not allow, and
    calls that an instruction found in untrusted content asked for.

    A tainted argument is CONFIRM. A call carrying a value an untrusted instruction named is
    DENY for a high-privilege tool and CONFIRM for a low one; a high-privilege tool whose name
    an untrusted instruction used as its verb (``send`` for ``send_money``) is CONFIRM.
    """
    policy = session._grant._lookup.get(call.name)
    ledger = session.ledger
    if policy is None or not (policy.traced_args or policy.traced_unknown or ledger.instructions or ledger.saturated):
        return None  # nothing to look up: the common case for low-privilege tools, kept cheap
    args = call.args
    if not (ledger.instructions or ledger.saturated or policy.traced_unknown) and ledger.accepts(
        args, policy.traced_args
    ):
        return None  # every traced argument came from where its schema allows
    name = call.name
    effect = Effect.ALLOW
    reasons: list[Reason] = []
    named_by_instruction = False
    pinned = policy.pinned
    for arg, value in call.args.items():
        if arg in pinned:
            continue
        allowed = policy.sources.get(arg, policy.default_sources)
        if "any" not in allowed:
            refused = ledger.refused(value, allowed)
            if refused:
                effect = max(effect, Effect.CONFIRM)
                seen = ", ".join(str(origin) for group in refused for origin in group[:2])
                reasons.append(
                    Reason(
                        ReasonCode.TAINTED_ARGUMENT,
                        f"argument {arg!r} of tool {name!r} is {describe(value)}, which came from "
                        f"{seen}; the schema takes it only from {', '.join(sorted(allowed))}.",
                    )
                )
        if ledger.instructions:
            for instruction, origin in ledger.instruction_matches(value)[:1]:
                named_by_instruction = True
                effect = max(effect, Effect.DENY if policy.high_privilege else Effect.CONFIRM)
                reasons.append(
                    Reason(
                        ReasonCode.UNTRUSTED_INSTRUCTION,
                        f"argument {arg!r} of tool {name!r} is {describe(value)}, which an instruction "
                        f"in untrusted content ({origin.label}) asked for: {instruction.excerpt!r}.",
                    )
                )
    # With on_instruction 'confirm'/'deny' the gate (stage 6) already stops every later call.
    if (
        policy.high_privilege
        and not named_by_instruction
        and session._grant.on_instruction == "match"
        and ledger.instruction_verbs
        and ledger.instruction_verbs & policy.words
    ):
        effect = max(effect, Effect.CONFIRM)
        verbs = ", ".join(sorted(ledger.instruction_verbs & policy.words))
        reasons.append(
            Reason(
                ReasonCode.UNTRUSTED_INSTRUCTION,
                f"untrusted content in this run told the agent to {verbs}, and {name!r} does that.",
            )
        )
    if policy.high_privilege and ledger.saturated:
        effect = max(effect, Effect.CONFIRM)
        reasons.append(
            Reason(
                ReasonCode.TAINTED_ARGUMENT,
                "the session has seen more content than its provenance ledger holds, so the origin "
                "of these arguments cannot be established.",
            )
        )
    return Verdict(effect, tuple(reasons)) if reasons else None


def gate_stage(session: Session, call: ToolCall, now: float, /) -> Verdict | None:
    """Stage 6: once an untrusted instruction was found, every later call (``on_instruction``);
    high-privilege tools the schema always gates, or gates once untrusted content arrived."""
    grant = session._grant
    policy = grant._lookup.get(call.name)
    if policy is None:
        return None
    instructions = session.ledger.instructions
    if instructions and grant.on_instruction != "match":
        _, origin = instructions[0]
        deny = grant.on_instruction == "deny"
        sentence = (
            f"an instruction addressed to the agent was found in untrusted content ({origin.label}); "
            f"the intent {'denies' if deny else 'asks a person to confirm'} every call after that."
        )
        return Verdict(Effect.DENY if deny else Effect.CONFIRM, (Reason(ReasonCode.UNTRUSTED_INSTRUCTION, sentence),))
    if policy.confirm == "tainted" or not policy.high_privilege:
        return None
    if policy.confirm == "always":
        sentence = f"the intent asks a person to confirm every call of {call.name!r}."
        return Verdict(Effect.CONFIRM, (Reason(ReasonCode.CONFIRMATION_REQUIRED, sentence),))
    if session.ledger.untrusted_seen:
        sentence = (
            f"{call.name!r} is high-privilege and untrusted content has entered this run; "
            "the intent asks a person to confirm it."
        )
        return Verdict(Effect.CONFIRM, (Reason(ReasonCode.HIGH_PRIVILEGE_MID_CHAIN, sentence),))
    return None


CORE_STAGES: tuple[Stage, ...] = (shape_stage, liveness_stage, tenant_stage, grant_stage)
"""Stages 1-3 (call shape, session live and in its tenant, grant). ``Session.check`` fuses them into one inline
test for the common ALLOW case and runs them here, in order, whenever that test fails."""

DEFAULT_STAGES: tuple[Stage, ...] = (*CORE_STAGES, provenance_stage, gate_stage)
"""Every stage a guard runs, in order: the core, provenance (4) and the confirmation gate (6)."""


def run_pipeline(stages: Sequence[Stage], session: Session, call: ToolCall, now: float) -> Decision:
    """Run every stage; the result is the strictest verdict, never looser than any stage's."""
    effect = Effect.ALLOW
    reasons: list[Reason] = []
    for stage in stages:
        try:
            verdict = stage(session, call, now)
            if verdict is not None and not (isinstance(verdict, Verdict) and isinstance(verdict.effect, Effect)):
                raise TypeError(f"returned {type(verdict).__name__}, not a Verdict or None")
        except Exception as exc:  # noqa: BLE001 - any failure inside a check is a DENY, by design
            stage_name = getattr(stage, "__name__", type(stage).__name__)
            reasons.append(
                Reason(
                    ReasonCode.CHECK_FAILED,
                    f"the check {stage_name!r} failed with {type(exc).__name__}: {_safe_str(exc)}; "
                    "the call is denied because it could not be checked.",
                )
            )
            return Decision(Effect.DENY, tuple(reasons))
        if verdict is not None:
            if verdict.effect > effect:
                effect = verdict.effect
            reasons.extend(verdict.reasons)
            if effect is Effect.DENY:
                break
    if effect is Effect.ALLOW and not reasons:
        return ALLOW
    return Decision(effect, tuple(reasons))


def _safe_str(exc: BaseException) -> str:
    try:
        return describe(str(exc))[1:-1]
    except Exception:  # noqa: BLE001 - an exception whose message itself fails still denies
        return "(no message)"
