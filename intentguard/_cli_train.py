"""``intentguard train``: fit the divergence scorer on labelled traces (the ``[divergence]`` extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from intentguard import cli
from intentguard._cli_replay import load_callable
from intentguard.errors import InvalidIntentSchema

__all__ = ["add_train"]


def add_train(commands: argparse._SubParsersAction[cli._Parser]) -> None:
    sub = cli._add_command(
        commands,
        "train",
        _train,
        help="train the divergence scorer on labelled traces",
        description=(
            "Fit the divergence model (the [divergence] extra) on recorded runs whose divergent calls are "
            "labelled in metadata.injection_call_ids, split by task, and write the JSON artifact a guard "
            "loads with DivergenceConfig(model=PATH). Prints the held-out AUROC and precision."
        ),
    )
    sub.add_argument("traces", nargs="+", metavar="TRACES.jsonl", help="labelled runs, one per line")
    sub.add_argument("--schemas", required=True, action="append", metavar="DIR", help="intent schema files or dirs")
    sub.add_argument("--out", required=True, metavar="MODEL.json", help="where to write the model artifact")
    sub.add_argument("--resolver", metavar="MODULE:FUNC", help="a callable (text, metadata) -> intent, importable")
    sub.add_argument("--holdout", type=float, default=0.3, help="fraction of tasks held out (default 0.3)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the task split (default 0)")
    sub.add_argument(
        "--target-burden", type=float, default=0.05, help="benign runs the narrow threshold may touch (default 0.05)"
    )


def _train(args: argparse.Namespace) -> int:
    from intentguard.divergence_train import train
    from intentguard.errors import ConfigurationError
    from intentguard.guard import Guard
    from intentguard.replay import Trace, TraceError, read_traces, structured_resolver
    from intentguard.testing import FrozenClock

    missing = [path for path in args.traces if not Path(path).is_file()]
    if missing:
        raise cli._UsageError(f"trace file {missing[0]!r} does not exist")
    resolver = load_callable(args.resolver) if args.resolver else structured_resolver
    try:
        guard = Guard(schemas=[Path(path) for path in args.schemas], clock=FrozenClock())
    except InvalidIntentSchema as exc:
        cli._write(sys.stderr, str(exc))
        return cli.EXIT_INVALID
    traces: list[Trace] = []
    for path in args.traces:
        try:
            with Path(path).open(encoding="utf-8") as source:
                traces.extend(read_traces(source))
        except TraceError as exc:
            cli._write(sys.stderr, f"{path}: {exc}")
            return cli.EXIT_INVALID
    try:
        model, report = train(
            traces, guard, resolver, holdout=args.holdout, seed=args.seed, target_burden=args.target_burden
        )
    except ConfigurationError as exc:
        raise cli._UsageError(str(exc)) from exc
    Path(args.out).write_text(model.to_json() + "\n", encoding="utf-8")
    held = report["heldout"] or {}
    thresholds = model.thresholds
    cli._write(
        sys.stdout,
        f"{cli._plural(len(traces), 'trace')}, {report['train']['calls']} training calls; held out "
        f"{len(report['split']['test_tasks'])} tasks: AUROC {held.get('auroc')}, precision "
        f"{held.get('precision_at_narrow')} and recall {held.get('recall_at_narrow')} at narrow "
        f"{thresholds['narrow']} (revoke {thresholds['revoke']}); model in {args.out}",
    )
    return cli.EXIT_OK
