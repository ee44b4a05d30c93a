"""A JSON Lines audit sink: one record per line, appended and flushed as it arrives."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

from intentguard.audit.record import AuditRecord

__all__ = ["JsonlSink"]


class JsonlSink:
    """Appends each record as one JSON line; ``fsync=True`` also syncs every line to disk."""

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._lock = threading.Lock()
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")

    def __call__(self, record: AuditRecord, /) -> None:
        line = record.to_json() + "\n"
        with self._lock:
            if self._file is None:
                raise ValueError(f"audit sink for {str(self.path)!r} is closed")
            self._file.write(line)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file; later records raise (and are reported by the writer)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"
