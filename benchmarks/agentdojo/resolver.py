"""The spawn-time intent parser for the AgentDojo suites: request text + suite → intent.

``resolve(text, metadata)`` reads only the user's request and ``metadata["suite"]`` — never a
task id, an exact prompt or a per-task table — the way the intent parser of a banking, workspace,
travel or Slack assistant would. Usable as ``--resolver benchmarks.agentdojo.resolver:resolve``.

How it decides, per suite:

1. Each kind of change the app can make (pay a bill, send money, manage the calendar, invite a
   user, ...) is an :class:`intentguard.resolvers.Rule`: a pattern over the request naming that
   action. Every rule is tried.
2. Exactly one kind of change asked for: its single-purpose intent. More than one (a request
   that changes an address *and* a standing order *and* sends money), or a request that hands
   its instructions to a document, e-mail or web page ("do the tasks on my TODO list at ..."):
   the suite's ``*_general`` intent, every tool under the same rules. None: the suite's
   read-only intent (narrowed where the request is plainly narrower, e.g. spending questions).
3. Parameters come from the request text only: file names the user named, the new password
   they quoted, e-mail addresses, web addresses, and cities per kind of place. The built-in
   extractors (``intentguard.resolvers.EXTRACTORS``) give e-mail addresses and quoted strings;
   file names, bare web addresses (``www.x.com``), cities and a quoted new password need the
   small extractors below.

Every request of a known suite gets an intent; an unknown suite gets None (no authority).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from intentguard.replay import ResolvedIntent
from intentguard.resolvers import EXTRACTORS, Rule, RuleResolver

__all__ = ["SUITES", "cities", "filenames", "new_password", "pages", "resolve"]

# --- extractors the library does not ship -----------------------------------------------------

_FILENAME = re.compile(
    r"(?<![\w@/.-])[\w][\w.-]{0,120}\.(?:txt|pdf|docx?|xlsx?|csv|md|json|ya?ml|pptx?|odt|rtf)\b", re.IGNORECASE
)
_WEB = re.compile(
    r"(?<![\w@.-])(?:https?://)?(?:www\.)?[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9-]{1,63})*"
    r"\.(?:com|org|net|io|ai|dev|app|info|biz|co|us|uk|de|fr|ch|eu|edu|gov|me|site|blog)"
    r"(?![\w@-])(?:/[^\s'\"<>()]*)?",
    re.IGNORECASE,
)
_QUOTES = "'\"\u2018\u2019\u201c\u201d"  # straight and curly quotes
_PASSWORD = re.compile(
    rf"\bpassword\b[^{_QUOTES}\n]{{0,60}}?\b(?:to|as|into|is|:)\s*[{_QUOTES}]([^{_QUOTES}\n]{{3,128}})[{_QUOTES}]",
    re.IGNORECASE,
)
_PLACE = r"[A-Z][a-zA-Z'-]+(?:[ -][A-Z][a-zA-Z'-]+){0,2}"
_CITY = re.compile(
    r"\b(?:in|to|at|from|for|visit|visiting|into|around|near|of|towards|via)\s+(" + _PLACE + r")"
    r"((?:\s*(?:,|and|&|or|then)\s*(?:then\s+)?(?:in\s+|to\s+)?" + _PLACE + r")*)"
)
_NOT_PLACES = frozenset(
    {
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "mondays",
        "tuesdays",
        "wednesdays",
        "thursdays",
        "fridays",
        "saturdays",
        "sundays",
        "i",
        "i'm",
        "i'll",
        "my",
        "me",
        "we",
        "the",
        "a",
        "an",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "they",
        "slack",
        "hotel",
        "hotels",
        "restaurant",
        "restaurants",
        "airbnb",
        "please",
        "thanks",
        "hi",
        "hey",
    }
)
"""Capitalised words after a preposition that are not places (months, days, pronouns, ...)."""
_CITY_ALIASES = {"LA": "Los Angeles", "NYC": "New York", "NY": "New York", "SF": "San Francisco"}


def filenames(text: str) -> list[str]:
    """File names the request names (``'bill-december-2023.txt'``, ``feedback.xlsx``), in order."""
    found: list[str] = []
    for match in _FILENAME.finditer(text):
        name = match.group(0)
        if name not in found:
            found.append(name)
    return found


def pages(text: str) -> list[str]:
    """Web addresses the request names, each with and without a scheme and a trailing slash,
    so that ``www.x.com``, ``https://www.x.com`` and ``https://www.x.com/`` all match."""
    found: list[str] = []
    for match in _WEB.finditer(text):
        address = match.group(0).rstrip(".,;:!?")
        if _FILENAME.fullmatch(address.rsplit("/", 1)[-1]) and "/" not in address and "www." not in address:
            continue  # a file name, not a site
        bare = re.sub(r"^https?://", "", address, flags=re.IGNORECASE).rstrip("/")
        for variant in (bare, f"{bare}/", f"https://{bare}", f"https://{bare}/", f"http://{bare}", f"http://{bare}/"):
            if variant not in found:
                found.append(variant)
    return found


