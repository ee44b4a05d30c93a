"""A JSON Lines audit trail: one record per line, hash-chained, with a head file beside it.

The sink continues the trail it opens: the first new record follows the file's last record
(``pos`` + 1, ``prev`` = the SHA-256 of that line), so one file is one chain across restarts.
One sink at a time writes a file (an exclusive ``flock``; a second sink or process is refused).

Each batch is one ``write`` of whole lines. A writer killed mid-write can leave a *torn* last
line (no newline): opening the file then raises :class:`~intentguard.errors.AuditTrailError`
naming the file and line, unless ``quarantine_torn=True``, which moves the torn bytes to
``FILE.torn`` and cuts them from the trail. A half record is never chained onto.

After each batch the sink replaces ``FILE.head`` (``{"pos": N, "digest": ...}``, the last
record written) atomically. The head lets ``intentguard audit verify`` detect records removed
from the end; see docs/audit.md for exactly what it can and cannot prove.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from intentguard.audit.record import GENESIS, AuditRecord
from intentguard.errors import AuditTrailError

__all__ = ["Head", "JsonlSink", "head_path", "read_head"]

_log = logging.getLogger("intentguard.audit")
_CHUNK = 1 << 16

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: one writer per file is then the caller's promise
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Head:
    """Where a trail stood after its last completed batch: the last record's ``pos`` and SHA-256."""

    pos: int
    digest: str


def head_path(path: str | Path) -> Path:
    """The head file beside a JSONL trail: ``FILE.head``."""
    path = Path(path)
    return path.with_name(path.name + ".head")


