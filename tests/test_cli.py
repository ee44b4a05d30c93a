"""The `intentguard` command: validate reports every schema problem and exits 0, 1 or 2."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import intentguard
from intentguard.cli import main

ROOT = Path(__file__).resolve().parent.parent
REFUND = ROOT / "intent_schemas" / "refund_request.yaml"

BAD = """\
name: Refund
version: "1.0"
description: four problems
ttl: PT15M
toolz: {}
tools:
  lookup_order: {max_call: 3}
"""


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A copy of the stock refund schema, so other schemas being added cannot change these tests."""
    path = tmp_path / "refund_request.yaml"
    shutil.copyfile(REFUND, path)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    """A schema with four problems: a bad name, an unknown key, a misspelt key and so a missing one."""
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    return path


def lines(text: str) -> list[str]:
    """The lines of captured output."""
    return text.splitlines()


def test_valid_file_exits_0_and_says_ok(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid schema is reported as `ok  PATH  (name version, N tools)` and the exit code is 0."""
    assert main(["validate", str(good)]) == 0
    out, err = capsys.readouterr()
    assert lines(out) == [
        f"ok  {good}  (refund_request 1.0, 4 tools)",
        "1 file checked: 1 valid, 0 invalid, 0 problems",
    ]
    assert err == ""


def test_invalid_file_exits_1_and_lists_every_problem(bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid schema exits 1 and shows each problem with its file, JSON path, message and hint."""
    assert main(["validate", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    assert f"FAIL  {bad}  (4 problems)" in out
    assert f"  {bad}: $.name: 'Refund' does not match" in out
    assert f"  {bad}: $: Additional properties are not allowed ('toolz' was unexpected)" in out
    assert f"  {bad}: $.tools.lookup_order: Additional properties are not allowed ('max_call' was unexpected)" in out
    assert f"  {bad}: $.tools.lookup_order: 'max_calls' is a required property" in out
    assert "      hint: remove the key or check its spelling" in out
    assert "      hint: add the missing key" in out
    assert lines(out)[-1] == "1 file checked: 0 valid, 1 invalid, 4 problems"


def test_mixed_files_exit_1_and_report_each(good: Path, bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With one good and one bad file, both are reported in argument order and the exit code is 1."""
    assert main(["validate", str(good), str(bad)]) == 1
    out = lines(capsys.readouterr().out)
    assert out[0] == f"ok  {good}  (refund_request 1.0, 4 tools)"
    assert out[1] == f"FAIL  {bad}  (4 problems)"
    assert out[-1] == "2 files checked: 1 valid, 1 invalid, 4 problems"


def test_directory_checks_each_schema_file_in_name_order(
    tmp_path: Path, good: Path, bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory stands for the .yaml/.yml/.json files directly inside it, sorted; other files are ignored."""
    (tmp_path / "notes.txt").write_text("not a schema", encoding="utf-8")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "deeper.yaml").write_text(BAD, encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 1
    out = lines(capsys.readouterr().out)
    assert out[0] == f"FAIL  {bad}  (4 problems)"
    assert f"ok  {good}  (refund_request 1.0, 4 tools)" in out
    assert "notes.txt" not in "\n".join(out)
    assert "deeper.yaml" not in "\n".join(out)
    assert out[-1] == "2 files checked: 1 valid, 1 invalid, 4 problems"


def test_directory_of_valid_schemas_exits_0(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory whose schema files are all valid exits 0."""
    (good.parent / "second.json").write_text(
        json.dumps(
            {"name": "second", "version": "2", "description": "d", "ttl": 60, "tools": {"ping": {"max_calls": 1}}}
        ),
        encoding="utf-8",
    )
    assert main(["validate", str(good.parent)]) == 0
    out = lines(capsys.readouterr().out)
    assert out == [
        f"ok  {good}  (refund_request 1.0, 4 tools)",
        f"ok  {good.parent / 'second.json'}  (second 2, 1 tool)",
        "2 files checked: 2 valid, 0 invalid, 0 problems",
    ]


def test_a_file_named_twice_is_checked_once(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file named directly and through its directory is checked once, not flagged as its own duplicate."""
    assert main(["validate", str(good), str(good.parent), str(good)]) == 0
    assert lines(capsys.readouterr().out)[-1] == "1 file checked: 1 valid, 0 invalid, 0 problems"


def test_two_schemas_with_one_name_exit_1(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two files declaring the same intent name are an error, reported on the second file."""
    twin = good.parent / "twin.yaml"
    shutil.copyfile(good, twin)
    assert main(["validate", str(good), str(twin)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  {twin}  (1 problem)" in out
    assert f"{twin}: $.name: intent 'refund_request' is also defined in {good}" in out
    assert "2 files checked: 1 valid, 1 invalid, 1 problem" in out


def test_json_format_is_machine_readable(good: Path, bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--format json` prints one JSON document with a summary and, per file, its schema or its problems."""
    assert main(["validate", "--format", "json", str(good), str(bad)]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is False
    assert result["summary"] == {"files": 2, "valid": 1, "invalid": 1, "problems": 4}
    first, second = result["files"]
    assert first == {
        "path": str(good),
        "valid": True,
        "name": "refund_request",
        "version": "1.0",
        "tools": ["issue_refund", "lookup_order", "search_kb", "send_email"],
        "problems": [],
    }
    assert second["path"] == str(bad)
    assert second["valid"] is False
    assert second["name"] is None
    assert len(second["problems"]) == 4
    for problem in second["problems"]:
        assert set(problem) == {"source", "path", "message", "hint"}
        assert problem["source"] == str(bad)
        assert problem["path"].startswith("$")
        assert problem["message"]
        assert problem["hint"]


def test_json_format_for_valid_files_exits_0(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--format json` on valid files exits 0 and says so."""
    assert main(["validate", str(good), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is True
    assert result["summary"] == {"files": 1, "valid": 1, "invalid": 0, "problems": 0}


def test_missing_path_is_a_usage_error(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist exits 2 with a message naming it on stderr, and checks nothing."""
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(good), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"intentguard validate: error: path {str(missing)!r} does not exist; check the spelling\n"


def test_empty_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory with no schema files exits 2 rather than passing with nothing checked."""
    (tmp_path / "README.md").write_text("hi", encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"directory {str(tmp_path)!r} holds no schema files" in err


def test_a_path_that_is_not_a_regular_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A named FIFO is refused as a usage error instead of blocking the command forever."""
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert main(["validate", str(fifo)]) == 2
    assert "is not a regular file or a directory" in capsys.readouterr().err


def test_a_path_the_system_cannot_look_up_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A path name too long for the file system exits 2 with the system's reason, not a traceback."""
    assert main(["validate", "x" * 5000 + ".yaml"]) == 2
    err = capsys.readouterr().err
    assert "error: cannot read path 'xxx" in err
    assert "File name too long" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["validate"],
        ["validate", "--format", "xml", "x.yaml"],
        ["validate", "--bogus", "x.yaml"],
        ["frobnicate"],
    ],
    ids=["no-command", "no-path", "bad-format", "unknown-option", "unknown-command"],
)
def test_bad_arguments_exit_2_with_usage_on_stderr(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad arguments return exit code 2 with a usage message on stderr, never raising SystemExit."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: intentguard")
    assert "error:" in err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` exits 0 and its epilog documents exit codes 0, 1 and 2, for the command and for validate."""
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert main(["validate", "--help"]) == 0
    validate = capsys.readouterr().out
    for text in (top, validate):
        assert "exit codes:" in text
        assert "  0  " in text
        assert "  1  " in text
        assert "  2  usage error" in text
    assert "validate" in top
    assert "--format {text,json}" in validate


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`--version` prints the package version and exits 0."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"intentguard {intentguard.__version__}\n"


def test_a_loader_crash_is_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that makes the loader fail unexpectedly is reported as invalid (exit 1), never as a traceback."""
    path = tmp_path / "overflow.yaml"
    # At the time of writing re.compile raises OverflowError here and the loader lets it escape.
    text = REFUND.read_text(encoding="utf-8").replace("{type: string, max_length: 200}", '{pattern: "a{99999999999}"}')
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path), "--format", "json"]) == 1
    result = json.loads(capsys.readouterr().out)
    (checked,) = result["files"]
    assert checked["valid"] is False
    assert checked["problems"]


def test_non_utf8_file_name_is_shown_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file name that is not valid UTF-8 is printed escaped instead of crashing the output."""
    path = tmp_path / os.fsdecode(b"caf\xe9.yaml")
    shutil.copyfile(REFUND, path)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "caf\\udce9.yaml  (refund_request 1.0, 4 tools)" in out


def test_python_dash_m_runs_main_and_exits_with_its_code(
    good: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m intentguard` runs main on sys.argv and exits with the code main returned."""
    monkeypatch.setattr(sys, "argv", ["intentguard", "validate", str(good)])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("intentguard", run_name="__main__")
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"ok  {good}")


def test_real_command_in_a_subprocess(good: Path, bad: Path) -> None:
    """The installed module runs as a process: exit code 1, problems on stdout, no traceback on stderr."""
    completed = subprocess.run(
        [sys.executable, "-m", "intentguard", "validate", str(good), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert f"ok  {good}  (refund_request 1.0, 4 tools)" in completed.stdout
    assert f"FAIL  {bad}  (4 problems)" in completed.stdout
    assert completed.stderr == ""

    usage = subprocess.run(
        [sys.executable, "-m", "intentguard", "validate", str(bad.parent / "missing.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr
    assert "does not exist" in usage.stderr
