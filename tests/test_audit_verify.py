"""`intentguard audit verify`: an intact trail exits 0; every kind of break is named by record and line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import intentguard as ig
from intentguard.audit import Fault, verify_jsonl
from intentguard.cli import main
from intentguard.testing import FrozenClock, sequential_ids

from .conftest import REFUND_PARAMS

CALLS = [
    ("lookup_order", {"order_id": "A123"}),
    ("search_kb", {"query": "refund policy"}),
    ("wire_money", {"to": "mallory"}),
    ("issue_refund", {"order_id": "A123", "amount": 20}),
    ("issue_refund", {"order_id": "A123", "amount": 900}),
    ("search_kb", {"query": "shipping"}),
]


def write_trail(sink: ig.AuditSink, schema: ig.IntentSchema, calls: int = len(CALLS)) -> None:
    """Run ``calls`` checks (allowed and denied) through a guard that writes to ``sink``, then close it."""
    guard = ig.Guard(schemas=[schema], clock=FrozenClock(), ids=sequential_ids("r"), audit=[sink])
    session = guard.start(
        "refund_request",
        REFUND_PARAMS,
        principal=ig.Principal(user="u-7", tenant="acme"),
        agent=ig.AgentIdentity(id="bot"),
    )
    for index in range(calls):
        tool, args = CALLS[index % len(CALLS)]
        session.check(ig.ToolCall(tool, args))
    guard.close()


@pytest.fixture
def trail(tmp_path: Path, refund_schema: ig.IntentSchema) -> Path:
    """A JSONL trail of six records (allowed and denied) with its head file."""
    path = tmp_path / "audit.jsonl"
    write_trail(ig.JsonlSink(path), refund_schema)
    return path


def lines_of(path: Path) -> list[bytes]:
    """The file's lines, each with its newline."""
    return path.read_bytes().splitlines(keepends=True)


