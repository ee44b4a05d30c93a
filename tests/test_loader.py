"""Loading intent schemas: bad input is an InvalidIntentSchema naming every problem, never a crash."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from intentguard.errors import InvalidIntentSchema, InvalidParameters, Problem
from intentguard.intent import Intent
from intentguard.loader import MAX_SCHEMA_BYTES, load_schema, load_schemas, meta_schema, parse_schema
from intentguard.schema import IntentSchema, generate_meta_schema

ROOT = Path(__file__).resolve().parent.parent
REFUND = ROOT / "intent_schemas" / "refund_request.yaml"
REFUND_PARAMS = {"order_id": "A123", "customer_email": "ann@example.com", "max_refund": 50}

BASE: dict[str, Any] = {
    "name": "probe",
    "version": "1.0",
    "description": "A probe schema.",
    "ttl": 900,
    "tools": {"lookup": {"max_calls": 1}},
}


def doc(**changes: Any) -> dict[str, Any]:
    """A copy of BASE with top-level keys replaced."""
    result = copy.deepcopy(BASE)
    result.update(changes)
    return result


def with_arg(spec: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """BASE whose one tool has one argument `x` with the given spec."""
    return doc(tools={"lookup": {"max_calls": 1, "args": {"x": spec}}}, **changes)


def problems(document: Any) -> tuple[Problem, ...]:
    """The problems parse_schema reports for a document; fails the test if it is accepted."""
    with pytest.raises(InvalidIntentSchema) as info:
        parse_schema(document)
    return well_formed(info.value, "<document>")


def file_problems(path: Path) -> tuple[Problem, ...]:
    """The problems load_schema reports for a file; fails the test if it is accepted."""
    with pytest.raises(InvalidIntentSchema) as info:
        load_schema(path)
    return well_formed(info.value, str(path))


def well_formed(error: InvalidIntentSchema, source: str) -> tuple[Problem, ...]:
    """Every problem names its source, a JSON path (or a line), a message and a hint."""
    assert error.problems
    for problem in error.problems:
        assert problem.source == source
        assert problem.path.startswith(("$", "line "))
        assert problem.message
        assert problem.hint
        assert str(problem) in str(error)
    return error.problems


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """Write text (as UTF-8) or bytes to a file in tmp_path."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- what loads ---------------------------------------------------------------------------


def test_stock_refund_schema_loads() -> None:
    """The shipped refund schema loads into an IntentSchema with its four tools and a 15-minute ttl."""
    schema = load_schema(REFUND)
    assert schema.name == "refund_request"
    assert schema.tool_names() == {"lookup_order", "search_kb", "issue_refund", "send_email"}
    assert schema.ttl == timedelta(minutes=15)


def test_yaml_and_json_files_load_alike(tmp_path: Path) -> None:
    """The same document loads identically from .yaml, .yml, .json and an upper-case .YAML suffix."""
    loaded = [
        load_schema(write(tmp_path, "a.yaml", yaml.safe_dump(BASE))),
        load_schema(write(tmp_path, "b.yml", yaml.safe_dump(BASE))),
        load_schema(write(tmp_path, "c.json", json.dumps(BASE))),
        load_schema(write(tmp_path, "d.YAML", yaml.safe_dump(BASE))),
    ]
    assert all(schema == loaded[0] for schema in loaded)


# --- syntax -------------------------------------------------------------------------------


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    """A YAML syntax error is one problem giving the line and column of the error."""
    path = write(tmp_path, "s.yaml", "name: probe\ntools:\n  lookup: {max_calls: 1\nttl: 900\n")
    (problem,) = file_problems(path)
    assert problem.path == "line 4, column 4"
    assert problem.message.startswith("invalid YAML: ")
    assert problem.hint == "fix the syntax"


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    """A JSON syntax error (a trailing comma) is one problem giving the line and column."""
    path = write(tmp_path, "s.json", '{"name": "probe",\n "ttl": 900,}\n')
    (problem,) = file_problems(path)
    assert problem.path == "line 2, column 13"
    assert problem.message.startswith("invalid JSON: ")


