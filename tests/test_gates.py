"""Confirmation gates: built-in handlers answer with bound approvals and fail closed."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sys
from collections.abc import Mapping
from typing import Any

import pytest

import intentguard as ig
from intentguard.decision import Reason, ReasonCode
from intentguard.gates import (
    HANDLER_ERROR_APPROVER,
    TIMEOUT_APPROVER,
    Approval,
    AsyncCallbackHandler,
    AsyncConfirmationHandler,
    CallbackHandler,
    ConfirmationHandler,
    ConfirmationRequest,
    ConsoleHandler,
    deny_all,
    format_request,
)
from intentguard.testing import FrozenClock

ARGS = {"order_id": "A123", "amount": 40, "to": "mallory@example.com"}


def make_request(
    clock: FrozenClock, *, id: str = "req-1", args: Mapping[str, Any] | None = None, ttl: float = 300
) -> ConfirmationRequest:
    """A CONFIRM request as a session would build it, created now and expiring after ``ttl`` seconds."""
    args = ARGS if args is None else args
    digest = hashlib.sha256(json.dumps(args, sort_keys=True, default=repr).encode()).hexdigest()
    return ConfirmationRequest(
        id=id,
        session="s-1",
        tenant="acme",
        user="u-7",
        agent="support-bot",
        intent="refund_request",
        tool="issue_refund",
        call_id="c3",
        args=args,
        args_sha256=digest,
        reasons=(Reason(ReasonCode.ARG_CONSTRAINT, "argument 'to' came only from tool output 'read_inbox'"),),
        provenance={"order_id": ("user",), "to": ("tool:read_inbox#c2",)},
        created_at=clock(),
        expires_at=clock() + ttl,
    )


@pytest.fixture
def request_(clock: FrozenClock) -> ConfirmationRequest:
    return make_request(clock)


def test_deny_all_denies(request_: ConfirmationRequest) -> None:
    """The default handler denies every request, bound to it, and says nobody is configured."""
    approval = deny_all(request_)
    assert not approval.approved
    assert (approval.request_id, approval.args_sha256) == (request_.id, request_.args_sha256)
    assert "no confirmation handler" in approval.note


@pytest.mark.parametrize("answer", [True, False])
def test_callback_bool_is_decided_by_the_approver(
    clock: FrozenClock, request_: ConfirmationRequest, answer: bool
) -> None:
    """A bool from the callback becomes an approval or denial by the configured approver, at the clock's time."""
    handler = CallbackHandler(lambda request: answer, approver="alice", clock=clock)
    approval = handler(request_)
    assert approval == Approval(
        request_id=request_.id, args_sha256=request_.args_sha256, approved=answer, approver="alice", decided_at=clock()
    )
    assert isinstance(handler, ConfirmationHandler)
    assert "approver='alice'" in repr(handler)


def test_callback_bound_approval_passes_through(clock: FrozenClock, request_: ConfirmationRequest) -> None:
    """An Approval bound to the request is returned as the callback gave it, with its own approver and note."""
    given = Approval.approve(request_, approver="bob", at=clock() - 1, note="checked the order")
    assert CallbackHandler(lambda request: given, approver="alice", clock=clock)(request_) == given


@pytest.mark.parametrize(
    "other",
    [
        {"request_id": "req-other"},
        {"args_sha256": "0" * 64},
        {"approver": ""},
    ],
)
def test_callback_unbound_approval_is_a_denial(
    clock: FrozenClock, request_: ConfirmationRequest, other: dict[str, str]
) -> None:
    """An approval for another request, other arguments, or nobody is a denial by the handler-error approver."""
    fields: dict[str, Any] = {
        "request_id": request_.id,
        "args_sha256": request_.args_sha256,
        "approved": True,
        "approver": "bob",
        "decided_at": clock(),
    }
    given = Approval(**{**fields, **other})
    approval = CallbackHandler(lambda request: given, approver="alice", clock=clock)(request_)
    assert not approval.approved
    assert approval.approver == HANDLER_ERROR_APPROVER
    assert (approval.request_id, approval.args_sha256) == (request_.id, request_.args_sha256)


