"""Two-hop delegation: a support agent delegates to a researcher, which delegates to a summariser.

Run ``python examples/delegation.py``. Each hop is a child session whose grant is a subset of its
parent's, and carries a signed hop token (a compact Ed25519 JWS) linked to its parent's by hash.
The script prints every token decoded; ``docs/identity.md`` shows this output, and a test keeps the
two equal (fixed keys, a frozen clock and sequential ids make the run deterministic).
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import intentguard as ig
from intentguard.testing import FrozenClock, sequential_ids

SCHEMA = ig.IntentSchema.model_validate(
    {
        "name": "ticket_triage",
        "version": "1.0",
        "description": "Triage one support ticket of the user's tenant: research it, then update it.",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "required": ["ticket_id"],
            "properties": {"ticket_id": {"type": "string"}},
        },
        "ttl": "PT1H",
        "max_calls": 20,
        "max_depth": 2,
        "hop_ttl_factor": 0.5,
        "tools": {
            "read_ticket": {
                "privilege": "low",
                "max_calls": 5,
                "args": {"ticket_id": {"equals": {"param": "ticket_id"}}},
            },
            "search_kb": {
                "privilege": "low",
                "max_calls": 10,
                "args": {"query": {"type": "string", "max_length": 200}},
            },
            "update_ticket": {
                "privilege": "high",
                "max_calls": 2,
                "args": {"ticket_id": {"equals": {"param": "ticket_id"}}},
            },
        },
        "decay": [{"after": "PT30M", "drop": "high"}],
    }
)


def decode(token: str) -> dict[str, object]:
    """A compact JWS's header and claims, as a reader sees them (no verification: for display)."""
    header, claims, _ = (base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split("."))
    return {"header": json.loads(header), "claims": json.loads(claims)}


def main() -> None:
    keys = ig.MemoryKeyStore()
    keys.add("acme", Ed25519PrivateKey.from_private_bytes(bytes(range(32))), kid="acme-2026-01")
    clock = FrozenClock()
    guard = ig.Guard(schemas=[SCHEMA], clock=clock, ids=sequential_ids("t"), keys=keys)
    root = guard.start(
        "ticket_triage",
        {"ticket_id": "T-1001"},
        principal=ig.Principal(user="ann", tenant="acme", auth_event="sso-login-7"),
        agent=ig.AgentIdentity(id="support-bot"),
    )
    clock.advance(minutes=10)
    researcher = root.delegate(ig.AgentIdentity(id="researcher"), tools=["read_ticket", "search_kb"])
    summariser = researcher.delegate(
        ig.AgentIdentity(id="summariser"), tools=["search_kb"], tool_max_calls={"search_kb": 3}
    )
    for hop, token in enumerate(summariser.tokens):
        print(f"hop {hop} ({len(token)} characters):")
        print(json.dumps(decode(token), indent=2))
    verdict = ig.verify_chain(summariser.tokens, keys, now=clock())
    print(f"chain verified: {verdict.ok}; the summariser acts as {' -> '.join(summariser.chain.actors)}")
    try:
        summariser.delegate(ig.AgentIdentity(id="one-too-many"))
    except ig.Denied as denied:
        print(denied)
    guard.close()


if __name__ == "__main__":
    main()
