"""Values in text and tool arguments: the candidates free text carries, the pieces of an argument.

The provenance ledger matches tool-argument values against text indexed at ingest; both sides go
through these functions (and :func:`intentguard.normal.normalize`), so a check costs in
proportion to the argument, never to the context.

- :func:`extract` lists the normalised values a text could hand to a tool: the entities of
  :mod:`intentguard.entities`, short lines and word tokens. With ``rejoin`` (the default) it also
  undoes whitespace inserted into an e-mail or URL. Joins add look-alikes (``toattacker@...``
  from ``to att acker@...``): index trusted text with ``rejoin=False`` so a look-alike never
  counts as trusted. With a session's word memo, a short text costs a lookup per word seen before.
- :func:`pieces` gives an argument's whole form (amounts, dates, phones and IBANs canonical and
  then *atomic*, with no pieces; an e-mail or URL with spaces inside compacted) and its
  significant pieces: what :func:`extract` finds in each whitespace-separated fragment, other than
  the whole, at least four characters long (five for bare numbers) and not in :data:`STOP_WORDS`.
  A value assembled from several texts is found through its pieces.

:data:`MAX_VALUES` caps one text's yield (entities, then lines, then tokens); a value past the cap
is left *unseen*, never trusted, and an untrusted text that reaches the cap saturates the ledger
(provenance then fails closed, :class:`intentguard.provenance.Ledger`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from intentguard.entities import (
    MAX_LEN,
    canonical,
    canonical_number,
    compact,
    decimal_form,
    text_entities,
    word_entities,
)
from intentguard.normal import normalize

__all__ = ["MAX_VALUES", "STOP_WORDS", "WordMemo", "extract", "pieces"]

MAX_VALUES = 100_000
"""The most distinct values :func:`extract` returns for one text."""
STOP_WORDS = frozenset({"com", "net", "org", "www", "http", "https", "mailto", "html", "the", "and", "with", "from"})
"""Tokens never significant as pieces, however long."""

_MAX_LINE, _MAX_DEPTH = 120, 32
# A memo serves texts up to _MEMO_TEXT characters; it keeps words up to _MEMO_WORD characters,
# _MEMO_WORDS of them, the least recently used evicted first: about 3 MB per session at most
# (crafted 64-character words), tens of kilobytes for ordinary text.
_MEMO_TEXT, _MEMO_WORD, _MEMO_WORDS = 4096, 64, 2048
WordMemo = OrderedDict[str, tuple[str, ...]]
"""What words yielded, for :func:`extract` (one session's: a memo shared by tenants would tell
one, by timing, which words another's agent saw)."""
_TOKEN = re.compile(r"[^\W_]{3,}")
_EMPTY: frozenset[str] = frozenset()


def extract(
    text: str,
    *,
    rejoin: bool = True,
    tokens: bool = True,
    limit: int = MAX_VALUES,
    memo: WordMemo | None = None,
    normal: str | None = None,
) -> set[str]:
    """The normalised candidate values ``text`` carries, at most ``limit`` of them.

    ``rejoin=False`` skips undoing inserted whitespace (use it for trusted text);
    ``tokens=False`` leaves out short lines and word tokens: entities only. ``memo`` (one
    session's, never shared) remembers what each word yields: the values of a short text are then
    found with a lookup per known word, and only new words and multi-word patterns run.
    ``normal`` is ``normalize(text)``, where the caller has it already.
    """
    t = normalize(text) if normal is None else normal
    distinct = dict.fromkeys(t.split(" "))
    if memo is not None and tokens and len(t) <= _MEMO_TEXT:
        found = _remembered(text, t, distinct, memo, rejoin=rejoin)
        if len(found) <= limit:
            return found
    words = " ".join(distinct)
    ordered: dict[str, None] = {}
    streams: list[Iterable[str]] = [word_entities(words), text_entities(t, rejoin=rejoin)]
    if tokens:
        streams += [_lines(text, t), _TOKEN.findall(words)]
    for stream in streams:
        for value in stream:
            if value and value not in ordered and len(value) <= MAX_LEN:
                ordered[value] = None
                if len(ordered) >= limit:
                    return set(ordered)
    return set(ordered)


def _lines(text: str, t: str) -> Iterator[str]:
    """The short lines of ``text`` (``t`` is its normal form), normalised."""
    for line in dict.fromkeys([text, *text.splitlines()]):
        if len(line) <= 4 * _MAX_LINE and len(normal := t if line is text else normalize(line)) <= _MAX_LINE:
            yield normal


def _remembered(text: str, t: str, distinct: Iterable[str], memo: WordMemo, *, rejoin: bool) -> set[str]:
    """:func:`extract` of a short text through a word memo: the same values, found with a lookup
    per word seen before; only new words and the patterns that span words run."""
    found = {value for value in text_entities(t, rejoin=rejoin) if len(value) <= MAX_LEN}
    for word in distinct:
        # Taken out and put back: the least recently used go first, so frequent words stay. Each
        # step is one atomic call: threads sharing the memo never see it half-changed.
        if len(word) > _MEMO_WORD:
            found.update(_word_values(word))
            continue
        known = memo.pop(word, None)
        if known is None:
            known = _word_values(word)
            if len(memo) >= _MEMO_WORDS:
                with contextlib.suppress(KeyError):  # threads evicting at once may empty it
                    memo.popitem(last=False)
        memo[word] = known
        found.update(known)
    lines = text.splitlines()
    if lines == [text] or not lines:  # one line (or none): the text itself, in normal form
        if len(text) <= 4 * _MAX_LINE and len(t) <= _MAX_LINE:
            found.add(t)
    else:
        found.update(_lines(text, t))
    found.discard("")
    return found


def _word_values(word: str) -> tuple[str, ...]:
    """What one word yields: its entities and tokens (remembered per session by :func:`extract`)."""
    if word.isascii() and word.isalnum():
        # Letters and digits only: no e-mail, URL, domain, date or grouped number can be in it; an
        # id and a token are the word itself, and all digits are also a number (up to 64 digits).
        found = [word] if 3 <= len(word) <= MAX_LEN else []
        if word.isdigit() and len(word) <= 64 and (number := canonical_number(word)) not in found:
            found.append(number or word)
        return tuple(found)
    values = itertools.chain(word_entities(word), _TOKEN.findall(word))
    return tuple(dict.fromkeys(value for value in values if value and len(value) <= MAX_LEN))


def _entities(t: str, words: str, *, rejoin: bool) -> Iterator[str]:
    """Entities of normalised text ``t``; ``words`` holds its distinct words, for one-word patterns."""
    yield from word_entities(words)
    yield from text_entities(t, rejoin=rejoin)


def pieces(value: Any) -> tuple[str, frozenset[str]]:
    """The normalised whole form of a tool-argument value and its significant pieces.

    Raises :class:`ValueError` for containers nested deeper than 32 levels.
    """
    return _pieces(value, 0)


def _pieces(value: Any, depth: int) -> tuple[str, frozenset[str]]:
    if value is None or isinstance(value, bool):
        return json.dumps(value), _EMPTY
    if isinstance(value, int):  # past the int-to-decimal-string limit: a form that matches no text
        return (str(int(value)) if value.bit_length() <= 10_000 else f"{value:#x}"), _EMPTY
    if isinstance(value, float) and value and value == value and "e" not in (text := repr(float(value))):
        return text.removesuffix(".0").replace("inf", "infinity"), _EMPTY
    if isinstance(value, float | Decimal):
        return decimal_form(Decimal(repr(value)) if isinstance(value, float) else value), _EMPTY
    if not isinstance(value, str) and isinstance(value, Mapping | list | tuple | set | frozenset):
        found: set[str] = set()
        whole = json.dumps(_shape(value, depth, found), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return whole, frozenset(found - {whole})
    n = normalize(value if isinstance(value, str) else str(value))
    if (form := canonical(n)) is not None:
        return form, _EMPTY
    whole = compact(n)
    fragments = dict.fromkeys(n.split(" "))
    found = {p for fragment in fragments for p in _significant(_entities(fragment, fragment, rejoin=False))}
    found.update(_significant(_TOKEN.findall(n)))
    return whole, frozenset(found - {whole})


def _shape(value: Any, depth: int, found: set[str]) -> Any:
    """A container as JSON of its members' wholes (sets sorted); collects members' wholes and pieces."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"argument value nested deeper than {_MAX_DEPTH} levels; flatten it")
    if isinstance(value, Mapping):
        return {normalize(str(key)): _shape(item, depth + 1, found) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_shape(item, depth + 1, found) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_shape(item, depth + 1, found) for item in value), key=str)
    whole, parts = _pieces(value, depth)
    found.update(parts, _significant((whole,)))
    return whole


def _significant(values: Iterable[str]) -> Iterator[str]:
    for value in values:
        digits_only = value.replace(".", "").replace(",", "").isdigit()
        if len(value) >= (5 if digits_only else 4) and value not in STOP_WORDS:
            yield value