def read_head(path: str | Path) -> Head | None:
    """The head file of the trail at ``path`` (None if there is none); raises
    :class:`AuditTrailError` if it exists but cannot be read."""
    file = head_path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        head = Head(int(data["pos"]), str(data["digest"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditTrailError(
            f"head file {str(file)!r} cannot be read ({exc}); verify the trail with `intentguard audit verify`"
        ) from exc
    return head


@dataclass(frozen=True, slots=True)
class _Tail:
    size: int
    last: bytes | None  # the last complete line, without its newline
    last_start: int
    torn_at: int | None  # where bytes after the last newline begin, if any


def _read_tail(fd: int) -> _Tail:
    size = os.fstat(fd).st_size
    start, buffer = size, b""
    while start > 0 and buffer.count(b"\n") < 2:
        begin = max(0, start - _CHUNK)
        buffer = os.pread(fd, start - begin, begin) + buffer
        start = begin
    last = buffer.rfind(b"\n")
    if last == -1:
        return _Tail(size, None, 0, 0 if size else None)
    torn_at = None if last == len(buffer) - 1 else start + last + 1
    first = buffer.rfind(b"\n", 0, last) + 1
    return _Tail(size, buffer[first:last], start + first, torn_at)


def _line_number(fd: int, offset: int) -> int:
    count, at = 0, 0
    while at < offset:
        chunk = os.pread(fd, min(_CHUNK, offset - at), at)
        count += chunk.count(b"\n")
        at += len(chunk)
    return count + 1


class JsonlSink:
    """Appends records to a hash-chained JSON Lines trail, continuing the chain already in the file.

    ``fsync=True`` syncs each batch (and the head file) to disk before the next. Raises
    :class:`AuditTrailError` when the trail cannot be continued: a torn last line (unless
    ``quarantine_torn``), a last line that is not a record, a head file ahead of the trail,
    or another writer holding the file.
    """

    def __init__(self, path: str | Path, *, fsync: bool = False, quarantine_torn: bool = False) -> None:
        self.path = Path(path)
        self.head_path = head_path(self.path)
        self._fsync = fsync
        self._lock = threading.Lock()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self._pos, self._prev, self._size = self._open(fd, quarantine_torn)
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd
        self._failed: BaseException | None = None

    @property
    def head(self) -> Head:
        """The last record this trail holds now (``pos`` 0 and the genesis digest when empty)."""
        return Head(self._pos, self._prev)

    def _open(self, fd: int, quarantine_torn: bool) -> tuple[int, str, int]:
        name = str(self.path)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise AuditTrailError(
                    f"audit trail {name!r} is being written by another sink or process; give each writer its own file"
                ) from exc
        reader = os.open(self.path, os.O_RDONLY)
        try:
            tail = _read_tail(reader)
            if tail.torn_at is not None:
                line = _line_number(reader, tail.torn_at)
                if not quarantine_torn:
                    raise AuditTrailError(
                        f"audit trail {name!r} ends in a torn record at line {line} (byte {tail.torn_at}): its "
                        "writer died mid-record. Check it with `intentguard audit verify`, then open the sink "
                        f"with quarantine_torn=True to move the torn bytes to {name + '.torn'!r} and continue"
                    )
                self._quarantine(fd, reader, tail.torn_at, tail.size, line)
            pos, prev = 0, GENESIS
            if tail.last is not None:
                try:
                    record = AuditRecord.from_line(tail.last.decode("utf-8"))
                except ValueError as exc:
                    line = _line_number(reader, tail.last_start)
                    raise AuditTrailError(
                        f"line {line} of audit trail {name!r} is not an audit record, so the trail cannot be "
                        "continued; check it with `intentguard audit verify` and start a new file"
                    ) from exc
                pos, prev = record.pos, record.digest()
            size = tail.size if tail.torn_at is None else tail.torn_at
        finally:
            os.close(reader)
        head = read_head(self.path)
        if head is not None and (head.pos > pos or (head.pos == pos and head.digest != prev)):
            raise AuditTrailError(
                f"audit trail {name!r} ends at record {pos} but its head file says record {head.pos} "
                f"({head.digest[:12]}...) was written: records were removed from its end or changed. "
                "Check it with `intentguard audit verify` and start a new file"
            )
        if head is None and pos:
            _log.warning("audit trail %r has no head file; removals from its end before now cannot be detected", name)
        return pos, prev, size

    def _quarantine(self, fd: int, reader: int, torn_at: int, size: int, line: int) -> None:
        torn = os.pread(reader, size - torn_at, torn_at)
        with open(str(self.path) + ".torn", "ab") as aside:
            aside.write(torn + b"\n")
            aside.flush()
            os.fsync(aside.fileno())
        os.ftruncate(fd, torn_at)
        _log.warning(
            "audit trail %r: moved a torn record (line %d, %d bytes) to %r",
            str(self.path),
            line,
            len(torn),
            str(self.path) + ".torn",
        )

    def __call__(self, record: AuditRecord, /) -> None:
        self.write_many((record,))

    def write_many(self, records: Sequence[AuditRecord], /) -> None:
        """Append ``records`` as the next lines of the trail in one write, then update the head file."""
        with self._lock:
            fd = self._fd
            if fd is None:
                raise ValueError(f"audit sink for {str(self.path)!r} is closed")
            if self._failed is not None:
                raise AuditTrailError(
                    f"audit trail {str(self.path)!r} could not be restored after a failed write "
                    f"({self._failed}); check it with `intentguard audit verify` and open a new sink"
                )
            pos, prev = self._pos, self._prev
            lines = []
            for record in records:
                pos += 1
                line, prev = record.linked(pos, prev)
                lines.append(line)
            data = ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._fsync:
                    os.fsync(fd)
            except OSError:
                self._roll_back(fd)
                raise
            self._pos, self._prev, self._size = pos, prev, self._size + len(data)
            self._write_head()

    def _roll_back(self, fd: int) -> None:
        # Cut a partial batch off so the trail never holds a half record and stays continuable.
        try:
            os.ftruncate(fd, self._size)
        except OSError as exc:
            self._failed = exc

    def _write_head(self) -> None:
        temporary = self.head_path.with_name(self.head_path.name + ".tmp")
        try:
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(json.dumps({"pos": self._pos, "digest": self._prev}) + "\n")
                if self._fsync:
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(temporary, self.head_path)
        except OSError as exc:
            # The records are written; only truncation detection waits for the next batch.
            _log.error("audit trail %r: cannot update its head file: %s", str(self.path), exc)

    def close(self) -> None:
        """Close the file (releasing it for another writer); later records raise (and are reported)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"
