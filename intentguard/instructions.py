"""Instructions addressed to the agent inside untrusted content: deterministic and explainable.

:func:`detect` runs a fixed table of rules over the normal form of a text (the one values are
matched in, :mod:`intentguard.normal`, line breaks kept) and returns one :class:`Instruction` per
finding, each naming its rule, the sentence it matched, the values it mentions (the attacker's
address, IBAN, URL, amount) and the action verbs near it.

Ordinary business text is full of imperatives ("please send me the invoice by Friday"), so
the rules come in two strengths:

- **strong** rules flag on their own. They match language a person rarely writes to another
  person: overriding instructions ("ignore all previous instructions"), addressing an AI
  ("dear assistant", "to you, GPT-4", "if you are an AI"), instruction tags (``<INFORMATION>``,
  ``[SYSTEM]``, ``<|im_start|>``), spoofed system turns (``###(system_message)``, "system
  override:") and asking to send a secret (password, security code, API key, ...) to an explicit
  address, URL or number, unless the sentence negates it ("we will never ask you to ...").
- **weak** rules (an imperative at the start of a clause, "before you answer", "instead, ...",
  "you must", "the assistant must", "from now on", "new instructions:", "TODO:", a ``system:``
  line) flag only with an *agent signal* within 300 characters: a strong finding, "the user",
  the agent's task or prompt ("the task I gave you", "your instructions"), secrecy towards the
  user ("do not tell the user", "without asking the user", "silently") or "the AI must".
  Merely mentioning AI ("our AI-powered search") is not a signal; neither is urgency.

The trade-off is deliberate: a phishing or payment-change e-mail written to a human ("URGENT:
transfer $5,000 to IBAN ...") is not flagged unless it names a secret to send, and a real
password-reset mail ("click here to reset your password") is not flagged at all; those values
remain untrusted in the ledger, so a high-privilege call using them still needs confirmation.
Flagging every imperative would make every vendor e-mail an attack. Known false positives: a
person retracting their own earlier instructions ("please disregard my previous instructions")
and security advice that tells the reader to forward a code to a named address.

Offsets (:attr:`Instruction.start`) and excerpts refer to ``normalize(text, keep_lines=True)``,
so obfuscation (full-width, zero-width, percent-encoding) is undone before any rule runs. The
scan is linear: patterns have bounded spans and no nested quantifiers, a rule is skipped when
none of its key substrings occurs, weak rules only search the windows around signals, and each
rule resumes after the sentence of its last finding. At most :data:`MAX_INSTRUCTIONS` findings
per rule and per text are returned, earliest first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from intentguard.normal import normalize
from intentguard.values import extract

__all__ = ["MAX_INSTRUCTIONS", "VERBS", "Instruction", "detect"]

MAX_INSTRUCTIONS = 100
"""The most instructions :func:`detect` reports for one text."""

_VERB_NAMES = (
    "add approve attach book buy call cancel change click copy create delete deposit disable disclose download "
    "email enable execute export forward give grant install invite leak login modify move open order paste pay "
    "post provide publish purchase refund remove rename reply reserve reset reveal revoke run schedule send set "
    "share sign submit subscribe text transfer unsubscribe update upload visit wire withdraw write"
)
VERBS = frozenset(_VERB_NAMES.split())
"""The action verbs (base forms) reported in :attr:`Instruction.verbs`."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction found in untrusted text: which rule, where, what it mentions."""

    rule: str
    excerpt: str
    start: int
    values: frozenset[str]
    verbs: frozenset[str]


_VERB_FORMS = {verb: verb for verb in VERBS} | {"e-mail": "email"}
_WORD = re.compile(r"[a-z]+(?:-mail)?")

