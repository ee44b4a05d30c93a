"""Latency of the guard's hot path, as ratios to a plain-Python floor measured in the same run.

Run ``python benchmarks/latency.py --out benchmarks/results/latency.json`` (``make bench``).
The budgets are those of DESIGN.md, "Budgets"; this script reports against them and never
fails on a figure. See benchmarks/README.md for what each key means and how it is measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from time import perf_counter_ns
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "intent_schemas" / "refund_request.yaml"
PARAMS = {"order_id": "A123", "customer_email": "ann@example.com", "max_refund": 50}
TOOL = "issue_refund"
ARGS = {"order_id": "A123", "amount": 25.0}
LARGE_BUDGET = 10**9

# figure key: (budget, how the figure reads)
BUDGETS: dict[str, tuple[float, str]] = {
    "policy_ratio_p50": (2.0, "policy stages p50 / floor p50"),
    "pipeline_ratio_p50": (15.0, "session.check p50 / floor p50"),
    "pipeline_ratio_p99": (40.0, "session.check p99 / floor p50"),
    "call1000_vs_call1": (1.2, "call #1000 / call #1 (medians)"),
    "import_ms": (100.0, "import intentguard, ms"),
}

TABLE = {TOOL: (math.inf, LARGE_BUDGET)}


def floor(name: str, now: float, used: int) -> bool:
    """The floor: a dict lookup plus two comparisons, as DESIGN.md defines it."""
    spec = TABLE[name]
    return now < spec[0] and used < spec[1]


# Each timer first makes WARM untimed calls, then times one batch with the collector off and
# returns nanoseconds per call. The warm-up matters: whatever ran in between (an audit flush
# above all) leaves caches and branch predictors cold, and a cold call costs 10-100x a warm one,
# the floor's included. All timers share one loop shape (itertools.repeat, locals only) so the
# loop costs the same in each.
WARM = 100


def time_loop(n: int) -> float:
    for _ in repeat(None, WARM):
        pass
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        pass
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_floor(n: int, name: str, now: float, used: int) -> float:
    fn = floor
    for _ in repeat(None, WARM):
        fn(name, now, used)
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        fn(name, now, used)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_policy(n: int, grant: Any, name: str, args: Any, now: float, used: int, used_total: int) -> float:
    for _ in repeat(None, WARM):
        grant.evaluate(name, args, now, used, used_total)
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        grant.evaluate(name, args, now, used, used_total)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_pipeline(n: int, session: Any, call: Any) -> float:
    for _ in repeat(None, WARM):
        session.check(call)
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        session.check(call)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_one(session: Any, call: Any) -> int:
    gc.disable()
    start = perf_counter_ns()
    session.check(call)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in (0, 100])."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def bench_schema() -> Any:
    """refund_request.yaml with budgets and lifetimes large enough that every call stays ALLOW."""
    import yaml

    from intentguard.loader import parse_schema

    document = yaml.safe_load(SCHEMA_FILE.read_text("utf-8"))
    document["max_calls"] = LARGE_BUDGET
    for tool in document["tools"].values():
        tool["max_calls"] = LARGE_BUDGET
    document["ttl"] = "PT2H"
    for rule in document.get("decay", []):
        rule["after"] = "PT1H"
    return parse_schema(document, source="benchmarks:refund_request")


class Setup:
    """A guard with a real JsonlSink in a temporary directory, the bound intent and the call."""

    def __init__(self, directory: Path, label: str) -> None:
        import intentguard as ig

        self.sink = ig.JsonlSink(directory / f"{label}.jsonl")
        self.guard = ig.Guard(schemas=[bench_schema()], clock=ig.SystemClock(), audit=[self.sink])
        self.intent = self.guard.intent("refund_request", PARAMS)
        self.principal = ig.Principal(user="u-7", tenant="acme", auth_event="login-42")
        self.agent = ig.AgentIdentity(id="support-bot")
        self.call = ig.ToolCall(TOOL, dict(ARGS), "call-1")
        self.allow = ig.Effect.ALLOW

    def start(self) -> Any:
        return self.guard.start(self.intent, principal=self.principal, agent=self.agent)

    def close(self) -> None:
        self.guard.close()


def measure_rounds(setup: Setup, *, rounds: int, batch: int) -> dict[str, list[float]]:
    """Interleave loop, floor, policy and pipeline batches; rotate their order every round."""
    session = setup.start()
    grant = session.grant
    call = setup.call
    now = grant.issued_at + 1.0
    if grant.evaluate(TOOL, call.args, now, 0, 0) or session.check(call).effect is not setup.allow:
        raise SystemExit("benchmark call is not allowed; the benchmark schema no longer fits the library")
    subjects: list[tuple[str, Callable[[], float]]] = [
        ("loop", lambda: time_loop(batch)),
        ("floor", lambda: time_floor(batch, TOOL, now, 0)),
        ("policy", lambda: time_policy(batch, grant, TOOL, call.args, now, 0, 0)),
        ("pipeline", lambda: time_pipeline(batch, session, call)),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in subjects}
    results["audit_write"] = []
    for _ in range(max(20, rounds // 20)):  # warm-up
        for _, run in subjects:
            run()
        setup.guard.flush()
    made = session.used_total
    for index in range(rounds):
        shift = index % len(subjects)
        for name, run in subjects[shift:] + subjects[:shift]:
            results[name].append(run())
            if name == "pipeline":
                # Drain the audit queue (untimed) as the writer thread would between an agent's
                # calls; what that costs is reported as audit_write_ns_per_record.
                start = perf_counter_ns()
                setup.guard.flush()
                results["audit_write"].append((perf_counter_ns() - start) / (batch + WARM))
                # Let a writer thread that woke meanwhile take the GIL now, find the queue empty
                # and go back to sleep, rather than in the middle of the next timed batch.
                time.sleep(0.0002)
    if session.used_total - made != rounds * (batch + WARM):
        raise SystemExit("some timed pipeline calls were not allowed; the figures would be wrong")
    return results


def measure_growth(setup: Setup, *, sessions: int, length: int = 1000) -> tuple[list[int], list[int]]:
    """Time call #1 and call #``length`` of many fresh sessions, both with warm caches.

    Call #``length`` follows ``length - 2`` calls of its own session; call #1 follows WARM
    calls of a long-lived session, so both run after the same code, not after the session's
    creation or an audit flush. The audit queue is drained between sessions, untimed.
    """
    first: list[int] = []
    last: list[int] = []
    call = setup.call
    warmer = setup.start()
    for _ in range(sessions):
        session = setup.start()
        for _ in repeat(None, WARM):
            warmer.check(call)
        first.append(time_one(session, call))
        for _ in repeat(None, length - 2):
            session.check(call)
        last.append(time_one(session, call))
        if session.used_total != length:
            raise SystemExit("some calls in the growth run were not allowed; the figures would be wrong")
        setup.guard.flush()
    return first, last


IMPORT_PROBE = """
import json, sys, time
heavy = ("pydantic", "jsonschema", "yaml", "numpy", "sklearn", "langchain", "autogen_agentchat", "redis")
start = time.perf_counter()
import intentguard
imported = time.perf_counter()
loaded = [name for name in heavy if name in sys.modules]
intentguard.Guard
used = time.perf_counter()
print(json.dumps({"ms": (imported - start) * 1000, "guard_ms": (used - start) * 1000, "loaded": loaded,
                  "guard_loaded": [name for name in heavy if name in sys.modules]}))
