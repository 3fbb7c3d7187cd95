"""The `tierwise` command, run as a user would: a subprocess of the installed entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_classifiers import _write_set


def tierwise(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("OPENAI_API_KEY", None)  # the demo must not need a key
    return subprocess.run([sys.executable, "-m", "router.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)


def test_demo_runs_offline_and_reports_savings(tmp_path: Path) -> None:
    result = tierwise("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Hi there!" in out and "always-frontier" in out and "saved" in out
    rows = [line for line in out.splitlines() if "gpt-5" in line]
    assert len(rows) == 13
    score = {line.split("  ")[0].split()[0]: float(line[49:54]) for line in rows}
    assert score["Prove"] > score["Hi"] and score["Analyse"] > score["Hi"]  # the proof and the analysis above the greeting
    assert {"small", "flash"} <= {line.split()[-3] for line in rows} or "flash" in out
    assert "check_failed" in out  # one simulated small-model failure escalates
    assert list(tmp_path.iterdir()) == []  # the demo leaves no files behind
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("Worked example, from `tierwise demo`", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    shown = [line for line in block.splitlines() if line and line != "..."]
    assert shown and all(line in out.splitlines() for line in shown), [line for line in shown if line not in out.splitlines()]


def test_score_train_and_ledger(tmp_path: Path) -> None:
    data = _write_set(tmp_path / "set.jsonl")
    result = tierwise("score", "--text", "hello")
    assert result.returncode == 0 and 0 <= float(result.stdout) <= 1
    out = tmp_path / "scores.jsonl"
    assert tierwise("score", "--data", str(data), "--out", str(out), "--weights", "heuristic").returncode == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines[:3]] == ["r0", "r1", "r2"] and len(lines) == 401
    weights = tmp_path / "w.json"
    result = tierwise("train", "--data", str(data), "--weak", "weak", "--strong", "strong", "--out", str(weights))
    assert result.returncode == 0, result.stderr
    hard = tierwise("score", "--text", "Please evaluate the integral of cos x number 3", "--weights", str(weights)).stdout
    easy = tierwise("score", "--text", "Please say hello to my dog number 3", "--weights", str(weights)).stdout
    assert float(hard) > 0.5 > float(easy)
    assert "train: read 401 rows" in result.stderr and "calibrated on" in result.stderr  # a line a stage when not a TTY
    assert "left out 1 rows marked split: test" in result.stderr  # said, not silent
    again = tierwise("train", "--data", str(data), "--weak", "weak", "--strong", "strong", "--include-test", "--out", str(weights))
    assert again.returncode == 0 and "left out" not in again.stderr
    # With a prior, the model is chosen by cross-validation among the prior, warm starts and one trained alone: said, and kept in the file.
    chosen = tierwise("train", "--data", str(data), "--tiers", "small=weak,frontier=strong", "--prior", "default", "--out", str(weights))
    assert chosen.returncode == 0 and "chosen by 3-fold CV" in chosen.stderr and "CV AUC" in chosen.stderr, chosen.stderr
    assert json.loads(weights.read_text())["meta"]["selection"]["chosen"] in {"prior", "alone"} | {f"warm C={c}" for c in (0.03, 0.1, 0.3, 1.0)}
    assert float(tierwise("score", "--text", "Please evaluate the integral of cos x number 3", "--weights", str(weights)).stdout) > float(
        tierwise("score", "--text", "Please say hello to my dog number 3", "--weights", str(weights)).stdout)
    result = tierwise("ledger", "--url", f"sqlite:///{tmp_path / 'mistyped.db'}")
    assert result.returncode == 2 and "no ledger at" in result.stderr and not (tmp_path / "mistyped.db").exists()


def test_version() -> None:
    from router import __version__

    result = tierwise("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"tierwise {__version__}"


def test_errors_are_one_line_not_tracebacks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{broken\n")
    result = tierwise("score", "--data", str(bad))
    assert result.returncode == 2 and f"{bad}:1" in result.stderr and "Traceback" not in result.stderr
    result = tierwise("score", "--text", "x", "--weights", str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
