"""Many processes: a user offboarded in one process is denied in every other.

Three worker processes (multiprocessing, spawn) each guard sessions for user u-7 and one for
u-8; this process offboards u-7 through its own registry. Every worker must report DENY with
SESSION_REVOKED for u-7's sessions while u-8's stays allowed. Waits are bounded; nothing here
asserts how fast, only that it happens (the benchmark measures how fast).
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import intentguard as ig
from intentguard.registry import Scope, open_registry

WORKERS = 3
WAIT_S = 60.0  # bounded: spawning a Python process on a busy 2-core machine can take seconds


def worker(url: str, name: str, ready: Any, results: Any) -> None:
    """Guard two sessions of u-7 and one of u-8; report once u-7's are denied (bounded)."""
    from intentguard.testing import sequential_ids
    from tests.conftest import REFUND, REFUND_PARAMS

    call = ig.ToolCall("lookup_order", {"order_id": "A123"})
    with ig.Guard(schemas=[REFUND], ids=sequential_ids(name), registry=url) as guard:

        def start(user: str) -> ig.Session:
            return guard.start(
                "refund_request",
                REFUND_PARAMS,
                principal=ig.Principal(user=user, tenant="acme"),
                agent=ig.AgentIdentity(id="support-bot"),
            )

        targets, bystander = [start("u-7"), start("u-7")], start("u-8")
        allowed_before = all(session.check(call).allowed for session in (*targets, bystander))
        ready.put(name)
        deadline = time.monotonic() + WAIT_S
        # Watch without spending the tools' budgets; the registry's own thread does the work.
        while time.monotonic() < deadline and any(session.revoked is None for session in targets):
            time.sleep(0.005)
        decisions = [session.check(call) for session in targets]
        results.put(
            {
                "name": name,
                "allowed_before": allowed_before,
                "codes": [[str(code) for code in decision.codes] for decision in decisions],
                "explain": [decision.explain() for decision in decisions],
                "bystander_allowed": bystander.check(call).allowed,
            }
        )


@pytest.fixture(params=["sqlite", "redis"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    return f"{request.getfixturevalue('redis_url')}?prefix=procs-{uuid.uuid4().hex}:"


def test_offboarding_in_one_process_denies_in_every_other(registry_url: str) -> None:
    """After this process invalidates user u-7, every worker process denies u-7's sessions with
    SESSION_REVOKED naming who and why, and keeps u-8's session allowed."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    processes = [
        context.Process(target=worker, args=(registry_url, f"w{index}", ready, results)) for index in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=WAIT_S)
        admin, _ = open_registry(registry_url, clock=ig.SystemClock())
        admin.invalidate(Scope.user("acme", "u-7"), reason="offboarded on her last day", by="hr-system")
        admin.close()
        reports = []
        for _ in processes:
            try:
                reports.append(results.get(timeout=WAIT_S + 10))
            except queue.Empty:
                pytest.fail(f"only {len(reports)} of {WORKERS} workers reported")
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        ready.close()
        results.close()
    assert len(reports) == WORKERS
    for report in reports:
        assert report["allowed_before"], report
        assert report["codes"] == [["SESSION_REVOKED"], ["SESSION_REVOKED"]], report
        assert all("hr-system invalidated user 'u-7'" in text for text in report["explain"]), report
        assert report["bystander_allowed"], report