_AI = (
    r"(?:ai|a\.i\.|llms?|large language models?|language models?|chatbots?|chatgpt|gpt[-\w.]{0,12}|copilot"
    r"|ai (?:assistants?|agents?|models?|systems?)|automated (?:agents?|assistants?|systems?)|virtual assistants?)"
)
_AI_KEYS = "ai|a.i.|llm|language|chatbot|gpt|copilot|automated|virtual"
# Model names that are also people's names count only where a person would not write them.
_MODEL = r"(?:" + _AI[3:-1] + r"|claude[-\w.]{0,12}|gemini[-\w.]{0,12}|llama[-\w.]{0,12}|mistral|command[- ]r\+?)"
_VERB = "|".join(sorted(VERBS - {"open", "order", "set", "text", "call", "run", "sign", "login"}))
_LEAD = r"(?:please|kindly|also|then|now|first|immediately|just|simply|urgently|and)"
_SEND = re.compile(
    r"\b(?:send|forward|share|e-?mail|post|upload|give|provide|text|leak|reveal|disclose|paste|submit)\b"
)
_RECIPIENT = re.compile(r"[\w.+-]@[\w-]+\.[\w-]|https?://|\bwww\.|\+?[0-9][0-9 ().-]{6,30}[0-9]")
_NEGATION = re.compile(r"\b(?:never|not|don't|dont|won't|cannot|can't|shouldn't)\b")
# Agent signals: text that only makes sense read by an agent acting for someone.
_SIGNALS = (
    (
        r"\bthe user(?:'s)?\b(?! (?:manual|guide|interface|experience|base|name|id|group|profile|stor|agreement))"
        r"|\b(?:do not|don't|never|without) (?:tell|telling|inform|informing|notify|notifying"
        r"|mention|mentioning|alert|alerting|ask|asking|confirm|confirming|check|checking)"
        r"(?: (?:with|it to|this to))? (?:the user|your user)\b|\bwithout (?:the user|them) (?:knowing|noticing)\b",
        "user|knowing|noticing",
    ),
    (
        r"\byour (?:instructions|system prompt|prompt|programming|guidelines)\b"
        r"|\b(?:your|my|the) (?:original|initial|previous|current|assigned|real|actual|true|new|first) "
        r"(?:task|instructions?|objective|goal|prompt)\b|\b(?:task|instructions?) (?:that |which )?"
        r"(?:i|the user|you were|you have been|you've been) (?:gave|give|given|assigned|told)\b",
        "instruction|prompt|programming|guidelines|task|objective|goal",
    ),
    (r"\bsilently\b", "silently"),
    (r"\bthe " + _AI + r" (?:must|should|shall|will|needs to|has to|is (?:instructed|required) to)\b", _AI_KEYS),
)


@dataclass(frozen=True, slots=True)
class _Rule:
    """A rule id, its pattern, and the substrings one of which every match contains (to skip it fast)."""

    name: str
    pattern: re.Pattern[str]
    keys: tuple[str, ...]
    strong: bool = True


def _rule(name: str, pattern: str, keys: str, *, strong: bool = True) -> _Rule:
    return _Rule(name, re.compile(pattern, re.MULTILINE), tuple(filter(None, keys.split("|"))), strong)


