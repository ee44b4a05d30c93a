"""Keep secrets out of reason sentences before they are recorded.

Arguments and approval notes are recorded only as hashes, but a reason sentence may quote an
argument (``argument 'token' of tool 'x' is 'sk-...' but ...``), an approver's note or an
exception's text. Before a record is built, :func:`redact` replaces in every sentence:

- every string found in the call's arguments (at any depth) and the approver's note, in the
  quoted form sentences use and bare, with ``<redacted:SHA8>`` (the first 8 hex digits of its
  SHA-256, so a reviewer can still tell two values apart);
- anything shaped like a well-known credential (bearer tokens, API keys, JWTs, private keys,
  ``password=...``), wherever it came from.

Numbers and booleans are kept: amounts and limits are what a reviewer needs. If a string
value still shows after that (a sentence that cut it short mid-quote), the sentence is
withheld rather than recorded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from intentguard.constraints import describe

__all__ = ["redact"]

_MIN_BARE = 6
"""Strings this long or longer are also replaced where a sentence shows them unquoted."""
_PREFIX = 8
"""A string whose opening quote and first characters still appear after redaction withholds the sentence."""
_MAX_LEAVES = 256
_MAX_DEPTH = 16

_CREDENTIALS = re.compile(
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(?:sk|pk|rk)[-_](?:live|test|proj)?[-_]?[A-Za-z0-9]{12,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\b(?:password|passwd|pwd|secret|api[-_]?key|token)\s*[=:]\s*\S+"
)

WITHHELD = "<sentence withheld: it quoted a value that could not be redacted>"


def _tag(value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "backslashreplace")).hexdigest()
    return f"<redacted:{digest[:8]}>"


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif depth >= _MAX_DEPTH:
        return
    elif isinstance(value, Mapping):
        # Argument names are the schema's, not the caller's: sentences keep them.
        for item in value.values():
            yield from _strings(item, depth + 1)
    elif isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes | bytearray):
        for item in value:
            yield from _strings(item, depth + 1)


def redact(messages: Sequence[str], *, args: Any, note: str = "", shown: Sequence[str] = ()) -> list[str]:
    """``messages`` with every string of ``args``, the ``note`` and anything credential-shaped
    replaced (see the module docstring); never raises on odd arguments. ``shown`` are strings
    sentences quote by design (the intent's parameters): a value that merely starts like one of
    them does not withhold a sentence that quotes the parameter."""
    if not messages:
        return []
    try:
        leaves: list[str] = []
        for leaf in _strings(args):
            leaves.append(leaf)
            if len(leaves) >= _MAX_LEAVES:
                break
    except Exception:  # noqa: BLE001 - hostile containers: record nothing rather than something raw
        return [WITHHELD for _ in messages]
    if note:
        leaves.append(note)
    # Longest first, so a value that contains another is replaced whole.
    values = sorted({leaf for leaf in leaves if leaf}, key=len, reverse=True)
    out: list[str] = []
    for message in messages:
        for value in values:
            tag = _tag(value)
            message = message.replace(describe(value), repr(tag)).replace(repr(value), repr(tag))
            if len(value) >= _MIN_BARE:
                message = message.replace(value, tag)
        message = _CREDENTIALS.sub(lambda match: _tag(match.group(0)), message)
        probe = message
        for text in shown:
            probe = probe.replace(describe(text), "").replace(repr(text), "")
        if any(len(value) >= _PREFIX and repr(value)[: _PREFIX + 1] in probe for value in values):
            message = WITHHELD
        out.append(message)
    return out
