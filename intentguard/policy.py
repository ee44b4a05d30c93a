"""One tool as a grant allows it: privilege, budget, provenance rules and compiled argument checks.

:class:`ToolPolicy` is what :class:`~intentguard.grant.Grant` holds per tool. Its argument checks
run twice over: a straight-line function generated once per policy (``accepts``, the fast path)
and :meth:`ToolPolicy.argument_reasons`, which spells out every problem; a property test keeps
them in agreement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from intentguard._codegen import generate_accepts
from intentguard.constraints import Constraint, compile_arg, describe
from intentguard.decision import Reason, ReasonCode

if TYPE_CHECKING:
    from intentguard.schema import ArgSpec

__all__ = ["ArgChecks", "ToolPolicy", "compile_args", "pinned"]

ArgChecks = tuple[tuple[str, Constraint], ...]


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    """One tool as the grant allows it: privilege, budget, and compiled argument checks."""

    name: str
    high_privilege: bool
    max_calls: int
    allow_unknown: bool
    names: frozenset[str]
    required: frozenset[str]
    checks: ArgChecks
    deny: tuple[tuple[str, ArgChecks], ...] = ()
    sources: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Where each declared argument's value may come from (see ``ArgSpec.sources``)."""
    default_sources: frozenset[str] = frozenset({"any"})
    """Where an undeclared argument's value may come from (tools that allow unknown arguments)."""
    pinned: frozenset[str] = frozenset()
    """Arguments held by ``equals``/``one_of`` to values the developer or the parameters name:
    once the constraints pass they carry only trusted values, so provenance skips them."""
    confirm: str = "tainted"
    record: bool = False
    free_text: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()
    """The words of the tool's name, matched against the verbs of untrusted instructions."""
    tenant_args: frozenset[str] = frozenset()
    """Arguments whose value names the tenant that owns the resource (``tenant: true``)."""
    feature: str | None = None
    """The plan feature the tool needs (see :class:`~intentguard.tenancy.TenantContext`)."""
    traced_args: tuple[tuple[str, frozenset[str]], ...] = field(init=False, repr=False, compare=False)
    """The declared arguments that need a lookup, with the sources each accepts."""
    traced_unknown: bool = field(init=False, repr=False, compare=False)
    """Whether undeclared arguments (allowed by ``unknown_arguments: allow``) need a lookup."""
    plain: bool = field(init=False, repr=False, compare=False)
    """Neither gated by ``confirm`` nor taking undeclared arguments that need a lookup: stages 4
    and 6 can only object through a traced argument or the session's ledger state."""
    _accepts: Callable[[Mapping[str, Any]], bool] = field(init=False, repr=False, compare=False)
    _source: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        traced_args = tuple(
            (arg, allowed) for arg, allowed in self.sources.items() if arg not in self.pinned and "any" not in allowed
        )
        traced_unknown = self.allow_unknown and "any" not in self.default_sources
        object.__setattr__(self, "traced_args", traced_args)
        object.__setattr__(self, "traced_unknown", traced_unknown)
        gated = self.high_privilege and self.confirm != "tainted"
        object.__setattr__(self, "plain", not traced_unknown and not gated)
        accepts, source = generate_accepts(self)
        object.__setattr__(self, "_accepts", accepts)
        object.__setattr__(self, "_source", source)

    def accepts(self, args: Mapping[str, Any]) -> bool:
        """The fast path: True when no argument reason applies (see :meth:`argument_reasons`).

        Runs a function generated once for this policy (its source is ``_source``).
        """
        return self._accepts(args)

    def argument_reasons(self, args: Mapping[str, Any]) -> list[Reason]:
        """Every argument problem of a call to this tool (missing, unknown, constraint, deny rule)."""
        reasons: list[Reason] = []
        name = self.name
        keys = args.keys()
        if not self.required <= keys:
            for arg in sorted(self.required - keys):
                reasons.append(
                    Reason(ReasonCode.MISSING_ARGUMENT, f"argument {arg!r} of tool {name!r} is required but missing.")
                )
        if not self.allow_unknown and not keys <= self.names:
            unknown = sorted(map(str, keys - self.names))
            reasons.append(
                Reason(
                    ReasonCode.UNKNOWN_ARGUMENT,
                    f"argument(s) {', '.join(map(repr, unknown))} of tool {name!r} are not declared; "
                    "only declared arguments may be passed.",
                )
            )
        for arg, constraint in self.checks:
            if arg in args:
                value = args[arg]
                problem = constraint.explain(value)
                if problem is not None:
                    reasons.append(
                        Reason(
                            ReasonCode.ARG_CONSTRAINT,
                            f"argument {arg!r} of tool {name!r} is {describe(value)} but {problem}.",
                        )
                    )
        for sentence, conditions in self.deny:
            if all(arg in args and constraint.test(args[arg]) for arg, constraint in conditions):
                reasons.append(Reason(ReasonCode.DENY_RULE, sentence))
        return reasons


def pinned(spec: ArgSpec) -> bool:
    """Held to values the developer or the parameters name: ``equals``/``one_of``, or an array
    every item of which is so held."""
    return spec.equals is not None or spec.one_of is not None or (spec.each is not None and pinned(spec.each))


def compile_args(
    specs: Mapping[str, ArgSpec], params: Mapping[str, Any], where: str, *, keep_unconstrained: bool = False
) -> ArgChecks:
    """Compile argument specs; ``keep_unconstrained`` keeps empty specs as presence-only checks
    (a deny rule's condition on an argument holds only when that argument is present)."""
    compiled = []
    for arg, spec in specs.items():
        check = compile_arg(spec, params, where=f"{where}.args.{arg}")
        if check is None and keep_unconstrained:
            check = Constraint(())
        if check is not None:
            compiled.append((arg, check))
    return tuple(compiled)
