"""Hop tokens: a legitimate chain verifies once, and every attack on it is a DENY with its own reason."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import intentguard as ig
from intentguard.decision import Effect, ReasonCode
from intentguard.testing import FrozenClock, sequential_ids
from intentguard.tokens import TOKEN_TYPE

from .identity_schemas import PARAMS, crm_schema

ACME = ig.Principal(user="u-7", tenant="acme", auth_event="login-42")
BOT = ig.AgentIdentity(id="support-bot")
HELPER = ig.AgentIdentity(id="researcher")


@pytest.fixture
def keys() -> ig.MemoryKeyStore:
    store = ig.MemoryKeyStore()
    store.generate("acme")
    store.generate("beta")
    return store


@pytest.fixture
def crm_guard(clock: FrozenClock, keys: ig.MemoryKeyStore) -> ig.Guard:
    with ig.Guard(schemas=[crm_schema()], clock=clock, ids=sequential_ids("t"), keys=keys) as guard:
        yield guard


@pytest.fixture
def chain(crm_guard: ig.Guard) -> list[str]:
    root = crm_guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
    return list(root.delegate(HELPER, tools=["read_record", "search_notes"]).tokens)


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def sign(keys: ig.MemoryKeyStore, tenant: str, claims: dict[str, Any], *, kid: str | None = None) -> str:
    own_kid, key = keys.signing_key(tenant)
    headers = {"kid": kid or own_kid, "typ": TOKEN_TYPE}
    return jwt.encode(claims, key, algorithm="EdDSA", headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refused(guard: ig.Guard, tokens: list[str], *, tenant: str = "acme") -> ig.Decision:
    with pytest.raises(ig.Denied) as denied:
        guard.resume(tokens, tenant=tenant)
    decision = denied.value.decision
    assert decision.effect is Effect.DENY
    return decision


def test_a_legitimate_two_hop_chain_verifies(chain: list[str], keys: ig.MemoryKeyStore, clock: FrozenClock) -> None:
    """Both hops verify; the claims mirror RFC 8693, Transaction Tokens and RFC 9396."""
    verdict = ig.verify_chain(chain, keys, now=clock())
    assert verdict.ok
    assert verdict.decision.allowed
    root, child = verdict.hops
    assert child.actors == ("support-bot", "researcher")
    claims = claims_of(chain[1])
    assert claims["sub"] == "u-7"
    assert claims["aud"] == "acme"
    assert claims["txn"] == claims_of(chain[0])["txn"] == "t-1"
    assert claims["act"] == {"sub": "researcher", "act": {"sub": "support-bot"}}
    assert [detail["tool"] for detail in claims["authorization_details"]] == ["read_record", "search_notes"]
    assert claims["intentguard"]["parent_hash"] == root.digest
    assert claims["intentguard"]["depth"] == 1
    assert set(claims) >= {"jti", "iat", "nbf", "exp"}
    assert jwt.get_unverified_header(chain[1])["alg"] == "EdDSA"


def test_a_token_is_verified_once_per_process(
    crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore, clock: FrozenClock
) -> None:
    """The verifier caches each token's verified claims (bounded), and still checks time on every use."""
    verifier = ig.HopVerifier(keys, cache_size=2)
    first = verifier.verify(chain, now=clock())
    again = verifier.verify(chain, now=clock())
    assert again.hops[0] is first.hops[0]  # cached: no second signature check
    assert again.hops[1] is first.hops[1]
    other = crm_guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
    assert verifier.verify(other.tokens, now=clock()).ok  # evicts the oldest entry (the root hop)
    assert verifier.verify(chain, now=clock()).hops[0] is not first.hops[0]
    assert not verifier.verify(chain[1:], now=clock()).ok  # linkage is checked on every use
    clock.advance(hours=2)
    assert verifier.verify(chain, now=clock()).reason.code is ReasonCode.GRANT_EXPIRED  # type: ignore[union-attr]


def test_a_tenant_a_token_used_on_tenant_b(crm_guard: ig.Guard, chain: list[str]) -> None:
    """A worker of tenant beta refuses a chain for tenant acme: TENANT_MISMATCH."""
    decision = refused(crm_guard, chain, tenant="beta")
    assert decision.codes == (ReasonCode.TENANT_MISMATCH,)
    assert "the token chain is for tenant 'acme', but this worker acts for tenant 'beta'" in decision.explain()


