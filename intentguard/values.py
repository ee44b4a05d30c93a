"""Values in text: one normal form, the candidates free text carries, the pieces of an argument.

The provenance ledger matches tool-argument values against text indexed at ingest; both sides go
through these functions, so a check costs in proportion to the argument, never to the context.

- :func:`normalize` folds what an attacker can vary without changing what a tool receives: case,
  NFKC-equivalent characters (full-width, ligatures), invisible format characters (zero-width,
  bidi controls, soft hyphen, variation selectors), percent-encoding (at most three rounds; a
  ``%`` still decodable after that is dropped, so the form is a fixed point) and whitespace.
- :func:`extract` lists the normalised values a text could hand to a tool: e-mails, URLs, hosts
  and registrable domains (file names like ``q3.pdf`` too), IBANs, phone numbers, amounts, dates,
  quoted strings, ids, short lines and word tokens. With ``rejoin`` (the default) it also undoes whitespace
  inserted into an e-mail or URL, joining up to three more fragments on each side of ``@`` (after
  ``://``) for the first 1,024 of them; IBANs and phone numbers tolerate spaces by pattern. Joins
  add look-alikes (``toattacker@...`` from ``to att acker@...``): index trusted text with
  ``rejoin=False`` so a look-alike never counts as trusted.
- :func:`pieces` gives an argument's whole form (amounts, dates, phones and IBANs canonical and
  then *atomic*, with no pieces; an e-mail or URL with spaces inside compacted) and its
  significant pieces: what :func:`extract` finds in each whitespace-separated fragment, other than
  the whole, at least four characters long (five for bare numbers) and not in :data:`STOP_WORDS`.
  A value assembled from several texts is found through its pieces.

Patterns are linear: bounded runs, look-behind guarded starts, possessive quantifiers; one-word
patterns run once over the distinct words. :data:`MAX_VALUES` caps one text's yield (entities,
then lines, then tokens); a value past the cap is left *unseen*, never trusted.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

__all__ = ["MAX_VALUES", "STOP_WORDS", "WordMemo", "extract", "normal_forms", "normalize", "pieces"]

MAX_VALUES = 100_000
"""The most distinct values :func:`extract` returns for one text."""
STOP_WORDS = frozenset({"com", "net", "org", "www", "http", "https", "mailto", "html", "the", "and", "with", "from"})
"""Tokens never significant as pieces, however long."""

_MAX_LEN, _MAX_LINE, _MAX_DEPTH, _JOIN, _MAX_ANCHORS = 2048, 120, 32, 4, 1024
# A memo serves texts up to _MEMO_TEXT characters; it keeps words up to _MEMO_WORD characters,
# _MEMO_WORDS of them, the least recently used evicted first (a few hundred kilobytes at most per
# session).
_MEMO_TEXT, _MEMO_WORD, _MEMO_WORDS, _SHORT_TEXT = 4096, 64, 2048, 256
WordMemo = OrderedDict[str, tuple[str, ...]]
"""What words yielded, for :func:`extract` (one session's: a memo shared by tenants would tell
one, by timing, which words another's agent saw)."""
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

_MONTH = (
    r"(january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
)
_MONTHS = {name: i for i, name in enumerate(_MONTH[1:].split("|")[:12], 1)}
_MONTHS |= {name[:3]: i for name, i in _MONTHS.items()} | {"sept": 9}
# Patterns for the whole text start with a rare character (a digit, a quote) and check what
# precedes it with a look-behind, so the regex engine skips ahead; patterns whose values are
# single words run over the distinct words only.
_ISO_DATE = re.compile(r"([0-9]{4})(?<![\w][0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})(?![0-9])")
_DAY_DATE = re.compile(
    r"([0-9])(?<![\w][0-9])([0-9]?)(?:st|nd|rd|th)?(?:(?: of)? " + _MONTH + r"\.?)?,? ([0-9]{4})(?![0-9])"
)
_MONTH_BEFORE = re.compile(r"(?<![a-z])" + _MONTH + r"\.? $")
_NUMBERS = (
    re.compile(r"[0-9](?<![\w.,][0-9])(?:[0-9]{0,2}(?:,[0-9]{3})++|[0-9]{0,63}+)(?:\.[0-9]{1,32}+)?(?!\w)"),
    re.compile(r"[0-9](?<![\w.,][0-9])[0-9]{0,2}(?:\.[0-9]{3})++,[0-9]{1,2}(?![\w.,])"),
    re.compile(r"[0-9](?<![\w.,][0-9])[0-9]{0,2}(?: [0-9]{3})++(?:\.[0-9]{1,32})?(?![\w.,])"),
)
_AMOUNT = re.compile(r"(?:[$€£¥]|usd|eur|gbp|chf) ?(.+)|(.+?) ?(?:[$€£¥]|usd|eur|gbp|chf)|(.+)")
_PHONE = re.compile(r"[0-9](?<![\w][0-9])(?:[ ().-]{0,2}[0-9]){6,19}+(?![0-9])")
_IBAN = re.compile(r"[0-9](?<=(?<![a-z0-9])[a-z]{2}[0-9])[0-9](?: ?[a-z0-9]){11,30}+")
_IBAN_WHOLE = re.compile(r"[a-z]{2}[0-9]{2}(?: ?[a-z0-9]){11,30}")
_DOMAIN = re.compile(r"(?<![\w.-])[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}+(?![\w-])")
_ID = re.compile(r"(?<![\w.-])(?=[\w.-]{0,63}[0-9])(?=[\w.-]{0,63}[^\W\d_])\w[\w.-]{3,63}+(?![\w.-])")
_QUOTED = re.compile(
    '"([^"]*+)"|\u201c([^\u201d]*+)\u201d|\u2018([^\u2019]*+)\u2019|\u00ab([^\u00bb]*+)\u00bb|`([^`]*+)`'
    "|'(?<!\\w')([^']*+)'(?!\\w)"
)
_HAS_DIGIT, _HAS_QUOTE = re.compile("[0-9]"), re.compile("[\"'`\u201c\u2018\u00ab]")
_DOTTED, _YEAR, _SPACED_DIGITS = re.compile(r"\.[^\W\d_]{2}"), re.compile("[0-9]{4}"), re.compile(" [0-9]{3}")
_TOKEN = re.compile(r"[^\W_]{3,}")
_LOCAL = re.compile(r"[\w.%+-]{1,64}")
_HOST = re.compile(r"[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}")
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}@([\w-]{1,63}(?:\.[\w-]{1,63}){1,8})")
_SCHEME = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,15}$")
_URL_BODY = re.compile(r"[^\s<>\"'`{}|\\^\[\]]{1,2048}")
_URL = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,15}://" + _URL_BODY.pattern)
_STRUCTURAL = "./?=&#:-_%"
_DIGITS = str.maketrans(dict.fromkeys("0123456789"))
_IBAN_LETTERS = str.maketrans({c: str(int(c, 36)) for c in "abcdefghijklmnopqrstuvwxyz"})
_EMPTY: frozenset[str] = frozenset()
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go"})


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
    streams: list[Iterable[str]] = [_word_entities(words), _text_entities(t, rejoin=rejoin)]
    if tokens:
        streams += [_lines(text, t), _TOKEN.findall(words)]
    for stream in streams:
        for value in stream:
            if value and value not in ordered and len(value) <= _MAX_LEN:
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
    found = {value for value in _text_entities(t, rejoin=rejoin) if len(value) <= _MAX_LEN}
    for word in distinct:
        # Taken out and put back: the least recently used go first, so frequent words stay. Each
        # step is one atomic call: threads sharing the memo never see it half-changed.
        known = memo.pop(word, None)
        if known is None:
            known = _word_values(word)
            if len(word) > _MEMO_WORD:
                found.update(known)
                continue
            if len(memo) >= _MEMO_WORDS:
                memo.popitem(last=False)  # never empty here: a thread takes one only from a full memo
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
        found = [word] if len(word) >= 3 else []
        if word.isdigit() and len(word) <= 64 and (number := _number(word)) not in found:
            found.append(number or word)
        return tuple(found)
    values = itertools.chain(_word_entities(word), _TOKEN.findall(word))
    return tuple(dict.fromkeys(value for value in values if value and len(value) <= _MAX_LEN))


