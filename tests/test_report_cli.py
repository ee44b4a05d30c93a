"""`intentguard report`: writes each format, and fails with clear messages and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from intentguard.cli import main

from .conftest import SCHEMAS
from .report_trails import write_trail


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_trail(tmp_path_factory.mktemp("trail") / "audit.jsonl")


@pytest.mark.parametrize(
    ("name", "marker"), [("r.html", "<!DOCTYPE html>"), ("r.md", "# intentguard"), ("r.json", "{")]
)
def test_report_writes_the_format_named_by_the_suffix(
    trail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, marker: str
) -> None:
    """The format follows the output's suffix; the command prints a one-line summary and exits 0."""
    out = tmp_path / name
    assert main(["report", str(trail), "-o", str(out), "--schemas", str(SCHEMAS), *UNREACHED_ARGS]) == 0
    assert out.read_text(encoding="utf-8").startswith(marker)
    assert "4 sessions, 13 calls: 2 left their intent" in capsys.readouterr().out


UNREACHED_ARGS = ["--narrow-at", "1", "--revoke-at", "1"]
"""Departures by what the guard decided only (the trails' real scores are the shipped model's)."""


def test_report_to_stdout_with_an_explicit_format(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`-o -` writes the report to stdout and the summary to stderr; thresholds reach the document."""
    assert main(["report", str(trail), "-o", "-", "--format", "json", "--narrow-at", "0.4", "--revoke-at", "0.9"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["thresholds"] == {"narrow": 0.4, "revoke": 0.9}
    assert "json report in -" in captured.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.jsonl", "-o", "r.md"], "audit trail 'missing.jsonl' does not exist"),
        (["TRAIL", "-o", "r.txt"], "cannot tell the format from 'r.txt'; pass --format"),
        (["TRAIL", "-o", "r.md", "--narrow-at", "0.9"], "must satisfy 0 <= narrow <= revoke <= 1"),
        (["TRAIL", "-o", "no/such/dir/r.md"], "cannot write 'no/such/dir/r.md'"),
    ],
)
def test_usage_errors_exit_2_and_say_what_to_do(
    trail: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    message: str,
) -> None:
    """A missing trail, an unknown suffix, bad thresholds or an unwritable output exit 2 with the reason."""
    monkeypatch.chdir(tmp_path)
    assert main(["report", *[str(trail) if a == "TRAIL" else a for a in arguments]]) == 2
    assert message in capsys.readouterr().err


def test_bad_records_exit_1_naming_every_line(trail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Malformed records exit 1 and stderr names the file and line of each one; no report is written."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(trail.read_text().splitlines()[0] + "\n{oops\n" + '{"jti": 1}\n')
    out = tmp_path / "r.md"
    assert main(["report", str(trail), str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: line 2: not JSON" in err
    assert f"{bad}: line 3: " in err
    assert not out.exists()


def test_bad_schemas_exit_1(trail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid schema given with --schemas exits 1 with the schema's problems."""
    schema = tmp_path / "broken.yaml"
    schema.write_text("name: broken\n")
    assert main(["report", str(trail), "-o", str(tmp_path / "r.md"), "--schemas", str(schema)]) == 1
    assert "broken.yaml" in capsys.readouterr().err


def test_html_without_matplotlib_exits_2_naming_the_extra(trail: Path, tmp_path: Path) -> None:
    """Asked for HTML where matplotlib is not installed, the command exits 2 and names `intentguard[report]`."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from intentguard.cli import main\n"
        f"sys.exit(main(['report', {str(trail)!r}, '-o', {str(tmp_path / 'r.html')!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 2
    assert "pip install 'intentguard[report]'" in result.stderr
