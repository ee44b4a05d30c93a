"""Every benchmark script that ``make bench`` runs still runs end to end and writes the keys it documents.

Each script's ``main`` runs in-process with the smallest settings that still go through all of its
parts, into a results file of its own. Only the presence and type of the figures is checked, never
their values: speed is measured by ``make bench``, not asserted in tests.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@dataclass(frozen=True)
class Case:
    """One script: its module under ``benchmarks``, tiny settings, and headline keys it must write."""

    module: str
    options: tuple[str, ...]
    keys: tuple[str, ...]
    redis: bool = False  # the script starts its own loopback redis-server (intentguard.testing.redis_server)


CASES = (
    Case(
        "latency",
        ("--rounds", "2", "--ledger-rounds", "2", "--batch", "2", "--sessions", "1", "--import-runs", "1"),
        ("policy_ratio_p50", "pipeline_ratio_p50", "provenance_1mb_vs_1kb", "import_ms"),
    ),
    Case(
        "bench_audit",
        ("--records", "10", "--rounds", "2"),
        ("audit_jsonl_rps", "audit_sqlite_rps", "audit_redis_rps", "audit_jsonl_cpu_rps"),
        redis=True,
    ),
    Case(
        "bench_divergence",
        ("--rounds", "2", "--batch", "2", "--sessions", "1"),
        ("scoring_ratio_p50", "scoring_call1000_vs_call1", "decide_ratio_p50"),
    ),
    Case(
        "bench_identity",
        ("--rounds", "2", "--batch", "2", "--verify-batch", "1"),
        ("hop_verify_us_p50", "cached_check_ratio_p50", "plain_check_ratio_p50", "cached_vs_plain_check"),
    ),
    Case(
        # 10 warm-up + 12 timed rounds of 4 x (100 + 2) requests pass the end of the 8,192-request cycle.
        "bench_langchain",
        ("--rounds", "12", "--batch", "2", "--node-rounds", "2", "--node-batch", "1"),
        ("langchain_overhead_us_p50", "langchain_overhead_fresh_us_p50", "langchain_decision_us_p50"),
    ),
    Case(
        "bench_observe",
        ("--rounds", "1", "--batch", "2"),
        ("observe_result_us_p50", "observe_result_fresh_us_p50", "observe_100kb_commit_us_p50"),
    ),
    Case(
        "bench_registry",
        ("--redis-rounds", "2", "--sqlite-rounds", "2", "--rounds", "2", "--batch", "2"),
        ("registry_check_ratio_p50", "redis_revocation_ms_p99", "sqlite_revocation_ms_p99"),
        redis=True,
    ),
)


def finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def require_redis_server() -> None:
    """Skip without a redis-server, as tests/conftest.py does (in CI, where it must be installed, fail)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed; CI must run the Redis tests (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")


def test_every_benchmark_script_has_a_case() -> None:
    """Every script make bench runs (latency.py and each bench_*.py) has a case below."""
    scripts = {"latency"} | {path.stem for path in BENCHMARKS.glob("bench_*.py")}
    assert scripts == {case.module for case in CASES}


@pytest.mark.parametrize("case", [pytest.param(case, id=case.module) for case in CASES])
def test_benchmark_runs_and_writes_its_keys(case: Case, tmp_path: Path) -> None:
    """The script runs end to end with tiny settings; its headline and budgeted keys are finite numbers."""
    if case.redis:
        require_redis_server()
    out = tmp_path / "latency.json"
    argv = [*case.options, "--out", str(out)]
    module = importlib.import_module(f"benchmarks.{case.module}")
    assert module.main(argv) == 0

    results = json.loads(out.read_text(encoding="utf-8"))
    bad = {key: results.get(key, "missing") for key in case.keys if not finite_number(results.get(key))}
    assert bad == {}
    budgets = results["budgets"]
    assert budgets
    bad_budgets = {
        key: (budget, results.get(key, "missing"))
        for key, budget in budgets.items()
        if not (finite_number(budget) and finite_number(results.get(key)))
    }
    assert bad_budgets == {}


@pytest.mark.parametrize("mode", ["fresh", "same", "decide"])
def test_the_instruction_count_driver_runs_every_mode(mode: str) -> None:
    """benchmarks.hook_instructions (run under valgrind by hand) drives allowed tool calls in each mode."""
    from benchmarks import hook_instructions

    assert hook_instructions.main([mode, "5"]) == 0