def new_password(text: str) -> list[str]:
    """The new password the request quotes ("update the password to '1j1l-2k3j'")."""
    return [match.group(1) for match in _PASSWORD.finditer(text)]


def cities(text: str) -> list[str]:
    """Places the request names after a preposition ("in Paris", "from Paris to London",
    "a trip to London, followed by 3 days in Paris"), common abbreviations expanded, each also
    lower-cased and title-cased (a tool argument ``paris`` is the same city)."""
    found: list[str] = []

    def add(name: str) -> None:
        name = name.strip()
        words = name.split()
        while words and words[0].lower() in _NOT_PLACES:
            words = words[1:]
        while words and words[-1].lower() in _NOT_PLACES:
            words = words[:-1]
        if not words:
            return
        name = " ".join(words)
        for value in (name, _CITY_ALIASES.get(name)):
            for form in (value, value.lower(), value.title()) if value else ():
                if form not in found:
                    found.append(form)

    for match in _CITY.finditer(text):
        add(match.group(1))
        for more in re.findall(_PLACE, match.group(2) or ""):
            add(more)
    return found


def _emails(text: str) -> list[str]:
    return list(EXTRACTORS["email"](text))


# --- kinds of request -------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One kind of change an app can make: a schema and the pattern that asks for it.

    ``needs`` names a parameter (from :data:`_PARAMS`) that must be non-empty for the action to
    apply; ``subsumes`` names actions this one includes (a bill payment is a transfer)."""

    schema: str
    pattern: str
    needs: str | None = None
    subsumes: frozenset[str] = field(default_factory=frozenset)


@dataclass
class App:
    """The intent parser of one suite's application: its actions, its compound (``general``)
    intent, its narrower read-only intents and its read-only fallback, and how to fill each
    intent's parameters from the request."""

    suite: str
    actions: Sequence[Action]
    general: str
    reads: Sequence[Action]
    fallback: str
    params: Mapping[str, Callable[[str], dict[str, Any]]]
    _rules: dict[str, RuleResolver] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rules = {
            action.schema: RuleResolver(
                [Rule(schema=action.schema, pattern=action.pattern, metadata={"suite": self.suite})]
            )
            for action in [*self.actions, *self.reads]
        }

    def _asks(self, action: Action, text: str, metadata: Mapping[str, Any]) -> bool:
        if self._rules[action.schema](text, metadata) is None:
            return False
        return action.needs is None or bool(_PARAMS[action.needs](text))

    def __call__(self, text: str, metadata: Mapping[str, Any]) -> ResolvedIntent:
        asked = [a for a in self.actions if self._asks(a, text, metadata)]
        subsumed = {name for a in asked for name in a.subsumes}
        kinds = {a.schema for a in asked if a.schema not in subsumed}
        if _DELEGATES.search(text) or len(kinds) > 1:
            schema = self.general
        elif kinds:
            schema = kinds.pop()
        else:
            schema = next((a.schema for a in self.reads if self._asks(a, text, metadata)), self.fallback)
        fill = self.params.get(schema)
        return ResolvedIntent(schema, fill(text) if fill else {})


_PARAMS: Mapping[str, Callable[[str], list[Any]]] = {
    "documents": filenames,
    "pages": pages,
    "new_password": new_password,
    "emails": _emails,
    "cities": cities,
}

# A request that hands its instructions to something the agent will read.
_DELEGATES = re.compile(
    r"\b(?:actions?|tasks?|instructions?|to-?dos?|steps|requests?)\b(?:\s+[\w']+){0,4}?\s+"
    r"(?:specified|listed|mentioned|described|given|written|contained)?\s*(?:in|from|on|at)\s+"
    r"(?:the|my|this|that|her|his|their|our)\s+(?:[\w-]+\s+)?"
    r"(?:e-?mail|file|document|message|note|list|todo|to-do|website|web ?page|page|inbox)"
    r"|\bfollow (?:(?:the|its|their|all(?: the)?) )?(?:instructions?|steps|directions)\b"
    r"|\bdo (?:what|as) (?:it|they|he|she|the \w+) (?:says?|asks?|tells? (?:me|you))\b",
    re.IGNORECASE,
)

# --- banking ----------------------------------------------------------------------------------

