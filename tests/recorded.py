"""Recorded HTTP tests: replay a committed cassette, or record it against a model endpoint.

By default :func:`openai_cassette` replays ``tests/cassettes/<name>.yaml`` with vcrpy in
``record_mode="none"``: no server runs, the base URL it hands out is a loopback port that refuses
connections, any request the cassette does not hold fails the test, and so does a cassette whose
interactions were not all played. With ``INTENTGUARD_RECORD=1`` (what ``make record`` sets) it
records instead, overwriting the cassette: against a :class:`ScriptedOpenAIServer` playing
``script``, or against ``OPENAI_BASE_URL`` with ``OPENAI_API_KEY`` when both are set.

Only the method, path and body (compared as JSON) must match, so recordings are independent of
the port they were made on. Cassettes keep no request header but ``Content-Type`` and no response
header but ``Content-Type``: API keys, organisation ids, cookies and dates never reach a file.

Use it from any test whose client speaks OpenAI's chat-completions API::

    @pytest.mark.recorded
    def test_something() -> None:
        with openai_cassette("my_test", [reply, ...]) as endpoint:
            client = OpenAIChatCompletionClient(model=endpoint.model, base_url=endpoint.base_url,
                                                api_key=endpoint.api_key, max_retries=0)
            ...
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import vcr
from vcr.request import Request

from intentguard.testing import ScriptedOpenAIServer

CASSETTES = Path(__file__).resolve().parent / "cassettes"
MODEL = "gpt-4o-mini-2024-07-18"
"""The model name scripted recordings use (a dated name, as OpenAI reports it back)."""
RECORDED_HOST = "http://model.invalid"
"""Every recorded request's scheme and host: the endpoint a cassette was made against is not kept."""
_KEPT_HEADERS = frozenset({"content-type"})


@dataclass
class Endpoint:
    """Where the client under test should send its requests, and what was sent."""

    base_url: str
    api_key: str
    model: str
    recording: bool
    server: ScriptedOpenAIServer | None = None
    cassette: Any = field(default=None, repr=False)

    def sent(self) -> list[dict[str, Any]]:
        """The JSON body of every request in the cassette: recorded so far, or (in replay) all it holds."""
        return [json.loads(request.body) for request in self.cassette.requests]


def recording() -> bool:
    """True when tests should record their cassettes (``INTENTGUARD_RECORD=1``, set by ``make record``)."""
    return os.environ.get("INTENTGUARD_RECORD") == "1"


def cassette_vcr(directory: Path = CASSETTES) -> vcr.VCR:
    """The vcrpy configuration every recorded test shares."""
    return vcr.VCR(
        cassette_library_dir=str(directory),
        serializer="yaml",
        match_on=["method", "path", "body"],
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )


def scrub_request(request: Request) -> Request:
    """Keep only the method, the path, the body and its Content-Type: no key, no host, no port."""
    parts = urlsplit(request.uri)
    request.uri = RECORDED_HOST + parts.path + (f"?{parts.query}" if parts.query else "")
    request.headers = {k: v for k, v in request.headers.items() if k.lower() in _KEPT_HEADERS}
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Keep only the status, the body and its Content-Type."""
    response["headers"] = {k: v for k, v in response["headers"].items() if k.lower() in _KEPT_HEADERS}
    return response


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: every connection to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextmanager
def openai_cassette(
    name: str, script: Sequence[object], *, record: bool | None = None, directory: Path = CASSETTES
) -> Iterator[Endpoint]:
    """Replay cassette ``name`` with no server, or (when recording) record it against a live endpoint."""
    path = directory / f"{name}.yaml"
    if record if record is not None else recording():
        path.unlink(missing_ok=True)  # a re-recording starts from scratch: nothing stale survives
        with _live(script) as endpoint, cassette_vcr(directory).use_cassette(path.name, record_mode="all") as tape:
            endpoint.cassette = tape
            yield endpoint
        return
    if not path.exists():
        pytest.fail(f"cassette {path} is missing; record it with `make record` (INTENTGUARD_RECORD=1)")
    with refused_port() as port, cassette_vcr(directory).use_cassette(path.name, record_mode="none") as tape:
        endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", "sk-replay-not-a-key", _recorded_model(tape), False)
        endpoint.cassette = tape
        yield endpoint
        if not tape.all_played:
            pytest.fail(f"cassette {path.name} holds {len(tape)} interactions but only {tape.play_count} were played")


@contextmanager
def _live(script: Sequence[object]) -> Iterator[Endpoint]:
    base_url, api_key = os.environ.get("OPENAI_BASE_URL"), os.environ.get("OPENAI_API_KEY")
    if base_url and api_key:
        yield Endpoint(base_url, api_key, os.environ.get("OPENAI_MODEL", MODEL), True)
        return
    with ScriptedOpenAIServer(script) as server:
        yield Endpoint(server.base_url, "sk-scripted-not-a-key", MODEL, True, server)


def _recorded_model(tape: Any) -> str:
    """The model the cassette was recorded with: requests must name it again to match."""
    for request in tape.requests:
        model = json.loads(request.body).get("model")
        if isinstance(model, str):
            return model
    return MODEL
