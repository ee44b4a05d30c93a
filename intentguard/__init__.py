"""intentguard: an intent-scoped runtime guard for LLM agent tool calls.

Write ``import intentguard as ig``. Importing the package is cheap: each name below is
loaded from its module on first use, so ``import intentguard`` pulls in no framework,
no pydantic and no jsonschema until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ALLOW": "intentguard.decision",
    "AgentIdentity": "intentguard.identity",
    "ArgSpec": "intentguard.schema",
    "AuditRecord": "intentguard.audit",
    "AuditSink": "intentguard.audit",
    "Clock": "intentguard.clock",
    "ConfigurationError": "intentguard.errors",
    "ConfirmationRequired": "intentguard.errors",
    "Decision": "intentguard.decision",
    "DecisionError": "intentguard.errors",
    "Denied": "intentguard.errors",
    "Effect": "intentguard.decision",
    "Grant": "intentguard.grant",
    "GrantWideningError": "intentguard.errors",
    "Guard": "intentguard.guard",
    "Intent": "intentguard.intent",
    "IntentSchema": "intentguard.schema",
    "IntentguardError": "intentguard.errors",
    "InvalidIntentSchema": "intentguard.errors",
    "InvalidParameters": "intentguard.errors",
    "JsonlSink": "intentguard.audit",
    "MissingExtraError": "intentguard.errors",
    "Principal": "intentguard.identity",
    "Privilege": "intentguard.schema",
    "Problem": "intentguard.errors",
    "Reason": "intentguard.decision",
    "ReasonCode": "intentguard.decision",
    "Session": "intentguard.guard",
    "Stage": "intentguard.pipeline",
    "SystemClock": "intentguard.clock",
    "ToolCall": "intentguard.pipeline",
    "Verdict": "intentguard.pipeline",
    "load_schema": "intentguard.loader",
    "load_schemas": "intentguard.loader",
    "meta_schema": "intentguard.loader",
    "to_duration": "intentguard.clock",
}

__all__ = [
    "ALLOW",
    "AgentIdentity",
    "ArgSpec",
    "AuditRecord",
    "AuditSink",
    "Clock",
    "ConfigurationError",
    "ConfirmationRequired",
    "Decision",
    "DecisionError",
    "Denied",
    "Effect",
    "Grant",
    "GrantWideningError",
    "Guard",
    "Intent",
    "IntentSchema",
    "IntentguardError",
    "InvalidIntentSchema",
    "InvalidParameters",
    "JsonlSink",
    "MissingExtraError",
    "Principal",
    "Privilege",
    "Problem",
    "Reason",
    "ReasonCode",
    "Session",
    "Stage",
    "SystemClock",
    "ToolCall",
    "Verdict",
    "load_schema",
    "load_schemas",
    "meta_schema",
    "to_duration",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'intentguard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from intentguard.audit import AuditRecord, AuditSink, JsonlSink
    from intentguard.clock import Clock, SystemClock, to_duration
    from intentguard.decision import ALLOW, Decision, Effect, Reason, ReasonCode
    from intentguard.errors import (
        ConfigurationError,
        ConfirmationRequired,
        DecisionError,
        Denied,
        GrantWideningError,
        IntentguardError,
        InvalidIntentSchema,
        InvalidParameters,
        MissingExtraError,
        Problem,
    )
    from intentguard.grant import Grant
    from intentguard.guard import Guard, Session
    from intentguard.identity import AgentIdentity, Principal
    from intentguard.intent import Intent
    from intentguard.loader import load_schema, load_schemas, meta_schema
    from intentguard.pipeline import Stage, ToolCall, Verdict
    from intentguard.schema import ArgSpec, IntentSchema, Privilege
