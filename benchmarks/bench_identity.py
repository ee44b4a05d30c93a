"""Identity figures: verifying a hop-token chain, and checking calls on a resumed, delegated session.

Run ``python -m benchmarks.bench_identity --out benchmarks/results/latency.json`` (``make bench``).

- ``hop_verify_us_p50``: one full, uncached verification of a two-hop chain (three Ed25519 JWS:
  root, child, grandchild): signatures, claims, linkage, narrowing, time. Microseconds.
- ``cached_check_ratio_p50``: ``session.check(search_kb)`` on a session resumed from that chain
  (its tokens verified once, at resume) in a guard with a tenant provider consulted through the
  cache, over the plain-Python floor measured in the same run. ``plain_check_ratio_p50`` is the
  same call on a root session of a guard without keys or tenants, for comparison
  (``cached_vs_plain_check`` is their quotient). No audit sink. Uncached verification is dominated
  by PyJWT's base64url validation, not by Ed25519.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Sequence
from itertools import repeat
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from benchmarks.latency import LOW_ARGS, LOW_TOOL, PARAMS, bench_schema, percentile, time_floor, time_pipeline
from benchmarks.results_file import merge_results

BUDGETS: dict[str, tuple[float, str]] = {
    "cached_check_ratio_p50": (15.0, "check() on a resumed, delegated session / floor p50 (the pipeline budget)"),
    "cached_vs_plain_check": (1.2, "check() on the resumed session / on a plain root session, p50"),
}


def time_verify(n: int, verify: Any, tokens: Sequence[str], now: float) -> float:
    """Microseconds per uncached chain verification."""
    verify(tokens, now=now)
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        verify(tokens, now=now)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n / 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hop-token verification and checks on resumed sessions.")
    parser.add_argument("--out", type=Path, help="merge the figures into this JSON file")
    parser.add_argument("--rounds", type=int, default=400, help="interleaved rounds")
    parser.add_argument("--batch", type=int, default=100, help="calls per timed batch")
    parser.add_argument("--verify-batch", type=int, default=10, help="chain verifications per timed batch")
    options = parser.parse_args(argv)
    began = time.perf_counter()

    import intentguard as ig
    from intentguard.testing import TenantDirectory

    schema = bench_schema().model_copy(update={"max_depth": 2})
    keys = ig.MemoryKeyStore()
    keys.generate("acme")
    principal = ig.Principal(user="u-7", tenant="acme", auth_event="login-42")
    origin = ig.Guard(schemas=[schema], keys=keys)
    root = origin.start("refund_request", PARAMS, principal=principal, agent=ig.AgentIdentity(id="support-bot"))
    child = root.delegate(ig.AgentIdentity(id="researcher"), tools=["lookup_order", "search_kb"])
    grandchild = child.delegate(ig.AgentIdentity(id="summariser"), tools=["search_kb"])
    tokens = grandchild.tokens
    worker = ig.Guard(schemas=[schema], keys=keys, tenants=TenantDirectory({"acme": None}), tenant_max_age=3600)
    resumed = worker.resume(tokens, tenant="acme")
    plain = ig.Guard(schemas=[schema]).start("refund_request", PARAMS, principal=principal, agent=root.agent)
    call = ig.ToolCall(LOW_TOOL, dict(LOW_ARGS))
    for session in (resumed, plain):
        if not session.check(call).allowed:
            raise SystemExit(f"{call.name} is not allowed on {session!r}; the benchmark no longer fits the library")
    uncached = ig.HopVerifier(keys, cache_size=0).verify
    if not uncached(tokens, now=time.time()).ok:
        raise SystemExit("the benchmark chain does not verify")

    series: dict[str, list[float]] = {"floor": [], "resumed": [], "plain": [], "verify": []}
    for _ in range(options.rounds):
        series["floor"].append(time_floor(options.batch, "issue_refund", time.time(), 0))
        series["resumed"].append(time_pipeline(options.batch, resumed, call))
        series["plain"].append(time_pipeline(options.batch, plain, call))
        series["verify"].append(time_verify(options.verify_batch, uncached, tokens, time.time()))
    floor_p50 = statistics.median(series["floor"])
    result: dict[str, Any] = {
        "hop_verify_us_p50": statistics.median(series["verify"]),
        "hop_verify_us_p99": percentile(series["verify"], 99),
        "hop_chain_hops": len(tokens),
        "resumed_check_p50_ns": statistics.median(series["resumed"]),
        "cached_check_ratio_p50": statistics.median(series["resumed"]) / floor_p50,
        "plain_check_ratio_p50": statistics.median(series["plain"]) / floor_p50,
        "cached_vs_plain_check": statistics.median(series["resumed"]) / statistics.median(series["plain"]),
        "budgets": {key: budget for key, (budget, _) in BUDGETS.items()},
    }
    for key, (budget, what) in BUDGETS.items():
        print(f"{key:<26} {result[key]:8.2f}  (budget {budget}: {what})")
    for key in ("hop_verify_us_p50", "hop_verify_us_p99", "plain_check_ratio_p50", "resumed_check_p50_ns"):
        print(f"{key:<26} {result[key]:8.2f}")
    print(f"identity benchmark took {time.perf_counter() - began:.1f} s")
    for guard in (origin, worker):
        guard.close()
    if options.out is not None:
        merge_results(options.out, result)
        print(f"wrote {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
