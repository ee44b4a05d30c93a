"""The normal form of text: what an attacker can vary without changing what a tool receives.

:func:`normalize` folds case, NFKC-equivalent characters (full-width, ligatures), invisible format
characters (zero-width, bidi controls, soft hyphen, variation selectors), percent-encoding (at most
three rounds; a ``%`` still decodable after that is dropped, so the form is a fixed point) and
whitespace. Values in text and tool arguments both go through it (:mod:`intentguard.values`).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

__all__ = ["normal_forms", "normalize"]

_INVISIBLE = re.compile(
    "[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "\U000e0100-\U000e01ef]+"
)
_LINE_BREAKS = str.maketrans(dict.fromkeys("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", "\n"))
_BLANKS = re.compile(r"[^\S\n]+")
_BREAKS = re.compile(r" ?\n[\n ]*")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def normalize(text: str, *, keep_lines: bool = False) -> str:
    """The normal form of ``text``; with ``keep_lines`` line breaks survive as single ``\\n``."""
    if text.isascii() and "%" not in text:
        return _collapse(text.lower(), keep_lines)
    s = _fold(text)
    for _ in range(3):
        if "%" not in s or (decoded := unquote(s)) == s:
            break
        s = decoded.lower() if decoded.isascii() else _fold(decoded)
    else:
        if _ESCAPE.search(s):
            s = _fold(s.replace("%", ""))
    return _collapse(s, keep_lines)


def normal_forms(text: str) -> tuple[str, str]:
    """``normalize(text, keep_lines=True)`` and ``normalize(text)``, for the cost of one: the
    one-line form is the line-keeping form with its line breaks made spaces."""
    lines = normalize(text, keep_lines=True)
    return lines, lines if "\n" not in lines else " ".join(lines.split())


def _fold(s: str) -> str:
    s = _INVISIBLE.sub("", unicodedata.normalize("NFKC", s))
    return unicodedata.normalize("NFKC", s.casefold())


def _collapse(s: str, keep_lines: bool) -> str:
    if not keep_lines:
        return " ".join(s.split())
    if "\n" not in s and " ".join(s.split()) == s:
        return s  # single spaces only, none at the ends: already the line-keeping form
    return _BREAKS.sub("\n", _BLANKS.sub(" ", s.translate(_LINE_BREAKS))).strip(" \n")
