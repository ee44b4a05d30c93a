"""Ingest: a text or a tool's output turned into entries for the provenance ledger.

The expensive part of observing, kept pure (but for a session's own memories) so a session runs
it outside its lock and only :meth:`intentguard.provenance.Ledger.commit` under it. Text yields
its values (:mod:`intentguard.values`) and, when untrusted, the instructions in it
(:mod:`intentguard.instructions`); a system-of-record tool's structured output yields record (or
derived) values per field, its free-text fields untrusted text.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from intentguard.instructions import Instruction, detect
from intentguard.normal import normal_forms
from intentguard.provenance import Origin, Source, Trust
from intentguard.values import WordMemo, extract, pieces

__all__ = ["Digest", "DigestCache", "digest_output", "digest_text"]

_WHOLE_TEXT_LIMIT = 512
_MAX_STRUCTURED_TEXT = 1 << 20
# Enum members named on every observation (a ~100 ns descriptor lookup each on Python 3.11).
_DERIVED, _RECORD, _UNTRUSTED, _TOOL = Trust.DERIVED, Trust.RECORD, Trust.UNTRUSTED, Source.TOOL


Digest = list[tuple[Iterable[str], Origin, list[Instruction]]]
"""What ingest found, ready for :meth:`intentguard.provenance.Ledger.commit`: values, origin, instructions."""


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