def test_a_replayed_jti(crm_guard: ig.Guard, chain: list[str]) -> None:
    """A chain resumes once; resuming it again is a replay."""
    crm_guard.resume(chain, tenant="acme")
    decision = refused(crm_guard, chain)
    assert decision.codes == (ReasonCode.TOKEN_INVALID,)
    assert "was already resumed (a replay" in decision.explain()


def test_a_jti_repeated_inside_a_chain(crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore) -> None:
    """A hop that reuses an earlier hop's jti is a replay inside the chain."""
    claims = claims_of(chain[1])
    claims["jti"] = claims_of(chain[0])["jti"]
    decision = refused(crm_guard, [chain[0], sign(keys, "acme", claims)])
    assert "repeats the jti of an earlier hop" in decision.explain()


def test_a_tampered_token(crm_guard: ig.Guard, chain: list[str]) -> None:
    """Changing one claim of a signed token breaks its signature."""
    header, _, signature = chain[1].split(".")
    claims = claims_of(chain[1])
    claims["authorization_details"][0]["max_calls"] = 500
    tampered = ".".join([header, b64(json.dumps(claims).encode()), signature])
    decision = refused(crm_guard, [chain[0], tampered])
    assert decision.codes == (ReasonCode.TOKEN_INVALID,)
    assert "does not verify with key" in decision.explain()


def test_a_reordered_or_cut_chain(crm_guard: ig.Guard, chain: list[str]) -> None:
    """Hops out of order, or a child without its root, do not link."""
    assert "no parent hop precedes it" in refused(crm_guard, chain[::-1]).explain()
    assert "no parent hop precedes it" in refused(crm_guard, chain[1:]).explain()


def test_a_child_from_another_parent(crm_guard: ig.Guard, chain: list[str]) -> None:
    """A child spliced under a different root of the same tenant does not name that root as its parent."""
    other = crm_guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
    assert "does not name hop 0 as its parent" in refused(crm_guard, [other.tokens[0], chain[1]]).explain()


def test_a_child_that_widens_its_parent(crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore) -> None:
    """A validly signed child asking for a tool, budget or lifetime beyond its parent is refused."""
    claims = claims_of(chain[1])
    claims["authorization_details"].append(
        {
            "type": "https://intentguard.dev/authorization/tool",
            "tool": "export_report",
            "privilege": "high",
            "max_calls": 9,
        }
    )
    wider = refused(crm_guard, [chain[0], sign(keys, "acme", claims)])
    assert wider.codes == (ReasonCode.TOKEN_INVALID,)
    assert "widens its parent: tool 'export_report' has a budget of 9 > 1" in wider.explain()
    claims = claims_of(chain[1])
    claims["exp"] = claims_of(chain[0])["exp"] + 3600
    assert "widens its parent: it expires at" in refused(crm_guard, [chain[0], sign(keys, "acme", claims)]).explain()


def test_a_depth_overflow(crm_guard: ig.Guard, keys: ig.MemoryKeyStore) -> None:
    """A hop whose depth passes its max depth is DEPTH_EXCEEDED, even when validly signed."""
    root = crm_guard.start("crm_update", PARAMS, principal=ACME, agent=BOT)
    claims = claims_of(root.tokens[0])
    claims["intentguard"]["max_depth"] = 0
    claims["intentguard"]["depth"] = 1
    decision = refused(crm_guard, [sign(keys, "acme", claims)])
    assert decision.codes == (ReasonCode.DEPTH_EXCEEDED,)
    assert "depth 1, beyond the max depth 0" in decision.explain()


def test_an_expired_parent_with_a_live_child(
    crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore, clock: FrozenClock
) -> None:
    """Once the parent hop expired, no child of it is accepted, whatever its own exp says."""
    claims = claims_of(chain[1])
    claims["exp"] = claims_of(chain[0])["exp"] + 3600
    forged = sign(keys, "acme", claims)
    clock.advance(minutes=61)
    decision = refused(crm_guard, [chain[0], forged])
    assert decision.codes == (ReasonCode.GRANT_EXPIRED,)
    assert "hop 0 expired at 2026-01-01 10:00:00 UTC; its delegations expire with it" in decision.explain()


