"""A scripted OpenAI-compatible chat-completions endpoint on loopback, for tests and recordings.

A model endpoint is a process boundary we do not own, so this is where a fake belongs: a real
HTTP server (stdlib ``http.server`` in a thread, on a free loopback port) that answers each
``POST /v1/chat/completions`` with the next scripted assistant message, in OpenAI's JSON shape,
plain or streamed as server-sent events. Real clients (``openai``, AutoGen's
``OpenAIChatCompletionClient``, LangChain's ``ChatOpenAI``) talk to it unchanged::

    with ScriptedOpenAIServer([
        {"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "A123"}}]},
        "The order was delivered on 2 January.",
    ]) as server:
        client = OpenAIChatCompletionClient(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test")
        ...
        server.requests  # every request body received, parsed

A reply is a string (the assistant's text) or a mapping with ``content`` and/or ``tool_calls``;
each tool call names the tool and its ``arguments`` (a mapping or a JSON string) and may give its
``id`` (default ``call_<reply>_<index>``). Every field of a response is fixed by the script, so
recordings of it are byte-for-byte stable. When the script runs out, the server answers 500.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from intentguard.errors import ConfigurationError

__all__ = ["ScriptedOpenAIServer", "ScriptedReply"]

CREATED = 1767225600
"""The ``created`` stamp of every response (2026-01-01 00:00 UTC): fixed, so recordings are stable."""
_PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    """One assistant message: its text and its tool calls as ``(id, name, arguments JSON)``."""

    content: str | None
    tool_calls: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def of(cls, reply: object, index: int) -> ScriptedReply:
        """Normalise a scripted reply (a string or a mapping); ``index`` numbers its default call ids."""
        if isinstance(reply, ScriptedReply):
            return reply
        if isinstance(reply, str):
            return cls(reply)
        if not isinstance(reply, Mapping) or not set(reply) <= {"content", "tool_calls"} or not reply:
            raise ConfigurationError(
                f"scripted reply {index} is {reply!r}; give a string or a mapping with 'content' and/or 'tool_calls'"
            )
        content = reply.get("content")
        if content is not None and not isinstance(content, str):
            raise ConfigurationError(f"scripted reply {index} has content {content!r}; give a string or None")
        calls = tuple(_tool_call(call, index, k) for k, call in enumerate(reply.get("tool_calls") or ()))
        return cls(content, calls)

    def message(self) -> dict[str, Any]:
        """The assistant message in OpenAI's chat-completions shape."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                for call_id, name, arguments in self.tool_calls
            ]
        return message

    @property
    def finish_reason(self) -> str:
        """``tool_calls`` when the message calls tools, else ``stop``."""
        return "tool_calls" if self.tool_calls else "stop"


def _tool_call(call: object, reply: int, index: int) -> tuple[str, str, str]:
    if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
        raise ConfigurationError(
            f"tool call {index} of scripted reply {reply} is {call!r}; give {{'name': ..., 'arguments': {{...}}}}"
        )
    arguments = call.get("arguments", {})
    if isinstance(arguments, Mapping):
        arguments = json.dumps(dict(arguments))
    elif not isinstance(arguments, str):
        raise ConfigurationError(
            f"tool call {call['name']!r} of scripted reply {reply} has arguments {arguments!r}; "
            "give a mapping or a JSON string"
        )
    call_id = call.get("id", f"call_{reply}_{index}")
    return str(call_id), call["name"], arguments


def _words(value: object) -> int:
    return len(value.split()) if isinstance(value, str) else 0


