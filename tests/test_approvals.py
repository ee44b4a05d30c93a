"""The persisted approval queue: out-of-band decisions, expiry, single use, threads and processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import intentguard as ig
from intentguard.approvals import ApprovalError, ApprovalQueue, ApprovalState
from intentguard.gates import (
    HANDLER_ERROR_APPROVER,
    TIMEOUT_APPROVER,
    Approval,
    AsyncConfirmationHandler,
    ConfirmationHandler,
    ConfirmationRequest,
)
from intentguard.testing import FrozenClock

from .test_gates import make_request


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "approvals.db"


def ticking(clock: FrozenClock) -> Callable[[float], None]:
    """An injected sleep that advances the frozen clock instead of waiting."""
    return lambda seconds: clock.advance(seconds=seconds)


def wait_in_thread(queue: ApprovalQueue, request: ConfirmationRequest) -> tuple[threading.Thread, list[Approval]]:
    results: list[Approval] = []
    thread = threading.Thread(target=lambda: results.append(queue(request)))
    thread.start()
    return thread, results


def test_approved_out_of_band_while_the_handler_waits(path: Path, clock: FrozenClock) -> None:
    """The handler blocks in a thread until an approver on another queue object approves; it returns that approval."""
    polled, decided = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        polled.set()
        decided.wait(timeout=seconds)

    waiting = ApprovalQueue(path, clock=clock, poll_interval=5, sleep=sleep)
    request = make_request(clock)
    thread, results = wait_in_thread(waiting, request)
    assert polled.wait(timeout=10)
    approver = ApprovalQueue(path, clock=clock)
    assert approver.pending() == [request]
    given = approver.approve(request.id, approver="alice", note="order checked")
    decided.set()
    thread.join(timeout=10)
    assert results == [given]
    assert given.approved
    assert given.approver == "alice"
    assert given.note == "order checked"
    assert (given.request_id, given.args_sha256) == (request.id, request.args_sha256)
    assert approver.pending() == []
    assert isinstance(waiting, ConfirmationHandler)


def test_denied_out_of_band(path: Path, clock: FrozenClock) -> None:
    """A denial recorded before the handler asks is what the handler returns; submitting again changes nothing."""
    queue = ApprovalQueue(path, clock=clock, sleep=ticking(clock))
    request = make_request(clock)
    queue.submit(request)
    denial = queue.deny(request.id, approver="bob", note="not this customer")
    assert queue(request) == denial
    assert not denial.approved
    assert denial.approver == "bob"
    assert queue.decision(request.id) == denial


def test_nobody_answering_is_a_timeout_denial(path: Path, clock: FrozenClock) -> None:
    """When nobody decides within the timeout, the handler returns a denial by intentguard:timeout, kept for audit."""
    queue = ApprovalQueue(path, clock=clock, timeout=60, poll_interval=1, sleep=ticking(clock))
    request = make_request(clock, ttl=300)
    start = clock()
    denial = queue(request)
    assert not denial.approved
    assert denial.approver == TIMEOUT_APPROVER
    assert denial.decided_at == start + 60
    assert clock() == start + 60
    (entry,) = queue.history(state=ApprovalState.EXPIRED)
    assert entry.approval == denial
    assert entry.request == request
    with pytest.raises(ApprovalError, match="already expired by 'intentguard:timeout'"):
        queue.approve(request.id, approver="alice")


def test_request_expiry_shortens_the_wait(path: Path, clock: FrozenClock) -> None:
    """A request expiring before the queue's timeout expires at its own time."""
    queue = ApprovalQueue(path, clock=clock, timeout="PT1H", poll_interval=1, sleep=ticking(clock))
    request = make_request(clock, ttl=30)
    denial = queue(request)
    assert denial.approver == TIMEOUT_APPROVER
    assert denial.decided_at == request.expires_at == clock()


def test_overdue_request_cannot_be_decided(path: Path, clock: FrozenClock) -> None:
    """Once its deadline passes, a request drops out of pending and deciding it is refused, even unswept."""
    queue = ApprovalQueue(path, clock=clock)
    request = make_request(clock)
    queue.submit(request)
    clock.advance(minutes=5)
    assert queue.pending() == []
    with pytest.raises(ApprovalError, match=r"'req-1' expired at 2026-01-01 09:05:00 UTC"):
        queue.approve(request.id, approver="alice")
    decision = queue.decision(request.id)
    assert decision is not None
    assert decision.approver == TIMEOUT_APPROVER
    assert not queue.consume(request.id, request.args_sha256)


