"""The report as Markdown: for pull requests, tickets and terminals.

Every value from a record is escaped: tool names and reasons are attacker-reachable
text, and must read as text, never as a link, an image, a table cell boundary or HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from intentguard.report.json import iso_time
from intentguard.report.model import Report, SessionReport, Tally
from intentguard.report.reader import TrailReason
from intentguard.report.taint import what
from intentguard.report.timeline import Call

__all__ = ["md", "render_markdown"]

_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|~&$:@])")
_WWW = re.compile(r"(?i)(www)\.")
_BREAKS = re.compile(r"[\r\n\t\f\v\u2028\u2029]+")


def md(value: object) -> str:
    """``value`` as inert Markdown text: one line, every punctuation mark that could act escaped."""
    # ':', '@' and "www." are escaped so no URL or address autolinks: record text is never a link.
    return _WWW.sub(r"\1\\.", _SPECIAL.sub(r"\\\1", _BREAKS.sub(" ", str(value))))


def render_markdown(report: Report) -> str:
    """The whole report as one Markdown document."""
    out: list[str] = ["# intentguard divergence report", ""]
    out += [_trail_line(chain.source, chain.records, chain.breaks) for chain in report.chains]
    limits = report.thresholds
    out += [
        "",
        f"Divergence thresholds: narrow at {limits.narrow:g}, revoke at {limits.revoke:g}. "
        + ("Planned tools come from the schemas given." if report.schemas_given else _NO_SCHEMAS),
        "",
        "## Where each run left its intent",
        "",
    ]
    out += [f"- {_where(session)}" for session in report.sessions] or ["No sessions in these trails."]
    out += ["", "## Totals", ""]
    out += _tally_table("Scope", [report.total])
    out += ["", "## Tenants", "", *_tally_table("Tenant", report.tenants)]
    out += ["", "## Agents", "", *_tally_table("Agent", report.agents)]
    for session in report.sessions:
        out += ["", *_session(session)]
    return "\n".join(out) + "\n"


_NO_SCHEMAS = "No schemas were given: whether a tool was planned is known only where the guard said so."


def _trail_line(source: str, records: int, breaks: Sequence[int]) -> str:
    chain = "hash chain intact" if not breaks else f"hash chain BROKEN at line(s) {', '.join(map(str, breaks))}"
    return f"- Trail {md(source)}: {records} records, {chain}."


def _where(session: SessionReport) -> str:
    who = f"**{md(session.id)}** ({md(session.tenant)} / {md(session.agent)}, {md(session.intent)})"
    call = session.departure
    if call is None:
        return f"{who}: stayed within its intent ({session.tally.calls} calls)."
    return f"{who}: left its intent at call \\#{call.seq} {md(call.tool)}: {call.effect}, {_reasons(call.reasons)}"


def _reasons(reasons: Iterable[TrailReason]) -> str:
    return " ".join(f"{md(reason.code)}: {md(reason.message)}" for reason in reasons) or "score at the threshold"


def _row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    return [_row(header), _row("---" for _ in header), *(_row(row) for row in rows)]


def _tally_table(scope: str, tallies: Iterable[Tally]) -> list[str]:
    header = [scope, "sessions", "left intent", "calls", "allowed", "denied", "pending", "tainted", "asked", "approved"]
    header.append("max score")
    return _table(
        header,
        (
            [
                md(t.name),
                t.sessions,
                t.left_intent,
                t.calls,
                t.allowed,
                t.denied,
                t.pending,
                t.tainted,
                t.asked,
                t.approved,
                f"{t.max_score:.2f}",
            ]
            for t in tallies
        ),
    )


def _names(names: Sequence[str]) -> str:
    return ", ".join(md(name) for name in names) or "none"


def _session(session: SessionReport) -> list[str]:
    out = [
        f"## Session {md(session.id)}",
        "",
        f"Tenant {md(session.tenant)}, user {md(session.user)}, agent {md(session.agent)}, "
        f"intent {md(session.intent)} {md(session.intent_version)}, from {iso_time(session.start)}.",
        "",
        _where(session),
    ]
    out += [f"\n> warning: {md(warning)}" for warning in session.warnings]
    out += ["", "### Intent vs action", ""]
    out.append(f"- planned and used: {_names(session.used)}")
    out.append(f"- planned, tried, never allowed: {_names(session.blocked)}")
    out.append(f"- planned, never tried: {_names(session.unused) if session.planned_known else 'unknown (no schema)'}")
    out.append(f"- outside the intent, attempted: {_names(session.unplanned)}")
    if session.taints:
        out += ["", "### Tainted arguments and untrusted instructions", ""]
        out += _table(
            ["call", "tool", "argument", "value", "came from", "schema allows", "instruction"],
            (
                [
                    item.seq,
                    md(item.tool),
                    md(what(item.taint)),
                    md(item.taint.value or ""),
                    _names(item.taint.origins),
                    md(", ".join(item.taint.allowed)),
                    md(item.taint.instruction or ""),
                ]
                for item in session.taints
            ),
        )
    if session.confirmations:
        out += ["", "### Confirmations", ""]
        out += _table(
            ["call", "tool", "asked because", "approver", "outcome"],
            (
                [
                    item.seq,
                    md(item.tool),
                    _names([reason.code for reason in item.asked_because]),
                    md(item.approver or "nobody"),
                    md(item.outcome),
                ]
                for item in session.confirmations
            ),
        )
    out += ["", "### Timeline", ""]
    out += _table(
        ["#", "time", "tool", "decision", "score", "reasons"],
        (
            [
                f"**{call.seq} ⚑**" if call is session.departure else call.seq,
                iso_time(call.time),
                md(call.tool),
                call.effect if call.final_effect == call.effect else f"{call.effect} → {call.final_effect}",
                f"{call.score:.2f}",
                _timeline_reasons(call),
            ]
            for call in session.calls
        ),
    )
    return out


def _timeline_reasons(call: Call) -> str:
    text = _reasons(call.reasons) if call.effect != "ALLOW" else ""
    if call.approver is not None:
        text += f" {'approved' if call.approved else 'denied'} by {md(call.approver)}"
        if call.final_effect == "DENY" and call.approved:
            text += f"; then {_reasons(call.final_reasons)}"
    return text.strip()
