"""An intent: one schema plus the parameters supplied when the agent was spawned."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator

from intentguard.errors import InvalidParameters, Problem
from intentguard.schema import IntentSchema

__all__ = ["Intent"]


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
        try:
            # A JSON round trip both copies and proves the values are plain JSON data.
            plain = json.loads(json.dumps(dict(params), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidParameters(
                [Problem(source, "$", f"not JSON data: {exc}", "pass strings, numbers, booleans, lists and dicts only")]
            ) from exc
        validator = Draft202012Validator(schema.parameters)
        problems = [
            Problem(source, error.json_path, error.message, "fix the value passed at spawn time")
            for error in sorted(validator.iter_errors(plain), key=lambda error: error.json_path)
        ]
        if problems:
            raise InvalidParameters(problems)
        return cls(schema, MappingProxyType(plain))
