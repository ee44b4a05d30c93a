"""Reading intent schema files: size limit, strict YAML/JSON, meta-schema, semantic checks.

Every problem is collected before anything is raised, so one run of
``intentguard validate`` shows the author everything to fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from pydantic import ValidationError as PydanticValidationError

from intentguard.errors import InvalidIntentSchema, Problem
from intentguard.schema import IntentSchema
from intentguard.semantics import semantic_problems

__all__ = ["MAX_SCHEMA_BYTES", "load_schema", "load_schemas", "meta_schema", "parse_schema"]

MAX_SCHEMA_BYTES = 1 << 20
"""Intent schema files larger than this (1 MiB) are refused unread."""

SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@cache
def meta_schema() -> dict[str, Any]:
    """The shipped JSON Schema (2020-12) that every intent schema document must satisfy."""
    text = resources.files("intentguard").joinpath("meta/intent-schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _meta_validator() -> Draft202012Validator:
    return Draft202012Validator(meta_schema())


def load_schema(path: str | Path) -> IntentSchema:
    """Load one intent schema file (``.yaml``, ``.yml`` or ``.json``).

    Raises :class:`InvalidIntentSchema` listing every problem found.
    """
    path = Path(path)
    source = str(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidIntentSchema(
            [Problem(source, "$", f"unknown file type {path.suffix!r}", "name it .yaml, .yml or .json")]
        )
    if path.exists() and not path.is_file():
        raise InvalidIntentSchema([Problem(source, "$", "not a regular file", "check the path")])
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SCHEMA_BYTES + 1)
    except OSError as exc:
        raise InvalidIntentSchema(
            [Problem(source, "$", f"cannot read file: {exc.strerror}", "check the path")]
        ) from exc
    if len(raw) > MAX_SCHEMA_BYTES:
        raise InvalidIntentSchema(
            [Problem(source, "$", f"file is larger than {MAX_SCHEMA_BYTES} bytes", "an intent schema is a few KiB")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidIntentSchema(
            [Problem(source, "$", f"not UTF-8 (byte {exc.start})", "save the file as UTF-8")]
        ) from exc
    return parse_schema(_parse_text(text, kind, source), source=source)


def load_schemas(paths: Iterable[str | Path]) -> dict[str, IntentSchema]:
    """Load schema files and every schema file in the given directories, keyed by name.

    All files are read before anything is raised; two schemas with one name are an error.
    """
    schemas: dict[str, IntentSchema] = {}
    origins: dict[str, str] = {}
    problems: list[Problem] = []
    for path in _expand(paths):
        try:
            schema = load_schema(path)
        except InvalidIntentSchema as exc:
            problems.extend(exc.problems)
            continue
        if schema.name in schemas:
            problems.append(
                Problem(
                    str(path),
                    "$.name",
                    f"intent {schema.name!r} is also defined in {origins[schema.name]}",
                    "give each schema its own name",
                )
            )
            continue
        schemas[schema.name] = schema
        origins[schema.name] = str(path)
    if problems:
        raise InvalidIntentSchema(problems)
    return schemas


def parse_schema(document: Any, *, source: str = "<document>") -> IntentSchema:
    """Validate an already-parsed document (a mapping) and build the :class:`IntentSchema`."""
    problems = [
        Problem(source, path, f"key {key!r} is not a string", "quote the key") for path, key in _odd_keys(document)
    ]
    if problems:
        raise InvalidIntentSchema(problems)
    try:
        problems = [_problem(source, error) for error in _meta_validator().iter_errors(document)]
    except RecursionError as exc:
        raise InvalidIntentSchema(
            [Problem(source, "$", "the document is nested too deeply", "flatten the nested 'each' constraints")]
        ) from exc
    if problems:
        raise InvalidIntentSchema(sorted(problems, key=lambda problem: problem.path))
    try:
        schema = IntentSchema.model_validate(document)
    except PydanticValidationError as exc:
        problems_by_path: dict[str, Problem] = {}
        for error in exc.errors():
            path = _json_path(document, error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems_by_path.setdefault(path, Problem(source, path, message, "fix the value"))
        raise InvalidIntentSchema(problems_by_path.values()) from exc
    problems = list(semantic_problems(schema, source))
    if problems:
        raise InvalidIntentSchema(problems)
    return schema


def _json_path(document: Any, loc: tuple[int | str, ...]) -> str:
    """The JSON path of a pydantic error location, dropping pydantic's own union-member labels."""
    node, path = document, "$"
    for part in loc:
        if isinstance(node, dict) and part in node:
            path += f".{part}"
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path += f"[{part}]"
        else:
            break
        node = node[part]
    return path


def _expand(paths: Iterable[str | Path]) -> Iterator[Path]:
    for item in paths:
        path = Path(item)
        if path.is_dir():
            yield from sorted(child for child in path.iterdir() if child.suffix.lower() in SUFFIXES)
        else:
            yield path


class _StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (no billion-laughs expansion) and duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError("while reading", None, "aliases (*name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.MarkedYAMLError(
                    "while reading a mapping",
                    node.start_mark,
                    f"key {key!r} is not a string (YAML reads on/off/yes/no as booleans); quote it",
                    key_node.start_mark,
                )
            if key in seen:
                raise yaml.MarkedYAMLError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_text(text: str, kind: str, source: str) -> Any:
    try:
        if kind == "json":
            return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
        return yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "$"
        raise InvalidIntentSchema([Problem(source, where, f"invalid YAML: {exc.problem}", "fix the syntax")]) from exc
    except yaml.YAMLError as exc:
        raise InvalidIntentSchema([Problem(source, "$", f"invalid YAML: {exc}", "fix the syntax")]) from exc
    except json.JSONDecodeError as exc:
        raise InvalidIntentSchema(
            [Problem(source, f"line {exc.lineno}, column {exc.colno}", f"invalid JSON: {exc.msg}", "fix the syntax")]
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidIntentSchema([Problem(source, "$", f"cannot parse: {exc}", "fix the document")]) from exc


_HINTS = {
    "required": "add the missing key",
    "additionalProperties": "remove the key or check its spelling",
    "type": "use a value of the type named",
    "pattern": "use only the characters the pattern allows",
    "enum": "use one of the values listed",
    "minimum": "use a larger value",
    "exclusiveMinimum": "use a larger value",
    "maximum": "use a smaller value",
    "minProperties": "declare at least one entry",
    "minLength": "give a non-empty value",
}


def _problem(source: str, error: ValidationError) -> Problem:
    detail = error
    if error.context:
        # For "one of these shapes": the branch whose type fits says what is really wrong;
        # "is not of type" from the other branches only misleads.
        fitting = [e for e in error.context if e.validator != "type"]
        detail = best_match(fitting or error.context)
    path = detail.json_path if error.context else error.json_path
    message = detail.message
    if len(message) > 300:
        message = message[:300] + "..."
    return Problem(source, path, message, _HINTS.get(str(detail.validator), "see docs/intent-schema.md"))


def _odd_keys(node: Any, path: str = "$", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Non-string mapping keys (a Python caller's dict, or YAML's `on:`): JSON has none."""
    if depth > 200:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                yield path, key
            else:
                yield from _odd_keys(value, f"{path}.{key}", depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _odd_keys(value, f"{path}[{index}]", depth + 1)
