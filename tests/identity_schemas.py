"""Intent schemas and keys the identity tests share: a CRM task in tenant-scoped records."""

from __future__ import annotations

from typing import Any

import intentguard as ig

PARAMS = {"record_id": "R-1"}


def crm_schema(**overrides: Any) -> ig.IntentSchema:
    """A CRM task: reads and notes are low-privilege, updates and exports high; two hops allowed."""
    document: dict[str, Any] = {
        "name": "crm_update",
        "version": "1.0",
        "description": "Update one CRM record of the user's tenant.",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "required": ["record_id"],
            "properties": {"record_id": {"type": "string"}},
        },
        "ttl": "PT1H",
        "max_calls": 20,
        "max_depth": 2,
        "tools": {
            "read_record": {
                "privilege": "low",
                "max_calls": 5,
                "args": {"tenant_id": {"tenant": True}, "record_id": {"type": "string", "max_length": 64}},
            },
            "search_notes": {"privilege": "low", "max_calls": 5, "args": {"query": {"type": "string"}}},
            "update_record": {
                "privilege": "high",
                "max_calls": 2,
                "args": {
                    "tenant_id": {"tenant": True},
                    "record_id": {"equals": {"param": "record_id"}},
                    "status": {"one_of": ["open", "closed"]},
                },
            },
            "export_report": {"privilege": "high", "max_calls": 1, "feature": "exports"},
        },
        "decay": [{"after": "PT30M", "drop": "high"}],
    }
    document.update(overrides)
    return ig.IntentSchema.model_validate(document)
