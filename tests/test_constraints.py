"""Compiled argument constraints: strict types, parameter references, every constraint kind."""

from __future__ import annotations

from typing import Any

import pytest

import intentguard as ig
from intentguard.constraints import compile_arg, describe
from intentguard.schema import ArgSpec

PARAMS = {
    "order": "A123",
    "limit": 50,
    "allowed": ["ann@example.com", "bob@example.com"],
    "root": "/srv/acme/",
    "flag": True,
}


def check(spec: dict[str, Any], value: Any) -> str | None:
    compiled = compile_arg(ArgSpec.model_validate(spec), PARAMS, where="test")
    assert compiled is not None
    return compiled(value)


CASES = [
    ({"equals": "A123"}, "A123", ["A124", 0, None, ["A123"]]),
    ({"equals": {"param": "order"}}, "A123", ["a123", "A123 "]),
    ({"equals": 1}, 1.0, [True, "1", 2]),
    ({"equals": True}, True, [1, "true", False]),
    ({"equals": {"param": "flag"}}, True, [1]),
    ({"type": "null"}, None, [0, "", False]),
    ({"one_of": ["x", 1, True, None]}, "x", ["y", 2, False, 1.5, []]),
    ({"one_of": {"param": "allowed"}}, "bob@example.com", ["eve@evil.example", "ANN@example.com"]),
    ({"minimum": 0.01, "maximum": {"param": "limit"}}, 50, [0, 50.001, float("nan"), float("inf"), "10", True]),
    ({"type": "integer"}, 3, [3.0, True, "3"]),
    ({"type": "number"}, 3.5, [True, "3.5", float("nan")]),
    ({"type": "boolean"}, False, [0, "false"]),
    ({"type": "array"}, [], [{}, "[]"]),
    ({"type": "object"}, {}, [[], "{}"]),
    ({"type": "null"}, None, [0, ""]),
    ({"type": "string", "pattern": "[A-Z][0-9]+"}, "A12", ["A12x", "xA12", "a12", 12]),
    ({"max_length": 3}, "abc", ["abcd", [1, 2, 3, 4], 5]),
    ({"prefix": {"param": "root"}}, "/srv/acme/report.pdf", ["/srv/other/x", "srv/acme/x", 5]),
    (
        {"type": "array", "max_length": 2, "each": {"one_of": {"param": "allowed"}}},
        ["ann@example.com"],
        [["eve@evil.example"], ["ann@example.com"] * 3, "ann@example.com"],
    ),
]


@pytest.mark.parametrize(("spec", "good", "bads"), CASES)
def test_constraint_accepts_good_and_rejects_bad(spec: dict[str, Any], good: Any, bads: list[Any]) -> None:
    """Each constraint passes the value it describes and names the failure for every other value."""
    assert check(spec, good) is None
    for bad in bads:
        assert isinstance(check(spec, bad), str), bad


def test_spec_without_constraints_compiles_to_nothing() -> None:
    """An argument with no constraints needs no check at call time."""
    assert compile_arg(ArgSpec(), PARAMS, where="test") is None
    assert compile_arg(ArgSpec(optional=True, description="free text"), PARAMS, where="test") is None


def test_failure_sentences_name_the_constraint() -> None:
    """Failure sentences say which bound or parameter was broken."""
    assert check({"maximum": {"param": "limit"}}, 90) == "must be at most parameter limit (50)"
    assert check({"each": {"equals": "a"}}, ["a", "b"]) == "item 1 must equal 'a'"
    assert check({"each": {"equals": "a"}}, "a") == "must be an array"


@pytest.mark.parametrize(
    ("spec", "params"),
    [
        ({"maximum": {"param": "limit"}}, {"limit": "fifty"}),
        ({"one_of": {"param": "allowed"}}, {"allowed": "x"}),
        ({"prefix": {"param": "root"}}, {"root": 5}),
        ({"equals": {"param": "missing"}}, {}),
    ],
)
def test_parameters_of_the_wrong_kind_are_configuration_errors(spec: dict[str, Any], params: dict[str, Any]) -> None:
    """A parameter that cannot serve its constraint fails when the grant is compiled, not at call time."""
    with pytest.raises(ig.InvalidParameters):
        compile_arg(ArgSpec.model_validate(spec), params, where="test")


def test_describe_bounds_long_values() -> None:
    """Values shown in reasons are cut to a bounded length."""
    assert describe("x" * 500).endswith("...")
    assert len(describe("x" * 500)) == 60
    assert describe(5) == "5"


def test_schema_survives_a_dump_and_reload(refund_schema: ig.IntentSchema) -> None:
    """A schema dumped with every field (nulls included) reloads into the same schema."""
    from intentguard.loader import parse_schema

    dumped = refund_schema.model_dump(by_alias=True, mode="json")
    assert parse_schema(dumped) == refund_schema