def test_yaml_aliases_are_refused_before_expansion(tmp_path: Path) -> None:
    """A billion-laughs document is refused at its first alias, quickly, with the alias's position."""
    rows = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    path = write(tmp_path, "laughs.yaml", "\n".join(rows) + "\n")
    started = time.perf_counter()
    (problem,) = file_problems(path)
    assert time.perf_counter() - started < 1.0
    assert problem.path == "line 2, column 8"
    assert "aliases (*name) are not allowed" in problem.message


def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    """A YAML tag that would build a Python object is a syntax problem, never executed."""
    path = write(tmp_path, "tag.yaml", "name: !!python/object/apply:os.getcwd []\n")
    (problem,) = file_problems(path)
    assert problem.path.startswith("line 1, ")
    assert "could not determine a constructor" in problem.message


@pytest.mark.parametrize(
    ("name", "text", "where", "key"),
    [
        ("top.yaml", "name: probe\nname: other\n", "line 2, column 1", "'name'"),
        ("nested.yaml", "tools:\n  a: {max_calls: 1, max_calls: 2}\n", "line 2, column 21", "'max_calls'"),
        ("top.json", '{"name": "probe", "name": "other"}', "$", "'name'"),
        ("nested.json", '{"tools": {"a": {"max_calls": 1, "max_calls": 2}}}', "$", "'max_calls'"),
    ],
)
def test_duplicate_keys_are_refused(tmp_path: Path, name: str, text: str, where: str, key: str) -> None:
    """A key given twice in one mapping, YAML or JSON, at any depth, is refused rather than last-wins."""
    (problem,) = file_problems(write(tmp_path, name, text))
    assert problem.path == where
    assert f"duplicate key {key}" in problem.message


def test_deeply_nested_json_is_refused_not_crashed(tmp_path: Path) -> None:
    """A document nested 100,000 levels deep is a problem, not a RecursionError."""
    (problem,) = file_problems(write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000))
    assert problem.path == "$"


# --- the file itself ----------------------------------------------------------------------


def test_huge_file_is_refused_unread_and_fast(tmp_path: Path) -> None:
    """A 50 MB file is refused by size in well under a second, without parsing it."""
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"description: " + b"x" * (50 * 1024 * 1024) + b"\n")
    started = time.perf_counter()
    (problem,) = file_problems(path)
    assert time.perf_counter() - started < 1.0
    assert problem.message == f"file is larger than {MAX_SCHEMA_BYTES} bytes"


def test_size_limit_is_exact(tmp_path: Path) -> None:
    """A file of exactly MAX_SCHEMA_BYTES is parsed; one byte more is refused by size."""
    body = json.dumps(doc(description="x"))
    at_limit = body[:-1] + " " * (MAX_SCHEMA_BYTES - len(body)) + "}"
    assert len(at_limit.encode()) == MAX_SCHEMA_BYTES
    assert load_schema(write(tmp_path, "at.json", at_limit)).name == "probe"
    (problem,) = file_problems(write(tmp_path, "over.json", at_limit + " "))
    assert "larger than" in problem.message


def test_non_utf8_bytes_are_refused(tmp_path: Path) -> None:
    """Latin-1 bytes are one problem naming the offset of the first bad byte."""
    path = write(tmp_path, "latin1.yaml", "name: probe\ndescription: café\n".encode("latin-1"))
    (problem,) = file_problems(path)
    assert problem.message == "not UTF-8 (byte 28)"
    assert problem.hint == "save the file as UTF-8"


@pytest.mark.parametrize("suffix", [".txt", ".toml", ".yaml.bak", ""])
def test_unknown_suffix_is_refused(tmp_path: Path, suffix: str) -> None:
    """A file whose suffix is not .yaml, .yml or .json is refused, naming the suffix."""
    path = write(tmp_path, f"schema{suffix}", yaml.safe_dump(BASE))
    (problem,) = file_problems(path)
    assert problem.message == f"unknown file type {path.suffix!r}"
    assert problem.hint == "name it .yaml, .yml or .json"


def test_unreadable_paths_are_problems(tmp_path: Path) -> None:
    """A missing file, a directory and a dangling symlink are each a 'cannot read file' problem."""
    missing = tmp_path / "missing.yaml"
    directory = tmp_path / "folder.yaml"
    directory.mkdir()
    dangling = tmp_path / "link.yaml"
    dangling.symlink_to(tmp_path / "gone.yaml")
    for path in (missing, directory, dangling):
        (problem,) = file_problems(path)
        assert problem.message.startswith(("cannot read file: ", "not a regular file"))
        assert problem.hint == "check the path"