@pytest.mark.parametrize("answer", ["yes", 1, None, object()])
def test_callback_other_answers_are_denials(clock: FrozenClock, request_: ConfirmationRequest, answer: object) -> None:
    """Anything but a bool or an Approval, truthy or not, is a denial naming what was returned."""
    approval = CallbackHandler(lambda request: answer, approver="alice", clock=clock)(request_)  # type: ignore[arg-type,return-value]
    assert not approval.approved
    assert type(answer).__name__ in approval.note


def test_callback_exception_is_a_denial(clock: FrozenClock, request_: ConfirmationRequest) -> None:
    """An exception in the callback never reaches the agent: it is a denial whose note names it."""

    def broken(request: ConfirmationRequest) -> bool:
        raise RuntimeError("approval service unreachable")

    approval = CallbackHandler(broken, approver="alice", clock=clock)(request_)
    assert not approval.approved
    assert approval.approver == HANDLER_ERROR_APPROVER
    assert approval.note == "the handler raised RuntimeError: 'approval service unreachable'"


def test_callback_late_approval_is_a_denial(clock: FrozenClock, request_: ConfirmationRequest) -> None:
    """An approval given at or after the request's expiry is a timeout denial."""

    def slow(request: ConfirmationRequest) -> bool:
        clock.advance(minutes=5)
        return True

    approval = CallbackHandler(slow, approver="alice", clock=clock)(request_)
    assert not approval.approved
    assert approval.approver == TIMEOUT_APPROVER
    assert "'alice'" in approval.note


@pytest.mark.parametrize("approver", ["", "   ", None, 7])
def test_handlers_need_an_approver_identity(approver: object) -> None:
    """A handler without a non-empty approver name is a configuration error naming the value."""
    with pytest.raises(ig.ConfigurationError, match="approver"):
        CallbackHandler(lambda request: True, approver=approver)  # type: ignore[arg-type]
    with pytest.raises(ig.ConfigurationError, match=repr(approver).replace("(", r"\(")):
        ConsoleHandler(approver=approver)  # type: ignore[arg-type]


def test_async_callback_twin(clock: FrozenClock, request_: ConfirmationRequest) -> None:
    """The async handler awaits the callback and applies the same binding and failure rules."""

    async def yes(request: ConfirmationRequest) -> bool:
        return True

    async def broken(request: ConfirmationRequest) -> bool:
        raise ValueError("bad")

    async def foreign(request: ConfirmationRequest) -> Approval:
        return Approval.approve(make_request(clock, id="req-2"), approver="bob", at=clock())

    handler = AsyncCallbackHandler(yes, approver="alice", clock=clock)
    assert isinstance(handler, AsyncConfirmationHandler)
    assert "AsyncCallbackHandler" in repr(handler)
    approval = asyncio.run(handler(request_))
    assert approval.approved
    assert approval.approver == "alice"
    failed = asyncio.run(AsyncCallbackHandler(broken, approver="alice", clock=clock)(request_))
    assert not failed.approved
    assert "ValueError" in failed.note
    unbound = asyncio.run(AsyncCallbackHandler(foreign, approver="alice", clock=clock)(request_))
    assert not unbound.approved
    assert "'req-2'" in unbound.note


def console(answer: str, clock: FrozenClock) -> tuple[ConsoleHandler, io.StringIO]:
    output = io.StringIO()
    return ConsoleHandler(approver="alice", input=io.StringIO(answer), output=output, clock=clock), output


