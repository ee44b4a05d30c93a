"""``intentguard audit verify``: check an audit trail's hash chain."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from intentguard import cli

__all__ = ["add_audit"]


_AUDIT_EXIT_CODES = """\
exit codes:
  0  the trail is an unbroken chain (and matches its head)
  1  the trail is broken: each problem is listed as `record N (line L): what is wrong`
  2  usage error: bad arguments, a trail that does not exist or cannot be read
"""


def add_audit(commands: argparse._SubParsersAction[cli._Parser]) -> None:
    audit = cli._add_command(commands, "audit", _audit, help="audit trails", description="Work with audit trails.")
    actions = audit.add_subparsers(title="audit commands", metavar="COMMAND")
    sub = cli._add_command(
        actions,
        "verify",
        _audit_verify,
        help="check an audit trail's hash chain",
        description=(
            "Check a JSONL audit trail (and its FILE.head), a SQLite audit database or a Redis stream "
            "(redis://host:port/db): every record valid, numbered and chained; nothing torn, modified, "
            "deleted, inserted, reordered or cut from the end. See docs/audit.md."
        ),
        exit_codes=_AUDIT_EXIT_CODES,
    )
    sub.add_argument("trail", metavar="TRAIL", help="a .jsonl trail, a SQLite database, or a redis:// URL")
    sub.add_argument("--no-head", action="store_true", help="JSONL: check the chain alone, without FILE.head")
    sub.add_argument("--table", default="audit", help="SQLite: the audit table (default: audit)")
    sub.add_argument("--stream", default="intentguard:audit", help="Redis: the stream key")


def _audit(args: argparse.Namespace) -> int:
    raise cli._UsageError("name an audit command, e.g. `intentguard audit verify FILE`")


def _audit_verify(args: argparse.Namespace) -> int:
    from intentguard.audit.verify import verify_trail
    from intentguard.errors import AuditTrailError, ConfigurationError

    if not args.trail.startswith(("redis://", "rediss://", "unix://")) and not Path(args.trail).is_file():
        raise cli._UsageError(f"audit trail {args.trail!r} does not exist or is not a file")
    try:
        report = verify_trail(args.trail, use_head=not args.no_head, table=args.table, stream=args.stream)
    except (AuditTrailError, ConfigurationError, OSError) as exc:
        raise cli._UsageError(str(exc)) from exc
    for line in report.lines():
        cli._write(sys.stdout, line)
    return cli.EXIT_OK if report.ok else cli.EXIT_INVALID
