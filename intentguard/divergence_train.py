"""Training the divergence scorer (the ``[divergence]`` extra: numpy and scikit-learn).

From labelled traces (DESIGN.md's trace format; a call is divergent when its id is in the
trace's ``metadata["injection_call_ids"]``) to a :class:`~intentguard.divergence.DivergenceModel`
artifact, evaluated honestly: the runs are split **by task** (``metadata["suite"]`` and
``metadata["user_task"]``, else the trace id), the baselines, the TF-IDF and the weights are fitted
on the training tasks only, and AUROC and the precision at the chosen threshold are measured on
the held-out tasks. ``intentguard train TRACES --schemas DIR --out model.json`` runs :func:`train`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from intentguard.divergence import FEATURES, MODEL_FORMAT, DivergenceConfig, DivergenceModel, intent_text, tool_text
from intentguard.errors import ConfigurationError, MissingExtraError
from intentguard.pipeline import ToolCall
from intentguard.provenance import Source
from intentguard.replay import IntentResolver, Trace, _content, _start, _text, structured_resolver

if TYPE_CHECKING:
    from intentguard.guard import Guard

__all__ = [
    "CallRow",
    "choose_thresholds",
    "collect",
    "fit_baselines",
    "fit_idf",
    "fit_weights",
    "heldout_metrics",
    "split_tasks",
    "task_of",
    "train",
]

NGRAM_RANGE = (2, 4)


def _sklearn() -> Any:
    try:
        import sklearn  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the dev environment has the extra
        raise MissingExtraError("divergence training", "divergence", "scikit-learn") from exc
    return sklearn


@dataclass(frozen=True, slots=True)
class CallRow:
    """One tool call of a trace: where it was, its label and its features (in ``FEATURES`` order)."""

    trace_id: str
    call_id: str
    tool: str
    task: str
    intent: str | None
    benign_trace: bool
    label: int
    features: tuple[float, ...]


def task_of(trace: Trace) -> str:
    """The task a run belongs to, for splitting: ``suite/user_task`` when the metadata has them."""
    meta = trace.metadata
    if "user_task" in meta:
        return f"{meta.get('suite', '')}/{meta['user_task']}"
    return trace.id


def _labels(trace: Trace) -> frozenset[str]:
    return frozenset(str(call_id) for call_id in trace.metadata.get("injection_call_ids", ()))


def split_tasks(tasks: Iterable[str], *, holdout: float, seed: int) -> tuple[frozenset[str], frozenset[str]]:
    """Deterministic split of task ids into (train, test), ``holdout`` of each suite (the part
    before ``/``) held out, at least one task on each side when a suite has two or more."""
    if not 0 < holdout < 1:
        raise ConfigurationError(f"holdout {holdout!r} is not a fraction between 0 and 1")
    by_suite: dict[str, list[str]] = {}
    for task in sorted(set(tasks)):
        by_suite.setdefault(task.split("/", 1)[0] if "/" in task else "", []).append(task)
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not a secret
    train: set[str] = set()
    test: set[str] = set()
    for suite in sorted(by_suite):
        members = by_suite[suite]
        rng.shuffle(members)
        count = round(len(members) * holdout)
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        test.update(members[:count])
        train.update(members[count:])
    return frozenset(train), frozenset(test)


def _intent_of(trace: Trace, resolver: IntentResolver) -> str | None:
    if trace.intent is not None:
        return trace.intent.schema_
    resolved = resolver(trace.first_user_message(), trace.metadata)
    return resolved.schema if resolved is not None else None


def fit_baselines(
    traces: Iterable[Trace], resolver: IntentResolver = structured_resolver
) -> dict[str, dict[str, dict[str, int]]]:
    """Tool-transition counts per intent (``counts[intent][previous][tool]``) from benign runs."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for trace in traces:
        intent = _intent_of(trace, resolver)
        if intent is None or _labels(trace):
            continue
        rows = counts.setdefault(intent, {})
        previous = "<start>"
        for message in trace.messages:
            for call in message.tool_calls:
                row = rows.setdefault(previous, {})
                row[call.name] = row.get(call.name, 0) + 1
                previous = call.name
    return counts


