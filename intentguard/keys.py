"""Per-tenant Ed25519 keys for hop tokens: the :class:`KeyStore` protocol and an in-memory store
that reads and writes JWKS (RFC 7517) files.

Each key belongs to exactly one tenant: a token is accepted only when the key named by its
``kid`` belongs to the tenant the token is for, so one tenant's key can never vouch for another
tenant's agents. Needs the ``tokens`` extra (PyJWT with cryptography).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from intentguard.errors import ConfigurationError, MissingExtraError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["KeyStore", "MemoryKeyStore"]


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - the dev environment has the extra
        raise MissingExtraError("Hop tokens", "tokens", "cryptography") from exc
    return ed25519


def _okp() -> Any:
    try:
        from jwt.algorithms import OKPAlgorithm
    except ImportError as exc:  # pragma: no cover - the dev environment has the extra
        raise MissingExtraError("Hop tokens", "tokens", "PyJWT[crypto]") from exc
    return OKPAlgorithm


@runtime_checkable
class KeyStore(Protocol):
    """Where hop tokens find their keys: a signing key per tenant, a verifying key per ``kid``."""

    def signing_key(self, tenant: str, /) -> tuple[str, Ed25519PrivateKey]:
        """The ``kid`` and private key that sign tokens for ``tenant``; raise if there is none."""
        ...

    def verifying_key(self, kid: str, /) -> tuple[str, Ed25519PublicKey] | None:
        """The tenant the key ``kid`` belongs to and its public key, or None if unknown."""
        ...


class MemoryKeyStore:
    """Keys in memory, per tenant; the newest private key of a tenant signs, every key verifies.

    ``to_jwks()`` / ``save()`` export them as one JWKS per tenant (public keys only unless
    ``private=True``); ``from_jwks()`` / ``load()`` read them back, e.g. in a verifying process
    that must not hold private keys.
    """

    def __init__(self) -> None:
        self._signing: dict[str, tuple[str, Ed25519PrivateKey]] = {}
        self._verifying: dict[str, tuple[str, Ed25519PublicKey]] = {}
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<MemoryKeyStore tenants={sorted({tenant for tenant, _ in self._verifying.values()})!r}>"

    def generate(self, tenant: str) -> str:
        """Create a fresh Ed25519 key for ``tenant`` (it signs from now on); returns its ``kid``."""
        return self.add(tenant, _ed25519().Ed25519PrivateKey.generate())

    def add(self, tenant: str, key: Ed25519PrivateKey | Ed25519PublicKey, *, kid: str | None = None) -> str:
        """Add a key for ``tenant``: a private key also signs, a public key only verifies."""
        ed25519 = _ed25519()
        if not isinstance(tenant, str) or not tenant:
            raise ConfigurationError(f"tenant {tenant!r} is not a tenant id; give a non-empty string")
        if isinstance(key, ed25519.Ed25519PrivateKey):
            private: Ed25519PrivateKey | None = key
            public = key.public_key()
        elif isinstance(key, ed25519.Ed25519PublicKey):
            private, public = None, key
        else:
            raise ConfigurationError(f"key {key!r} is not an Ed25519 key; hop tokens are signed with Ed25519 only")
        raw = public.public_bytes(*_raw_encoding())
        kid = kid or f"{tenant}:{hashlib.sha256(raw).hexdigest()[:16]}"
        with self._lock:
            known = self._verifying.get(kid)
            if known is not None and known[0] != tenant:
                raise ConfigurationError(
                    f"key id {kid!r} already belongs to tenant {known[0]!r}; give each key its own id"
                )
            self._verifying[kid] = (tenant, public)
            if private is not None:
                self._signing[tenant] = (kid, private)
                self._private[kid] = private
        return kid

    def signing_key(self, tenant: str, /) -> tuple[str, Ed25519PrivateKey]:
        """The newest private key of ``tenant``."""
        found = self._signing.get(tenant)
        if found is None:
            raise ConfigurationError(
                f"no signing key for tenant {tenant!r}; add one with keys.generate({tenant!r}) or keys.add(...)"
            )
        return found

    def verifying_key(self, kid: str, /) -> tuple[str, Ed25519PublicKey] | None:
        """The tenant and public key of ``kid``, or None."""
        return self._verifying.get(kid)

    def to_jwks(self, *, private: bool = False) -> dict[str, dict[str, Any]]:
        """Every key as a JWKS per tenant: ``{tenant: {"keys": [...]}}``."""
        okp = _okp()
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            items = list(self._verifying.items())
        for kid, (tenant, public) in items:
            secret = self._private.get(kid) if private else None
            jwk = okp.to_jwk(secret if secret is not None else public, as_dict=True)
            out.setdefault(tenant, {"keys": []})["keys"].append({**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})
        return out

    @classmethod
    def from_jwks(cls, data: Mapping[str, Mapping[str, Any]]) -> MemoryKeyStore:
        """Read ``{tenant: JWKS}``; a JWK with ``d`` is a private key, one without only verifies."""
        okp = _okp()
        store = cls()
        for tenant, jwks in data.items():
            keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
            if not isinstance(keys, list):
                raise ConfigurationError(f"the JWKS of tenant {tenant!r} has no 'keys' list")
            for jwk in keys:
                if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                    raise ConfigurationError(
                        f"a key of tenant {tenant!r} is not an Ed25519 JWK (kty 'OKP', crv 'Ed25519'): {jwk!r}"
                    )
                try:
                    key = okp.from_jwk(dict(jwk))
                except Exception as exc:
                    raise ConfigurationError(f"a key of tenant {tenant!r} cannot be read: {exc}") from exc
                store.add(tenant, key, kid=jwk.get("kid"))
        return store

    def save(self, path: str | Path, *, private: bool = False) -> None:
        """Write :meth:`to_jwks` to a JSON file."""
        Path(path).write_text(json.dumps(self.to_jwks(private=private), indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> MemoryKeyStore:
        """Read a file written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read key file {str(path)!r}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"key file {str(path)!r} does not hold an object of tenants")
        return cls.from_jwks(data)


def _raw_encoding() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.Raw, serialization.PublicFormat.Raw
