"""An intent: one schema plus the parameters supplied when the agent was spawned."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry

from intentguard.constraints import describe
from intentguard.errors import InvalidParameters, Problem
from intentguard.schema import IntentSchema

__all__ = ["Intent"]


@functools.lru_cache(maxsize=256)
def _validator(parameters: str) -> Draft202012Validator:
    """One validator per distinct parameters schema (keyed by its canonical JSON), built once.
    An empty registry: a remote $ref is never fetched, it fails (closed) instead."""
    return Draft202012Validator(
        json.loads(parameters), format_checker=Draft202012Validator.FORMAT_CHECKER, registry=Registry()
    )


def _is_json(value: Any, depth: int = 0) -> bool:
    """Plain JSON data: strings, finite numbers, booleans, None, lists and string-keyed dicts."""
    if depth > 64:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_json(item, depth + 1) for key, item in value.items())
    return False


@dataclass(frozen=True, slots=True)
class Intent:
    """A declared task: the schema it follows and its validated, frozen parameters."""

    schema: IntentSchema
    params: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The schema's name, e.g. ``refund_request``."""
        return self.schema.name

    @classmethod
    def bind(cls, schema: IntentSchema, params: Mapping[str, Any] | None = None) -> Intent:
        """Validate ``params`` against the schema's ``parameters`` and freeze a copy of them.

        Raises :class:`InvalidParameters` naming every problem with its JSON path.
        """
        source = f"parameters of intent {schema.name!r}"
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InvalidParameters(
                [
                    Problem(
                        source,
                        "$",
                        f"expected a mapping, got {type(params).__name__}",
                        "pass a dict of parameter values",
                    )
                ]
            )
        problems = [
            Problem(
                source,
                f"$.{key}",
                f"{describe(value)} is not JSON data",
                "pass strings, numbers, booleans, lists and dicts only",
            )
            for key, value in params.items()
            if not _is_json(value)
        ]
        if problems:
            raise InvalidParameters(problems)
        # A JSON round trip copies the values, so later changes by the caller cannot reach the grant.
        plain = json.loads(json.dumps(dict(params), allow_nan=False))
        validator = _validator(json.dumps(schema.parameters, sort_keys=True))
        try:
            errors = sorted(validator.iter_errors(plain), key=lambda error: error.json_path)
        except Exception as exc:
            raise InvalidParameters(
                [
                    Problem(
                        source,
                        "$",
                        f"the parameters schema cannot be applied: {exc}",
                        "fix the intent schema's parameters",
                    )
                ]
            ) from exc
        problems = [
            Problem(source, error.json_path, error.message, "fix the value passed at spawn time") for error in errors
        ]
        if problems:
            raise InvalidParameters(problems)
        return cls(schema, MappingProxyType(plain))
