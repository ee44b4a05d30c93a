"""Divergence reports: audit trails become per-session timelines, score curves and intent-vs-action.

``read_trails`` reads JSON Lines audit trails (tolerant of fields it does not know, strict
about the ones it uses), ``build_report`` turns the records into a :class:`Report`, and the
renderers lay it out: :func:`render_markdown`, :func:`render_json` and :func:`render_html`
(one self-contained file with plots; needs the ``[report]`` extra for matplotlib).
"""

from intentguard.report.html import render_html
from intentguard.report.json import REPORT_FORMAT, REPORT_VERSION, render_json, report_document
from intentguard.report.markdown import render_markdown
from intentguard.report.model import Report, SessionReport, Tally, Thresholds, build_report
from intentguard.report.reader import ChainStatus, read_trails
from intentguard.report.timeline import Call, Confirmation

__all__ = [
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "Call",
    "ChainStatus",
    "Confirmation",
    "Report",
    "SessionReport",
    "Tally",
    "Thresholds",
    "build_report",
    "read_trails",
    "render_html",
    "render_json",
    "render_markdown",
    "report_document",
]
