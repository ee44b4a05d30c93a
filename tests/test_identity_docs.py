"""docs/identity.md shows the decoded tokens of a real two-hop delegation, and they cannot drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_documented_tokens_are_what_the_example_prints() -> None:
    """The decoded hop tokens in docs/identity.md are exactly the output of examples/delegation.py."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "delegation.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    doc = (ROOT / "docs" / "identity.md").read_text(encoding="utf-8")
    begin = "<!-- examples/delegation.py output: begin -->\n```\n"
    shown = doc[doc.index(begin) + len(begin) : doc.index("```\n<!-- examples/delegation.py output: end -->")]
    assert shown == result.stdout
    assert '"sub": "summariser",\n      "act": {\n        "sub": "researcher"' in shown
    assert "chain verified: True" in shown
    assert "'one-too-many' would be at depth 3" in shown
    assert result.stderr == ""
