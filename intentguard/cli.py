"""The ``intentguard`` command.

::

    intentguard validate PATH... [--format text|json]
    intentguard replay TRACES.jsonl --schemas DIR --out DECISIONS.jsonl [--resolver MODULE:FUNC]
                       [--audit FILE] [--skip-bad]
    intentguard report AUDIT.jsonl... -o FILE [--format html|md|json] [--schemas DIR]
    intentguard audit verify FILE|DB|redis://... [--no-head] [--table NAME] [--stream KEY]
    intentguard train TRACES.jsonl... --schemas DIR --out MODEL.json [--resolver MODULE:FUNC]
                      [--holdout 0.3] [--seed 0] [--target-burden 0.05]

Each subcommand is one function, ``_NAME(args) -> int``, registered by its own
``_add_NAME(commands)`` through ``_add_command`` and called from ``_build_parser``. It
translates arguments into library calls and results into text or JSON on stdout; the
library decides, the command only reports. Usage errors go to stderr as text, whatever
the output format.

Exit codes:

- ``0``: success (``validate``: every schema is valid);
- ``1``: the input was checked and is wrong (``validate``: at least one schema is invalid;
  ``replay``: a malformed trace line, named by its number);
- ``2``: usage error: bad arguments, or a path that does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

import intentguard
from intentguard.errors import InvalidIntentSchema, Problem

__all__ = ["main"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

_EXIT_CODES = """\
exit codes:
  0  success (validate: every schema is valid)
  1  the input was checked and is wrong (validate: at least one schema is invalid)
  2  usage error: bad arguments, or a path that does not exist
"""

_VALIDATE_EXIT_CODES = """\
exit codes:
  0  every schema is valid
  1  at least one schema is invalid (each problem is listed)
  2  usage error: bad arguments, or a path that does not exist
"""

Command = Callable[[argparse.Namespace], int]


class _Exit(Exception):
    """Raised by the parser instead of exiting, so :func:`main` can return the status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _UsageError(Exception):
    """A command was given arguments it cannot use; the message says which and why."""


