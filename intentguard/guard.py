"""Guard (configured once) and Session (one agent run): where the pipeline runs.

``Guard`` holds the intent schemas, the clock, the id source, the audit sinks and the
pipeline. ``guard.start(...)`` compiles an intent into a grant and returns a ``Session``;
``session.check(call)`` returns a :class:`~intentguard.decision.Decision` for every call and
enqueues one audit record for it. Sessions are safe to share between threads: a check and
the budget it consumes happen atomically.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from intentguard.audit import AuditSink, AuditWriter, SinkErrorHandler
from intentguard.clock import Clock, DurationLike, SystemClock, to_duration
from intentguard.decision import ALLOW, Decision, Effect
from intentguard.errors import ConfigurationError, ConfirmationRequired, Denied
from intentguard.grant import Grant
from intentguard.identity import AgentIdentity, Principal
from intentguard.intent import Intent
from intentguard.loader import load_schemas
from intentguard.pipeline import CORE_STAGES, Stage, ToolCall, run_pipeline
from intentguard.schema import IntentSchema

__all__ = ["Guard", "Session"]


def _new_id() -> str:
    return uuid.uuid4().hex


class Guard:
    """Configured once per process: schemas, clock, ids, audit sinks; starts sessions.

    ``schemas`` takes :class:`IntentSchema` objects and paths to schema files or to
    directories of them. ``audit`` takes sinks (callables fed :class:`AuditRecord`);
    a failing sink is reported to ``on_audit_error`` (default: the ``intentguard.audit``
    logger) and never changes a decision.
    """

    def __init__(
        self,
        *,
        schemas: Iterable[IntentSchema | str | Path],
        clock: Clock | None = None,
        ids: Callable[[], str] | None = None,
        audit: Iterable[AuditSink] = (),
        on_audit_error: SinkErrorHandler | None = None,
    ) -> None:
        if isinstance(schemas, str | Path | IntentSchema):
            schemas = [schemas]
        loaded: dict[str, IntentSchema] = {}
        paths: list[str | Path] = []
        for item in schemas:
            if isinstance(item, IntentSchema):
                loaded[item.name] = item
            elif isinstance(item, str | Path):
                paths.append(item)
            else:
                raise ConfigurationError(f"schemas entry {item!r} is neither an IntentSchema nor a path")
        for name, schema in load_schemas(paths).items():
            if name in loaded:
                raise ConfigurationError(f"intent {name!r} is given twice; give each schema its own name")
            loaded[name] = schema
        if not loaded:
            raise ConfigurationError("no intent schemas given; pass schemas=[...] with at least one")
        self.schemas: Mapping[str, IntentSchema] = loaded
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.ids: Callable[[], str] = ids if ids is not None else _new_id
        self.stages: tuple[Stage, ...] = CORE_STAGES
        self.audit = AuditWriter(audit, ids=self.ids, clock=self.clock, on_error=on_audit_error)

    def intent(self, name: str, params: Mapping[str, Any] | None = None) -> Intent:
        """Bind spawn-time parameters to the named schema (validated, frozen)."""
        schema = self.schemas.get(name)
        if schema is None:
            known = ", ".join(sorted(self.schemas))
            raise ConfigurationError(f"unknown intent {name!r}; this guard knows: {known}")
        return Intent.bind(schema, params)

    def start(
        self,
        intent: str | Intent,
        params: Mapping[str, Any] | None = None,
        *,
        principal: Principal,
        agent: AgentIdentity,
        ttl: DurationLike | None = None,
    ) -> Session:
        """Start a session for one declared task, acting for ``principal`` as ``agent``.

        ``intent`` is a schema name (with ``params``) or a bound :class:`Intent`; ``ttl``
        may shorten the schema's lifetime, never lengthen it.
        """
        if isinstance(intent, str):
            intent = self.intent(intent, params)
        elif params is not None:
            raise ConfigurationError("params are already bound in the Intent; pass a name with params, or an Intent")
        if not isinstance(principal, Principal) or not isinstance(agent, AgentIdentity):
            raise ConfigurationError(
                "principal must be an intentguard.Principal and agent an intentguard.AgentIdentity"
            )
        lifetime = None if ttl is None else to_duration(ttl, what="ttl")
        grant = Grant.compile(intent, now=self.clock(), ttl=lifetime)
        return Session(self, self.ids(), intent, grant, principal=principal, agent=agent)

    def flush(self) -> None:
        """Write every pending audit record now."""
        self.audit.flush()

    def close(self) -> None:
        """Write pending audit records and close the sinks."""
        self.audit.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Session:
    """One agent run under one intent: its grant, its identity and its counters.

    Create sessions with :meth:`Guard.start`. All methods are thread-safe.
    """

    def __init__(
        self,
        guard: Guard,
        session_id: str,
        intent: Intent,
        grant: Grant,
        *,
        principal: Principal,
        agent: AgentIdentity,
    ) -> None:
        self.id = session_id
        self.intent = intent
        self.principal = principal
        self.agent = agent
        self.root_auth = principal.auth_event or f"session:{session_id}"
        self._grant = grant
        self._guard = guard
        self._clock = guard.clock
        # The wall clock is read directly: a method call per check is measurable on the hot path.
        self._now: Callable[[], float] = time.time if isinstance(guard.clock, SystemClock) else guard.clock
        self._stages: Sequence[Stage] = guard.stages
        self._extra_stages: Sequence[Stage] = guard.stages[len(CORE_STAGES) :]
        self._audit = guard.audit
        self._lock = threading.Lock()
        self._used: defaultdict[str, int] = defaultdict(int)
        self._used_total = 0
        self._seqs = itertools.count()
        self._submit = guard.audit.submit
        self._revoked: str | None = None

    def __repr__(self) -> str:
        return f"<Session {self.id!r} intent={self._grant.intent!r} user={self.principal.user!r}>"

    @property
    def grant(self) -> Grant:
        """The grant in force now (attenuations replace it with a narrower one)."""
        return self._grant

    @property
    def revoked(self) -> str | None:
        """Why the session was revoked, or None while it is live."""
        return self._revoked

    @property
    def used_total(self) -> int:
        """How many calls the session has been allowed so far."""
        return self._used_total

    def used(self, tool: str) -> int:
        """How many calls of ``tool`` the session has been allowed so far."""
        return self._used.get(tool, 0)

    def allowed_tools(self) -> frozenset[str]:
        """The tools the grant allows right now (expiry and decay applied; none once revoked)."""
        if self._revoked is not None:
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
                    and grant.issued_at <= now < grant._live_until
                    and used[name] < policy.max_calls
                    and self._used_total < grant._total
                    and policy._accepts(args)
                )
            except Exception:  # noqa: BLE001 - re-run below, where the failing stage is named
                fast = False
            if fast and not self._extra_stages:
                decision = ALLOW
            else:
                decision = run_pipeline(self._extra_stages if fast else self._stages, self, call, now)
            if decision is ALLOW or decision.effect is Effect.ALLOW:
                used[name] += 1
                self._used_total += 1
            seq = next(self._seqs)
        if self._audit.enabled:
            snapshot = args.copy() if args.__class__ is dict else dict(args) if isinstance(args, Mapping) else args
            self._submit((self, seq, now, name, call.id, snapshot, decision))
        return decision

    async def acheck(self, call: ToolCall) -> Decision:
        """The async twin of :meth:`check` (the check itself never waits on I/O)."""
        return self.check(call)

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

    def revoke(self, reason: str) -> None:
        """Stop the session for good: every later call is denied with ``SESSION_REVOKED``."""
        if not isinstance(reason, str) or not reason:
            raise ConfigurationError("revoke() needs a reason sentence")
        with self._lock:
            if self._revoked is None:
                self._revoked = reason
