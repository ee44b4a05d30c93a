"""OpenID CAEP events (session-revoked, token-claims-change) become invalidations; anything
unknown or malformed is refused with InvalidEvent and revokes nothing."""

from __future__ import annotations

from typing import Any

import pytest

import intentguard as ig
from intentguard.registry import Scope
from intentguard.registry.caep import SESSION_REVOKED, TOKEN_CLAIMS_CHANGE, parse_caep
from intentguard.testing import FrozenClock


def set_of(subject: Any, kind: str = SESSION_REVOKED, *, inside: bool = False, **body: Any) -> dict[str, Any]:
    """A SET payload with one event, the subject at the top (CAEP 1.0) or inside the event (drafts)."""
    event = dict(body)
    payload: dict[str, Any] = {"iss": "https://idp.example.com/", "jti": "j-1", "events": {kind: event}}
    if inside:
        event["subject"] = subject
    else:
        payload["sub_id"] = subject
    return payload


@pytest.mark.parametrize(
    ("subject", "scope"),
    [
        ({"format": "opaque", "id": "sess-9"}, Scope.session("acme", "sess-9")),
        ({"format": "email", "email": "ann@example.com"}, Scope.user("acme", "ann@example.com")),
        ({"format": "iss_sub", "iss": "https://idp.example.com/", "sub": "u-7"}, Scope.user("acme", "u-7")),
        (
            {"format": "complex", "user": {"format": "email", "email": "ann@example.com"}},
            Scope.user("acme", "ann@example.com"),
        ),
        (
            {
                "format": "complex",
                "session": {"format": "opaque", "id": "sess-9"},
                "user": {"format": "email", "email": "ann@example.com"},
            },
            Scope.session("acme", "sess-9"),
        ),
        ({"format": "complex", "tenant": {"format": "opaque", "id": "acme"}}, Scope.of_tenant("acme")),
    ],
    ids=["opaque-session", "email", "iss_sub", "complex-user", "complex-session", "complex-tenant"],
)
def test_session_revoked_subjects_map_to_scopes(subject: dict[str, Any], scope: Scope) -> None:
    """Each subject format names the most specific scope it identifies, in the receiving tenant."""
    [(found, reason, by)] = parse_caep(set_of(subject, initiating_entity="admin"), tenant="acme")
    assert found == scope
    assert reason == "session-revoked"
    assert by == "CAEP transmitter 'https://idp.example.com/' (admin)"


def test_token_claims_change_without_claims_still_stops_the_subject() -> None:
    """A token-claims-change that lists no claims is applied with the event's name as reason."""
    [(scope, reason, _)] = parse_caep(set_of({"format": "opaque", "id": "s-1"}, TOKEN_CLAIMS_CHANGE), tenant="acme")
    assert (scope, reason) == (Scope.session("acme", "s-1"), "token-claims-change")


def test_the_subject_may_sit_inside_the_event_and_the_tenant_in_it() -> None:
    """Draft-style SETs carry the subject in the event; a complex subject's tenant needs no tenant=."""
    subject = {
        "format": "complex",
        "user": {"format": "email", "email": "ann@example.com"},
        "tenant": {"format": "opaque", "id": "globex"},
    }
    [(scope, _, by)] = parse_caep(set_of(subject, inside=True), by="idp-bridge")
    assert scope == Scope.user("globex", "ann@example.com")
    assert by == "idp-bridge"


def test_token_claims_change_names_the_changed_claims() -> None:
    """A token-claims-change stops the subject's sessions and says which claims changed."""
    payload = set_of(
        {"format": "email", "email": "ann@example.com"},
        TOKEN_CLAIMS_CHANGE,
        claims={"role": "viewer", "tier": "free"},
        reason_admin="downgraded",
    )
    [(scope, reason, _)] = parse_caep(payload, tenant="acme")
    assert scope == Scope.user("acme", "ann@example.com")
    assert reason == "downgraded; changed claims: role, tier"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("not a mapping", "JSON object"),
        ({"jti": "x"}, "no 'events'"),
        ({"events": {"https://example.com/other-event": {}}}, "not one intentguard applies"),
        ({"events": {SESSION_REVOKED: "revoke"}}, "not an object"),
        ({"events": {SESSION_REVOKED: {}}}, "names no subject"),
        (set_of({"format": "phone_number", "phone_number": "+1 555"}), "not in a format"),
        (set_of({"format": "email"}), "has no 'email'"),
        (set_of({"format": "complex"}), "no session, user or tenant"),
        (set_of({"format": "opaque", "id": "x\n"}), "invalid subject"),
    ],
)
def test_unknown_or_malformed_events_are_refused(payload: Any, match: str) -> None:
    """An event intentguard cannot apply exactly is an InvalidEvent naming the problem."""
    with pytest.raises(ig.InvalidEvent, match=match):
        parse_caep(payload, tenant="acme")


def test_a_tenant_is_required_and_must_agree() -> None:
    """Without a tenant the event is refused; a subject's tenant that differs from the receiving
    tenant is refused too, so one tenant's stream cannot revoke another's users."""
    with pytest.raises(ig.InvalidEvent, match="names no tenant"):
        parse_caep(set_of({"format": "email", "email": "ann@example.com"}))
    other = {"format": "complex", "tenant": {"format": "opaque", "id": "globex"}}
    with pytest.raises(ig.InvalidEvent, match="received for tenant 'acme'"):
        parse_caep(set_of(other), tenant="acme")


def test_a_set_with_one_bad_event_revokes_nothing(clock: FrozenClock) -> None:
    """apply_caep checks every event before applying any: a bad one leaves the registry unchanged."""
    registry = ig.MemoryRegistry(clock=clock)
    payload = set_of({"format": "email", "email": "ann@example.com"})
    payload["events"]["https://example.com/unknown"] = {}
    with pytest.raises(ig.InvalidEvent):
        registry.apply_caep(payload, tenant="acme")
    assert registry._backend_head() == 0  # not one invalidation was written
