"""``intentguard report``: divergence reports from audit trails (HTML needs the ``[report]`` extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from intentguard import cli
from intentguard.errors import InvalidIntentSchema

__all__ = ["add_report"]


_REPORT_EXIT_CODES = """\
exit codes:
  0  the report was written
  1  an audit record or a schema is malformed (each bad line is named with its number)
  2  usage error: bad arguments, a missing file, matplotlib missing for --format html
"""
_REPORT_SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


def add_report(commands: argparse._SubParsersAction[cli._Parser]) -> None:
    sub = cli._add_command(
        commands,
        "report",
        _report,
        help="write a divergence report from audit trails",
        description=(
            "Read audit trails (JSON Lines) and write a divergence report: per session the timeline of "
            "calls, decisions, reasons and the score curve, where it left its intent, intent vs action, "
            "tainted arguments and their origins, confirmations and who answered, and per tenant and "
            "agent totals. HTML is one self-contained file with plots (needs intentguard[report])."
        ),
        exit_codes=_REPORT_EXIT_CODES,
    )
    sub.add_argument("audit", nargs="+", metavar="AUDIT.jsonl", help="audit trail files")
    sub.add_argument("-o", "--out", required=True, metavar="FILE", help="where to write the report ('-': stdout)")
    sub.add_argument("--format", choices=("html", "md", "json"), help="default: from the suffix of --out")
    sub.add_argument("--schemas", action="append", metavar="DIR", help="intent schemas: which tools were planned")
    sub.add_argument(
        "--narrow-at", type=float, metavar="SCORE", help="narrowing threshold (default: the shipped model's)"
    )
    sub.add_argument(
        "--revoke-at", type=float, metavar="SCORE", help="revocation threshold (default: the shipped model's)"
    )


def _report(args: argparse.Namespace) -> int:
    from intentguard.errors import ConfigurationError, InvalidAuditTrail, MissingExtraError
    from intentguard.loader import load_schemas
    from intentguard.report import Thresholds, build_report, read_trails, render_html, render_json, render_markdown

    form = args.format or _REPORT_SUFFIXES.get(Path(args.out).suffix.lower())
    if form is None:
        raise cli._UsageError(f"cannot tell the format from {args.out!r}; pass --format html, md or json")
    for path in args.audit:
        if not Path(path).is_file():
            raise cli._UsageError(f"audit trail {path!r} does not exist or is not a file")
    try:
        shipped = Thresholds.shipped()
        thresholds = Thresholds(
            narrow=shipped.narrow if args.narrow_at is None else args.narrow_at,
            revoke=shipped.revoke if args.revoke_at is None else args.revoke_at,
        )
    except ConfigurationError as exc:
        raise cli._UsageError(str(exc)) from exc
    try:
        schemas = load_schemas([Path(path) for path in args.schemas]) if args.schemas else None
        entries, chains = read_trails(args.audit)
    except (InvalidAuditTrail, InvalidIntentSchema) as exc:
        cli._write(sys.stderr, str(exc))
        return cli.EXIT_INVALID
    report = build_report(entries, chains=chains, schemas=schemas, thresholds=thresholds)
    try:
        text = {"html": render_html, "md": render_markdown, "json": render_json}[form](report)
    except MissingExtraError as exc:  # pragma: no cover - exercised in a subprocess without matplotlib
        raise cli._UsageError(str(exc)) from exc
    if args.out == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise cli._UsageError(f"cannot write {args.out!r}: {exc.strerror}") from exc
    total = report.total
    cli._write(
        sys.stderr if args.out == "-" else sys.stdout,
        f"{cli._plural(total.sessions, 'session')}, {cli._plural(total.calls, 'call')}: "
        f"{total.left_intent} left their intent; {form} report in {args.out}",
    )
    return cli.EXIT_OK
