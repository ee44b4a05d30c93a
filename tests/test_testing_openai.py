"""ScriptedOpenAIServer speaks OpenAI's chat-completions API well enough for the official client."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

import intentguard as ig
from intentguard.testing import ScriptedOpenAIServer, ScriptedReply
from intentguard.testing_openai import CREATED

MESSAGES: list[Any] = [{"role": "user", "content": "Refund order A123, please."}]


@contextmanager
def client_for(server: ScriptedOpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


def raw(server: ScriptedOpenAIServer, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send one request with the standard library and parse the JSON answer."""
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_replies_come_back_in_order_in_openais_shape() -> None:
    """Text and tool calls (mapping or JSON-string arguments, given or default ids) parse with the real client."""
    script = [
        {
            "content": "Looking it up.",
            "tool_calls": [
                {"name": "lookup_order", "arguments": {"order_id": "A123"}, "id": "call_x"},
                {"name": "search_kb", "arguments": '{"query": "damaged"}'},
            ],
        },
        "All done.",
    ]
    with ScriptedOpenAIServer(script) as server, client_for(server) as client:
        first = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        second = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert server.remaining == 0
        assert [body["model"] for body in server.requests] == ["gpt-4o-mini", "gpt-4o-mini"]
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.content == "Looking it up."
    calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]
    assert calls == [("call_x", "lookup_order", {"order_id": "A123"}), ("call_0_1", "search_kb", {"query": "damaged"})]
    assert (first.id, first.created, first.model) == ("chatcmpl-scripted-1", CREATED, "gpt-4o-mini")
    assert first.usage is not None
    assert first.usage.prompt_tokens == 4
    assert second.choices[0].message.content == "All done."
    assert second.choices[0].finish_reason == "stop"


def test_a_streamed_reply_rebuilds_into_the_same_message() -> None:
    """With ``stream=True`` the reply arrives as chunks (and a usage chunk when asked) that add up to it."""
    script = [
        {"content": "Checking.", "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "A123"}}]},
        "Plain text.",
        {"tool_calls": [{"name": "search_kb", "arguments": {"query": "policy"}}]},
    ]
    with ScriptedOpenAIServer(script) as server, client_for(server) as client:
        chunks = list(
            client.chat.completions.create(
                model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        plain = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
        only_calls = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert text == "Checking."
    assert [(t.id, t.function and t.function.name) for t in calls] == [("call_0_0", "lookup_order")]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None
    assert not chunks[-1].choices
    assert "".join(c.choices[0].delta.content or "" for c in plain) == "Plain text."
    assert all(c.usage is None for c in plain)
    assert [c.choices[0].delta.content for c in only_calls][:2] == ["", None]


def test_running_out_of_script_is_a_server_error_naming_the_request() -> None:
    """A request beyond the script gets HTTP 500 with an OpenAI-shaped error, never a made-up reply."""
    with ScriptedOpenAIServer([]) as server, client_for(server) as client:
        with pytest.raises(openai.InternalServerError, match="no reply left for request 1"):
            client.chat.completions.create(model="m", messages=MESSAGES)
        assert len(server.requests) == 1


def test_other_routes_and_bodies_are_refused() -> None:
    """Unknown paths are 404, bodies that are not a JSON object are 400; none of them uses up the script."""
    with ScriptedOpenAIServer(["unused"]) as server:
        assert raw(server, "GET", "/v1/models")[0] == 404
        assert raw(server, "POST", "/v1/embeddings", b"{}")[0] == 404
        status, error = raw(server, "POST", "/v1/chat/completions", b"{not json")
        assert (status, error["error"]["code"]) == (400, "bad_json")
        assert raw(server, "POST", "/v1/chat/completions?x=1", b"[1, 2]")[0] == 400
        status, answer = raw(server, "POST", "/v1/chat/completions", b'{"messages": "not a list"}')
        assert (status, answer["model"], answer["usage"]["prompt_tokens"]) == (200, "scripted", 0)
        assert server.remaining == 0


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (42, "scripted reply 0 is 42"),
        ({}, "scripted reply 0 is {}"),
        ({"text": "hi"}, "'text': 'hi'"),
        ({"content": 7}, "has content 7"),
        ({"tool_calls": [{"arguments": {}}]}, "tool call 0 of scripted reply 0"),
        ({"tool_calls": [{"name": "t", "arguments": 3}]}, "has arguments 3"),
    ],
)
def test_a_malformed_script_is_refused_up_front(reply: object, message: str) -> None:
    """A reply that is not text or a well-formed message is a ConfigurationError naming it."""
    with pytest.raises(ig.ConfigurationError, match=message.replace("{", r"\{").replace("}", r"\}")):
        ScriptedOpenAIServer([reply])


def test_the_server_has_a_lifecycle() -> None:
    """No base URL before start; start and close are idempotent; a ScriptedReply passes through unchanged."""
    reply = ScriptedReply("hello")
    server = ScriptedOpenAIServer([reply])
    with pytest.raises(ig.ConfigurationError, match="not running"):
        _ = server.base_url
    assert server.start() is server.start()
    url = server.base_url
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/v1")
    server.close()
    server.close()
    assert ScriptedReply.of(reply, 0) is reply
