"""What observing a tool's output costs: ``session.observe_result`` and its parts, by output size.

Run ``python -m benchmarks.bench_observe --out benchmarks/results/latency.json`` (``make bench``).
Reports, never fails on a figure. Every subject is timed in batches, the subjects interleaved
(their order rotates every round), medians over rounds of the per-call mean of a batch, with the
plain-Python floor of ``benchmarks.latency`` measured alongside.

- ``observe_result_us_p50`` / ``_p99``: ``session.observe_result(call_id, "issue_refund", RESULT)``
  (a 22-character string, what the LangChain benchmark's tool returns) on a session primed like
  ``benchmarks.latency``'s, each call with a fresh call id: the whole cost of observing a short
  output (digest outside the lock, commit under it). The library digests a short text once and
  remembers it, so this is the cost of an output seen before (tools answer "ok", "sent", the same
  status again and again); ``observe_result_fresh_us_p50`` / ``_p99`` is the same call with a
  distinct 22-character output every time (cycling through 10,000 of them), the first sight.
- per output (``2ch`` "ok", ``22ch`` the result above, ``record`` a JSON object of 5 fields, ``1kb``
  and ``100kb`` of generated untrusted text): ``observe_<case>_digest_us_p50`` is
  ``digest_output`` of it from a tool that is no system of record (so it is untrusted text and
  the instruction detector runs), the remembered digests forgotten first; ``_digest_again_us_p50``
  the same without forgetting (digests of up to 256 characters are remembered);
  ``_record_us_p50`` the same output from a record tool (``record`` only), ``_detect_us_p50``
  and ``_extract_us_p50`` its two expensive parts, and ``_commit_us_p50`` ``Ledger.commit`` of
  the digest (a fresh call id each time) into a ledger that has already taken the same output
  many times, as a session's ledger has after many calls.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from benchmarks.latency import SEED, TOOL, UNTRUSTED_KB, Setup, TextGen, percentile, stamp, time_floor
from benchmarks.results_file import merge_results

RESULT = "refunded 25.00 on A123"  # the LangChain benchmark's tool output
RECORD = {"order_id": "A123", "status": "shipped", "amount": 25.0, "email": "ann@example.com", "carrier": "DHL"}
FRESH = 10_000  # distinct short outputs, cycled: far more than a session remembers (256 digests, 2,048 words)
OBSERVE_BUDGET_US = 20.0  # the LangChain reference (26 us per tool call) less the decision (~6 us)


def cases() -> dict[str, str]:
    """The outputs timed, by key."""
    text = "".join(TextGen(SEED + 7).results(100 * 1024))
    return {"2ch": "ok", "22ch": RESULT, "record": json.dumps(RECORD), "1kb": text[:1024], "100kb": text}


def timed(n: int, run: Callable[[int], Any]) -> float:
    """Mean ns per call of ``run(i)`` for ``i`` in ``range(n)``, collector off."""
    gc.disable()
    start = perf_counter_ns()
    for i in range(n):
        run(i)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def subjects(name: str, text: str, session: Any, batch: int) -> list[tuple[str, int, Callable[[int], Any]]]:
    """(key, calls per batch, the call) for one output."""
    from intentguard.ingest import DigestCache, digest_output
    from intentguard.instructions import detect
    from intentguard.provenance import Ledger
    from intentguard.values import extract

    # A session remembers the digests of short texts (Ledger.digests); forgetting them before a call
    # times the first sight of a text (the dict is at most one entry long here, so clearing it is
    # cheap). No word memory is passed: every word is new, as on a session's first output.
    cache: DigestCache = OrderedDict()
    forget = cache.clear

    n = max(1, batch * 32 // max(32, len(text)))  # about the same time per batch for every output
    empty: frozenset[str] = frozenset()

    def digest(i: int, *, record: bool = False) -> Any:
        return digest_output(
            text, tool="t", call_id=f"c{i}", record=record, free_text=empty, derived=False, cache=cache
        )

    def first_digest(i: int, *, record: bool = False) -> Any:
        forget()
        return digest(i, record=record)

    ledger = Ledger()
    digests = [digest(i) for i in range(max(n, 50))]
    for item in digests:  # the ledger has seen this output from many calls already
        ledger.commit(item)
    template, calls = digest(0), itertools.count(1000)

    def commit(i: int) -> Any:
        # A fresh call id every time, as in a run: relabelling the digest is cheap, digesting is not.
        label = f"#c{next(calls)}"
        return ledger.commit(
            [(values, origin._replace(label=origin.label + label), found) for values, origin, found in template]
        )

    out = [
        (f"observe_{name}_digest", n, first_digest),
        (f"observe_{name}_digest_again", n, digest),
        (f"observe_{name}_detect", n, lambda i: detect(text)),
        (f"observe_{name}_extract", n, lambda i: extract(text)),
        (f"observe_{name}_commit", n, commit),
    ]
    if name == "record":
        out.append((f"observe_{name}_record", n, lambda i: first_digest(i, record=True)))
    if name == "22ch":
        fresh = [f"refunded 25.0 on A{i:04d}" for i in range(FRESH)]  # 22 characters each
        counter = itertools.count()
        out.append(("observe_result", n, lambda i: session.observe_result(f"obs-{i}", TOOL, text)))
        out.append(
            (
                "observe_result_fresh",
                n,
                lambda i: session.observe_result(f"obs-{i}", TOOL, fresh[next(counter) % FRESH]),
            )
        )
    return out


def measure(*, rounds: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-observe-") as directory:
        setup = Setup(Path(directory), "observe")
        session = setup.start()
        setup.prime(session, TextGen(SEED).results(UNTRUSTED_KB * 1024))
        timed_subjects = [("floor", batch, lambda i: None)]
        for name, text in cases().items():
            timed_subjects += subjects(name, text, session, batch)
        series: dict[str, list[float]] = {key: [] for key, _, _ in timed_subjects}
        for index in range(rounds + 2):
            shift = index % len(timed_subjects)
            for key, n, run in timed_subjects[shift:] + timed_subjects[:shift]:
                value = time_floor(n, TOOL, 0.0, 0) if key == "floor" else timed(n, run)
                if index >= 2:  # two warm-up rounds
                    series[key].append(value)
        setup.close()
    floor_p50 = statistics.median(series.pop("floor"))
    result: dict[str, Any] = {"observe_floor_p50_ns": floor_p50}
    for key, values in series.items():
        result[f"{key}_us_p50"] = statistics.median(values) / 1000
    result["observe_result_us_p99"] = percentile(series["observe_result"], 99) / 1000
    result["observe_result_fresh_us_p99"] = percentile(series["observe_result_fresh"], 99) / 1000
    result["observe_result_ratio_p50"] = statistics.median(series["observe_result"]) / floor_p50
    result["budgets"] = {"observe_result_us_p50": OBSERVE_BUDGET_US}
    result["method"] = {"observe_rounds": rounds, "observe_batch": batch}
    return result


def report(result: dict[str, Any]) -> str:
    lines = [
        f"session.observe_result of a 22-character output: p50 {result['observe_result_us_p50']:.1f} us "
        f"(p99 {result['observe_result_us_p99']:.1f} us), {result['observe_result_ratio_p50']:.0f}x the floor "
        f"({result['observe_floor_p50_ns']:.0f} ns); budget {OBSERVE_BUDGET_US:g} us",
        f"  a distinct 22-character output every call (never remembered): p50 "
        f"{result['observe_result_fresh_us_p50']:.1f} us (p99 {result['observe_result_fresh_us_p99']:.1f} us)",
        f"{'output':8} {'digest':>10} {'again':>10} {'detect':>10} {'extract':>10} {'commit':>10}  (us, p50)",
    ]
    for name in ("2ch", "22ch", "record", "1kb", "100kb"):
        parts = [
            result[f"observe_{name}_{part}_us_p50"]
            for part in ("digest", "digest_again", "detect", "extract", "commit")
        ]
        lines.append(f"{name:8} " + " ".join(f"{value:10.1f}" for value in parts))
    lines.append(f"record tool's JSON record, digested as a record: {result['observe_record_record_us_p50']:.1f} us")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="What observing a tool's output costs.")
    parser.add_argument("--out", type=Path, help="merge the figures into this JSON file")
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds")
    parser.add_argument("--batch", type=int, default=200, help="calls per timed batch (short outputs)")
    options = parser.parse_args(argv)
    began = time.perf_counter()
    result = measure(rounds=options.rounds, batch=options.batch)
    stamp(result, "observe", began)
    print(report(result))
    if options.out is not None:
        merge_results(options.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