def fit_idf(texts: Sequence[str]) -> dict[str, float]:
    """The IDF of every character n-gram (scikit-learn's ``char_wb`` TF-IDF) over ``texts``."""
    _sklearn()
    from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=NGRAM_RANGE)
    vectorizer.fit(texts)
    return {gram: round(float(vectorizer.idf_[i]), 6) for gram, i in vectorizer.vocabulary_.items()}


def schema_texts(guard: Guard) -> list[str]:
    """Every intent's and tool's text the TF-IDF is fitted on."""
    texts: list[str] = []
    for schema in guard.schemas.values():
        texts.append(intent_text(schema))
        texts.extend(tool_text(name, spec.description) for name, spec in schema.tools.items())
    return texts


def model_data(
    *,
    baselines: Mapping[str, Any],
    idf: Mapping[str, float],
    weights: Mapping[str, float] | None = None,
    bias: float = 0.0,
    neutral_surprise: float = 0.5,
    **extra: Any,
) -> dict[str, Any]:
    """An artifact's JSON object (``DivergenceModel(model_data(...))`` loads it)."""
    return {
        "format": MODEL_FORMAT,
        "version": "1",
        "features": list(FEATURES),
        "weights": {name: float((weights or {}).get(name, 0.0)) for name in FEATURES},
        "bias": float(bias),
        "smoothing": 1.0,
        "neutral_surprise": float(neutral_surprise),
        "tfidf": {"analyzer": "char_wb", "ngram_range": list(NGRAM_RANGE), "idf": dict(idf)},
        "baselines": dict(baselines),
        **extra,
    }


def collect(traces: Iterable[Trace], guard: Guard, resolver: IntentResolver = structured_resolver) -> list[CallRow]:
    """Replay every trace as ``intentguard.replay`` does and record each call's features just
    before it is checked (exactly what the session's scorer sees then)."""
    rows: list[CallRow] = []
    for trace in traces:
        try:
            session = _start(guard, trace, resolver)
        except ConfigurationError:
            continue  # no intent, no session: every call would be denied, nothing to score
        labels, task = _labels(trace), task_of(trace)
        scorer = session._divergence
        for message in trace.messages:
            if message.role in ("system", "user"):
                session.observe(_text(message.content), source=Source(message.role))
            elif message.role == "tool":
                session.observe_result(message.tool_call_id, message.name or "", _content(message.content))
            for item in message.tool_calls:
                call = ToolCall(item.name, item.arguments, item.id)
                features = scorer.features(session, call, session._now())
                rows.append(
                    CallRow(
                        trace.id,
                        item.id,
                        item.name,
                        task,
                        session.intent.name,
                        not labels,
                        int(item.id in labels),
                        tuple(features),
                    )
                )
                session.check(call)
    return rows


def fit_weights(rows: Sequence[CallRow], *, c: float = 1.0) -> tuple[dict[str, float], float]:
    """Logistic regression on standardised features, folded back to weights on the raw features."""
    _sklearn()
    import numpy as np
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    x = np.array([row.features for row in rows], dtype=float)
    y = np.array([row.label for row in rows], dtype=int)
    if len(set(y.tolist())) < 2:
        raise ConfigurationError("training needs both divergent and benign calls; label some injection_call_ids")
    scaler = StandardScaler().fit(x)
    fitted = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x), y)
    coef = fitted.coef_[0] / scaler.scale_
    bias = float(fitted.intercept_[0] - np.sum(coef * scaler.mean_))
    return {name: round(float(value), 6) for name, value in zip(FEATURES, coef, strict=True)}, round(bias, 6)


