"""Generating the fast ``accepts(args)`` of a tool policy: straight-line Python, built once.

The generated function must answer exactly ``not policy.argument_reasons(args)``; a
Hypothesis property (tests/test_fastpath.py) holds it to that. Only generated identifiers
appear in the source: argument names, bounds and expected values, all schema-controlled,
are passed in through the namespace, never written into the code.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from types import CodeType
from typing import TYPE_CHECKING, Any

from intentguard.constraints import Part

if TYPE_CHECKING:
    from intentguard.policy import ToolPolicy

__all__ = ["generate_accepts"]


def generate_accepts(policy: ToolPolicy) -> tuple[Callable[[Mapping[str, Any]], bool], str]:
    """The generated ``accepts`` function for ``policy`` and its source (kept for debugging)."""
    source, namespace = _accepts_source(policy)
    exec(_compiled(source), namespace)  # noqa: S102 - generated identifiers only, see _accepts_source
    accepts: Callable[[Mapping[str, Any]], bool] = namespace["accepts"]
    return accepts, source


def _accepts_source(policy: ToolPolicy) -> tuple[str, dict[str, Any]]:
    """Generate the source of ``accepts(args)`` for ``policy``, and the namespace it runs in.

    Straight-line code, one block per argument, with the common constraint kinds inlined
    (see :class:`~intentguard.constraints.Inline`) and every other part calling its own test.
    Only generated identifiers appear in the source: argument names, bounds and expected
    values, all schema-controlled, are passed in through the namespace, never written into it.
    The result equals ``not policy.argument_reasons(args)`` for every ``args``.
    """
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "len": len,
        "int": int,
        "float": float,
        "str": str,
        "isfinite": math.isfinite,
    }
    namespace["M"] = object()  # the absent-argument sentinel: no caller can pass this object
    lines = ["def accepts(args):"]
    counter = iter(range(1 << 30))

    def bind(value: Any, prefix: str) -> str:
        identifier = f"{prefix}{next(counter)}"
        namespace[identifier] = value
        return identifier

    by_arg: dict[str, list[Part]] = {}
    for arg, constraint in policy.checks:
        by_arg.setdefault(arg, []).extend(constraint.parts)
    # Declared arguments first (sorted, so the source is deterministic), then arguments that
    # only an attenuation constrains (they are checked when present but never counted as declared).
    order = sorted(policy.names) + [arg for arg in by_arg if arg not in policy.names]
    count = not policy.allow_unknown
    optional_declared = policy.names - policy.required
    if count and not optional_declared:
        # Every declared argument is required: the call must carry exactly that many.
        lines += [f"    if len(args) != {len(policy.required)}:", "        return False"]
    elif count:
        lines.append(f"    n = {len(policy.required)}")
    for arg in order:
        parts = by_arg.get(arg, [])
        required = arg in policy.required
        counted = count and arg in optional_declared
        if not (parts or required or counted):
            continue
        key = bind(arg, "k")
        lines.append(f"    v = args.get({key}, M)")
        if required:
            # A required argument is always present past this point, so it is counted up front.
            lines += ["    if v is M:", "        return False"]
            lines += [line[4:] for part in parts for line in _part_lines(part, bind)]
        else:
            lines.append("    if v is not M:")
            if counted:
                lines.append("        n += 1")
            lines += [line for part in parts for line in _part_lines(part, bind)]
            if not parts and not counted:
                lines.append("        pass")
    if count and optional_declared:
        lines += ["    if n != len(args):", "        return False"]
    for _, conditions in policy.deny:
        terms = []
        for arg, constraint in conditions:
            key = bind(arg, "k")
            terms.append(f"{key} in args")
            if constraint.parts:
                terms.append(f"{bind(constraint.test, 't')}(args[{key}])")
        lines.append(f"    if {' and '.join(terms) or 'True'}:")
        lines.append("        return False")
    lines.append("    return True")
    return "\n".join(lines) + "\n", namespace


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> CodeType:
    """Compile generated source once per shape: policies that differ only in values share it."""
    return compile(source, "<intentguard generated accepts>", "exec")


def _part_lines(part: Part, bind: Callable[[Any, str], str]) -> list[str]:
    """Statements that ``return False`` from the generated ``accepts`` when ``v`` fails ``part``."""
    inline = part.inline
    if inline is not None and inline.kind == "is":
        return [f"        if v is not {bind(inline.values[0], 'e')}:", "            return False"]
    if inline is not None and inline.kind == "str_eq":
        expected = bind(inline.values[0], "e")
        return [f"        if not (v.__class__ is str and v == {expected}):", "            return False"]
    test = bind(part.test, "t")
    if inline is not None and inline.kind == "class_is":
        return [
            f"        if v.__class__ is not {bind(inline.values[0], 'c')} and not {test}(v):",
            "            return False",
        ]
    if inline is not None and inline.kind == "str_len":
        return [
            "        if v.__class__ is str:",
            f"            if len(v) > {bind(inline.values[0], 'n')}:",
            "                return False",
            f"        elif not {test}(v):",
            "            return False",
        ]
    if inline is not None and inline.kind == "range":
        low, high, integer = inline.values
        # For an exact int, ``low <= v`` is ``ceil(low) <= v`` and ``v <= high`` is ``v <= floor(high)``
        # (Python compares ints and floats exactly), and an infinite bound always holds: int-to-int
        # comparisons are cheaper than mixed ones.
        int_bounds = []
        if math.isfinite(low):
            int_bounds.append(f"{bind(math.ceil(low), 'lo')} <= v")
        if math.isfinite(high):
            int_bounds.append(f"v <= {bind(math.floor(high), 'hi')}")
        lines = ["        c = v.__class__", "        if c is int:"]
        lines += (
            [f"            if not ({' and '.join(int_bounds)}):", "                return False"]
            if int_bounds
            else ["            pass"]
        )
        if not integer:
            lines += [
                "        elif c is float:",
                f"            if not ({bind(low, 'lo')} <= v <= {bind(high, 'hi')} and isfinite(v)):",
                "                return False",
            ]
        return [*lines, f"        elif not {test}(v):", "            return False"]
    return [f"        if not {test}(v):", "            return False"]
