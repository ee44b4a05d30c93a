"""Confirmation: turning a CONFIRM into a request a person answers, and the answer into a decision.

:meth:`Session.confirmation_request` and :meth:`Session.apply_approval` are thin wrappers around
:func:`open_request` and :func:`settle`. A request opens only for a CONFIRM the session itself gave;
an approval is single-use, bound to the request and to the exact arguments, and every stage runs
again before it can allow anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from intentguard.audit import args_digest
from intentguard.decision import ALLOW, Decision, Effect, Reason, ReasonCode
from intentguard.delegation import charge_ancestors
from intentguard.errors import ConfigurationError
from intentguard.gates import Approval, ConfirmationRequest, approval_problem
from intentguard.pipeline import ToolCall, run_pipeline, snapshot_args

if TYPE_CHECKING:
    from intentguard.session import Session

__all__ = ["open_request", "settle"]


def open_request(session: Session, call: ToolCall, decision: Decision) -> ConfirmationRequest:
    """The request a person sees for a CONFIRM ``session`` gave ``call``; open until answered or expired."""
    now = session._now()
    args = dict(call.args)
    with session._lock:
        # Only a CONFIRM this session itself gave, for these exact arguments, opens a request:
        # a caller cannot turn a DENY (or a fabricated decision) into something to approve.
        given = session._confirms.pop((call.name, args_digest(args)), None)
        if given is None:
            raise ConfigurationError(
                f"the session gave no CONFIRM for this call of {call.name!r}; check the call first "
                "and ask for confirmation only when the decision is CONFIRM"
            )
        provenance = {
            arg: tuple(str(origin) for origin in session.ledger.origins(value)) for arg, value in args.items()
        }
        request = ConfirmationRequest(
            id=session._guard.ids(),
            session=session.id,
            tenant=session.principal.tenant,
            user=session.principal.user,
            agent=session.agent.id,
            intent=session._grant.intent,
            tool=call.name,
            call_id=call.id,
            args=args,
            args_sha256=args_digest(args),
            reasons=given.reasons,  # the session's own reasons, never the caller's
            provenance=provenance,
            created_at=now,
            expires_at=now + session._guard.confirm_timeout,
        )
        session._pending[request.id] = request
    return request


def settle(session: Session, call: ToolCall, approval: Approval) -> Decision:
    """The final decision for ``call`` given a person's answer (see :meth:`Session.apply_approval`)."""
    now = session._now()
    digest = args_digest(dict(call.args)) if isinstance(call.args, Mapping) else ""
    with session._lock:
        request = session._pending.pop(approval.request_id, None)
        problem = approval_problem(approval, request, tool=call.name, args_sha256=digest, now=now)
        if problem is not None:
            decision = Decision(Effect.DENY, (Reason(ReasonCode.APPROVAL_INVALID, problem),))
        elif not approval.approved:
            note = f": {approval.note}" if approval.note else ""
            sentence = f"{approval.approver} did not approve the call{note}."
            # Keep why a person was asked: the denial reads "asked because ...; nobody approved".
            asked = request.reasons if request is not None else ()
            decision = Decision(Effect.DENY, (*asked, Reason(ReasonCode.CONFIRMATION_DENIED, sentence)))
        else:
            decision = _recheck(session, call, request, now)
            if session._ancestors and decision.effect is Effect.ALLOW:
                decision = charge_ancestors(session, call.name, decision)
            if decision.effect is Effect.ALLOW:
                session._used[call.name] += 1
                session._used_total += 1
                if call.id is not None:
                    session._remember(call)
        decision = session._divergence.carry(session, call, now, decision)
        seq = next(session._seqs)
    if session._audit.enabled:
        session._submit((session, seq, now, call.name, call.id, snapshot_args(call.args), decision, approval))
    return decision


def _recheck(session: Session, call: ToolCall, request: ConfirmationRequest | None, now: float) -> Decision:
    """Every stage again, now: a DENY stands (nothing a person approves can waive it); a CONFIRM
    is waived only if a person saw every one of its reasons; new reasons need a new request."""
    decision = run_pipeline(session._stages, session, call, now)
    if decision.effect is not Effect.CONFIRM:
        return decision
    seen = set(request.reasons) if request is not None else set()
    unseen = [reason for reason in decision.reasons if reason not in seen]
    if not unseen:
        return ALLOW
    sentence = "since the approval was asked for, new reasons to ask appeared: " + " ".join(
        reason.message for reason in unseen
    )
    return Decision(Effect.DENY, (*unseen, Reason(ReasonCode.APPROVAL_INVALID, sentence)))