@pytest.mark.parametrize(
    ("content", "shown"),
    [("- a\n- b\n", "['a', 'b']"), ("hello\n", "'hello'"), ("", "None"), ("null\n", "None"), ("42\n", "42")],
    ids=["list", "string", "empty", "null", "number"],
)
def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path, content: str, shown: str) -> None:
    """A list, a scalar or an empty file is one problem at `$` saying it is not an object."""
    (problem,) = file_problems(write(tmp_path, "doc.yaml", content))
    assert problem.path == "$"
    assert problem.message == f"{shown} is not of type 'object'"


# --- structure: the meta-schema -----------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (doc(name=5), "$.name", "5 is not of type 'string'"),
        (doc(version=1.0), "$.version", "1.0 is not of type 'string'"),
        (doc(tools=["lookup"]), "$.tools", "['lookup'] is not of type 'object'"),
        (doc(tools={"lookup": {"max_calls": "three"}}), "$.tools.lookup.max_calls", "'three' is not of type 'integer'"),
        (doc(tools={"lookup": {"max_calls": True}}), "$.tools.lookup.max_calls", "True is not of type 'integer'"),
        (doc(tools={"lookup": {"max_calls": 0}}), "$.tools.lookup.max_calls", "0 is less than the minimum of 1"),
        (doc(tools={"lookup": {"max_calls": 1, "privilege": "medium"}}), "$.tools.lookup.privilege", "'medium'"),
        (doc(max_depth=17), "$.max_depth", "17 is greater than the maximum of 16"),
        (doc(tools={}), "$.tools", "{} should be non-empty"),
        (doc(description=""), "$.description", "'' should be non-empty"),
    ],
    ids=[
        "name",
        "version",
        "tools",
        "max-calls-str",
        "max-calls-bool",
        "max-calls-0",
        "privilege",
        "depth",
        "no-tools",
        "desc",
    ],
)
def test_wrong_types_and_values_name_their_json_path(document: dict[str, Any], path: str, message: str) -> None:
    """A value of the wrong type or out of range is one problem at its JSON path."""
    (problem,) = problems(document)
    assert problem.path == path
    assert message in problem.message


def test_misspelt_key_is_refused(tmp_path: Path) -> None:
    """A typo such as `max_call` is reported as an unexpected key, with the missing `max_calls` beside it."""
    found = problems(doc(tools={"lookup": {"max_call": 3}}))
    assert [(problem.path, problem.message, problem.hint) for problem in found] == [
        (
            "$.tools.lookup",
            "Additional properties are not allowed ('max_call' was unexpected)",
            "remove the key or check its spelling",
        ),
        ("$.tools.lookup", "'max_calls' is a required property", "add the missing key"),
    ]


@pytest.mark.parametrize("key", ["tool", "ttl_seconds", "allow"])
def test_unknown_top_level_key_is_refused(key: str) -> None:
    """An unknown top-level key is refused, never silently ignored."""
    (problem,) = problems(doc(**{key: 1}))
    assert problem.path == "$"
    assert f"({key!r} was unexpected)" in problem.message


def test_missing_required_keys_are_each_reported() -> None:
    """An empty mapping reports each of the five required keys as its own problem."""
    found = problems({})
    assert sorted(problem.message for problem in found) == sorted(
        f"{key!r} is a required property" for key in ("name", "version", "description", "ttl", "tools")
    )
    assert {problem.hint for problem in found} == {"add the missing key"}


def test_every_problem_is_reported_at_once() -> None:
    """A document with three independent problems gets exactly three, sorted by JSON path."""
    found = problems(doc(name="Probe", version="one", tool={}))
    assert [problem.path for problem in found] == ["$", "$.name", "$.version"]


# --- unicode ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["probe\u200b", "\u202eprobe", "probe_😀", "prob\u0435", "Probe", "1probe", "", "p" * 65],
    ids=["zero-width", "rtl-override", "emoji", "cyrillic-e", "upper", "digit-first", "empty", "too-long"],
)
def test_odd_names_are_refused_by_the_name_pattern(name: str) -> None:
    """An intent name with invisible, bidirectional, look-alike or emoji characters is refused at `$.name`."""
    (problem,) = problems(doc(name=name))
    assert problem.path == "$.name"
    assert "does not match" in problem.message


