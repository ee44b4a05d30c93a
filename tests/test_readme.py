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


def _run_example(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout


def test_the_demo_output_shown_is_what_make_demo_prints() -> None:
    """Every line of the demo output the README shows is printed by the LangChain example, in that order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("its one middleware.", 1)[1].split("```\n", 2)[1]
    out = _run_example("langchain_support_agent.py")
    position = 0
    for line in shown.splitlines():
        position = out.index(line, position) + len(line)


def test_the_decoded_hop_token_shown_is_what_the_delegation_example_prints() -> None:
    """The decoded second-hop token in the README is a verbatim part of examples/delegation.py's output."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    begin = "<!-- examples/delegation.py hop 2: begin -->\n```\n"
    shown = readme[readme.index(begin) + len(begin) : readme.index("```\n<!-- examples/delegation.py hop 2: end -->")]
    assert shown.startswith("hop 2 (")
    assert shown in _run_example("delegation.py")
