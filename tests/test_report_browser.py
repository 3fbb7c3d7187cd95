"""The HTML report in a real headless browser: it renders, and the browser reports no console errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from classifiers import HeuristicClassifier, Outcome, Row
from router.evaluate import evaluate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _browse(page: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """Open a page in headless Chromium: its screenshot and the console messages it logged."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is needed in CI (.ci/run installs the Debian package chromium)")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    shot = tmp_path / f"{page.stem}.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
             "--v=0", "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()]
    result = subprocess.run([CHROMIUM, *flags], capture_output=True, text=True, timeout=120, check=False)
    return shot, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def _report(router_beats_random: bool) -> object:
    rows = []
    for i in range(200):
        hard = i % 3 == 0
        text = ("Prove that the series converges and derive its sum, step by step, " * 3) if hard else f"hi there {i}"
        if not router_beats_random:
            hard = i % 3 != 0 and i % 2 == 0  # the long prompts the router pays for are the easy ones
        rows.append(Row(id=f"r{i}", messages=[{"role": "user", "content": text}], task="proofs" if i % 3 == 0 else "chat",
                        outcomes={"small": Outcome(quality=0.0 if hard else 1.0, cost_usd=0.0001),
                                  "big": Outcome(quality=1.0, cost_usd=0.01)}))
    return evaluate(rows, ["small", "big"], HeuristicClassifier(), thresholds=[0.3], bootstrap=20, dataset="demo-set.jsonl")


def test_report_page_renders_in_a_browser_without_console_errors(tmp_path: Path) -> None:
    page = _report(True).html(tmp_path / "report.html")  # type: ignore[attr-defined]
    text = page.read_text(encoding="utf-8")
    assert "demo-set.jsonl" in text and "200 of 200 rows" in text and "<table>" in text
    assert "What the figures mean" in text and "random routing at the same cost" in text
    shot, console = _browse(page, tmp_path)
    assert console == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page with tables and a picture, not a blank one


def test_the_browser_check_sees_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><script>console.error('boom')</script></body></html>")
    assert any("boom" in line for line in _browse(page, tmp_path)[1])


def test_report_warns_when_the_router_is_no_better_than_random(tmp_path: Path) -> None:
    report = _report(False)
    assert not report.beats_random  # type: ignore[attr-defined]
    assert "not better than random routing" in report.html(tmp_path / "r.html").read_text()  # type: ignore[attr-defined]
    assert "not better than random routing" not in _report(True).html(tmp_path / "s.html").read_text()  # type: ignore[attr-defined]