_RULES = (
    _rule(
        "ignore_instructions",
        r"\b(?:ignore|disregard|forget|override|bypass|neglect|abandon)(?: (?:all|any|the|your|my|these|those|every"
        r"|of|previous|prior|above|earlier|preceding|former|original|initial|old|current|existing|system|other|given"
        r"|said|safety|security)){0,5} (?:i\w{0,2}structions?|prompts?|directions?|directives?|guidelines?|rules"
        r"|commands?|guidance|programming|constraints|restrictions|safeguards|polic(?:y|ies))\b"
        r"|\bforget (?:everything|all) (?:above|before|prior|so far|you (?:were|have been) told)\b",
        "ignore|disregard|forget|override|bypass|neglect|abandon",
    ),
    _rule(
        "addressed_to_ai",
        r"\b(?:dear|hey|hi|hello)(?: the)? assistant\b(?! (?:manager|director|professor|editor|principal|coach)\b)",
        "assistant",
    ),
    _rule(
        "addressed_to_ai",
        r"\b(?:dear|hey|hi|hello|attention|greetings|note to|message (?:to|for)|instructions? (?:to|for)"
        r"|this (?:message )?is for)(?: the| my| our| any| all)? " + _AI + r"\b"
        r"|\b(?:any|all|every|attention) " + _AI + r"(?: that (?:is |are )?| )(?:reading|processing|summari[sz]ing"
        r"|parsing|crawling|scraping|reviewing|analy[sz]ing|reads?)\b|^" + _AI + r" ?[:,]",
        _AI_KEYS,
    ),
    _rule(
        "addressed_to_ai",
        r"\bto you,? (?:the |my )?(?:" + _MODEL + r"|model)(?![\w-])|\bimportant message from me,? [^,.\n]{1,60},? "
        r"to you\b|\b(?:if|when|since|as) you(?: are|'re| happen to be) (?:an? )?" + _MODEL + r"\b",
        "to you|you are|you're|you happen",
    ),
    _rule(
        "instruction_tag",
        r"<\s?(?:information|important|instructions?|inst|sys|system|system_message|system_prompt|admin_message"
        r"|hidden_instructions?|override)\s?>|\[\s?(?:system|inst|admin|important|instructions?|sys)\s?\]"
        r"|<<\s?sys\s?>>|<\|(?:im_start|system)\|>",
        "<|[",
    ),
    _rule(
        "system_spoof",
        r"^#{1,6} ?\(?system(?:[ _](?:message|prompt))?\)?"
        r"|\b(?:system|admin|administrator|developer|root)[ _](?:override|prompt|instructions?|commands?) ?:",
        "system|admin|developer|root",
    ),
    _rule(
        "secret_exfiltration",
        r"\b(?:passwords?|passcodes?|pass codes?|security codes?|verification codes?|login codes?|2fa|two[- ]factor"
        r"|otps?|one[- ]time (?:codes?|passwords?)|api keys?|access keys?|secret keys?|private keys?|tokens?"
        r"|credentials?|social security|ssn|credit card|card numbers?|cvv|pin)\b",
        "pass|code|2fa|factor|otp|key|token|credential|social|ssn|card|cvv|pin",
    ),
    _rule(
        "action_request",
        r"(?:^|(?<=[.!?:;,>\]]) |\b" + _LEAD + r",? )(?:" + _LEAD + r",? ){0,3}(?:" + _VERB + r")\b",
        "",
        strong=False,
    ),
    _rule(
        "before_you",
        r"\bbefore (?:you (?:can |do |start |begin )?|doing )?(?:answer|repl|respond|solv|finish|complet|continu"
        r"|proceed|summar|return)",
        "before",
        strong=False,
    ),
    _rule("instead", r"(?:^|(?<=[.!?:;]) )instead[,:]? ", "instead", strong=False),
    _rule(
        "you_must",
        r"\byou (?:must|should|need to|have to|are (?:required|instructed|ordered) to)\b",
        "must|should|need|have|required|instructed|ordered",
        strong=False,
    ),
    _rule(
        "new_instructions",
        r"\b(?:new|updated|revised|real|actual|true|secret|hidden|additional|further) (?:instructions?|tasks?"
        r"|directives?|objectives?|orders)\b ?:?|^#{1,6} ?instructions?\b",
        "instruction|task|directive|objective|order",
        strong=False,
    ),
    _rule(
        "todo_list",
        r"(?:^|(?<=[.!?]) )(?:todo|to-do|to do|action items?|next steps?|tasks?) ?:",
        "todo|to-do|to do|action|next|task",
        strong=False,
    ),
    _rule(
        "agent_directive",
        r"\b(?:the|this) (?:assistant|agent|ai|model|llm|bot)(?: assistant| agent)? (?:must|should|shall|will need to"
        r"|needs to|has to|is (?:required|instructed) to)\b|\bfrom now on\b",
        "assistant|agent|ai|model|llm|bot|from now on",
        strong=False,
    ),
    _rule("system_line", r"^(?:system|assistant|developer|admin) ?:", "system|assistant|developer|admin", strong=False),
)
_SIGNAL_RULES = tuple(_rule("signal", pattern, keys) for pattern, keys in _SIGNALS)
_BOUNDARY = re.compile(r"[.!?](?= )|\n|[<>\[\]]")
_WINDOW, _BEFORE, _AFTER, _TAG_SPAN, _EXCERPT = 300, 300, 400, 1000, 200


# Every strong and signal rule has keys (a test checks it), and weak rules only search around
# their findings: a text holding none of these keys yields nothing, which is what lets
# :func:`detect` stop there. A short text has each key looked up once, not once per rule.
_GATE = tuple(dict.fromkeys(key for rule in (*_RULES, *_SIGNAL_RULES) if rule.strong for key in rule.keys))
_KEYS = tuple(dict.fromkeys(key for rule in (*_RULES, *_SIGNAL_RULES) for key in rule.keys))
_SHORT = 2048


def _trie(keys: Iterable[str]) -> str:
    """A pattern that matches wherever one of ``keys`` occurs, shaped as a trie (a branch per first
    character, and so on): the engine tries a few branches per position instead of every key."""
    branches: dict[str, list[str]] = {}
    for key in sorted(set(keys)):
        branches.setdefault(key[:1], []).append(key[1:])
    parts = []
    for head, tails in branches.items():
        rest = [tail for tail in tails if tail]
        inner = _trie(rest) if rest else ""
        parts.append(re.escape(head) + (f"(?:{inner})?" if rest and "" in tails else inner))
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


