"""The report model: audit entries become sessions, timelines, score curves and intent-vs-action.

Pure: :func:`build_report` reads no file and no clock; renderers (Markdown, JSON, HTML) only
lay the model out. A session *leaves its intent* at its first call that the guard stopped
for what the agent did — a tool outside the intent, an argument outside its constraints, a
value or instruction from untrusted content, a divergence score at the narrowing threshold —
as opposed to the run's circumstances (an expired grant, a revoked session, a schema that
always asks a person).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from intentguard.errors import ConfigurationError
from intentguard.report.reader import ChainStatus, Entry
from intentguard.report.taint import Taint, entered_at, parse_taint
from intentguard.report.timeline import Call, Confirmation, build_calls, confirmation_of

if TYPE_CHECKING:
    from intentguard.schema import IntentSchema

__all__ = ["Report", "SessionReport", "TaintedValue", "Tally", "Thresholds", "ToolUse", "build_report"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The divergence scores at which the guard narrows a grant and revokes a session (default:
    the operating point the shipped divergence model was trained for, :meth:`shipped`)."""

    narrow: float = 0.5
    revoke: float = 0.8

    @classmethod
    def shipped(cls) -> Thresholds:
        """The thresholds training chose for the shipped model (``intentguard/models``)."""
        from intentguard.divergence_model import DivergenceModel

        chosen = DivergenceModel.default().thresholds
        return cls(narrow=chosen.get("narrow", 0.5), revoke=chosen.get("revoke", 0.8))

    def __post_init__(self) -> None:
        if not 0.0 <= self.narrow <= self.revoke <= 1.0:
            raise ConfigurationError(
                f"thresholds narrow={self.narrow!r}, revoke={self.revoke!r} must satisfy 0 <= narrow <= revoke <= 1"
            )


@dataclass(frozen=True, slots=True)
class TaintedValue:
    """A taint found on one call."""

    seq: int
    tool: str
    taint: Taint


@dataclass(slots=True)
class ToolUse:
    """How one tool figured in a session: planned or not, and what its calls got."""

    tool: str
    planned: bool | None
    privilege: str | None = None
    attempts: int = 0
    allowed: int = 0
    denied: int = 0


@dataclass(slots=True)
class Tally:
    """Counts for a session, a tenant, an agent or the whole report."""

    name: str
    sessions: int = 0
    calls: int = 0
    allowed: int = 0
    denied: int = 0
    pending: int = 0
    left_intent: int = 0
    tainted: int = 0
    asked: int = 0
    approved: int = 0
    max_score: float = 0.0

    def add(self, session: SessionReport) -> None:
        """Count one more session into this tally."""
        own = session.tally
        self.sessions += 1
        self.left_intent += session.departure is not None
        for name in ("calls", "allowed", "denied", "pending", "tainted", "asked", "approved"):
            setattr(self, name, getattr(self, name) + getattr(own, name))
        self.max_score = max(self.max_score, own.max_score)


