"""Reason sentences are recorded without the strings of the call's arguments, notes or credentials."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from intentguard.audit.redact import WITHHELD, redact
from intentguard.constraints import describe

KEY = "sk-live-51HxyzSECRETabcdef0123"


class Hostile(Mapping[str, object]):
    """A mapping that raises when its values are read."""

    def __getitem__(self, key: str) -> object:
        raise RuntimeError("no")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no")

    def __len__(self) -> int:
        return 1


def test_no_sentences_cost_nothing() -> None:
    """A decision without reasons has nothing to redact."""
    assert redact([], args={"token": KEY}) == []


def test_quoted_bare_and_nested_values_are_replaced_with_a_tag() -> None:
    """Argument strings at any depth, quoted or bare, become the same short hash tag; names stay."""
    [quoted, bare] = redact(
        [f"argument 'to' is {KEY!r} but must equal 'a'.", f"saw {KEY} in a list"], args={"to": {"x": [KEY]}}
    )
    assert KEY not in quoted + bare
    assert quoted.startswith("argument 'to' is '<redacted:")
    assert bare.startswith("saw <redacted:")
    assert quoted.split("'")[3] == bare.split()[1]


def test_truncated_quotes_and_credentials_from_elsewhere_are_caught() -> None:
    """A value shown cut short is replaced as shown; credential shapes are replaced whatever their origin."""
    long = KEY + "x" * 100
    [cut, foreign] = redact([f"is {describe(long)} but too long", "the page said Bearer abcdefghijklmnop"], args=[long])
    assert KEY[:12] not in cut
    assert "abcdefghijklmnop" not in foreign


def test_a_value_that_cannot_be_redacted_withholds_the_sentence() -> None:
    """If a string still shows after redaction (cut mid-quote in a container's repr), the sentence is withheld."""
    values = ["a" * 40, KEY + "y" * 40]
    sentence = f"argument is {describe(values)}"
    assert redact([sentence], args={"v": values}) == [WITHHELD]


def test_hostile_or_absurd_arguments_never_break_redaction() -> None:
    """Containers that raise withhold every sentence; absurd nesting is cut off, not recursed into."""
    assert redact(["one", "two"], args={"a": Hostile()}) == [WITHHELD, WITHHELD]
    deep: object = KEY
    for _ in range(50):
        deep = [deep]
    assert redact(["fine"], args={"d": deep}) == ["fine"]


def test_notes_are_redacted() -> None:
    """An approver's note quoted in a sentence is replaced like an argument."""
    [sentence] = redact(
        ["alice did not approve the call: the code is 1234-5678"], args={}, note="the code is 1234-5678"
    )
    assert "1234-5678" not in sentence


def test_a_value_starting_like_a_quoted_parameter_does_not_withhold_the_sentence() -> None:
    """A sentence that quotes an intent parameter survives when an argument merely starts like it; the
    argument itself is still replaced."""
    args = {"to": "exfil@evil.example", "body": "ann@example.com, bob@example.com, carol@example.com"}
    sentence = "argument 'to' is 'exfil@evil.example' but must equal parameter customer_email ('ann@example.com')."
    [kept] = redact([sentence], args=args, shown=["ann@example.com"])
    assert "exfil" not in kept
    assert kept.endswith("but must equal parameter customer_email ('ann@example.com').")
    assert redact([sentence], args=args) == [WITHHELD]  # without knowing the parameter, it is withheld
    # A value's first characters as an unquoted word ('customers' in 'customer_email') withhold nothing.
    [plain] = redact([sentence], args={"subject": "customers"})
    assert plain == sentence
