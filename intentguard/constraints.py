"""Argument constraints compiled once into small predicates.

A compiled check takes an argument value and returns ``None`` when the value is
acceptable, or a sentence saying what is wrong. Parameter references are resolved at
compile time, so a call pays for a few comparisons, never for a JSON Schema validation.

Types are strict, as in JSON Schema: ``True`` is not the integer ``1``, ``"5"`` is not a
number, NaN and infinity satisfy no numeric bound.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from intentguard.errors import InvalidParameters, Problem

if TYPE_CHECKING:
    from intentguard.schema import ArgSpec

__all__ = ["Check", "compile_arg", "describe"]

Check = Callable[[Any], str | None]
"""A compiled constraint: ``None`` when the value passes, else a sentence naming the failure."""

_SHOWN = 60


def describe(value: Any) -> str:
    """A short, bounded ``repr`` of a value for reason sentences."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _is_number(value: Any) -> bool:
    cls = value.__class__
    if cls is int:
        return True
    if cls is float:
        return math.isfinite(value)
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list | tuple),
    "object": lambda v: isinstance(v, Mapping),
    "null": lambda v: v is None,
}


def _resolve(value: Any, params: Mapping[str, Any], where: str) -> tuple[Any, str]:
    """Resolve a parameter reference; return the value and how to name it in sentences."""
    from intentguard.schema import ParamRef

    if isinstance(value, ParamRef):
        if value.param not in params:
            raise InvalidParameters([Problem("parameters", f"$.{value.param}", "missing", f"{where} refers to it")])
        resolved = params[value.param]
        return resolved, f"parameter {value.param} ({describe(resolved)})"
    return value, describe(value)


def _type_check(kind: str) -> Check:
    test = _TYPES[kind]
    article = "an" if kind[0] in "aeiou" else "a"

    def check(value: Any) -> str | None:
        return None if test(value) else f"must be {article} {kind}, got {type(value).__name__}"

    return check


def _equals(expected: Any, shown: str) -> Check:
    message = f"must equal {shown}"
    if expected is None or isinstance(expected, bool):

        def check(value: Any) -> str | None:
            return None if value is expected else message

    elif isinstance(expected, str):

        def check(value: Any) -> str | None:
            return None if value.__class__ is str and value == expected else message

    else:

        def check(value: Any) -> str | None:
            return None if _is_number(value) and value == expected else message

    return check


def _member(options: Sequence[Any], shown: str) -> Check:
    strings = frozenset(option for option in options if isinstance(option, str))
    numbers = frozenset(option for option in options if _is_number(option))
    flags = frozenset(option for option in options if isinstance(option, bool))
    allows_none = any(option is None for option in options)
    message = f"must be one of {shown}"

    def check(value: Any) -> str | None:
        if value.__class__ is str:
            return None if value in strings else message
        if isinstance(value, bool):
            return None if value in flags else message
        if _is_number(value):
            return None if value in numbers else message
        return None if value is None and allows_none else message

    return check


def _bound(limit: Any, shown: str, *, lower: bool) -> Check:
    if not _is_number(limit):
        raise InvalidParameters([Problem("parameters", "$", f"bound {shown} is not a finite number", "pass a number")])
    message = f"must be at least {shown}" if lower else f"must be at most {shown}"

    if lower:

        def check(value: Any) -> str | None:
            return None if _is_number(value) and value >= limit else message

    else:

        def check(value: Any) -> str | None:
            return None if _is_number(value) and value <= limit else message

    return check


def _pattern(pattern: str) -> Check:
    regex = re.compile(pattern)
    message = f"must match the pattern {pattern!r}"

    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and regex.fullmatch(value) is not None else message

    return check


def _max_length(limit: int) -> Check:
    message = f"must have at most {limit} characters or items"

    def check(value: Any) -> str | None:
        return None if isinstance(value, str | list | tuple) and len(value) <= limit else message

    return check


def _prefix(prefix: Any, shown: str) -> Check:
    if not isinstance(prefix, str):
        raise InvalidParameters([Problem("parameters", "$", f"prefix {shown} is not a string", "pass a string")])
    message = f"must start with {shown}"

    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and value.startswith(prefix) else message

    return check


def _each(item: Check) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list | tuple):
            return "must be an array"
        for index, element in enumerate(value):
            problem = item(element)
            if problem is not None:
                return f"item {index} {problem}"
        return None

    return check


def _all(checks: Sequence[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)

    def check(value: Any) -> str | None:
        for part in frozen:
            problem = part(value)
            if problem is not None:
                return problem
        return None

    return check


def compile_arg(spec: ArgSpec, params: Mapping[str, Any], *, where: str) -> Check | None:
    """Compile an argument spec into one check, or ``None`` when it constrains nothing.

    Cheap checks run first (type, length) so a pattern never sees an oversized value.
    """
    checks: list[Check] = []
    given = spec.model_fields_set
    if spec.type is not None:
        checks.append(_type_check(spec.type.value))
    if spec.max_length is not None:
        checks.append(_max_length(spec.max_length))
    if "equals" in given:
        checks.append(_equals(*_resolve(spec.equals, params, where)))
    if spec.one_of is not None:
        options, shown = _resolve(spec.one_of, params, where)
        if not isinstance(options, list | tuple):
            raise InvalidParameters([Problem("parameters", "$", f"{shown} is not a list", f"{where} needs a list")])
        checks.append(_member(options, shown))
    if spec.minimum is not None:
        checks.append(_bound(*_resolve(spec.minimum, params, where), lower=True))
    if spec.maximum is not None:
        checks.append(_bound(*_resolve(spec.maximum, params, where), lower=False))
    if spec.prefix is not None:
        checks.append(_prefix(*_resolve(spec.prefix, params, where)))
    if spec.pattern is not None:
        checks.append(_pattern(spec.pattern))
    if spec.each is not None:
        item = compile_arg(spec.each, params, where=f"{where}.each")
        if item is not None:
            checks.append(_each(item))
    return _all(checks) if checks else None