def verify(path: Path | str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
    """Run the command; return its exit code and its output lines."""
    code = main(["audit", "verify", str(path), *extra])
    out, _ = capsys.readouterr()
    return code, out.splitlines()


def test_intact_trail_exits_0_with_a_summary(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An untouched trail verifies: exit 0 and one line naming the records and the matching head."""
    code, out = verify(trail, capsys)
    assert code == 0
    assert out[0].startswith(f"ok  {trail}: 6 records, an unbroken chain up to record 6; head matches record 6 (")
    assert len(out) == 1


def test_modified_record_is_named(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Changing one record's content breaks the next record's prev: the changed record is named."""
    lines = lines_of(trail)
    lines[2] = lines[2].replace(b'"effect":"DENY"', b'"effect":"ALLOW"')
    trail.write_bytes(b"".join(lines))
    code, out = verify(trail, capsys)
    assert code == 1
    assert out == [
        f"FAIL  {trail}: 1 problem; the first 2 records verify",
        "  record 3 (line 3): modified: its hash is not the prev that record 4 (line 4) carries",
    ]


def test_deleted_record_is_named(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Deleting a record in the middle is reported at the record that follows the gap."""
    lines = lines_of(trail)
    del lines[2]
    trail.write_bytes(b"".join(lines))
    code, out = verify(trail, capsys)
    assert code == 1
    assert out[1:] == ["  record 4 (line 3): missing: record 3 is missing before it (deleted)"]


def test_inserted_record_is_named(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A forged record that claims an existing number is reported as inserted; the genuine one is kept."""
    lines = lines_of(trail)
    forged = json.loads(lines[2])
    forged["jti"] = "forged"
    lines.insert(3, (json.dumps(forged, separators=(",", ":")) + "\n").encode())
    trail.write_bytes(b"".join(lines))
    code, out = verify(trail, capsys)
    assert code == 1
    assert out[1:] == [
        "  record 3 (line 4): inserted: a second record numbered 3; the chain continues from line 3: inserted or copied"
    ]


def test_reordered_records_are_named(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Swapping two records is reported at the one that comes too late."""
    lines = lines_of(trail)
    lines[2], lines[3] = lines[3], lines[2]
    trail.write_bytes(b"".join(lines))
    code, out = verify(trail, capsys)
    assert code == 1
    assert out[1:] == ["  record 3 (line 4): reordered: out of order: it comes after record 4 (line 3)"]


def test_truncated_end_is_caught_by_the_head(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Cutting the last records off is reported from the head file, naming the missing numbers."""
    trail.write_bytes(b"".join(lines_of(trail)[:4]))
    code, out = verify(trail, capsys)
    assert code == 1
    assert out == [
        f"FAIL  {trail}: 1 problem; the first 4 records verify",
        "  record 5 (end of trail): truncated: records 5-6 are missing from the end: "
        "the head says record 6 was written",
    ]


def test_modified_last_record_is_caught_by_the_head(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The last record has no successor to vouch for it: the head file does."""
    lines = lines_of(trail)
    lines[-1] = lines[-1].replace(b'"sub":"u-7"', b'"sub":"u-8"')
    trail.write_bytes(b"".join(lines))
    code, out = verify(trail, capsys)
    assert code == 1
    assert out[1].startswith("  record 6 (line 6): modified: its hash does not match the head (")


def test_torn_last_line_is_reported_and_not_accepted(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Half a record at the end (a writer killed mid-line) is torn; the records before it still verify."""
    half = lines_of(trail)[1][:150]
    with trail.open("ab") as file:
        file.write(half)
    code, out = verify(trail, capsys)
    assert code == 1
    assert out == [
        f"FAIL  {trail}: 1 problem; the first 6 records verify",
        "  record 7 (line 7): torn: the line ends without a newline: its writer died mid-record; "
        "nothing of it is accepted",
    ]


def test_complete_record_without_newline_is_still_torn(trail: Path) -> None:
    """A line that parses but lacks its newline is not accepted: the write that carried it did not finish."""
    lines = lines_of(trail)
    trail.write_bytes(b"".join(lines)[:-1])
    report = verify_jsonl(trail, use_head=False)
    assert [(p.fault, p.record, p.where) for p in report.problems] == [(Fault.TORN, 6, "line 6")]
    assert report.intact == 5


def test_garbage_line_is_malformed(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A complete line that is not a record is named by its line; the chain around it is also checked."""
    lines = lines_of(trail)
    lines[1] = b'{"jti": "x"}\n'
    trail.write_bytes(b"".join(lines))
    code, out = verify(trail, capsys)
    assert code == 1
    assert out[1].startswith("  line 2: malformed: not an audit record (")
    assert out[2] == "  record 3 (line 3): missing: record 2 is missing before it (deleted)"


def test_first_records_removed_are_missing(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Removing records from the start leaves the first remaining record numbered above 1."""
    trail.write_bytes(b"".join(lines_of(trail)[2:]))
    code, out = verify(trail, capsys)
    assert code == 1
    assert out[1:] == ["  record 3 (line 1): missing: records 1-2 are missing before it: removed from the start"]


def test_missing_head_fails_unless_waived(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without its head file a trail cannot show its end is intact: exit 1, or 0 with --no-head."""
    Path(str(trail) + ".head").unlink()
    code, out = verify(trail, capsys)
    assert code == 1
    assert out[1] == (
        "  head: no head: records removed from the end cannot be detected without it (pass --no-head to accept that)"
    )
    code, out = verify(trail, capsys, "--no-head")
    assert code == 0
    assert out[0].startswith(f"ok  {trail}: 6 records")


def test_empty_trail_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A trail with no records yet is intact."""
    path = tmp_path / "empty.jsonl"
    ig.JsonlSink(path).close()
    assert verify(path, capsys) == (0, [f"ok  {path}: empty trail"])


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A trail that does not exist exits 2 with the path named on stderr."""
    assert main(["audit", "verify", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_audit_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`intentguard audit` alone asks for a command and exits 2."""
    assert main(["audit"]) == 2
    assert "audit verify" in capsys.readouterr().err


@pytest.fixture
def database(tmp_path: Path, refund_schema: ig.IntentSchema) -> Path:
    """A SQLite audit database holding six records."""
    path = tmp_path / "audit.db"
    write_trail(ig.SqliteSink(path), refund_schema)
    return path


def test_sqlite_trail_verifies(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command recognises a SQLite database and verifies its table and head row."""
    code, out = verify(database, capsys)
    assert code == 0
    assert out[0].startswith(f"ok  {database} (table audit): 6 records, an unbroken chain up to record 6; head")


def test_sqlite_deleted_row_and_edited_column_are_named(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A deleted row is missing; a query column edited behind the line's back is a mismatch."""
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM audit WHERE pos = 2")
        db.execute("UPDATE audit SET effect = 'ALLOW' WHERE pos = 3")
    code, out = verify(database, capsys)
    assert code == 1
    assert out[1:] == [
        "  record 3 (row 3): mismatch: column effect says 'ALLOW' but the record says 'DENY'",
        "  record 3 (row 3): missing: record 2 is missing before it (deleted)",
    ]


def test_sqlite_truncation_is_caught_by_the_head_row(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rows deleted from the end are reported from the head row."""
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM audit WHERE pos > 4")
    code, out = verify(database, capsys)
    assert code == 1
    assert "records 5-6 are missing from the end" in out[1]


def test_sqlite_without_the_table_is_a_usage_error(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Naming a table the database does not hold exits 2 and says to use --table."""
    assert main(["audit", "verify", str(database), "--table", "other"]) == 2
    assert "--table" in capsys.readouterr().err


def test_changed_first_prev_is_named(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The first record must link to the genesis value; a changed link there is reported on line 1."""
    lines = lines_of(trail)
    lines[0] = lines[0].replace(b'"prev":"' + b"0" * 64, b'"prev":"' + b"1" * 64)
    trail.write_bytes(b"".join(lines))
    code, out = verify(trail, capsys)
    assert code == 1
    assert out[1] == (
        "  record 1 (line 1): modified: the first record's prev is not the genesis value: it was changed or spliced in"
    )


def test_records_after_the_head_are_noted(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Records written after the head's last update (a writer that stopped mid-batch) chain, and are noted."""
    head = Path(str(trail) + ".head")
    first = json.loads(lines_of(trail)[0])
    digest = __import__("hashlib").sha256(lines_of(trail)[3].rstrip(b"\n")).hexdigest()
    head.write_text(json.dumps({"pos": 4, "digest": digest}), encoding="utf-8")
    code, out = verify(trail, capsys)
    assert first["pos"] == 1
    assert code == 0
    assert out[1].startswith("  note: records 5-6 came after the head's last update")


def test_a_line_that_is_not_utf8_is_malformed(trail: Path) -> None:
    """Bytes that are not UTF-8 make a malformed line, never a crash."""
    lines = lines_of(trail)
    lines[4] = b"\xff\xfe\n"
    trail.write_bytes(b"".join(lines))
    report = verify_jsonl(trail)
    assert [(p.fault, p.where) for p in report.problems] == [(Fault.MALFORMED, "line 5"), (Fault.MISSING, "line 6")]


def test_sqlite_digest_and_number_columns_are_checked(database: Path) -> None:
    """A row whose digest column or number disagrees with its line is a mismatch."""
    from intentguard.audit import verify_sqlite

    with sqlite3.connect(database) as db:
        db.execute("UPDATE audit SET digest = 'x' WHERE pos = 2")
        db.execute("UPDATE audit SET pos = 60 WHERE pos = 6")
    report = verify_sqlite(database)
    messages = [str(problem) for problem in report.problems]
    assert "record 2 (row 2): mismatch: the digest column is not the line's" in messages
    assert "record 6 (row 60): mismatch: the row is numbered 60" in messages


def test_unreachable_redis_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A Redis URL nobody answers on exits 2 and names the stream and URL."""
    assert main(["audit", "verify", "redis://127.0.0.1:1/0", "--stream", "s"]) == 2
    assert "cannot read audit stream 's' at 'redis://127.0.0.1:1/0'" in capsys.readouterr().err
