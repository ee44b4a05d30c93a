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
    "Approval": "intentguard.gates",
    "ApprovalError": "intentguard.errors",
    "ApprovalQueue": "intentguard.approvals",
    "ApprovalState": "intentguard.approvals",
    "ArgSpec": "intentguard.schema",
    "AsyncCallbackHandler": "intentguard.gates",
    "AsyncConfirmationHandler": "intentguard.gates",
    "AuditRecord": "intentguard.audit",
    "AuditSink": "intentguard.audit",
    "AuditTrailError": "intentguard.errors",
    "CallbackHandler": "intentguard.gates",
    "ChainVerdict": "intentguard.tokens",
    "Clock": "intentguard.clock",
    "ConfigurationError": "intentguard.errors",
    "ConfirmationHandler": "intentguard.gates",
    "ConfirmationRequest": "intentguard.gates",
    "ConfirmationRequired": "intentguard.errors",
    "ConsoleHandler": "intentguard.gates",
    "Decision": "intentguard.decision",
    "DecisionError": "intentguard.errors",
    "DelegationChain": "intentguard.identity",
    "Denied": "intentguard.errors",
    "DivergenceConfig": "intentguard.divergence",
    "DivergenceModel": "intentguard.divergence",
    "DivergenceThresholds": "intentguard.schema",
    "Effect": "intentguard.decision",
    "Grant": "intentguard.grant",
    "GrantWideningError": "intentguard.errors",
    "Guard": "intentguard.guard",
    "Hop": "intentguard.tokens",
    "HopVerifier": "intentguard.tokens",
    "Instruction": "intentguard.instructions",
    "Intent": "intentguard.intent",
    "IntentResolver": "intentguard.replay",
    "IntentSchema": "intentguard.schema",
    "IntentguardError": "intentguard.errors",
    "InvalidAuditTrail": "intentguard.errors",
    "InvalidEvent": "intentguard.errors",
    "InvalidIntentSchema": "intentguard.errors",
    "InvalidParameters": "intentguard.errors",
    "Invalidation": "intentguard.registry",
    "JsonlSink": "intentguard.audit",
    "KeyStore": "intentguard.keys",
    "LLMResolver": "intentguard.resolvers",
    "Ledger": "intentguard.provenance",
    "MemoryKeyStore": "intentguard.keys",
    "MemoryRegistry": "intentguard.registry",
    "MissingExtraError": "intentguard.errors",
    "Origin": "intentguard.provenance",
    "Principal": "intentguard.identity",
    "Privilege": "intentguard.schema",
    "Problem": "intentguard.errors",
    "Reason": "intentguard.decision",
    "ReasonCode": "intentguard.decision",
    "RedisRegistry": "intentguard.registry",
    "RedisStreamSink": "intentguard.audit",
    "RegistryError": "intentguard.errors",
    "ResolvedIntent": "intentguard.replay",
    "Rule": "intentguard.resolvers",
    "RuleResolver": "intentguard.resolvers",
    "SQLiteRegistry": "intentguard.registry",
    "Scope": "intentguard.registry",
    "ScopeKind": "intentguard.registry",
    "Session": "intentguard.session",
    "SessionRegistry": "intentguard.registry",
    "Source": "intentguard.provenance",
    "SqliteSink": "intentguard.audit",
    "Stage": "intentguard.pipeline",
    "SystemClock": "intentguard.clock",
    "TenantContext": "intentguard.tenancy",
    "TenantContextProvider": "intentguard.tenancy",
    "ToolCall": "intentguard.pipeline",
    "Trace": "intentguard.replay",
    "TrailReport": "intentguard.audit",
    "Trust": "intentguard.provenance",
    "Verdict": "intentguard.pipeline",
    "deny_all": "intentguard.gates",
    "load_schema": "intentguard.loader",
    "load_schemas": "intentguard.loader",
    "meta_schema": "intentguard.loader",
    "read_traces": "intentguard.replay",
    "replay_trace": "intentguard.replay",
    "to_duration": "intentguard.clock",
    "verify_chain": "intentguard.tokens",
    "verify_trail": "intentguard.audit",
}