def test_odd_unicode_in_descriptions_is_kept() -> None:
    """Descriptions are prose: emoji, zero-width and RTL characters are accepted and kept exactly."""
    text = "Refund 💸 the order\u200b \u202eexample\u202c — ok"
    schema = parse_schema(doc(description=text, tools={"lookup": {"max_calls": 1, "description": text}}))
    assert schema.description == text
    assert schema.tools["lookup"].description == text


# --- semantics ----------------------------------------------------------------------------


REQUIRED_P = {"type": "object", "properties": {"p": {"type": "number"}}, "required": ["p"]}
OPTIONAL_P = {"type": "object", "properties": {"p": {"type": "number"}}}


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (with_arg({"equals": {"param": "p"}}), "$.tools.lookup.args.x.equals.param", "parameter 'p' is not declared"),
        (
            with_arg({"maximum": {"param": "p"}}, parameters=OPTIONAL_P),
            "$.tools.lookup.args.x.maximum.param",
            "parameter 'p' is not required",
        ),
        (
            with_arg({"type": "array", "each": {"one_of": {"param": "q"}}}, parameters=REQUIRED_P),
            "$.tools.lookup.args.x.each.one_of.param",
            "parameter 'q' is not declared",
        ),
        (
            doc(deny=[{"reason": "no", "args": {"x": {"prefix": {"param": "p"}}}}]),
            "$.deny[0].args.x.prefix.param",
            "parameter 'p' is not declared",
        ),
    ],
    ids=["undeclared", "not-required", "inside-each", "in-deny-rule"],
)
def test_parameter_references_must_be_declared_and_required(document: dict[str, Any], path: str, message: str) -> None:
    """A `{param: ...}` reference must name a declared, required parameter, wherever it appears."""
    (problem,) = problems(document)
    assert (problem.path, problem.message) == (path, message)


def test_a_reference_to_a_required_parameter_is_accepted() -> None:
    """A reference to a declared, required parameter loads."""
    schema = parse_schema(with_arg({"type": "number", "maximum": {"param": "p"}}, parameters=REQUIRED_P))
    assert schema.tools["lookup"].args["x"].maximum is not None


def test_invalid_regex_is_refused() -> None:
    """A pattern that is not a valid Python regular expression is refused at its path, quoting it."""
    (problem,) = problems(with_arg({"type": "string", "pattern": "(unclosed"}))
    assert problem.path == "$.tools.lookup.args.x.pattern"
    assert problem.message.startswith("invalid regular expression '(unclosed': ")


def test_minimum_greater_than_maximum_is_refused() -> None:
    """A range whose minimum exceeds its maximum can never be met and is refused."""
    (problem,) = problems(with_arg({"type": "number", "minimum": 5, "maximum": 1}))
    assert problem.path == "$.tools.lookup.args.x"
    assert problem.message == "minimum 5 is greater than maximum 1"


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"type": "number", "pattern": "a+"}, "$.tools.lookup.args.x", "pattern/prefix cannot apply to type 'number'"),
        ({"type": "integer", "prefix": "a"}, "$.tools.lookup.args.x", "pattern/prefix cannot apply to type 'integer'"),
        ({"type": "string", "minimum": 1}, "$.tools.lookup.args.x", "minimum/maximum cannot apply to type 'string'"),
        ({"type": "string", "each": {"type": "string"}}, "$.tools.lookup.args.x.each", "'each' cannot apply"),
    ],
    ids=["pattern-on-number", "prefix-on-integer", "minimum-on-string", "each-on-string"],
)
def test_constraints_must_fit_the_declared_type(spec: dict[str, Any], path: str, message: str) -> None:
    """A constraint that cannot apply to the argument's declared type is refused."""
    (problem,) = problems(with_arg(spec))
    assert problem.path == path
    assert problem.message.startswith(message)


def test_decay_must_name_declared_tools() -> None:
    """A decay rule naming a tool the schema does not declare is refused."""
    (problem,) = problems(doc(decay=[{"after": 60, "tools": ["send_email"]}]))
    assert (problem.path, problem.message) == ("$.decay[0].tools", "tool 'send_email' is not declared in tools")


