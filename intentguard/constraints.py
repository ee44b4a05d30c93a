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
from typing import TYPE_CHECKING, Any, NamedTuple

from intentguard.errors import InvalidParameters, Problem

if TYPE_CHECKING:
    from intentguard.schema import ArgSpec

__all__ = ["Check", "Constraint", "Inline", "Part", "compile_arg", "describe"]

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


Test = Callable[[Any], bool]


class Inline(NamedTuple):
    """What a part's test does, for code that inlines it (see ``ToolPolicy``'s generated fast path).

    ``kind`` is ``"is"`` (``value is values[0]``), ``"str_eq"`` (``value.__class__ is str and
    value == values[0]``), ``"range"`` (``values`` is ``(lo, hi, integer)``: for a value whose
    class is exactly ``int``, or exactly ``float`` when not ``integer``, the test is
    ``lo <= value <= hi``; for any other class the part's own test decides), ``"class_is"`` (a
    value whose class is exactly ``values[0]`` passes; any other class, the part's test decides)
    or ``"str_len"`` (for an exact ``str`` the test is ``len(value) <= values[0]``; otherwise the
    part's test decides).
    """

    kind: str
    values: tuple[Any, ...]


class Part(NamedTuple):
    """One compiled constraint: the fast yes/no, the sentence when it fails, and how to inline it."""

    test: Test
    message: Callable[[Any], str]
    inline: Inline | None = None


def _fixed(message: str) -> Callable[[Any], str]:
    return lambda value: message


_EXACT = {"string": str, "boolean": bool, "object": dict, "array": list}


def _type_part(kind: str) -> Part:
    article = "an" if kind[0] in "aeiou" else "a"
    exact = _EXACT.get(kind)
    return Part(
        _TYPES[kind],
        lambda value: f"must be {article} {kind}, got {type(value).__name__}",
        Inline("class_is", (exact,)) if exact is not None else None,
    )


def _equals(expected: Any, shown: str) -> Part:
    test: Test
    inline: Inline | None = None
    if expected is None or isinstance(expected, bool):
        test = lambda value: value is expected  # noqa: E731
        inline = Inline("is", (expected,))
    elif isinstance(expected, str):
        test = lambda value: value.__class__ is str and value == expected  # noqa: E731
        inline = Inline("str_eq", (expected,))
    else:
        test = lambda value: _is_number(value) and value == expected  # noqa: E731
    return Part(test, _fixed(f"must equal {shown}"), inline)


def _member(options: Sequence[Any], shown: str) -> Part:
    strings = frozenset(option for option in options if isinstance(option, str))
    numbers = frozenset(option for option in options if _is_number(option))
    flags = frozenset(option for option in options if isinstance(option, bool))
    allows_none = any(option is None for option in options)

    def test(value: Any) -> bool:
        if value.__class__ is str:
            return value in strings
        if isinstance(value, bool):
            return value in flags
        if _is_number(value):
            return value in numbers
        return value is None and allows_none

    return Part(test, _fixed(f"must be one of {shown}"))


def _number(value: Any, what: str, where: str) -> float:
    if not _is_number(value):
        raise InvalidParameters([Problem("parameters", "$", f"{what} is not a finite number", f"{where} needs one")])
    return float(value)


def _range(kind: str | None, low: tuple[Any, str] | None, high: tuple[Any, str] | None, where: str) -> Part:
    """Type, minimum and maximum of a number merged into one test (one call per value)."""
    lo = -math.inf if low is None else _number(low[0], low[1], where)
    hi = math.inf if high is None else _number(high[0], high[1], where)
    integer = kind == "integer"

    def test(value: Any) -> bool:
        cls = value.__class__
        inside: bool
        if cls is int:
            inside = lo <= value <= hi
            return inside
        if cls is float and not integer:
            # NaN fails both comparisons; the finiteness check stops infinity when a bound is open.
            inside = lo <= value <= hi and math.isfinite(value)
            return inside
        inside = _is_number(value) and (not integer or isinstance(value, int)) and lo <= value <= hi
        return inside

    def message(value: Any) -> str:
        wanted = "an integer" if integer else "a number"
        if not _is_number(value) or (integer and not isinstance(value, int)):
            return f"must be {wanted}, got {type(value).__name__}"
        if value < lo:
            return f"must be at least {low[1] if low else lo}"
        return f"must be at most {high[1] if high else hi}"

    return Part(test, message, Inline("range", (lo, hi, integer)))