def test_a_token_signed_by_another_tenants_key(crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore) -> None:
    """Beta's key cannot vouch for acme's agents, whether it says so in kid or hides behind acme's kid."""
    claims = claims_of(chain[0])
    own = refused(crm_guard, [sign(keys, "beta", claims)])
    assert own.codes == (ReasonCode.TOKEN_INVALID,)
    assert "is for tenant 'acme' but signed with key" in own.explain()
    assert "of tenant 'beta'" in own.explain()
    acme_kid = jwt.get_unverified_header(chain[0])["kid"]
    hidden = refused(crm_guard, [sign(keys, "beta", claims, kid=acme_kid)])
    assert "does not verify with key" in hidden.explain()


def test_alg_none(crm_guard: ig.Guard, chain: list[str]) -> None:
    """An unsigned token (alg 'none') is refused by name."""
    header = {"alg": "none", "typ": TOKEN_TYPE, "kid": jwt.get_unverified_header(chain[0])["kid"]}
    unsigned = f"{b64(json.dumps(header).encode())}.{chain[0].split('.')[1]}."
    decision = refused(crm_guard, [unsigned])
    assert "signed with algorithm 'none'; only EdDSA (Ed25519) is accepted" in decision.explain()


def test_alg_confusion_hs256_with_the_public_key(
    crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore
) -> None:
    """An HMAC token keyed with the tenant's public key (the classic confusion) is refused."""
    kid = jwt.get_unverified_header(chain[0])["kid"]
    _, public = keys.verifying_key(kid)  # type: ignore[misc]
    secret = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    forged = jwt.encode(claims_of(chain[0]), secret, algorithm="HS256", headers={"kid": kid, "typ": TOKEN_TYPE})
    decision = refused(crm_guard, [forged])
    assert "signed with algorithm 'HS256'" in decision.explain()


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("not-a-token", "is not a compact JWS"),
        (12, "is not a token string"),
        ("x" * 20_000, "is not a token string"),
    ],
)
def test_garbage_is_refused(crm_guard: ig.Guard, token: Any, words: str) -> None:
    """Anything that is not a compact JWS is TOKEN_INVALID, never an exception."""
    assert words in refused(crm_guard, [token]).explain()


def test_an_empty_or_bare_string_chain(crm_guard: ig.Guard, chain: list[str]) -> None:
    """A chain is a list of tokens: an empty list or a bare string is refused."""
    assert "no hop tokens were given" in refused(crm_guard, []).explain()
    assert "no hop tokens were given" in refused(crm_guard, chain[0]).explain()  # type: ignore[arg-type]


def test_unknown_key_type_and_claims(crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore) -> None:
    """An unknown kid, a foreign typ, a malformed claim or an unknown claim is refused with its own sentence."""
    claims = claims_of(chain[0])
    assert "names key 'nobody'" in refused(crm_guard, [sign(keys, "acme", claims, kid="nobody")]).explain()
    kid, key = keys.signing_key("acme")
    jwt_typ = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": "JWT"})
    assert "has type 'JWT'" in refused(crm_guard, [jwt_typ]).explain()
    bad = dict(claims, intentguard={**claims["intentguard"], "depth": -1})
    assert "malformed claim 'intentguard.depth'" in refused(crm_guard, [sign(keys, "acme", bad)]).explain()
    extra = dict(claims, admin=True)
    assert "malformed claim 'admin'" in refused(crm_guard, [sign(keys, "acme", extra)]).explain()


def test_a_hop_that_changes_who_or_what(crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore) -> None:
    """A child may not change the human, the task, the intent or the agents above it."""
    for change in ({"sub": "u-8"}, {"txn": "other-task"}):
        claims = {**claims_of(chain[1]), **change}
        assert "a delegation keeps it" in refused(crm_guard, [chain[0], sign(keys, "acme", claims)]).explain()
    claims = claims_of(chain[1])
    claims["act"] = {"sub": "researcher", "act": {"sub": "impostor"}}
    assert "changes 'act'" in refused(crm_guard, [chain[0], sign(keys, "acme", claims)]).explain()
    claims = claims_of(chain[1])
    claims["act"] = {"sub": "researcher"}
    assert "lists 1 agent(s)" in refused(crm_guard, [chain[0], sign(keys, "acme", claims)]).explain()