@dataclass(slots=True)
class SessionReport:
    """One agent run: who, what intent, every call in order, and where it left its intent."""

    id: str
    tenant: str
    user: str
    agent: str
    intent: str
    intent_version: str
    calls: list[Call]
    tools: list[ToolUse]
    planned_known: bool
    taints: list[TaintedValue]
    confirmations: list[Confirmation]
    tally: Tally
    untrusted_from: list[int] = field(default_factory=list)
    """The calls whose output brought in the untrusted content named by the taints (by seq)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def departure(self) -> Call | None:
        """The first call that took the run outside its intent, or None if it never left."""
        return next((call for call in self.calls if call.departs), None)

    @property
    def used(self) -> list[str]:
        """Planned tools the run used (at least one call allowed)."""
        return [use.tool for use in self.tools if use.planned is True and use.allowed]

    @property
    def blocked(self) -> list[str]:
        """Planned tools the run tried but never got to use."""
        return [use.tool for use in self.tools if use.planned is True and use.attempts and not use.allowed]

    @property
    def unused(self) -> list[str]:
        """Planned tools the run never tried (only known with schemas)."""
        return [use.tool for use in self.tools if use.planned is True and not use.attempts]

    @property
    def unplanned(self) -> list[str]:
        """Tools outside the intent that the run attempted."""
        return [use.tool for use in self.tools if use.planned is False]

    @property
    def start(self) -> float:
        """When the first recorded decision was taken (seconds since the epoch)."""
        return min((call.time for call in self.calls), default=0.0)


@dataclass(frozen=True, slots=True)
class Report:
    """Every session in the given trails, with tenant and agent tallies."""

    sessions: list[SessionReport]
    tenants: list[Tally]
    agents: list[Tally]
    total: Tally
    chains: list[ChainStatus]
    thresholds: Thresholds
    schemas_given: bool


def build_report(
    entries: Iterable[Entry],
    *,
    chains: Sequence[ChainStatus] = (),
    schemas: Mapping[str, IntentSchema] | None = None,
    thresholds: Thresholds | None = None,
) -> Report:
    """Group decisions into sessions and derive everything a report shows (pure, deterministic)."""
    limits = thresholds or Thresholds.shipped()
    grouped: dict[str, list[Entry]] = {}
    seen: set[str] = set()
    for entry in entries:
        if entry.record.jti in seen:
            continue  # the same trail given twice, or one file read twice: a decision counts once
        seen.add(entry.record.jti)
        grouped.setdefault(entry.event.session, []).append(entry)
    sessions = [_session(group, schemas, limits) for group in grouped.values()]
    sessions.sort(key=lambda session: (session.start, session.id))
    tenants: dict[str, Tally] = {}
    agents: dict[str, Tally] = {}
    total = Tally("all")
    for session in sessions:
        tenants.setdefault(session.tenant, Tally(session.tenant)).add(session)
        agents.setdefault(session.agent, Tally(session.agent)).add(session)
        total.add(session)
    return Report(
        sessions=sessions,
        tenants=sorted(tenants.values(), key=lambda tally: tally.name),
        agents=sorted(agents.values(), key=lambda tally: tally.name),
        total=total,
        chains=list(chains),
        thresholds=limits,
        schemas_given=schemas is not None,
    )


def _session(entries: list[Entry], schemas: Mapping[str, IntentSchema] | None, limits: Thresholds) -> SessionReport:
    entries.sort(key=lambda entry: (entry.event.seq, entry.record.toe))
    first = entries[0]
    event = first.event
    warnings = _disagreements(entries)
    schema = None if schemas is None else schemas.get(event.intent)
    if schema is not None and schema.version != event.intent_version:
        warnings.append(
            f"the schema given for {event.intent!r} is version {schema.version}, the trail recorded "
            f"{event.intent_version}: planned tools are unknown"
        )
        schema = None
    elif schemas is not None and schema is None:
        warnings.append(f"no schema named {event.intent!r} was given: planned tools are unknown")
    planned_tools = None if schema is None else {name: spec.privilege.value for name, spec in schema.tools.items()}
    calls = build_calls(entries, planned_tools, limits.narrow)
    tally = Tally(event.session, sessions=1)
    taints: list[TaintedValue] = []
    confirmations: list[Confirmation] = []
    for call in calls:
        tally.calls += 1
        tally.allowed += call.final_effect == "ALLOW"
        tally.denied += call.final_effect == "DENY"
        tally.pending += call.final_effect == "CONFIRM"
        tally.max_score = max(tally.max_score, call.score)
        taints.extend(
            TaintedValue(call.seq, call.tool, taint)
            for reason in call.reasons
            if (taint := parse_taint(reason.code, reason.message)) is not None
        )
        if call.effect == "CONFIRM":
            confirmations.append(confirmation_of(call))
    tally.tainted = len(taints)
    tally.asked = len(confirmations)
    tally.approved = sum(item.outcome == "approved" for item in confirmations)
    tally.left_intent = any(call.departs for call in calls)
    return SessionReport(
        id=event.session,
        tenant=first.record.aud,
        user=first.record.sub,
        agent=event.agent,
        intent=event.intent,
        intent_version=event.intent_version,
        calls=calls,
        tools=_tool_uses(calls, planned_tools),
        planned_known=planned_tools is not None,
        taints=taints,
        confirmations=confirmations,
        tally=tally,
        untrusted_from=_entry_points(calls, taints),
        warnings=warnings,
    )


def _entry_points(calls: list[Call], taints: list[TaintedValue]) -> list[int]:
    by_call = {(call.tool, call.call_id): call.seq for call in calls if call.call_id is not None}
    found = {by_call.get(where) for item in taints for where in map(entered_at, item.taint.origins) if where}
    return sorted(seq for seq in found if seq is not None)


def _disagreements(entries: list[Entry]) -> list[str]:
    warnings = []
    for label, values in (
        ("tenants", {entry.record.aud for entry in entries}),
        ("agents", {entry.event.agent for entry in entries}),
        ("intents", {f"{entry.event.intent} {entry.event.intent_version}" for entry in entries}),
    ):
        if len(values) > 1:
            warnings.append(f"records of this session name different {label}: {', '.join(sorted(values))}")
    seqs = [entry.event.seq for entry in entries]
    if len(set(seqs)) != len(seqs):
        warnings.append("some decision numbers (seq) appear more than once: two trails may share a session id")
    return warnings


def _tool_uses(calls: list[Call], planned_tools: Mapping[str, str] | None) -> list[ToolUse]:
    uses: dict[str, ToolUse] = {}
    for name, privilege in sorted((planned_tools or {}).items()):
        uses[name] = ToolUse(name, True, privilege)
    for call in calls:
        use = uses.setdefault(call.tool, ToolUse(call.tool, call.planned))
        # Without schemas, one call outside the intent settles it; an in-grant reason shows it was planned.
        if use.planned is not False and call.planned is not None:
            use.planned = call.planned
        use.attempts += 1
        use.allowed += call.final_effect == "ALLOW"
        use.denied += call.final_effect == "DENY"
    return sorted(uses.values(), key=lambda use: (use.planned is not True, use.tool))
