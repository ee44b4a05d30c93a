"""Scoring rows and choosing and measuring thresholds (the ``[divergence]`` extra), for
:mod:`intentguard.divergence_train`: out-of-fold and held-out scores, the operating point, the
baseline features of rows recomputed under other baselines (cross-fitting)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from intentguard.divergence_model import FEATURES, DivergenceModel
from intentguard.errors import ConfigurationError, MissingExtraError

if TYPE_CHECKING:
    from intentguard.divergence_train import CallRow

__all__ = ["choose_thresholds", "heldout_metrics", "rebase", "scores"]


def _sklearn() -> Any:
    try:
        import sklearn  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the dev environment has the extra
        raise MissingExtraError("divergence training", "divergence", "scikit-learn") from exc
    return sklearn


def scores(model: DivergenceModel, rows: Sequence[CallRow]) -> list[float]:
    """The model's score of every row (the unfolded logistic form)."""
    w = [model.weights[name] for name in FEATURES]
    out = []
    for row in rows:
        z = model.bias + sum(a * b for a, b in zip(w, row.features, strict=True))
        out.append(1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0))))
    return out


def choose_thresholds(
    rows: Sequence[CallRow],
    model: DivergenceModel | None,
    *,
    target_burden: float,
    revoke_burden: float | None = None,
    predicted: Sequence[float] | None = None,
) -> dict[str, float]:
    """``narrow`` (and ``revoke``): the lowest score (to 1e-3) at which at most ``target_burden``
    (``revoke_burden``, default a fifth of it) of the benign runs would cross it. ``predicted``:
    the rows' scores when they are not ``model``'s (out-of-fold scores)."""
    if predicted is None:
        if model is None:
            raise ConfigurationError("choose_thresholds needs a model or the rows' scores")
        predicted = scores(model, rows)
    highest: dict[str, float] = {}
    for row, score in zip(rows, predicted, strict=True):
        if row.benign_trace:
            highest[row.trace_id] = max(highest.get(row.trace_id, 0.0), score)
    ordered = sorted(highest.values(), reverse=True)

    def threshold(burden: float) -> float:
        allowed = int(burden * len(ordered))
        if allowed >= len(ordered):
            return 0.001
        return min(1.0, int(ordered[allowed] * 1000 + 0.5) / 1000 + 0.001)

    narrow = threshold(target_burden)
    revoke = max(threshold(target_burden / 5 if revoke_burden is None else revoke_burden), narrow)
    return {"narrow": narrow, "revoke": revoke, "target_burden": target_burden}


def heldout_metrics(
    rows: Sequence[CallRow], model: DivergenceModel | None, narrow: float, *, predicted: Sequence[float] | None = None
) -> dict[str, Any]:
    """AUROC over held-out calls, the precision and recall of ``score >= narrow``, and the share of
    benign runs with a call at or above it (``benign_run_burden``)."""
    _sklearn()
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    if predicted is None:
        if model is None:
            raise ConfigurationError("heldout_metrics needs a model or the rows' scores")
        predicted = scores(model, rows)
    benign = {row.trace_id for row in rows if row.benign_trace}
    touched = {row.trace_id for row, s in zip(rows, predicted, strict=True) if row.benign_trace and s >= narrow}
    labels = [row.label for row in rows]
    flagged = [label for label, score in zip(labels, predicted, strict=True) if score >= narrow]
    positives = sum(labels)
    return {
        "calls": len(rows),
        "divergent_calls": positives,
        "auroc": round(float(roc_auc_score(labels, predicted)), 4) if 0 < positives < len(labels) else None,
        "precision_at_narrow": round(sum(flagged) / len(flagged), 4) if flagged else None,
        "recall_at_narrow": round(sum(flagged) / positives, 4) if positives else None,
        "flagged_calls": len(flagged),
        "benign_runs": len(benign),
        "benign_run_burden": round(len(touched) / len(benign), 4) if benign else None,
    }


def rebase(rows: Sequence[CallRow], baselines: Mapping[str, Any], neutral: float) -> list[CallRow]:
    """The rows with the two baseline features (``unplanned``, ``transition_surprise``) recomputed
    under other baselines: cross-fitting gives each training row the value it would have had if its
    task had not been in training, as a new task's calls will."""
    from intentguard.divergence_train import model_data

    model = DivergenceModel(model_data(baselines=baselines, idf={}, neutral_surprise=neutral))
    unplanned, outside, surprise = (FEATURES.index(n) for n in ("unplanned", "outside", "transition_surprise"))
    out: list[CallRow] = []
    for row in rows:
        if row.features[outside] or row.intent is None:
            out.append(row)
            continue
        features = list(row.features)
        own = model.baselines.get(row.intent)
        features[unplanned] = 1.0 if own is not None and own.unigram.get(row.tool, 0) == 0 else 0.0
        features[surprise] = model.surprise(row.intent, row.previous, row.tool, row.vocabulary)
        out.append(replace(row, features=tuple(features)))
    return out