@pytest.mark.parametrize("after", [900, 901, "PT15M", "PT1H"])
def test_decay_after_must_be_shorter_than_ttl(after: int | str) -> None:
    """A decay rule that takes effect at or after the ttl never applies and is refused."""
    (problem,) = problems(doc(decay=[{"after": after, "drop": "high"}]))
    assert problem.path == "$.decay[0].after"
    assert "is not shorter than the ttl" in problem.message


def test_decay_must_drop_something() -> None:
    """A decay rule with neither `drop` nor `tools` is refused."""
    (problem,) = problems(doc(decay=[{"after": 60}]))
    assert problem.path == "$.decay[0]"


@pytest.mark.parametrize(
    ("parameters", "path", "message"),
    [
        ({"type": 12}, "$.parameters.type", "not a valid JSON Schema: "),
        ({"type": "object", "properties": []}, "$.parameters.properties", "not a valid JSON Schema: "),
        ({"type": "object", "required": "p"}, "$.parameters.required", "not a valid JSON Schema: "),
        ({"type": "string"}, "$.parameters.type", "parameters must be a JSON Schema of type 'object'"),
        ({}, "$.parameters.type", "parameters must be a JSON Schema of type 'object'"),
        (True, "$.parameters", "True is not of type 'object'"),
    ],
    ids=["type-not-a-name", "properties-list", "required-string", "type-string", "no-type", "boolean-schema"],
)
def test_parameters_must_be_a_json_schema_of_type_object(parameters: Any, path: str, message: str) -> None:
    """`parameters` must be a valid 2020-12 JSON Schema whose type is object."""
    (problem,) = problems(doc(parameters=parameters))
    assert problem.path == path
    assert problem.message.startswith(message)


# --- ttl ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [("PT15M", timedelta(minutes=15)), (900, timedelta(minutes=15)), (0.5, timedelta(milliseconds=500))],
)
def test_ttl_accepts_seconds_and_iso_durations(ttl: Any, expected: timedelta) -> None:
    """A ttl is a positive number of seconds or an ISO-8601 duration, normalised to a timedelta."""
    assert parse_schema(doc(ttl=ttl)).ttl == expected


@pytest.mark.parametrize(
    "ttl",
    ["15m", "900", "PT", "PT1H1H", 0, -60, True, False, None, [900]],
    ids=[
        "15m",
        "numeric-string",
        "empty-duration",
        "repeated-unit",
        "zero",
        "negative",
        "true",
        "false",
        "null",
        "list",
    ],
)
def test_ambiguous_or_empty_ttl_is_refused_at_its_path(ttl: Any) -> None:
    """A ttl that is a bool, zero, negative, a unit-suffixed or numeric string is refused at `$.ttl`."""
    (problem,) = problems(doc(ttl=ttl))
    assert problem.path == "$.ttl"


@pytest.mark.parametrize("ttl", ["P0D", "PT0S", math.inf, math.nan])
def test_zero_or_non_finite_ttl_is_refused(ttl: Any) -> None:
    """A ttl that matches the duration syntax but is zero or not finite is still refused."""
    (problem,) = problems(doc(ttl=ttl))
    assert "duration" in problem.message


# --- load_schemas -------------------------------------------------------------------------


def test_load_schemas_keys_a_directory_by_name(tmp_path: Path) -> None:
    """A directory of schema files loads into a mapping from intent name to schema, ignoring other files."""
    write(tmp_path, "one.yaml", yaml.safe_dump(doc(name="one")))
    write(tmp_path, "two.json", json.dumps(doc(name="two")))
    write(tmp_path, "notes.md", "not a schema")
    assert sorted(load_schemas([tmp_path])) == ["one", "two"]


def test_two_schemas_with_one_name_are_refused(tmp_path: Path) -> None:
    """Two files in one directory declaring the same name are one problem naming both files."""
    first = write(tmp_path, "a.yaml", yaml.safe_dump(doc()))
    second = write(tmp_path, "b.json", json.dumps(doc()))
    with pytest.raises(InvalidIntentSchema) as info:
        load_schemas([tmp_path])
    (problem,) = well_formed(info.value, str(second))
    assert problem.path == "$.name"
    assert problem.message == f"intent 'probe' is also defined in {first}"


