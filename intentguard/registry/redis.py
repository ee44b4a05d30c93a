"""The Redis registry: every process on every host shares one Redis (the ``redis`` extra).

An invalidation is one Lua script, atomic on the server: it raises the scope's epoch, stores
who, why and when, appends the key to the change index and publishes the record. Every
process listens on the channel (push, milliseconds) and polls the change index every
``poll_interval`` (so a push lost with a dropped connection is seen anyway); a poll that
fails for ``max_staleness`` seconds makes checks fail closed.

Run Redis with persistence (AOF) in production: a Redis that restarts empty forgets past
invalidations for sessions registered afterwards. Epochs are time-based, so invalidations
made after such a restart still reach sessions that registered before it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from intentguard.clock import Clock
from intentguard.errors import MissingExtraError, RegistryError
from intentguard.registry import Invalidation
from intentguard.registry._epochs import EpochRegistry

__all__ = ["RedisRegistry"]

_T = TypeVar("_T")
_log = logging.getLogger("intentguard.registry")

# KEYS: records hash, change index (zset), sequence counter. ARGV: key, by, reason, at, at in
# microseconds, channel. Numbers travel as strings: Lua's cjson would round 16-digit epochs.
_BUMP = """
local previous = redis.call('HGET', KEYS[1], ARGV[1])
local epoch = 1
if previous then epoch = tonumber(cjson.decode(previous)['epoch']) + 1 end
local floor = tonumber(ARGV[5])
if floor > epoch then epoch = floor end
local seq = redis.call('INCR', KEYS[3])
local record = cjson.encode({key = ARGV[1], epoch = string.format('%d', epoch), by = ARGV[2],
  reason = ARGV[3], at = ARGV[4], seq = string.format('%d', seq)})
redis.call('HSET', KEYS[1], ARGV[1], record)
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('PUBLISH', ARGV[6], record)
return record
"""


def _decode(raw: str | bytes) -> Invalidation:
    return Invalidation.from_json(json.loads(raw))


class RedisRegistry(EpochRegistry):
    """A registry in Redis, shared by every host.

    ``url`` is a redis-py URL (``redis://host:6379/0``, ``rediss://...``, ``unix:///path``);
    ``prefix`` namespaces the keys and the pub/sub ``channel`` (default ``<prefix>invalidations``);
    ``poll_interval`` (default 0.25 s) and
    ``max_staleness`` (default 2 s) as for every registry; ``socket_timeout`` bounds each call.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        prefix: str = "intentguard:",
        channel: str | None = None,
        poll_interval: float = 0.25,
        max_staleness: float = 2.0,
        socket_timeout: float = 1.0,
    ) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise MissingExtraError("RedisRegistry", "redis", "redis") from exc
        super().__init__(clock=clock, poll_interval=poll_interval, max_staleness=max_staleness)
        self.url = url
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._records_key = f"{prefix}epochs"
        self._index_key = f"{prefix}changes"
        self._seq_key = f"{prefix}seq"
        self._claim_prefix = f"{prefix}claim:"
        self.channel = channel if channel is not None else f"{prefix}invalidations"
        try:
            self._redis: Any = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry=None,
            )
        except (ValueError, *self._errors) as exc:
            raise RegistryError(f"cannot use the registry URL {url!r}: {exc}") from exc
        self._bump = self._redis.register_script(_BUMP)
        self._pubsub: Any = None

    def __repr__(self) -> str:
        return f"<RedisRegistry {self.url!r} prefix={self._records_key.removesuffix('epochs')!r}>"

    def _call(self, what: str, work: Callable[[], _T]) -> _T:
        if self._stop.is_set():
            raise RegistryError(f"{self!r} is closed; open a new registry")
        try:
            return work()
        except self._errors as exc:
            raise RegistryError(f"cannot {what} the session registry at {self.url!r}: {exc}") from exc

    def _backend_read(self, keys: Sequence[str]) -> Mapping[str, Invalidation]:
        values = self._call("read", lambda: self._redis.hmget(self._records_key, list(keys)))
        return {key: _decode(raw) for key, raw in zip(keys, values, strict=True) if raw is not None}

    def _backend_bump(self, key: str, by: str, reason: str, at: float) -> Invalidation:
        raw = self._call(
            "write",
            lambda: self._bump(
                keys=[self._records_key, self._index_key, self._seq_key],
                args=[key, by, reason, repr(at), str(int(at * 1_000_000)), self.channel],
            ),
        )
        return _decode(raw)

    def _backend_claim(self, key: str, until: float, now: float) -> bool:
        # SET NX with a relative expiry: the server's clock need not agree with the guard's.
        ttl_ms = max(1, math.ceil((until - now) * 1000))
        stored = self._call("write", lambda: self._redis.set(self._claim_prefix + key, "1", nx=True, px=ttl_ms))
        return bool(stored)

    def _backend_head(self) -> int:
        return int(self._call("read", lambda: self._redis.get(self._seq_key)) or 0)

    def _backend_changes(self, since: int) -> tuple[int, Iterable[Invalidation]]:
        head = self._backend_head()
        if head == since:
            return head, ()
        # A head below what was seen means the store lost data: read the whole index again.
        start = since if head > since else 0
        keys = self._call("poll", lambda: self._redis.zrangebyscore(self._index_key, f"({start}", "+inf"))
        if not keys:
            return head, ()
        return head, self._backend_read(keys).values()

    def _backend_wait(self, timeout: float) -> None:
        """Listen on the channel until ``timeout``; a dropped connection is raised and retried
        by the poll thread (what it missed meanwhile, the next poll finds)."""
        deadline = time.monotonic() + timeout
        try:
            if self._pubsub is None:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self._pubsub = pubsub
            while not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                message = self._pubsub.get_message(timeout=min(left, 0.05))
                if message is not None and message.get("type") == "message":
                    self._take(message["data"])
        except self._errors as exc:
            self._drop_pubsub()
            raise RegistryError(f"lost the registry channel at {self.url!r}: {exc}") from exc

    def _take(self, data: Any) -> None:
        try:
            record = _decode(data)
        except (ValueError, KeyError, TypeError):
            # Not ours or corrupt: the poll reads the stored records, so nothing is lost by skipping it.
            _log.warning("ignored a malformed message on %s: %.200r", self.channel, data)
            return
        self._apply((record,))

    def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*self._errors):
                pubsub.close()

    def _backend_close(self) -> None:
        self._drop_pubsub()
        self._redis.close()
