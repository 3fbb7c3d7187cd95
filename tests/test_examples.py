"""Every example runs as written, offline, and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name: str, **env: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, **env}, cwd=EXAMPLES.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_every_example_is_short_documented_and_tested() -> None:
    tested = {chunk.split('"')[0] for chunk in Path(__file__).read_text().split('run("')[1:]}
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text()
        assert text.startswith('"""') and len(text.splitlines()) <= 60, path.name
        assert path.name in tested, f"{path.name} has no test"


def test_quickstart() -> None:
    out = run("quickstart.py")
    assert "answer: 2 + 2 = 4." in out and "tier=small model=gpt-5-nano" in out and "acme spent: 0.0000085" in out


def test_multi_tenant_budgets() -> None:
    out = run("multi_tenant_budgets.py")
    acme = [line for line in out.splitlines() if " acme " in line]
    assert "frontier" in acme[0] and any("small" in line for line in acme) and "refused: BudgetExceeded" in acme[-1]
    assert all("refused" not in line for line in out.splitlines() if " globex " in line)


def test_escalation_json() -> None:
    out = run("escalation_json.py")
    assert "total_eur=1290.5" in out and "check_failed" in out and "does not match Invoice" in out


def test_train_your_classifier() -> None:
    lines = run("train_your_classifier.py").splitlines()
    hard, easy = (float(line.split()[0]) for line in lines[1:3])
    assert hard > 0.5 > easy


def test_async_aiohttp() -> None:
    out = run("async_aiohttp.py")
    assert "200 {'answer': 'Hello from tierwise!', 'tier': 'small'" in out and out.splitlines()[1].startswith("400")


def test_shared_budgets_postgres(pg_url: str) -> None:
    out = run("shared_budgets_postgres.py", TIERWISE_PG=pg_url)
    served = sum(int(line.split("served ")[1].split(",")[0]) for line in out.splitlines() if "served" in line)
    assert "within the cap: True" in out and 20 <= served <= 24


def test_offline_eval() -> None:
    out = run("offline_eval.py")
    assert "calibrated on" in out and "least cost reaching 95%" in out and "curve.png" in out
    png = Path(out.strip().split("wrote ")[-1].split(" and ")[0])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_gateway() -> None:
    out = run("gateway.py")
    assert "tierwise: 'answered by small-model' tier=small" in out
    assert "tierwise/frontier: 'answered by frontier-model' tier=frontier" in out