def test_load_schemas_reports_every_file_at_once(tmp_path: Path) -> None:
    """Problems from several bad files come back together in one error."""
    write(tmp_path, "a.yaml", yaml.safe_dump(doc(name="Bad")))
    write(tmp_path, "b.yaml", "name: [unclosed\n")
    with pytest.raises(InvalidIntentSchema) as info:
        load_schemas([tmp_path])
    assert {Path(problem.source).name for problem in info.value.problems} == {"a.yaml", "b.yaml"}


# --- the meta-schema ----------------------------------------------------------------------


def test_shipped_meta_schema_is_generated_from_the_models() -> None:
    """The shipped intent-schema.json equals generate_meta_schema(); regenerate with `make meta-schema`."""
    shipped = json.loads((ROOT / "intentguard" / "meta" / "intent-schema.json").read_text(encoding="utf-8"))
    assert shipped == generate_meta_schema()
    assert meta_schema() == shipped


def test_meta_schema_is_a_valid_2020_12_schema() -> None:
    """The meta-schema declares draft 2020-12 and passes that draft's own meta-schema."""
    schema = meta_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_meta_schema_accepts_the_stock_schema() -> None:
    """The stock refund schema satisfies the meta-schema as a plain document."""
    document = yaml.safe_load(REFUND.read_text(encoding="utf-8"))
    assert list(Draft202012Validator(meta_schema()).iter_errors(document)) == []


# --- Intent.bind --------------------------------------------------------------------------


@pytest.fixture
def refund() -> IntentSchema:
    """The stock refund schema."""
    return load_schema(REFUND)


def bind_problems(schema: IntentSchema, params: Any) -> tuple[Problem, ...]:
    """The problems Intent.bind reports; each names the intent, a JSON path, a message and a hint."""
    with pytest.raises(InvalidParameters) as info:
        Intent.bind(schema, params)
    for problem in info.value.problems:
        assert problem.source == f"parameters of intent {schema.name!r}"
        assert problem.path.startswith("$")
        assert problem.message
        assert problem.hint
    return info.value.problems


def test_bind_freezes_a_copy_of_valid_parameters(refund: IntentSchema) -> None:
    """Valid parameters bind into a read-only copy that later changes to the caller's dict do not reach."""
    params = dict(REFUND_PARAMS)
    intent = Intent.bind(refund, params)
    params["max_refund"] = 10_000
    assert intent.params["max_refund"] == 50
    with pytest.raises(TypeError):
        intent.params["max_refund"] = 9_999  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"max_refund": "50"}, "$.max_refund", "'50' is not of type 'number'"),
        ({"max_refund": True}, "$.max_refund", "True is not of type 'number'"),
        ({"max_refund": 10_001}, "$.max_refund", "10001 is greater than the maximum of 10000"),
        ({"order_id": "a123"}, "$.order_id", "'a123' does not match"),
        ({"admin": True}, "$", "Additional properties are not allowed ('admin' was unexpected)"),
    ],
    ids=["string-for-number", "bool-for-number", "over-maximum", "pattern", "extra-key"],
)
def test_bind_refuses_parameters_that_do_not_fit(
    refund: IntentSchema, change: dict[str, Any], path: str, message: str
) -> None:
    """A parameter of the wrong type, out of range, or not declared is a problem at its JSON path."""
    (problem,) = bind_problems(refund, {**REFUND_PARAMS, **change})
    assert problem.path == path
    assert message in problem.message


def test_bind_reports_every_missing_required_parameter(refund: IntentSchema) -> None:
    """Missing required parameters are each reported, and None counts as no parameters at all."""
    found = bind_problems(refund, None)
    assert sorted(problem.message for problem in found) == [
        "'customer_email' is a required property",
        "'max_refund' is a required property",
        "'order_id' is a required property",
    ]


@pytest.mark.parametrize(
    "value",
    [{1, 2}, math.nan, math.inf, b"50", object()],
    ids=["set", "nan", "inf", "bytes", "object"],
)
def test_bind_refuses_values_that_are_not_json(refund: IntentSchema, value: Any) -> None:
    """A set, NaN, infinity, bytes or an arbitrary object is refused at the path of the parameter holding it."""
    (problem,) = bind_problems(refund, {**REFUND_PARAMS, "max_refund": value})
    assert problem.path == "$.max_refund"
    assert "not JSON data" in problem.message