def _entities(t: str, words: str, *, rejoin: bool) -> Iterator[str]:
    """Entities of normalised text ``t``; ``words`` holds its distinct words, for one-word patterns."""
    yield from _word_entities(words)
    yield from _text_entities(t, rejoin=rejoin)


def _word_entities(words: str) -> Iterator[str]:
    """Entities no space can be part of, found in ``words`` (distinct words joined by spaces):
    what one word yields does not depend on the words around it."""
    if "@" in words:
        for m in _EMAIL.finditer(words):
            yield from _email(m.group().lstrip("."), m.group(1))
    if "://" in words:
        for m in _URL.finditer(words):
            yield from _url(m.group())
    # The guards skip only patterns that cannot yield here: a domain ends in a dot and two letters,
    # an ISO date has a four-digit year, numbers and ids a digit.
    if _DOTTED.search(words):
        for m in _DOMAIN.finditer(words):
            yield from _domain(m.group())
    if _HAS_DIGIT.search(words):
        if _YEAR.search(words):
            for m in _ISO_DATE.finditer(words):
                yield from _date(*m.groups())
        for pattern in _NUMBERS[:2]:
            yield from filter(None, map(_number, dict.fromkeys(pattern.findall(words))))
        for m in _ID.finditer(words):
            if len(value := m.group().rstrip(".-_")) >= 5:
                yield value


