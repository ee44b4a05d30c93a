"""``intentguard replay``: decide every tool call of recorded runs, offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from intentguard import cli
from intentguard.errors import InvalidIntentSchema

__all__ = ["add_replay", "load_callable"]


_REPLAY_EXIT_CODES = """\
exit codes:
  0  every trace was replayed (lines skipped with --skip-bad are counted in the summary)
  1  a trace line is malformed (its number is named); use --skip-bad to skip such lines
  2  usage error: bad arguments, a missing file, a resolver that cannot be loaded
"""


def add_replay(commands: argparse._SubParsersAction[cli._Parser]) -> None:
    sub = cli._add_command(
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
        raise cli._UsageError(f"trace file {args.traces!r} does not exist")
    resolver = load_callable(args.resolver) if args.resolver else structured_resolver
    try:
        guard = Guard(
            schemas=[Path(path) for path in args.schemas],
            clock=FrozenClock(),  # recorded runs carry no times: grants neither expire nor decay
            audit=[JsonlSink(args.audit)] if args.audit else (),
        )
    except InvalidIntentSchema as exc:
        cli._write(sys.stderr, str(exc))
        return cli.EXIT_INVALID
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
        cli._write(sys.stderr, f"{args.traces}: {exc}")
        return cli.EXIT_INVALID
    elapsed = time.perf_counter() - started
    if progress:
        sys.stderr.write("\n")
    effects = ", ".join(f"{count} {effect}" for effect, count in sorted(stats.effects.items()))
    cli._write(
        sys.stdout,
        f"{cli._plural(stats.traces, 'trace')}, {cli._plural(stats.calls, 'tool call')}: {effects or 'none'}",
    )
    if stats.unresolved:
        cli._write(sys.stdout, f"{cli._plural(stats.unresolved, 'trace')} without an intent (every call denied)")
    if stats.skipped:
        cli._write(
            sys.stdout,
            f"{cli._plural(len(stats.skipped), 'malformed line')} skipped, first: line {stats.skipped[0][0]}",
        )
    cli._write(
        sys.stdout, f"{stats.traces / max(elapsed, 1e-9):,.0f} traces/s ({elapsed:.2f} s); decisions in {args.out}"
    )
    return cli.EXIT_OK


def load_callable(spec: str) -> Any:
    import importlib
    import os

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise cli._UsageError(f"resolver {spec!r} is not MODULE:FUNC")
    # Like `python -m`, resolve modules from the current directory too (benchmarks.agentdojo.resolver).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise cli._UsageError(f"cannot load resolver {spec!r}: {exc}") from exc
    if not callable(value):
        raise cli._UsageError(f"resolver {spec!r} is not callable")
    return value