def test_bind_enforces_string_formats(refund: IntentSchema) -> None:
    """The stock schema's `format: email` on customer_email refuses a value that is not an address."""
    (problem,) = bind_problems(refund, {**REFUND_PARAMS, "customer_email": "not an address"})
    assert problem.path == "$.customer_email"


def test_bind_with_a_dangling_ref_raises_invalid_parameters() -> None:
    """A schema built without the loader whose parameters hold a dangling `$ref` binds to InvalidParameters."""
    schema = IntentSchema.model_validate(
        doc(parameters={"type": "object", "properties": {"p": {"$ref": "#/$defs/missing"}}})
    )
    (problem,) = bind_problems(schema, {"p": 1})
    assert problem.path == "$"


@pytest.mark.parametrize("params", [[("order_id", "A123")], "order_id=A123", 42])
def test_bind_refuses_a_non_mapping(refund: IntentSchema, params: Any) -> None:
    """Parameters that are not a mapping are one problem at `$` naming the type given."""
    (problem,) = bind_problems(refund, params)
    assert problem.path == "$"
    assert problem.message == f"expected a mapping, got {type(params).__name__}"


# --- hostile documents: each once crashed the loader or passed silently --------------------


@pytest.mark.parametrize("key", ["{a: 1}", "[a]"], ids=["mapping-key", "list-key"])
def test_complex_yaml_keys_are_a_problem_not_a_crash(tmp_path: Path, key: str) -> None:
    """A YAML complex key (`? {a: 1}`) is reported with its position, not a TypeError traceback."""
    (problem,) = file_problems(write(tmp_path, "complex.yaml", f"name: probe\n? {key}\n: b\n"))
    assert problem.path.startswith("line 2, ")


@pytest.mark.parametrize("seconds", [1e300, 10**30])
@pytest.mark.parametrize("field", ["ttl", "decay"])
def test_huge_durations_are_a_problem_not_a_crash(field: str, seconds: float) -> None:
    """A ttl or decay `after` too long for a timedelta is refused at its path, not an OverflowError."""
    if field == "ttl":
        document, path = doc(ttl=seconds), "$.ttl"
    else:
        document, path = doc(decay=[{"after": seconds, "drop": "high"}]), "$.decay[0].after"
    (problem,) = problems(document)
    assert problem.path == path


def test_deeply_nested_each_is_a_problem_not_a_crash() -> None:
    """An argument spec nested 200 `each` levels deep (a few KB) is refused, not a RecursionError."""
    spec: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        spec = {"type": "array", "each": spec}
    problems(with_arg(spec))


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (with_arg({"type": "number", "minimum": math.inf}), "$.tools.lookup.args.x.minimum"),
        (with_arg({"type": "number", "maximum": math.nan}), "$.tools.lookup.args.x.maximum"),
        (doc(tools={1: {"max_calls": 1}}), "$.tools"),
        (doc(ttl="P0D"), "$.ttl"),
        (doc(ttl=math.inf), "$.ttl"),
    ],
    ids=["infinite-minimum", "nan-maximum", "integer-tool-key", "zero-iso-ttl", "infinite-ttl"],
)
def test_problems_found_while_building_the_model_keep_their_path(document: dict[str, Any], path: str) -> None:
    """A value the meta-schema lets through but the models refuse is still reported at its JSON path."""
    (problem,) = problems(document)
    assert problem.path.startswith(path)
    assert "validation error" not in problem.message


@pytest.mark.parametrize(
    "ref",
    ["#/$defs/missing", "https://example.invalid/p.json", "other.json#/p"],
    ids=["dangling", "remote", "relative-file"],
)
def test_parameters_refs_must_be_local_and_resolve(ref: str) -> None:
    """A `$ref` in parameters that is not local or does not resolve is refused when the schema loads."""
    (problem,) = problems(doc(parameters={"type": "object", "properties": {"p": {"$ref": ref}}}))
    assert problem.path == "$.parameters.properties.p.$ref"


def test_parameters_local_refs_are_accepted() -> None:
    """A local `$ref` into `$defs` loads and binds."""
    parameters = {
        "type": "object",
        "$defs": {"id": {"type": "string", "maxLength": 4}},
        "properties": {"p": {"$ref": "#/$defs/id"}},
    }
    schema = parse_schema(doc(parameters=parameters))
    assert Intent.bind(schema, {"p": "A123"}).params == {"p": "A123"}
    (problem,) = bind_problems(schema, {"p": "too long"})
    assert problem.path == "$.p"


