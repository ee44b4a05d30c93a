"""A writer killed with SIGKILL mid-stream leaves a verifiable trail: every flushed record, no half record."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from intentguard.audit import Fault, verify_jsonl
from intentguard.cli import main

from .conftest import REFUND

CHILD = """
import sys
import intentguard as ig

path, schema = sys.argv[1], sys.argv[2]
guard = ig.Guard(schemas=[schema], audit=[ig.JsonlSink(path, quarantine_torn=True)])
session = guard.start(
    "refund_request",
    {"order_id": "A123", "customer_email": "ann@example.com", "max_refund": 50},
    principal=ig.Principal(user="u-7", tenant="acme"),
    agent=ig.AgentIdentity(id="bot"),
)
written = 0
while True:
    for index in range(150):
        session.check(ig.ToolCall("search_kb", {"query": f"refund policy {index}"}))
        session.check(ig.ToolCall("wire_money", {"to": "mallory"}))
    guard.flush()
    written += 300
    print(written, flush=True)
"""

ROUNDS = 3
WAIT = 60.0


def run_until_killed(path: Path, records: int) -> int:
    """Start a writer, wait (bounded) until it reports at least ``records`` flushed, then SIGKILL it as
    soon as it starts writing again; returns how many records it reported flushed."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(REFUND)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.stdout is not None
    flushed = 0
    deadline = time.monotonic() + WAIT
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            while flushed < records:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    pytest.fail(f"the writer reported {flushed} records in {WAIT} s")
                line = child.stdout.readline()
                if not line:
                    pytest.fail(f"the writer exited early: {child.stderr.read().decode() if child.stderr else ''}")
                flushed = int(line)
            # Kill the moment the file grows again: most likely while the next batch is being written.
            size = path.stat().st_size
            while path.stat().st_size == size and child.poll() is None and time.monotonic() < deadline:
                pass
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return flushed


def test_kill_9_leaves_a_verifiable_prefix_and_the_chain_continues(tmp_path: Path) -> None:
    """After each SIGKILL the trail is intact or ends in one torn line that is not accepted; a new writer
    quarantines the torn bytes and continues the chain, and no record a writer flushed is ever lost."""
    path = tmp_path / "audit.jsonl"
    acknowledged = 0
    for round_ in range(ROUNDS):
        acknowledged += run_until_killed(path, records=300 * (round_ + 1))
        report = verify_jsonl(path)
        if not report.ok:
            assert [problem.fault for problem in report.problems] == [Fault.TORN], report.lines()
            assert report.problems[0].where == f"line {report.records + 1}"
        assert report.records == report.intact
        assert report.records >= acknowledged
    code = main(["audit", "verify", str(path)])
    assert code in (0, 1)
    final = verify_jsonl(path)
    assert all(problem.fault is Fault.TORN for problem in final.problems)
    assert final.last == final.records  # one chain, numbered 1..N across every restart