_UPDATE = r"(?:update|adjust|change|modify|correct|fix|increase|decrease|raise|lower|edit|amend)"
_BANKING = App(
    suite="banking",
    actions=(
        Action("banking_change_password", r"\bpassword\b", needs="new_password"),
        Action(
            "banking_pay_bill",
            r"\b(?:pay|settle)\b.{0,40}\b(?:bill|invoice)\b",
            needs="documents",
            subsumes=frozenset({"banking_send_money"}),
        ),
        Action(
            "banking_update_profile",
            _UPDATE + r"\b.{0,60}\b(?:address|account (?:information|info|details)|user (?:information|info)"
            r"|(?:first |last )?name|personal (?:details|information)|profile|street|city)\b"
            r"|\b(?:i (?:have )?moved|new address|moved (?:to|house))\b",
        ),
        Action(
            "banking_update_scheduled_transaction",
            _UPDATE + r"\b.{0,60}\b(?:rent|standing orders?|scheduled|recurring|subscriptions?|direct debits?)\b"
            r"|\b(?:rent|standing orders?|scheduled (?:transactions?|payments?|transfers?))\b.{0,60}\b" + _UPDATE,
        ),
        Action(
            "banking_schedule_transaction",
            r"\b(?:set up|setup|create|schedule|start|add)\b.{0,40}\b(?:recurring|scheduled|standing order|regular"
            r"|monthly|weekly|periodic)\b",
        ),
        Action(
            "banking_send_money",
            r"(?<!\bi )(?<!\bwe )(?<!\busually )(?<!\balways )(?<!\bnormally )"
            r"\b(?:send|refund|transfer|wire|reimburse|pay|repay|pay back)\b",
        ),
    ),
    general="banking_general",
    reads=(
        Action(
            "banking_transaction_history",
            r"\b(?:spend|spent|spending|transactions?|purchases?|bought|paid|income|earned|received|summary"
            r"|how much)\b",
        ),
    ),
    fallback="banking_account_info",
    params={
        "banking_account_info": lambda text: {"documents": filenames(text)},
        "banking_pay_bill": lambda text: {"documents": filenames(text)},
        "banking_update_scheduled_transaction": lambda text: {"documents": filenames(text)},
        "banking_update_profile": lambda text: {"documents": filenames(text)},
        "banking_general": lambda text: {"documents": filenames(text)},
        "banking_change_password": lambda text: {"new_password": new_password(text)[0]},
    },
)

# --- workspace --------------------------------------------------------------------------------

_WORKSPACE = App(
    suite="workspace",
    actions=(
        Action(
            "workspace_send_email",
            r"\b(?:send|forward)\b(?! me\b)|\b(?:reply|respond|write back)\b (?:to|him|her|them|all)\b"
            r"|\be-?mail (?:him|her|them|it|back|to|each|every|the|a|an|(?-i:[A-Z])|[\w.+-]+@)",
        ),
        Action("workspace_delete_email", r"\b(?:delete|remove|trash)\b.{0,40}\be-?mails?\b"),
        Action(
            "workspace_manage_calendar",
            r"\b(?:create|add|schedule|set up|book|organi[sz]e|plan|put)\b.{0,120}\b(?:event|meeting|appointment"
            r"|calendar|participants?|attendees?)\b|\b(?:reschedule|postpone|cancel|move)\b.{0,60}\b(?:event|meeting"
            r"|appointment|check-up|call|lunch|dinner|class|my)\b|\binvite\b",
        ),
        Action(
            "workspace_manage_files",
            r"\b(?:create|make|write|add|append|delete|remove|share|rename|edit|update)\b.{0,120}"
            r"\b(?:files?|documents?|docx?|xlsx?|drive|list)\b",
        ),
    ),
    general="workspace_general",
    reads=(),
    fallback="workspace_read",
    params={},
)

# --- travel -----------------------------------------------------------------------------------

_KINDS = {
    "hotel_cities": re.compile(
        r"\b(?:hotels?|stay|stays|staying|rooms?|accommodations?|lodging|check-?in|check-?out|nights?)\b", re.I
    ),
    "restaurant_cities": re.compile(
        r"\b(?:restaurants?|cuisine|lunch|dinner|breakfast|brunch|eat|eating|food|meals?|table|dining|dine|vegan"
        r"|vegetarian|gluten|bistro|caf[eé])\b",
        re.I,
    ),
    "car_rental_cities": re.compile(r"\b(?:cars?|rental|rent|renting|suvs?|vehicles?|drive|driving)\b", re.I),
    "flight_cities": re.compile(r"\b(?:flights?|fly|flying|airlines?|plane|airport)\b", re.I),
}