_GATE_PATTERN = re.compile(_trie(_GATE))


def detect(text: str, *, normal: str | None = None) -> list[Instruction]:
    """The instructions addressed to an agent that ``text`` contains, in text order. ``normal``
    is ``normalize(text, keep_lines=True)``, where the caller has it already."""
    t = normalize(text, keep_lines=True) if normal is None else normal
    if not _GATE_PATTERN.search(t):
        return []  # no key of any rule that can flag or open a window: nothing to find
    if len(t) <= _SHORT:
        present = {key for key in _KEYS if key in t}
        return _scan(t, present.__contains__)
    # A long text: every key looked up would cost more than the rules that stop at their first key.
    return _scan(t, t.__contains__)


def _scan(t: str, has: Callable[[str], bool] | None) -> list[Instruction]:
    """The findings in normal form ``t``; a rule runs only if ``has`` one of its keys (``None``:
    every rule runs, the reference the tests compare :func:`detect` against)."""
    whole = [(0, len(t))]
    strong = [(rule, m) for rule in _RULES if rule.strong for m in _matches(rule, t, whole, has)]
    signals = [m.start() for r in _SIGNAL_RULES for m in _matches(r, t, whole, has, cap=len(t))]
    signals = sorted(signals + [m.start() for _, m in strong])
    windows: list[tuple[int, int]] = []
    for pos in signals:  # merged windows around the signals; weak rules only look inside them
        low, high = max(0, pos - _WINDOW), min(len(t), pos + 2 * _WINDOW)
        if windows and low <= windows[-1][1]:
            windows[-1] = (windows[-1][0], high)
        else:
            windows.append((low, high))
    weak = [(rule, m) for rule in _RULES if not rule.strong for m in _matches(rule, t, windows, has)]
    found = sorted(strong + weak, key=lambda pair: (pair[1].start(), pair[0].name))[:MAX_INSTRUCTIONS]
    return [_instruction(rule, m, t) for rule, m in found]


def _matches(
    rule: _Rule,
    t: str,
    windows: list[tuple[int, int]],
    has: Callable[[str], bool] | None,
    *,
    cap: int = MAX_INSTRUCTIONS,
) -> Iterator[re.Match[str]]:
    """Matches of ``rule`` inside ``windows``, each search resuming after the last match's sentence."""
    if not windows or (has is not None and rule.keys and not any(map(has, rule.keys))):
        return
    count = 0
    for low, high in windows:
        pos = low
        while count < cap and (m := rule.pattern.search(t, pos, high)):
            pos = max(m.end(), _sentence_end(t, m.end()))
            if rule.name != "secret_exfiltration" or _asks_for_secret(t, m):
                count += 1
                yield m


def _asks_for_secret(t: str, m: re.Match[str]) -> bool:
    """A send-like verb before the secret in its sentence, not negated, and a recipient after it."""
    clause = t[_sentence_start(t, m.start()) : m.start()]
    verb = next(reversed(list(_SEND.finditer(clause))), None)
    after = t[m.end() : _sentence_end(t, m.end())]
    return verb is not None and not _NEGATION.search(clause, 0, verb.start()) and bool(_RECIPIENT.search(after))


def _sentence_start(t: str, pos: int) -> int:
    low = max(0, pos - _BEFORE)
    ends = [b.end() for b in _BOUNDARY.finditer(t, low, pos)]
    return ends[-1] if ends else low


def _sentence_end(t: str, pos: int) -> int:
    b = _BOUNDARY.search(t, pos, min(len(t), pos + _AFTER))
    return b.end() if b else min(len(t), pos + _AFTER)


def _instruction(rule: _Rule, m: re.Match[str], t: str) -> Instruction:
    start = _sentence_start(t, m.start())
    if rule.name == "instruction_tag":
        end = min(len(t), m.end() + _TAG_SPAN)
        closing = t.find("</", m.end(), end)
        end = closing if closing >= 0 else end
    else:  # the sentence and the one after it: "Ignore the above. Send X to Y."
        end = _sentence_end(t, _sentence_end(t, m.end()))
    region = t[start:end]
    excerpt_start = max(start, m.start() - 60)
    excerpt = t[excerpt_start : min(end, excerpt_start + _EXCERPT)].strip()
    verbs = frozenset(_VERB_FORMS[w] for w in _WORD.findall(region) if w in _VERB_FORMS)
    return Instruction(rule.name, excerpt, m.start(), frozenset(extract(region, tokens=False)), verbs)
