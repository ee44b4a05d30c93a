"""Every error intentguard raises, split by who must act.

::

    IntentguardError                 the root: catch this to catch everything of ours
    ├── ConfigurationError           the developer must fix code or configuration
    │   ├── InvalidIntentSchema      an intent schema file is wrong (``.problems``)
    │   ├── InvalidParameters        spawn-time parameters do not fit the schema (``.problems``)
    │   ├── GrantWideningError       an attenuation asked for more than the grant holds
    │   ├── ApprovalError            an approval request cannot be stored, decided or read as asked
    │   ├── MissingExtraError        an optional feature's extra is not installed
    │   ├── InvalidAuditTrail        an audit trail given to a report is unreadable (``.problems``)
    │   └── RegistryError            the session registry cannot be opened, reached or written
    │       └── InvalidEvent         a security event (CAEP) is unknown or malformed: nothing was revoked
    ├── AuditTrailError              an audit trail is torn, damaged or held: an operator must look
    └── DecisionError                a check did not ALLOW (``.decision``)
        ├── Denied                   the decision is DENY
        └── ConfirmationRequired     the decision is CONFIRM: a human must approve first

Decisions are values (:class:`intentguard.Decision`); ``Denied`` and
``ConfirmationRequired`` exist only for callers who prefer ``session.enforce(call)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from intentguard.decision import Decision

__all__ = [
    "ApprovalError",
    "AuditTrailError",
    "ConfigurationError",
    "ConfirmationRequired",
    "DecisionError",
    "Denied",
    "GrantWideningError",
    "IntentguardError",
    "InvalidAuditTrail",
    "InvalidEvent",
    "InvalidIntentSchema",
    "InvalidParameters",
    "MissingExtraError",
    "Problem",
    "RegistryError",
]


class IntentguardError(Exception):
    """The root of every error intentguard raises."""


class ConfigurationError(IntentguardError):
    """The developer must fix code or configuration; nothing was decided."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a document: where it is, what is wrong, what to do."""

    source: str
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.source}: {self.path}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text


class _ProblemsError(ConfigurationError):
    """A configuration error that lists every problem found, not just the first."""

    headline = "problem(s) found"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        lines = [f"{count} {self.headline.replace('(s)', '' if count == 1 else 's')}:"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


class InvalidIntentSchema(_ProblemsError):
    """An intent schema document is malformed; ``.problems`` names each with its JSON path."""

    headline = "problem(s) in intent schema"


class InvalidAuditTrail(_ProblemsError):
    """An audit trail cannot be read: each problem names the file and line, and what is wrong there."""

    headline = "problem(s) in audit trail"


class InvalidParameters(_ProblemsError):
    """Spawn-time parameters do not satisfy the intent schema's ``parameters``."""

    headline = "problem(s) in intent parameters"


class GrantWideningError(ConfigurationError):
    """An attenuation asked for a tool, a budget or a lifetime beyond its parent grant."""


class ApprovalError(ConfigurationError):
    """A request cannot be stored, decided or read as asked: unknown, expired, already decided, unreadable."""


class MissingExtraError(ConfigurationError, ImportError):
    """An optional feature needs an extra that is not installed."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        self.extra = extra
        super().__init__(
            f"{feature} needs the {module!r} package; install it with `pip install 'intentguard[{extra}]'`."
        )


class RegistryError(ConfigurationError):
    """The session registry cannot be opened, reached or written (at setup, or when revoking).

    A check never raises this: while the registry cannot vouch for a session, its calls are
    denied with ``REGISTRY_UNAVAILABLE``.
    """


class InvalidEvent(RegistryError):
    """A security event (an OpenID CAEP SET) is of an unknown type or malformed; nothing was revoked."""


class AuditTrailError(IntentguardError):
    """An audit trail cannot be continued as it stands: its last record is torn or damaged, records
    are missing from its end, or another writer holds it. The message names the file and line and
    says what to do; ``intentguard audit verify`` shows the whole picture."""


class DecisionError(IntentguardError):
    """A check did not allow a call; ``.decision`` holds the full decision."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.explain())


class Denied(DecisionError):
    """The guard denied the call."""


class ConfirmationRequired(DecisionError):
    """The call may run only after a human approves it."""