"""


def measure_import(runs: int) -> dict[str, Any]:
    """``import intentguard`` (and, for information, first use of ``intentguard.Guard``) in fresh
    interpreters; a first run, which may compile bytecode, is discarded."""
    probes = []
    for _ in range(runs + 1):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
        probes.append(json.loads(out))
    probes = probes[1:]
    return {
        "import_ms": statistics.median(probe["ms"] for probe in probes),
        "import_ms_runs": [round(probe["ms"], 2) for probe in probes],
        "import_loaded": probes[-1]["loaded"],
        "import_guard_ms": statistics.median(probe["guard_ms"] for probe in probes),
        "import_guard_loaded": probes[-1]["guard_loaded"],
    }


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit: str | None = _git("rev-parse", "--short", "HEAD")
        dirty: bool | None = bool(_git("status", "--porcelain", "--", "intentguard"))
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "git_commit": commit,
        "intentguard_modified_since_commit": dirty,
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"intentguard latency, python {result['machine']['python']} on {result['machine']['cpu']} "
        f"({result['machine']['cpu_count']} cpus), load {result['loadavg_start']} -> {result['loadavg_end']}",
        f"floor p50 {result['floor_p50_ns']:.0f} ns (p99 {result['floor_p99_ns']:.0f} ns); "
        f"empty loop {result['loop_overhead_ns']:.1f} ns/iteration is inside every figure",
        "",
        f"{'figure':<34}{'value':>12}{'budget':>9}  status  raw",
    ]
    raw = {
        "policy_ratio_p50": f"{result['policy_p50_ns']:.0f} ns",
        "pipeline_ratio_p50": f"{result['pipeline_p50_ns']:.0f} ns",
        "pipeline_ratio_p99": f"{result['pipeline_p99_ns']:.0f} ns",
        "call1000_vs_call1": f"{result['call1_p50_ns']:.0f} -> {result['call1000_p50_ns']:.0f} ns",
        "import_ms": f"loads {', '.join(result['import_loaded']) or 'no heavy module'}; "
        f"first use of ig.Guard: {result['import_guard_ms']:.0f} ms ({', '.join(result['import_guard_loaded'])})",
    }
    for key, (budget, label) in BUDGETS.items():
        value = result[key]
        unit = "ms" if key == "import_ms" else "x"
        status = "OK" if value <= budget else "OVER"
        lines.append(f"{label:<34}{f'{value:.2f}{unit}':>12}{f'{budget:g}{unit}':>9}  {status:<6}  {raw[key]}")
    lines.append("")
    lines.append(
        "audit record build+write (writer side, off the hot path): "
        f"~{result['audit_write_ns_per_record']:.0f} ns/record"
    )
    lines.append(
        f"{result['method']['rounds']} rounds x {result['method']['batch']} calls, "
        f"{result['method']['sessions']} sessions, {result['method']['import_runs']} imports, "
        f"{result['duration_s']:.1f} s"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Latency of the guard's hot path as ratios to a plain-Python floor.")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--rounds", type=int, default=1500, help="interleaved rounds (one batch per subject each)")
    parser.add_argument("--batch", type=int, default=100, help="calls per timed batch")
    parser.add_argument("--sessions", type=int, default=100, help="fresh sessions for call #1 vs call #1000")
    parser.add_argument("--import-runs", type=int, default=7, help="fresh interpreters timing the import")
    options = parser.parse_args(argv)

    began = time.perf_counter()
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    imports = measure_import(options.import_runs)

    directory = Path(tempfile.mkdtemp(prefix="intentguard-bench-"))
    try:
        setup = Setup(directory, "rounds")
        try:
            rounds = measure_rounds(setup, rounds=options.rounds, batch=options.batch)
        finally:
            setup.close()
        (directory / "rounds.jsonl").unlink()
        setup = Setup(directory, "growth")
        try:
            first, last = measure_growth(setup, sessions=options.sessions)
        finally:
            setup.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    floor_p50 = statistics.median(rounds["floor"])
    policy_p50 = statistics.median(rounds["policy"])
    pipeline_p50 = statistics.median(rounds["pipeline"])
    pipeline_p99 = percentile(rounds["pipeline"], 99)
    result: dict[str, Any] = {
        "floor_p50_ns": floor_p50,
        "floor_p99_ns": percentile(rounds["floor"], 99),
        "loop_overhead_ns": statistics.median(rounds["loop"]),
        "policy_p50_ns": policy_p50,
        "policy_p99_ns": percentile(rounds["policy"], 99),
        "policy_ratio_p50": policy_p50 / floor_p50,
        "pipeline_p50_ns": pipeline_p50,
        "pipeline_p99_ns": pipeline_p99,
        "pipeline_ratio_p50": pipeline_p50 / floor_p50,
        "pipeline_ratio_p99": pipeline_p99 / floor_p50,
        "call1_p50_ns": statistics.median(first),
        "call1000_p50_ns": statistics.median(last),
        "call1000_vs_call1": statistics.median(last) / statistics.median(first),
        **imports,
        "audit_write_ns_per_record": statistics.median(rounds["audit_write"]),
        "budgets": {key: budget for key, (budget, _) in BUDGETS.items()},
        "method": {
            "rounds": options.rounds,
            "batch": options.batch,
            "sessions": options.sessions,
            "import_runs": options.import_runs,
            "gc": "disabled inside every timed batch and single-call timing, re-enabled after",
            "percentiles": "over per-batch means (ns per call); nearest rank",
        },
        "machine": machine(),
        "loadavg_start": loadavg_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - began, 1),
    }
    result["within_budget"] = {key: result[key] <= budget for key, (budget, _) in BUDGETS.items()}
    print(report(result))
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