__all__ = [
    "ALLOW",
    "AgentIdentity",
    "Approval",
    "ApprovalError",
    "ApprovalQueue",
    "ApprovalState",
    "ArgSpec",
    "AsyncCallbackHandler",
    "AsyncConfirmationHandler",
    "AuditRecord",
    "AuditSink",
    "AuditTrailError",
    "CallbackHandler",
    "ChainVerdict",
    "Clock",
    "ConfigurationError",
    "ConfirmationHandler",
    "ConfirmationRequest",
    "ConfirmationRequired",
    "ConsoleHandler",
    "Decision",
    "DecisionError",
    "DelegationChain",
    "Denied",
    "DivergenceConfig",
    "DivergenceModel",
    "DivergenceThresholds",
    "Effect",
    "Grant",
    "GrantWideningError",
    "Guard",
    "Hop",
    "HopVerifier",
    "Instruction",
    "Intent",
    "IntentResolver",
    "IntentSchema",
    "IntentguardError",
    "InvalidAuditTrail",
    "InvalidEvent",
    "InvalidIntentSchema",
    "InvalidParameters",
    "Invalidation",
    "JsonlSink",
    "KeyStore",
    "LLMResolver",
    "Ledger",
    "MemoryKeyStore",
    "MemoryRegistry",
    "MissingExtraError",
    "Origin",
    "Principal",
    "Privilege",
    "Problem",
    "Reason",
    "ReasonCode",
    "RedisRegistry",
    "RedisStreamSink",
    "RegistryError",
    "ResolvedIntent",
    "Rule",
    "RuleResolver",
    "SQLiteRegistry",
    "Scope",
    "ScopeKind",
    "Session",
    "SessionRegistry",
    "Source",
    "SqliteSink",
    "Stage",
    "SystemClock",
    "TenantContext",
    "TenantContextProvider",
    "ToolCall",
    "Trace",
    "TrailReport",
    "Trust",
    "Verdict",
    "deny_all",
    "load_schema",
    "load_schemas",
    "meta_schema",
    "read_traces",
    "replay_trace",
    "to_duration",
    "verify_chain",
    "verify_trail",
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
    from intentguard.approvals import ApprovalQueue, ApprovalState
    from intentguard.audit import (
        AuditRecord,
        AuditSink,
        JsonlSink,
        RedisStreamSink,
        SqliteSink,
        TrailReport,
        verify_trail,
    )
    from intentguard.clock import Clock, SystemClock, to_duration
    from intentguard.decision import ALLOW, Decision, Effect, Reason, ReasonCode
    from intentguard.divergence import DivergenceConfig, DivergenceModel
    from intentguard.errors import (
        ApprovalError,
        AuditTrailError,
        ConfigurationError,
        ConfirmationRequired,
        DecisionError,
        Denied,
        GrantWideningError,
        IntentguardError,
        InvalidAuditTrail,
        InvalidEvent,
        InvalidIntentSchema,
        InvalidParameters,
        MissingExtraError,
        Problem,
        RegistryError,
    )
    from intentguard.gates import (
        Approval,
        AsyncCallbackHandler,
        AsyncConfirmationHandler,
        CallbackHandler,
        ConfirmationHandler,
        ConfirmationRequest,
        ConsoleHandler,
        deny_all,
    )
    from intentguard.grant import Grant
    from intentguard.guard import Guard
    from intentguard.identity import AgentIdentity, DelegationChain, Principal
    from intentguard.instructions import Instruction
    from intentguard.intent import Intent
    from intentguard.keys import KeyStore, MemoryKeyStore
    from intentguard.loader import load_schema, load_schemas, meta_schema
    from intentguard.pipeline import Stage, ToolCall, Verdict
    from intentguard.provenance import Ledger, Origin, Source, Trust
    from intentguard.registry import (
        Invalidation,
        MemoryRegistry,
        RedisRegistry,
        Scope,
        ScopeKind,
        SessionRegistry,
        SQLiteRegistry,
    )
    from intentguard.replay import IntentResolver, ResolvedIntent, Trace, read_traces, replay_trace
    from intentguard.resolvers import LLMResolver, Rule, RuleResolver
    from intentguard.schema import ArgSpec, DivergenceThresholds, IntentSchema, Privilege
    from intentguard.session import Session
    from intentguard.tenancy import TenantContext, TenantContextProvider
    from intentguard.tokens import ChainVerdict, Hop, HopVerifier, verify_chain
