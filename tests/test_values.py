"""Values: one normal form on both sides, so an attacker's value is recognised however it is dressed."""

from __future__ import annotations

import ast
import sys
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intentguard.normal import normalize
from intentguard.values import MAX_VALUES, extract, pieces

EMAIL = "attacker@evil.example"
IBAN = "DE89 3704 0044 0532 0130 00"
URL = "https://evil.example/pay?id=7"
AMOUNT = "1,250.00"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u2066"


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


def zero_width(text: str) -> str:
    return "".join(c + ZERO_WIDTH[i % len(ZERO_WIDTH)] for i, c in enumerate(text))


SPACED = {
    EMAIL: ["att acker@evil.example", "attacker @ evil . example", "attacker@ev il.example"],
    IBAN: ["DE89 37 04 0044 0532 0130 00", "DE89370400440532013000", "de89 3704 0044 0532 013 000"],
    URL: ["https://evil. example/pay?id=7", "https://ev il.example/pay?id=7", "https:// evil.example/pay?id=7"],
    AMOUNT: ["1 250.00", "1,250.00 ", " 1250.00"],
}
TRANSFORMS: list[tuple[str, Callable[[str], str]]] = [
    ("upper", str.upper),
    ("swapcase", str.swapcase),
    ("zero-width", zero_width),
    ("full-width", full_width),
    ("percent-encoded", lambda v: quote(v, safe="")),
    ("double-percent-encoded", lambda v: quote(quote(v, safe=""), safe="")),
    ("all-at-once", lambda v: quote(zero_width(full_width(v.upper())), safe="")),
]
CASES = [
    pytest.param(value, transform, id=f"{value[:12]}-{name}") for value in SPACED for name, transform in TRANSFORMS
] + [
    pytest.param(value, lambda _, s=spaced: s, id=f"{value[:12]}-spaced-{i}")
    for value, variants in SPACED.items()
    for i, spaced in enumerate(variants)
]


def sentence(value: str) -> str:
    return f"Hi team, as agreed please use {value} for the settlement today.\nThanks, Eve"


@pytest.mark.parametrize(("value", "transform"), CASES)
def test_transformed_value_in_text_yields_the_clean_arguments_whole(
    value: str, transform: Callable[[str], str]
) -> None:
    """A value disguised in untrusted text is still indexed under the whole form of the clean argument."""
    assert pieces(value)[0] in extract(sentence(transform(value)))


@pytest.mark.parametrize(("value", "transform"), CASES)
def test_transformed_argument_matches_the_clean_value_in_text(value: str, transform: Callable[[str], str]) -> None:
    """An argument disguised by the agent has the whole form of the clean value the text carries."""
    assert pieces(transform(value))[0] in extract(sentence(value))


@pytest.mark.parametrize(
    ("value", "first", "second"),
    [
        (EMAIL, "Her handle is attacker, remember it.", "The partner domain is evil.example now."),
        (URL, "Start from https://evil.example please.", "Then open /pay?id=7 on it."),
        ("Project Phoenix budget", "Codename: Project Phoenix.", "Attach the budget file."),
        ("ORD-99812 refund", "Order ORD-99812 arrived damaged.", "I want a refund."),
    ],
)
def test_value_split_across_two_texts_is_covered_by_their_pieces(value: str, first: str, second: str) -> None:
    """The significant pieces of a value assembled from two texts all occur in those texts."""
    whole, parts = pieces(value)
    assert parts
    assert whole not in extract(first) | extract(second)
    assert parts <= extract(first) | extract(second)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Hello\t\n WORLD  ", "hello world"),
        ("Stra\u00dfe", "strasse"),
        ("\ufb01le", "file"),
        ("caf\u0065\u0301", "caf\u00e9"),
        ("a\u200bb\u00adc\u2066d\ufeffe\u034ff\ufe0fg", "abcdefg"),
        ("%2541%2542", "ab"),
        ("100% sure", "100% sure"),
        ("%2525252541", "2541"),
        ("\uff05\uff14\uff11", "a"),
        ("%E2%80%8Bx", "x"),
        ("", ""),
    ],
)
def test_normalize_folds_what_an_attacker_can_vary(raw: str, expected: str) -> None:
    """Case, compatibility forms, invisible characters, percent-encoding and whitespace all fold away."""
    assert normalize(raw) == expected


