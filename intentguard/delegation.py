"""Delegation and resumption: a child session whose grant is a subset of its parent's, and a
session resumed in another process from its signed hop tokens.

:func:`delegate` (``session.delegate(agent, ...)``) narrows the parent's grant to the child's:
fewer tools, smaller budgets (never more than the parent has left), extra argument checks, and
a lifetime of at most ``hop_ttl_factor`` of the parent's remaining one; the decay schedule is
inherited, so high-privilege tools drop out at the same ages. Past the schema's ``max_depth`` it
is refused with ``DEPTH_EXCEEDED``. With keys configured, each child gets a signed hop token
linked to its parent's. An allowed call of a child is charged to every session above it in the
process (:func:`charge_ancestors`), so a tree never spends more than its root's budgets.

:func:`resume` (``guard.resume(tokens, tenant=...)``) rebuilds a session from its token chain,
re-validating everything now and trusting nothing from spawn time: signatures, linkage and
narrowing, expiry, the tenant, the user and the tenant's state, revocation (the session
registry: any scope of the chain invalidated since its root started), and that the token was
not resumed before in any process sharing the registry (its ``jti``).

Delegated and resumed sessions register as of their root's start and under the session and
agent of every hop above them, so :func:`revoke` (``session.revoke``) and every invalidation
since the root started reach the whole subtree, in every process sharing the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from intentguard.clock import DurationLike, format_time, to_duration
from intentguard.decision import Decision, Effect, Reason, ReasonCode
from intentguard.errors import ConfigurationError, Denied, GrantWideningError, IntentguardError
from intentguard.identity import AgentIdentity, DelegationChain, Principal
from intentguard.registry import Scope
from intentguard.schema import ArgSpec

if TYPE_CHECKING:
    from intentguard.guard import Guard
    from intentguard.session import Session
    from intentguard.tokens import Hop

__all__ = ["charge_ancestors", "delegate", "resume", "revoke"]


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
    ``DEPTH_EXCEEDED``, ``SESSION_REVOKED`` or ``GRANT_EXPIRED`` when delegation is refused. With
    keys, the parent's own hop is spent in the registry (it cannot be resumed elsewhere after
    this); :class:`~intentguard.errors.RegistryError` when the registry cannot be written.
    """
    from intentguard.session import Session

    if not isinstance(agent, AgentIdentity):
        raise ConfigurationError(f"agent {agent!r} is not an intentguard.AgentIdentity")
    guard = parent._guard
    now = guard.clock()
    with parent._lock:
        grant, revoked = parent._grant, parent.revoked  # here, or through the registry
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
    _refuse_revoked(child, now)
    child._ancestors = (parent, *parent._ancestors)
    if guard.keys is not None:
        from intentguard.tokens import issue_hop, own_hop

        parent_token = parent.tokens[-1] if parent.tokens else None
        if parent_token is not None:
            # The child's chain carries this hop: whoever holds it could resume the prefix and act
            # with the parent's wider grant. Spend the parent's hop (False: it was resumed already).
            jti, until = own_hop(parent_token)
            _claim_hop(guard, until, jti, parent.principal.tenant)
        hop = issue_hop(guard.keys, child, parent=parent_token, jti=guard.ids(), now=now, constraints=specs)
        child.tokens = (*parent.tokens, hop)
    parent._children.add(child)
    if parent.revoked is not None:  # revoked here while the child was being made
        _stop(child, f"its parent session {parent.id!r} was revoked ({parent.revoked})")
    return child


def _refuse_revoked(session: Session, now: float) -> None:
    """Refuse a delegated or resumed session whose lineage was revoked before it was made."""
    reason = session._lease.check(now)
    if reason is not None:
        raise Denied(Decision(Effect.DENY, (reason,)))


def charge_ancestors(session: Session, name: str, decision: Decision) -> Decision:
    """Charge an allowed call of a delegated session to every session above it in this process,
    so a delegation tree never spends more than its root's budgets; or, when one of them has no
    call of ``name`` (or none at all) left, a DENY naming it, and nothing is charged.

    Called with ``session``'s lock held; takes the ancestors' locks nearest first, the one order
    every caller uses (a session never takes a descendant's lock), so this cannot deadlock."""
    now = session._now()
    with ExitStack() as held:
        for ancestor in session._ancestors:
            held.enter_context(ancestor._lock)
        for ancestor in session._ancestors:
            grant = ancestor._grant
            policy = grant._lookup.get(name)
            # A grant narrowed after it delegated (attenuated, narrowed for divergence) narrows its
            # subtree too: a child never holds a tool or a second its ancestors no longer do.
            if policy is None or not grant.issued_at <= now < grant.expires_at:
                code = ReasonCode.TOOL_NOT_IN_INTENT if policy is None else ReasonCode.GRANT_EXPIRED
                held_now = f"no longer holds {name!r}" if policy is None else "has expired"
                sentence = f"session {ancestor.id!r}, above this one in the delegation chain, {held_now}."
                return Decision(Effect.DENY, (Reason(code, sentence),))
            if ancestor._used.get(name, 0) >= policy.max_calls:
                spent = f"no call of {name!r} left ({policy.max_calls} spent by it and its delegations)"
            elif ancestor._used_total >= grant._total:
                spent = f"no call left ({grant.max_calls} spent by it and its delegations)"
            else:
                continue
            sentence = f"session {ancestor.id!r}, above this one in the delegation chain, has {spent}."
            return Decision(Effect.DENY, (Reason(ReasonCode.BUDGET_EXHAUSTED, sentence),))
        for ancestor in session._ancestors:
            ancestor._used[name] += 1
            ancestor._used_total += 1
    return decision


def revoke(session: Session, reason: str, *, by: str) -> None:
    """Stop ``session`` and its in-process subtree at once, then invalidate its session scope in
    the registry, which every session delegated from it belongs to in every process."""
    if not isinstance(reason, str) or not reason:
        raise ConfigurationError("revoke() needs a reason sentence")
    _stop(session, reason)
    scope = Scope.session(session.principal.tenant, session.id)
    session._guard.registry.invalidate(scope, reason=reason, by=by)


def _stop(session: Session, reason: str) -> None:
    """Revoke locally: here at once, whether or not the registry can be reached."""
    with session._lock:
        if session.revoked is None:
            session._revoked = reason
    for child in list(session._children):
        _stop(child, f"its parent session {session.id!r} was revoked ({reason})")


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
    (``SESSION_REVOKED``). Raises :class:`~intentguard.errors.RegistryError` when the session
    registry cannot be reached (nothing is resumed then).
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
    _refuse_revoked(session, now)
    reasons = revalidate(session, now)
    if reasons:
        raise Denied(Decision(Effect.DENY, reasons))
    # Last, so a refusal above leaves the token unused. Qualified by tenant: a tenant's signer
    # chooses its jtis, and must not be able to spend another tenant's.
    if not _claim_hop(guard, leaf.exp, leaf.jti, leaf.aud):
        raise _deny(
            ReasonCode.TOKEN_INVALID,
            f"hop token {leaf.jti!r} was already resumed (a replay; a hop resumes once in all the processes "
            "sharing the session registry); delegate a fresh hop instead.",
        )
    session.tokens = tuple(hop.token for hop in hops)
    return session


def _claim_hop(guard: Guard, until: float, jti: str, tenant: str) -> bool:
    """Spend a hop token in the registry: True the first time (in every process sharing it)."""
    return guard.registry.claim_once(f"hop-jti\x1f{tenant}\x1f{jti}", until=until)


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
