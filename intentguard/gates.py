"""Confirmation gates: who may turn a CONFIRM into an ALLOW, and how.

When the guard answers CONFIRM, the session builds a :class:`ConfirmationRequest` (the tool,
the arguments, why, and where each value came from) and asks a
:class:`ConfirmationHandler`. The handler answers with an :class:`Approval` naming the
approver. The session accepts an approval only once, only for the request it was made for,
and only for the exact arguments (their SHA-256); anything else, a timeout included, is a
denial. Nobody answering is a denial: the default handler is :func:`deny_all`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from intentguard.decision import Reason

__all__ = [
    "Approval",
    "AsyncConfirmationHandler",
    "ConfirmationHandler",
    "ConfirmationRequest",
    "deny_all",
]


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
        return cls(
            request_id=request.id,
            args_sha256=request.args_sha256,
            approved=False,
            approver=approver,
            decided_at=at,
            note=note,
        )

    @classmethod
    def approve(cls, request: ConfirmationRequest, *, approver: str, at: float, note: str = "") -> Approval:
        """An approval of ``request`` by ``approver``."""
        return cls(
            request_id=request.id,
            args_sha256=request.args_sha256,
            approved=True,
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
