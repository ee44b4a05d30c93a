"""Signed hop tokens: one compact Ed25519 JWS per delegation hop, and chain verification.

A hop token's claims mirror RFC 8693 token exchange (``sub`` the human, nested ``act`` with the
acting agent outermost), OAuth Transaction Tokens (``txn`` the task: the root session; ``aud`` the
tenant) and RFC 9396 rich authorization requests (``authorization_details``: one entry per tool,
with its privilege, budget and the argument constraints this hop added). The ``intentguard``
claim holds the intent, depth, max depth, decay schedule, session ids and the SHA-256 of the
parent hop's token. ``jti``, ``iat``, ``nbf`` and ``exp`` are the usual.

:func:`verify_chain` checks every signature (EdDSA only, with a key of the token's own tenant),
the linkage of each hop to its parent, that each hop only narrows its parent (tools, budgets,
lifetime, decay), the depth, and every hop's validity period. :class:`HopVerifier` caches the
cryptographic part per token (bounded), so a token is verified once per process; tool calls
never touch a token. Needs the ``tokens`` extra (PyJWT with cryptography).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intentguard.clock import format_time
from intentguard.decision import Decision, Effect, Reason, ReasonCode
from intentguard.errors import MissingExtraError
from intentguard.keys import KeyStore, _ed25519

if TYPE_CHECKING:
    from intentguard.schema import ArgSpec
    from intentguard.session import Session

__all__ = ["TOOL_DETAIL", "Actor", "ChainVerdict", "Hop", "HopClaims", "HopVerifier", "issue_hop", "verify_chain"]

TOKEN_TYPE = "intentguard-hop+jwt"  # noqa: S105 - a media type, not a credential
TOOL_DETAIL = "https://intentguard.dev/authorization/tool"
"""The RFC 9396 ``type`` of one tool in ``authorization_details``."""
MAX_TOKEN = 16_384


def _jwt() -> Any:
    try:
        import jwt
    except ImportError as exc:  # pragma: no cover - the dev environment has the extra
        raise MissingExtraError("Hop tokens", "tokens", "PyJWT[crypto]") from exc
    return jwt


class _Claims(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(_Claims):
    """RFC 8693 ``act``: the acting agent, and in ``act`` the agent that delegated to it."""

    sub: str = Field(min_length=1)
    act: Actor | None = None


class ToolDetail(_Claims):
    """One RFC 9396 authorization detail: a tool, its privilege, budget and added constraints."""

    type: Literal["https://intentguard.dev/authorization/tool"]
    tool: str = Field(min_length=1)
    privilege: Literal["low", "high"]
    max_calls: int = Field(ge=0)
    constraints: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Extension(_Claims):
    """The ``intentguard`` claim: what the hop token adds to the standard claims."""

    intent: str
    version: str
    params: dict[str, Any]
    session: str = Field(min_length=1)
    parent_session: str | None
    depth: int = Field(ge=0)
    max_depth: int = Field(ge=0)
    max_calls: int | None = Field(ge=0)
    start: float
    decay: list[tuple[float, list[str]]]
    parent_hash: str | None = Field(pattern=r"^[0-9a-f]{64}$")
    auth_event: str = Field(min_length=1)


class HopClaims(_Claims):
    """Every claim of a hop token, validated (unknown claims are refused)."""

    iss: Literal["intentguard"]
    sub: str = Field(min_length=1)
    aud: str = Field(min_length=1)
    txn: str = Field(min_length=1)
    act: Actor
    authorization_details: list[ToolDetail]
    intentguard: Extension
    jti: str = Field(min_length=1)
    iat: float
    nbf: float
    exp: float


@dataclass(frozen=True, slots=True)
class Hop:
    """A hop token whose signature verified: its text, SHA-256, key id and claims."""

    token: str
    digest: str
    kid: str
    claims: HopClaims

    @property
    def actors(self) -> tuple[str, ...]:
        """The agents of the chain, the root agent first and the acting agent last."""
        agents: list[str] = []
        actor: Actor | None = self.claims.act
        while actor is not None:
            agents.append(actor.sub)
            actor = actor.act
        return tuple(reversed(agents))

    @property
    def tools(self) -> Mapping[str, ToolDetail]:
        """The tools of this hop by name."""
        return {detail.tool: detail for detail in self.claims.authorization_details}


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """The result of :func:`verify_chain`: the verified hops, or the reason they are refused."""

    hops: tuple[Hop, ...]
    reason: Reason | None = None

    @property
    def ok(self) -> bool:
        """True when every hop verified."""
        return self.reason is None

    @property
    def decision(self) -> Decision:
        """A DENY with the reason (an ALLOW when the chain verified)."""
        return Decision(Effect.ALLOW) if self.reason is None else Decision(Effect.DENY, (self.reason,))


def issue_hop(
    keys: KeyStore,
    session: Session,
    *,
    parent: str | None,
    jti: str,
    now: float,
    constraints: Mapping[str, Mapping[str, ArgSpec]] | None = None,
) -> str:
    """Sign the hop token of ``session`` (its grant, chain and intent), linked to ``parent``."""
    grant = session.grant
    chain = session.chain
    act: dict[str, Any] | None = None
    for agent in chain.agents:
        act = {"sub": agent.id} if act is None else {"sub": agent.id, "act": act}
    added = constraints or {}
    details = [
        {
            "type": TOOL_DETAIL,
            "tool": name,
            "privilege": "high" if policy.high_privilege else "low",
            "max_calls": policy.max_calls,
            **(
                {
                    "constraints": {
                        arg: spec.model_dump(mode="json", exclude_defaults=True) for arg, spec in spec_map.items()
                    }
                }
                if (spec_map := added.get(name))
                else {}
            ),
        }
        for name, policy in sorted(grant.tools.items())
    ]
    claims = {
        "iss": "intentguard",
        "sub": chain.principal.user,
        "aud": chain.principal.tenant,
        "txn": chain.root_session,
        "act": act,
        "authorization_details": details,
        "intentguard": {
            "intent": grant.intent,
            "version": grant.version,
            "params": dict(session.intent.params),
            "session": session.id,
            "parent_session": chain.parent_session,
            "depth": chain.depth,
            "max_depth": grant.max_depth,
            "max_calls": grant.max_calls,
            "start": grant.issued_at,
            "decay": [[at, sorted(dropped)] for at, dropped, _ in grant.decay],
            "parent_hash": None if parent is None else _digest(parent),
            "auth_event": chain.root_auth,
        },
        "jti": jti,
        "iat": now,
        "nbf": now,
        "exp": grant.expires_at,
    }
    kid, key = keys.signing_key(chain.principal.tenant)
    token: str = _jwt().encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": TOKEN_TYPE})
    return token


def own_hop(token: str) -> tuple[str, float]:
    """The ``jti`` and ``exp`` of a hop token this process issued or verified (no signature check)."""
    claims = _jwt().decode(token, options={"verify_signature": False})
    return str(claims["jti"]), float(claims["exp"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _invalid(sentence: str) -> Reason:
    return Reason(ReasonCode.TOKEN_INVALID, sentence)


class HopVerifier:
    """Verifies hop chains, caching each token's verified claims (at most ``cache_size`` tokens).

    The cache holds only what a signature proves; linkage, narrowing and time are checked on
    every :meth:`verify`, against the ``now`` given.
    """

    def __init__(self, keys: KeyStore, *, cache_size: int = 1024) -> None:
        self.keys = keys
        self._cache_size = cache_size
        self._cache: OrderedDict[str, Hop] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, tokens: Sequence[str], *, now: float) -> ChainVerdict:
        """Verify a chain given root first; never raises."""
        if isinstance(tokens, str) or not isinstance(tokens, Sequence) or not tokens:
            return ChainVerdict((), _invalid("no hop tokens were given; pass the chain, root first, as a list."))
        hops: list[Hop] = []
        for index, token in enumerate(tokens):
            found = self._hop(index, token)
            if isinstance(found, Reason):
                return ChainVerdict(tuple(hops), found)
            problem = _timely(index, found, now) or _linked(index, found, hops[-1] if hops else None)
            if problem is not None:
                return ChainVerdict(tuple(hops), problem)
            if any(hop.claims.jti == found.claims.jti for hop in hops):
                return ChainVerdict(tuple(hops), _invalid(f"hop {index} repeats the jti of an earlier hop (a replay)."))
            hops.append(found)
        return ChainVerdict(tuple(hops))

    def _hop(self, index: int, token: object) -> Hop | Reason:
        if not isinstance(token, str) or len(token) > MAX_TOKEN:
            return _invalid(f"hop {index} is not a token string of at most {MAX_TOKEN} characters.")
        with self._lock:
            cached = self._cache.get(token)
            if cached is not None:
                self._cache.move_to_end(token)
                return cached
        found = self._check_signature(index, token)
        if isinstance(found, Hop) and self._cache_size > 0:
            with self._lock:
                self._cache[token] = found
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return found

    def _check_signature(self, index: int, token: str) -> Hop | Reason:
        jwt = _jwt()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _invalid(f"hop {index} is not a compact JWS (header.payload.signature).")
        alg, kid = header.get("alg"), header.get("kid")
        if alg != "EdDSA":
            return _invalid(f"hop {index} is signed with algorithm {alg!r}; only EdDSA (Ed25519) is accepted.")
        if header.get("typ") != TOKEN_TYPE:
            return _invalid(f"hop {index} has type {header.get('typ')!r}, not {TOKEN_TYPE!r}.")
        known = self.keys.verifying_key(kid) if isinstance(kid, str) else None
        if known is None:
            return _invalid(f"hop {index} names key {kid!r}, which this process does not know.")
        key_tenant, key = known
        if not isinstance(key, _ed25519().Ed25519PublicKey):
            return _invalid(f"key {kid!r} is not an Ed25519 public key.")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
            )
        except jwt.InvalidSignatureError:
            return _invalid(f"the signature of hop {index} does not verify with key {kid!r} (tampered or forged).")
        except jwt.PyJWTError as exc:
            return _invalid(f"hop {index} cannot be read: {exc}.")
        try:
            claims = HopClaims.model_validate(payload)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            return _invalid(f"hop {index} has a malformed claim {where!r}: {problem['msg']}.")
        if claims.aud != key_tenant:
            return _invalid(
                f"hop {index} is for tenant {claims.aud!r} but signed with key {kid!r} of tenant {key_tenant!r}; "
                "a tenant's key vouches only for its own agents."
            )
        return Hop(token, _digest(token), kid, claims)


def _timely(index: int, hop: Hop, now: float) -> Reason | None:
    claims = hop.claims
    if now < claims.nbf:
        return _invalid(f"hop {index} is not valid before {format_time(claims.nbf)}.")
    if now >= claims.exp:
        whose = "its delegations expire with it" if index == 0 else "a child never outlives the hop that made it"
        return Reason(ReasonCode.GRANT_EXPIRED, f"hop {index} expired at {format_time(claims.exp)}; {whose}.")
    return None


def _linked(index: int, hop: Hop, parent: Hop | None) -> Reason | None:
    """Whether ``hop`` is the child of ``parent`` and narrows it (or is a proper root)."""
    claims, ext = hop.claims, hop.claims.intentguard
    if ext.depth > ext.max_depth:
        return Reason(
            ReasonCode.DEPTH_EXCEEDED, f"hop {index} is at depth {ext.depth}, beyond the max depth {ext.max_depth}."
        )
    if len(hop.actors) != ext.depth + 1:
        return _invalid(f"hop {index} lists {len(hop.actors)} agent(s) in 'act' at depth {ext.depth}.")
    if parent is None:
        if ext.depth != 0 or ext.parent_hash is not None or ext.parent_session is not None:
            return _invalid(f"hop {index} is not a root (depth {ext.depth}) but no parent hop precedes it.")
        if claims.txn != ext.session:
            return _invalid(f"the root hop's txn {claims.txn!r} is not its session {ext.session!r}.")
        return None
    pc, pext = parent.claims, parent.claims.intentguard
    if ext.parent_hash != parent.digest or ext.parent_session != pext.session:
        return _invalid(f"hop {index} does not name hop {index - 1} as its parent (the chain is out of order or cut).")
    if ext.depth != pext.depth + 1:
        return _invalid(f"hop {index} is at depth {ext.depth}, but its parent is at depth {pext.depth}.")
    same = {
        "sub": (claims.sub, pc.sub),
        "aud": (claims.aud, pc.aud),
        "txn": (claims.txn, pc.txn),
        "intent": ((ext.intent, ext.version, ext.params), (pext.intent, pext.version, pext.params)),
        "start": (ext.start, pext.start),
        "auth_event": (ext.auth_event, pext.auth_event),
        "act": (hop.actors[:-1], parent.actors),
    }
    for what, (mine, theirs) in same.items():
        if mine != theirs:
            return _invalid(f"hop {index} changes {what!r} from {theirs!r} to {mine!r}; a delegation keeps it.")
    return _narrows(index, hop, parent)


def _narrows(index: int, hop: Hop, parent: Hop) -> Reason | None:
    claims, ext, pc, pext = hop.claims, hop.claims.intentguard, parent.claims, parent.claims.intentguard

    def widens(sentence: str) -> Reason:
        return _invalid(f"hop {index} widens its parent: {sentence}; a delegation can only narrow.")

    if ext.max_depth > pext.max_depth:
        return widens(f"max depth {ext.max_depth} > {pext.max_depth}")
    if claims.exp > pc.exp:
        return widens(f"it expires at {format_time(claims.exp)}, after its parent ({format_time(pc.exp)})")
    if claims.nbf < pc.nbf:
        return widens("it starts before its parent")
    if pext.max_calls is not None and (ext.max_calls is None or ext.max_calls > pext.max_calls):
        return widens(f"a session budget of {ext.max_calls} calls > {pext.max_calls}")
    mine, theirs = hop.tools, parent.tools
    for name, detail in mine.items():
        other = theirs.get(name)
        if other is None:
            return widens(f"tool {name!r} is not in the parent's grant")
        if detail.max_calls > other.max_calls:
            return widens(f"tool {name!r} has a budget of {detail.max_calls} > {other.max_calls}")
        if detail.privilege != other.privilege:
            return widens(f"tool {name!r} changes privilege")
    for at, dropped in pext.decay:
        for name in sorted(set(dropped) & set(mine)):
            if not any(when <= at and name in tools for when, tools in ext.decay):
                return widens(f"tool {name!r} decays at {format_time(at)} in the parent, not by then here")
    return None


def verify_chain(tokens: Sequence[str], keys: KeyStore, *, now: float) -> ChainVerdict:
    """Verify a chain of hop tokens, root first, at ``now`` (no cache; see :class:`HopVerifier`)."""
    return HopVerifier(keys, cache_size=0).verify(tokens, now=now)
