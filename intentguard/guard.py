"""Guard (configured once) and Session (one agent run): where the pipeline runs.

``Guard`` holds the intent schemas, the clock, the id source, the audit sinks and the
pipeline. ``guard.start(...)`` compiles an intent into a grant and returns a ``Session``;
``session.check(call)`` returns a :class:`~intentguard.decision.Decision` for every call and
enqueues one audit record for it. Sessions are safe to share between threads: a check and
the budget it consumes happen atomically.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentguard.audit import AuditSink, AuditWriter, SinkErrorHandler
from intentguard.clock import Clock, DurationLike, SystemClock, to_duration
from intentguard.delegation import resume, root_token
from intentguard.divergence import DivergenceConfig
from intentguard.errors import ConfigurationError
from intentguard.gates import AsyncConfirmationHandler, ConfirmationHandler, deny_all
from intentguard.grant import Grant
from intentguard.identity import AgentIdentity, Principal
from intentguard.intent import Intent
from intentguard.loader import load_schemas
from intentguard.pipeline import DEFAULT_STAGES, Stage
from intentguard.registry import SessionRegistry, open_registry
from intentguard.schema import IntentSchema
from intentguard.session import Session
from intentguard.tenancy import TenantCache, TenantContextProvider

if TYPE_CHECKING:
    from intentguard.keys import KeyStore
    from intentguard.tokens import HopVerifier

__all__ = ["Guard"]


def _new_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex without its object: ids are made per record.
    return os.urandom(16).hex()


class Guard:
    """Configured once per process: schemas, clock, ids, audit sinks; starts sessions.

    ``schemas`` takes :class:`IntentSchema` objects and paths to schema files or to
    directories of them. ``audit`` takes sinks (callables fed :class:`AuditRecord`);
    a failing sink is reported to ``on_audit_error`` (default: the ``intentguard.audit``
    logger) and never changes a decision. ``confirm`` answers CONFIRM decisions in
    :meth:`Session.decide` (default: :func:`~intentguard.gates.deny_all`); a request not
    answered within ``confirm_timeout`` is a denial. ``divergence`` chooses the divergence model
    and the thresholds that narrow or revoke a session (default: the shipped model, no thresholds).
    ``registry`` is where sessions register and are revoked: a
    :class:`~intentguard.registry.SessionRegistry` (the caller closes it) or a URL (``memory:``,
    ``sqlite:///registry.db``, ``redis://host:6379/0``); without it the ``INTENTGUARD_REGISTRY``
    environment variable, else an in-process memory registry.

    Identity (see ``docs/identity.md``): with ``keys`` (a :class:`~intentguard.keys.KeyStore`)
    every session carries signed hop tokens and :meth:`resume` accepts them; ``tenants`` is
    consulted on every call through a cache whose answers live at most ``tenant_max_age``.
    :meth:`resume` asks the registry whether the chain was revoked and whether its token was
    resumed before.
    """

    def __init__(
        self,
        *,
        schemas: Iterable[IntentSchema | str | Path],
        clock: Clock | None = None,
        ids: Callable[[], str] | None = None,
        audit: Iterable[AuditSink] = (),
        on_audit_error: SinkErrorHandler | None = None,
        confirm: ConfirmationHandler | AsyncConfirmationHandler = deny_all,
        confirm_timeout: DurationLike = 300,
        keys: KeyStore | None = None,
        tenants: TenantContextProvider | None = None,
        tenant_max_age: DurationLike = 30,
        registry: SessionRegistry | str | None = None,
        divergence: DivergenceConfig | None = None,
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
        self.stages: tuple[Stage, ...] = DEFAULT_STAGES
        self.confirm = confirm
        self.confirm_timeout = to_duration(confirm_timeout, what="confirm_timeout").total_seconds()
        self._templates: OrderedDict[tuple[str, str], tuple[IntentSchema, Grant]] = OrderedDict()
        self._templates_lock = threading.Lock()
        self.audit = AuditWriter(audit, ids=self.ids, clock=self.clock, on_error=on_audit_error)
        self.keys = keys
        max_age = to_duration(tenant_max_age, what="tenant_max_age")
        self.tenancy = None if tenants is None else TenantCache(tenants, clock=self.clock, max_age=max_age)
        self._hop_verifier: HopVerifier | None = None
        self.registry, self._owns_registry = open_registry(registry, clock=self.clock)
        if divergence is not None and not isinstance(divergence, DivergenceConfig):
            raise ConfigurationError(f"divergence={divergence!r} is not an intentguard.DivergenceConfig")
        self.divergence = divergence if divergence is not None else DivergenceConfig()

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
        grant = self._template(intent).restarted(now=self.clock(), ttl=lifetime)
        session = Session(self, self.ids(), intent, grant, principal=principal, agent=agent)
        root_token(session)
        return session

    def resume(self, tokens: Sequence[str], *, tenant: str) -> Session:
        """Resume, in this process, the session at the end of a hop-token chain (root first), for
        ``tenant``; every check runs again now. Raises :class:`Denied` naming why it is refused
        (see :func:`intentguard.delegation.resume`)."""
        return resume(self, tokens, tenant=tenant)

    @property
    def hop_verifier(self) -> HopVerifier:
        """The verifier (and per-process cache) of hop tokens; needs ``keys``."""
        if self.keys is None:
            raise ConfigurationError("this guard has no keys; pass Guard(keys=...) to sign and verify hop tokens")
        if self._hop_verifier is None:
            from intentguard.tokens import HopVerifier

            self._hop_verifier = HopVerifier(self.keys)
        return self._hop_verifier

    def _template(self, intent: Intent) -> Grant:
        """The compiled grant for this schema and these parameters (compiled once, bounded cache):
        sessions of the same intent share the generated checks and differ only in their times."""
        key = (intent.schema.name, json.dumps(dict(intent.params), sort_keys=True))
        with self._templates_lock:
            cached = self._templates.get(key)
            if cached is not None and cached[0] is intent.schema:
                self._templates.move_to_end(key)
                return cached[1]
        template = Grant.compile(intent, now=0.0)
        with self._templates_lock:
            self._templates[key] = (intent.schema, template)
            if len(self._templates) > 256:
                self._templates.popitem(last=False)
        return template

    def flush(self) -> None:
        """Write every pending audit record now."""
        self.audit.flush()

    def close(self) -> None:
        """Write pending audit records and close the sinks (and the registry, if the guard opened it)."""
        self.audit.close()
        if self._owns_registry:
            self.registry.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
