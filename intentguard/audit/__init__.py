"""Audit records and the sinks that receive them."""

from intentguard.audit.jsonl import JsonlSink
from intentguard.audit.record import DECISION_EVENT, GENESIS, AuditRecord, DecisionEvent, args_digest
from intentguard.audit.writer import AuditSink, AuditWriter, SinkErrorHandler

__all__ = [
    "DECISION_EVENT",
    "GENESIS",
    "AuditRecord",
    "AuditSink",
    "AuditWriter",
    "DecisionEvent",
    "JsonlSink",
    "SinkErrorHandler",
    "args_digest",
]
