"""Where tainted values came from, read back from the sentences of provenance reasons.

The guard names the origin of every value it refused (``TAINTED_ARGUMENT``) and of every
instruction it acted on (``UNTRUSTED_INSTRUCTION``) in the reason's sentence; the record
keeps no raw arguments. These parsers recover the argument, its shown value and the origins
from those sentences. The value and the origins are attacker-reachable text: they are
shown, escaped, and never interpreted. A sentence that matches no known shape is kept whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TAINT_CODES", "Taint", "entered_at", "parse_taint", "what"]

TAINT_CODES = frozenset({"TAINTED_ARGUMENT", "UNTRUSTED_INSTRUCTION"})

# The value is a bounded repr that may itself contain the connecting words, so it is matched
# greedily up to the last connector: the sentence's tail is ours, the middle is not.
_TAINTED = re.compile(
    r"^argument (?P<arg>'.*?'|\".*?\") of tool (?P<tool>'.*?'|\".*?\") is (?P<value>.*), which came from "
    r"(?P<origins>.*); the schema takes it only from (?P<allowed>[^;]*)\.$",
    re.DOTALL,
)
_ASKED = re.compile(
    r"^argument (?P<arg>'.*?'|\".*?\") of tool (?P<tool>'.*?'|\".*?\") is (?P<value>.*), which an instruction "
    r"in untrusted content \((?P<origins>[^()]*)\) asked for: (?P<instruction>.*)\.$",
    re.DOTALL,
)
_FOUND = re.compile(r"^an instruction addressed to the agent was found in untrusted content \((?P<origins>[^()]*)\)")
_ENTERED = re.compile(r"^tool:(?P<tool>[^#\s]+)#(?P<call>[^\s]+)")
_TOLD = re.compile(r"^untrusted content in this run told the agent to (?P<verbs>.*?), and ")


@dataclass(frozen=True, slots=True)
class Taint:
    """One argument (or the whole call) that untrusted content reached, and from where."""

    code: str
    kind: str
    """``argument`` (a value from where the schema refuses it), ``asked`` (a value an instruction asked
    for), ``instruction`` (an instruction was found earlier in the run), ``verb`` (the call does what an
    instruction told the agent to do) or ``other`` (a sentence of no known shape)."""
    argument: str | None
    value: str | None
    origins: tuple[str, ...]
    allowed: tuple[str, ...]
    instruction: str | None
    sentence: str


def parse_taint(code: str, sentence: str) -> Taint | None:
    """The taint a provenance reason describes, or None for a reason that is not about provenance."""
    if code not in TAINT_CODES:
        return None
    match = _TAINTED.match(sentence)
    if match is not None:
        return Taint(
            code,
            "argument",
            _unquote(match["arg"]),
            match["value"],
            _origins(match["origins"]),
            tuple(part.strip() for part in match["allowed"].split(",") if part.strip()),
            None,
            sentence,
        )
    match = _ASKED.match(sentence)
    if match is not None:
        return Taint(
            code,
            "asked",
            _unquote(match["arg"]),
            match["value"],
            _origins(match["origins"]),
            (),
            match["instruction"],
            sentence,
        )
    match = _FOUND.match(sentence)
    if match is not None:
        return Taint(code, "instruction", None, None, _origins(match["origins"]), (), None, sentence)
    match = _TOLD.match(sentence)
    if match is not None:
        return Taint(code, "verb", None, None, (), (), match["verbs"], sentence)
    return Taint(code, "other", None, None, (), (), None, sentence)


def what(taint: Taint) -> str:
    """What a taint is about, for a table cell: the argument, or the call or run as a whole."""
    if taint.argument is not None:
        return taint.argument
    return {"instruction": "(every later call)", "verb": "(the call)"}.get(taint.kind, "(unparsed)")


def entered_at(origin: str) -> tuple[str, str] | None:
    """The tool and call id an origin label like ``tool:search_kb#call-7 $.memo (untrusted)`` names."""
    match = _ENTERED.match(origin)
    return None if match is None else (match["tool"], match["call"])


def _unquote(text: str) -> str:
    return text[1:-1]


def _origins(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(", ") if part.strip())
