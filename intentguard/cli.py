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
    # Each command but validate lives in its own module (``intentguard/_cli_NAME.py``).
    from intentguard._cli_audit import add_audit
    from intentguard._cli_replay import add_replay
    from intentguard._cli_report import add_report
    from intentguard._cli_train import add_train

    add_replay(commands)
    add_report(commands)
    add_audit(commands)
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
