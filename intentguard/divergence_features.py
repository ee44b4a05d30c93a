"""The per-call features of :mod:`intentguard.divergence` that read the session (arguments against
the ledger, budget, depth, the grant's age), in their plain, unfolded form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from intentguard.provenance import _CACHED_STR_LIMIT, _PIECES, _SCALARS, Trust, _pieces

if TYPE_CHECKING:
    from intentguard.session import Session

_COUNTED = frozenset({str, int, float, list, dict, tuple})
_UNTRUSTED = Trust.UNTRUSTED
_KEYS: dict[type, dict[Any, str]] = {str: {}, int: {}, float: {}}
"""Per class, a scalar's whole normalised ledger key (a pure function of the value, so it never goes
stale): one hash of the value instead of a ``(class, value)`` tuple per argument per call."""
_KEYS_LIMIT = 4096


def _key(keys: dict[Any, str], value: Any) -> str:
    key = _pieces(value)[0]
    if value.__class__ is not str or len(value) <= _CACHED_STR_LIMIT:
        if len(keys) >= _KEYS_LIMIT:
            keys.clear()
        keys[value] = key
    return key


def _argument_fractions(session: Session, args: Any) -> tuple[float, float]:
    """Of the countable arguments: the fraction seen only in untrusted content, and never seen."""
    if args.__class__ is not dict or not args:
        return 0.0, 0.0
    index = session.ledger._index
    untrusted = _UNTRUSTED
    counted = tainted = novel = 0
    for value in args.values():
        if value.__class__ not in _COUNTED:
            continue
        counted += 1
        cached = _PIECES.get((value.__class__, value)) if value.__class__ in _SCALARS else None
        found = index.get((cached or _pieces(value))[0])
        if found is None:
            novel += 1
        elif found[0].trust is untrusted and all(origin.trust is untrusted for origin in found):
            tainted += 1
    if not counted:
        return 0.0, 0.0
    return tainted / counted, novel / counted


def _budget_pressure(session: Session, name: str) -> float:
    grant = session._grant
    policy = grant._lookup.get(name)
    if policy is None:
        return 0.0
    tool = session._used.get(name, 0) / policy.max_calls
    total = session._used_total / grant._total
    return tool if tool > total else total


def _depth(depth: Any) -> float:
    depth = float(depth)
    return depth / 8.0 if depth < 8.0 else 1.0


def _grant_age(session: Session, now: float) -> float:
    grant = session._grant
    life = grant.expires_at - grant.issued_at
    if life <= 0:
        return 1.0
    age = (now - grant.issued_at) / life
    return age if 0.0 <= age <= 1.0 else (0.0 if age < 0.0 else 1.0)
