"""Delegation and resumption: a child session whose grant is a subset of its parent's, and a
session resumed in another process from its signed hop tokens.

:func:`delegate` (``session.delegate(agent, ...)``) narrows the parent's grant to the child's:
fewer tools, smaller budgets (never more than the parent has left), extra argument checks, and
a lifetime of at most ``hop_ttl_factor`` of the parent's remaining one; the decay schedule is
inherited, so high-privilege tools drop out at the same ages. Past the schema's ``max_depth`` it
is refused with ``DEPTH_EXCEEDED``. With keys configured, each child gets a signed hop token
linked to its parent's.

:func:`resume` (``guard.resume(tokens, tenant=...)``) rebuilds a session from its token chain,
re-validating everything now and trusting nothing from spawn time: signatures, linkage and
narrowing, expiry, the tenant, the user and the tenant's state, revocation of every session in
the chain, and that the token was not resumed before (its ``jti``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from intentguard.clock import DurationLike, format_time, to_duration
from intentguard.decision import Decision, Effect, Reason, ReasonCode
from intentguard.errors import ConfigurationError, Denied, GrantWideningError, IntentguardError
from intentguard.identity import AgentIdentity, DelegationChain, Principal
from intentguard.schema import ArgSpec

if TYPE_CHECKING:
    from intentguard.guard import Guard
    from intentguard.session import Session
    from intentguard.tokens import Hop

__all__ = ["ReplayCache", "RevocationCheck", "delegate", "resume"]

RevocationCheck = Callable[[str], "str | None"]
"""Given a session id, why it was revoked, or None: the registry every process shares."""


class ReplayCache:
    """The ``jti`` of every token resumed in this process, until it expires (bounded)."""

    def __init__(self, max_entries: int = 65_536) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def claim(self, jti: str, exp: float, now: float) -> bool:
        """Record ``jti`` as used; False if it was already used (a replay)."""
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now:
                self._seen.popitem(last=False)
            if jti in self._seen:
                return False
            if len(self._seen) >= self._max:
                return False  # full of live tokens: refuse rather than forget one that could be replayed
            self._seen[jti] = exp
            return True


def _deny(code: ReasonCode, sentence: str) -> Denied:
    return Denied(Decision(Effect.DENY, (Reason(code, sentence),)))


def delegate(
    parent: Session,
    agent: AgentIdentity,
    *,
    tools: Iterable[str] | None = None,
    ttl: DurationLike | None = None,
    max_calls: int | None = None,
    tool_max_calls: Mapping[str, int] | None = None,
    args: Mapping[str, Mapping[str, ArgSpec | Mapping[str, Any]]] | None = None,
    drop_high_privilege: bool = False,
) -> Session:
    """A child session of ``parent`` for ``agent``, at depth + 1, its grant a subset of the parent's.

    ``tools`` (default: every tool still active), ``ttl``, ``max_calls`` and ``tool_max_calls``
    (default: what the parent has left) and ``args`` (extra argument constraints) only narrow;
    asking for more raises :class:`GrantWideningError`. Raises :class:`Denied` with
    ``DEPTH_EXCEEDED``, ``SESSION_REVOKED`` or ``GRANT_EXPIRED`` when delegation is refused.
    """
    from intentguard.session import Session

    if not isinstance(agent, AgentIdentity):
        raise ConfigurationError(f"agent {agent!r} is not an intentguard.AgentIdentity")
    guard = parent._guard
    now = guard.clock()
    with parent._lock:
        grant, revoked = parent._grant, parent._revoked
        left_total = None if grant.max_calls is None else grant.max_calls - parent._used_total
        left = {name: policy.max_calls - parent._used.get(name, 0) for name, policy in grant.tools.items()}
    if revoked is not None:
        raise _deny(ReasonCode.SESSION_REVOKED, f"session {parent.id!r} was revoked ({revoked}); it cannot delegate.")
    if not grant.issued_at <= now < grant.expires_at:
        raise _deny(
            ReasonCode.GRANT_EXPIRED,
            f"the grant of session {parent.id!r} is not live at {format_time(now)}; it cannot delegate.",
        )
    if parent.depth + 1 > grant.max_depth:
        raise _deny(
            ReasonCode.DEPTH_EXCEEDED,
            f"session {parent.id!r} is at depth {parent.depth} and intent {grant.intent!r} allows "
            f"{grant.max_depth} delegation hop(s); {agent.id!r} would be at depth {parent.depth + 1}.",
        )
    active = grant.active_tools(now)
    wanted = set(active) if tools is None else set(tools)
    decayed = sorted((wanted & set(grant.tools)) - active)
    if decayed:
        raise GrantWideningError(
            f"tool(s) {decayed!r} have decayed out of session {parent.id!r}; they cannot be delegated."
        )
    lifetime = (grant.expires_at - now) * grant.hop_ttl_factor
    if ttl is not None:
        lifetime = min(lifetime, to_duration(ttl, what="ttl").total_seconds())
    if max_calls is not None and left_total is not None and max_calls > left_total:
        raise GrantWideningError(
            f"session budget {max_calls} exceeds the {left_total} call(s) session {parent.id!r} has left."
        )
    budgets = {name: left[name] for name in wanted if name in left}
    for name, budget in (tool_max_calls or {}).items():
        if name in left and budget > left[name]:
            raise GrantWideningError(
                f"budget {budget} for tool {name!r} exceeds the {left[name]} call(s) left to the parent."
            )
        budgets[name] = budget
    specs = {
        tool: {arg: spec if isinstance(spec, ArgSpec) else ArgSpec.model_validate(spec) for arg, spec in by_arg.items()}
        for tool, by_arg in (args or {}).items()
    }
    child_grant = grant.attenuate(
        tools=wanted,
        expires_at=now + lifetime,
        max_calls=left_total if max_calls is None else max_calls,
        tool_max_calls=budgets,
        args=specs,
        drop_high_privilege=drop_high_privilege,
    )
    child_id = guard.ids()
    chain = parent.chain.extend(agent, child_id)
    child = Session(guard, child_id, parent.intent, child_grant, principal=parent.principal, agent=agent, chain=chain)
    if guard.keys is not None:
        from intentguard.tokens import issue_hop

        parent_token = parent.tokens[-1] if parent.tokens else None
        hop = issue_hop(guard.keys, child, parent=parent_token, jti=guard.ids(), now=now, constraints=specs)
        child.tokens = (*parent.tokens, hop)
    parent._children.add(child)
    if parent.revoked is not None:  # revoked while the child was being made
        child.revoke(f"its parent session {parent.id!r} was revoked ({parent.revoked})")
    return child


def root_token(session: Session) -> None:
    """Give a new root session its depth-0 hop token, when the guard has keys."""
    guard = session._guard
    if guard.keys is not None:
        from intentguard.tokens import issue_hop

        session.tokens = (issue_hop(guard.keys, session, parent=None, jti=guard.ids(), now=guard.clock()),)


def resume(guard: Guard, tokens: Sequence[str], *, tenant: str) -> Session:
    """Rebuild the session at the end of ``tokens`` (root first) in this process, for ``tenant``.

    Raises :class:`Denied` naming why when any check fails now: a token (``TOKEN_INVALID``:
    signature, algorithm, key, linkage, widening, replay), expiry (``GRANT_EXPIRED``), depth
    (``DEPTH_EXCEEDED``), tenant (``TENANT_MISMATCH``, ``TENANT_CONTEXT``), revocation
    (``SESSION_REVOKED``).
    """
    from intentguard.session import Session
    from intentguard.tenancy import revalidate

    verifier = guard.hop_verifier
    now = guard.clock()
    verdict = verifier.verify(tokens, now=now)
    if verdict.reason is not None:
        raise Denied(verdict.decision)
    hops = verdict.hops
    root, leaf = hops[0].claims, hops[-1].claims
    if leaf.aud != tenant:
        raise _deny(
            ReasonCode.TENANT_MISMATCH,
            f"the token chain is for tenant {leaf.aud!r}, but this worker acts for tenant {tenant!r}; "
            "a session never crosses tenants.",
        )
    if guard.revocations is not None:
        for hop in hops:
            reason = guard.revocations(hop.claims.intentguard.session)
            if reason is not None:
                sentence = f"session {hop.claims.intentguard.session!r} of the chain was revoked: {reason}"
                raise _deny(ReasonCode.SESSION_REVOKED, sentence)
    grant = _rebuild(guard, hops)
    ext = leaf.intentguard
    principal = Principal(user=leaf.sub, tenant=leaf.aud, auth_event=ext.auth_event)
    agents = tuple(AgentIdentity(id=actor) for actor in hops[-1].actors)
    chain = DelegationChain(
        principal=principal,
        agents=agents,
        sessions=tuple(hop.claims.intentguard.session for hop in hops),
        root_auth=ext.auth_event,
    )
    intent = guard.intent(root.intentguard.intent, root.intentguard.params)
    session = Session(guard, ext.session, intent, grant, principal=principal, agent=agents[-1], chain=chain)
    reasons = revalidate(session, now)
    if reasons:
        raise Denied(Decision(Effect.DENY, reasons))
    if not guard.replay.claim(leaf.jti, leaf.exp, now):
        raise _deny(
            ReasonCode.TOKEN_INVALID,
            f"hop token {leaf.jti!r} was already resumed in this process (a replay); delegate a fresh hop instead.",
        )
    session.tokens = tuple(hop.token for hop in hops)
    return session


def _rebuild(guard: Guard, hops: Sequence[Hop]) -> Any:
    """The grant the chain describes: the schema's grant from the root's start, narrowed by each hop."""
    root = hops[0].claims
    ext = root.intentguard
    try:
        intent = guard.intent(ext.intent, ext.params)
        if intent.schema.version != ext.version:
            raise ConfigurationError(
                f"intent {ext.intent!r} is at version {intent.schema.version!r} here, the token names {ext.version!r}"
            )
        grant = guard._template(intent).restarted(now=ext.start, ttl=timedelta(seconds=root.exp - ext.start))
        for hop in hops:
            claims = hop.claims
            grant = grant.attenuate(
                tools=hop.tools,
                expires_at=claims.exp,
                max_calls=claims.intentguard.max_calls,
                tool_max_calls={name: detail.max_calls for name, detail in hop.tools.items()},
                args={
                    name: {arg: ArgSpec.model_validate(spec) for arg, spec in detail.constraints.items()}
                    for name, detail in hop.tools.items()
                    if detail.constraints
                },
            )
    except IntentguardError as exc:
        raise _deny(ReasonCode.TOKEN_INVALID, f"the token chain does not fit this guard's intents: {exc}") from exc
    return grant