def test_a_token_not_yet_valid(crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore) -> None:
    """A hop whose nbf lies in the future is refused."""
    claims = claims_of(chain[0])
    claims["nbf"] += 600
    assert "is not valid before" in refused(crm_guard, [sign(keys, "acme", claims)]).explain()


def test_keys_travel_as_jwks(tmp_path: Path, chain: list[str], keys: ig.MemoryKeyStore, clock: FrozenClock) -> None:
    """Public keys saved as JWKS verify the chain elsewhere, but cannot sign."""
    path = tmp_path / "keys.json"
    keys.save(path)
    public = ig.MemoryKeyStore.load(path)
    assert ig.verify_chain(chain, public, now=clock()).ok
    assert "d" not in json.loads(path.read_text())["acme"]["keys"][0]
    with pytest.raises(ig.ConfigurationError, match="no signing key for tenant 'acme'"):
        public.signing_key("acme")
    keys.save(tmp_path / "private.json", private=True)
    assert ig.MemoryKeyStore.load(tmp_path / "private.json").signing_key("acme")[0] == keys.signing_key("acme")[0]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[]", "does not hold an object"),
        ('{"acme": {}}', "has no 'keys' list"),
        ('{"acme": {"keys": [{"kty": "RSA"}]}}', "not an Ed25519 JWK"),
        ('{"acme": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "!!"}]}}', "cannot be read"),
        ("{", "cannot read key file"),
    ],
)
def test_bad_key_files_are_refused(tmp_path: Path, content: str, words: str) -> None:
    """A key file that is not a JWKS per tenant of Ed25519 keys is a ConfigurationError naming the problem."""
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ig.ConfigurationError, match=words):
        ig.MemoryKeyStore.load(path)


def test_a_key_belongs_to_one_tenant(keys: ig.MemoryKeyStore) -> None:
    """One kid cannot name keys of two tenants, and only Ed25519 keys are accepted."""
    kid, key = keys.signing_key("acme")
    with pytest.raises(ig.ConfigurationError, match="already belongs to tenant 'acme'"):
        keys.add("beta", key, kid=kid)
    with pytest.raises(ig.ConfigurationError, match="not an Ed25519 key"):
        keys.add("beta", "secret")  # type: ignore[arg-type]
    with pytest.raises(ig.ConfigurationError, match="not a tenant id"):
        keys.add("", key)
    assert "acme" in repr(keys)


def test_a_guard_without_keys_has_no_tokens(guard: ig.Guard, session: ig.Session) -> None:
    """Without keys sessions carry no tokens and resume is a ConfigurationError."""
    assert session.tokens == ()
    with pytest.raises(ig.ConfigurationError, match=r"Guard\(keys=\.\.\.\)"):
        guard.resume(["x"], tenant="acme")


def test_importing_intentguard_loads_no_crypto() -> None:
    """`import intentguard` (and starting a guard without keys) imports neither jwt nor cryptography."""
    code = "import sys, intentguard\nprint(sorted({'jwt', 'cryptography'} & set(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def widen_max_depth(claims: dict[str, Any]) -> None:
    claims["intentguard"]["max_depth"] = 3


def start_earlier(claims: dict[str, Any]) -> None:
    claims["nbf"] -= 60


def bigger_session_budget(claims: dict[str, Any]) -> None:
    claims["intentguard"]["max_calls"] = 99


def unlimited_session_budget(claims: dict[str, Any]) -> None:
    claims["intentguard"]["max_calls"] = None


def lower_privilege(claims: dict[str, Any]) -> None:
    claims["authorization_details"][0]["privilege"] = "high"


def foreign_tool(claims: dict[str, Any]) -> None:
    detail = {"type": "https://intentguard.dev/authorization/tool", "tool": "ghost", "privilege": "low", "max_calls": 1}
    claims["authorization_details"].append(detail)


def no_decay(claims: dict[str, Any]) -> None:
    claims["intentguard"]["decay"] = []
    detail = {"type": "https://intentguard.dev/authorization/tool", "tool": "update_record", "privilege": "high"}
    claims["authorization_details"].append({**detail, "max_calls": 1})


def skip_a_level(claims: dict[str, Any]) -> None:
    claims["intentguard"]["depth"] = 2
    claims["act"] = {"sub": "researcher", "act": {"sub": "x", "act": {"sub": "support-bot"}}}