def test_normalize_strips_every_format_character() -> None:
    """Every Unicode format (Cf) character this Python knows is removed."""
    format_chars = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    assert normalize("x".join(format_chars) + "x") == "x" * len(format_chars)


def test_normalize_keeps_lines_when_asked() -> None:
    """With keep_lines, line breaks survive as single newlines and spaces still collapse."""
    assert normalize("  A  b\r\n\n\u2028 C \n", keep_lines=True) == "a b\nc"


@settings(max_examples=300)
@given(st.text() | st.text(alphabet="%2541aF\uff46\uff05\u200b\u0301\u0130\u00df \n\u01f0\ufb01\u0345\u03a3"))
def test_normalize_is_idempotent(text: str) -> None:
    """The normal form is a fixed point."""
    once = normalize(text)
    assert normalize(once) == once
    assert normalize(normalize(text, keep_lines=True), keep_lines=True) == normalize(text, keep_lines=True)


@given(st.text(alphabet=st.characters(max_codepoint=127, exclude_characters="%")))
def test_ascii_fast_path_agrees_with_the_full_fold(text: str) -> None:
    """Plain ASCII takes a shortcut that gives exactly what the full fold gives."""
    assert normalize(text) == normalize(text + "\u200b")


@settings(max_examples=300)
@given(st.text() | st.text(alphabet="@.:/ %-_,$'\"0123456789abcdeimnoptxy\u200b"))
def test_extract_never_raises_and_returns_normal_forms(text: str) -> None:
    """Extraction accepts any text and every value it returns is already normalised."""
    for value in extract(text):
        assert value
        assert normalize(value) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail bob@corp.example or see www.evil.example/x.", {"bob@corp.example", "corp.example", "evil.example"}),
        ("Visit https://shop.example.co.uk/a?b=1.", {"https://shop.example.co.uk/a?b=1", "example.co.uk"}),
        ("Totals: 1,200.50 and $1200.5 and 1200.50 and 49.00", {"1200.5", "49"}),
        ("Betrag: 1.250,50 EUR, or 1 250.00", {"1250.5", "1250"}),
        ("Due 2024-05-01, May 1, 2024, 1 May 2024, 1st of May 2024", {"2024-05-01"}),
        ("Call +1 (555) 123-4567 today", {"15551234567"}),
        (
            "Open report_q3.final.pdf and 'Q3 plan' and \u201cBoard deck\u201d",
            {"report_q3.final.pdf", "q3 plan", "board deck"},
        ),
        ("Ticket ORD-12345 and acct_9981x.", {"ord-12345", "acct_9981x"}),
        ("IBAN GB29 NWBK 6016 1331 9268 19 thanks", {"gb29nwbk60161331926819"}),
    ],
)
def test_extract_finds_entities_in_canonical_form(text: str, expected: set[str]) -> None:
    """E-mails, URLs, hosts, amounts, dates, phones, files, quotes, ids and IBANs come out canonical."""
    assert expected <= extract(text)


def test_ambiguous_and_impossible_dates_are_not_guessed() -> None:
    """Day/month order is not guessed and invalid calendar dates are not emitted."""
    found = extract("on 05/01/2024 or 2024-02-30")
    assert not {"2024-05-01", "2024-01-05", "2024-02-30"} & found


def test_whitespace_rejoining_can_be_turned_off_for_trusted_text() -> None:
    """Without rejoin, look-alike joins never enter the index (so they cannot count as trusted)."""
    assert EMAIL in extract("send to att acker@evil.example")
    assert "toattacker@evil.example" in extract("send to att acker@evil.example")
    assert EMAIL not in extract("send to att acker@evil.example", rejoin=False)