def _text_entities(t: str, *, rejoin: bool) -> Iterator[str]:
    """Entities that may span words: joined-up e-mails and URLs, IBANs, phone numbers, dates like
    ``1 May 2024``, numbers grouped by spaces and quoted strings."""
    if rejoin and "@" in t:
        yield from _spaced_emails(t)
    if rejoin and "://" in t:
        yield from _spaced_urls(t)
    # As above: an IBAN has eight digits or more, a phone number seven; a day date and a number
    # grouped by spaces both hold a space followed by three digits.
    # Digits counted by one findall in a short text; str.count per digit is faster in a long one
    # (str.translate would cost 100x).
    if len(t) <= _SHORT_TEXT:
        digits = len(_HAS_DIGIT.findall(t))
    else:
        digits = sum(map(t.count, "0123456789")) if _HAS_DIGIT.search(t) else 0
    if digits:
        for iban in dict.fromkeys(t[m.start() - 2 : m.end()] for m in _IBAN.finditer(t)) if digits >= 8 else ():
            yield from _ibans(iban)
        if _SPACED_DIGITS.search(t):
            yield from (iso for _, _, iso in _day_dates(t))
            yield from filter(None, map(_number, dict.fromkeys(_NUMBERS[2].findall(t))))
        if digits >= 7:
            yield from ("".join(filter(str.isdigit, phone)) for phone in dict.fromkeys(_PHONE.findall(t)))
    if _HAS_QUOTE.search(t):
        yield from (normalize(q) for groups in _QUOTED.findall(t) if len(q := "".join(groups)) <= _MAX_LEN)


def _day_dates(t: str) -> Iterator[tuple[int, int, str]]:
    """``1 May 2024`` and ``May 1, 2024`` as (start, end, ISO date)."""
    for m in _DAY_DATE.finditer(t):
        start, month = m.start(), m.group(3)
        if not month:
            if (before := _MONTH_BEFORE.search(t, max(0, start - 12), start)) is None:
                continue
            start, month = before.start(), before.group(1)
        yield from ((start, m.end(), iso) for iso in _date(m.group(4), month, m.group(1) + m.group(2)))


def _email(address: str, host: str) -> Iterator[str]:
    host = host.rstrip(".-")
    if _is_domain(host) and not address.startswith("@"):
        yield address[: address.index("@") + 1] + host
        yield from _domain(host)


def _url(url: str) -> Iterator[str]:
    url = url.rstrip(".,;:!?)'\"")
    host = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0].rpartition("@")[2].partition(":")[0]
    if _is_domain(host):
        yield url
        yield from _domain(host)


def _spaced_emails(t: str) -> Iterator[str]:
    """E-mails with whitespace inserted: up to three more fragments joined on each side of ``@``."""
    for at in itertools.islice(re.finditer("@", t), _MAX_ANCHORS):
        before, after = t[max(0, at.start() - 256) : at.start()].split(" ")[-_JOIN:], _after(t, at.end())
        locals_: list[str] = []
        for a in range(1, len(before) + 1):
            joined = "".join(before[-a:])[::-1]
            if m := _LOCAL.match(joined):
                locals_.append(m.group()[::-1].lstrip("."))
                if m.end() < len(joined):
                    break
        for host in _joined(after, _HOST, ".-"):
            for local in filter(None, locals_):
                yield from _email(normalize(f"{local}@{host}"), host)


def _spaced_urls(t: str) -> Iterator[str]:
    """URLs with whitespace inserted: up to three more fragments joined after ``://``."""
    for m in itertools.islice(re.finditer("://", t), _MAX_ANCHORS):
        if scheme := _SCHEME.search(t, max(0, m.start() - 16), m.start()):
            for body in _joined(_after(t, m.end()), _URL_BODY, _STRUCTURAL):
                yield from _url(normalize(scheme.group() + "://" + body))


def _after(t: str, end: int) -> list[str]:
    return t[end : end + 2048].split(" ")[:_JOIN]


def _joined(fragments: list[str], pattern: re.Pattern[str], glue: str) -> Iterator[str]:
    """What ``pattern`` matches at the start of one, two, ... fragments joined without spaces.

    Joining stops where the match ends inside the join, and once the host has a dot unless a
    structural character (``glue``) sits at the seam: ``evil. example`` joins, ``evil.example now``
    does not.
    """
    joined = ""
    for i, fragment in enumerate(fragments):
        if not (joined := joined + fragment) or (m := pattern.match(joined)) is None:
            if joined:
                return
            continue
        yield m.group().rstrip(".-")
        following = fragments[i + 1][:1] if i + 1 < len(fragments) else ""
        host = re.split(r"[/?#@]", m.group(), maxsplit=1)[0]
        if joined[m.end() :].strip(glue) or ("." in host and joined[-1] not in glue and following not in glue):
            return