def test_approval_is_single_use(path: Path, clock: FrozenClock) -> None:
    """An approval is consumed once: the second consume is False, and the use time is recorded."""
    queue = ApprovalQueue(path, clock=clock)
    request = make_request(clock)
    queue.submit(request)
    assert not queue.consume(request.id, request.args_sha256)
    queue.approve(request.id, approver="alice")
    clock.advance(seconds=2)
    assert queue.consume(request.id, request.args_sha256)
    assert not queue.consume(request.id, request.args_sha256)
    (entry,) = queue.history()
    assert entry.used_at == clock()
    assert entry.state is ApprovalState.APPROVED


def test_approval_is_bound_to_the_exact_arguments(path: Path, clock: FrozenClock) -> None:
    """Consuming with another arguments hash is False and leaves the approval unspent."""
    queue = ApprovalQueue(path, clock=clock)
    request = make_request(clock)
    queue.submit(request)
    queue.approve(request.id, approver="alice")
    other = make_request(clock, args={**request.args, "amount": 4000})
    assert not queue.consume(request.id, other.args_sha256)
    assert queue.consume(request.id, request.args_sha256)


def test_denial_and_unknown_requests_cannot_be_consumed(path: Path, clock: FrozenClock) -> None:
    """Only an approved request can be consumed: a denied or unknown one is False."""
    queue = ApprovalQueue(path, clock=clock)
    request = make_request(clock)
    queue.submit(request)
    queue.deny(request.id, approver="bob")
    assert not queue.consume(request.id, request.args_sha256)
    assert not queue.consume("req-unknown", request.args_sha256)


def test_deciding_twice_is_refused(path: Path, clock: FrozenClock) -> None:
    """A decided request cannot be decided again; the error names the request and the first approver."""
    queue = ApprovalQueue(path, clock=clock)
    request = make_request(clock)
    queue.submit(request)
    first = queue.approve(request.id, approver="alice")
    for decide in (queue.approve, queue.deny):
        with pytest.raises(ApprovalError, match="'req-1' is already approved by 'alice'"):
            decide(request.id, approver="mallory")
    assert queue.decision(request.id) == first


def test_unknown_request_is_refused(path: Path, clock: FrozenClock) -> None:
    """Deciding or reading the decision of an id never queued is an ApprovalError naming it; get is None."""
    queue = ApprovalQueue(path, clock=clock)
    actions: list[Callable[[], object]] = [
        lambda: queue.approve("req-404", approver="alice"),
        lambda: queue.deny("req-404", approver="alice"),
        lambda: queue.decision("req-404"),
    ]
    for action in actions:
        with pytest.raises(ApprovalError, match="'req-404'"):
            action()
    assert queue.get("req-404") is None
    assert issubclass(ApprovalError, ig.ConfigurationError)


@pytest.mark.parametrize("approver", ["", "  ", None])
def test_decisions_need_an_approver(path: Path, clock: FrozenClock, approver: Any) -> None:
    """An approval or denial without an approver identity is refused and leaves the request pending."""
    queue = ApprovalQueue(path, clock=clock)
    request = make_request(clock)
    queue.submit(request)
    with pytest.raises(ApprovalError, match="approver"):
        queue.approve(request.id, approver=approver)
    with pytest.raises(ApprovalError, match="note"):
        queue.deny(request.id, approver="bob", note=None)  # type: ignore[arg-type]
    assert queue.pending() == [request]


