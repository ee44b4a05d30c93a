"""Verify an audit trail: an unbroken hash chain, or exactly where and how it was broken.

Every record carries ``pos`` (its number in the trail, from 1) and ``prev`` (the SHA-256 of
the line before it). Verification reads every line, validates it as a record, and reports
each problem as ``record N (line L): what is wrong``:

- **torn**: the last line has no newline (its writer died mid-record); nothing of it is accepted;
- **malformed**: a line that is not a valid record;
- **modified**: a record whose hash is not the ``prev`` the next record carries (or not the head's);
- **missing**: numbers skipped in the middle or at the start (records deleted);
- **inserted**: a second record claiming a number the chain already has;
- **reordered**: a record that comes after one with a higher number;
- **truncated**: the head (``FILE.head``, the SQLite head row, the Redis head key) names a
  record beyond the trail's end (records removed from the end);
- **mismatch** (SQLite): a query column that no longer says what the row's line says.

What this proves, and what it cannot, is spelled out in docs/audit.md.
"""

from __future__ import annotations

import enum
import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from intentguard.audit.jsonl import Head, read_head
from intentguard.audit.record import GENESIS, AuditRecord
from intentguard.audit.sqlite import COLUMNS, check_table_name, columns_of
from intentguard.errors import AuditTrailError

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["Fault", "TrailProblem", "TrailReport", "verify_jsonl", "verify_sqlite", "verify_stream", "verify_trail"]


class Fault(enum.StrEnum):
    """What is wrong with a record or a trail."""

    TORN = "torn"
    MALFORMED = "malformed"
    MODIFIED = "modified"
    MISSING = "missing"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    MISMATCH = "mismatch"
    NO_HEAD = "no head"


@dataclass(frozen=True, slots=True)
class TrailProblem:
    """One problem: its kind, the record number it concerns (if known), where it is, and why."""

    fault: Fault
    record: int | None
    where: str
    message: str
    index: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        place = f"record {self.record} ({self.where})" if self.record is not None else self.where
        return f"{place}: {self.fault.value}: {self.message}"


