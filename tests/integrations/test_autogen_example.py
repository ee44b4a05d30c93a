"""examples/autogen_team.py runs as shipped and shows the delegation it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "autogen_team.py"


def test_the_team_example_shows_each_agents_decisions() -> None:
    """The planner delegates a read-only session to the researcher, which is denied what its grant lacks;
    the planner's refund of a value the researcher reported needs (and gets) a person's approval."""
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True, timeout=120)
    out = result.stdout
    lines = [
        line.split()
        for line in out.splitlines()
        if line.startswith("  ") and line.split()[0] in ("planner", "researcher")
    ]
    assert [(words[0], words[1], words[2].split("(")[0].rstrip(":")) for words in lines] == [
        ("planner", "ALLOW", "researcher"),
        ("researcher", "ALLOW", "lookup_order"),
        ("researcher", "ALLOW", "search_kb"),
        ("researcher", "DENY", "issue_refund"),
        ("researcher", "DENY", "lookup_order"),
        ("planner", "CONFIRM", "issue_refund"),
        ("planner", "ALLOW", "issue_refund"),
        ("planner", "ALLOW", "send_email"),
    ]
    assert "researcher (depth 1, delegated by planner session 'case-1'): lookup_order, search_kb; 5 min, 4 calls" in out
    assert "TOOL_NOT_IN_INTENT: tool 'issue_refund' of intent 'support_case' was taken out of this session" in out
    assert "must equal parameter order_id ('A123')" in out
    assert "which came from tool:researcher#researcher-0 (untrusted)" in out
    assert "planner's answer: Refunded 42.50 for the damaged kettle and told the customer." in out
    assert "planner's budget: 5 of 8 calls used, 2 of them by the researcher" in out
    assert "the researcher's too: its parent session 'case-1' was revoked (case closed)" in out
    assert "8 audit records: planner 4 (depth 0), researcher 4 (depth 1, delegated by session 'case-1')" in out
    assert result.stderr == ""