def _is_domain(host: str) -> bool:
    labels = host.split(".")
    return len(labels) >= 2 and all(labels) and len(labels[-1]) >= 2 and labels[-1].isalpha()


def _domain(host: str) -> Iterator[str]:
    """The host, its registrable part (last two labels, three under ``co.uk``-like suffixes), minus ``www.``."""
    if _is_domain(host := host.rstrip(".-")):
        labels = host.split(".")
        keep = 3 if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2 else 2
        yield from (host, ".".join(labels[-keep:]), ".".join(labels[1:] if labels[0] == "www" else labels))


def _ibans(match: str) -> Iterator[str]:
    """Compact IBANs ending at a group boundary; only those with a valid checksum if any has one."""
    ends = [i for i, c in enumerate(match) if c == " "] + [len(match)]
    candidates = [c for c in (match[:end].replace(" ", "") for end in ends) if _iban_shape(c)]
    yield from [c for c in candidates if _iban_checksum(c)] or candidates


def _iban_shape(s: str) -> bool:
    return 15 <= len(s) <= 34 and len(s) - len(s.translate(_DIGITS)) >= 8


def _iban_checksum(s: str) -> bool:
    return int((s[4:] + s[:4]).translate(_IBAN_LETTERS)) % 97 == 1


def _date(year: str, month: str, day: str) -> Iterator[str]:
    with contextlib.suppress(ValueError):
        yield date(int(year), _MONTHS.get(month) or int(month), int(day)).isoformat()


def _number(text: str) -> str | None:
    """The canonical form of a number with ``,`` (or ``.`` with a decimal ``,``) grouping."""
    if "," in text and "." in text and text.rindex(",") > text.rindex("."):
        text = text.replace(".", "").replace(",", ".")
    try:
        return _canonical_decimal(Decimal(text.replace(",", "").replace(" ", "")))
    except InvalidOperation:
        return None


def _canonical_decimal(number: Decimal) -> str:
    """Exact (no context rounding): no exponent, no leading or trailing zeros."""
    if not number.is_finite() or not -64 <= number.adjusted() <= 64:
        return str(number).lower()
    integer, _, fraction = format(number, "f").lstrip("-").partition(".")
    text = (integer.lstrip("0") or "0") + ("." + fraction.rstrip("0")).rstrip(".")
    return "-" + text if number < 0 and text != "0" else text


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
        return _canonical_decimal(Decimal(repr(value)) if isinstance(value, float) else value), _EMPTY
    if not isinstance(value, str) and isinstance(value, Mapping | list | tuple | set | frozenset):
        found: set[str] = set()
        whole = json.dumps(_shape(value, depth, found), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return whole, frozenset(found - {whole})
    n = normalize(value if isinstance(value, str) else str(value))
    if (canonical := _canonical(n)) is not None:
        return canonical, _EMPTY
    whole = _whole(n)
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


def _whole(n: str) -> str:
    """``n``, or its compact form where removing the spaces leaves an entity (``att acker@evil.example``)."""
    if " " not in n or len(n) > _MAX_LEN or not (compact := n.replace(" ", "")):
        return n
    if _EMAIL.fullmatch(compact) or _URL.fullmatch(compact) or _DOMAIN.fullmatch(compact):
        return compact
    return _canonical(compact) or n


def _canonical(n: str) -> str | None:
    """Dates as ISO, amounts as canonical numbers, phone numbers as digits, IBANs compact."""
    if m := _ISO_DATE.fullmatch(n):
        return next(_date(*m.groups()), None)
    if iso := next((iso for start, end, iso in _day_dates(n) if start == 0 and end == len(n)), None):
        return iso
    number = next(filter(None, amount.groups()), "") if (amount := _AMOUNT.fullmatch(n)) else ""
    if any(pattern.fullmatch(number) for pattern in _NUMBERS):
        return _number(number)
    if _PHONE.fullmatch(n.removeprefix("+")):
        return "".join(filter(str.isdigit, n))
    if _IBAN_WHOLE.fullmatch(n) and _iban_shape(compact := n.replace(" ", "")):
        return compact
    return None


def _significant(values: Iterable[str]) -> Iterator[str]:
    for value in values:
        digits_only = value.replace(".", "").replace(",", "").isdigit()
        if len(value) >= (5 if digits_only else 4) and value not in STOP_WORDS:
            yield value