def _pattern(pattern: str) -> Part:
    regex = re.compile(pattern)
    return Part(
        lambda value: isinstance(value, str) and regex.fullmatch(value) is not None,
        _fixed(f"must match the pattern {pattern!r}"),
    )


def _max_length(limit: int) -> Part:
    return Part(
        lambda value: isinstance(value, str | list | tuple) and len(value) <= limit,
        _fixed(f"must have at most {limit} characters or items"),
        Inline("str_len", (limit,)),
    )


def _prefix(prefix: Any, shown: str) -> Part:
    if not isinstance(prefix, str):
        raise InvalidParameters([Problem("parameters", "$", f"prefix {shown} is not a string", "pass a string")])
    return Part(lambda value: isinstance(value, str) and value.startswith(prefix), _fixed(f"must start with {shown}"))


def _each(item: Constraint) -> Part:
    item_test = item.test

    def test(value: Any) -> bool:
        return isinstance(value, list | tuple) and all(item_test(element) for element in value)

    def message(value: Any) -> str:
        if not isinstance(value, list | tuple):
            return "must be an array"
        for index, element in enumerate(value):
            problem = item.explain(element)
            if problem is not None:
                return f"item {index} {problem}"
        return "has an item that fails its constraint"  # pragma: no cover - only reached if test and explain disagree

    return Part(test, message)


def _always(value: Any) -> bool:
    return True


class Constraint:
    """A compiled argument constraint: ``test`` is the fast yes/no, ``explain`` says why not."""

    __slots__ = ("parts", "test")

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts: tuple[Part, ...] = tuple(Part(*part) for part in parts)
        tests = tuple(part.test for part in self.parts)
        test: Test
        if not tests:
            test = _always
        elif len(tests) == 1:
            test = tests[0]
        elif len(tests) == 2:
            first, second = tests
            test = lambda value: first(value) and second(value)  # noqa: E731
        else:
            test = lambda value: all(part(value) for part in tests)  # noqa: E731
        self.test = test

    def explain(self, value: Any) -> str | None:
        """``None`` when the value passes, else a sentence naming the first constraint it breaks."""
        for test, message, _ in self.parts:
            if not test(value):
                return message(value)
        return None

    __call__ = explain


def compile_arg(spec: ArgSpec, params: Mapping[str, Any], *, where: str) -> Constraint | None:
    """Compile an argument spec into one constraint, or ``None`` when it constrains nothing.

    Cheap tests run first (type, length) so a pattern never sees an oversized value.
    """
    parts: list[Part] = []
    kind = spec.type.value if spec.type is not None else None
    if kind in ("number", "integer") or spec.minimum is not None or spec.maximum is not None:
        low = None if spec.minimum is None else _resolve(spec.minimum, params, where)
        high = None if spec.maximum is None else _resolve(spec.maximum, params, where)
        parts.append(_range(kind, low, high, where))
    elif kind is not None:
        parts.append(_type_part(kind))
    if spec.max_length is not None:
        parts.append(_max_length(spec.max_length))
    if spec.equals is not None:
        parts.append(_equals(*_resolve(spec.equals, params, where)))
    if spec.one_of is not None:
        options, shown = _resolve(spec.one_of, params, where)
        if not isinstance(options, list | tuple):
            raise InvalidParameters([Problem("parameters", "$", f"{shown} is not a list", f"{where} needs a list")])
        parts.append(_member(options, shown))
    if spec.prefix is not None:
        parts.append(_prefix(*_resolve(spec.prefix, params, where)))
    if spec.pattern is not None:
        parts.append(_pattern(spec.pattern))
    if spec.each is not None:
        item = compile_arg(spec.each, params, where=f"{where}.each")
        parts.append(_each(item if item is not None else Constraint(())))
    return Constraint(parts) if parts else None
