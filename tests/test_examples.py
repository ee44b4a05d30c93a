"""The examples run as shipped and show what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_quickstart_shows_every_kind_of_decision() -> None:
    """The demo prints an allow, a detected injection, an out-of-intent denial, argument denials, a spent
    budget and expiry."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")], capture_output=True, text=True, check=True, timeout=60
    )
    out = result.stdout
    for code in ("TOOL_NOT_IN_INTENT", "ARG_CONSTRAINT", "BUDGET_EXHAUSTED", "GRANT_EXPIRED"):
        assert code in out
    assert "ALLOW  lookup_order(order_id='A123')" in out
    assert "must be at most parameter max_refund (50)" in out
    assert "untrusted instruction found in tool:search_kb#call-7" in out
    assert "DENY   send_email(to='exfil@evil.example'" in out
    assert "the intent asks a person to confirm every call after that" in out
    assert "CONFIRMATION_DENIED" in out
    assert "11 audit records" in out
    assert "3 allowed, 7 denied" in out
    assert result.stderr == ""
