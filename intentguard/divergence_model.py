"""The divergence model artifact: weights, per-intent transition baselines and a character n-gram
TF-IDF, loaded from JSON and folded into per-intent tables (see :mod:`intentguard.divergence`)."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentguard.errors import ConfigurationError

if TYPE_CHECKING:
    from intentguard.schema import IntentSchema

__all__ = ["FEATURES", "MODEL_FORMAT", "DivergenceModel", "intent_text", "text_distance", "tool_text"]

MODEL_FORMAT = "intentguard-divergence/1"
FEATURES = (
    "unplanned",  # in the grant, but no benign run of this intent used it
    "outside",  # not in the intent at all
    "high_privilege",
    "text_distance",  # 1 - cosine of the intent's and the tool's descriptions (char n-gram TF-IDF)
    "transition_surprise",  # -log P(tool | previous tool) under the intent's baseline, scaled to [0, 1]
    "tainted_fraction",  # arguments whose value was seen only in untrusted content
    "novel_fraction",  # arguments whose value appears nowhere in the run
    "instruction_value",  # an argument carries a value an untrusted instruction named
    "instruction_verb",  # the tool does what an untrusted instruction told the agent to do
    "instruction_recency",  # 1 / (1 + calls since the latest untrusted instruction arrived)
    "budget_pressure",  # the larger of the tool's and the session's budget used
    "rate_pressure",  # calls in the last minute (exponentially decayed), over 30
    "depth",  # delegation depth, over 8
    "grant_age",  # fraction of the grant's lifetime gone
)
_START = "<start>"
_SURPRISE_CAP = math.log(1000.0)
_WHITESPACE = re.compile(r"\s\s+")


def _ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams inside word boundaries, exactly as scikit-learn's ``char_wb`` analyzer."""
    grams: list[str] = []
    for word in _WHITESPACE.sub(" ", text.lower()).split():
        padded = f" {word} "
        for n in range(low, high + 1):
            offset = 0
            grams.append(padded[offset : offset + n])
            while offset + n < len(padded):
                offset += 1
                grams.append(padded[offset : offset + n])
            if offset == 0:
                break
    return grams


def _tfidf(text: str, idf: Mapping[str, float], ngram_range: tuple[int, int]) -> dict[str, float]:
    counts: dict[str, float] = {}
    for gram in _ngrams(text, *ngram_range):
        weight = idf.get(gram)
        if weight is not None:
            counts[gram] = counts.get(gram, 0.0) + weight
    norm = math.sqrt(sum(value * value for value in counts.values()))
    return {gram: value / norm for gram, value in counts.items()} if norm else {}


def text_distance(a: str, b: str, idf: Mapping[str, float], ngram_range: tuple[int, int] = (2, 4)) -> float:
    """1 - cosine similarity of two texts' character n-gram TF-IDF vectors (1.0 when either is empty)."""
    left, right = _tfidf(a, idf, ngram_range), _tfidf(b, idf, ngram_range)
    return 1.0 - sum(value * right.get(gram, 0.0) for gram, value in left.items()) if left and right else 1.0


def intent_text(schema: IntentSchema) -> str:
    """What the TF-IDF reads for an intent: its name in words and its description."""
    return f"{schema.name.replace('_', ' ')} {schema.description}"


def tool_text(name: str, description: str | None) -> str:
    """What the TF-IDF reads for a tool: its name in words and its description."""
    return f"{name.replace('_', ' ')} {description or ''}".strip()


@dataclass(frozen=True)
class _Baseline:
    """Tool-transition counts of benign runs of one intent: ``counts[previous][tool]``."""

    counts: Mapping[str, Mapping[str, int]]
    unigram: Mapping[str, int] = field(init=False)
    total: int = field(init=False)

    def __post_init__(self) -> None:
        unigram: dict[str, int] = {}
        for row in self.counts.values():
            for tool, count in row.items():
                unigram[tool] = unigram.get(tool, 0) + count
        object.__setattr__(self, "unigram", unigram)
        object.__setattr__(self, "total", sum(unigram.values()))

    def surprise(self, previous: str | None, tool: str, vocabulary: int, smoothing: float) -> float:
        """-log P(tool | previous), add-``smoothing`` towards the unigram, capped and scaled to [0, 1]."""
        p_unigram = (self.unigram.get(tool, 0) + 1) / (self.total + vocabulary)
        row = self.counts.get(previous, {}) if previous is not None else {}
        p = (row.get(tool, 0) + smoothing * p_unigram) / (sum(row.values()) + smoothing)
        return min(-math.log(p), _SURPRISE_CAP) / _SURPRISE_CAP


@dataclass(frozen=True)
class _Tables:
    """One intent's constant features per tool and the model's contribution of them, precomputed."""

    intent: str
    raw: Mapping[str, tuple[float, float, float]]  # tool -> (unplanned, high_privilege, text_distance)
    base: Mapping[str, float]  # tool -> bias + the weighted constant features
    transitions: Mapping[tuple[str, str], float]  # (previous, tool) -> weighted surprise
    vocabulary: int
    rows: Mapping[str, Mapping[str, float]]  # previous -> tool -> base + weighted surprise (one lookup)
    other: Mapping[str, float]  # the row after a previous tool outside the intent (or a non-string name)
    outside: float  # bias + the weighted constants of a tool outside the intent