@pytest.mark.parametrize(
    ("forge", "words"),
    [
        (widen_max_depth, "widens its parent: max depth 3 > 2"),
        (start_earlier, "widens its parent: it starts before its parent"),
        (bigger_session_budget, "widens its parent: a session budget of 99 calls > 20"),
        (unlimited_session_budget, "widens its parent: a session budget of None calls > 20"),
        (lower_privilege, "widens its parent: tool 'read_record' changes privilege"),
        (foreign_tool, "widens its parent: tool 'ghost' is not in the parent's grant"),
        (no_decay, "widens its parent: tool 'update_record' decays at 2026-01-01 09:30:00 UTC in the parent"),
        (skip_a_level, "is at depth 2, but its parent is at depth 0"),
    ],
)
def test_every_way_of_widening_is_named(
    crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore, forge: Any, words: str
) -> None:
    """A validly signed child that widens its parent in any one way is refused with a sentence naming how."""
    claims = claims_of(chain[1])
    forge(claims)
    decision = refused(crm_guard, [chain[0], sign(keys, "acme", claims)])
    assert decision.codes == (ReasonCode.TOKEN_INVALID,)
    assert words in decision.explain()


def test_a_root_whose_task_is_not_its_session(crm_guard: ig.Guard, chain: list[str], keys: ig.MemoryKeyStore) -> None:
    """A root hop's txn must be its own session: the task starts where the root starts."""
    claims = {**claims_of(chain[0]), "txn": "someone-else"}
    assert "the root hop's txn 'someone-else'" in refused(crm_guard, [sign(keys, "acme", claims)]).explain()


class PrivateKeysOnly:
    """A key store that (wrongly) hands out private keys for verification."""

    def __init__(self, keys: ig.MemoryKeyStore) -> None:
        self.keys = keys

    def signing_key(self, tenant: str, /) -> Any:
        return self.keys.signing_key(tenant)

    def verifying_key(self, kid: str, /) -> Any:
        return "acme", self.keys.signing_key("acme")[1]


def test_a_verifying_key_must_be_an_ed25519_public_key(
    chain: list[str], keys: ig.MemoryKeyStore, clock: FrozenClock
) -> None:
    """A key store that answers with anything but an Ed25519 public key verifies nothing."""
    verdict = ig.verify_chain(chain, PrivateKeysOnly(keys), now=clock())
    assert "is not an Ed25519 public key" in verdict.reason.message  # type: ignore[union-attr]
    assert verdict.decision.codes == (ReasonCode.TOKEN_INVALID,)


def test_a_signed_token_whose_payload_is_not_json(crm_guard: ig.Guard, keys: ig.MemoryKeyStore) -> None:
    """A correctly signed token with an unreadable payload is refused, not raised."""
    kid, key = keys.signing_key("acme")
    signing_input = f"{b64(json.dumps({'alg': 'EdDSA', 'kid': kid, 'typ': TOKEN_TYPE}).encode())}.{b64(b'[not json')}"
    token = f"{signing_input}.{b64(key.sign(signing_input.encode()))}"
    assert "hop 0 cannot be read" in refused(crm_guard, [token]).explain()


def test_the_memory_registry_forgets_expired_claims_and_refuses_when_full() -> None:
    """A claimed key is refused while it lives and claimable after; a full registry refuses rather than forgets."""
    clock = FrozenClock(0)
    registry = ig.MemoryRegistry(clock=clock, max_claims=2)
    assert registry.claim_once("a", until=10)
    clock.advance(seconds=5)
    assert not registry.claim_once("a", until=10)
    assert registry.claim_once("b", until=20)
    assert not registry.claim_once("c", until=20)
    clock.advance(seconds=6)
    assert registry.claim_once("a", until=30)  # at 11 the first claim of a has expired
    clock.advance(seconds=10)
    assert registry.claim_once("c", until=25)  # b expired at 20
    assert not registry.claim_once("d", until=40)  # a and c live
    clock.advance(seconds=5)
    assert registry.claim_once("d", until=40)  # c expired, though behind a live claim: swept when full
    with pytest.raises(ig.ConfigurationError, match="non-empty key"):
        registry.claim_once("", until=1)
