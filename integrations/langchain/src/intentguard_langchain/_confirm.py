"""The confirmation round trip through a LangGraph interrupt: what the person sees, what comes back.

The interrupt's value is a :class:`ConfirmationPayload` (plain JSON, so any checkpointer stores
it); the graph is resumed with ``Command(resume=answer)`` where ``answer`` is an
:class:`intentguard.Approval` for the request, a :class:`ResumeAnswer` dict, or ``True``/``False``
when the middleware was given a default ``approver``. Anything else is a denial whose note says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

import intentguard as ig
from intentguard.gates import HANDLER_ERROR_APPROVER, format_request

__all__ = ["KIND", "ConfirmationPayload", "ReasonPayload", "ResumeAnswer", "payload", "to_approval"]

KIND = "intentguard.confirmation"
"""The ``kind`` of every interrupt the middleware raises, to tell it from other interrupts."""


class ReasonPayload(TypedDict):
    """One reason a person is asked: a stable code and its sentence."""

    code: str
    message: str


class ConfirmationPayload(TypedDict):
    """The value of the interrupt raised for a CONFIRM: everything a person needs to decide."""

    kind: Literal["intentguard.confirmation"]
    request_id: str
    session: str
    tool: str
    call_id: str | None
    args: dict[str, Any]
    args_sha256: str
    """What an :class:`intentguard.Approval` for this request must carry (it binds the exact arguments)."""
    reasons: list[ReasonPayload]
    provenance: dict[str, list[str]]
    """For each argument, where its value came from (e.g. ``tool:get_ticket#c1 $.body``, ``user``)."""
    expires_at: float
    """Seconds since the epoch; an answer after this is a denial."""
    text: str
    """The request as text for people (every value shown through ``repr``)."""


class ResumeAnswer(TypedDict):
    """A person's answer, passed as ``Command(resume=ResumeAnswer(approved=..., approver=...))``."""

    approved: bool
    approver: str
    note: NotRequired[str]


def payload(request: ig.ConfirmationRequest) -> ConfirmationPayload:
    """The interrupt value for ``request``."""
    return ConfirmationPayload(
        kind="intentguard.confirmation",
        request_id=request.id,
        session=request.session,
        tool=request.tool,
        call_id=request.call_id,
        args=dict(request.args),
        args_sha256=request.args_sha256,
        reasons=[ReasonPayload(code=str(reason.code), message=reason.message) for reason in request.reasons],
        provenance={arg: list(origins) for arg, origins in request.provenance.items()},
        expires_at=request.expires_at,
        text=format_request(request),
    )


def to_approval(answer: object, request: ig.ConfirmationRequest, *, approver: str | None, now: float) -> ig.Approval:
    """The :class:`intentguard.Approval` that ``answer`` (the resume value) gives for ``request``.

    The session still checks the approval (approver named, request open and unexpired, same
    arguments, every stage again); this only translates, and anything unreadable is a denial.
    """
    if isinstance(answer, ig.Approval):
        if answer.request_id == request.id:
            return answer
        note = f"the resume value is an approval for request {answer.request_id!r}, not {request.id!r}"
    elif isinstance(answer, Mapping) and isinstance(answer.get("approved"), bool):
        make = ig.Approval.approve if answer["approved"] else ig.Approval.deny
        note = answer.get("note", "")
        return make(request, approver=answer.get("approver", ""), at=now, note=note if isinstance(note, str) else "")
    elif isinstance(answer, bool) and approver is not None:
        make = ig.Approval.approve if answer else ig.Approval.deny
        return make(request, approver=approver, at=now)
    elif isinstance(answer, bool):
        note = "a bare True/False names no approver; resume with {'approved': ..., 'approver': ...}"
    else:
        note = (
            f"the resume value is a {type(answer).__name__}; resume with an Approval or "
            "{'approved': bool, 'approver': str}"
        )
    return ig.Approval.deny(request, approver=HANDLER_ERROR_APPROVER, at=now, note=note)


def stale_answer(request: ig.ConfirmationRequest, *, now: float) -> ig.Approval:
    """The denial for a resume value that answered another request than ``request``: one shown
    before the graph was restarted or moved to another process (the session there never opened it)."""
    note = (
        "the answer was given to a confirmation shown before the run was restarted or moved; "
        "this request was never shown to a person; call the tool again to ask"
    )
    return ig.Approval.deny(request, approver=HANDLER_ERROR_APPROVER, at=now, note=note)
