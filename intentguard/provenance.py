"""Provenance: where every value an agent could pass to a tool came from.

The ledger labels values, not messages. Text from the user, the system prompt, the
developer and the intent's parameters is *trusted*. Fields of structured output from a tool
the schema declares a system of record are *record* values, and *derived* ones when the
call that fetched them had only trusted arguments. Everything else — e-mails, web pages,
files, messages from other agents, and the free-text fields of records — is *untrusted*,
and so is every instruction found in it.

All the work happens at ingest: text is normalised and its candidate values (addresses,
ids, amounts, tokens, ...) are indexed once (:mod:`intentguard.values`). Looking an argument
up costs in proportion to the argument, never to the context. Instructions addressed to the
agent inside untrusted text are detected at ingest too (:mod:`intentguard.instructions`).

What the ledger cannot see: a value the model paraphrased, translated, computed or decoded
from an encoding the ledger does not undo is *unseen*, not tainted. Deny rules, budgets,
argument constraints and the divergence score back the ledger up there.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from intentguard.instructions import Instruction, detect
from intentguard.normal import normal_forms, normalize
from intentguard.values import MAX_VALUES, WordMemo, extract, pieces

__all__ = [
    "MAX_INDEXED_VALUES",
    "Digest",
    "Ledger",
    "Origin",
    "Source",
    "Trust",
    "allowed_by",
    "digest_output",
    "digest_text",
    "tool_words",
    "trust_of",
]

MAX_INDEXED_VALUES = 1_000_000
"""Distinct values one session's ledger indexes; past this it is *saturated* and fails closed."""
_MAX_ORIGINS_PER_VALUE = 16
_MAX_INSTRUCTIONS = 1_000
_WHOLE_TEXT_LIMIT = 512
_MAX_STRUCTURED_TEXT = 1 << 20


class Trust(enum.IntEnum):
    """How far a value can be believed, most trusted first."""

    TRUSTED = 0
    DERIVED = 1
    RECORD = 2
    UNTRUSTED = 3


class Source(enum.StrEnum):
    """Where text entered the run."""

    USER = "user"
    SYSTEM = "system"
    DEVELOPER = "developer"
    PARAM = "param"
    TOOL = "tool"
    RETRIEVED = "retrieved"
    AGENT = "agent"


_TRUSTED_SOURCES = frozenset({Source.USER, Source.SYSTEM, Source.DEVELOPER, Source.PARAM})
# Hot paths name enum members through these: on Python 3.11 ``Trust.UNTRUSTED`` is a ~100 ns
# descriptor lookup, a module global ~15 ns.
_TRUSTED, _DERIVED, _RECORD, _UNTRUSTED, _TOOL = (
    Trust.TRUSTED,
    Trust.DERIVED,
    Trust.RECORD,
    Trust.UNTRUSTED,
    Source.TOOL,
)


class Origin(NamedTuple):
    """One place a value was seen: its source, its trust, and a label a person can follow.

    A named tuple, not a dataclass: one is made per observation and compared on every commit, and
    a tuple is built and compared in C (a frozen dataclass costs ten times as much)."""

    source: Source
    trust: Trust
    label: str
    tool: str | None = None
    param: str | None = None

    def __str__(self) -> str:
        return f"{self.label} ({self.trust.name.lower()})"


def allowed_by(origin: Origin, sources: frozenset[str]) -> bool:
    """Whether a schema's ``sources`` list accepts a value seen at ``origin``."""
    if "any" in sources:
        return True
    if origin.trust is _TRUSTED and "trusted" in sources:
        return True
    if origin.trust <= _DERIVED and "derived" in sources:
        return True
    if origin.tool is not None and f"tool:{origin.tool}" in sources:
        return True
    return origin.param is not None and f"param:{origin.param}" in sources