def test_persisted_across_reopen(path: Path, clock: FrozenClock) -> None:
    """Requests, decisions and uses survive closing and reopening the file, with the request read back equal."""
    first = ApprovalQueue(path, clock=clock)
    waiting, decided = make_request(clock, id="req-1"), make_request(clock, id="req-2")
    first.submit(waiting)
    first.submit(decided)
    approval = first.approve(decided.id, approver="alice")
    assert first.consume(decided.id, decided.args_sha256)
    del first
    again = ApprovalQueue(path, clock=clock)
    assert again.pending() == [waiting]
    assert again.get(decided.id) == decided
    assert again.decision(decided.id) == approval
    assert not again.consume(decided.id, decided.args_sha256)
    assert [entry.state for entry in again.history()] == [ApprovalState.PENDING, ApprovalState.APPROVED]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_same_id_with_other_arguments_is_refused(path: Path, clock: FrozenClock) -> None:
    """Reusing a request id for other arguments is refused by submit and is a denial from the handler."""
    queue = ApprovalQueue(path, clock=clock, sleep=ticking(clock))
    queue.submit(make_request(clock))
    forged = make_request(clock, args={"order_id": "A123", "amount": 5000})
    with pytest.raises(ApprovalError, match="already queued"):
        queue.submit(forged)
    denial = queue(forged)
    assert not denial.approved
    assert denial.approver == HANDLER_ERROR_APPROVER
    assert "ApprovalError" in denial.note


def test_arguments_that_are_not_json_are_a_denial(path: Path, clock: FrozenClock) -> None:
    """A request whose arguments JSON cannot hold is refused on submit and denied by the handler."""
    queue = ApprovalQueue(path, clock=clock)
    request = make_request(clock, args={"blob": b"\x00", "ratio": float("nan")})
    with pytest.raises(ApprovalError, match="JSON"):
        queue.submit(request)
    assert not queue(request).approved
    assert queue.history() == []


def test_history_filters_by_state(path: Path, clock: FrozenClock) -> None:
    """The audit trail lists every request with who decided and when, filterable by state."""
    queue = ApprovalQueue(path, clock=clock)
    for name in ("a", "b", "c"):
        queue.submit(make_request(clock, id=name))
        clock.advance(seconds=1)
    queue.approve("a", approver="alice")
    queue.deny("b", approver="bob", note="wrong amount")
    assert [entry.request.id for entry in queue.history(state=ApprovalState.DENIED)] == ["b"]
    entries = {entry.request.id: entry for entry in queue.history()}
    assert entries["b"].approval is not None
    assert entries["b"].approval.note == "wrong amount"
    assert entries["a"].approval is not None
    assert entries["a"].approval.decided_at == clock()
    assert entries["c"].approval is None
    assert entries["c"].state is ApprovalState.PENDING


@pytest.mark.parametrize(
    "options",
    [{"poll_interval": 0}, {"poll_interval": float("nan")}, {"poll_interval": True}, {"timeout": 0}],
)
def test_bad_options_are_refused(path: Path, options: dict[str, Any]) -> None:
    """A non-positive poll interval or timeout is a configuration error, never a busy loop or instant expiry."""
    with pytest.raises(ig.ConfigurationError):
        ApprovalQueue(path, **options)


def test_unusable_paths_are_refused(tmp_path: Path) -> None:
    """An in-memory database or a path SQLite cannot open is an ApprovalError naming it."""
    with pytest.raises(ApprovalError, match="':memory:'"):
        ApprovalQueue(":memory:")
    with pytest.raises(ApprovalError, match="missing"):
        ApprovalQueue(tmp_path / "missing" / "approvals.db")


def test_a_file_that_is_not_sqlite_is_refused(path: Path) -> None:
    """A file that is not a SQLite database is an ApprovalError naming the path, not a driver error."""
    path.write_bytes(b"not a database, just text" * 100)
    with pytest.raises(ApprovalError, match=r"approvals\.db") as caught:
        ApprovalQueue(path)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_unreadable_stored_request_is_an_error(path: Path, clock: FrozenClock) -> None:
    """A stored request this version cannot read (an unknown reason code) is an ApprovalError, never a guess."""
    queue = ApprovalQueue(path, clock=clock)
    queue.submit(make_request(clock))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE intentguard_approvals SET request = replace(request, 'ARG_CONSTRAINT', 'FROM_THE_FUTURE')")
    conn.close()
    with pytest.raises(ApprovalError, match="cannot be read"):
        queue.pending()
    assert repr(queue) == f"ApprovalQueue({str(path)!r})"


