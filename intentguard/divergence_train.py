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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from intentguard.divergence import FEATURES, MODEL_FORMAT, DivergenceConfig, DivergenceModel, intent_text, tool_text
from intentguard.divergence_cv import choose_thresholds, heldout_metrics, rebase, scores
from intentguard.errors import ConfigurationError, MissingExtraError
from intentguard.identity import AgentIdentity
from intentguard.pipeline import ToolCall
from intentguard.provenance import Source
from intentguard.replay import IntentResolver, Trace, _content, _start, _text, structured_resolver
from intentguard.testing import FrozenClock

if TYPE_CHECKING:
    from intentguard.guard import Guard
    from intentguard.session import Session

__all__ = [
    "CallRow",
    "choose_thresholds",
    "collect",
    "cross_fit",
    "fit_baselines",
    "fit_idf",
    "fit_weights",
    "heldout_metrics",
    "rebase",
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
    previous: str = "<start>"
    vocabulary: int = 0


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
    train: set[str] = set()
    test: set[str] = set()
    for suite in sorted(by_suite):
        members = by_suite[suite]
        # One generator per suite: adding a suite (generated runs) leaves the others' split alone.
        random.Random(f"{seed}/{suite}").shuffle(members)  # noqa: S311 - a reproducible split, not a secret
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
        session, times = _placed(session, trace, guard)
        scorer = session._divergence
        for message in trace.messages:
            if message.role in ("system", "user"):
                session.observe(_text(message.content), source=Source(message.role))
            elif message.role == "tool":
                session.observe_result(message.tool_call_id, message.name or "", _content(message.content))
            for item in message.tool_calls:
                times(item.id)
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
                        scorer.previous,
                        len(session.intent.schema.tools) + 1,
                    )
                )
                session.check(call)
    return rows


def _placed(session: Session, trace: Trace, guard: Guard) -> tuple[Session, Callable[[str], None]]:
    """The session a run's calls happen in, and how its clock moves. ``metadata.depth``: the run is
    delegated that many times; ``metadata.call_times``: seconds from the start per call id (followed
    when the guard's clock is a :class:`~intentguard.testing.FrozenClock`, else ignored)."""
    for _ in range(int(trace.metadata.get("depth", 0) or 0)):
        session = session.delegate(AgentIdentity(id=f"{session.agent.id}+"))
    offsets = trace.metadata.get("call_times") or {}
    clock = guard.clock
    if not offsets or not isinstance(clock, FrozenClock):
        return session, lambda _call_id: None
    start = clock()

    def move(call_id: str) -> None:
        target = start + float(offsets.get(call_id, 0.0))
        if target > clock():
            clock.advance(seconds=target - clock())

    return session, move


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


def _folds(rows: Sequence[CallRow], folds: int) -> list[frozenset[str]]:
    """The training tasks in ``folds`` groups (scikit-learn's ``GroupKFold``: no task in two)."""
    from sklearn.model_selection import GroupKFold  # type: ignore[import-untyped]

    tasks = sorted({row.task for row in rows})
    splitter = GroupKFold(n_splits=min(folds, len(tasks)))
    return [frozenset(tasks[i] for i in test) for _, test in splitter.split(tasks, groups=tasks)]


def cross_fit(
    traces: Sequence[Trace],
    rows: Sequence[CallRow],
    resolver: IntentResolver,
    *,
    folds: int = 5,
    grid: Sequence[float] = (0.01, 0.1, 1.0),
    neutral: float = 0.5,
) -> tuple[list[CallRow], list[float], dict[str, Any]]:
    """Grouped cross-validation over the training tasks: cross-fitted rows (baseline features from
    the other folds' benign runs), the regularisation ``C`` of ``grid`` with the best out-of-fold
    AUROC, and those out-of-fold scores (what the thresholds are chosen on)."""
    _sklearn()
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    groups = _folds(rows, folds)
    crossed: list[CallRow] = []
    for tasks in groups:
        others = [t for t in traces if task_of(t) not in tasks]
        crossed += rebase([row for row in rows if row.task in tasks], fit_baselines(others, resolver), neutral)
    labels = [row.label for row in crossed]
    by_c: dict[float, list[float]] = {}
    for c in grid:
        predicted: dict[int, float] = {}
        for tasks in groups:
            inside = [i for i, row in enumerate(crossed) if row.task in tasks]
            weights, bias = fit_weights([row for row in crossed if row.task not in tasks], c=c)
            model = DivergenceModel(model_data(baselines={}, idf={}, weights=weights, bias=bias))
            predicted.update(zip(inside, scores(model, [crossed[i] for i in inside]), strict=True))
        by_c[c] = [predicted[i] for i in range(len(crossed))]
    auroc = {c: round(float(roc_auc_score(labels, by_c[c])), 4) for c in grid}
    best = max(grid, key=lambda c: (auroc[c], -c))
    report = {"folds": len(groups), "by": "task (GroupKFold)", "auroc_by_c": auroc, "c": best}
    return crossed, by_c[best], report


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
    folds: int = 5,
    grid: Sequence[float] | None = None,
) -> tuple[DivergenceModel, dict[str, Any]]:
    """Split by task, fit baselines, TF-IDF and weights on the training tasks (cross-fitted, the
    regularisation chosen by grouped cross-validation over them), choose thresholds for
    ``target_burden`` of the benign training runs' out-of-fold scores, and measure the held-out tasks."""
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
    # The weights and the thresholds come from cross-fitted training rows: in-sample, a benign run's
    # tools are always in its own baseline, so `unplanned` would look like a perfect signal and
    # thresholds would be chosen on scores no new task gets.
    crossed, out_of_fold, cv = cross_fit(
        training, train_rows, resolver, folds=folds, neutral=neutral, **({"grid": grid} if grid else {})
    )
    weights, bias = fit_weights(crossed, c=cv["c"])
    fitted = DivergenceModel(
        model_data(baselines=baselines, idf=idf, weights=weights, bias=bias, neutral_surprise=neutral)
    )
    thresholds = choose_thresholds(crossed, None, target_burden=target_burden, predicted=out_of_fold)
    cv["heldin"] = heldout_metrics(crossed, None, thresholds["narrow"], predicted=out_of_fold)
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
        "cross_validation": cv,
        "heldout": heldout_metrics(test_rows, fitted, thresholds["narrow"]) if test_rows else None,
    }
    # Generated runs (benchmarks/divergence_runs.py) are measured apart from recorded ones.
    generated = [row for row in test_rows if row.task.startswith("synthetic/")]
    if generated and len(generated) < len(test_rows):
        recorded = [row for row in test_rows if not row.task.startswith("synthetic/")]
        report["heldout_recorded"] = heldout_metrics(recorded, fitted, thresholds["narrow"])
        report["heldout_synthetic"] = heldout_metrics(generated, fitted, thresholds["narrow"])
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
