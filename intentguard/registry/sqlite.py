"""The SQLite registry: every process on one host shares one database file (WAL mode).

A write is one ``BEGIN IMMEDIATE`` transaction, durable on commit (``synchronous=FULL``): a
writer that dies mid-way leaves nothing half-done, and ``invalidate`` returns only once the
change is on disk. Other processes notice it through ``PRAGMA data_version``, polled every
``poll_interval``; each poll also checks that the path still names the file this process
opened, so a deleted or replaced database makes checks fail closed instead of watching a
file nobody writes to any more.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from intentguard.clock import Clock
from intentguard.errors import RegistryError
from intentguard.registry import Invalidation
from intentguard.registry._epochs import EpochRegistry

__all__ = ["SQLiteRegistry"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intentguard_epochs (
    key TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    seq INTEGER NOT NULL UNIQUE
)
"""
_CLAIMS = """
CREATE TABLE IF NOT EXISTS intentguard_claims (
    key TEXT PRIMARY KEY,
    until REAL NOT NULL
)
"""
_BUMP = """
INSERT INTO intentguard_epochs (key, epoch, by, reason, at, seq) VALUES (?1, MAX(1, ?5), ?2, ?3, ?4, ?6)
ON CONFLICT (key) DO UPDATE SET epoch = MAX(epoch + 1, ?5), by = ?2, reason = ?3, at = ?4, seq = ?6
RETURNING epoch
"""
_COLUMNS = "key, epoch, by, reason, at, seq"


def _record(row: tuple[str, int, str, str, float, int]) -> Invalidation:
    return Invalidation(key=row[0], epoch=row[1], by=row[2], reason=row[3], at=row[4], seq=row[5])


class SQLiteRegistry(EpochRegistry):
    """A registry in an SQLite file shared by the processes of one host.

    ``poll_interval`` (default 0.05 s) bounds how late another process's invalidation is seen;
    ``max_staleness`` (default 2 s) how long checks keep allowing while the file cannot be read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        poll_interval: float = 0.05,
        max_staleness: float = 2.0,
        busy_timeout: float = 5.0,
    ) -> None:
        super().__init__(clock=clock, poll_interval=poll_interval, max_staleness=max_staleness)
        self.path = Path(path)
        self._db_lock = threading.Lock()
        self._version: int | None = None
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
            self._db.execute(_CLAIMS)
            self._inode = self._file_id()
        except (sqlite3.Error, OSError) as exc:
            raise RegistryError(
                f"cannot open the session registry database {str(self.path)!r}: {exc}; "
                "check that its directory exists and is writable"
            ) from exc

    def __repr__(self) -> str:
        return f"<SQLiteRegistry {str(self.path)!r}>"

    def _file_id(self) -> tuple[int, int]:
        stat = os.stat(self.path)
        return stat.st_dev, stat.st_ino

    def _db_call(self, what: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._db_lock:
            try:
                if self._stop.is_set():
                    raise RegistryError(f"{self!r} is closed; open a new registry")
                if self._file_id() != self._inode:
                    raise RegistryError(f"the registry database {str(self.path)!r} was replaced")
                return work(self._db)
            except RegistryError:
                raise
            except (sqlite3.Error, OSError) as exc:
                raise RegistryError(f"cannot {what} the session registry {str(self.path)!r}: {exc}") from exc

    def _backend_read(self, keys: Sequence[str]) -> Mapping[str, Invalidation]:
        marks = ", ".join("?" for _ in keys)
        query = f"SELECT {_COLUMNS} FROM intentguard_epochs WHERE key IN ({marks})"  # noqa: S608 - placeholders only
        rows = self._db_call("read", lambda db: db.execute(query, tuple(keys)).fetchall())
        return {row[0]: _record(row) for row in rows}

    def _backend_bump(self, key: str, by: str, reason: str, at: float) -> Invalidation:
        def bump(db: sqlite3.Connection) -> Invalidation:
            db.execute("BEGIN IMMEDIATE")
            try:
                (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM intentguard_epochs").fetchone()
                (epoch,) = db.execute(_BUMP, (key, by, reason, at, int(at * 1_000_000), seq)).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return Invalidation(key=key, epoch=epoch, by=by, reason=reason, at=at, seq=seq)

        return self._db_call("write", bump)

    def _backend_claim(self, key: str, until: float, now: float) -> bool:
        def claim(db: sqlite3.Connection) -> bool:
            db.execute("BEGIN IMMEDIATE")
            try:
                # Expired claims go with every claim: the table holds only live ones, so this stays small.
                db.execute("DELETE FROM intentguard_claims WHERE until <= ?", (now,))
                stored = db.execute(
                    "INSERT INTO intentguard_claims (key, until) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (key, until),
                ).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return stored == 1

        return self._db_call("write", claim)

    def _backend_head(self) -> int:
        query = "SELECT COALESCE(MAX(seq), 0) FROM intentguard_epochs"
        (head,) = self._db_call("read", lambda db: db.execute(query).fetchone())
        return int(head)

    def _backend_changes(self, since: int) -> tuple[int, Iterable[Invalidation]]:
        def changes(db: sqlite3.Connection) -> tuple[int, Iterable[Invalidation]]:
            # data_version moves only when another connection committed: the cheap common case.
            (version,) = db.execute("PRAGMA data_version").fetchone()
            if version == self._version:
                return since, ()
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM intentguard_epochs WHERE seq > ? ORDER BY seq",  # noqa: S608 - constant
                (since,),
            ).fetchall()
            self._version = version
            # The head comes from the rows read, never from a second query a commit could slip before.
            return (rows[-1][5] if rows else since), [_record(row) for row in rows]

        return self._db_call("poll", changes)

    def _backend_close(self) -> None:
        with self._db_lock:
            self._db.close()
