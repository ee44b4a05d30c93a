"""A SQLite audit trail (WAL mode) that a person reviewing can query.

One table holds one hash chain, whatever number of processes write to it: each batch is one
``BEGIN IMMEDIATE`` transaction that reads the chain's head, appends the records after it and
moves the head, so writers queue on SQLite's lock instead of forking the chain. Each row keeps
the record's exact JSON line (what the chain hashes) beside columns for the questions a
reviewer asks (:meth:`SqliteSink.query`, :meth:`SqliteSink.counts`); ``intentguard audit
verify`` checks the chain and that every column still says what its line says.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from intentguard.audit.record import GENESIS, AuditRecord
from intentguard.errors import ConfigurationError

__all__ = ["COLUMNS", "SqliteSink", "columns_of"]

COLUMNS = ("jti", "toe", "txn", "aud", "sub", "agent", "intent", "tool", "effect", "reasons", "score")
"""The query columns, each derived from the record's line by :func:`columns_of`."""

GroupBy = Literal["effect", "reason", "tool", "tenant", "session", "intent", "agent", "user"]
_GROUP_COLUMN = {
    "effect": "effect",
    "tool": "tool",
    "tenant": "aud",
    "session": "txn",
    "intent": "intent",
    "agent": "agent",
    "user": "sub",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def columns_of(record: AuditRecord) -> tuple[Any, ...]:
    """The values of :data:`COLUMNS` for ``record``, as stored."""
    event = record.decision
    reasons = json.dumps([reason.code for reason in event.reasons])
    return (
        record.jti,
        record.toe,
        record.txn,
        record.aud,
        record.sub,
        event.agent,
        event.intent,
        event.tool,
        event.effect,
        reasons,
        event.score,
    )


def check_table_name(table: str) -> str:
    """``table`` if it is a plain SQL identifier; raises :class:`ConfigurationError` otherwise."""
    if not _NAME.match(table):
        raise ConfigurationError(f"audit table name {table!r} is not a plain identifier; use letters, digits and _")
    return table


def _time(value: float | datetime | None, what: str) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.timestamp()
    raise ConfigurationError(f"{what}={value!r} is not a POSIX time or an aware datetime; give one of those")


class SqliteSink:
    """Writes records into ``table`` of the SQLite database at ``path`` and answers queries on them.

    The head of the chain (last ``pos`` and its SHA-256) lives in ``{table}_head``, updated in the
    same transaction as the rows. ``busy_timeout`` (seconds) bounds how long a batch waits for
    another writer.
    """

    def __init__(self, path: str | Path, *, table: str = "audit", busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.table = check_table_name(table)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        t = self.table
        self._db.executescript(
            f"""
            CREATE TABLE IF NOT EXISTS {t} (
                pos INTEGER PRIMARY KEY, jti TEXT NOT NULL, toe REAL NOT NULL, txn TEXT NOT NULL,
                aud TEXT NOT NULL, sub TEXT NOT NULL, agent TEXT NOT NULL, intent TEXT NOT NULL,
                tool TEXT NOT NULL, effect TEXT NOT NULL, reasons TEXT NOT NULL, score REAL NOT NULL,
                digest TEXT NOT NULL, line TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS {t}_by_txn ON {t} (txn, pos);
            CREATE INDEX IF NOT EXISTS {t}_by_aud ON {t} (aud, toe);
            CREATE INDEX IF NOT EXISTS {t}_by_effect ON {t} (effect, toe);
            CREATE TABLE IF NOT EXISTS {t}_head (
                id INTEGER PRIMARY KEY CHECK (id = 1), pos INTEGER NOT NULL, digest TEXT NOT NULL);
            """
        )
        columns = ", ".join(("pos", *COLUMNS, "digest", "line"))
        # Table names are checked identifiers (check_table_name); every value is a parameter.
        self._insert = f"INSERT INTO {t} ({columns}) VALUES ({', '.join('?' * (len(COLUMNS) + 3))})"  # noqa: S608
        self._head = f"SELECT pos, digest FROM {t}_head WHERE id = 1"  # noqa: S608
        self._move_head = (
            f"INSERT INTO {t}_head (id, pos, digest) VALUES (1, ?, ?) "  # noqa: S608
            "ON CONFLICT (id) DO UPDATE SET pos = excluded.pos, digest = excluded.digest"
        )

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError(f"audit sink for {str(self.path)!r} is closed")
        return self._db

    def __call__(self, record: AuditRecord, /) -> None:
        self.write_many((record,))

    def write_many(self, records: Sequence[AuditRecord], /) -> None:
        """Append ``records`` after the chain's head in one transaction (all or none)."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(self._head).fetchone()
                pos, prev = (row[0], row[1]) if row else (0, GENESIS)
                rows = []
                for record in records:
                    pos += 1
                    line, prev = record.linked(pos, prev)
                    rows.append((pos, *columns_of(record), prev, line))
                db.executemany(self._insert, rows)
                db.execute(self._move_head, (pos, prev))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _where(
        self,
        session: str | None,
        tenant: str | None,
        effect: str | None,
        tool: str | None,
        since: float | datetime | None,
        until: float | datetime | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        values: list[Any] = []
        for column, value in (("txn", session), ("aud", tenant), ("effect", effect), ("tool", tool)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        start, end = _time(since, "since"), _time(until, "until")
        if start is not None:
            clauses.append("toe >= ?")
            values.append(start)
        if end is not None:
            clauses.append("toe < ?")
            values.append(end)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", values

    def query(
        self,
        *,
        session: str | None = None,
        tenant: str | None = None,
        effect: str | None = None,
        tool: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """The records that match every filter given, in trail order, each validated from its line.

        ``effect`` is ``"ALLOW"``, ``"CONFIRM"`` or ``"DENY"``; ``since``/``until`` bound the time
        of the decision (``toe``, inclusive/exclusive) as POSIX times or aware datetimes.
        """
        where, values = self._where(session, tenant, effect, tool, since, until)
        sql = f"SELECT line FROM {self.table}{where} ORDER BY pos"  # noqa: S608
        if limit is not None:
            sql += " LIMIT ?"
            values.append(int(limit))
        with self._lock:
            rows = self._connection().execute(sql, values).fetchall()
        return [AuditRecord.from_line(line) for (line,) in rows]

    def counts(
        self,
        by: GroupBy = "effect",
        *,
        session: str | None = None,
        tenant: str | None = None,
        effect: str | None = None,
        tool: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
    ) -> dict[str, int]:
        """How many records fall under each value of ``by`` (``"reason"`` counts reason codes:
        a record with two reasons counts under both), most frequent first."""
        where, values = self._where(session, tenant, effect, tool, since, until)
        if by == "reason":
            sql = (
                f"SELECT r.value, COUNT(*) FROM {self.table} AS t, json_each(t.reasons) AS r{where} "  # noqa: S608
                "GROUP BY r.value ORDER BY COUNT(*) DESC, r.value"
            )
        elif by in _GROUP_COLUMN:
            column = _GROUP_COLUMN[by]
            sql = f"SELECT {column}, COUNT(*) FROM {self.table}{where} GROUP BY {column}"  # noqa: S608
            sql += f" ORDER BY COUNT(*) DESC, {column}"
        else:
            raise ConfigurationError(f"cannot count by {by!r}; use one of reason, {', '.join(_GROUP_COLUMN)}")
        with self._lock:
            rows = self._connection().execute(sql, values).fetchall()
        return {str(key): int(count) for key, count in rows}

    def close(self) -> None:
        """Close the connection; later records raise (and are reported by the writer)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __repr__(self) -> str:
        return f"SqliteSink({str(self.path)!r}, table={self.table!r})"
