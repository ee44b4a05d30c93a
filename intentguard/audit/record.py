"""The audit record: one per decision, shaped after RFC 8417 security event tokens.

``jti`` identifies the record, ``iat`` is when it was written and ``toe`` when the decision
was taken, ``txn`` is the task (the session), ``aud`` the tenant and ``sub`` the human.
The decision itself is the one event under :data:`DECISION_EVENT`. Arguments and approval
notes appear only as a SHA-256, never raw (reason sentences are redacted the same way, see
:mod:`intentguard.audit.redact`). ``pos`` numbers the record within its trail from 1 and
``prev`` is the SHA-256 of the previous record's JSON line in that trail, so a trail is a hash
chain (see docs/audit.md for what :mod:`~intentguard.audit.verify` can prove from it).

Records are written far more often than they are read: the writer builds the JSON line
directly and skips validation (:func:`build_record`); every reader validates
(:meth:`AuditRecord.from_line`), and the tests check that both agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = [
    "DECISION_EVENT",
    "GENESIS",
    "ApprovalEntry",
    "AuditRecord",
    "DecisionEvent",
    "ReasonEntry",
    "args_digest",
    "build_record",
    "text_digest",
]

DECISION_EVENT = "https://intentguard.dev/events/decision"
GENESIS = "0" * 64
"""The ``prev`` of the first record in a trail."""

_M = TypeVar("_M", bound=BaseModel)

# Encoders made once: json.dumps with options builds a new encoder on every call.
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_canonical = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=repr).encode
_SURROGATE = re.compile("[\ud800-\udfff]")


def _spell(match: re.Match[str]) -> str:
    return f"\\\\u{ord(match.group()):04x}"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReasonEntry(_Frozen):
    """A reason as recorded: its stable code and its sentence."""

    code: str
    message: str


class ApprovalEntry(_Frozen):
    """A human's answer to a confirmation request, as recorded."""

    request: str
    approver: str
    approved: bool
    note_sha256: str = Field(description="SHA-256 of the approver's note: notes are free text and may hold secrets.")
    args_sha256: str


class DecisionEvent(_Frozen):
    """What was asked, for whom, and what the guard answered."""

    seq: int = Field(ge=0, description="The decision's number within its session.")
    session: str
    intent: str
    intent_version: str
    agent: str
    actors: list[str] = Field(description="The actor chain, the human first and the acting agent last.")
    root_auth: str = Field(description="The human authorization event the run hangs from.")
    depth: int = Field(0, ge=0, description="Delegation hops between the root session and this one.")
    parent: str | None = Field(None, description="The session that delegated to this one (None for a root).")
    call_id: str | None
    tool: str
    args_sha256: str
    effect: str
    reasons: list[ReasonEntry]
    score: float = Field(ge=0.0, le=1.0)
    approval: ApprovalEntry | None = Field(None, description="The human answer this decision rests on.")


class AuditRecord(_Frozen):
    """One audit record (a security event token's claims), immutable."""

    jti: str
    iss: str = "intentguard"
    iat: int
    toe: float
    txn: str
    aud: str
    sub: str
    events: dict[str, DecisionEvent]
    pos: int = Field(ge=1, description="The record's number in its trail, from 1.")
    prev: str = Field(pattern=r"^[0-9a-f]{64}$")
    _line: str | None = PrivateAttr(None)
    _body: str | None = PrivateAttr(None)
    _digest: str | None = PrivateAttr(None)

    @classmethod
    def from_line(cls, line: str) -> AuditRecord:
        """Parse and validate one JSON line of a trail; the record keeps the exact line it came from."""
        record = cls.model_validate_json(line)
        record.__pydantic_private__["_line"] = line.rstrip("\n")  # type: ignore[index]
        return record

    @property
    def decision(self) -> DecisionEvent:
        """The decision event this record carries."""
        return self.events[DECISION_EVENT]

    # Private attributes are read through __pydantic_private__ directly: pydantic's __getattr__
    # for them costs more than the rest of a sink's work per record.
    def to_json(self) -> str:
        """The record as one line of compact JSON: the exact line hashed into the next ``prev``."""
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        line: str | None = private["_line"]
        if line is None:
            line = private["_line"] = f'{self.body()},"pos":{self.pos},"prev":"{self.prev}"}}'
        return line

    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`to_json`: what the next record's ``prev`` must be."""
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        digest: str | None = private["_digest"]
        if digest is None:
            digest = private["_digest"] = hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()
        return digest

    def body(self) -> str:
        """The record's JSON without its place in a trail: ``{"jti":...,"events":{...}`` with no
        closing brace. Every trail appends its own ``pos`` and ``prev`` (:meth:`linked`)."""
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        body: str | None = private["_body"]
        if body is None:
            data = self.model_dump(mode="json", exclude={"pos", "prev"})
            body = private["_body"] = _compact(data)[:-1]
        return body

    def linked(self, pos: int, prev: str) -> tuple[str, str]:
        """This record's JSON line and its SHA-256 as record ``pos`` of a trail whose last record
        hashes to ``prev`` (sinks that keep their own trail call this; the line is what they store)."""
        if pos == self.pos and prev == self.prev:
            return self.to_json(), self.digest()
        line = f'{self.body()},"pos":{pos},"prev":"{prev}"}}'
        return line, hashlib.sha256(line.encode("utf-8")).hexdigest()


