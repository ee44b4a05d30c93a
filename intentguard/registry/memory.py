"""The in-process registry: the default, needing nothing. Invalidations reach this process's
sessions at once; other processes never see them (use SQLite or Redis for those)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from intentguard.clock import Clock
from intentguard.registry import Invalidation
from intentguard.registry._epochs import EpochRegistry

__all__ = ["MemoryRegistry", "next_epoch"]


def next_epoch(previous: int, at: float) -> int:
    """A key's next epoch: above the last one and at least the invalidation time in microseconds,
    so a backend that lost its data (a Redis restarted without persistence) still hands out epochs
    above those processes remember. The SQLite and Redis backends compute the same in their stores."""
    return max(previous + 1, int(at * 1_000_000))


class MemoryRegistry(EpochRegistry):
    """Sessions and epochs in this process's memory; always fresh, no threads.

    ``max_claims`` bounds the live :meth:`claim_once` keys kept; when that many are live a new
    claim is refused rather than an old one forgotten (it could then be claimed again)."""

    _threaded = False

    def __init__(self, *, clock: Clock | None = None, max_claims: int = 65_536) -> None:
        super().__init__(clock=clock, poll_interval=1.0, max_staleness=2.0)
        self._records: dict[str, Invalidation] = {}
        self._store_lock = threading.Lock()
        self._next_seq = 0
        self._claims: OrderedDict[str, float] = OrderedDict()
        self._max_claims = max_claims

    def __repr__(self) -> str:
        return f"<MemoryRegistry {len(self._records)} invalidated scope(s)>"

    def _backend_read(self, keys: Sequence[str]) -> Mapping[str, Invalidation]:
        with self._store_lock:
            return {key: self._records[key] for key in keys if key in self._records}

    def _backend_bump(self, key: str, by: str, reason: str, at: float) -> Invalidation:
        with self._store_lock:
            previous = self._records.get(key)
            self._next_seq += 1
            record = Invalidation(
                key=key,
                epoch=next_epoch(previous.epoch if previous is not None else 0, at),
                by=by,
                reason=reason,
                at=at,
                seq=self._next_seq,
            )
            self._records[key] = record
            return record

    def _backend_head(self) -> int:
        return self._next_seq

    def _backend_changes(self, since: int) -> tuple[int, Iterable[Invalidation]]:
        with self._store_lock:
            return self._next_seq, [record for record in self._records.values() if record.seq > since]

    def _backend_claim(self, key: str, until: float, now: float) -> bool:
        with self._store_lock:
            claims = self._claims
            # Keys are kept in claim order, so expired ones are not all at the front; sweep them all
            # when full, and at the front otherwise (cheap, and bounded by the full sweep).
            while claims and next(iter(claims.values())) <= now:
                claims.popitem(last=False)
            if key in claims and claims[key] > now:
                return False
            if len(claims) >= self._max_claims:
                for stale in [name for name, end in claims.items() if end <= now]:
                    del claims[stale]
                if len(claims) >= self._max_claims:
                    return False
            claims[key] = until
            return True
