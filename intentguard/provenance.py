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
agent inside untrusted text are detected at ingest too (:mod:`intentguard.instructions`);
:mod:`intentguard.ingest` turns texts and tool outputs into ledger entries.

What the ledger cannot see: a value the model paraphrased, translated, computed or decoded
from an encoding the ledger does not undo is *unseen*, not tainted. Deny rules, budgets,
argument constraints and the divergence score back the ledger up there.
"""

from __future__ import annotations

import enum
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from intentguard.instructions import Instruction
from intentguard.normal import normalize
from intentguard.values import MAX_VALUES, WordMemo, pieces

if TYPE_CHECKING:
    from intentguard.ingest import Digest, DigestCache

__all__ = ["MAX_INDEXED_VALUES", "Ledger", "Origin", "Source", "Trust", "allowed_by", "tool_words", "trust_of"]

MAX_INDEXED_VALUES = 1_000_000
"""Distinct values one session's ledger indexes; past this it is *saturated* and fails closed."""
_MAX_ORIGINS_PER_VALUE = 16
_MAX_INSTRUCTIONS = 1_000


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
_TRUSTED, _DERIVED, _UNTRUSTED = Trust.TRUSTED, Trust.DERIVED, Trust.UNTRUSTED


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
