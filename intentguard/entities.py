"""Entities in normalised text: the values a text could hand to a tool, each in canonical form.

E-mails, URLs, hosts and registrable domains (file names like ``q3.pdf`` too), IBANs, phone
numbers, amounts, dates and quoted strings. :func:`word_entities` finds those no space can be
part of, so what a word yields does not depend on the words around it (a session remembers it
per word, :func:`intentguard.values.extract`); :func:`text_entities` finds those that may span
words, and with ``rejoin`` undoes whitespace inserted into an e-mail or URL, joining up to three
more fragments on each side of ``@`` (after ``://``) for the first 1,024 of them; IBANs and phone
numbers tolerate spaces by pattern. :func:`canonical` gives an argument's canonical form (ISO
dates, plain numbers, phone digits, compact IBANs).

Patterns are linear: bounded runs, look-behind guarded starts, possessive quantifiers. Each
pattern runs only where a cheap guard shows it could yield (property-tested).
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal, InvalidOperation

from intentguard.normal import normalize

__all__ = ["MAX_LEN", "canonical", "canonical_number", "compact", "decimal_form", "text_entities", "word_entities"]

MAX_LEN = 2048
"""The longest value any finder yields."""
_JOIN, _MAX_ANCHORS, _SHORT_TEXT = 4, 1024, 256
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
_LOCAL = re.compile(r"[\w.%+-]{1,64}")
_HOST = re.compile(r"[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}")
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}@([\w-]{1,63}(?:\.[\w-]{1,63}){1,8})")
_SCHEME = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,15}$")
_URL_BODY = re.compile(r"[^\s<>\"'`{}|\\^\[\]]{1,2048}")
_URL = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,15}://" + _URL_BODY.pattern)
_STRUCTURAL = "./?=&#:-_%"
_DIGITS = str.maketrans(dict.fromkeys("0123456789"))
_IBAN_LETTERS = str.maketrans({c: str(int(c, 36)) for c in "abcdefghijklmnopqrstuvwxyz"})
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go"})


def word_entities(words: str) -> Iterator[str]:
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
            yield from filter(None, map(canonical_number, dict.fromkeys(pattern.findall(words))))
        for m in _ID.finditer(words):
            if len(value := m.group().rstrip(".-_")) >= 5:
                yield value


def text_entities(t: str, *, rejoin: bool) -> Iterator[str]:
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
            yield from filter(None, map(canonical_number, dict.fromkeys(_NUMBERS[2].findall(t))))
        if digits >= 7:
            yield from ("".join(filter(str.isdigit, phone)) for phone in dict.fromkeys(_PHONE.findall(t)))
    if _HAS_QUOTE.search(t):
        yield from (normalize(q) for groups in _QUOTED.findall(t) if len(q := "".join(groups)) <= MAX_LEN)


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


def canonical_number(text: str) -> str | None:
    """The canonical form of a number with ``,`` (or ``.`` with a decimal ``,``) grouping."""
    if "," in text and "." in text and text.rindex(",") > text.rindex("."):
        text = text.replace(".", "").replace(",", ".")
    try:
        return decimal_form(Decimal(text.replace(",", "").replace(" ", "")))
    except InvalidOperation:
        return None


def decimal_form(number: Decimal) -> str:
    """Exact (no context rounding): no exponent, no leading or trailing zeros."""
    if not number.is_finite() or not -64 <= number.adjusted() <= 64:
        return str(number).lower()
    integer, _, fraction = format(number, "f").lstrip("-").partition(".")
    text = (integer.lstrip("0") or "0") + ("." + fraction.rstrip("0")).rstrip(".")
    return "-" + text if number < 0 and text != "0" else text


def canonical(n: str) -> str | None:
    """Dates as ISO, amounts as canonical numbers, phone numbers as digits, IBANs compact."""
    if m := _ISO_DATE.fullmatch(n):
        return next(_date(*m.groups()), None)
    if iso := next((iso for start, end, iso in _day_dates(n) if start == 0 and end == len(n)), None):
        return iso
    number = next(filter(None, amount.groups()), "") if (amount := _AMOUNT.fullmatch(n)) else ""
    if any(pattern.fullmatch(number) for pattern in _NUMBERS):
        return canonical_number(number)
    if _PHONE.fullmatch(n.removeprefix("+")):
        return "".join(filter(str.isdigit, n))
    if _IBAN_WHOLE.fullmatch(n) and _iban_shape(joined := n.replace(" ", "")):
        return joined
    return None


def compact(n: str) -> str:
    """``n``, or its compact form where removing the spaces leaves an entity (``att acker@evil.example``)."""
    if " " not in n or len(n) > MAX_LEN or not (joined := n.replace(" ", "")):
        return n
    if _EMAIL.fullmatch(joined) or _URL.fullmatch(joined) or _DOMAIN.fullmatch(joined):
        return joined
    return canonical(joined) or n
