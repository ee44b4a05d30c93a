"""Session: one agent run under one intent — its grant, identity, provenance ledger and counters.

``session.check(call)`` decides a call; ``observe`` / ``observe_result`` feed the provenance
ledger; ``decide`` / ``apply_approval`` turn a CONFIRM into a final decision with a human's
answer. Sessions are safe to share between threads: a check and the budget it consumes
happen atomically.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import threading
import time
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from intentguard.audit import args_digest
from intentguard.clock import SystemClock
from intentguard.confirming import open_request, settle
from intentguard.decision import ALLOW, Decision, Effect
from intentguard.delegation import charge_ancestors
from intentguard.errors import ConfirmationRequired, Denied, RegistryError
from intentguard.gates import (
    HANDLER_ERROR_APPROVER,
    Approval,
    AsyncConfirmationHandler,
    ConfirmationHandler,
    ConfirmationRequest,
    handler_failed,
)
from intentguard.grant import Grant
from intentguard.identity import AgentIdentity, DelegationChain, Principal
from intentguard.ingest import Digest, digest_output, digest_text
from intentguard.instructions import Instruction
from intentguard.intent import Intent
from intentguard.pipeline import (
    CORE_STAGES,
    DEFAULT_STAGES,
    PLAIN_SCALARS,
    Stage,
    ToolCall,
    run_pipeline,
    snapshot_args,
)
from intentguard.provenance import Ledger, Origin, Source, Trust, trust_of

if TYPE_CHECKING:
    from intentguard.guard import Guard

__all__ = ["Session"]

_log = logging.getLogger("intentguard")
# Effects named on every check: on Python 3.11 ``Effect.ALLOW`` is a ~100 ns descriptor lookup.
_ALLOWED, _CONFIRMED = Effect.ALLOW, Effect.CONFIRM


class Session:
    """One agent run under one intent: its grant, its identity and its counters.

    Create sessions with :meth:`Guard.start`, :meth:`delegate` or :meth:`Guard.resume`. All methods
    are thread-safe. ``root_id``, ``depth``, ``chain``, ``tokens``: see ``docs/identity.md``.
    """

    depth: int = 0
    tokens: tuple[str, ...] = ()
    _tenant_until: float = math.inf  # until when the tenant context is known good (tenancy.py)
    _features_lost: Mapping[str, str] = {}

    def __init__(
        self,
        guard: Guard,
        session_id: str,
        intent: Intent,
        grant: Grant,
        *,
        principal: Principal,
        agent: AgentIdentity,
        chain: DelegationChain | None = None,
    ) -> None:
        self.id = session_id
        self.intent = intent
        self.principal = principal
        self.agent = agent
        self.chain = DelegationChain.start(principal, agent, session_id) if chain is None else chain
        self.root_auth = self.chain.root_auth
        self.root_id = self.chain.root_session
        self.depth = self.chain.depth
        # The sessions above this one in this process, nearest first (delegate() sets them). An
        # instance attribute: Python 3.11 reads those faster than class ones on the hot path.
        self._ancestors: tuple[Session, ...] = ()
        self._children: weakref.WeakSet[Session] = weakref.WeakSet()
        if guard.tenancy is not None:
            self._tenant_until = -math.inf
        self._grant = grant
        self._guard = guard
        self._clock = guard.clock
        # The wall clock is read directly: a method call per check is measurable on the hot path.
        self._now: Callable[[], float] = time.time if isinstance(guard.clock, SystemClock) else guard.clock
        self._stages: Sequence[Stage] = guard.stages
        self._extra_stages: Sequence[Stage] = guard.stages[len(CORE_STAGES) :]
        self._default_stages = guard.stages == DEFAULT_STAGES
        self._audit = guard.audit
        self._lock = threading.Lock()
        self._used: defaultdict[str, int] = defaultdict(int)
        self._used_total = 0
        self._seqs = itertools.count()
        self._submit = guard.audit.submit
        self.ledger = Ledger()
        for name, value in intent.params.items():
            self.ledger.add_value(value, Origin(Source.PARAM, Trust.TRUSTED, f"param:{name}", param=name))
        self._recent: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._pending: dict[str, ConfirmationRequest] = {}
        self._confirms: OrderedDict[tuple[str, str], Decision] = OrderedDict()
        self._revoked: str | None = None
        self._divergence = guard.divergence.bind(intent.schema)
        # Last: the registry reads the session's identity and chain. A delegated or resumed session
        # counts as started when its root did, so every invalidation since then applies to it.
        self._lease = guard.registry.register(self, since=None if chain is None else grant.issued_at)

    def __repr__(self) -> str:
        return f"<Session {self.id!r} intent={self._grant.intent!r} user={self.principal.user!r}>"

    @property
    def grant(self) -> Grant:
        """The grant in force now (attenuations replace it with a narrower one)."""
        return self._grant

    @property
    def revoked(self) -> str | None:
        """Why the session was revoked (here, or through the registry), or None while it is live."""
        return self._revoked if self._revoked is not None else self._lease.revocation()

    @property
    def used_total(self) -> int:
        """How many calls the session has been allowed so far."""
        return self._used_total

    def used(self, tool: str) -> int:
        """How many calls of ``tool`` the session has been allowed so far."""
        return self._used.get(tool, 0)

    def allowed_tools(self) -> frozenset[str]:
        """The tools the grant allows right now (expiry and decay applied; none once revoked)."""
        if self.revoked is not None:
            return frozenset()
        return self._grant.active_tools(self._clock())

    def check(self, call: ToolCall) -> Decision:
        """Decide one call. Never raises; an ALLOW consumes the call's budget."""
        now = self._now()
        name = call.name
        args = call.args
        with self._lock:
            grant = self._grant
            used = self._used
            # Stages 1-3 fused for the common case. Any doubt, a failing test or an exception goes
            # through the full pipeline, which gives the same answer with every reason spelled out
            # (and turns an exception into DENY with CHECK_FAILED).
            try:
                policy = grant._lookup.get(name) if name.__class__ is str else None
                fast = (
                    policy is not None
                    and args.__class__ is dict
                    and self._revoked is None
                    and now < self._tenant_until
                    and not policy.tenant_args
                    and self._lease.current(now)
                    and grant.issued_at <= now < grant._live_until
                    and used[name] < policy.max_calls
                    and self._used_total < grant._total
                    and policy._accepts(args)
                )
            except Exception:  # noqa: BLE001 - re-run below, where the failing stage is named
                fast = False
            if fast:
                for value in args.values():  # containers and subclasses take the full path (stage 1)
                    if value.__class__ not in PLAIN_SCALARS:
                        fast = False
                        break
            if fast and policy is not None and self._default_stages:
                # Stages 4 and 6 have nothing to say unless an argument's lookup refuses it, untrusted
                # instructions arrived, the ledger overflowed, or the tool is gated by its schema;
                # then they run in full and spell out their reasons.
                ledger = self.ledger
                try:
                    quiet = (
                        policy.plain
                        and not (ledger.instructions or ledger.saturated)
                        and (not policy.traced_args or ledger.accepts(args, policy.traced_args))
                    )
                except Exception:  # noqa: BLE001 - the stages re-run it and name the failure (CHECK_FAILED)
                    quiet = False
                decision = ALLOW if quiet else run_pipeline(self._extra_stages, self, call, now)
            elif fast and not self._extra_stages:
                decision = ALLOW
            else:
                decision = run_pipeline(self._extra_stages if fast else self._stages, self, call, now)
            decision, revoking = self._divergence.decide(self, call, now, decision)  # stage 5: score, narrow, revoke
            if (decision is ALLOW or decision.effect is _ALLOWED) and (
                not self._ancestors or (decision := charge_ancestors(self, name, decision)).effect is _ALLOWED
            ):
                used[name] += 1
                self._used_total += 1
                if call.id is not None and grant._lookup[name].record:
                    self._remember(call)
            elif decision.effect is _CONFIRMED:
                self._confirmable(call, decision)
            seq = next(self._seqs)
        if revoking is not None:
            try:
                self.revoke(revoking, by="intentguard divergence")
            except RegistryError:  # the stop holds here; check() never raises
                _log.exception("session %r stopped here; the registry could not be told", self.id)
        if self._audit.enabled:
            snapshot = args.copy() if args.__class__ is dict else snapshot_args(args)
            self._submit((self, seq, now, name, call.id, snapshot, decision, None))
        return decision

    async def acheck(self, call: ToolCall) -> Decision:
        """The async twin of :meth:`check` (the check itself never waits on I/O)."""
        return self.check(call)

    def observe(self, text: str, *, source: Source = Source.USER, origin: str | None = None) -> list[Instruction]:
        """Record text that entered the run. User, system and developer text is trusted;
        ``Source.RETRIEVED`` / ``AGENT`` / ``TOOL`` text is untrusted and scanned for instructions,
        which are returned. ``origin`` names where it came from (a URL, a file, an agent)."""
        source = Source(source)
        where = Origin(source, trust_of(source), origin or source.value)
        ledger = self.ledger
        return self._ingest(lambda: digest_text(text, where, cache=ledger.digests, words=ledger.words))

    def observe_result(self, call_id: str | None, tool: str, output: Any) -> list[Instruction]:
        """Record a tool's output. Structured output of a system-of-record tool is labelled
        record (derived when the call's own arguments were trusted); everything else is untrusted.
        Returns the instructions found in it."""
        with self._lock:
            policy = self._grant._lookup.get(tool)
            remembered = self._recent.pop(call_id, None) if call_id is not None else None
            derived = remembered is not None and remembered[0] == tool and self._trusted_args(tool, remembered[1])
        record = policy is not None and policy.record
        free_text = policy.free_text if policy is not None else frozenset()
        return self._ingest(
            lambda: digest_output(
                output,
                tool=tool,
                call_id=call_id,
                record=record,
                free_text=free_text,
                derived=derived,
                cache=self.ledger.digests,
                words=self.ledger.words,
            )
        )

    def _ingest(self, digest: Callable[[], Digest]) -> list[Instruction]:
        """Digest outside the lock (it can take a while for large text), commit under it. If
        ingest fails the ledger is marked saturated: provenance then fails closed."""
        try:
            found = digest()
        except Exception:  # noqa: BLE001 - an observation that cannot be read must not pass as unseen
            _log.exception("intentguard could not index an observation; provenance now fails closed")
            with self._lock:
                self.ledger.saturated = True
            return []
        with self._lock:
            return self.ledger.commit(found)

    def decide(self, call: ToolCall, *, handler: ConfirmationHandler | None = None) -> Decision:
        """Check a call and, on CONFIRM, ask ``handler`` (default: the guard's) for a human's answer.

        Returns ALLOW (approved, budget consumed) or DENY; every step is audited. A handler that
        raises or answers anything but an :class:`Approval` is a denial.
        """
        decision, request = self._open(call)
        if request is None:
            return decision
        ask = handler if handler is not None else self._guard.confirm
        try:
            answer: object = ask(request)
        except Exception as exc:  # noqa: BLE001 - a broken handler is a denial, never an allow
            answer = handler_failed(request, exc, at=self._now())
        return self._settle(call, request, answer)

    async def adecide(self, call: ToolCall, *, handler: AsyncConfirmationHandler | None = None) -> Decision:
        """The async twin of :meth:`decide`: the handler may be async or plain."""
        decision, request = self._open(call)
        if request is None:
            return decision
        ask = handler if handler is not None else self._guard.confirm
        try:
            answer: object = ask(request)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:  # noqa: BLE001 - a broken handler is a denial, never an allow
            answer = handler_failed(request, exc, at=self._now())
        return self._settle(call, request, answer)

    def _open(self, call: ToolCall) -> tuple[Decision, ConfirmationRequest | None]:
        """Check the call; on CONFIRM also open the request a human will answer."""
        decision = self.check(call)
        if decision.effect is not Effect.CONFIRM:
            return decision, None
        return decision, self.confirmation_request(call, decision)

    def _settle(self, call: ToolCall, request: ConfirmationRequest, answer: object) -> Decision:
        if not isinstance(answer, Approval):
            answer = Approval.deny(
                request,
                approver=HANDLER_ERROR_APPROVER,
                at=self._now(),
                note=f"the handler returned {type(answer).__name__}, not an Approval",
            )
        return self.apply_approval(call, answer)

    def confirmation_request(self, call: ToolCall, decision: Decision) -> ConfirmationRequest:
        """The request a human sees for a CONFIRM decision; it stays open until answered or expired.
        Only a CONFIRM this session itself gave, for these exact arguments, opens one."""
        return open_request(self, call, decision)

    def apply_approval(self, call: ToolCall, approval: Approval) -> Decision:
        """Turn a human's answer into the final decision for ``call``: ALLOW only for a live,
        unused request of this session, for these exact arguments, approved in time, and only if
        every stage, run again now, gives ALLOW or a CONFIRM whose reasons the person saw. A DENY
        (revocation, expiry, budgets, constraints, an instruction that named the call) stands."""
        return settle(self, call, approval)

    def _confirmable(self, call: ToolCall, decision: Decision) -> None:
        """Note a CONFIRM this session gave, so a request can be opened for it (bounded)."""
        if len(self._confirms) >= 256:
            self._confirms.popitem(last=False)
        self._confirms[(call.name, args_digest(snapshot_args(call.args)))] = decision

    def _remember(self, call: ToolCall) -> None:
        """Keep the arguments of recent allowed calls, to label their results (bounded)."""
        if len(self._recent) >= 256:
            self._recent.popitem(last=False)
        self._recent[call.id] = (call.name, dict(call.args))  # type: ignore[index]

    def _trusted_args(self, tool: str, args: Mapping[str, Any]) -> bool:
        """Whether every argument of a call was trusted: pinned by the schema, or seen in trusted
        or derived values (an unseen value vouches for nothing)."""
        policy = self._grant.tools.get(tool)
        pinned = policy.pinned if policy is not None else frozenset()
        return all(
            arg in pinned or any(origin.trust <= Trust.DERIVED for origin in self.ledger.origins(value))
            for arg, value in args.items()
        )

    def enforce(self, call: ToolCall) -> Decision:
        """Like :meth:`check`, but raise :class:`Denied` or :class:`ConfirmationRequired`."""
        decision = self.check(call)
        if decision.effect is Effect.DENY:
            raise Denied(decision)
        if decision.effect is Effect.CONFIRM:
            raise ConfirmationRequired(decision)
        return decision

    def attenuate(self, **narrowing: Any) -> Grant:
        """Replace the grant with a narrower one (see :meth:`Grant.attenuate`); returns it."""
        with self._lock:
            self._grant = self._grant.attenuate(**narrowing)
            return self._grant

    def delegate(self, agent: AgentIdentity, **narrowing: Any) -> Session:
        """A child session for ``agent`` at depth + 1, its grant a subset of this one's; see
        :func:`intentguard.delegation.delegate`."""
        from intentguard.delegation import delegate

        return delegate(self, agent, **narrowing)

    def revoke(self, reason: str, *, by: str = "the application") -> None:
        """Stop the session and every session delegated from it, for good, in every process sharing
        the registry: every later call is denied with ``SESSION_REVOKED``. Here it holds at once,
        even when the registry cannot be written (then :class:`RegistryError` is raised)."""
        from intentguard.delegation import revoke

        revoke(self, reason, by=by)
