"""The audit writer: decisions are enqueued on the hot path and written by a worker thread.

``session.check`` only appends a small tuple to a deque. A daemon thread (and every
``flush()``) turns entries into :class:`AuditRecord` values in order, links them into a hash
chain and hands each to every sink. A sink that raises is reported to ``on_error`` and
never changes a decision or stops the other sinks.

Records are handed over in batches (up to :data:`MAX_BATCH`, whatever accumulated since the
last wake-up): a sink with a ``write_many(records)`` method (:class:`BatchAuditSink`) gets the
batch in one call, so it can write, flush and commit once per batch; any other sink is
called once per record.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from intentguard.audit.record import GENESIS, AuditRecord, args_digest, build_record, text_digest
from intentguard.audit.redact import redact
from intentguard.constraints import describe

if TYPE_CHECKING:
    from intentguard.decision import Decision
    from intentguard.gates import Approval
    from intentguard.session import Session

__all__ = ["MAX_BATCH", "YIELD_AFTER", "AuditSink", "AuditWriter", "BatchAuditSink", "SinkErrorHandler"]

MAX_BATCH = 512
"""The most records one batch hands to a sink."""
YIELD_AFTER = 0.0005
"""Seconds of record building after which the writer thread lets other threads run."""

_log = logging.getLogger("intentguard.audit")


@runtime_checkable
class AuditSink(Protocol):
    """Anything that accepts audit records, one at a time, in order."""

    def __call__(self, record: AuditRecord, /) -> None: ...


@runtime_checkable
class BatchAuditSink(AuditSink, Protocol):
    """A sink that also takes a batch of records at once, in order (one write, one commit)."""

    def write_many(self, records: Sequence[AuditRecord], /) -> None: ...


SinkErrorHandler = Callable[[AuditSink, AuditRecord, BaseException], None]


def _log_sink_error(sink: AuditSink, record: AuditRecord, error: BaseException) -> None:
    _log.error("audit sink %r failed on record %s: %s", sink, record.jti, error, exc_info=error)


def _close_at_exit(ref: weakref.ref[AuditWriter]) -> None:
    writer = ref()
    if writer is not None:
        writer.close()


Entry = tuple["Session", int, float, str, "str | None", Any, "Decision", "Approval | None"]


class AuditWriter:
    """Orders decisions into hash-chained records and feeds them to sinks."""

    def __init__(
        self,
        sinks: Iterable[AuditSink],
        *,
        ids: Callable[[], str],
        clock: Callable[[], float],
        on_error: SinkErrorHandler | None = None,
        interval: float = 0.05,
    ) -> None:
        self._sinks: list[AuditSink] = list(sinks)
        self.enabled = bool(self._sinks)
        """True when at least one sink listens (a plain attribute: it is read on the hot path)."""
        self._ids = ids
        self._clock = clock
        self._on_error = on_error or _log_sink_error
        self._interval = interval
        self._pending: deque[Entry] = deque()
        self._drain_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._prev = GENESIS
        self._pos = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.submit: Callable[[Entry], None] = self._pending.append
        """Enqueue one decision: a bare ``deque.append``, cheap and non-blocking (the hot path)."""
        if self._sinks:
            self._start()
        atexit.register(_close_at_exit, weakref.ref(self))

    def add_sink(self, sink: AuditSink) -> None:
        """Start feeding one more sink (records written from now on)."""
        self.flush()
        self._sinks.append(sink)
        self.enabled = True
        self._start()

    def remove_sink(self, sink: AuditSink) -> None:
        """Stop feeding a sink, after everything enqueued so far has reached it."""
        self.flush()
        self._sinks.remove(sink)
        self.enabled = bool(self._sinks)

    def flush(self) -> None:
        """Write everything enqueued so far, in the calling thread."""
        self._drain(yield_between=False)

    def _drain(self, *, yield_between: bool) -> None:
        with self._drain_lock:
            pending = self._pending
            busy_since = time.perf_counter()
            while pending:
                batch: list[AuditRecord] = []
                while pending and len(batch) < MAX_BATCH:
                    if yield_between and time.perf_counter() - busy_since >= YIELD_AFTER:
                        # Building records holds the GIL; hand it back every YIELD_AFTER seconds so a
                        # thread waiting in session.check is not kept for a whole switch interval (5 ms).
                        # Not after every record: a sleep(0) costs tens of microseconds of timer slack.
                        time.sleep(0)
                        busy_since = time.perf_counter()
                    entry = pending.popleft()
                    try:
                        batch.append(self._build(entry))
                    except Exception:  # noqa: BLE001 - one bad entry must not stop the trail
                        _log.exception("intentguard could not build an audit record; it is skipped")
                if batch:
                    self._deliver(batch)

    def _deliver(self, batch: list[AuditRecord]) -> None:
        for sink in tuple(self._sinks):
            write_many = getattr(sink, "write_many", None)
            if callable(write_many):
                try:
                    write_many(batch)
                except Exception as exc:  # noqa: BLE001 - a sink never breaks the trail
                    # The batch is one write: none of its records can be counted on.
                    for record in batch:
                        self._report(sink, record, exc)
                continue
            for record in batch:
                try:
                    sink(record)
                except Exception as exc:  # noqa: BLE001 - a sink never breaks the trail
                    self._report(sink, record, exc)

    def close(self) -> None:
        """Write what is pending, stop the worker, and close sinks that have ``close()``."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.flush()
        for sink in self._sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:  # noqa: BLE001
                    _log.error("closing audit sink %r failed: %s", sink, exc, exc_info=exc)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                thread = threading.Thread(target=self._run, name="intentguard-audit", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            try:
                self._drain(yield_between=True)
            except Exception:  # noqa: BLE001 - the writer thread must outlive any failure
                _log.exception("intentguard audit writer failed; retrying")

    def _report(self, sink: AuditSink, record: AuditRecord, error: BaseException) -> None:
        try:
            self._on_error(sink, record, error)
        except Exception:  # noqa: BLE001 - the error handler itself must not break the writer
            _log.exception("audit error handler failed")

    def _build(self, entry: Entry) -> AuditRecord:
        session, seq, now, tool, call_id, args, decision, approval = entry
        principal = session.principal
        grant = session.grant
        reasons = decision.reasons
        messages = (
            redact(
                [reason.message for reason in reasons],
                args=args,
                note=approval.note if approval else "",
                shown=[value for value in session.intent.params.values() if isinstance(value, str)],
            )
            if reasons
            else []
        )
        record = build_record(
            jti=self._ids(),
            iat=int(self._clock()),
            toe=now,
            txn=session.id,
            aud=principal.tenant,
            sub=principal.user,
            event={
                "seq": seq,
                "session": session.id,
                "intent": grant.intent,
                "intent_version": grant.version,
                "agent": session.agent.id,
                "actors": list(session.chain.actors),
                "root_auth": session.root_auth,
                "depth": session.depth,
                "parent": session.chain.parent_session,
                "call_id": call_id if call_id is None or isinstance(call_id, str) else describe(call_id),
                "tool": tool if isinstance(tool, str) else describe(tool),
                "args_sha256": args_digest(args),
                "effect": decision.effect.name,
                "reasons": [(reason.code.value, message) for reason, message in zip(reasons, messages, strict=True)],
                "score": decision.score,
                "approval": None
                if approval is None
                else {
                    "request": approval.request_id,
                    "approver": approval.approver,
                    "approved": approval.approved,
                    "note_sha256": text_digest(approval.note),
                    "args_sha256": approval.args_sha256,
                },
            },
            pos=self._pos + 1,
            prev=self._prev,
        )
        self._prev = record.digest()
        self._pos += 1
        return record