def scores(model: DivergenceModel, rows: Sequence[CallRow]) -> list[float]:
    """The model's score of every row (the unfolded logistic form)."""
    import math

    w = [model.weights[name] for name in FEATURES]
    out = []
    for row in rows:
        z = model.bias + sum(a * b for a, b in zip(w, row.features, strict=True))
        out.append(1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0))))
    return out


def choose_thresholds(
    rows: Sequence[CallRow], model: DivergenceModel, *, target_burden: float, revoke_burden: float | None = None
) -> dict[str, float]:
    """``narrow`` (and ``revoke``): the lowest score (to 1e-3) at which at most ``target_burden``
    (``revoke_burden``, default a fifth of it) of the benign runs would cross it."""
    highest: dict[str, float] = {}
    for row, score in zip(rows, scores(model, rows), strict=True):
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


def heldout_metrics(rows: Sequence[CallRow], model: DivergenceModel, narrow: float) -> dict[str, Any]:
    """AUROC over held-out calls and the precision and recall of ``score >= narrow``."""
    _sklearn()
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    predicted = scores(model, rows)
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
    }


def _with_neutral(row: CallRow, neutral: float, index: int) -> CallRow:
    if row.features[FEATURES.index("outside")]:
        return row
    features = list(row.features)
    features[index] = neutral
    return replace(row, features=tuple(features))


def train(
    traces: Sequence[Trace],
    guard: Guard,
    resolver: IntentResolver = structured_resolver,
    *,
    holdout: float = 0.3,
    seed: int = 0,
    target_burden: float = 0.05,
) -> tuple[DivergenceModel, dict[str, Any]]:
    """Split by task, fit baselines, TF-IDF and weights on the training tasks, choose thresholds
    for ``target_burden`` of benign training runs, and measure the held-out tasks."""
    from intentguard.guard import Guard

    train_tasks, test_tasks = split_tasks((task_of(t) for t in traces), holdout=holdout, seed=seed)
    training = [t for t in traces if task_of(t) in train_tasks]
    baselines = fit_baselines(training, resolver)
    idf = fit_idf(schema_texts(guard))
    provisional = DivergenceModel(model_data(baselines=baselines, idf=idf))
    scoring = Guard(
        schemas=list(guard.schemas.values()), clock=guard.clock, divergence=DivergenceConfig(model=provisional)
    )
    rows = collect(traces, scoring, resolver)
    train_rows = [row for row in rows if row.task in train_tasks]
    surprise = FEATURES.index("transition_surprise")
    benign = [row.features[surprise] for row in train_rows if row.label == 0]
    neutral = round(sum(benign) / len(benign), 6) if benign else 0.5
    # Intents without a baseline (none of their runs in training) get the benign average surprise.
    rows = [_with_neutral(row, neutral, surprise) if row.intent not in baselines else row for row in rows]
    train_rows = [row for row in rows if row.task in train_tasks]
    weights, bias = fit_weights(train_rows)
    fitted = DivergenceModel(
        model_data(baselines=baselines, idf=idf, weights=weights, bias=bias, neutral_surprise=neutral)
    )
    thresholds = choose_thresholds(train_rows, fitted, target_burden=target_burden)
    test_rows = [row for row in rows if row.task in test_tasks]
    report: dict[str, Any] = {
        "traces": len(traces),
        "split": {
            "by": "task (metadata suite/user_task, else the trace id)",
            "holdout": holdout,
            "seed": seed,
            "train_tasks": len(train_tasks),
            "test_tasks": sorted(test_tasks),
        },
        "train": {"calls": len(train_rows), "divergent_calls": sum(row.label for row in train_rows)},
        "heldout": heldout_metrics(test_rows, fitted, thresholds["narrow"]) if test_rows else None,
    }
    data = model_data(
        baselines=baselines,
        idf=idf,
        weights=weights,
        bias=bias,
        neutral_surprise=neutral,
        thresholds=thresholds,
        training=report,
    )
    return DivergenceModel(json.loads(json.dumps(data))), report
