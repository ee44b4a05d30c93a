"""Confirmation gates: who may turn a CONFIRM into an ALLOW, and how.

When the guard answers CONFIRM, the session builds a :class:`ConfirmationRequest` (the tool,
the arguments, why, and where each value came from) and asks a
:class:`ConfirmationHandler`. The handler answers with an :class:`Approval` naming the
approver. The session accepts an approval only once, only for the request it was made for,
and only for the exact arguments (their SHA-256); anything else, a timeout included, is a
denial. Nobody answering is a denial: the default handler is :func:`deny_all`.

Built-in handlers: :class:`CallbackHandler` and :class:`AsyncCallbackHandler` (your function
decides), :class:`ConsoleHandler` (a person at a terminal), and the persisted queue in
:mod:`intentguard.approvals`. Every one of them fails closed: an exception, a late answer, an
answer of the wrong type or an approval for another request is a denial whose note says why.
"""

from __future__ import annotations

import reprlib
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO, runtime_checkable

from intentguard.clock import Clock, SystemClock, format_time
from intentguard.decision import Reason
from intentguard.errors import ConfigurationError

__all__ = [
    "HANDLER_ERROR_APPROVER",
    "TIMEOUT_APPROVER",
    "Approval",
    "AsyncCallbackHandler",
    "AsyncConfirmationHandler",
    "CallbackHandler",
    "ConfirmationHandler",
    "ConfirmationRequest",
    "ConsoleHandler",
    "approval_problem",
    "deny_all",
    "format_request",
]

