"""Who an agent acts for: the human principal in a tenant, and the agent itself."""

from __future__ import annotations

import re
from dataclasses import dataclass

from intentguard.errors import ConfigurationError

__all__ = ["AgentIdentity", "Principal"]

_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")


def _require_id(value: object, what: str) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value) or value != value.strip():
        raise ConfigurationError(
            f"{what} {value!r} is not a valid id; use 1-256 printable characters without surrounding spaces"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The human on whose behalf an agent acts, in the tenant that owns the data.

    ``auth_event`` is the id of the human authorization the whole run hangs from (a login,
    a consent, a ticket); every audit record of the run carries it.
    """

    user: str
    tenant: str
    auth_event: str | None = None

    def __post_init__(self) -> None:
        _require_id(self.user, "user")
        _require_id(self.tenant, "tenant")
        if self.auth_event is not None:
            _require_id(self.auth_event, "auth_event")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentIdentity:
    """An agent: a stable id (``support-bot``) and optionally the software version running it."""

    id: str
    version: str | None = None

    def __post_init__(self) -> None:
        _require_id(self.id, "agent id")
        if self.version is not None:
            _require_id(self.version, "agent version")
