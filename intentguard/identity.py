"""Who an agent acts for: the human principal in a tenant, the agent itself, and the chain of
delegations between the human and the agent acting now."""

from __future__ import annotations

import re
from dataclasses import dataclass

from intentguard.errors import ConfigurationError

__all__ = ["AgentIdentity", "DelegationChain", "Principal"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class DelegationChain:
    """This agent, acting for this human, in this tenant, through these delegations.

    ``agents[0]`` is the agent the human started; each later agent was delegated to by the one
    before it, and ``sessions`` holds the session of each hop (``sessions[0]`` is the root of the
    delegation tree). ``root_auth`` is the id of the human authorization event the chain hangs from.
    """

    principal: Principal
    agents: tuple[AgentIdentity, ...]
    sessions: tuple[str, ...]
    root_auth: str

    def __post_init__(self) -> None:
        if not self.agents or len(self.agents) != len(self.sessions):
            raise ConfigurationError(
                f"a delegation chain needs one session per agent; got {len(self.agents)} agent(s) "
                f"and {len(self.sessions)} session(s)"
            )

    @classmethod
    def start(cls, principal: Principal, agent: AgentIdentity, session_id: str) -> DelegationChain:
        """The chain of a root session: the human, and the one agent they started."""
        root_auth = principal.auth_event or f"session:{session_id}"
        return cls(principal=principal, agents=(agent,), sessions=(session_id,), root_auth=root_auth)

    def extend(self, agent: AgentIdentity, session_id: str) -> DelegationChain:
        """The chain one hop further: ``agent`` acting in ``session_id`` for the current agent."""
        return DelegationChain(
            principal=self.principal,
            agents=(*self.agents, agent),
            sessions=(*self.sessions, session_id),
            root_auth=self.root_auth,
        )

    @property
    def depth(self) -> int:
        """Delegation hops below the root session (0 for a root)."""
        return len(self.agents) - 1

    @property
    def actors(self) -> tuple[str, ...]:
        """The human first, then every agent in delegation order, the acting agent last."""
        return (self.principal.user, *(agent.id for agent in self.agents))

    @property
    def root_session(self) -> str:
        """The id of the root session of the delegation tree."""
        return self.sessions[0]

    @property
    def parent_session(self) -> str | None:
        """The id of the session that delegated to this one (None for a root)."""
        return self.sessions[-2] if len(self.sessions) > 1 else None