def test_threads_racing_to_decide_one_request(path: Path, clock: FrozenClock) -> None:
    """Of eight threads deciding the same request at once, exactly one succeeds; of eight consuming, one wins."""
    queue = ApprovalQueue(path, clock=clock)
    request = make_request(clock)
    queue.submit(request)
    barrier = threading.Barrier(8)
    won: list[str] = []
    used: list[bool] = []

    def decide(name: str) -> None:
        barrier.wait(timeout=10)
        try:
            queue.approve(request.id, approver=name)
        except ApprovalError:
            return
        won.append(name)

    def consume() -> None:
        barrier.wait(timeout=10)
        used.append(queue.consume(request.id, request.args_sha256))

    for target, args in ((decide, lambda i: (f"approver-{i}",)), (consume, lambda i: ())):
        threads = [threading.Thread(target=target, args=args(i)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert len(won) == 1
    decision = queue.decision(request.id)
    assert decision is not None
    assert decision.approver == won[0]
    assert sorted(used) == [False] * 7 + [True]


def race_to_decide(path: str, request_id: str, approve: bool, start: Any, results: Any) -> None:
    """Runs in a spawned process: wait for the start signal, then try to decide the request."""
    queue = ApprovalQueue(path)
    start.wait(30)
    decide = queue.approve if approve else queue.deny
    name = "alice" if approve else "bob"
    try:
        decide(request_id, approver=name)
    except ApprovalError:
        results.put((name, False))
    else:
        results.put((name, True))


def test_two_processes_deciding_one_request(path: Path) -> None:
    """Two processes approving and denying the same request at once: exactly one wins, and the file says who."""
    clock = FrozenClock(time.time())
    request = make_request(clock, ttl=600)
    ApprovalQueue(path).submit(request)
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=race_to_decide, args=(str(path), request.id, approve, start, results))
        for approve in (True, False)
    ]
    for process in processes:
        process.start()
    start.set()
    outcomes = dict(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    winners = [name for name, won in outcomes.items() if won]
    assert len(winners) == 1
    decision = ApprovalQueue(path).decision(request.id)
    assert decision is not None
    assert decision.approver == winners[0]
    assert decision.approved == (winners[0] == "alice")


def test_async_wait_and_handler(path: Path, clock: FrozenClock) -> None:
    """wait_async returns the stored decision; acall is an async handler that resubmits harmlessly and waits."""
    queue = ApprovalQueue(path, clock=clock, poll_interval=0.001)
    request = make_request(clock)
    queue.submit(request)
    approval = queue.approve(request.id, approver="alice")
    assert asyncio.run(queue.wait_async(request.id)) == approval
    assert asyncio.run(queue.acall(request)) == approval
    assert isinstance(queue.acall, AsyncConfirmationHandler)


def test_async_handler_waits_for_a_concurrent_approver(path: Path, clock: FrozenClock) -> None:
    """While acall waits without blocking the loop, a coroutine approving the pending request ends the wait."""
    queue = ApprovalQueue(path, clock=clock, poll_interval=0.001)
    request = make_request(clock)

    async def approve_when_pending() -> Approval:
        while not queue.pending():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)  # let the waiter poll a few times first
        return queue.approve(request.id, approver="alice")

    async def main() -> tuple[Approval, Approval]:
        return await asyncio.gather(queue.acall(request), approve_when_pending())

    returned, given = asyncio.run(main())
    assert returned == given
    assert returned.approved


def test_async_timeout_and_failure_are_denials(path: Path, clock: FrozenClock) -> None:
    """The async handler denies on expiry (by intentguard:timeout) and on any failure (naming it)."""
    queue = ApprovalQueue(path, clock=clock, poll_interval=0.001)

    async def expire_while_waiting() -> Approval:
        waiting = asyncio.create_task(queue.acall(make_request(clock)))
        while not queue.pending():
            await asyncio.sleep(0.001)
        clock.advance(minutes=5)
        return await waiting

    denial = asyncio.run(expire_while_waiting())
    assert not denial.approved
    assert denial.approver == TIMEOUT_APPROVER
    failed = asyncio.run(queue.acall(make_request(clock, id="req-2", args={"blob": b"\x00"})))
    assert not failed.approved
    assert failed.approver == HANDLER_ERROR_APPROVER
