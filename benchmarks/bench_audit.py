"""Audit throughput: records per second through the AuditWriter into each sink.

Run ``python -m benchmarks.bench_audit --out benchmarks/results/latency.json`` (``make bench``).

How it is measured, per sink: a guard writes to a *gate* sink and then the sink under test. One
check is made and the writer thread is let into the gate, where it waits; meanwhile N more
checks are made, so N decisions queue up behind it. The clock starts when the gate opens and
stops when ``guard.flush()`` returns, i.e. when the writer thread (with the flush's help) has
built, hashed, redacted and handed every queued record to the sink, and the sink has written
it (JSONL: one ``write`` per batch plus the head file; SQLite: one WAL transaction per batch;
Redis: one WATCH/MULTI/EXEC per batch on a loopback redis-server). Rate = N / elapsed, the
median of several rounds. ``audit_*_cpu_rps`` divides by this process's CPU time instead: it
leaves out time spent waiting for a core on a busy machine (and the Redis server's own work).
``audit_null_rps`` uses a sink that only keeps the record: the writer's own cost. Each figure
is also given as ns per record and as a ratio to the plain-Python floor measured in the same
run. The budget is a minimum: JSONL >= 20,000 records/s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import intentguard as ig
from benchmarks.latency import time_floor
from benchmarks.results_file import merge_results

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "intent_schemas" / "refund_request.yaml"
PARAMS = {"order_id": "A123", "customer_email": "ann@example.com", "max_refund": 50}
# A mix like a real trail: mostly allowed lookups, some denials with reasons (which are redacted).
CALLS = [
    ig.ToolCall("lookup_order", {"order_id": "A123"}, "c1"),
    ig.ToolCall("search_kb", {"query": "refund policy for a duplicate card charge"}, "c2"),
    ig.ToolCall("lookup_order", {"order_id": "A123"}, "c3"),
    ig.ToolCall("issue_refund", {"order_id": "A123", "amount": 900.0}, "c4"),
]
BUDGETS = {"audit_jsonl_rps": 20_000.0}
"""Minimums (records per second)."""


class Gate:
    """A sink that holds the writer thread at its first record until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, record: ig.AuditRecord, /) -> None:
        self.entered.set()
        self.opened.wait(timeout=60)


def bench_schema() -> ig.IntentSchema:
    """The refund schema with budgets large enough for any number of calls."""
    import yaml

    data = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))
    data["max_calls"] = 10**9
    for tool in data["tools"].values():
        tool["max_calls"] = 10**9
    return ig.IntentSchema.model_validate(data)


def one_round(schema: ig.IntentSchema, sink: ig.AuditSink, n: int) -> tuple[float, float]:
    """Wall and CPU seconds (this process, all threads) to write ``n`` queued records into ``sink``."""
    gate = Gate()
    guard = ig.Guard(schemas=[schema], audit=[gate, sink])
    session = guard.start(
        "refund_request", PARAMS, principal=ig.Principal(user="u-7", tenant="acme"), agent=ig.AgentIdentity(id="bot")
    )
    session.check(CALLS[0])
    if not gate.entered.wait(timeout=30):
        raise RuntimeError("the audit writer never reached the gate")
    for index in range(n):
        session.check(CALLS[index % len(CALLS)])
    start, cpu = time.perf_counter(), time.process_time()
    gate.opened.set()
    guard.flush()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    guard.close()
    return elapsed, cpu


def measure(
    schema: ig.IntentSchema, make_sink: Callable[[int], ig.AuditSink], *, n: int, rounds: int
) -> tuple[float, float]:
    """Median records per second over ``rounds`` rounds of ``n`` records, a fresh sink each round:
    by the wall clock, and by this process's CPU time (what the figure would be on an idle core)."""
    times = [one_round(schema, make_sink(index), n) for index in range(rounds)]
    return statistics.median(n / wall for wall, _ in times), statistics.median(n / max(cpu, 1e-9) for _, cpu in times)


@contextmanager
def redis_url() -> Iterator[str | None]:
    """A throwaway loopback redis-server (``intentguard.testing.redis_server``), or None if none is installed."""
    if shutil.which("redis-server") is None:
        yield None
        return
    from intentguard.testing import redis_server

    with redis_server() as server:
        yield server.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, help="merge the figures into this JSON file")
    parser.add_argument("--records", type=int, default=10_000, help="records per round")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args(argv)
    began = time.perf_counter()
    schema = bench_schema()
    floor_ns = statistics.median(time_floor(20_000, "issue_refund", 0.0, 0) for _ in range(21))
    result: dict[str, Any] = {}
    directory = Path(tempfile.mkdtemp(prefix="intentguard-bench-audit-"))
    try:
        sinks: dict[str, Callable[[int], Any]] = {
            "null": lambda i: [].append,
            "jsonl": lambda i: ig.JsonlSink(directory / f"audit-{i}.jsonl"),
        }
        # Sinks are looked up by name so the same script also measures older versions (before/after).
        if hasattr(ig, "SqliteSink"):
            sinks["sqlite"] = lambda i: ig.SqliteSink(directory / f"audit-{i}.db")
        with redis_url() as url:
            if url is not None and hasattr(ig, "RedisStreamSink"):
                sinks["redis"] = lambda i: ig.RedisStreamSink(url, stream=f"audit-{i}")
            for name, make in sinks.items():
                rps, cpu_rps = measure(schema, make, n=options.records, rounds=options.rounds)
                result[f"audit_{name}_rps"] = rps
                result[f"audit_{name}_cpu_rps"] = cpu_rps
                result[f"audit_{name}_ns_per_record"] = 1e9 / rps
                result[f"audit_{name}_floor_ratio"] = (1e9 / rps) / floor_ns
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    result["audit_floor_ns"] = floor_ns
    result["budgets"] = dict(BUDGETS)
    result["audit_within_budget"] = {key: result.get(key, 0.0) >= minimum for key, minimum in BUDGETS.items()}
    result["audit_method"] = {
        "records_per_round": options.records,
        "rounds": options.rounds,
        "statistic": "median of rounds; records/s from the gate opening to guard.flush() returning",
        "budget_kind": "minimum (records per second)",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - began, 1),
    }
    for key in ("null", "jsonl", "sqlite", "redis"):
        if f"audit_{key}_rps" in result:
            print(
                f"audit {key:6s} {result[f'audit_{key}_rps']:>10,.0f} records/s  "
                f"({result[f'audit_{key}_ns_per_record'] / 1000:.1f} us/record, "
                f"{result[f'audit_{key}_floor_ratio']:.0f}x floor); by CPU time {result[f'audit_{key}_cpu_rps']:,.0f}/s"
            )
    print(f"floor p50 {floor_ns:.0f} ns")
    if options.out is not None:
        merge_results(options.out, result)
        print(f"wrote {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
