"""The tenant boundary, re-validated on every call through a bounded-staleness cache.

A :class:`TenantContextProvider` answers, for a tenant and a user, whether the tenant is active,
whether the user still is, and which plan features the tenant has. The guard asks it through a
:class:`TenantCache`: an answer is reused for at most ``max_age`` seconds of the injected clock,
after which the provider is asked again; a provider that fails once the last answer is that old
is a DENY (fail closed), never a stale ALLOW. A session keeps the time until which its tenant's
answer is fresh, so the per-call cost is one float comparison.

Resources carry tenant ids: an argument declared ``tenant: true`` must name the session's tenant,
else the call is denied with ``TENANT_MISMATCH``. A plan downgrade that removes a feature removes
the tools that need it (``feature:`` in the schema) from the live grant of every session of that
tenant, the next time that session re-validates.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from intentguard.clock import format_duration
from intentguard.constraints import describe
from intentguard.decision import Reason, ReasonCode

if TYPE_CHECKING:
    from datetime import timedelta

    from intentguard.pipeline import ToolCall
    from intentguard.session import Session

__all__ = ["TenantCache", "TenantContext", "TenantContextProvider", "revalidate", "tenant_reasons"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantContext:
    """What the tenant's system of record says now: is the tenant active, is the user still
    active, and which plan features the tenant has (None: the plan restricts no tool)."""

    active: bool = True
    user_active: bool = True
    features: frozenset[str] | None = None


@runtime_checkable
class TenantContextProvider(Protocol):
    """Answers for one tenant and one user; may do I/O and may raise (the guard then fails closed)."""

    def __call__(self, tenant: str, user: str, /) -> TenantContext: ...


class TenantCache:
    """A provider's answers, each reused for at most ``max_age`` seconds (bounded entries).

    ``lookup`` returns the context and the time until which it may be reused, or a sentence
    saying why none can be had (the provider failed or answered garbage).
    """

    def __init__(
        self,
        provider: TenantContextProvider,
        *,
        clock: Callable[[], float],
        max_age: timedelta,
        max_entries: int = 4096,
    ) -> None:
        self.provider = provider
        self.max_age = max_age.total_seconds()
        self._max_age_text = format_duration(max_age)
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[TenantContext, float]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, tenant: str, user: str, now: float) -> tuple[TenantContext, float] | str:
        """The context for ``(tenant, user)`` at ``now`` and until when it is fresh, or a problem."""
        key = (tenant, user)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[1] <= now < entry[1] + self.max_age:
            return entry[0], entry[1] + self.max_age
        try:
            context = self.provider(tenant, user)
            if not isinstance(context, TenantContext):
                raise TypeError(f"returned {type(context).__name__}, not a TenantContext")
        except Exception as exc:  # noqa: BLE001 - an unreachable provider is a denial, never an allow
            age = "" if entry is None else f" and its last answer is older than {self._max_age_text}"
            return (
                f"the tenant context of {tenant!r} could not be confirmed ({type(exc).__name__}: "
                f"{describe(str(exc))[1:-1]}){age}; calls are denied until the provider answers."
            )
        with self._lock:
            self._entries[key] = (context, now)
            self._entries.move_to_end(key)
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return context, now + self.max_age

    def invalidate(self, tenant: str | None = None) -> None:
        """Forget cached answers (for one tenant, or all): the next re-validation asks the provider.
        Sessions re-validate when their own freshness runs out, within ``max_age``."""
        with self._lock:
            for key in [key for key in self._entries if tenant is None or key[0] == tenant]:
                del self._entries[key]


def revalidate(session: Session, now: float) -> tuple[Reason, ...]:
    """Re-validate the session's tenant and user; narrow its grant after a plan downgrade."""
    cache: TenantCache | None = session._guard.tenancy
    if cache is None:
        session._tenant_until = math.inf
        return ()
    principal = session.principal
    answer = cache.lookup(principal.tenant, principal.user, now)
    if isinstance(answer, str):
        return (Reason(ReasonCode.TENANT_CONTEXT, answer),)
    context, fresh_until = answer
    if not context.active:
        sentence = f"tenant {principal.tenant!r} is not active; its agents may not act."
        return (Reason(ReasonCode.TENANT_CONTEXT, sentence),)
    if not context.user_active:
        sentence = (
            f"user {principal.user!r} is no longer active in tenant {principal.tenant!r}; agents acting for them stop."
        )
        return (Reason(ReasonCode.TENANT_CONTEXT, sentence),)
    if context.features is not None:
        grant = session._grant
        lost = {
            name: policy.feature
            for name, policy in grant.tools.items()
            if policy.feature is not None and policy.feature not in context.features
        }
        if lost:
            # A downgrade removes the tools for good: grants only narrow, an upgrade needs a new session.
            session._grant = grant.attenuate(tools=set(grant.tools) - set(lost))
            session._features_lost = {**session._features_lost, **lost}
    session._tenant_until = fresh_until
    return ()


def tenant_reasons(session: Session, call: ToolCall, now: float) -> tuple[Reason, ...]:
    """Why the tenant boundary refuses this call: the tenant context (re-validated when stale),
    a tool whose plan feature was removed, or an argument naming another tenant's resource."""
    if now >= session._tenant_until:
        problems = revalidate(session, now)
        if problems:
            return problems
    name = call.name
    feature = session._features_lost.get(name) if name.__class__ is str else None
    if feature is not None:
        sentence = (
            f"tool {name!r} needs plan feature {feature!r}, which tenant {session.principal.tenant!r} "
            "no longer has; it was removed from this session's grant."
        )
        return (Reason(ReasonCode.TENANT_CONTEXT, sentence),)
    policy = session._grant._lookup.get(name) if name.__class__ is str else None
    if policy is None or not policy.tenant_args:
        return ()
    tenant = session.principal.tenant
    reasons: list[Reason] = []
    for arg in sorted(policy.tenant_args):
        if arg in call.args and call.args[arg] != tenant:
            sentence = (
                f"argument {arg!r} of tool {name!r} names tenant {describe(call.args[arg])}, but this session "
                f"acts for tenant {tenant!r}; an agent never touches another tenant's data."
            )
            reasons.append(Reason(ReasonCode.TENANT_MISMATCH, sentence))
    return tuple(reasons)
