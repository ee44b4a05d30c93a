"""Report renderers: Markdown and JSON say what the model holds; HTML is self-contained, escaped, and draws."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import intentguard as ig
from intentguard.report import (
    REPORT_FORMAT,
    REPORT_VERSION,
    Report,
    build_report,
    read_trails,
    render_html,
    render_json,
    render_markdown,
)
from intentguard.report.markdown import md

from .conftest import SCHEMAS
from .report_trails import UNREACHED, write_trail


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    trail = write_trail(tmp_path_factory.mktemp("trail") / "audit.jsonl")
    entries, chains = read_trails([trail])
    # Departures by what the guard decided; the score's own departures are tested with scores set by hand.
    return build_report(entries, chains=chains, schemas=ig.load_schemas([SCHEMAS]), thresholds=UNREACHED)


@pytest.fixture(scope="module")
def html(report: Report) -> str:
    return render_html(report)


def test_markdown_tells_where_each_run_left_its_intent(report: Report) -> None:
    """The Markdown report leads with each session's departure and holds the tallies, taints and answers."""
    text = render_markdown(report)
    where = text.split("## Where each run left its intent", 1)[1].split("## Totals", 1)[0]
    lines = [line for line in where.splitlines() if line.startswith("- ")]
    assert len(lines) == 4
    assert "stayed within its intent (3 calls)" in lines[0]
    assert "left its intent at call \\#2 send\\_email: DENY, ARG\\_CONSTRAINT" in lines[1]
    assert "left its intent at call \\#1 pay\\_bill: CONFIRM, TAINTED\\_ARGUMENT" in lines[2]
    assert re.search(r"\| acme \| 2 \| 1 \| 8 \| 5 \| 3 \| 0 \| 1 \| 1 \| 0 \| [01]\.\d\d \|", text)
    assert "| 1 | pay\\_bill | amount | 180.55 | tool\\:get\\_bill\\#call-1 \\$.memo \\(untrusted\\) |" in text
    assert "| 2 | send\\_email | UNTRUSTED\\_INSTRUCTION | erin\\@globex.example | approved |" in text
    assert "**2 ⚑**" in text
    assert "outside the intent, attempted: export\\_customer\\_list\\<script\\>alert\\(1\\)\\</script\\>" in text


def test_markdown_escapes_record_text_into_inert_text() -> None:
    """Record text cannot open a link, an image, HTML, a table cell or a new line in Markdown."""
    text = md("[x](http://evil.example) ![i](y) <b>|</b>\nwww.evil.example a@b.c")
    assert "\n" not in text
    assert "](" not in text
    assert "<b>" not in text
    assert " | " not in text
    assert "http://" not in text
    assert "www." not in text
    assert "a@b" not in text


def test_json_is_versioned_stable_and_complete(report: Report) -> None:
    """The JSON document names its format and version, is byte-identical on re-render and carries every section."""
    text = render_json(report)
    assert text == render_json(report)
    document = json.loads(text)
    assert (document["format"], document["version"]) == (REPORT_FORMAT, REPORT_VERSION) == ("intentguard-report", 1)
    assert document["total"]["left_intent"] == 2
    assert [t["name"] for t in document["tenants"]] == ["acme", "globex"]
    hijacked = document["sessions"][1]
    assert hijacked["left_intent"]["seq"] == 2
    assert hijacked["left_intent"]["reasons"][0]["code"] == "ARG_CONSTRAINT"
    assert hijacked["intent_vs_action"]["unplanned"] == ["export_customer_list<script>alert(1)</script>"]
    assert hijacked["intent_vs_action"]["unused"] == ["issue_refund"]
    assert hijacked["confirmations"][0]["approver"] == "carol@acme.example"
    billing = document["sessions"][2]
    assert billing["tainted"][0]["origins"] == ["tool:get_bill#call-1 $.memo (untrusted)"]
    call = billing["calls"][1]
    assert (call["effect"], call["final_effect"], call["approval"]["approved"]) == ("CONFIRM", "DENY", False)
    assert call["time"] == "2026-01-01T09:01:03.000Z"
    assert call["source"]["line"] == 11  # the CONFIRM record; the answer is the next line


