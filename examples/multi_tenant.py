"""Multi-tenant: an agent working for tenant acme tries to read a record of tenant globex.

Run ``python examples/multi_tenant.py``. The intent marks ``tenant_id`` as naming the tenant that
owns the record (``tenant: true``), so a call that names another tenant is denied with
TENANT_MISMATCH, whatever the record id; a tenant directory is consulted on every call (through
a cache), so suspending the tenant stops its agents within a minute.
"""

from __future__ import annotations

import intentguard as ig
from intentguard.testing import FrozenClock, TenantDirectory, sequential_ids

SCHEMA = ig.IntentSchema.model_validate(
    {
        "name": "crm_lookup",
        "version": "1.0",
        "description": "Read one customer record of the user's own tenant and summarise it.",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "required": ["record_id"],
            "properties": {"record_id": {"type": "string"}},
        },
        "ttl": "PT15M",
        "tools": {
            "read_record": {
                "privilege": "low",
                "max_calls": 5,
                "args": {"tenant_id": {"tenant": True}, "record_id": {"type": "string", "max_length": 64}},
            }
        },
    }
)


def show(session: ig.Session, tool: str, args: dict[str, object]) -> None:
    decision = session.check(ig.ToolCall(tool, args))
    shown = ", ".join(f"{name}={value!r}" for name, value in args.items())
    print(f"  {decision.effect.name:<6} {tool}({shown})")
    for reason in decision.reasons:
        print(f"         {reason}")


def main() -> None:
    clock = FrozenClock()
    directory = TenantDirectory({"acme": None, "globex": None})
    guard = ig.Guard(schemas=[SCHEMA], clock=clock, ids=sequential_ids("run"), tenants=directory, tenant_max_age=60)
    session = guard.start(
        "crm_lookup",
        {"record_id": "R-1"},
        principal=ig.Principal(user="ann", tenant="acme", auth_event="sso-login-7"),
        agent=ig.AgentIdentity(id="crm-assistant"),
    )
    print("an agent of tenant acme reads acme's record (allowed):")
    show(session, "read_record", {"tenant_id": "acme", "record_id": "R-1"})
    print("\nit tries tenant globex's record:")
    show(session, "read_record", {"tenant_id": "globex", "record_id": "G-9"})
    print("\nacme is suspended; a minute later its agents stop:")
    directory.suspended.add("acme")
    clock.advance(minutes=1)
    show(session, "read_record", {"tenant_id": "acme", "record_id": "R-1"})
    guard.close()


if __name__ == "__main__":
    main()
