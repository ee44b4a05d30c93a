"""The report as a stable, versioned JSON document, for programs and dashboards.

The document names its format and version (``{"format": "intentguard-report", "version": 1}``).
Within a version keys are only ever added, never renamed or removed. Output is
deterministic: the same trails give the same bytes (no generation time inside).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from intentguard.report.model import Report, SessionReport, Tally
from intentguard.report.reader import TrailReason
from intentguard.report.timeline import Call

__all__ = ["REPORT_FORMAT", "REPORT_VERSION", "iso_time", "render_json", "report_document"]

REPORT_FORMAT = "intentguard-report"
REPORT_VERSION = 1


def iso_time(seconds: float) -> str:
    """A decision time (seconds since the epoch) as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_json(report: Report) -> str:
    """The report document as indented JSON text (ends with a newline)."""
    return json.dumps(report_document(report), indent=2, ensure_ascii=False) + "\n"


def report_document(report: Report) -> dict[str, Any]:
    """The report as plain JSON-ready data (see the module docstring for the stability promise)."""
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "thresholds": {"narrow": report.thresholds.narrow, "revoke": report.thresholds.revoke},
        "schemas_given": report.schemas_given,
        "trails": [
            {
                "source": chain.source,
                "records": chain.records,
                "chains": chain.chains,
                "intact": chain.intact,
                "breaks": list(chain.breaks),
            }
            for chain in report.chains
        ],
        "total": _tally(report.total),
        "tenants": [_tally(tally) for tally in report.tenants],
        "agents": [_tally(tally) for tally in report.agents],
        "sessions": [_session(session) for session in report.sessions],
    }


def _tally(tally: Tally) -> dict[str, Any]:
    return {
        "name": tally.name,
        "sessions": tally.sessions,
        "calls": tally.calls,
        "allowed": tally.allowed,
        "denied": tally.denied,
        "pending": tally.pending,
        "left_intent": tally.left_intent,
        "tainted": tally.tainted,
        "asked": tally.asked,
        "approved": tally.approved,
        "max_score": tally.max_score,
    }


def _session(session: SessionReport) -> dict[str, Any]:
    departure = session.departure
    return {
        "id": session.id,
        "tenant": session.tenant,
        "user": session.user,
        "agent": session.agent,
        "intent": session.intent,
        "intent_version": session.intent_version,
        "start": iso_time(session.start),
        "tally": _tally(session.tally),
        "left_intent": None
        if departure is None
        else {
            "seq": departure.seq,
            "tool": departure.tool,
            "effect": departure.effect,
            "score": departure.score,
            "reasons": _reasons(departure.reasons),
        },
        "intent_vs_action": {
            "planned_known": session.planned_known,
            "used": session.used,
            "blocked": session.blocked,
            "unused": session.unused if session.planned_known else None,
            "unplanned": session.unplanned,
            "tools": [
                {
                    "tool": use.tool,
                    "planned": use.planned,
                    "privilege": use.privilege,
                    "attempts": use.attempts,
                    "allowed": use.allowed,
                    "denied": use.denied,
                }
                for use in session.tools
            ],
        },
        "tainted": [
            {
                "seq": item.seq,
                "tool": item.tool,
                "code": item.taint.code,
                "argument": item.taint.argument,
                "value": item.taint.value,
                "origins": list(item.taint.origins),
                "allowed_sources": list(item.taint.allowed),
                "instruction": item.taint.instruction,
                "sentence": item.taint.sentence,
            }
            for item in session.taints
        ],
        "confirmations": [
            {
                "seq": item.seq,
                "tool": item.tool,
                "asked_because": _reasons(item.asked_because),
                "approver": item.approver,
                "outcome": item.outcome,
            }
            for item in session.confirmations
        ],
        "calls": [_call(call) for call in session.calls],
        "warnings": list(session.warnings),
    }


def _call(call: Call) -> dict[str, Any]:
    return {
        "seq": call.seq,
        "time": iso_time(call.time),
        "toe": call.time,
        "call_id": call.call_id,
        "tool": call.tool,
        "effect": call.effect,
        "final_effect": call.final_effect,
        "score": call.score,
        "planned": call.planned,
        "departs": call.departs,
        "reasons": _reasons(call.reasons),
        "approval": None
        if call.approver is None
        else {
            "approver": call.approver,
            "approved": call.approved,
            "reasons": _reasons(call.final_reasons),
        },
        "args_sha256": call.args_sha256,
        "source": {"file": call.source, "line": call.line},
    }


def _reasons(reasons: tuple[TrailReason, ...]) -> list[dict[str, str]]:
    return [{"code": reason.code, "message": reason.message} for reason in reasons]