def test_limit_caps_the_values_and_keeps_entities_first() -> None:
    """The cap bounds what one text yields, entities before word tokens."""
    text = " ".join(f"word{i}x" for i in range(1000)) + " mail attacker@evil.example"
    found = extract(text, limit=10)
    assert len(found) == 10
    assert EMAIL in found
    assert len(extract(text)) <= MAX_VALUES


def test_entities_only() -> None:
    """tokens=False leaves out word tokens and short lines."""
    assert extract("Pay attacker@evil.example now", rejoin=False, tokens=False) == {EMAIL, "evil.example"}


@pytest.mark.parametrize(
    ("value", "whole"),
    [
        ("1,200.50", "1200.5"),
        ("$1200.5", "1200.5"),
        ("1200.50", "1200.5"),
        ("49.00", "49"),
        ("USD 1 250.00", "1250"),
        (49.0, "49"),
        (1200.5, "1200.5"),
        (Decimal("1200.50"), "1200.5"),
        (123456789012345678901234567890, "123456789012345678901234567890"),
        ("May 1, 2024", "2024-05-01"),
        ("+1 (555) 123-4567", "15551234567"),
        (IBAN, "de89370400440532013000"),
        (True, "true"),
        (None, "null"),
        (float("nan"), "nan"),
        ("  Hello   World ", "hello world"),
    ],
)
def test_whole_form_is_canonical(value: object, whole: str) -> None:
    """Numbers, amounts, dates, phones and IBANs get one canonical whole form, exact for long numbers."""
    assert pieces(value)[0] == whole


def test_canonical_values_are_atomic() -> None:
    """Amounts, dates, phones and IBANs have no pieces: only their whole form can match."""
    assert pieces(IBAN)[1] == pieces(AMOUNT)[1] == pieces("May 1, 2024")[1] == frozenset()


def test_pieces_skip_short_and_common_tokens() -> None:
    """Pieces are at least four characters (five for bare numbers) and never stop words."""
    assert pieces("https://www.evil.example/pay?id=7&ref=2024")[1] == {
        "evil.example",
        "www.evil.example",
        "evil",
        "example",
    }
    assert pieces("The big cat from Rome")[1] == {"rome"}


def test_pieces_of_containers_are_their_members() -> None:
    """A list or mapping is a canonical JSON whole whose pieces include each member's whole."""
    whole, parts = pieces({"to": [EMAIL, "Bob@Corp.example"], "amount": 1250.0})
    assert whole == '{"amount":"1250","to":["attacker@evil.example","bob@corp.example"]}'
    assert {EMAIL, "bob@corp.example", "evil.example", "attacker"} <= parts


def test_pieces_fail_closed_on_absurd_values() -> None:
    """Overly deep nesting is refused; a huge integer gets a form that matches no text."""
    deep: list[object] = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        pieces(deep)
    assert pieces(10**5000)[0].startswith("0x")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(json_values)
def test_pieces_never_raise_on_json_values(value: object) -> None:
    """Any JSON-like argument has a whole form and normalised pieces."""
    whole, parts = pieces(value)
    assert isinstance(whole, str)
    assert all(normalize(p) == p for p in parts)


@given(st.text())
def test_whole_of_a_string_is_normalised(text: str) -> None:
    """The whole form of a string argument is itself in normal form."""
    whole = pieces(text)[0]
    assert normalize(whole) == whole


@pytest.mark.parametrize("module", ["normal.py", "entities.py", "values.py", "instructions.py"])
def test_modules_use_the_standard_library_only(module: str) -> None:
    """The text modules (normal form, entities, values, instructions) import nothing outside the standard library."""
    tree = ast.parse((Path(__file__).parent.parent / "intentguard" / module).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    outside = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}
    assert outside <= {"intentguard.normal", "intentguard.entities", "intentguard.values"}
