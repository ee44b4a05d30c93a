"""A Redis Streams audit trail that many hosts append to (needs the ``[redis]`` extra).

One stream holds one hash chain for every host writing to it. Each batch is an optimistic
transaction: ``WATCH`` the head key (``{stream}:head``, the last ``pos`` and SHA-256), read it,
then ``MULTI`` / one ``XADD`` per record / ``SET`` head / ``EXEC``; if another host moved the
head in between, the batch is relinked and retried. Each entry holds one field, ``line``:
the record's exact JSON line, so ``intentguard audit verify redis://...`` re-checks the chain
from the stream alone.

Trimming: with ``maxlen=None`` (the default) the stream keeps every record. With ``maxlen=N``
each ``XADD`` trims the oldest entries approximately (``MAXLEN ~ N``, which Redis does in
whole macro-nodes, cheaply), so the stream keeps at least N records; the chain stays
verifiable from its first remaining entry, and verify reports where the stream now starts
(it cannot tell trimming from a deletion at the start: archive elsewhere what must be kept).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from intentguard.audit.record import GENESIS, AuditRecord
from intentguard.errors import AuditTrailError, MissingExtraError

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["RedisStreamSink", "connect"]

RETRIES = 100
"""How often a batch is relinked when other hosts keep moving the head."""


def connect(url: str) -> Redis:
    """A redis-py client for ``url`` (``redis://host:port/db``); needs the ``[redis]`` extra."""
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
        raise MissingExtraError("the Redis audit sink", "redis", "redis") from exc
    return redis.Redis.from_url(url)


def head_key(stream: str) -> str:
    """The key that holds a stream's chain head."""
    return f"{stream}:head"


def parse_head(raw: Any) -> tuple[int, str]:
    """``(pos, digest)`` from a head value as stored (``(0, GENESIS)`` when there is none)."""
    if raw is None:
        return 0, GENESIS
    data = json.loads(raw)
    return int(data["pos"]), str(data["digest"])


class RedisStreamSink:
    """Appends records to the Redis stream ``stream`` as one hash chain shared by every writer.

    Give ``url`` or a redis-py ``client``; ``maxlen`` trims the stream approximately (see the
    module docstring). A batch that cannot get through after :data:`RETRIES` attempts raises
    :class:`AuditTrailError` (the writer reports it).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | None = None,
        stream: str = "intentguard:audit",
        maxlen: int | None = None,
    ) -> None:
        if (url is None) == (client is None):
            from intentguard.errors import ConfigurationError

            raise ConfigurationError("give RedisStreamSink either url=... or client=..., not both or neither")
        self._client = client if client is not None else connect(url)  # type: ignore[arg-type]
        self._owns_client = client is None
        self.stream = stream
        self.head_key = head_key(stream)
        self.maxlen = maxlen
        self._lock = threading.Lock()
        self._closed = False

    def __call__(self, record: AuditRecord, /) -> None:
        self.write_many((record,))

    def write_many(self, records: Sequence[AuditRecord], /) -> None:
        """Append ``records`` after the stream's head in one transaction, retrying if another
        writer got there first."""
        from redis.exceptions import WatchError

        with self._lock:
            if self._closed:
                raise ValueError(f"audit sink for stream {self.stream!r} is closed")
            for _ in range(RETRIES):
                with self._client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(self.head_key)  # type: ignore[no-untyped-call]
                        pos, prev = parse_head(pipe.get(self.head_key))
                        pipe.multi()
                        for record in records:
                            pos += 1
                            line, prev = record.linked(pos, prev)
                            if self.maxlen is None:
                                pipe.xadd(self.stream, {"line": line})
                            else:
                                pipe.xadd(self.stream, {"line": line}, maxlen=self.maxlen, approximate=True)
                        pipe.set(self.head_key, json.dumps({"pos": pos, "digest": prev}))
                        pipe.execute()
                        return
                    except WatchError:
                        continue
            raise AuditTrailError(
                f"audit stream {self.stream!r}: other writers moved its head {RETRIES} times in a row; "
                "this batch was not written. Use fewer writers per stream or larger batches"
            )

    def close(self) -> None:
        """Stop accepting records; closes the client if this sink made it."""
        with self._lock:
            if not self._closed:
                self._closed = True
                if self._owns_client:
                    self._client.close()

    def __repr__(self) -> str:
        return f"RedisStreamSink(stream={self.stream!r})"