# --- regressions for defects found by these tests ------------------------------------------


class _CountingServer(ThreadingHTTPServer):
    """A loopback HTTP server that answers 404 to everything and counts the requests."""

    hits = 0


class _CountingHandler(BaseHTTPRequestHandler):
    server: _CountingServer

    def do_GET(self) -> None:
        self.server.hits += 1
        self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_bind_never_fetches_a_remote_ref() -> None:
    """Binding against a schema built without the loader never fetches a remote `$ref`: no network I/O."""
    server = _CountingServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/p.json"
        schema = IntentSchema.model_validate(doc(parameters={"type": "object", "properties": {"p": {"$ref": url}}}))
        with contextlib.suppress(InvalidParameters):
            Intent.bind(schema, {"p": 1})
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert server.hits == 0


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """load_schema on a named pipe returns a problem promptly instead of waiting for a writer forever."""
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_schema(fifo)
        except InvalidIntentSchema as exc:
            outcome.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=1.0)
    blocked = reader.is_alive()
    if blocked:  # unblock the reader so the test never hangs: open and close a writer
        for _ in range(50):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                break
            except OSError:
                time.sleep(0.05)
        reader.join(timeout=5.0)
    assert not blocked
    assert outcome


@pytest.mark.parametrize(
    "where",
    ["tool-arg", "deny-arg", "parameters"],
)
@pytest.mark.parametrize("pattern", ["a{99999999999}", "(" * 2000 + ")" * 2000], ids=["huge-repeat", "deep-groups"])
def test_a_regex_that_cannot_compile_is_a_problem_not_a_crash(where: str, pattern: str) -> None:
    """A pattern whose compilation overflows or recurses too deeply is refused, not a traceback."""
    spec = {"type": "string", "pattern": pattern}
    if where == "tool-arg":
        document = with_arg(spec)
    elif where == "deny-arg":
        document = doc(deny=[{"reason": "no", "args": {"x": spec}}])
    else:
        document = doc(parameters={"type": "object", "properties": {"p": spec}})
    (problem,) = problems(document)
    assert problem.path.endswith(".pattern") if where != "parameters" else problem.path.startswith("$.parameters")


def test_deeply_nested_parameters_are_a_problem_not_a_crash() -> None:
    """A parameters schema nested 150 levels deep (a few KB) is refused, not a RecursionError."""
    inner: dict[str, Any] = {"type": "string"}
    for _ in range(150):
        inner = {"type": "object", "properties": {"x": inner}}
    problems(doc(parameters={"type": "object", "properties": {"p": inner}}))


@pytest.mark.parametrize("ttl", [0, "15m"])
def test_a_bad_ttl_is_not_told_to_change_type(ttl: Any) -> None:
    """ttl 0 is not told to become a string, nor '15m' a number: the message concerns the value itself."""
    (problem,) = problems(doc(ttl=ttl))
    assert "is not of type" not in problem.message


@pytest.mark.parametrize(
    "tool", ["send_email\u200b", "\u202eliame_dnes", "send email", ""], ids=["zero-width", "rtl", "space", "empty"]
)
def test_odd_tool_names_are_refused(tool: str) -> None:
    """A tool name with invisible or bidirectional characters, a space, or none at all is refused."""
    (problem,) = problems(doc(tools={tool: {"max_calls": 1}}))
    assert problem.path.startswith("$.tools")


def test_non_string_yaml_keys_are_refused(tmp_path: Path) -> None:
    """A YAML key that is not a string (`on` reads as True) is refused, so no constraint silently lapses."""
    text = yaml.safe_dump(doc(parameters={"type": "object", "properties": {"PLACEHOLDER": {"maxLength": 3}}}))
    path = write(tmp_path, "on.yaml", text.replace("PLACEHOLDER", "on"))
    file_problems(path)


def test_a_bad_source_names_the_allowed_forms() -> None:
    """An unknown source kind is reported against the pattern, not as a type mismatch with null."""
    (problem,) = problems(with_arg({"type": "string", "sources": ["untrusted"]}))
    assert "is not of type" not in problem.message
    assert problem.path.endswith(".sources[0]")
