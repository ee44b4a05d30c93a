"""What every backend shares: the local epoch cache, leases, and the push/poll thread.

A backend supplies four operations (read the records of some keys, bump a key, list the
changes since a sequence number, wait for pushed changes); this module turns them into
O(1) per-call liveness, bounded staleness and fail-closed checks.
"""

from __future__ import annotations

import abc
import logging
import math
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from intentguard.clock import Clock, SystemClock, format_time
from intentguard.decision import Reason, ReasonCode
from intentguard.errors import ConfigurationError, RegistryError
from intentguard.registry import Invalidation, Scope, scopes_of

__all__ = ["EpochLease", "EpochRegistry"]

_log = logging.getLogger("intentguard.registry")


class _State:
    """The process-local mirror of the epochs its sessions care about.

    Writers update ``records`` and ``epochs`` before ``generation``; readers read ``generation``
    first, so a reader that saw a generation also sees every change it stands for.
    """

    __slots__ = ("epochs", "fresh_until", "generation", "records")

    def __init__(self, fresh_until: float) -> None:
        self.generation = 0
        self.fresh_until = fresh_until
        self.epochs: dict[str, int] = {}
        self.records: dict[str, Invalidation] = {}


class EpochLease:
    """A session's standing: the epochs it started under, compared with the local cache."""

    __slots__ = ("_revoked", "_state", "epochs", "generation", "session_id", "staleness")

    def __init__(self, state: _State, session_id: str, epochs: Sequence[tuple[str, int]], generation: int) -> None:
        self._state = state
        self._revoked: str | None = None
        self.session_id = session_id
        self.epochs = tuple(epochs)
        self.generation = generation
        self.staleness = 0.0

    def current(self, now: float, /) -> bool:
        """True when no epoch moved since the last full check and the cache is fresh (O(1))."""
        state = self._state
        return self.generation == state.generation and now < state.fresh_until

    def revocation(self) -> str | None:
        """Who revoked the session and why, once an epoch moved past it (permanent)."""
        if self._revoked is None:
            state = self._state
            for key, epoch in self.epochs:
                if state.epochs.get(key, 0) > epoch:
                    record = state.records.get(key)
                    known = record.describe() if record is not None else f"{Scope.from_key(key)} was invalidated"
                    self._revoked = known
                    self.generation = -1  # never current again
                    break
        return self._revoked

    def check(self, now: float, /) -> Reason | None:
        """Re-evaluate from the local cache; on success the next checks take the O(1) path."""
        state = self._state
        generation = state.generation
        revoked = self.revocation()
        if revoked is not None:
            return Reason(ReasonCode.SESSION_REVOKED, f"session {self.session_id!r} was revoked: {revoked}")
        fresh_until = state.fresh_until
        if now >= fresh_until:
            if fresh_until == -math.inf:
                since = "it was never reached or is closed"
            else:
                since = f"last reached {format_time(fresh_until - self.staleness)}"
            return Reason(
                ReasonCode.REGISTRY_UNAVAILABLE,
                f"the session registry cannot vouch for session {self.session_id!r} ({since}; "
                f"the bound is {self.staleness:g} s), so its calls are denied until it is reachable again.",
            )
        self.generation = generation
        return None


def _require_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 2000:
        raise ConfigurationError(f"{what} {value!r} must be a non-empty sentence of at most 2,000 characters")
    return value


