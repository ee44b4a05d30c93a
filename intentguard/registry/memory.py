"""The in-process registry: the default, needing nothing. Invalidations reach this process's
sessions at once; other processes never see them (use SQLite or Redis for those)."""

from __future__ import annotations

import threading
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
    """Sessions and epochs in this process's memory; always fresh, no threads."""

    _threaded = False

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock, poll_interval=1.0, max_staleness=2.0)
        self._records: dict[str, Invalidation] = {}
        self._store_lock = threading.Lock()
        self._next_seq = 0

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
