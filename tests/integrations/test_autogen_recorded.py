"""A guarded AssistantAgent over real HTTP: AutoGen's OpenAI client, recorded once, replayed offline."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.openai import OpenAIChatCompletionClient
from intentguard_autogen import GuardedWorkbench
from vcr.errors import CannotOverwriteExistingCassetteException

import intentguard as ig
from intentguard.testing import FrozenClock, ScriptedOpenAIServer
from tests.integrations._autogen import Shop
from tests.recorded import Endpoint, openai_cassette

pytestmark = pytest.mark.recorded

TASK = "Order A123 arrived broken. Please refund it in full; I am ann@example.com."
SCRIPT: list[object] = [
    {"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "A123"}, "id": "call_lookup"}]},
    {"tool_calls": [{"name": "issue_refund", "arguments": {"order_id": "A123", "amount": 79}, "id": "call_big"}]},
    {"tool_calls": [{"name": "issue_refund", "arguments": {"order_id": "A123", "amount": 42.5}, "id": "call_ok"}]},
    "Refunded 42.50 to your original payment method.",
]


def run_agent(
    session: ig.Session, endpoint: Endpoint, *, stream: bool = False, task: str = TASK
) -> tuple[list[tuple[str, str]], Shop, str]:
    """Run a guarded agent against ``endpoint``; returns (tool, effect) per decision, the shop, the answer."""
    shop = Shop()
    seen: list[tuple[str, str]] = []
    workbench = GuardedWorkbench(session, shop.tools(), on_decision=lambda c, d: seen.append((c.name, str(d.effect))))

    async def main() -> str:
        client = OpenAIChatCompletionClient(
            model=endpoint.model, base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0
        )
        try:
            assistant = AssistantAgent(
                "support",
                model_client=client,
                workbench=workbench,
                model_context=workbench.model_context(),
                max_tool_iterations=5,
                model_client_stream=stream,
            )
            result = await assistant.run(task=task)
            return str(result.messages[-1].to_text())
        finally:
            await client.close()

    return seen, shop, asyncio.run(main())


def test_the_recorded_run_denies_the_oversized_refund_and_allows_the_right_one(session: ig.Session) -> None:
    """Over HTTP as offline, the guard denies the refund above the limit, the model reads why, and the
    refund within the limit runs."""
    with openai_cassette("autogen_refund", SCRIPT) as endpoint:
        seen, shop, answer = run_agent(session, endpoint)
        sent = endpoint.sent()
    assert seen == [("lookup_order", "ALLOW"), ("issue_refund", "DENY"), ("issue_refund", "ALLOW")]
    assert shop.names == ["lookup_order", "issue_refund"]
    assert answer == "Refunded 42.50 to your original payment method."
    tool_messages = [m for m in sent[-1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_lookup", "call_big", "call_ok"]
    assert "must be at most parameter max_refund (50)" in tool_messages[1]["content"]
    assert [tool["function"]["name"] for tool in sent[0]["tools"]] == [
        "lookup_order",
        "search_kb",
        "issue_refund",
        "send_email",
    ]


def test_a_streamed_run_replays_the_same_decisions(session: ig.Session) -> None:
    """With the model client streaming (server-sent events), the recorded run decides the same way."""
    with openai_cassette("autogen_refund_stream", SCRIPT) as endpoint:
        seen, shop, answer = run_agent(session, endpoint, stream=True)
        assert shop.names == ["lookup_order", "issue_refund"]
        assert endpoint.sent()[0]["stream"] is True
    assert seen == [("lookup_order", "ALLOW"), ("issue_refund", "DENY"), ("issue_refund", "ALLOW")]
    assert answer == "Refunded 42.50 to your original payment method."


def test_the_model_is_shown_no_tools_once_the_grant_has_expired(guard: ig.Guard, clock: FrozenClock) -> None:
    """An expired grant reaches the wire: the request carries no tools at all."""
    session = guard.start(
        "refund_request",
        {"order_id": "A123", "customer_email": "ann@example.com", "max_refund": 50},
        principal=ig.Principal(user="u-7", tenant="acme"),
        agent=ig.AgentIdentity(id="support-bot"),
    )
    clock.advance(minutes=16)
    with openai_cassette("autogen_expired", ["I can no longer act on this request."]) as endpoint:
        seen, shop, answer = run_agent(session, endpoint)
        [request] = endpoint.sent()
    assert "tools" not in request
    assert (seen, shop.ran) == ([], [])
    assert answer == "I can no longer act on this request."


def test_replay_runs_with_no_server_listening(session: ig.Session) -> None:
    """In replay the base URL is a loopback port that refuses connections: every answer came from the cassette."""
    with openai_cassette("autogen_refund", SCRIPT, record=False) as endpoint:
        seen, _, _ = run_agent(session, endpoint)
        port = urlsplit(endpoint.base_url).port
        assert port is not None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert endpoint.server is None
    assert [effect for _, effect in seen] == ["ALLOW", "DENY", "ALLOW"]


def test_a_request_the_cassette_lacks_fails_the_replay(session: ig.Session) -> None:
    """A run that asks something else than was recorded cannot be answered offline: it fails."""
    with (
        pytest.raises(CannotOverwriteExistingCassetteException),
        openai_cassette("autogen_refund", SCRIPT, record=False) as endpoint,
    ):
        run_agent(session, endpoint, task="Something else entirely.")


def test_no_cassette_stores_a_key_or_the_endpoint(tmp_path: Path, session: ig.Session) -> None:
    """Recording keeps only Content-Type headers: the API key, host and port never reach the file,
    and the committed cassettes hold no authorization header."""
    with openai_cassette("fresh", SCRIPT, record=True, directory=tmp_path) as endpoint:
        assert endpoint.server is not None
        run_agent(session, endpoint)
        live = urlsplit(endpoint.base_url)
    text = (tmp_path / "fresh.yaml").read_text()
    assert endpoint.api_key not in text
    assert f":{live.port}" not in text
    assert "http://model.invalid/v1/chat/completions" in text
    committed = sorted(Path(__file__).resolve().parent.parent.joinpath("cassettes").glob("*.yaml"))
    assert committed
    for path in [tmp_path / "fresh.yaml", *committed]:
        lowered = path.read_text().lower()
        assert "authorization" not in lowered
        assert "sk-scripted" not in lowered
        assert "api-key" not in lowered


def test_recording_against_a_configured_endpoint_keeps_its_key_out(
    tmp_path: Path, session: ig.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OPENAI_BASE_URL and OPENAI_API_KEY set, recording talks to that endpoint and stores neither."""
    with ScriptedOpenAIServer(SCRIPT) as remote:
        where = urlsplit(remote.base_url).netloc
        monkeypatch.setenv("OPENAI_BASE_URL", remote.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-live-0123456789abcdef")
        monkeypatch.setenv("OPENAI_MODEL", "gpt-4o-2024-08-06")
        with openai_cassette("configured", SCRIPT, record=True, directory=tmp_path) as endpoint:
            assert (endpoint.server, endpoint.model) == (None, "gpt-4o-2024-08-06")
            seen, _, _ = run_agent(session, endpoint)
        assert remote.remaining == 0
    text = (tmp_path / "configured.yaml").read_text()
    assert "sk-live-0123456789abcdef" not in text
    assert where not in text
    assert [effect for _, effect in seen] == ["ALLOW", "DENY", "ALLOW"]
