"""Shared fixtures: a frozen clock, the stock refund schema, a guard and a session on it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import intentguard as ig
from intentguard.testing import FrozenClock, redis_server, sequential_ids

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


def _running_redis() -> Iterator[str]:
    """A real redis-server on a free loopback port (no persistence), killed afterwards. In CI
    (CI=true) a missing redis-server fails the tests that need it instead of skipping them."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed; CI must run the Redis tests (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    with redis_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server shared by the whole run."""
    yield from _running_redis()


@pytest.fixture(scope="module")
def private_redis_url() -> Iterator[str]:
    """A real redis-server of the module's own, for tests that empty or fill its database."""
    yield from _running_redis()