def test_console_prompt_shows_tool_arguments_origins_and_reasons(
    clock: FrozenClock, request_: ConfirmationRequest
) -> None:
    """The prompt names the tool, each argument with its value and origins, every reason, then asks y/N."""
    handler, output = console("n\n", clock)
    handler(request_)
    text = output.getvalue()
    assert "Confirm tool call 'issue_refund' (request 'req-1', expires 2026-01-01 09:05:00 UTC)" in text
    assert "agent 'support-bot' for user 'u-7' in tenant 'acme'" in text
    assert "  order_id = 'A123'\n    from: user\n" in text
    assert "  to = 'mallory@example.com'\n    from: tool:read_inbox#c2\n" in text
    assert "  amount = 40\n    from: unknown origin\n" in text
    assert "  - ARG_CONSTRAINT: argument 'to' came only from tool output 'read_inbox'\n" in text
    assert text.endswith("Approve? [y/N] ")


@pytest.mark.parametrize("answer", ["y\n", "yes\n", "  Y \n", "YES"])
def test_console_explicit_yes_approves(clock: FrozenClock, request_: ConfirmationRequest, answer: str) -> None:
    """Only an explicit y or yes, in any case and spacing, approves, by the console's approver."""
    approval = console(answer, clock)[0](request_)
    assert approval.approved
    assert approval.approver == "alice"


@pytest.mark.parametrize("answer", ["n\n", "\n", "no\n", "maybe\n", "yess\n", "y es\n", "1\n"])
def test_console_anything_else_denies(clock: FrozenClock, request_: ConfirmationRequest, answer: str) -> None:
    """Any other answer, an empty line included, is a denial that records what was typed."""
    approval = console(answer, clock)[0](request_)
    assert not approval.approved
    assert approval.note == f"answered {answer.strip()!r}"


def test_console_end_of_input_denies(clock: FrozenClock, request_: ConfirmationRequest) -> None:
    """End of input (nobody there to answer) is a denial."""
    approval = console("", clock)[0](request_)
    assert not approval.approved
    assert "input ended" in approval.note


def test_console_closed_streams_deny(clock: FrozenClock, request_: ConfirmationRequest) -> None:
    """A closed input or output stream is a denial naming the failure, never an exception."""
    closed = io.StringIO()
    closed.close()
    for handler in (
        ConsoleHandler(approver="alice", input=closed, output=io.StringIO(), clock=clock),
        ConsoleHandler(approver="alice", input=io.StringIO("y\n"), output=closed, clock=clock),
    ):
        approval = handler(request_)
        assert not approval.approved
        assert approval.approver == HANDLER_ERROR_APPROVER
        assert "ValueError" in approval.note


def test_console_defaults_to_the_current_standard_streams(
    clock: FrozenClock, request_: ConfirmationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without streams the handler reads sys.stdin and writes sys.stdout as they are when it asks."""
    handler = ConsoleHandler(approver="alice", clock=clock)
    output = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO("yes\n"))
    monkeypatch.setattr(sys, "stdout", output)
    assert handler(request_).approved
    assert "Approve? [y/N]" in output.getvalue()


def test_prompt_values_are_bounded_and_escaped(clock: FrozenClock) -> None:
    """Long values keep their head and tail within the limit; control characters are escaped, never raw."""
    request = make_request(
        clock, args={"body": "A" * 5000 + "tail", "subject": "hi\x1b[2J\rwire funds", "items": list(range(1000))}
    )
    text = format_request(request)
    assert "\x1b" not in text
    assert "\r" not in text
    assert "\\x1b[2J\\rwire funds" in text
    body = next(line for line in text.splitlines() if line.startswith("  body = "))
    assert len(body) < 230
    assert body.endswith("tail'")
    items = next(line for line in text.splitlines() if line.startswith("  items = "))
    assert len(items) < 230
    assert "..." in items


def test_prompt_without_arguments_or_reasons(clock: FrozenClock) -> None:
    """A request with no arguments and no reasons still reads as a complete prompt."""
    request = make_request(clock, args={})
    text = format_request(ConfirmationRequest(**{**_fields(request), "reasons": ()}))
    assert "Arguments: none" in text
    assert "no reason given" in text


def _fields(request: ConfirmationRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in ConfirmationRequest.__dataclass_fields__}