class ScriptedOpenAIServer:
    """An OpenAI-compatible chat-completions server on ``127.0.0.1`` that plays a script.

    Start it with ``with`` (or :meth:`start` / :meth:`close`); point a client at
    :attr:`base_url` with any API key. :attr:`requests` holds every request body received.
    """

    def __init__(self, replies: Iterable[object]) -> None:
        self._replies = [ScriptedReply.of(reply, index) for index, reply in enumerate(replies)]
        self._lock = threading.Lock()
        self._served = 0
        self._requests: list[dict[str, Any]] = []
        self._running: tuple[ThreadingHTTPServer, threading.Thread] | None = None

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give an OpenAI client, e.g. ``http://127.0.0.1:50123/v1``."""
        if self._running is None:
            raise ConfigurationError("the scripted server is not running; use it as `with ScriptedOpenAIServer(...)`")
        return f"http://127.0.0.1:{self._running[0].server_address[1]}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat-completions request body received so far, parsed, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def remaining(self) -> int:
        """How many scripted replies have not been served yet."""
        with self._lock:
            return len(self._replies) - self._served

    def start(self) -> ScriptedOpenAIServer:
        """Bind a free loopback port and serve in a daemon thread."""
        if self._running is None:
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, name="scripted-openai", daemon=True)
            thread.start()
            self._running = (server, thread)
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._running is not None:
            server, thread = self._running
            self._running = None
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _answer(self, body: dict[str, Any]) -> tuple[ScriptedReply, dict[str, Any]] | dict[str, Any]:
        """The next reply for ``body`` and the response fields around it, or an OpenAI-shaped error."""
        with self._lock:
            self._requests.append(body)
            number = len(self._requests)
            if self._served >= len(self._replies):
                return _error(f"the script has no reply left for request {number}; add one", "script_exhausted")
            reply = self._replies[self._served]
            self._served += 1
        messages = body.get("messages")
        contents = [m.get("content") for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
        prompt = sum(_words(content) for content in contents)
        completion = _words(reply.content) + sum(len(args) // 4 for _, _, args in reply.tool_calls)
        return reply, {
            "id": f"chatcmpl-scripted-{number}",
            "created": CREATED,
            "model": str(body.get("model", "scripted")),
            "system_fingerprint": None,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def _chunks(head: dict[str, Any], reply: ScriptedReply, *, usage: bool) -> list[dict[str, Any]]:
    """The reply as chat-completion chunks, in the order OpenAI streams them."""
    base = {"id": head["id"], "object": "chat.completion.chunk", "created": head["created"], "model": head["model"]}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if reply.content:
        deltas.append({"content": reply.content})
    deltas += [
        {"tool_calls": [{"index": i, "id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]}
        for i, (call_id, name, args) in enumerate(reply.tool_calls)
    ]
    chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]})
    if usage:
        chunks.append({**base, "choices": [], "usage": head["usage"]})
    return chunks


def _handler(server: ScriptedOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # a client that holds a connection open and goes quiet does not pin a thread forever

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.split("?")[0] != _PATH:
                self._send(HTTPStatus.NOT_FOUND, _error(f"no route {self.path!r}; POST {_PATH}", "not_found"))
                return
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._send(HTTPStatus.BAD_REQUEST, _error("the request body is not a JSON object", "bad_json"))
                return
            answer = server._answer(body)
            if isinstance(answer, dict):
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, answer)
                return
            reply, head = answer
            if body.get("stream"):
                options = body.get("stream_options")
                usage = isinstance(options, dict) and bool(options.get("include_usage"))
                events = "".join(f"data: {json.dumps(c)}\n\n" for c in _chunks(head, reply, usage=usage))
                self._send(HTTPStatus.OK, events + "data: [DONE]\n\n", content_type="text/event-stream")
                return
            choice = {"index": 0, "message": reply.message(), "finish_reason": reply.finish_reason, "logprobs": None}
            self._send(HTTPStatus.OK, {**head, "object": "chat.completion", "choices": [choice]})

        def do_GET(self) -> None:
            self._send(HTTPStatus.NOT_FOUND, _error(f"no route {self.path!r}; POST {_PATH}", "not_found"))

        def _send(self, status: int, payload: object, *, content_type: str = "application/json") -> None:
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def version_string(self) -> str:
            return "scripted-openai"

        def date_time_string(self, timestamp: float | None = None) -> str:
            return super().date_time_string(CREATED)  # fixed, so recordings are stable

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: test output stays readable; :attr:`ScriptedOpenAIServer.requests` has the traffic."""

    return Handler