@dataclass(frozen=True, slots=True)
class TrailReport:
    """The outcome of verifying one trail."""

    source: str
    records: int
    """Lines that are valid records."""
    intact: int
    """Records before the first problem: the prefix that verifies."""
    last: int | None
    """The highest record number found."""
    head: Head | None
    problems: tuple[TrailProblem, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when the trail is an unbroken chain (and matches its head)."""
        return not self.problems

    def summary(self) -> str:
        """One line for people: what verified, or how many problems and how much still verifies."""
        if self.ok:
            if not self.records:
                return f"ok  {self.source}: empty trail"
            head = "" if self.head is None else f"; head matches record {self.head.pos} ({self.head.digest[:12]})"
            return f"ok  {self.source}: {self.records} records, an unbroken chain up to record {self.last}{head}"
        count = len(self.problems)
        return (
            f"FAIL  {self.source}: {count} problem{'s' if count != 1 else ''}; "
            f"the first {self.intact} record{'s' if self.intact != 1 else ''} verify"
        )

    def lines(self) -> list[str]:
        """The summary, then every problem and note, one per line."""
        return [self.summary(), *(f"  {problem}" for problem in self.problems), *(f"  note: {n}" for n in self.notes)]


@dataclass(frozen=True, slots=True)
class _Item:
    where: str
    line: str | None  # None: torn, not a record
    columns: tuple[Any, ...] | None = None  # SQLite: the row's query columns, digest and pos


@dataclass(frozen=True, slots=True)
class _Entry:
    index: int
    where: str
    pos: int
    prev: str
    digest: str


def _why(exc: ValidationError) -> str:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "the line"
    return f"{location}: {first['msg']}"


def _span(first: int, last: int, verb: str = "") -> str:
    """``record 3 is`` / ``records 3-5 are`` (``verb`` is given in its plural form)."""
    singular = {"are": "is", "were": "was"}.get(verb, verb)
    text = f"record {first} {singular}" if first == last else f"records {first}-{last} {verb}"
    return text.rstrip()


def _analyse(
    source: str, items: Iterable[_Item], *, head: Head | None, trimmed_start: bool, need_head: bool
) -> TrailReport:
    problems: list[TrailProblem] = []
    entries: list[_Entry] = []
    total = 0
    for index, item in enumerate(items):
        total = index + 1
        expected = entries[-1].pos + 1 if entries else 1
        if item.line is None:
            message = "the line ends without a newline: its writer died mid-record; nothing of it is accepted"
            problems.append(TrailProblem(Fault.TORN, expected, item.where, message, index))
            continue
        try:
            record = AuditRecord.from_line(item.line)
        except ValidationError as exc:
            problems.append(
                TrailProblem(Fault.MALFORMED, None, item.where, f"not an audit record ({_why(exc)})", index)
            )
            continue
        entry = _Entry(index, item.where, record.pos, record.prev, record.digest())
        if item.columns is not None:
            problems.extend(_mismatches(record, entry, item.columns))
        entries.append(entry)
    problems.extend(_chain_problems(entries, trimmed_start))
    notes: list[str] = []
    if entries and trimmed_start and entries[0].pos > 1:
        notes.append(
            f"the trail starts at record {entries[0].pos}: {_span(1, entries[0].pos - 1, 'were')} trimmed or "
            "removed from the start (verify cannot tell which)"
        )
    problems.extend(_head_problems(entries, head, need_head, notes, total))
    problems.sort(key=lambda problem: problem.index)
    intact = sum(1 for entry in entries if not problems or entry.index < problems[0].index)
    last = max((entry.pos for entry in entries), default=None)
    return TrailReport(source, len(entries), intact, last, head, tuple(problems), tuple(notes))


def _mismatches(record: AuditRecord, entry: _Entry, columns: tuple[Any, ...]) -> Iterator[TrailProblem]:
    *values, digest, pos = columns
    if pos != record.pos:
        yield TrailProblem(Fault.MISMATCH, record.pos, entry.where, f"the row is numbered {pos}", entry.index)
    if digest != entry.digest:
        yield TrailProblem(Fault.MISMATCH, record.pos, entry.where, "the digest column is not the line's", entry.index)
    for name, stored, actual in zip(COLUMNS, values, columns_of(record), strict=True):
        if stored != actual:
            message = f"column {name} says {stored!r} but the record says {actual!r}"
            yield TrailProblem(Fault.MISMATCH, record.pos, entry.where, message, entry.index)


def _chain_problems(entries: list[_Entry], trimmed_start: bool) -> Iterator[TrailProblem]:
    highest: _Entry | None = None
    for entry in entries:
        if highest is not None and entry.pos < highest.pos:
            message = f"out of order: it comes after record {highest.pos} ({highest.where})"
            yield TrailProblem(Fault.REORDERED, entry.pos, entry.where, message, entry.index)
        if highest is None or entry.pos > highest.pos:
            highest = entry
    referenced = {entry.prev for entry in entries}
    chain: dict[int, _Entry] = {}
    for pos, group in itertools.groupby(sorted(entries, key=lambda e: (e.pos, e.index)), key=lambda e: e.pos):
        members = list(group)
        genuine = next((e for e in members if e.digest in referenced), members[0])
        chain[pos] = genuine
        for other in members:
            if other is not genuine:
                message = (
                    f"a second record numbered {pos}; the chain continues from {genuine.where}: inserted or copied"
                )
                yield TrailProblem(Fault.INSERTED, pos, other.where, message, other.index)
    positions = sorted(chain)
    if not positions:
        return
    first = chain[positions[0]]
    if first.pos > 1 and not trimmed_start:
        message = f"{_span(1, first.pos - 1, 'are')} missing before it: removed from the start"
        yield TrailProblem(Fault.MISSING, first.pos, first.where, message, first.index)
    elif first.pos == 1 and first.prev != GENESIS:
        message = "the first record's prev is not the genesis value: it was changed or spliced in"
        yield TrailProblem(Fault.MODIFIED, 1, first.where, message, first.index)
    for before, after in itertools.pairwise(positions):
        earlier, later = chain[before], chain[after]
        if after > before + 1:
            message = f"{_span(before + 1, after - 1, 'are')} missing before it (deleted)"
            yield TrailProblem(Fault.MISSING, after, later.where, message, later.index)
        elif later.prev != earlier.digest:
            message = f"its hash is not the prev that record {after} ({later.where}) carries"
            yield TrailProblem(Fault.MODIFIED, before, earlier.where, message, earlier.index)


def _head_problems(
    entries: list[_Entry], head: Head | None, need_head: bool, notes: list[str], end: int
) -> Iterator[TrailProblem]:
    last = max(entries, key=lambda e: e.pos) if entries else None
    top = last.pos if last is not None else 0
    if head is None:
        if need_head and entries:
            message = "records removed from the end cannot be detected without it (pass --no-head to accept that)"
            yield TrailProblem(Fault.NO_HEAD, None, "head", message, end + 1)
        return
    if head.pos > top:
        message = f"{_span(top + 1, head.pos, 'are')} missing from the end: the head says record {head.pos} was written"
        yield TrailProblem(Fault.TRUNCATED, top + 1, "end of trail", message, end)
        return
    match = next((e for e in entries if e.pos == head.pos), None)
    if match is not None and match.digest != head.digest:
        message = f"its hash does not match the head ({head.digest[:12]})"
        yield TrailProblem(Fault.MODIFIED, head.pos, match.where, message, match.index)
    if head.pos < top:
        notes.append(
            f"{_span(head.pos + 1, top)} came after the head's last update (their writer stopped before "
            "updating it); they chain correctly, but removals after them could not be detected"
        )


def _jsonl_items(path: Path) -> Iterator[_Item]:
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            where = f"line {number}"
            if not raw.endswith(b"\n"):
                yield _Item(where, None)
                return
            try:
                yield _Item(where, raw[:-1].decode("utf-8"))
            except UnicodeDecodeError:
                yield _Item(where, "\ufffd not UTF-8")


def verify_jsonl(path: str | Path, *, use_head: bool = True) -> TrailReport:
    """Verify a JSON Lines trail and, unless ``use_head`` is False, its head file (``FILE.head``);
    a trail with records but no head file is a problem (removals from its end would go unseen)."""
    path = Path(path)
    head = read_head(path) if use_head else None
    return _analyse(str(path), _jsonl_items(path), head=head, trimmed_start=False, need_head=use_head)


def verify_sqlite(path: str | Path, *, table: str = "audit") -> TrailReport:
    """Verify the trail in ``table`` of a SQLite audit database (opened read-only), its head row
    and that every query column matches its row's line."""
    table = check_table_name(table)
    try:
        db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    except sqlite3.Error as exc:  # pragma: no cover - read-only open fails only on odd file systems
        raise AuditTrailError(f"cannot open SQLite audit database {str(path)!r}: {exc}") from exc
    try:
        try:
            # The table name is a checked identifier; nothing else is interpolated.
            row = db.execute(f"SELECT pos, digest FROM {table}_head WHERE id = 1").fetchone()  # noqa: S608
            selected = ", ".join((*COLUMNS, "digest", "pos", "line"))
            rows = db.execute(f"SELECT {selected} FROM {table} ORDER BY pos").fetchall()  # noqa: S608
        except sqlite3.Error as exc:
            raise AuditTrailError(
                f"{str(path)!r} holds no audit table {table!r} ({exc}); name the table with --table"
            ) from exc
        head = Head(int(row[0]), str(row[1])) if row else None
        items = [_Item(f"row {values[-2]}", values[-1], tuple(values[:-1])) for values in rows]
    finally:
        db.close()
    return _analyse(f"{path} (table {table})", items, head=head, trimmed_start=False, need_head=True)


def verify_stream(client: Redis, stream: str = "intentguard:audit", *, page: int = 1000) -> TrailReport:
    """Verify a Redis stream written by :class:`~intentguard.audit.redis.RedisStreamSink` against
    its head key; a stream trimmed by ``maxlen`` verifies from its first remaining entry (noted)."""
    from intentguard.audit.redis import head_key, parse_head

    raw_head = client.get(head_key(stream))
    pos, digest = parse_head(raw_head)
    head = Head(pos, digest) if raw_head is not None else None

    def items() -> Iterator[_Item]:
        start = "-"
        while True:
            entries: list[tuple[Any, Any]] = client.xrange(stream, min=start, max="+", count=page) or []
            for entry_id, fields in entries:
                name = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                line = fields.get(b"line", fields.get("line"))
                text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
                yield _Item(f"entry {name}", text if text is not None else "no line field")
            if len(entries) < page:
                return
            last = entries[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else str(last))

    return _analyse(f"stream {stream!r}", items(), head=head, trimmed_start=True, need_head=True)


def verify_trail(target: str, *, use_head: bool = True, table: str = "audit", stream: str | None = None) -> TrailReport:
    """Verify a JSONL file, a SQLite database (recognised by its header) or a ``redis://`` URL."""
    if target.startswith(("redis://", "rediss://", "unix://")):
        from redis.exceptions import RedisError

        from intentguard.audit.redis import connect

        client = connect(target)
        try:
            return verify_stream(client, stream or "intentguard:audit")
        except RedisError as exc:
            raise AuditTrailError(f"cannot read audit stream {stream!r} at {target!r}: {exc}") from exc
        finally:
            client.close()
    path = Path(target)
    with path.open("rb") as file:
        magic = file.read(16)
    if magic == b"SQLite format 3\x00":
        return verify_sqlite(path, table=table)
    return verify_jsonl(path, use_head=use_head)
