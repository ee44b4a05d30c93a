"""The README's code runs as shown: the quickstart block executes and prints what its comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_quickstart_block_runs_and_denies_the_refund(tmp_path: Path) -> None:
    """The first Python block of the README runs from the repository root and prints the DENY it promises."""
    code = python_blocks()[0].replace('"audit.jsonl"', repr(str(tmp_path / "audit.jsonl")))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert "DENY" in result.stdout
    assert "ARG_CONSTRAINT" in result.stdout
    assert "must be at most parameter max_refund (50)" in result.stdout
    assert (tmp_path / "audit.jsonl").read_text().count("\n") == 1
