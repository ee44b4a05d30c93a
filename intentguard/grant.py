"""Grants: what one intent allows, compiled once, evaluated per call, narrowed never widened.

A :class:`Grant` is immutable. It is compiled from an :class:`~intentguard.intent.Intent`
and the time it starts; :meth:`Grant.evaluate` is a pure function of the call, ``now`` and
the calls already made. :meth:`Grant.attenuate` returns a narrower grant and raises
:class:`~intentguard.errors.GrantWideningError` if asked for anything more.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from intentguard.clock import format_duration, format_time
from intentguard.decision import Reason, ReasonCode
from intentguard.errors import GrantWideningError
from intentguard.policy import ToolPolicy, compile_args, pinned
from intentguard.provenance import tool_words

if TYPE_CHECKING:
    from intentguard.intent import Intent
    from intentguard.schema import ArgSpec

__all__ = ["Grant"]


@dataclass(frozen=True, slots=True)
class Grant:
    """The minimal, time-bounded toolset one intent allows, with budgets and decay."""

    intent: str
    version: str
    params: Mapping[str, Any]
    issued_at: float
    expires_at: float
    tools: Mapping[str, ToolPolicy]
    max_calls: int | None
    max_depth: int
    decay: tuple[tuple[float, frozenset[str], str], ...] = ()
    on_instruction: str = "confirm"
    """After an untrusted instruction: 'confirm' or 'deny' every later call, or gate only 'match'es."""
    hop_ttl_factor: float = 0.5
    """A delegated grant lives at most this fraction of its parent's remaining lifetime."""
    removed: frozenset[str] = frozenset()
    """Tools of the intent that attenuation (delegation, narrowing, a downgrade) took out."""
    _lookup: dict[str, ToolPolicy] = field(init=False, repr=False, compare=False)
    _live_until: float = field(init=False, repr=False, compare=False)
    _total: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived once so the fast path of evaluate() is a few local comparisons.
        object.__setattr__(self, "_lookup", dict(self.tools))
        first_decay = self.decay[0][0] if self.decay else math.inf
        object.__setattr__(self, "_live_until", min(self.expires_at, first_decay))
        object.__setattr__(self, "_total", math.inf if self.max_calls is None else self.max_calls)

    @classmethod
    def compile(cls, intent: Intent, *, now: float, ttl: timedelta | None = None) -> Grant:
        """Compile an intent into a grant that starts at ``now``.

        ``ttl`` may only shorten the schema's own ttl.
        """
        schema = intent.schema
        params = intent.params
        lifetime = schema.ttl if ttl is None else min(ttl, schema.ttl)
        tools: dict[str, ToolPolicy] = {}
        for name, spec in schema.tools.items():
            deny = tuple(
                (
                    f"{rule.reason.rstrip('.')} (deny rule {index} of intent {schema.name!r}).",
                    compile_args(rule.args, params, f"deny[{index}]", keep_unconstrained=True),
                )
                for index, rule in enumerate(schema.deny)
                if fnmatch.fnmatchcase(name, rule.tool)
            )
            high = spec.privilege.value == "high"
            default_sources = frozenset({"trusted"} if high else {"any"})
            tools[name] = ToolPolicy(
                name=name,
                high_privilege=high,
                max_calls=spec.max_calls,
                allow_unknown=spec.unknown_arguments.value == "allow",
                names=frozenset(spec.args),
                required=frozenset(arg for arg, arg_spec in spec.args.items() if not arg_spec.optional),
                checks=compile_args(spec.args, params, f"tools.{name}"),
                deny=deny,
                sources=MappingProxyType(
                    {
                        arg: frozenset(arg_spec.sources) if arg_spec.sources is not None else default_sources
                        for arg, arg_spec in spec.args.items()
                    }
                ),
                pinned=frozenset(arg for arg, arg_spec in spec.args.items() if pinned(arg_spec) or arg_spec.tenant),
                default_sources=default_sources,
                confirm=spec.confirm.value,
                record=spec.record,
                free_text=frozenset(field.casefold() for field in spec.free_text),
                words=tool_words(name),
                tenant_args=frozenset(arg for arg, arg_spec in spec.args.items() if arg_spec.tenant),
                feature=spec.feature,
            )
        decay = []
        for index, rule in enumerate(schema.decay):
            dropped = set(rule.tools)
            if rule.drop is not None:
                dropped |= {name for name, spec in schema.tools.items() if spec.privilege is rule.drop}
            decay.append(
                (
                    now + rule.after.total_seconds(),
                    frozenset(dropped),
                    f"{format_duration(rule.after)} after the grant started (decay rule {index})",
                )
            )
        return cls(
            intent=schema.name,
            version=schema.version,
            params=params,
            issued_at=now,
            expires_at=now + lifetime.total_seconds(),
            tools=MappingProxyType(tools),
            max_calls=schema.max_calls,
            max_depth=schema.max_depth,
            decay=tuple(sorted(decay, key=lambda item: item[0])),
            on_instruction=schema.on_instruction.value,
            hop_ttl_factor=schema.hop_ttl_factor,
        )

    def restarted(self, *, now: float, ttl: timedelta | None = None) -> Grant:
        """The same grant starting at ``now`` (for a new session of the same intent): the compiled
        tools are shared, the times are shifted. ``ttl`` may only shorten the lifetime."""
        lifetime = self.expires_at - self.issued_at
        if ttl is not None:
            lifetime = min(lifetime, ttl.total_seconds())
        shift = now - self.issued_at
        decay = tuple((at + shift, dropped, when) for at, dropped, when in self.decay)
        return replace(self, issued_at=now, expires_at=now + lifetime, decay=decay)

    def active_tools(self, now: float) -> frozenset[str]:
        """The tools callable at ``now``: none once expired, decayed ones removed."""
        if not self.issued_at <= now < self.expires_at:
            return frozenset()
        active = set(self.tools)
        for at, dropped, _ in self.decay:
            if now >= at:
                active -= dropped
        return frozenset(active)

    def evaluate(
        self, name: str, args: Mapping[str, Any], now: float, used: int, used_total: int
    ) -> tuple[Reason, ...]:
        """Every reason to deny a call at ``now``, given the calls already made; empty means allowed.

        ``used`` counts earlier calls of this tool in the session, ``used_total`` of any tool.
        """
        policy = self._lookup.get(name)
        if (
            policy is not None
            and self.issued_at <= now < self._live_until
            and used < policy.max_calls
            and used_total < self._total
            and policy._accepts(args)
        ):
            return ()
        return tuple(self._reasons(policy, name, args, now, used, used_total))

    def _reasons(
        self, policy: ToolPolicy | None, name: str, args: Mapping[str, Any], now: float, used: int, used_total: int
    ) -> list[Reason]:
        if policy is None:
            sentence = (
                f"tool {name!r} of intent {self.intent!r} was taken out of this session's grant "
                "(delegated without it, or narrowed); a narrowed grant never gets it back."
                if name in self.removed
                else f"tool {name!r} is not in intent {self.intent!r}; widen the schema or start a new intent."
            )
            return [Reason(ReasonCode.TOOL_NOT_IN_INTENT, sentence)]
        if now >= self.expires_at:
            return [
                Reason(
                    ReasonCode.GRANT_EXPIRED,
                    f"the grant for intent {self.intent!r} expired at {format_time(self.expires_at)}; "
                    "start a new intent.",
                )
            ]
        if now < self.issued_at:
            return [
                Reason(
                    ReasonCode.GRANT_NOT_YET_VALID,
                    f"the grant for intent {self.intent!r} starts at {format_time(self.issued_at)}.",
                )
            ]
        if self.decay and now >= self.decay[0][0]:
            for at, dropped, when in self.decay:
                if now >= at and name in dropped:
                    return [Reason(ReasonCode.TOOL_DECAYED, f"tool {name!r} dropped out of the grant {when}.")]
        reasons: list[Reason] = []
        if used >= policy.max_calls:
            reasons.append(
                Reason(
                    ReasonCode.BUDGET_EXHAUSTED,
                    f"tool {name!r} has used its budget of {policy.max_calls} call(s) in this session.",
                )
            )
        if self.max_calls is not None and used_total >= self.max_calls:
            reasons.append(
                Reason(
                    ReasonCode.BUDGET_EXHAUSTED, f"the session has used its budget of {self.max_calls} tool call(s)."
                )
            )
        if policy.checks or policy.required or not policy.allow_unknown or policy.deny:
            reasons.extend(policy.argument_reasons(args))
        return reasons

    def attenuate(
        self,
        *,
        tools: Iterable[str] | None = None,
        expires_at: float | None = None,
        max_calls: int | None = None,
        tool_max_calls: Mapping[str, int] | None = None,
        args: Mapping[str, Mapping[str, ArgSpec]] | None = None,
        drop_high_privilege: bool = False,
    ) -> Grant:
        """A narrower grant: fewer tools, an earlier expiry, smaller budgets, extra argument checks.

        Extra argument checks are added to the existing ones (both must hold); they never
        change which arguments are declared or required. Raises :class:`GrantWideningError`
        when asked for anything this grant does not hold.
        """
        requested = set(self.tools) if tools is None else set(tools)
        extra = requested - set(self.tools)
        if extra:
            raise GrantWideningError(
                f"tool(s) {sorted(extra)!r} are not in the grant for intent {self.intent!r}; "
                "an attenuation can only remove tools."
            )
        keep = {name for name in requested if not (drop_high_privilege and self.tools[name].high_privilege)}
        new_expiry = self.expires_at
        if expires_at is not None:
            if expires_at > self.expires_at:
                raise GrantWideningError(
                    f"expiry {format_time(expires_at)} is later than the grant's "
                    f"{format_time(self.expires_at)}; an attenuation can only shorten it."
                )
            new_expiry = expires_at
        new_total = self.max_calls
        if max_calls is not None:
            if self.max_calls is not None and max_calls > self.max_calls:
                raise GrantWideningError(
                    f"session budget {max_calls} exceeds the grant's {self.max_calls}; "
                    "an attenuation can only lower it."
                )
            new_total = max_calls
        budgets = dict(tool_max_calls or {})
        extra_checks = dict(args or {})
        for name in set(budgets) | set(extra_checks):
            if name not in requested:
                raise GrantWideningError(
                    f"tool {name!r} is not in the attenuated grant; it cannot be given a "
                    "budget or argument constraints."
                )
        policies: dict[str, ToolPolicy] = {}
        for name in sorted(keep):
            policy = self.tools[name]
            if name in budgets:
                if budgets[name] > policy.max_calls:
                    raise GrantWideningError(
                        f"budget {budgets[name]} for tool {name!r} exceeds the grant's {policy.max_calls}; "
                        "an attenuation can only lower it."
                    )
                policy = replace(policy, max_calls=budgets[name])
            if name in extra_checks:
                added = compile_args(extra_checks[name], self.params, f"attenuation.{name}")
                policy = replace(policy, checks=policy.checks + added)
            policies[name] = policy
        removed = self.removed | (set(self.tools) - keep)
        return replace(
            self, expires_at=new_expiry, tools=MappingProxyType(policies), max_calls=new_total, removed=removed
        )
