"""Divergence: how far a run has drifted from its intent, scored on every call in [0, 1].

A :class:`DivergenceModel` (:mod:`intentguard.divergence_model`) is a small versioned JSON
artifact (``intentguard train`` writes one; ``intentguard/models/divergence-v1.json`` ships): logistic weights over the
features in :data:`FEATURES`, the per-intent tool-transition baselines learned from benign runs,
and the IDF table of a character n-gram TF-IDF over intent and tool descriptions. The hot path
evaluates it in plain Python: everything that depends only on the intent and the tool (its
place in the intent, its privilege, the textual distance, the transition log-likelihoods) is
folded into per-intent tables once, so a call costs a few dict lookups, one lookup per argument
in the provenance ledger and one ``exp``, whatever the session's length.

Thresholds (:class:`DivergenceConfig` on the guard, ``divergence:`` in the schema; the stricter
wins): at or above ``narrow`` the high-privilege tools leave the session's grant for good (the call
that crossed is CONFIRM, or DENY if it is one of them, with a ``DIVERGENCE`` reason naming the
dropped tools); at or above ``revoke`` the session is revoked. Without thresholds nothing changes
but the score every decision carries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentguard.decision import Decision, Effect, Reason, ReasonCode
from intentguard.divergence_features import (
    _COUNTED,
    _KEYS,
    _argument_fractions,
    _budget_pressure,
    _depth,
    _grant_age,
    _key,
)
from intentguard.divergence_model import (
    _START,
    FEATURES,
    MODEL_FORMAT,
    DivergenceModel,
    intent_text,
    text_distance,
    tool_text,
)
from intentguard.errors import ConfigurationError
from intentguard.provenance import Trust, _pieces

if TYPE_CHECKING:
    from intentguard.pipeline import ToolCall
    from intentguard.schema import IntentSchema
    from intentguard.session import Session

__all__ = [
    "FEATURES",
    "MODEL_FORMAT",
    "DivergenceConfig",
    "DivergenceModel",
    "SessionScorer",
    "intent_text",
    "logit",
    "quantize",
    "text_distance",
    "tool_text",
]

_RATE_TAU = 60.0
_RATE_SCALE = 30.0
_UNTRUSTED = Trust.UNTRUSTED  # enum members are slow to look up on the class; read once
_ALLOW_EFFECT = Effect.ALLOW
_ALLOWS: list[Decision] = [Decision(Effect.ALLOW, (), q / 1000) for q in range(1001)]
"""ALLOW at each score to 1e-3: a decision is a value, so the hot path shares these."""


def quantize(score: float) -> float:
    """Scores are carried to three decimals (``Decision.score``)."""
    return int(score * 1000 + 0.5) / 1000


@dataclass(frozen=True, kw_only=True)
class DivergenceConfig:
    """How a guard scores divergence: the model (default: the shipped one) and the thresholds.

    ``narrow`` and ``revoke`` are scores in (0, 1]; None leaves that action off. A schema's own
    ``divergence:`` thresholds apply too; the lower (stricter) of the two wins.
    """

    model: DivergenceModel | str | Path | None = None
    narrow: float | None = None
    revoke: float | None = None

    def __post_init__(self) -> None:
        for name in ("narrow", "revoke"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1
            ):
                raise ConfigurationError(f"divergence {name} threshold {value!r} is not a number in (0, 1]")
        if self.narrow is not None and self.revoke is not None and self.narrow > self.revoke:
            raise ConfigurationError(
                f"divergence narrow threshold {self.narrow!r} is above revoke {self.revoke!r}; narrow first"
            )
        if isinstance(self.model, str | Path):
            object.__setattr__(self, "model", DivergenceModel.load(self.model))
        elif self.model is not None and not isinstance(self.model, DivergenceModel):
            raise ConfigurationError(f"divergence model {self.model!r} is not a DivergenceModel or a path")

    def resolved_model(self) -> DivergenceModel:
        """The model this config scores with."""
        return self.model if isinstance(self.model, DivergenceModel) else DivergenceModel.default()

    def bind(self, schema: IntentSchema) -> SessionScorer:
        """A fresh scorer for one session of ``schema``."""
        own = getattr(schema, "divergence", None)
        narrow = _stricter(self.narrow, getattr(own, "narrow", None))
        revoke = _stricter(self.revoke, getattr(own, "revoke", None))
        return SessionScorer(self.resolved_model(), schema, narrow=narrow, revoke=revoke)


def _stricter(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


class SessionScorer:
    """The divergence state of one session: O(1) counters, updated on every check under its lock.

    The score is the model's ``sigmoid(bias + w . features)``, evaluated in pieces: one number per
    (previous tool, tool) pair holds every constant term (bias, place in the intent, privilege,
    text distance, transition surprise, delegation depth); the terms that move are added only when
    their weight is not 0 and they can be (arguments present, instructions acquired, a rate)."""

    __slots__ = (
        "_grant",
        "_instructions",
        "_inv_life",
        "_inv_max",
        "_inv_total",
        "_issued",
        "_rate",
        "_rate_at",
        "_row",
        "_since",
        "_tables",
        "_w",
        "_wage",
        "_wargs",
        "_wbudget",
        "_wdepth",
        "_wrate",
        "model",
        "narrow",
        "narrowed",
        "previous",
        "revoke",
    )

    def __init__(self, model: DivergenceModel, schema: IntentSchema, *, narrow: float | None, revoke: float | None):
        self.model = model
        self.narrow = narrow
        self.revoke = revoke
        self._tables = model.tables(schema)
        w = model.weights
        self._w = tuple(w[name] for name in FEATURES)
        self._wargs = bool(self._w[5] or self._w[6])
        self._wbudget = self._w[10]
        self._wrate = self._w[11]
        self._wage = self._w[13]
        self._wdepth = self._w[12]
        self._row: Mapping[str, float] = self._tables.rows[_START]
        self._grant: Any = None
        self._inv_max: dict[str, float] = {}
        self._inv_total = 0.0
        self._issued = 0.0
        self._inv_life = 0.0
        self.previous = _START
        self.narrowed = False
        self._instructions = 0
        self._since = 0
        self._rate = 0.0
        self._rate_at = 0.0

    def features(self, session: Session, call: ToolCall, now: float) -> list[float]:
        """The raw feature vector of ``call`` (in :data:`FEATURES` order) before it is counted."""
        tables = self._tables
        name = call.name
        raw = tables.raw.get(name)
        unplanned, high, distance = raw if raw is not None else (0.0, 1.0, 1.0)
        surprise = (
            self.model.surprise(tables.intent, self.previous, name, tables.vocabulary) if raw is not None else 1.0
        )
        tainted, novel = _argument_fractions(session, call.args)
        value, verb, recency = self._instruction_features(session, call)
        return [
            unplanned,
            0.0 if raw is not None else 1.0,
            high,
            distance,
            surprise,
            tainted,
            novel,
            value,
            verb,
            recency,
            _budget_pressure(session, name),
            min(1.0, self._decayed_rate(now) / _RATE_SCALE),
            _depth(getattr(session, "depth", 0) or 0),
            _grant_age(session, now),
        ]

    def _rebind(self, grant: Any) -> None:
        """A new grant (the first, an attenuation): the budget and lifetime constants of it."""
        self._grant = grant
        self._inv_max = {name: 1.0 / policy.max_calls for name, policy in grant._lookup.items()}
        self._inv_total = 1.0 / grant._total
        self._issued = grant.issued_at
        life = grant.expires_at - grant.issued_at
        self._inv_life = 1.0 / life if life > 0 else 0.0

    def score(self, session: Session, call: ToolCall, now: float) -> float:
        """The calibrated score of ``call`` in [0, 1], from the same features, folded for speed."""
        name = call.name
        z = self._row.get(name)
        if z is None:
            z = self._tables.outside
        if self._wargs:
            args = call.args
            if args and args.__class__ is dict:
                w = self._w
                index = session.ledger._index
                counted = tainted = novel = 0
                for value in args.values():
                    # The value's ledger key from a per-class memo: no tuple to build and hash.
                    keys = _KEYS.get(value.__class__)
                    if keys is None:
                        if value.__class__ not in _COUNTED:
                            continue
                        key = _pieces(value)[0]
                    else:
                        memo = keys.get(value)
                        key = memo if memo is not None else _key(keys, value)
                    counted += 1
                    found = index.get(key)
                    if found is None:
                        novel += 1
                    elif found[0].trust is _UNTRUSTED and (
                        len(found) == 1 or all(origin.trust is _UNTRUSTED for origin in found)
                    ):
                        tainted += 1
                if counted:
                    z += (w[5] * tainted + w[6] * novel) / counted
        if session.ledger.instructions:
            w = self._w
            value, verb, recency = self._instruction_features(session, call)
            z += w[7] * value + w[8] * verb + w[9] * recency
        grant = session._grant
        if grant is not self._grant:
            self._rebind(grant)
        # Conditional expressions, not min()/max(): on the hot path the builtins cost several times more.
        if self._wbudget:
            inv = self._inv_max.get(name)
            if inv is not None:
                tool = session._used.get(name, 0) * inv
                total = session._used_total * self._inv_total
                z += self._wbudget * (tool if tool > total else total)
        rate = self._rate
        if rate and self._wrate:
            if now > self._rate_at:
                rate *= math.exp((self._rate_at - now) / _RATE_TAU)
            z += self._wrate * (rate / _RATE_SCALE if rate < _RATE_SCALE else 1.0)
        if self._wdepth:
            depth = session.depth
            if depth:
                z += self._wdepth * _depth(depth)
        if self._wage:
            inv_life = self._inv_life
            age = (now - self._issued) * inv_life if inv_life else 1.0
            z += self._wage * (age if 0.0 <= age <= 1.0 else (0.0 if age < 0.0 else 1.0))
        if z < -30.0:
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))

    def _instruction_features(self, session: Session, call: ToolCall) -> tuple[float, float, float]:
        ledger = session.ledger
        if not ledger.instructions:
            return 0.0, 0.0, 0.0
        value = 1.0 if any(ledger.instruction_matches(v) for v in call.args.values()) else 0.0
        policy = session._grant._lookup.get(call.name)
        words = policy.words if policy is not None else frozenset()
        verb = 1.0 if ledger.instruction_verbs & words else 0.0
        since = self._since if len(ledger.instructions) == self._instructions else 0
        return value, verb, 1.0 / (1.0 + since)

    def _decayed_rate(self, now: float) -> float:
        if not self._rate or now <= self._rate_at:
            return self._rate
        return self._rate * math.exp((self._rate_at - now) / _RATE_TAU)

    def decide(self, session: Session, call: ToolCall, now: float, decision: Decision) -> tuple[Decision, str | None]:
        """Score the call, act on the thresholds, and return the decision carrying its score and,
        when the session must be revoked, the reason (the caller revokes outside its lock)."""
        try:
            # A tool name that is not a string is as far outside the intent as a call can be.
            name = call.name
            step = int(self.score(session, call, now) * 1000 + 0.5) if name.__class__ is str else 1000
            score = step / 1000
            # Count the call (inlined: it runs on every check): previous tool, rate, instruction clock.
            count = len(session.ledger.instructions)
            if count != self._instructions:
                self._instructions = count
                self._since = 0
            self._since += 1
            rate = self._rate
            if rate and now > self._rate_at:
                rate *= math.exp((self._rate_at - now) / _RATE_TAU)
            self._rate = rate + 1.0
            if now > self._rate_at:
                self._rate_at = now
            if name.__class__ is not str:
                name = "<odd>"
            self.previous = name
            row = self._tables.rows.get(name)
            self._row = row if row is not None else self._tables.other
        except Exception as exc:  # noqa: BLE001 - a scorer that fails denies, never allows
            if decision.effect is Effect.DENY:  # already denied, and the failing stage named
                return Decision(Effect.DENY, decision.reasons, 1.0), None
            sentence = f"the divergence score failed with {type(exc).__name__}; the call is denied."
            return Decision(Effect.DENY, (*decision.reasons, Reason(ReasonCode.CHECK_FAILED, sentence)), 1.0), None
        revoking = None
        effect, reasons = decision.effect, decision.reasons
        if self.revoke is not None and score >= self.revoke and session.revoked is None:
            revoking = f"divergence score {score:.3f} reached the revoke threshold {self.revoke:.3f} at {call.name!r}"
            sentence = f"{revoking}; the session is revoked and every later call is denied."
            effect, reasons = Effect.DENY, (*reasons, Reason(ReasonCode.DIVERGENCE, sentence))
        elif self.narrow is not None and score >= self.narrow and not self.narrowed:
            self.narrowed = True
            grant = session._grant
            dropped = sorted(name for name, policy in grant.tools.items() if policy.high_privilege)
            if dropped:
                session._grant = grant.attenuate(drop_high_privilege=True)
                own = call.name in dropped
                sentence = (
                    f"divergence score {score:.3f} reached the narrow threshold {self.narrow:.3f} at {call.name!r}: "
                    f"the high-privilege tools {', '.join(dropped)} left the grant for the rest of the session"
                    + ("." if own else "; a person confirms this call.")
                )
                effect = max(effect, Effect.DENY if own else Effect.CONFIRM)
                reasons = (*reasons, Reason(ReasonCode.DIVERGENCE, sentence))
        if effect is _ALLOW_EFFECT and not reasons:
            return _ALLOWS[step], revoking
        return Decision(effect, reasons, score), revoking

    def carry(self, session: Session, call: ToolCall, now: float, decision: Decision) -> Decision:
        """``decision`` with the call's score, without counting the call or acting on thresholds
        (a person's answer to a CONFIRM: the call was counted when it was checked)."""
        try:
            score = quantize(self.score(session, call, now)) if call.name.__class__ is str else 1.0
        except Exception:  # noqa: BLE001 - the decision stands; its score is unknown, so the worst
            score = 1.0
        if decision.effect is Effect.ALLOW and not decision.reasons:
            return _ALLOWS[int(score * 1000 + 0.5)]
        return Decision(decision.effect, decision.reasons, score)


def logit(features: Sequence[float], model: DivergenceModel) -> float:
    """The model's log-odds for a feature vector (the unfolded form of :meth:`SessionScorer.score`)."""
    return model.bias + sum(model.weights[name] * value for name, value in zip(FEATURES, features, strict=True))