class _Parser(argparse.ArgumentParser):
    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            _write(sys.stderr, message.rstrip("\n"))
        raise _Exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``intentguard`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except _Exit as exc:
        return exc.status
    command: Command | None = getattr(args, "command", None)
    if command is None:
        parser.print_usage(sys.stderr)
        _write(sys.stderr, f"{parser.prog}: error: name a command, e.g. `{parser.prog} validate PATH`")
        return EXIT_USAGE
    try:
        return command(args)
    except _UsageError as exc:
        _write(sys.stderr, f"{parser.prog} {args.command_name}: error: {exc}")
        return EXIT_USAGE


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="intentguard",
        description="An intent-scoped runtime guard for LLM agent tool calls.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {intentguard.__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_validate(commands)
    _add_replay(commands)
    _add_report(commands)
    _add_audit(commands)
    from intentguard._cli_train import add_train  # its own module: cli.py stays small

    add_train(commands)
    return parser


def _add_command(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    command: Command,
    *,
    help: str,
    description: str,
    exit_codes: str = _EXIT_CODES,
) -> _Parser:
    sub = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=exit_codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.set_defaults(command=command, command_name=name)
    return sub


def _write(stream: TextIO, text: str) -> None:
    # File names may hold bytes that are not valid in the stream's encoding (surrogate
    # escapes from a non-UTF-8 name): show them escaped rather than fail on output.
    encoding = stream.encoding or "utf-8"
    stream.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --- validate -----------------------------------------------------------------------------


def _add_validate(commands: argparse._SubParsersAction[_Parser]) -> None:
    sub = _add_command(
        commands,
        "validate",
        _validate,
        help="check intent schema files",
        description=(
            "Check intent schema files (.yaml, .yml, .json) against the intent schema format "
            "and report every problem, with its JSON path and what to do. A directory stands "
            "for the schema files directly inside it."
        ),
        exit_codes=_VALIDATE_EXIT_CODES,
    )
    sub.add_argument("paths", nargs="+", metavar="PATH", help="a schema file, or a directory of them")
    sub.add_argument(
        "--format", choices=("text", "json"), default="text", help="text for people (default) or json for programs"
    )


@dataclass
class _Checked:
    """The outcome for one schema file."""

    path: str
    name: str | None = None
    version: str | None = None
    tools: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def _validate(args: argparse.Namespace) -> int:
    from intentguard.loader import load_schemas

    results = [_check_file(path) for path in _schema_files(args.paths)]
    # Names must also be unique across the files: the loader's load_schemas decides that.
    by_path = {result.path: result for result in results if result.valid}
    try:
        load_schemas([Path(path) for path in by_path])
    except InvalidIntentSchema as exc:
        for problem in exc.problems:
            by_path.get(problem.source, results[-1]).problems.append(problem)
    if args.format == "json":
        _write(sys.stdout, json.dumps(_as_json(results), indent=2))
    else:
        _print_text(results)
    return EXIT_OK if all(result.valid for result in results) else EXIT_INVALID


def _schema_files(arguments: Sequence[str]) -> list[Path]:
    from intentguard.loader import SUFFIXES

    files: list[Path] = []
    seen: set[Path] = set()
    for argument in arguments:
        path = Path(argument)
        try:
            if path.is_dir():
                found = sorted(
                    child for child in path.iterdir() if child.suffix.lower() in SUFFIXES and child.is_file()
                )
                if not found:
                    kinds = ", ".join(sorted(SUFFIXES))
                    raise _UsageError(f"directory {argument!r} holds no schema files ({kinds}); name another path")
            elif path.is_file():
                found = [path]
            elif path.exists():
                raise _UsageError(f"path {argument!r} is not a regular file or a directory; name a schema file")
            else:
                raise _UsageError(f"path {argument!r} does not exist; check the spelling")
            keys = [item.resolve() for item in found]
        except OSError as exc:
            raise _UsageError(f"cannot read path {argument!r}: {exc.strerror}; check the path") from exc
        for item, key in zip(found, keys, strict=True):
            if key not in seen:
                seen.add(key)
                files.append(item)
    return files


def _check_file(path: Path) -> _Checked:
    from intentguard.loader import load_schema

    result = _Checked(str(path))
    try:
        schema = load_schema(path)
    except InvalidIntentSchema as exc:
        result.problems.extend(exc.problems)
    except Exception as exc:  # noqa: BLE001 - a loader bug must not pass a file or hide the others
        result.problems.append(
            Problem(
                str(path),
                "$",
                f"the loader failed: {type(exc).__name__}: {exc}",
                "this is a bug in intentguard; please report it with the file",
            )
        )
    else:
        result.name, result.version, result.tools = schema.name, schema.version, sorted(schema.tools)
    return result


def _print_text(results: list[_Checked]) -> None:
    for result in results:
        if result.valid:
            _write(
                sys.stdout, f"ok  {result.path}  ({result.name} {result.version}, {_plural(len(result.tools), 'tool')})"
            )
            continue
        _write(sys.stdout, f"FAIL  {result.path}  ({_plural(len(result.problems), 'problem')})")
        for problem in result.problems:
            _write(sys.stdout, f"  {problem.source}: {problem.path}: {problem.message}")
            if problem.hint:
                _write(sys.stdout, f"      hint: {problem.hint}")
    invalid = sum(not result.valid for result in results)
    problems = sum(len(result.problems) for result in results)
    _write(
        sys.stdout,
        f"{_plural(len(results), 'file')} checked: {len(results) - invalid} valid, {invalid} invalid, "
        f"{_plural(problems, 'problem')}",
    )


def _as_json(results: list[_Checked]) -> dict[str, Any]:
    invalid = sum(not result.valid for result in results)
    return {
        "valid": invalid == 0,
        "summary": {
            "files": len(results),
            "valid": len(results) - invalid,
            "invalid": invalid,
            "problems": sum(len(result.problems) for result in results),
        },
        "files": [
            {
                "path": result.path,
                "valid": result.valid,
                "name": result.name,
                "version": result.version,
                "tools": result.tools,
                "problems": [
                    {"source": problem.source, "path": problem.path, "message": problem.message, "hint": problem.hint}
                    for problem in result.problems
                ],
            }
            for result in results
        ],
    }


# --- replay -------------------------------------------------------------------------------

_REPLAY_EXIT_CODES = """\
exit codes:
  0  every trace was replayed (lines skipped with --skip-bad are counted in the summary)
  1  a trace line is malformed (its number is named); use --skip-bad to skip such lines
  2  usage error: bad arguments, a missing file, a resolver that cannot be loaded
"""


def _add_replay(commands: argparse._SubParsersAction[_Parser]) -> None:
    sub = _add_command(
        commands,
        "replay",
        _replay,
        help="decide every tool call of recorded agent runs",
        description=(
            "Feed recorded agent runs (JSON Lines, one run per line, in the trace format of "
            "DESIGN.md) through a guard built from --schemas, and write one decision per tool "
            "call as JSON Lines. Runs whose intent is null are resolved by --resolver from their "
            "first user message and metadata. Streams with constant memory."
        ),
        exit_codes=_REPLAY_EXIT_CODES,
    )
    sub.add_argument("traces", metavar="TRACES.jsonl", help="recorded runs, one per line")
    sub.add_argument("--schemas", required=True, action="append", metavar="DIR", help="intent schema files or dirs")
    sub.add_argument("--out", required=True, metavar="DECISIONS.jsonl", help="where to write the decisions")
    sub.add_argument("--resolver", metavar="MODULE:FUNC", help="a callable (text, metadata) -> intent, importable")
    sub.add_argument("--audit", metavar="FILE", help="also write the audit trail (JSON Lines) to FILE")
    sub.add_argument("--skip-bad", action="store_true", help="skip malformed lines (counted) instead of stopping")


def _replay(args: argparse.Namespace) -> int:
    import time

    from intentguard.audit import JsonlSink
    from intentguard.guard import Guard
    from intentguard.replay import ReplayStats, TraceError, read_traces, replay_trace, structured_resolver
    from intentguard.testing import FrozenClock

    traces = Path(args.traces)
    if not traces.is_file():
        raise _UsageError(f"trace file {args.traces!r} does not exist")
    resolver = _load_callable(args.resolver) if args.resolver else structured_resolver
    try:
        guard = Guard(
            schemas=[Path(path) for path in args.schemas],
            clock=FrozenClock(),  # recorded runs carry no times: grants neither expire nor decay
            audit=[JsonlSink(args.audit)] if args.audit else (),
        )
    except InvalidIntentSchema as exc:
        _write(sys.stderr, str(exc))
        return EXIT_INVALID
    stats = ReplayStats()
    started = time.perf_counter()
    progress = sys.stderr.isatty()
    try:
        with traces.open(encoding="utf-8") as source, Path(args.out).open("w", encoding="utf-8") as out, guard:
            for trace in read_traces(source, skip_bad=args.skip_bad, stats=stats):
                for record in replay_trace(guard, trace, resolver=resolver, stats=stats):
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                if progress and stats.traces % 500 == 0:
                    rate = stats.traces / max(time.perf_counter() - started, 1e-9)
                    sys.stderr.write(f"\r{stats.traces} traces, {stats.calls} calls, {rate:,.0f} traces/s")
    except TraceError as exc:
        _write(sys.stderr, f"{args.traces}: {exc}")
        return EXIT_INVALID
    elapsed = time.perf_counter() - started
    if progress:
        sys.stderr.write("\n")
    effects = ", ".join(f"{count} {effect}" for effect, count in sorted(stats.effects.items()))
    _write(sys.stdout, f"{_plural(stats.traces, 'trace')}, {_plural(stats.calls, 'tool call')}: {effects or 'none'}")
    if stats.unresolved:
        _write(sys.stdout, f"{_plural(stats.unresolved, 'trace')} without an intent (every call denied)")
    if stats.skipped:
        _write(
            sys.stdout, f"{_plural(len(stats.skipped), 'malformed line')} skipped, first: line {stats.skipped[0][0]}"
        )
    _write(sys.stdout, f"{stats.traces / max(elapsed, 1e-9):,.0f} traces/s ({elapsed:.2f} s); decisions in {args.out}")
    return EXIT_OK


def _load_callable(spec: str) -> Any:
    import importlib
    import os

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise _UsageError(f"resolver {spec!r} is not MODULE:FUNC")
    # Like `python -m`, resolve modules from the current directory too (benchmarks.agentdojo.resolver).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise _UsageError(f"cannot load resolver {spec!r}: {exc}") from exc
    if not callable(value):
        raise _UsageError(f"resolver {spec!r} is not callable")
    return value


# --- report -------------------------------------------------------------------------------

_REPORT_EXIT_CODES = """\
exit codes:
  0  the report was written
  1  an audit record or a schema is malformed (each bad line is named with its number)
  2  usage error: bad arguments, a missing file, matplotlib missing for --format html
"""
_REPORT_SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


def _add_report(commands: argparse._SubParsersAction[_Parser]) -> None:
    sub = _add_command(
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
    sub.add_argument("--narrow-at", type=float, default=0.5, metavar="SCORE", help="narrowing threshold (0.5)")
    sub.add_argument("--revoke-at", type=float, default=0.8, metavar="SCORE", help="revocation threshold (0.8)")


def _report(args: argparse.Namespace) -> int:
    from intentguard.errors import ConfigurationError, InvalidAuditTrail, MissingExtraError
    from intentguard.loader import load_schemas
    from intentguard.report import Thresholds, build_report, read_trails, render_html, render_json, render_markdown

    form = args.format or _REPORT_SUFFIXES.get(Path(args.out).suffix.lower())
    if form is None:
        raise _UsageError(f"cannot tell the format from {args.out!r}; pass --format html, md or json")
    for path in args.audit:
        if not Path(path).is_file():
            raise _UsageError(f"audit trail {path!r} does not exist or is not a file")
    try:
        thresholds = Thresholds(narrow=args.narrow_at, revoke=args.revoke_at)
    except ConfigurationError as exc:
        raise _UsageError(str(exc)) from exc
    try:
        schemas = load_schemas([Path(path) for path in args.schemas]) if args.schemas else None
        entries, chains = read_trails(args.audit)
    except (InvalidAuditTrail, InvalidIntentSchema) as exc:
        _write(sys.stderr, str(exc))
        return EXIT_INVALID
    report = build_report(entries, chains=chains, schemas=schemas, thresholds=thresholds)
    try:
        text = {"html": render_html, "md": render_markdown, "json": render_json}[form](report)
    except MissingExtraError as exc:  # pragma: no cover - exercised in a subprocess without matplotlib
        raise _UsageError(str(exc)) from exc
    if args.out == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _UsageError(f"cannot write {args.out!r}: {exc.strerror}") from exc
    total = report.total
    _write(
        sys.stderr if args.out == "-" else sys.stdout,
        f"{_plural(total.sessions, 'session')}, {_plural(total.calls, 'call')}: "
        f"{total.left_intent} left their intent; {form} report in {args.out}",
    )
    return EXIT_OK


# --- audit --------------------------------------------------------------------------------

_AUDIT_EXIT_CODES = """\
exit codes:
  0  the trail is an unbroken chain (and matches its head)
  1  the trail is broken: each problem is listed as `record N (line L): what is wrong`
  2  usage error: bad arguments, a trail that does not exist or cannot be read
"""


def _add_audit(commands: argparse._SubParsersAction[_Parser]) -> None:
    audit = _add_command(commands, "audit", _audit, help="audit trails", description="Work with audit trails.")
    actions = audit.add_subparsers(title="audit commands", metavar="COMMAND")
    sub = _add_command(
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
    raise _UsageError("name an audit command, e.g. `intentguard audit verify FILE`")


def _audit_verify(args: argparse.Namespace) -> int:
    from intentguard.audit.verify import verify_trail
    from intentguard.errors import AuditTrailError, ConfigurationError

    if not args.trail.startswith(("redis://", "rediss://", "unix://")) and not Path(args.trail).is_file():
        raise _UsageError(f"audit trail {args.trail!r} does not exist or is not a file")
    try:
        report = verify_trail(args.trail, use_head=not args.no_head, table=args.table, stream=args.stream)
    except (AuditTrailError, ConfigurationError, OSError) as exc:
        raise _UsageError(str(exc)) from exc
    for line in report.lines():
        _write(sys.stdout, line)
    return EXIT_OK if report.ok else EXIT_INVALID