def _travel_params(text: str, *, emails: bool = False) -> dict[str, Any]:
    places = cities(text)
    asked = [kind for kind, pattern in _KINDS.items() if pattern.search(text)]
    params: dict[str, Any] = {kind: (places if not asked or kind in asked else []) for kind in _KINDS}
    if emails:
        params["emails"] = _emails(text)
    return params


_TRAVEL = App(
    suite="travel",
    actions=(
        Action(
            "travel_book",
            r"(?:^|[.!?]\s+|\b(?:please|pls|can you|could you|would you|go ahead and|i want to|i'd like to"
            r"|i would like to|we want to|we'd like to|help(?: me| us)?(?: to)?|and|then|also)\s+)"
            r"(?:book|reserve)\b(?! (?:it |them )?(?:later|ahead|myself))"
            r"|\bmake (?:a|the|me a|us a) (?:reservation|booking)\b",
        ),
        Action(
            "travel_add_reminder",
            r"\b(?:calendar|remind|reminder|agenda)\b|\b(?:add|create|schedule|put)\b.{0,40}\bevent\b",
        ),
        Action("travel_share_by_email", r"\b(?:send|forward|e-?mail|share)\b", needs="emails"),
    ),
    general="travel_general",
    reads=(
        Action(
            "travel_profile",
            r"\bmy (?:passport|id number|credit card|bank account|personal (?:details|information|info)|profile"
            r"|user (?:information|info))\b",
        ),
    ),
    fallback="travel_recommend",
    params={
        "travel_recommend": _travel_params,
        "travel_book": _travel_params,
        "travel_add_reminder": _travel_params,
        "travel_share_by_email": lambda text: _travel_params(text, emails=True),
        "travel_general": lambda text: _travel_params(text, emails=True),
    },
)

# --- slack ------------------------------------------------------------------------------------

_SLACK_NOUNS = re.compile(
    r"\b(?:channels?|messages?|inbox|slack|dms?|direct|users?|members?|invite|colleagues?|workspace|posted)\b", re.I
)
_SLACK = App(
    suite="slack",
    actions=(
        Action(
            "slack_publish_webpage",
            r"\b(?:post|publish|upload|put)\b.{0,80}\b(?:website|web ?page|site|blog)\b",
            needs="pages",
        ),
        Action(
            "slack_post_message",
            r"\b(?:send|write|reply|post|dm|tell|notify|share|announce)\b(?:[^.!?\n]|\.(?=[a-z0-9/-])){0,80}?"
            r"(?:\bchannel\b|\bdirect message\b|\bdms?\b|\bmessage\b|\bto (?-i:[A-Z][a-z]+)\b|\bthem\b|\bthere\b)"
            r"|\bmessage (?:him|her|them|everyone|everybody|(?-i:[A-Z][a-z]+))\b",
        ),
        Action(
            "slack_invite_user_from_page",
            r"\binvite\b.{0,200}\b(?:website|web ?page|site|page|blog)\b",
            needs="pages",
            subsumes=frozenset({"slack_invite_user"}),
        ),
        Action(
            "slack_invite_user",
            r"\b(?:invite|onboard)\b|\badd\b.{0,60}\b(?:channels?|workspace|slack)\b",
        ),
        Action("slack_remove_user", r"\b(?:remove|kick|delete|ban)\b.{0,40}\b(?:from|users?|members?)\b"),
    ),
    general="slack_general",
    reads=(),
    fallback="slack_read_and_summarize",
    params={
        "slack_read_webpage": lambda text: {"pages": pages(text)},
        "slack_invite_user_from_page": lambda text: {"pages": pages(text)},
        "slack_publish_webpage": lambda text: {"pages": pages(text)},
        "slack_general": lambda text: {"pages": pages(text)},
    },
)


def _slack(text: str, metadata: Mapping[str, Any]) -> ResolvedIntent:
    resolved = _SLACK(text, metadata)
    if resolved.schema == _SLACK.fallback and pages(text) and not _SLACK_NOUNS.search(text):
        return ResolvedIntent("slack_read_webpage", {"pages": pages(text)})  # only about web pages
    return resolved


SUITES: Mapping[str, Callable[[str, Mapping[str, Any]], ResolvedIntent]] = {
    "banking": _BANKING,
    "workspace": _WORKSPACE,
    "travel": _TRAVEL,
    "slack": _slack,
}
"""The intent parser of each suite's application."""


def resolve(text: str, metadata: Mapping[str, Any]) -> ResolvedIntent | None:
    """The intent of a request to the assistant of ``metadata["suite"]`` (None for another suite)."""
    parser = SUITES.get(str(metadata.get("suite", "")))
    return parser(text, metadata) if parser is not None else None
