"""Audit records, the sinks that receive them (JSONL, SQLite, Redis Streams), and trail verification."""

from intentguard.audit.jsonl import JsonlSink
from intentguard.audit.record import DECISION_EVENT, GENESIS, AuditRecord, DecisionEvent, args_digest
from intentguard.audit.redis import RedisStreamSink
from intentguard.audit.sqlite import SqliteSink
from intentguard.audit.verify import (
    Fault,
    TrailProblem,
    TrailReport,
    verify_jsonl,
    verify_sqlite,
    verify_stream,
    verify_trail,
)
from intentguard.audit.writer import AuditSink, AuditWriter, BatchAuditSink, SinkErrorHandler

__all__ = [
    "DECISION_EVENT",
    "GENESIS",
    "AuditRecord",
    "AuditSink",
    "AuditWriter",
    "BatchAuditSink",
    "DecisionEvent",
    "Fault",
    "JsonlSink",
    "RedisStreamSink",
    "SinkErrorHandler",
    "SqliteSink",
    "TrailProblem",
    "TrailReport",
    "args_digest",
    "verify_jsonl",
    "verify_sqlite",
    "verify_stream",
    "verify_trail",
]
