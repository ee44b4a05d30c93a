"""OpenID CAEP events as invalidations: ``session-revoked`` and ``token-claims-change``.

The input is the payload of a Security Event Token (RFC 8417) the caller has already verified
(a JWS, e.g. with PyJWT). The subject is read from the SET's ``sub_id`` (CAEP 1.0) or from the
event's ``subject`` (earlier drafts), in the subject identifier formats of RFC 9493:

- ``opaque``: a session id;
- ``email`` / ``iss_sub``: a user (its email, or its ``sub``), as the guard's ``Principal.user``;
- ``complex``: its ``session``, else ``user``, else ``tenant`` member, the most specific first.

A token-claims-change stops the subject's sessions: their grants were compiled from the old
claims. Anything else (another event type, a subject format not listed, a missing tenant, a
tenant that differs from the one the receiver expects) is an :class:`InvalidEvent`, and
nothing in the SET is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from intentguard.errors import ConfigurationError, InvalidEvent
from intentguard.registry import Scope

__all__ = ["SESSION_REVOKED", "TOKEN_CLAIMS_CHANGE", "parse_caep"]

_BASE = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = _BASE + "session-revoked"
TOKEN_CLAIMS_CHANGE = _BASE + "token-claims-change"
_SHORT = {SESSION_REVOKED: "session-revoked", TOKEN_CLAIMS_CHANGE: "token-claims-change"}


def parse_caep(
    payload: Mapping[str, Any], *, tenant: str | None = None, by: str | None = None
) -> list[tuple[Scope, str, str]]:
    """The invalidations a SET payload asks for: ``(scope, reason, by)`` per event."""
    if not isinstance(payload, Mapping):
        raise InvalidEvent(f"a CAEP event must be a SET payload (a JSON object), got {type(payload).__name__}")
    events = payload.get("events")
    if not isinstance(events, Mapping) or not events:
        raise InvalidEvent(f"the SET {_jti(payload)} has no 'events' object; nothing was revoked")
    plans = []
    for kind, body in events.items():
        if kind not in _SHORT:
            raise InvalidEvent(
                f"event type {kind!r} in SET {_jti(payload)} is not one intentguard applies; it accepts "
                f"{SESSION_REVOKED!r} and {TOKEN_CLAIMS_CHANGE!r}. Nothing was revoked"
            )
        if not isinstance(body, Mapping):
            raise InvalidEvent(f"the {_SHORT[kind]} event in SET {_jti(payload)} is not an object")
        subject = body.get("subject", payload.get("sub_id"))
        scope = _scope(subject, tenant, payload)
        who = by or _initiator(payload, body)
        plans.append((scope, _reason(kind, body), who))
    return plans


def _jti(payload: Mapping[str, Any]) -> str:
    return repr(payload.get("jti", "(no jti)"))


def _scope(subject: Any, tenant: str | None, payload: Mapping[str, Any]) -> Scope:
    if not isinstance(subject, Mapping) or not isinstance(subject.get("format"), str):
        raise InvalidEvent(
            f"SET {_jti(payload)} names no subject (a 'sub_id' or the event's 'subject' with a 'format')"
        )
    fmt = subject["format"]
    try:
        if fmt == "complex":
            own = subject.get("tenant")
            if own is not None:
                own_id = _identifier(own, payload)
                if tenant is not None and own_id != tenant:
                    raise InvalidEvent(
                        f"SET {_jti(payload)} is about tenant {own_id!r} but was received for tenant {tenant!r}"
                    )
                tenant = own_id
            where = _tenant(tenant, payload)
            if subject.get("session") is not None:
                return Scope.session(where, _identifier(subject["session"], payload))
            if subject.get("user") is not None:
                return Scope.user(where, _identifier(subject["user"], payload))
            if own is not None:
                return Scope.of_tenant(where)
            raise InvalidEvent(f"the complex subject of SET {_jti(payload)} has no session, user or tenant member")
        if fmt == "opaque":
            return Scope.session(_tenant(tenant, payload), _identifier(subject, payload))
        return Scope.user(_tenant(tenant, payload), _identifier(subject, payload))
    except ConfigurationError as exc:
        if isinstance(exc, InvalidEvent):
            raise
        raise InvalidEvent(f"SET {_jti(payload)} names an invalid subject: {exc}") from exc


def _identifier(subject: Any, payload: Mapping[str, Any]) -> str:
    """The identifier of a simple subject: an opaque id, an email, or the ``sub`` of ``iss_sub``."""
    fmt = subject.get("format") if isinstance(subject, Mapping) else None
    field = {"opaque": "id", "email": "email", "iss_sub": "sub"}.get(fmt) if isinstance(fmt, str) else None
    if field is None:
        raise InvalidEvent(
            f"subject {subject!r} in SET {_jti(payload)} is not in a format intentguard reads "
            "(opaque, email, iss_sub, or complex of those)"
        )
    value = subject.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"subject {subject!r} in SET {_jti(payload)} has no {field!r}")
    return value


def _tenant(tenant: str | None, payload: Mapping[str, Any]) -> str:
    if tenant is None:
        raise InvalidEvent(
            f"SET {_jti(payload)} names no tenant; pass tenant= for the stream it came from, or send a "
            "complex subject with a 'tenant' member"
        )
    return tenant


def _initiator(payload: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    issuer = payload.get("iss")
    who = f"CAEP transmitter {issuer!r}" if isinstance(issuer, str) and issuer else "a CAEP transmitter"
    entity = body.get("initiating_entity")
    return f"{who} ({entity})" if isinstance(entity, str) and entity else who


def _reason(kind: str, body: Mapping[str, Any]) -> str:
    reason = body.get("reason_admin")
    if isinstance(reason, Mapping):
        reason = reason.get("en") or next((text for text in reason.values() if isinstance(text, str)), None)
    text = reason if isinstance(reason, str) and reason.strip() else _SHORT[kind]
    if kind == TOKEN_CLAIMS_CHANGE:
        claims = body.get("claims")
        if isinstance(claims, Mapping) and claims:
            text = f"{text}; changed claims: {', '.join(sorted(str(name) for name in claims))}"
    return text[:2000]
