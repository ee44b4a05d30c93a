"""Intent resolvers: the spawn-time parser that turns a request into a declared intent.

A resolver is any callable ``(first_user_message, metadata) -> ResolvedIntent | None``
(:data:`~intentguard.replay.IntentResolver`). :class:`RuleResolver` is the deterministic
built-in: keyword and pattern rules choose a schema, and extractors pull its parameters out
of the text (e-mail addresses, IBANs, URLs, dates, amounts, quoted names). Returning None —
no rule fits, or a required parameter cannot be found — leaves the run without an intent,
and a run without an intent has no authority.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from intentguard.errors import ConfigurationError, MissingExtraError
from intentguard.normal import normalize
from intentguard.replay import ResolvedIntent

__all__ = ["EXTRACTORS", "LLMResolver", "Rule", "RuleResolver"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_URL = re.compile(r"\bhttps?://[^\s<>\"')]+", re.IGNORECASE)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_AMOUNT = re.compile(
    r"(?:[$€£]\s?)?\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\b(?:\s?(?:usd|eur|gbp|dollars|euros))?", re.I
)
_QUOTED = re.compile(r"[\"“']([^\"”']{1,200})[\"”']")


def _all(pattern: re.Pattern[str]) -> Callable[[str], list[str]]:
    def find(text: str) -> list[str]:
        seen: list[str] = []
        for match in pattern.finditer(text):
            value = match.group(0).rstrip(".,;:")
            if value not in seen:
                seen.append(value)
        return seen

    return find


def _dates(text: str) -> list[str]:
    found = []
    for year, month, day in _ISO_DATE.findall(text):
        try:
            found.append(date(int(year), int(month), int(day)).isoformat())
        except ValueError:
            continue
    return found


def _amounts(text: str) -> list[float]:
    found = []
    for match in _AMOUNT.finditer(text):
        whole, cents = match.group(1), match.group(2)
        if _ISO_DATE.search(text, max(0, match.start() - 5), match.end() + 6):
            continue  # a date's digits are not an amount
        found.append(float(whole.replace(",", "") + (f".{cents}" if cents else "")))
    return found


def _ibans(text: str) -> list[str]:
    return [match.replace(" ", "") for match in _all(_IBAN)(text)]


EXTRACTORS: Mapping[str, Callable[[str], list[Any]]] = {
    "email": _all(_EMAIL),
    "iban": _ibans,
    "url": _all(_URL),
    "date": _dates,
    "amount": _amounts,
    "quoted": lambda text: [match.strip() for match in _QUOTED.findall(text)],
}
"""Parameter extractors by name; a rule asks for ``KIND`` (the first) or ``KIND[]`` (all)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """Choose ``schema`` when the text has any of ``keywords`` (or matches ``pattern``) and the
    metadata has every item of ``metadata``. ``params`` maps a parameter name to an extractor
    (``"email"``, ``"amount"``, ``"email[]"`` for all of them, ...) or ``"=VALUE"`` for a literal.
    ``optional`` names parameters that may stay unfilled."""

    schema: str
    keywords: Sequence[str] = ()
    pattern: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.keywords and self.pattern is None and not self.metadata:
            raise ConfigurationError(
                f"rule for {self.schema!r} matches everything; give keywords, a pattern or metadata"
            )
        for name, kind in self.params.items():
            if not kind.startswith("=") and kind.removesuffix("[]") not in EXTRACTORS:
                raise ConfigurationError(
                    f"parameter {name!r} of rule {self.schema!r} uses unknown extractor {kind!r}; "
                    f"use one of {sorted(EXTRACTORS)}, with [] for all matches, or '=VALUE'"
                )


class RuleResolver:
    """The first rule (in order) whose conditions hold and whose required parameters are found wins."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        if not rules:
            raise ConfigurationError("a RuleResolver needs at least one rule")
        self.rules = tuple(rules)
        self._patterns = {rule.schema: re.compile(rule.pattern, re.I) for rule in rules if rule.pattern}

    def __call__(self, text: str, metadata: Mapping[str, Any]) -> ResolvedIntent | None:
        words = f" {normalize(text)} "
        for rule in self.rules:
            if any(metadata.get(key) != value for key, value in rule.metadata.items()):
                continue
            keyword_hit = any(f"{normalize(keyword)}" in words for keyword in rule.keywords)
            pattern = self._patterns.get(rule.schema)
            if (rule.keywords or pattern) and not (keyword_hit or (pattern is not None and pattern.search(text))):
                continue
            params = _extract(rule, text)
            if params is not None:
                return ResolvedIntent(rule.schema, params)
        return None


def _extract(rule: Rule, text: str) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    for name, kind in rule.params.items():
        if kind.startswith("="):
            params[name] = kind[1:]
            continue
        found = EXTRACTORS[kind.removesuffix("[]")](text)
        if kind.endswith("[]"):
            if found or name in rule.optional:
                params[name] = found
                continue
        elif found:
            params[name] = found[0]
            continue
        if name not in rule.optional:
            return None
    return params


_LLM_INSTRUCTIONS = """You turn a user's request into the one task it asks for.
Choose exactly one intent from the list below by its name, and fill its parameters from the
request only, as JSON matching the intent's parameters schema. Never invent values the request
does not contain. If no intent fits, answer with the intent name "none".

Intents:
{intents}"""


class LLMResolver:
    """Asks a LangChain chat model (structured output) which intent a request declares.

    The model only proposes: the guard validates the parameters against the schema when the
    session starts, and anything the model gets wrong (an unknown intent, bad parameters, an
    error, no answer) leaves the run without an intent, which has no authority. Needs the
    ``langchain`` extra (``langchain-core``).
    """

    def __init__(self, model: Any, schemas: Mapping[str, Any], *, instructions: str = _LLM_INSTRUCTIONS) -> None:
        try:
            from langchain_core.messages import HumanMessage, SystemMessage
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise MissingExtraError("LLMResolver", "langchain", "langchain-core") from exc
        from pydantic import BaseModel, Field

        class IntentChoice(BaseModel):
            """The intent a request declares, and its parameters."""

            intent: str = Field(description="The name of the chosen intent, or 'none'.")
            params: dict[str, Any] = Field(default_factory=dict, description="The intent's parameters.")

        if not schemas:
            raise ConfigurationError("an LLMResolver needs at least one intent schema to choose from")
        self._names = frozenset(schemas)
        listing = "\n".join(
            f"- {name}: {schema.description} Parameters: {schema.parameters}"
            for name, schema in sorted(schemas.items())
        )
        self._system = SystemMessage(instructions.format(intents=listing))
        self._human = HumanMessage
        self._chain = model.with_structured_output(IntentChoice)

    def __call__(self, text: str, metadata: Mapping[str, Any]) -> ResolvedIntent | None:
        try:
            choice = self._chain.invoke([self._system, self._human(text)])
        except Exception:  # noqa: BLE001 - a model that fails declares nothing: no intent, no authority
            return None
        name = getattr(choice, "intent", None)
        params = getattr(choice, "params", None)
        if name not in self._names or not isinstance(params, dict):
            return None
        return ResolvedIntent(name, params)
