"""Shared fixtures: a frozen clock, the stock refund schema, a guard and a session on it."""

from __future__ import annotations

from pathlib import Path

import pytest

import intentguard as ig
from intentguard.testing import FrozenClock, sequential_ids

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "intent_schemas"
REFUND = SCHEMAS / "refund_request.yaml"
REFUND_PARAMS = {"order_id": "A123", "customer_email": "ann@example.com", "max_refund": 50}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def refund_schema() -> ig.IntentSchema:
    return ig.load_schema(REFUND)


@pytest.fixture
def guard(clock: FrozenClock, refund_schema: ig.IntentSchema) -> ig.Guard:
    with ig.Guard(schemas=[refund_schema], clock=clock, ids=sequential_ids()) as guard:
        yield guard


@pytest.fixture
def principal() -> ig.Principal:
    return ig.Principal(user="u-7", tenant="acme", auth_event="login-42")


@pytest.fixture
def agent() -> ig.AgentIdentity:
    return ig.AgentIdentity(id="support-bot")


@pytest.fixture
def session(guard: ig.Guard, principal: ig.Principal, agent: ig.AgentIdentity) -> ig.Session:
    return guard.start("refund_request", REFUND_PARAMS, principal=principal, agent=agent)
