"""Latency of the divergence score, as ratios to the plain-Python floor measured in the same run.

    python -m benchmarks.bench_divergence --out benchmarks/results/latency.json

The session is ``benchmarks.latency``'s primed support run (the user's message, the order record,
4 KB of untrusted search results); the scorer is the one the guard bound to it (the shipped
model). Timed, interleaved with the floor in rotating order, ``--rounds`` batches of ``--batch``:

- ``scoring``: ``scorer.score(session, issue_refund, now)``, the score alone (per-tool constants,
  the transition table, one ledger lookup per argument, budget, rate, depth and age, one ``exp``);
- ``scoring_low``: the same for ``search_kb``;
- ``decide``: ``scorer.decide(...)``: score, the per-session counters, the thresholds (none set,
  as by default) and the decision carrying the score (information).

Constant in session length: the score of call #1 and of call #1000 of fresh sessions (medians over
``--sessions``), ``scoring_call1000_vs_call1``. It merges its keys into ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from itertools import repeat
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from benchmarks.latency import SEED, TOOL, UNTRUSTED_KB, WARM, Setup, TextGen, percentile, time_floor
from benchmarks.results_file import merge_results

BUDGETS = {
    "scoring_ratio_p50": (5.0, "divergence score / floor, p50"),
    "scoring_call1000_vs_call1": (1.2, "score of call #1000 / call #1 (medians)"),
}


def time_fn(n: int, fn: Callable[..., Any], *args: Any) -> float:
    """ns per call of ``fn(*args)`` over one batch of ``n``, after WARM untimed calls, collector off."""
    for _ in repeat(None, WARM):
        fn(*args)
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        fn(*args)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def measure(setup: Setup, *, rounds: int, batch: int) -> dict[str, list[float]]:
    """Interleaved batches of the floor, the score (high and low privilege) and ``decide``."""
    session = setup.start()
    setup.prime(session, TextGen(SEED).results(UNTRUSTED_KB * 1024))
    scorer = session._divergence
    now = time.time()
    allow = setup.ig.ALLOW
    for call in (setup.call, setup.low_call):
        if session.check(call).effect is not setup.allow:
            raise SystemExit(f"{call.name} is not ALLOW on the primed session; the figures would be wrong")
    subjects: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
        "floor": (time_floor, (batch, TOOL, 0.0, 0)),
        "scoring": (time_fn, (batch, scorer.score, session, setup.call, now)),
        "scoring_low": (time_fn, (batch, scorer.score, session, setup.low_call, now)),
        "decide": (time_fn, (batch, scorer.decide, session, setup.call, now, allow)),
    }
    series: dict[str, list[float]] = {name: [] for name in subjects}
    order = list(subjects)
    for index in range(rounds):
        shift = index % len(order)
        for name in order[shift:] + order[:shift]:
            timer, args = subjects[name]
            series[name].append(timer(*args))
    return series


def measure_growth(setup: Setup, *, sessions: int, length: int = 1000) -> tuple[list[int], list[int]]:
    """The score of call #1 and of call #``length`` of fresh sessions (each call checked for real)."""
    first: list[int] = []
    last: list[int] = []
    call = setup.call
    for _ in range(sessions):
        session = setup.start()
        scorer = session._divergence
        now = time.time()
        for _ in repeat(None, WARM):
            scorer.score(session, call, now)
        gc.disable()
        start = perf_counter_ns()
        scorer.score(session, call, now)
        first.append(perf_counter_ns() - start)
        gc.enable()
        for _ in repeat(None, length - 1):
            session.check(call)
        gc.disable()
        start = perf_counter_ns()
        scorer.score(session, call, now)
        last.append(perf_counter_ns() - start)
        gc.enable()
        setup.guard.flush()
    return first, last


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, help="merge the figures into this JSON file")
    parser.add_argument("--rounds", type=int, default=600, help="interleaved rounds")
    parser.add_argument("--batch", type=int, default=100, help="calls per timed batch")
    parser.add_argument("--sessions", type=int, default=50, help="fresh sessions for call #1 vs call #1000")
    options = parser.parse_args(argv)
    began = time.perf_counter()
    directory = Path(tempfile.mkdtemp(prefix="intentguard-bench-divergence-"))
    try:
        setup = Setup(directory, "divergence")
        try:
            series = measure(setup, rounds=options.rounds, batch=options.batch)
            first, last = measure_growth(setup, sessions=options.sessions)
        finally:
            setup.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    floor = statistics.median(series["floor"])
    result: dict[str, Any] = {"divergence_floor_p50_ns": floor}
    for name in ("scoring", "scoring_low", "decide"):
        result[f"{name}_p50_ns"] = statistics.median(series[name])
        result[f"{name}_p99_ns"] = percentile(series[name], 99)
        result[f"{name}_ratio_p50"] = result[f"{name}_p50_ns"] / floor
    result["scoring_call1_p50_ns"] = statistics.median(first)
    result["scoring_call1000_p50_ns"] = statistics.median(last)
    result["scoring_call1000_vs_call1"] = statistics.median(last) / statistics.median(first)
    result["budgets"] = {key: budget for key, (budget, _) in BUDGETS.items()}
    result["within_budget"] = {key: result[key] <= budget for key, (budget, _) in BUDGETS.items()}
    result["divergence_method"] = {
        "rounds": options.rounds,
        "batch": options.batch,
        "sessions": options.sessions,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "duration_s": round(time.perf_counter() - began, 1),
    }
    for key, (budget, label) in BUDGETS.items():
        verdict = "OK" if result[key] <= budget else "OVER"
        print(f"{label:<45} {result[key]:8.2f}  (budget {budget}) {verdict}")
    for name in ("scoring", "scoring_low", "decide"):
        ratio = result[f"{name}_ratio_p50"]
        print(f"{name:<12} p50 {result[f'{name}_p50_ns']:7.0f} ns  ({ratio:.2f}x floor {floor:.0f} ns)")
    if options.out is not None:
        merge_results(options.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