TIMEOUT_APPROVER = "intentguard:timeout"
"""The approver named on a denial because nobody decided in time (or decided too late)."""
HANDLER_ERROR_APPROVER = "intentguard:handler-error"
"""The approver named on a denial because the handler failed or answered something unusable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmationRequest:
    """A call waiting for a human: what it would do, why it was stopped, where its values came from."""

    id: str
    session: str
    tenant: str
    user: str
    agent: str
    intent: str
    tool: str
    call_id: str | None
    args: Mapping[str, Any]
    args_sha256: str
    reasons: tuple[Reason, ...]
    provenance: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """For each argument, the origins of its value (e.g. ``tool:read_inbox#c2``, ``user``)."""
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """A human's answer to one request, bound to that request and to the exact arguments."""

    request_id: str
    args_sha256: str
    approved: bool
    approver: str
    decided_at: float
    note: str = ""

    @classmethod
    def deny(cls, request: ConfirmationRequest, *, approver: str, at: float, note: str = "") -> Approval:
        """A denial of ``request`` by ``approver``."""
        return cls._answer(request, False, approver, at, note)

    @classmethod
    def approve(cls, request: ConfirmationRequest, *, approver: str, at: float, note: str = "") -> Approval:
        """An approval of ``request`` by ``approver``."""
        return cls._answer(request, True, approver, at, note)

    @classmethod
    def _answer(cls, request: ConfirmationRequest, approved: bool, approver: str, at: float, note: str) -> Approval:
        return cls(
            request_id=request.id,
            args_sha256=request.args_sha256,
            approved=approved,
            approver=approver,
            decided_at=at,
            note=note,
        )


@runtime_checkable
class ConfirmationHandler(Protocol):
    """Asks a human about one request and returns their answer (blocking)."""

    def __call__(self, request: ConfirmationRequest, /) -> Approval: ...


@runtime_checkable
class AsyncConfirmationHandler(Protocol):
    """The async twin of :class:`ConfirmationHandler`."""

    def __call__(self, request: ConfirmationRequest, /) -> Awaitable[Approval]: ...


def deny_all(request: ConfirmationRequest, /) -> Approval:
    """The default handler when nobody can answer: every request is denied."""
    return Approval.deny(
        request, approver="intentguard:deny-all", at=request.created_at, note="no confirmation handler is configured"
    )


ApprovalFn = Callable[[ConfirmationRequest], bool | Approval]
"""A function that decides one request: ``True``/``False`` or a bound :class:`Approval`."""
AsyncApprovalFn = Callable[[ConfirmationRequest], Awaitable[bool | Approval]]
"""The async twin of :data:`ApprovalFn`."""


def require_approver(approver: object, *, error: type[ConfigurationError] = ConfigurationError) -> str:
    """``approver`` if it names someone; an approval without an identity is refused."""
    if not isinstance(approver, str) or not approver.strip():
        raise error(
            f"approver {approver!r} is not an identity; give the non-empty name of whoever decides, "
            "e.g. approver='alice@example.com'"
        )
    return approver


def approval_problem(
    approval: Approval, request: ConfirmationRequest | None, *, tool: str, args_sha256: str, now: float
) -> str | None:
    """Why ``approval`` cannot stand for a call of ``tool`` with arguments hashing to ``args_sha256``
    at ``now`` — no approver, no (or an already used) request, other arguments, expired — or None."""
    if not isinstance(approval.approver, str) or not approval.approver.strip():
        return "the approval names no approver."
    if request is None:
        return f"approval for unknown or already used request {approval.request_id!r}."
    if request.tool != tool or args_sha256 != request.args_sha256 or approval.args_sha256 != args_sha256:
        return "the approval was given for other arguments than this call carries."
    if now >= request.expires_at:
        return f"the request expired at {format_time(request.expires_at)}, before it was answered."
    return None


def handler_failed(request: ConfirmationRequest, exc: BaseException, *, at: float) -> Approval:
    """The denial a handler gives when answering ``request`` raised ``exc``."""
    detail = _bounded(str(exc), 200)
    return Approval.deny(
        request, approver=HANDLER_ERROR_APPROVER, at=at, note=f"the handler raised {type(exc).__name__}: {detail}"
    )


class _Answering:
    """What the built-in handlers share: turning an answer, or a failure, into a bound Approval."""

    __slots__ = ("_clock", "approver")

    def __init__(self, *, approver: str, clock: Clock | None) -> None:
        self.approver = require_approver(approver)
        self._clock: Clock = SystemClock() if clock is None else clock

    def _settle(self, request: ConfirmationRequest, answer: object) -> Approval:
        now = self._clock()
        if isinstance(answer, bool):
            make = Approval.approve if answer else Approval.deny
            approval = make(request, approver=self.approver, at=now)
        elif not isinstance(answer, Approval):
            kind = type(answer).__name__
            note = f"the handler returned {_bounded(answer, 80)} ({kind}); return a bool or an Approval"
            return Approval.deny(request, approver=HANDLER_ERROR_APPROVER, at=now, note=note)
        elif answer.request_id != request.id or answer.args_sha256 != request.args_sha256:
            note = (
                f"the handler returned an approval for request {answer.request_id!r} with arguments "
                f"{answer.args_sha256[:12]!r}..., not for this request and these arguments"
            )
            return Approval.deny(request, approver=HANDLER_ERROR_APPROVER, at=now, note=note)
        elif not isinstance(answer.approver, str) or not answer.approver.strip():
            note = f"the handler's approval names no approver ({answer.approver!r})"
            return Approval.deny(request, approver=HANDLER_ERROR_APPROVER, at=now, note=note)
        else:
            approval = answer
        if approval.approved and now >= request.expires_at:
            note = f"approved by {approval.approver!r} after the request expired at {format_time(request.expires_at)}"
            return Approval.deny(request, approver=TIMEOUT_APPROVER, at=now, note=note)
        return approval

    def _failed(self, request: ConfirmationRequest, exc: Exception) -> Approval:
        return handler_failed(request, exc, at=self._clock())


class CallbackHandler(_Answering):
    """A handler whose decision is ``fn(request)``: a bool (decided by ``approver``) or an Approval.

    An Approval must be bound to the request (same id, same arguments hash); an exception
    in ``fn`` is a denial naming the exception, never raised to the agent.
    """

    __slots__ = ("_fn",)

    def __init__(self, fn: ApprovalFn, *, approver: str, clock: Clock | None = None) -> None:
        super().__init__(approver=approver, clock=clock)
        self._fn = fn

    def __call__(self, request: ConfirmationRequest, /) -> Approval:
        try:
            answer = self._fn(request)
        except Exception as exc:  # noqa: BLE001 - fail closed: the denial's note names the exception
            return self._failed(request, exc)
        return self._settle(request, answer)

    def __repr__(self) -> str:
        return f"CallbackHandler({self._fn!r}, approver={self.approver!r})"


class AsyncCallbackHandler(_Answering):
    """The async twin of :class:`CallbackHandler`, for ``async def fn(request)``."""

    __slots__ = ("_fn",)

    def __init__(self, fn: AsyncApprovalFn, *, approver: str, clock: Clock | None = None) -> None:
        super().__init__(approver=approver, clock=clock)
        self._fn = fn

    async def __call__(self, request: ConfirmationRequest, /) -> Approval:
        try:
            answer = await self._fn(request)
        except Exception as exc:  # noqa: BLE001 - fail closed: the denial's note names the exception
            return self._failed(request, exc)
        return self._settle(request, answer)

    def __repr__(self) -> str:
        return f"AsyncCallbackHandler({self._fn!r}, approver={self.approver!r})"


class ConsoleHandler(_Answering):
    """Asks the person at a terminal, who is ``approver``; only an explicit ``y`` or ``yes`` approves.

    The prompt shows the tool, each argument (bounded) with the origins of its value, and
    every reason. End of input, any other answer, or a stream that fails is a denial.
    ``input`` and ``output`` default to ``sys.stdin`` and ``sys.stdout`` as they are when asked.
    """

    __slots__ = ("_input", "_output")

    def __init__(
        self,
        *,
        approver: str,
        input: TextIO | None = None,
        output: TextIO | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(approver=approver, clock=clock)
        self._input = input
        self._output = output

    def __call__(self, request: ConfirmationRequest, /) -> Approval:
        try:
            answer = self._ask(request)
        except Exception as exc:  # noqa: BLE001 - fail closed: a broken or closed stream is a denial
            return self._failed(request, exc)
        return self._settle(request, answer)

    def _ask(self, request: ConfirmationRequest) -> bool | Approval:
        output = sys.stdout if self._output is None else self._output
        source = sys.stdin if self._input is None else self._input
        output.write(format_request(request) + "Approve? [y/N] ")
        output.flush()
        line = source.readline()
        if line.strip().lower() in ("y", "yes"):
            return True
        note = f"answered {_bounded(line.strip(), 40)}" if line else "no answer: the input ended"
        return Approval.deny(request, approver=self.approver, at=self._clock(), note=note)


def format_request(request: ConfirmationRequest, *, limit: int = 200) -> str:
    """A request for people: tool, who asks, each argument (``repr`` cut to ``limit``) and its origins, why.

    Every value is shown through ``repr``, so control characters cannot rewrite the terminal.
    """
    lines = [
        f"Confirm tool call {request.tool!r} (request {request.id!r}, expires {format_time(request.expires_at)})",
        f"  agent {request.agent!r} for user {request.user!r} in tenant {request.tenant!r}",
        f"  intent {request.intent!r}, session {request.session!r}, call {request.call_id!r}",
        "Arguments:" if request.args else "Arguments: none",
    ]
    for name, value in request.args.items():
        origins = request.provenance.get(name, ())
        lines.append(f"  {_text(name, 60)} = {_bounded(value, limit)}")
        lines.append("    from: " + (", ".join(_text(origin, 80) for origin in origins) or "unknown origin"))
    lines.append("Why it needs a human:" if request.reasons else "Why it needs a human: no reason given")
    lines += [f"  - {reason.code}: {_text(reason.message, 400)}" for reason in request.reasons]
    return "\n".join(lines) + "\n"


def _bounded(value: object, limit: int) -> str:
    """``repr(value)`` of at most about ``limit`` characters; long strings keep their head and tail."""
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = shortener.maxlong = max(limit, 10)
    shortener.maxlevel = 4
    text = shortener.repr(value)
    return text if len(text) <= limit + 3 else text[:limit] + "..."


def _text(value: object, limit: int) -> str:
    """Like :func:`_bounded`, without the quotes around a string: escaped, never raw."""
    text = _bounded(value, limit)
    return text[1:-1] if isinstance(value, str) and text[:1] in "'\"" and text[-1:] == text[:1] else text
