"""The checks an intent schema must pass beyond its shape: meaning, references, consistency.

The meta-schema says what a document looks like; these checks say whether it makes sense:
parameter references point at required parameters, regular expressions compile, bounds are
ordered, constraints fit their types, decay and source rules name real tools, and every
``$ref`` in the parameters schema is local and resolves (nothing is ever fetched).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from intentguard.errors import Problem
from intentguard.schema import ArgSpec, ArgType, IntentSchema, ParamRef

__all__ = ["semantic_problems"]

_PARAMS_URI = "urn:intentguard:parameters"
_NUMERIC = {"minimum", "maximum"}
_STRING_ONLY = {"pattern", "prefix"}


def semantic_problems(schema: IntentSchema, source: str) -> Iterator[Problem]:
    """Every problem of meaning in a schema that already has the right shape."""
    params = schema.parameters
    try:
        Draft202012Validator.check_schema(params)
    except (RecursionError, OverflowError) as exc:
        yield Problem(
            source,
            "$.parameters",
            f"cannot be checked: {type(exc).__name__}",
            "simplify the parameters schema (nesting, regular expressions)",
        )
        return
    except SchemaError as exc:
        path = "$.parameters" + exc.json_path[1:]
        yield Problem(source, path, f"not a valid JSON Schema: {exc.message}", "fix the parameters schema")
        return
    yield from _reference_problems(params, source)
    if params.get("type") != "object":
        yield Problem(
            source, "$.parameters.type", "parameters must be a JSON Schema of type 'object'", "set type: object"
        )
    declared = set(params.get("properties", {}))
    required = set(params.get("required", []))
    for name, tool in schema.tools.items():
        for arg, spec in tool.args.items():
            yield from _arg_problems(spec, f"$.tools.{name}.args.{arg}", source, declared, required)
            for index, allowed in enumerate(spec.sources or ()):
                kind, _, target = allowed.partition(":")
                if kind == "tool" and target not in schema.tools:
                    yield Problem(
                        source,
                        f"$.tools.{name}.args.{arg}.sources[{index}]",
                        f"tool {target!r} is not declared in tools",
                        "name a declared tool",
                    )
                elif kind == "param" and target not in declared:
                    yield Problem(
                        source,
                        f"$.tools.{name}.args.{arg}.sources[{index}]",
                        f"parameter {target!r} is not declared",
                        "declare it under parameters.properties",
                    )
    for index, rule in enumerate(schema.deny):
        for arg, spec in rule.args.items():
            yield from _arg_problems(spec, f"$.deny[{index}].args.{arg}", source, declared, required)
    ttl = schema.ttl
    for index, decay in enumerate(schema.decay):
        where = f"$.decay[{index}]"
        if decay.drop is None and not decay.tools:
            yield Problem(source, where, "a decay rule must drop a privilege or name tools", "add 'drop' or 'tools'")
        for dropped in decay.tools:
            if dropped not in schema.tools:
                yield Problem(
                    source, f"{where}.tools", f"tool {dropped!r} is not declared in tools", "name a declared tool"
                )
        if decay.after >= ttl:
            yield Problem(
                source,
                f"{where}.after",
                f"{decay.after} is not shorter than the ttl {ttl}, so it never applies",
                "use a shorter 'after' or remove the rule",
            )


def _reference_problems(params: dict[str, Any], source: str) -> Iterator[Problem]:
    """Every ``$ref`` in the parameters schema must be local and resolve (no fetching, no surprises)."""
    resource = DRAFT202012.create_resource(params)
    resolver = Registry().with_resource(_PARAMS_URI, resource).resolver(base_uri=_PARAMS_URI)
    for path, ref in _refs(params, "$.parameters"):
        if not isinstance(ref, str) or not ref.startswith("#"):
            yield Problem(source, path, f"reference {ref!r} is not local", "use a local reference such as '#/$defs/x'")
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            yield Problem(source, path, f"reference {ref!r} does not resolve", "define what it points to in $defs")


def _refs(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield f"{path}.$ref", value
            else:
                yield from _refs(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{path}[{index}]")


def _arg_problems(spec: ArgSpec, where: str, source: str, declared: set[str], required: set[str]) -> Iterator[Problem]:
    for field in ("equals", "one_of", "minimum", "maximum", "prefix"):
        value = getattr(spec, field)
        if isinstance(value, ParamRef):
            if value.param not in declared:
                yield Problem(
                    source,
                    f"{where}.{field}.param",
                    f"parameter {value.param!r} is not declared",
                    "declare it under parameters.properties",
                )
            elif value.param not in required:
                yield Problem(
                    source,
                    f"{where}.{field}.param",
                    f"parameter {value.param!r} is not required",
                    "list it under parameters.required: a constraint cannot rest on a missing value",
                )
    if spec.pattern is not None:
        try:
            re.compile(spec.pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            yield Problem(
                source,
                f"{where}.pattern",
                f"invalid regular expression {spec.pattern!r}: {exc}",
                "fix the pattern (Python re syntax)",
            )
    kind = spec.type
    given = {field for field in _NUMERIC | _STRING_ONLY | {"each"} if getattr(spec, field) is not None}
    if kind is not None:
        if given & _NUMERIC and kind not in (ArgType.NUMBER, ArgType.INTEGER):
            yield Problem(
                source,
                where,
                f"minimum/maximum cannot apply to type {kind.value!r}",
                "remove them or use type number or integer",
            )
        if given & _STRING_ONLY and kind is not ArgType.STRING:
            yield Problem(
                source, where, f"pattern/prefix cannot apply to type {kind.value!r}", "remove them or use type string"
            )
        if "each" in given and kind is not ArgType.ARRAY:
            yield Problem(source, f"{where}.each", f"'each' cannot apply to type {kind.value!r}", "use type array")
    lo, hi = spec.minimum, spec.maximum
    if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
        yield Problem(source, where, f"minimum {lo!r} is greater than maximum {hi!r}", "swap or fix them")
    if spec.each is not None:
        yield from _arg_problems(spec.each, f"{where}.each", source, declared, required)
