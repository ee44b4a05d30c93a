"""The report as one self-contained HTML file: inline CSS, plots as inline PNGs, no script, no URL.

Every value from a record goes through :func:`html.escape`: tool names, reasons (which quote
injected text) and ids are attacker-reachable. A Content-Security-Policy that allows
no script and no fetch backs that up. Needs the ``[report]`` extra (matplotlib) for plots.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape

from intentguard.report.json import iso_time
from intentguard.report.model import Report, SessionReport, Tally
from intentguard.report.plots import overview_png, score_png
from intentguard.report.reader import TrailReason
from intentguard.report.taint import what
from intentguard.report.timeline import Call

__all__ = ["MAX_PLOTTED_SESSIONS", "render_html"]

MAX_PLOTTED_SESSIONS = 200
"""Sessions beyond this many get their tables but no score plot, to keep the file openable."""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#212121;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;margin:30px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}.muted{color:#666}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:24px}.card.bad b{color:#c62828}.card.ok b{color:#2e7d32}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #e0e0e0;padding:4px 7px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f1f1f1;white-space:nowrap}td.t{white-space:nowrap}td.num{white-space:nowrap;text-align:right}td.id{min-width:90px}
.pill{display:inline-block;border-radius:10px;padding:0 8px;font-weight:600;font-size:12px;color:#fff}
.ALLOW{background:#2e7d32}.CONFIRM{background:#e69500}.DENY{background:#c62828}
tr.deny td{background:#ffebee}tr.confirm td{background:#fff8e1}
tr.departs td{background:#f3e5f5;border-top:2px solid #6a1b9a;border-bottom:2px solid #6a1b9a}
.flag{color:#6a1b9a;font-weight:700}.left{color:#c62828;font-weight:600}.stayed{color:#2e7d32}
section.session{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:4px 18px 12px;margin:18px 0}
section.session.departed{border-left:6px solid #c62828}
img.plot{max-width:100%;display:block}.warn{color:#8d6e00;background:#fff8e1;padding:4px 8px}
code{font-size:12px}ul.tools{margin:4px 0;padding-left:20px}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def render_html(report: Report) -> str:
    """The whole report as one HTML document (raises MissingExtraError without matplotlib)."""
    total = report.total
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>intentguard divergence report</title><style>{_CSS}</style></head><body><main>",
        "<h1>intentguard divergence report</h1>",
        f'<p class="muted">{_trails(report)}</p>',
        '<div class="cards">',
        _card("sessions", total.sessions),
        _card("left their intent", total.left_intent, "bad" if total.left_intent else "ok"),
        _card("tool calls", total.calls),
        _card("allowed", total.allowed, "ok"),
        _card("denied", total.denied, "bad" if total.denied else ""),
        _card("asked a person", total.asked),
        _card("tainted values", total.tainted, "bad" if total.tainted else ""),
        "</div>",
        "<h2>Where each run left its intent</h2>",
    ]
    if report.sessions:
        parts.append(_img(overview_png(report.sessions[:MAX_PLOTTED_SESSIONS]), "every session's calls"))
    parts.append(_where_table(report.sessions))
    limits = report.thresholds
    parts.append(
        f'<p class="muted">Divergence thresholds: narrow at {limits.narrow:g}, revoke at {limits.revoke:g}. '
        + (
            "Planned tools come from the schemas given."
            if report.schemas_given
            else "No schemas were given: whether a tool was planned is known only where the guard said so."
        )
        + "</p>"
    )
    parts += ["<h2>Tenants</h2>", _tallies("tenant", report.tenants)]
    parts += ["<h2>Agents</h2>", _tallies("agent", report.agents)]
    parts.append("<h2>Sessions</h2>")
    for index, session in enumerate(report.sessions):
        parts.append(_session(session, report, plotted=index < MAX_PLOTTED_SESSIONS))
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _trails(report: Report) -> str:
    items = []
    for chain in report.chains:
        state = "hash chain intact" if chain.intact else f"hash chain BROKEN at line(s) {_e(chain.breaks)}"
        items.append(f"{_e(chain.source)}: {chain.records} records, {state}")
    return "Trails: " + ("; ".join(items) or "none")


def _card(label: str, value: int, tone: str = "") -> str:
    return f'<div class="card {tone}"><b>{value}</b>{_e(label)}</div>'


def _pill(effect: str) -> str:
    return f'<span class="pill {_e(effect)}">{_e(effect)}</span>'


def _table(header: Sequence[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _reasons(reasons: Iterable[TrailReason]) -> str:
    return "<br>".join(f"<code>{_e(reason.code)}</code> {_e(reason.message)}" for reason in reasons)


def _where_table(sessions: Sequence[SessionReport]) -> str:
    rows = []
    for session in sessions:
        call = session.departure
        if call is None:
            where = f'<span class="stayed">stayed within its intent</span> ({session.tally.calls} calls)'
        else:
            where = (
                f'<span class="left">left at call #{call.seq} <b>{_e(call.tool)}</b></span> '
                f"{_pill(call.effect)}<br>{_reasons(call.reasons) or 'score reached the narrowing threshold'}"
            )
        rows.append(
            f'<tr><td class="id"><a href="#s-{_e(session.id)}">{_e(session.id)}</a></td>'
            f'<td class="id">{_e(session.tenant)}</td><td class="id">{_e(session.agent)}</td>'
            f'<td class="id">{_e(session.intent)}</td><td>{where}</td></tr>'
        )
    return _table(["session", "tenant", "agent", "intent", "where it left its intent"], rows)


def _tallies(scope: str, tallies: Iterable[Tally]) -> str:
    header = [scope, "sessions", "left intent", "calls", "allowed", "denied", "pending", "tainted", "asked"]
    header += ["approved", "max score"]
    rows = []
    for tally in tallies:
        numbers = [tally.sessions, tally.left_intent, tally.calls, tally.allowed, tally.denied, tally.pending]
        numbers += [tally.tainted, tally.asked, tally.approved]
        cells = "".join(f'<td class="num">{number}</td>' for number in numbers)
        rows.append(f'<tr><td>{_e(tally.name)}</td>{cells}<td class="num">{tally.max_score:.2f}</td></tr>')
    return _table(header, rows)


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"<code>{_e(name)}</code>" for name in names) or '<span class="muted">none</span>'


def _session(session: SessionReport, report: Report, *, plotted: bool) -> str:
    departure = session.departure
    parts = [
        f'<section class="session{" departed" if departure else ""}" id="s-{_e(session.id)}">',
        f"<h3>Session {_e(session.id)}</h3>",
        f'<p class="muted">tenant <b>{_e(session.tenant)}</b> · user {_e(session.user)} · agent '
        f"<b>{_e(session.agent)}</b> · intent <b>{_e(session.intent)}</b> {_e(session.intent_version)} · "
        f"from {_e(iso_time(session.start))}</p>",
    ]
    parts += [f'<p class="warn">{_e(warning)}</p>' for warning in session.warnings]
    if plotted:
        parts.append(_img(score_png(session, report.thresholds), f"divergence score of session {session.id}"))
    unused = _names(session.unused) if session.planned_known else '<span class="muted">unknown (no schema)</span>'
    parts += [
        "<h3>Intent vs action</h3><ul class='tools'>",
        f"<li>planned and used: {_names(session.used)}</li>",
        f"<li>planned, tried, never allowed: {_names(session.blocked)}</li>",
        f"<li>planned, never tried: {unused}</li>",
        f'<li class="{"left" if session.unplanned else ""}">outside the intent, attempted: '
        f"{_names(session.unplanned)}</li></ul>",
    ]
    if session.taints:
        rows = [
            f"<tr><td class='num'>{item.seq}</td><td>{_e(item.tool)}</td>"
            f"<td>{_e(what(item.taint))}</td><td><code>{_e(item.taint.value or '')}</code></td>"
            f"<td>{_names(item.taint.origins)}</td><td>{_e(', '.join(item.taint.allowed))}</td>"
            f"<td>{_e(item.taint.instruction or '')}</td></tr>"
            for item in session.taints
        ]
        parts += ["<h3>Tainted arguments and untrusted instructions</h3>"]
        parts.append(_table(["call", "tool", "argument", "value", "came from", "schema allows", "instruction"], rows))
    if session.confirmations:
        rows = [
            f"<tr><td class='num'>{item.seq}</td><td>{_e(item.tool)}</td>"
            f"<td>{_names([reason.code for reason in item.asked_because])}</td>"
            f"<td>{_e(item.approver or 'nobody')}</td><td>{_e(item.outcome)}</td></tr>"
            for item in session.confirmations
        ]
        parts += ["<h3>Confirmations</h3>"]
        parts.append(_table(["call", "tool", "asked because", "approver", "outcome"], rows))
    parts += ["<h3>Timeline</h3>", _timeline(session), "</section>"]
    return "\n".join(parts)


def _timeline(session: SessionReport) -> str:
    departure = session.departure
    rows = [_timeline_row(call, departs=call is departure) for call in session.calls]
    return _table(["#", "time", "tool", "decision", "score", "reasons"], rows)


def _timeline_row(call: Call, *, departs: bool) -> str:
    kind = "departs" if departs else {"DENY": "deny", "CONFIRM": "confirm"}.get(call.final_effect, "")
    decision = _pill(call.effect)
    if call.approver is not None:
        verdict = "approved" if call.approved else "denied"
        decision += f" {_e(verdict)} by {_e(call.approver)} → {_pill(call.final_effect)}"
    reasons = _reasons(call.final_reasons) if call.final_effect != "ALLOW" else _reasons(call.reasons)
    flag = ' <span class="flag">⚑ left intent</span>' if departs else ""
    return (
        f'<tr class="{kind}"><td class="num">{call.seq}</td><td class="t">{_e(iso_time(call.time)[11:23])}</td>'
        f"<td><b>{_e(call.tool)}</b>{flag}</td><td>{decision}</td><td class='num'>{call.score:.2f}</td>"
        f"<td>{reasons}</td></tr>"
    )
