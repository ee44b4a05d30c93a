"""The LLM resolver: a chat model proposes the intent with structured output; the guard still decides."""

from __future__ import annotations

from typing import Any

import pytest

import intentguard as ig
from intentguard.replay import ResolvedIntent
from intentguard.resolvers import LLMResolver
from intentguard.testing import scripted_chat_model

from .conftest import REFUND_PARAMS, SCHEMAS


def choice(intent: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"name": "IntentChoice", "args": {"intent": intent, "params": params}}


@pytest.fixture
def schemas() -> dict[str, ig.IntentSchema]:
    return ig.load_schemas([SCHEMAS])


def test_the_model_chooses_the_intent_and_its_parameters(schemas: dict[str, ig.IntentSchema]) -> None:
    """The structured answer becomes the resolved intent, parameters included."""
    resolver = LLMResolver(scripted_chat_model([choice("refund_request", REFUND_PARAMS)]), schemas)
    assert resolver("Refund A123 for ann@example.com, up to 50.", {}) == ResolvedIntent("refund_request", REFUND_PARAMS)


@pytest.mark.parametrize("answer", [choice("none", {}), choice("wire_money", {}), {"name": "IntentChoice", "args": {}}])
def test_an_unknown_or_missing_intent_resolves_to_nothing(schemas: dict[str, ig.IntentSchema], answer: Any) -> None:
    """'none', an intent the guard does not know, or a malformed answer leaves the run without an intent."""
    assert LLMResolver(scripted_chat_model([answer]), schemas)("hello", {}) is None


def test_a_failing_model_resolves_to_nothing(schemas: dict[str, ig.IntentSchema]) -> None:
    """A model that errors (here: a script with no answer left) declares nothing."""
    assert LLMResolver(scripted_chat_model([]), schemas)("hello", {}) is None


def test_parameters_the_model_got_wrong_never_become_authority(schemas: dict[str, ig.IntentSchema]) -> None:
    """The guard validates what the model proposed: bad parameters fail at session start."""
    guard = ig.Guard(schemas=[SCHEMAS])
    resolved = LLMResolver(scripted_chat_model([choice("refund_request", {"order_id": "A123"})]), schemas)("x", {})
    assert resolved is not None
    with pytest.raises(ig.InvalidParameters):
        guard.start(
            resolved.schema,
            dict(resolved.params),
            principal=ig.Principal(user="u", tenant="t"),
            agent=ig.AgentIdentity(id="a"),
        )


def test_an_empty_schema_set_is_refused() -> None:
    """A resolver with nothing to choose from is a configuration error."""
    with pytest.raises(ig.ConfigurationError):
        LLMResolver(scripted_chat_model([]), {})