_ENTITY = re.compile(r"[0-9@./:]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def tool_words(name: str) -> frozenset[str]:
    """The words of a tool name (``send_money`` → ``{send, money}``), for matching instruction verbs."""
    return frozenset(normalize(word) for word in re.split(r"[^A-Za-z0-9]+", _CAMEL.sub("_", name)) if word)


class Ledger:
    """The values one session has seen and where. Not thread-safe: the session's lock guards it."""

    def __init__(self) -> None:
        self._index: dict[str, list[Origin]] = {}
        self.instructions: list[tuple[Instruction, Origin]] = []
        self._instruction_values: dict[str, list[int]] = {}
        self.instruction_verbs: frozenset[str] = frozenset()
        self.untrusted_seen = False
        self.saturated = False
        self.digests: DigestCache = OrderedDict()
        """What short texts yielded (see :func:`digest_text`), for this session only."""
        self.words: WordMemo = OrderedDict()
        """What words yielded (see :func:`intentguard.values.extract`), for this session only."""

    def __len__(self) -> int:
        return len(self._index)

    def add_value(self, value: Any, origin: Origin) -> None:
        """Index one structured value: its whole normalised form and its significant pieces."""
        whole, parts = pieces(value)
        self._add_all([whole, *parts], origin)

    def commit(self, digest: Digest) -> list[Instruction]:
        """Add what :func:`digest_text` / :func:`digest_output` found (cheap: call it under a lock)."""
        found: list[Instruction] = []
        for values, origin, instructions in digest:
            self._add_all(values, origin)
            if origin.trust is _UNTRUSTED:
                self.untrusted_seen = True
                # extract() stops at MAX_VALUES: what an untrusted text held past that is unseen,
                # and an unseen value passes. Provenance fails closed from here on instead.
                if values.__class__ is frozenset and len(values) >= MAX_VALUES:  # digest_text gives frozensets
                    self.saturated = True
            for instruction in instructions:
                self._add_instruction(instruction, origin)
            found += instructions
        return found

    def evidence(self, value: Any) -> list[tuple[Origin, ...]]:
        """Where ``value`` was seen, as groups of origins that must each be acceptable.

        If the whole value was seen, that is one group. Otherwise each entity-like piece of it
        (with a digit, ``@``, ``.``, ``/`` or ``:`` — a domain, an id, an amount, a time) that
        was seen only outside trusted text is a group of its own: a value assembled from pieces
        is only as good as its worst piece. An empty list means the value is *unseen* (made up,
        computed or paraphrased).
        """
        whole, parts = _pieces(value)
        found = self._index.get(whole)
        if found:
            return [tuple(found)]
        groups: list[tuple[Origin, ...]] = []
        for part in parts:
            if not _ENTITY.search(part):
                continue  # a plain word is no evidence of where an address or an id came from
            seen = self._index.get(part)
            if seen and all(origin.trust is not _TRUSTED for origin in seen):
                groups.append(tuple(seen))
        return groups

    def accepts(self, args: Mapping[str, Any], traced: Iterable[tuple[str, frozenset[str]]]) -> bool:
        """Whether every traced argument present in ``args`` came from where its sources allow.

        Runs for every traced argument of every call, so the common case — a scalar seen first in
        trusted text — is answered inline; anything else goes through :meth:`refused`."""
        index = self._index
        for arg, sources in traced:
            if arg not in args:
                continue
            value = args[arg]
            cached = _PIECES.get((value.__class__, value)) if value.__class__ in _SCALARS else None
            if cached is not None:
                found = index.get(cached[0])
                if found is None and not cached[1]:
                    continue  # an atomic value seen nowhere: unseen, not tainted
                if found is not None and found[0].trust is _TRUSTED and "trusted" in sources:
                    continue
            if self.refused(value, sources):
                return False
        return True

    def refused(self, value: Any, sources: frozenset[str]) -> list[tuple[Origin, ...]]:
        """The groups of :meth:`evidence` that ``sources`` accepts no origin of (empty: acceptable).

        Written as plain loops: it runs for every traced argument of every call."""
        whole, parts = _pieces(value)
        found = self._index.get(whole)
        if found is not None:
            for origin in found:
                # The common case first, inline: a trusted value where trusted values are welcome.
                if (origin.trust is _TRUSTED and "trusted" in sources) or allowed_by(origin, sources):
                    return []
            return [tuple(found)]
        if not parts:
            return []
        refused: list[tuple[Origin, ...]] = []
        for group in self.evidence(value):
            for origin in group:
                if allowed_by(origin, sources):
                    break
            else:
                refused.append(group)
        return refused

    def origins(self, value: Any) -> tuple[Origin, ...]:
        """Every origin in :meth:`evidence`, once each, for people to read."""
        collected: list[Origin] = []
        for group in self.evidence(value):
            collected.extend(origin for origin in group if origin not in collected)
        return tuple(collected)

    def instruction_matches(self, value: Any) -> list[tuple[Instruction, Origin]]:
        """The acquired instructions that mention ``value`` (its whole form or a piece of it)."""
        if not self._instruction_values:
            return []
        whole, parts = _pieces(value)
        hits: list[int] = []
        for key in (whole, *parts):
            hits.extend(index for index in self._instruction_values.get(key, ()) if index not in hits)
        return [self.instructions[index] for index in sorted(hits)]

    def _add_all(self, values: Iterable[str], origin: Origin) -> None:
        index = self._index
        for value in values:
            if not value:
                continue
            seen = index.get(value)
            if seen is None:
                if len(index) >= MAX_INDEXED_VALUES:
                    self.saturated = True
                    continue
                index[value] = [origin]
            elif len(seen) < _MAX_ORIGINS_PER_VALUE and origin not in seen:
                # Length first: comparing origins costs far more, and a full list takes no more.
                seen.append(origin)

    def _add_instruction(self, instruction: Instruction, origin: Origin) -> None:
        if len(self.instructions) >= _MAX_INSTRUCTIONS:
            self.saturated = True
            return
        position = len(self.instructions)
        self.instructions.append((instruction, origin))
        for value in instruction.values:
            self._instruction_values.setdefault(value, []).append(position)
        self.instruction_verbs = self.instruction_verbs | instruction.verbs


Digest = list[tuple[Iterable[str], Origin, list[Instruction]]]
"""What ingest found, ready to :meth:`Ledger.commit`: values with their origin and instructions."""


def digest_text(
    text: str, origin: Origin, *, cache: DigestCache | None = None, words: WordMemo | None = None
) -> Digest:
    """The values (and, for untrusted text, the instructions) of ``text``: the expensive part of
    ingest, pure but for its memory, so it can run outside any lock. ``cache`` (a session's
    :attr:`Ledger.digests`) remembers what short texts yielded, ``words`` (:attr:`Ledger.words`)
    what words did."""
    if not isinstance(text, str):
        text = str(text)
    untrusted = origin.trust is _UNTRUSTED
    key = (text, untrusted)
    cached = cache if cache is not None and len(text) <= _CACHED_TEXT_LIMIT else None
    found = cached.get(key) if cached is not None else None
    if found is None:
        # Look-alike joins ("to bob@x" -> "tobob@x") are indexed only for untrusted text: for
        # trusted text they would vouch for values nobody wrote.
        lines, normal = normal_forms(text)
        values = extract(text, rejoin=untrusted, memo=words, normal=normal)
        if len(text) <= _WHOLE_TEXT_LIMIT:
            values.add(normal)
        found = (frozenset(values), tuple(detect(text, normal=lines)) if untrusted else ())
        if cached is not None:
            if len(cached) >= _DIGESTS_LIMIT:
                # The oldest goes: a burst of new texts keeps the recent ones (threads evicting at
                # once may empty it; each step is one atomic call).
                with contextlib.suppress(KeyError):
                    cached.popitem(last=False)
            cached[key] = found
    return [(found[0], origin, list(found[1]))]


# Short outputs recur ("ok", "sent", a status field): what a text yields depends only on the text
# and whether it is trusted, and the values and instructions are immutable, so a short text is
# digested once per session. Each observation still commits them under its own origin. The cache
# is the session's own: one shared by every tenant would tell one tenant, by timing, what text
# another tenant's agent saw.
DigestCache = OrderedDict[tuple[str, bool], tuple[frozenset[str], tuple[Instruction, ...]]]
_DIGESTS_LIMIT = 256
_CACHED_TEXT_LIMIT = 256


def digest_output(
    output: Any,
    *,
    tool: str,
    call_id: str | None,
    record: bool,
    free_text: frozenset[str],
    derived: bool,
    cache: DigestCache | None = None,
    words: WordMemo | None = None,
) -> Digest:
    """A tool's output as ledger entries: record fields as record/derived values, everything else
    as untrusted text (pure, like :func:`digest_text`)."""
    label = f"tool:{tool}" + (f"#{call_id}" if call_id else "")
    if isinstance(output, str):
        parsed = _structured_or_none(output) if record else _json_or_none(output)
        if parsed is None:
            return digest_text(output, Origin(_TOOL, _UNTRUSTED, label, tool), cache=cache, words=words)
        output = parsed
    digest: Digest = []
    trust = _DERIVED if derived else _RECORD
    for path, key, leaf in _leaves(output, "$"):
        where = f"{label} {path}"
        # A record field is a value of the record unless it is declared free text or reads like it.
        is_field = not isinstance(leaf, str) or (len(leaf) <= _WHOLE_TEXT_LIMIT and "\n" not in leaf)
        if record and key not in free_text and is_field:
            whole, parts = pieces(leaf)
            digest.append(([whole, *parts], Origin(_TOOL, trust, where, tool), []))
        else:
            untrusted = Origin(_TOOL, _UNTRUSTED, where, tool)
            digest += digest_text(str(leaf), untrusted, cache=cache, words=words)
    return digest


_PIECES: dict[tuple[type, Any], tuple[str, frozenset[str]]] = {}
_SCALARS = frozenset({str, int, float, bool})
_PIECES_LIMIT = 4096
_CACHED_STR_LIMIT = 512  # long strings are not kept: an agent could otherwise pin megabytes in the cache


def _pieces(value: Any) -> tuple[str, frozenset[str]]:
    """``pieces(value)``, cached for scalars: agents pass the same ids and amounts again and again.
    The class is part of the key, so ``1``, ``1.0`` and ``True`` never share an entry. A plain dict
    (cleared when full) is cheaper per hit than ``functools.lru_cache``; it runs on every lookup."""
    cls = value.__class__
    if cls in _SCALARS and (cls is not str or len(value) <= _CACHED_STR_LIMIT):
        key = (cls, value)
        cached = _PIECES.get(key)
        if cached is None:
            cached = pieces(value)
            if len(_PIECES) >= _PIECES_LIMIT:
                _PIECES.clear()
            _PIECES[key] = cached
        return cached
    return pieces(value)


def trust_of(source: Source) -> Trust:
    """The trust of text from ``source``: user, system, developer and parameters are trusted."""
    return _TRUSTED if source in _TRUSTED_SOURCES else _UNTRUSTED


def _json_or_none(text: str) -> Any:
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


# A YAML mapping or sequence needs one of these: ":" or "?" (keys), "-" (items), brackets or
# braces (flow style), "!" (tags such as !!set). Text without any is a scalar: no need to parse it.
_YAML_COLLECTION = re.compile(r"[:?\-\[\]{}!]")


def _structured_or_none(text: str) -> Any:
    """A record tool's text output as data: JSON, or YAML (many agent frameworks print tool
    results as YAML). Plain text, scalars and anything unparsable stay text (None)."""
    parsed = _json_or_none(text)
    if parsed is not None or len(text) > _MAX_STRUCTURED_TEXT or not _YAML_COLLECTION.search(text):
        return parsed
    import yaml  # already loaded by the guard; imported here so `import intentguard` stays light

    try:
        loaded = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError):
        return None
    return loaded if isinstance(loaded, dict | list) else None


def _leaves(node: Any, path: str, key: str = "", depth: int = 0) -> Iterator[tuple[str, str, Any]]:
    """Every scalar of a JSON-like value with its JSON path and the name of its field."""
    if depth > 64:
        yield path, key, json.dumps(node, default=str)[:100_000]
    elif isinstance(node, Mapping):
        for name, child in node.items():
            yield from _leaves(child, f"{path}.{name}", str(name).casefold(), depth + 1)
    elif isinstance(node, list | tuple):
        for index, child in enumerate(node):
            yield from _leaves(child, f"{path}[{index}]", key, depth + 1)
    elif node is not None:
        yield path, key, node
