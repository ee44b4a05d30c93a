"""The session registry: who may still act, shared by every process that guards sessions.

Invalidation works by *epochs*. Every scope a session belongs to (itself and every session
above it in its delegation chain, its agent and theirs, its user, its tenant, its intent) has an
epoch number, zero until first invalidated.
A session remembers the epochs it started under; invalidating a scope raises that scope's
epoch, and every session that started under a lower one is revoked for good. Offboarding a
user is one write, however many sessions the user has, in however many processes.

A check reads only local memory (:meth:`Lease.current`). Changes reach each process by push
(Redis pub/sub, SQLite ``PRAGMA data_version``) and by a periodic poll that also proves the
backend is reachable; when it has not been reachable for ``max_staleness`` seconds, checks are
denied with ``REGISTRY_UNAVAILABLE`` until it is again.

Backends: :class:`MemoryRegistry` (one process, the default), :class:`SQLiteRegistry` (every
process on one host), :class:`RedisRegistry` (every host; the ``redis`` extra). Open one
from a URL with :func:`open_registry`: ``memory:``, ``sqlite:///relative.db``,
``sqlite:////absolute/path.db``, ``redis://host:6379/0``.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from intentguard.clock import Clock, SystemClock, format_time
from intentguard.errors import ConfigurationError

if TYPE_CHECKING:
    from intentguard.decision import Reason
    from intentguard.registry._epochs import EpochRegistry
    from intentguard.registry.memory import MemoryRegistry
    from intentguard.registry.redis import RedisRegistry
    from intentguard.registry.sqlite import SQLiteRegistry

__all__ = [
    "ENV_VAR",
    "Invalidation",
    "Lease",
    "MemoryRegistry",
    "RedisRegistry",
    "SQLiteRegistry",
    "Scope",
    "ScopeKind",
    "SessionRegistry",
    "open_registry",
    "scopes_of",
]

ENV_VAR = "INTENTGUARD_REGISTRY"
"""The environment variable a :class:`~intentguard.Guard` reads when given no ``registry=``."""

_SEP = "\x1f"  # identifiers cannot hold control characters, so keys split back unambiguously


class ScopeKind(enum.StrEnum):
    """What an invalidation covers. Every kind is qualified by a tenant."""

    SESSION = "session"
    AGENT = "agent"
    USER = "user"
    TENANT = "tenant"
    INTENT = "intent"


@dataclass(frozen=True, slots=True)
class Scope:
    """A set of sessions one invalidation stops: ``Scope.user("acme", "u-7")`` is every session
    acting for user ``u-7`` of tenant ``acme`` (and no session of another tenant's ``u-7``).

    A session or agent scope also covers every session delegated from its sessions."""

    kind: ScopeKind
    tenant: str
    id: str = ""

    def __post_init__(self) -> None:
        from intentguard.identity import _require_id

        if not isinstance(self.kind, ScopeKind):
            raise ConfigurationError(f"scope kind {self.kind!r} is not a ScopeKind")
        _require_id(self.tenant, "tenant")
        if self.kind is ScopeKind.TENANT:
            if self.id:
                raise ConfigurationError(f"a tenant scope names no id, got {self.id!r}")
        else:
            _require_id(self.id, f"{self.kind.value} id")

    @classmethod
    def session(cls, tenant: str, session_id: str) -> Scope:
        """One session and every session delegated from it."""
        return cls(ScopeKind.SESSION, tenant, session_id)

    @classmethod
    def agent(cls, tenant: str, agent_id: str) -> Scope:
        """Every session an agent runs for the tenant, and every session delegated from them."""
        return cls(ScopeKind.AGENT, tenant, agent_id)

    @classmethod
    def user(cls, tenant: str, user: str) -> Scope:
        """Every session acting for one user of the tenant (offboarding)."""
        return cls(ScopeKind.USER, tenant, user)

    @classmethod
    def of_tenant(cls, tenant: str) -> Scope:
        """Every session of the tenant (a downgrade, a suspension)."""
        return cls(ScopeKind.TENANT, tenant)

    @classmethod
    def intent(cls, tenant: str, intent: str) -> Scope:
        """Every session of the tenant running under the named intent schema."""
        return cls(ScopeKind.INTENT, tenant, intent)

    @property
    def key(self) -> str:
        """The backend key of this scope's epoch."""
        return f"{self.kind.value}{_SEP}{self.tenant}{_SEP}{self.id}"

    @classmethod
    def from_key(cls, key: str) -> Scope:
        """The scope a backend key names."""
        kind, tenant, ident = key.split(_SEP)
        return cls(ScopeKind(kind), tenant, ident)

    def __str__(self) -> str:
        if self.kind is ScopeKind.TENANT:
            return f"tenant {self.tenant!r}"
        return f"{self.kind.value} {self.id!r} of tenant {self.tenant!r}"


@dataclass(frozen=True, slots=True)
class Invalidation:
    """One invalidation as the backend stored it: the scope's key, its new epoch, who asked,
    why, when (epoch seconds) and its place in the backend's change sequence."""

    key: str
    epoch: int
    by: str
    reason: str
    at: float
    seq: int

    @property
    def scope(self) -> Scope:
        """The scope that was invalidated."""
        return Scope.from_key(self.key)

    def describe(self) -> str:
        """A sentence for a denial: who invalidated what, when and why."""
        return f"{self.by} invalidated {self.scope} at {format_time(self.at)}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        """The record as backends store it."""
        return {
            "key": self.key,
            "epoch": self.epoch,
            "by": self.by,
            "reason": self.reason,
            "at": self.at,
            "seq": self.seq,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Invalidation:
        """Read a stored record back (raises KeyError/TypeError/ValueError when it is not one)."""
        return cls(
            key=str(data["key"]),
            epoch=int(data["epoch"]),
            by=str(data["by"]),
            reason=str(data["reason"]),
            at=float(data["at"]),
            seq=int(data["seq"]),
        )


class _SessionLike(Protocol):
    @property
    def id(self) -> str: ...


@runtime_checkable
class Lease(Protocol):
    """A session's standing in the registry, read on every check from local memory only."""

    def current(self, now: float, /) -> bool:
        """True when nothing changed since the last full check and the cache is fresh (O(1))."""
        ...

    def check(self, now: float, /) -> Reason | None:
        """Re-evaluate from the local cache: a SESSION_REVOKED or REGISTRY_UNAVAILABLE reason, or None."""
        ...

    def revocation(self) -> str | None:
        """Who revoked the session and why, once known (permanent), else None."""
        ...


@runtime_checkable
class SessionRegistry(Protocol):
    """Where sessions register and scopes are invalidated. ``clock`` must be the guard's clock."""

    clock: Clock

    def register(self, session: Any, /, *, since: float | None = None) -> Lease:
        """Record the epochs of the session's scopes now; raises RegistryError if unreachable.
        With ``since`` (a delegated or resumed session: when its root started), a scope
        invalidated after ``since`` revokes the session from the start."""
        ...

    def claim_once(self, key: str, /, *, until: float) -> bool:
        """Use ``key`` once until ``until`` across every process of the registry: True for the
        first claim, False while it lives; raises RegistryError if unreachable."""
        ...

    def invalidate(self, scope: Scope, /, *, reason: str, by: str) -> Invalidation:
        """Revoke every session of ``scope`` that started before now, in every process."""
        ...

    def close(self) -> None:
        """Stop background threads and close connections."""
        ...


def scopes_of(session: Any) -> tuple[Scope, ...]:
    """The scopes a session belongs to: itself, its agent, user, tenant and intent, and the
    session and agent of every hop of its delegation chain above it (so invalidating any hop,
    or revoking its session, stops every session delegated from it)."""
    tenant = session.principal.tenant
    chain = getattr(session, "chain", None)
    hops: tuple[str, ...] = chain.sessions if chain is not None else ()
    above: tuple[str, ...] = tuple(agent.id for agent in chain.agents) if chain is not None else ()
    return (
        *(Scope.session(tenant, ident) for ident in dict.fromkeys((*hops, session.id))),
        *(Scope.agent(tenant, ident) for ident in dict.fromkeys((*above, session.agent.id))),
        Scope.user(tenant, session.principal.user),
        Scope.of_tenant(tenant),
        Scope.intent(tenant, session.intent.schema.name),
    )


_OPTIONS = {"poll_interval", "max_staleness"}


def open_registry(spec: SessionRegistry | str | None, *, clock: Clock) -> tuple[SessionRegistry, bool]:
    """The registry for a guard and whether the guard owns it (and so closes it).

    ``spec`` is a registry object (the caller closes it), a URL, or None: then the
    ``INTENTGUARD_REGISTRY`` environment variable, else an in-process memory registry.
    URLs take ``poll_interval`` and ``max_staleness`` (seconds) as query parameters.
    """
    if spec is None:
        spec = os.environ.get(ENV_VAR) or "memory:"
    if not isinstance(spec, str):
        if not isinstance(spec, SessionRegistry):
            raise ConfigurationError(
                f"registry {spec!r} is neither a registry nor a URL; pass e.g. 'sqlite:///registry.db'"
            )
        if spec.clock is not clock and not (isinstance(spec.clock, SystemClock) and isinstance(clock, SystemClock)):
            raise ConfigurationError(
                f"registry {spec!r} keeps time by {spec.clock!r} but the guard by {clock!r}; "
                "create the registry with clock= the guard's clock"
            )
        return spec, False
    return _from_url(spec, clock), True


def _from_url(url: str, clock: Clock) -> EpochRegistry:
    parts = urlsplit(url)
    options: dict[str, float] = {}
    kept: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OPTIONS:
            try:
                options[name] = float(value)
            except ValueError:
                raise ConfigurationError(f"registry option {name}={value!r} in {url!r} is not a number") from None
        else:
            kept.append((name, value))
    scheme = parts.scheme
    if scheme == "memory":
        _no_extra([*kept, *((name, "") for name in options)], url, "memory: takes none")
        from intentguard.registry.memory import MemoryRegistry

        return MemoryRegistry(clock=clock)
    if scheme == "sqlite":
        _no_extra(kept, url, "it takes poll_interval and max_staleness")
        path = url.split("?", 1)[0].removeprefix("sqlite:///")
        if not path or path.startswith("sqlite:"):
            raise ConfigurationError(
                f"registry URL {url!r} names no file; write sqlite:///relative.db or sqlite:////absolute/path.db"
            )
        from intentguard.registry.sqlite import SQLiteRegistry

        return SQLiteRegistry(
            path,
            clock=clock,
            poll_interval=options.get("poll_interval", 0.05),
            max_staleness=options.get("max_staleness", 2.0),
        )
    if scheme in ("redis", "rediss", "unix"):
        prefix = dict(kept).get("prefix") or "intentguard:"
        rest = [(name, value) for name, value in kept if name != "prefix"]
        from intentguard.registry.redis import RedisRegistry

        plain = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
        return RedisRegistry(
            plain,
            clock=clock,
            prefix=prefix,
            poll_interval=options.get("poll_interval", 0.25),
            max_staleness=options.get("max_staleness", 2.0),
        )
    raise ConfigurationError(
        f"registry URL {url!r} has an unknown scheme {scheme!r}; use memory:, sqlite:///path.db or redis://host:port/db"
    )


def _no_extra(kept: Sequence[tuple[str, str]], url: str, accepted: str) -> None:
    if kept:
        names = ", ".join(sorted({name for name, _ in kept}))
        raise ConfigurationError(f"registry URL {url!r} has unknown options ({names}); {accepted}")


def __getattr__(name: str) -> Any:
    modules = {"MemoryRegistry": "memory", "SQLiteRegistry": "sqlite", "RedisRegistry": "redis"}
    if name in modules:
        import importlib

        return getattr(importlib.import_module(f"intentguard.registry.{modules[name]}"), name)
    raise AttributeError(f"module 'intentguard.registry' has no attribute {name!r}")