def text_digest(text: str) -> str:
    """SHA-256 (hex) of a text's UTF-8 bytes (unencodable characters escaped, never an error)."""
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def args_digest(args: Any) -> str:
    """SHA-256 (hex) of the arguments' canonical JSON; values that are not JSON use their repr."""
    try:
        text = _canonical(args)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(args)
        except RecursionError:
            text = "<arguments nested too deep to serialise>"
    # surrogatepass: lone surrogates (what JSON's \ud800 escapes decode to) hash instead of raising.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _construct(cls: type[_M], fields: dict[str, Any], private: dict[str, Any] | None = None) -> _M:
    # What BaseModel.model_construct does, minus its per-field loop (which costs more than
    # validating): every field is given, by our own writer, and readers validate.
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", fields)
    object.__setattr__(model, "__pydantic_fields_set__", set(fields))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", private)
    return model


_REQUIRED = object()
_EVENT_DEFAULTS: dict[str, Any] = {
    name: _REQUIRED if field.is_required() else field.default for name, field in DecisionEvent.model_fields.items()
}

_EVENT_ORDER = tuple(_EVENT_DEFAULTS)


def build_record(
    *,
    jti: str,
    iat: int,
    toe: float,
    txn: str,
    aud: str,
    sub: str,
    event: dict[str, Any],
    pos: int,
    prev: str,
) -> AuditRecord:
    """Assemble a record from the writer's own values, serialising it exactly once.

    ``event`` holds :class:`DecisionEvent`'s fields with ``reasons`` as ``(code, message)``
    pairs and ``approval`` as a dict of :class:`ApprovalEntry`'s fields or None. The JSON line
    is built directly and kept on the record, so the hash chain and every sink see the same
    bytes; the record is not validated here (readers validate every line they read).
    """
    reasons = [{"code": code, "message": message} for code, message in event["reasons"]]
    # The line is written in the model's field order, so a record read back re-serialises to the same bytes.
    if tuple(event) == _EVENT_ORDER:  # the writer's own dict: already complete and in order
        event_data = {**event, "reasons": reasons}
    else:
        event_data = {name: event.get(name, default) for name, default in _EVENT_DEFAULTS.items()}
        wrong = sorted(event.keys() - _EVENT_DEFAULTS.keys()) + [k for k, v in event_data.items() if v is _REQUIRED]
        if wrong:
            raise ValueError(f"build_record: fields unknown to DecisionEvent or missing: {wrong!r}")
        event_data["reasons"] = reasons
    data = {"jti": jti, "iss": "intentguard", "iat": iat, "toe": toe, "txn": txn, "aud": aud, "sub": sub}
    data["events"] = {DECISION_EVENT: event_data}
    body = _compact(data)[:-1]
    if not body.isascii() and _SURROGATE.search(body):
        # Lone surrogates (a model's tool name or call id can carry them) can be neither written as
        # UTF-8 nor read by pydantic: record them spelled out (a backslash, "u" and four hex digits).
        body = _SURROGATE.sub(_spell, body)
        data = json.loads(body + "}")
        event_data = data["events"][DECISION_EVENT]
        reasons = event_data["reasons"]
    line = f'{body},"pos":{pos},"prev":"{prev}"}}'
    approval = event_data["approval"]
    decision = _construct(
        DecisionEvent,
        {
            **event_data,
            "reasons": [_construct(ReasonEntry, entry) for entry in reasons],
            "approval": None if approval is None else _construct(ApprovalEntry, dict(approval)),
        },
    )
    fields = {**data, "events": {DECISION_EVENT: decision}, "pos": pos, "prev": prev}
    return _construct(AuditRecord, fields, {"_line": line, "_body": body, "_digest": None})