def test_json_without_schemas_says_unused_is_unknown(tmp_path: Path) -> None:
    """Without schemas the document says planned tools are unknown (null), not that none went unused."""
    entries, chains = read_trails([write_trail(tmp_path / "a.jsonl")])
    document = json.loads(render_json(build_report(entries, chains=chains)))
    assert document["schemas_given"] is False
    assert document["sessions"][0]["intent_vs_action"]["unused"] is None


def test_html_is_self_contained_and_escapes_attacker_text(html: str) -> None:
    """The HTML has no script, no external URL, a CSP, and every '<script>' from records shows as text."""
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"(?i)\b(?:https?|ftp)://|//[a-z0-9.-]+\.[a-z]{2,}/", html)
    assert "Content-Security-Policy" in html
    assert "default-src 'none'" in html
    assert html.count('src="data:image/png;base64,') == 5  # the overview and one score curve per session
    assert 'href="#s-r-2"' in html
    assert 'id="s-r-2"' in html


def test_html_says_where_runs_left_their_intent(html: str) -> None:
    """The HTML names the departure call of each session, highlights it, and shows confirmations with approvers."""
    assert "left at call #2 <b>send_email</b>" in html
    assert "left at call #1 <b>pay_bill</b>" in html
    assert html.count('class="departs"') == 2
    assert html.count('<section class="session departed"') == 2
    assert "approved by erin@globex.example" in html
    assert "denied by dana@globex.example" in html
    assert "tool:get_bill#call-1 $.memo (untrusted)" in html


def test_html_needs_the_report_extra(tmp_path: Path) -> None:
    """Without matplotlib the HTML renderer raises MissingExtraError naming the [report] extra."""
    trail = write_trail(tmp_path / "a.jsonl")
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from intentguard.report import build_report, read_trails, render_html\n"
        "import intentguard as ig\n"
        f"entries, _ = read_trails([{str(trail)!r}])\n"
        "try:\n    render_html(build_report(entries))\n"
        "except ig.MissingExtraError as exc:\n    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert "pip install 'intentguard[report]'" in out


def test_importing_the_report_package_pulls_in_no_matplotlib() -> None:
    """Importing intentguard.report (for Markdown or JSON) leaves matplotlib unimported."""
    code = "import sys, intentguard.report\nprint('matplotlib' in sys.modules)\n"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "False"


# --- the HTML in a real browser -----------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed; `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    return found


def _open_in_chromium(page: Path, shot: Path, profile: Path) -> str:
    """Load ``page`` headless, write a screenshot, return chromium's log (console messages included)."""
    result = subprocess.run(
        [
            _chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def _console_errors(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "Content Security Policy" in line or "Refused to" in line
    ]


def _distinct_colours(png: Path) -> int:
    from matplotlib.image import imread

    pixels = imread(png)[:, :, :3].reshape(-1, 3)
    return len({tuple(row) for row in pixels[:: max(1, len(pixels) // 20000)].round(2).tolist()})


def test_the_console_check_sees_a_broken_page(tmp_path: Path) -> None:
    """A page with a script error shows up in chromium's log, so a clean log for the report means something."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction()</script></body></html>")
    log = _open_in_chromium(page, tmp_path / "broken.png", tmp_path / "profile")
    assert any("undefinedFunction" in line for line in _console_errors(log))


def test_the_html_report_draws_in_headless_chromium_without_console_errors(html: str, tmp_path: Path) -> None:
    """Chromium renders the report with no console error, and the screenshot is a real, colourful page."""
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "report.png"
    log = _open_in_chromium(page, shot, tmp_path / "profile")
    assert _console_errors(log) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _distinct_colours(shot) > 50  # text, tables, pills and plots, not a blank or one-colour page
    dom = subprocess.run(
        [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "<script" not in dom  # the record's '<script>' is a text node, never an element
    assert "export_customer_list&lt;script&gt;alert(1)&lt;/script&gt;" in dom