class DivergenceModel:
    """A trained divergence scorer: weights, baselines and TF-IDF, loaded from its JSON artifact."""

    def __init__(self, data: Mapping[str, Any], *, source: str = "<dict>") -> None:
        try:
            if data.get("format") != MODEL_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {MODEL_FORMAT!r}")
            weights = {name: float(data["weights"].get(name, 0.0)) for name in FEATURES}
            self.bias = float(data["bias"])
            tfidf = data["tfidf"]
            self.ngram_range = (int(tfidf["ngram_range"][0]), int(tfidf["ngram_range"][1]))
            self.idf: Mapping[str, float] = {str(k): float(v) for k, v in tfidf["idf"].items()}
            self.smoothing = float(data.get("smoothing", 1.0))
            self.neutral_surprise = float(data.get("neutral_surprise", 0.5))
            self.baselines = {
                intent: _Baseline({prev: {t: int(c) for t, c in row.items()} for prev, row in counts.items()})
                for intent, counts in data["baselines"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ConfigurationError(
                f"divergence model {source!r} is not a valid {MODEL_FORMAT} artifact ({exc}); "
                "write one with `intentguard train`"
            ) from exc
        if not all(math.isfinite(value) for value in (*weights.values(), self.bias)):
            raise ConfigurationError(f"divergence model {source!r} has a weight that is not a finite number")
        self.weights: Mapping[str, float] = weights
        self.version = str(data.get("version", "0"))
        self.thresholds: Mapping[str, float] = dict(data.get("thresholds", {}))
        """The thresholds training suggested (used only where a config or schema asks for them)."""
        self.data = dict(data)
        self._tables: dict[tuple[str, str, int], _Tables] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path) -> DivergenceModel:
        """Read an artifact written by ``intentguard train``."""
        try:
            text = Path(path).read_text(encoding="utf-8")
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read divergence model {str(path)!r}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"divergence model {str(path)!r} is not a JSON object")
        return cls(data, source=str(path))

    @classmethod
    def default(cls) -> DivergenceModel:
        """The model shipped in the package (trained on the AgentDojo ground-truth traces)."""
        global _DEFAULT
        if _DEFAULT is None:
            text = resources.files("intentguard").joinpath("models/divergence-v1.json").read_text("utf-8")
            _DEFAULT = cls(json.loads(text), source="intentguard/models/divergence-v1.json")
        return _DEFAULT

    def surprise(self, intent: str, previous: str | None, tool: str, vocabulary: int) -> float:
        """The transition surprise of ``tool`` after ``previous`` (None: a tool the baseline never
        saw first) under ``intent``'s baseline; an intent without one gets the benign average."""
        baseline = self.baselines.get(intent)
        if baseline is None:
            return self.neutral_surprise
        return baseline.surprise(previous, tool, vocabulary, self.smoothing)

    def tables(self, schema: IntentSchema) -> _Tables:
        """The per-intent tables, computed once per schema (TF-IDF, surprises, weighted constants)."""
        key = (schema.name, schema.version, id(schema))
        cached = self._tables.get(key)
        if cached is not None:
            return cached
        w = self.weights
        own = self.baselines.get(schema.name)
        tools = list(schema.tools)
        vocabulary = len(tools) + 1
        about = intent_text(schema)
        raw: dict[str, tuple[float, float, float]] = {}
        base: dict[str, float] = {}
        for name, spec in schema.tools.items():
            unplanned = 1.0 if own is not None and own.unigram.get(name, 0) == 0 else 0.0
            high = 1.0 if spec.privilege.value == "high" else 0.0
            distance = text_distance(about, tool_text(name, spec.description), self.idf, self.ngram_range)
            raw[name] = (unplanned, high, distance)
            base[name] = (
                self.bias + w["unplanned"] * unplanned + w["high_privilege"] * high + w["text_distance"] * distance
            )
        transitions = {
            (previous, tool): w["transition_surprise"] * self.surprise(schema.name, previous, tool, vocabulary)
            for previous in (_START, *tools)
            for tool in tools
        }
        # Everything that depends only on (previous tool, tool) folded into one number per pair: a
        # call then costs one dict lookup for its constant part. After a tool outside the intent
        # the baseline's row for it is empty, which makes the surprise the unigram's: one row.
        ws = w["transition_surprise"]
        seen = own.counts if own is not None else {}
        rows = {
            previous: {tool: base[tool] + ws * self.surprise(schema.name, previous, tool, vocabulary) for tool in tools}
            for previous in dict.fromkeys((_START, *tools, *seen))
        }
        other = {tool: base[tool] + ws * self.surprise(schema.name, None, tool, vocabulary) for tool in tools}
        outside = self.bias + w["outside"] + w["high_privilege"] + w["text_distance"] + w["transition_surprise"]
        tables = _Tables(schema.name, raw, base, transitions, vocabulary, rows, other, outside)
        with self._lock:
            if len(self._tables) >= 1024:
                self._tables.clear()
            self._tables[key] = tables
        return tables

    def to_json(self) -> str:
        """The artifact as JSON text (what ``load`` reads)."""
        return json.dumps(self.data, indent=1, sort_keys=True)


_DEFAULT: DivergenceModel | None = None