class EpochRegistry(abc.ABC):
    """The shared machinery of the shipped registries; backends override the ``_backend_*`` hooks.

    ``poll_interval``: seconds between polls (each also proves the backend reachable).
    ``max_staleness``: how long checks keep allowing while the backend cannot be reached.
    """

    _threaded = True

    def __init__(self, *, clock: Clock | None, poll_interval: float, max_staleness: float) -> None:
        for name, value in (("poll_interval", poll_interval), ("max_staleness", max_staleness)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ConfigurationError(f"{name} {value!r} must be a positive number of seconds")
        if max_staleness <= poll_interval:
            raise ConfigurationError(
                f"max_staleness {max_staleness!r} must exceed poll_interval {poll_interval!r}, or every "
                "missed poll would deny calls"
            )
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.poll_interval = float(poll_interval)
        self.max_staleness = float(max_staleness)
        self._state = _State(fresh_until=-math.inf if self._threaded else math.inf)
        self._lock = threading.Lock()
        self._watched: dict[str, int] = {}
        self._released: deque[tuple[str, ...]] = deque()
        self._seq: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = True

    # -- what a backend provides ------------------------------------------------------------

    @abc.abstractmethod
    def _backend_read(self, keys: Sequence[str]) -> Mapping[str, Invalidation]:
        """The latest record of each key that was ever invalidated (others are at epoch 0)."""
        ...

    @abc.abstractmethod
    def _backend_bump(self, key: str, by: str, reason: str, at: float) -> Invalidation:
        """Raise the key's epoch (see ``next_epoch``) atomically, store who/why/when, announce it."""
        ...

    @abc.abstractmethod
    def _backend_head(self) -> int:
        """The sequence number of the latest change."""
        ...

    @abc.abstractmethod
    def _backend_changes(self, since: int) -> tuple[int, Iterable[Invalidation]]:
        """The sequence number of the last change returned, and every record changed after ``since``."""
        ...

    @abc.abstractmethod
    def _backend_claim(self, key: str, until: float, now: float) -> bool:
        """Store ``key`` until ``until`` unless a live claim holds it, atomically; whether it was stored."""
        ...

    def _backend_wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds, applying pushed changes as they arrive."""
        self._stop.wait(timeout)

    def _backend_close(self) -> None:  # noqa: B027 - only backends with connections override it
        """Release connections."""

    # -- the public surface -----------------------------------------------------------------

    def register(self, session: Any, /, *, since: float | None = None) -> EpochLease:
        """Record the epochs of the session's scopes now; raises RegistryError if unreachable.

        ``since``: when the session's lineage began (its root's start), for a delegated or resumed
        session; a scope invalidated after that is revoking already, so the lease is born revoked."""
        if self._stop.is_set():
            raise RegistryError(f"{self!r} is closed; open a new registry")
        keys = tuple(scope.key for scope in scopes_of(session))
        if self._seq is None:
            # Changes from before the first registration are in the reads; poll only what follows.
            self._seq = self._backend_head()
        # Watch before reading: a change committed after the read is then seen by push or poll.
        with self._lock:
            self._drain_released()
            for key in keys:
                self._watched[key] = self._watched.get(key, 0) + 1
        started = self.clock()
        try:
            records = self._backend_read(keys)
        except BaseException:
            self._released.append(keys)
            raise
        state = self._state
        with self._lock:
            generation = state.generation
            epochs = []
            moved = False
            for key in keys:
                record = records.get(key)
                if record is not None and record.epoch > state.epochs.get(key, 0):
                    state.records[key] = record
                    state.epochs[key] = record.epoch
                    moved = True
                epoch = state.epochs.get(key, 0)
                known = state.records.get(key)
                if since is not None and known is not None and known.at > since:
                    epoch = known.epoch - 1  # the lineage started before this invalidation: it applies
                epochs.append((key, epoch))
            if self._threaded:
                state.fresh_until = max(state.fresh_until, started + self.max_staleness)
            if moved:
                # Older leases of these keys must re-check: the poll or push that brings this record
                # later finds nothing moved, and would leave them current (allowing) for good.
                state.generation += 1
        lease = EpochLease(state, session.id, epochs, generation)
        lease.staleness = self.max_staleness
        lease.revocation()  # a lease born revoked is never current
        weakref.finalize(session, self._released.append, keys)
        self._start_thread()
        return lease

    def invalidate(self, scope: Scope, /, *, reason: str, by: str) -> Invalidation:
        """Revoke every session of ``scope`` that started before now, in every process sharing
        this backend. Sessions started later are not affected. Raises RegistryError when the
        backend cannot be written (then nothing was invalidated)."""
        if not isinstance(scope, Scope):
            raise ConfigurationError(f"invalidate() takes a Scope, e.g. Scope.user('acme', 'u-7'); got {scope!r}")
        record = self._backend_bump(scope.key, _require_text(by, "by"), _require_text(reason, "reason"), self.clock())
        self._apply((record,))
        return record

    def apply_caep(
        self, event: Mapping[str, Any], /, *, tenant: str | None = None, by: str | None = None
    ) -> list[Invalidation]:
        """Apply an OpenID CAEP Security Event Token's payload (already verified by the caller):
        ``session-revoked`` and ``token-claims-change`` events invalidate the subject's scope.
        ``tenant`` names the tenant when the subject does not. Raises InvalidEvent, before
        invalidating anything, when any event is unknown or malformed."""
        from intentguard.registry.caep import parse_caep

        plans = parse_caep(event, tenant=tenant, by=by)
        return [self.invalidate(scope, reason=reason, by=who) for scope, reason, who in plans]

    def claim_once(self, key: str, /, *, until: float) -> bool:
        """Record ``key`` as used until ``until`` (epoch seconds), once across every process sharing
        this backend: True for the first claim, False while an earlier one lives. Raises
        RegistryError when the backend cannot be written (then nothing was claimed)."""
        if not isinstance(key, str) or not key or len(key) > 2000:
            raise ConfigurationError(f"claim_once() takes a non-empty key of at most 2,000 characters, got {key!r}")
        return self._backend_claim(key, float(until), self.clock())

    def sync(self) -> None:
        """Poll the backend now (tests and tools); raises RegistryError when it cannot be reached."""
        self._poll()

    def close(self) -> None:
        """Stop the poll thread and close connections; leases stop being fresh."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if self._threaded:
            self._state.fresh_until = -math.inf
        self._backend_close()

    def __enter__(self) -> EpochRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the machinery ----------------------------------------------------------------------

    def _apply(self, records: Iterable[Invalidation]) -> None:
        """Take in records of watched keys whose epoch moved; bump the generation if any did."""
        state = self._state
        with self._lock:
            moved = False
            for record in records:
                if record.key in self._watched and record.epoch > state.epochs.get(record.key, 0):
                    state.records[record.key] = record
                    state.epochs[record.key] = record.epoch
                    moved = True
            if moved:
                state.generation += 1

    def _drain_released(self) -> None:
        """Forget keys no live session watches (called with the lock held)."""
        state = self._state
        while self._released:
            for key in self._released.popleft():
                count = self._watched.get(key, 0) - 1
                if count > 0:
                    self._watched[key] = count
                else:
                    self._watched.pop(key, None)
                    state.epochs.pop(key, None)
                    state.records.pop(key, None)

    def _poll(self) -> None:
        """Fetch changes since the last poll; success extends freshness from when it began."""
        started = self.clock()
        since = self._seq if self._seq is not None else self._backend_head()
        head, records = self._backend_changes(since)
        self._apply(records)
        with self._lock:
            if head < since:
                _log.error("the registry backend's change sequence went back from %d to %d: it lost data", since, head)
            self._seq = head
            self._drain_released()
            self._state.fresh_until = max(self._state.fresh_until, started + self.max_staleness)

    def _start_thread(self) -> None:
        if not self._threaded or self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name=f"intentguard-registry-{id(self):x}", daemon=True)
                self._thread = thread
                thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll()
                if not self._healthy:
                    _log.warning("the session registry is reachable again")
                    self._healthy = True
                self._backend_wait(self.poll_interval)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive outages; checks fail closed meanwhile
                if self._healthy:
                    _log.error(
                        "the session registry cannot be reached (%s); calls are denied after %g s",
                        exc,
                        self.max_staleness,
                    )
                    self._healthy = False
                self._stop.wait(self.poll_interval)
