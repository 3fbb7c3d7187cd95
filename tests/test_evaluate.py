"""Offline evaluation: hand-computed metrics on tiny sets, edge cases, the CLI, the picture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers import DataError, Outcome, Row
from router.checks import non_empty
from router.evaluate import aiq, evaluate, matrices


class Fixed:
    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score(self, messages: list) -> float:
        return self.scores[messages[0]["content"]]

    def score_batch(self, batch: list) -> list[float]:
        return [self.score(m) for m in batch]


def row(i: str, task: str = "t", **outcomes: tuple[float, float | None]) -> Row:
    return Row(id=i, messages=[{"role": "user", "content": i}], task=task,
               outcomes={m.replace("_", "-"): Outcome(quality=q, cost_usd=c) for m, (q, c) in outcomes.items()})


def test_hand_computed_two_tier_report() -> None:
    rows = [row("a", weak=(1, 1.0), strong=(1, 10.0)), row("b", weak=(0, 1.0), strong=(1, 10.0)),
            row("c", weak=(0, 1.0), strong=(0, 10.0)), row("d", weak=(1, 1.0), strong=(0, 10.0))]
    clf = Fixed({"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.2})
    rep = evaluate(rows, ["weak", "strong"], clf, thresholds=[0.8], bootstrap=0)
    assert rep.baselines["weak"] == {"quality": 0.5, "cost": 1.0}
    assert rep.baselines["strong"] == {"quality": 0.5, "cost": 10.0}
    assert rep.router == {"quality": 0.75, "cost": (1 + 10 + 1 + 1) / 4}  # only b goes strong
    assert rep.baselines["oracle"] == {"quality": 0.75, "cost": 1 + 0.25 * 9}
    assert rep.apgr is None  # equal mean qualities: PGR undefined, not a number made up
    assert rep.least_cost_share[1.0] == pytest.approx(0.1)  # all-weak already matches strong's 0.5


def test_apgr_cpt_ties_and_tasks() -> None:
    rows = [row(str(i), task="x" if i % 2 else "y", weak=(i % 3 == 0, 0.0), strong=(1, 0.0)) for i in range(30)]
    rep = evaluate(rows, ["weak", "strong"], Fixed({str(i): 0.5 for i in range(30)}), bootstrap=20)
    assert rep.apgr == pytest.approx(0.5) and rep.cpt50 == pytest.approx(0.5)  # all tied: random routing
    assert rep.cost_unit == "usd" and rep.router["cost"] == 0.0  # zero-cost rows are costs, not missing ones
    assert set(rep.per_task) == {"x", "y"} and sum(t["rows"] for t in rep.per_task.values()) == 30


def test_missing_outcomes_are_counted_not_zeroed() -> None:
    rows = [row("a", weak=(1, 1.0), strong=(1, 2.0)), row("b", weak=(0, 1.0))]
    rep = evaluate(rows, ["weak", "strong"], Fixed({"a": 0.1, "b": 0.9}), bootstrap=0)
    assert rep.used == 1 and rep.rows == 2 and rep.missing == {"strong": 1}
    with pytest.raises(ValueError, match="no row"):
        evaluate([rows[1]], ["weak", "strong"], Fixed({"b": 0.9}))


def test_single_tier_and_no_costs() -> None:
    rows = [row("a", only=(1, None)), row("b", only=(0, None))]
    rep = evaluate(rows, ["only"], Fixed({"a": 0.1, "b": 0.2}), bootstrap=0)
    assert rep.router["quality"] == 0.5 and rep.thresholds == [] and rep.cost_unit == "top-tier call share"
    assert rep.router["cost"] == 1.0  # the top tier is the only tier


def test_escalation_replay_pays_every_attempt() -> None:
    rows = [Row(id="a", messages=[{"role": "user", "content": "a"}], outcomes={
        "weak": Outcome(quality=0.0, cost_usd=1.0, response=""), "strong": Outcome(quality=1.0, cost_usd=10.0, response="42")})]
    quality, cost, _unit, stats = matrices(rows, ["weak", "strong"], {}, non_empty)
    assert quality == [[1.0, 1.0]] and cost == [[11.0, 10.0]] and stats["failed_checks_share"] == 1.0


def test_aiq_is_mean_quality_of_the_hull() -> None:
    assert aiq([(0, 0.5), (1, 1.0)], 0, 1) == pytest.approx(0.75)
    assert aiq([(0, 0.5), (0.5, 0.4), (1, 1.0)], 0, 1) == pytest.approx(0.75)  # dominated points do not count


def test_cli_eval_and_calibrate(tmp_path: Path) -> None:
    from router.cli import main

    data = tmp_path / "set.jsonl"
    lines = []
    for i in range(60):
        hard = i % 3 == 0
        text = f"{'integrate the function' if hard else 'say hi to'} number {i}"
        split = "dev" if i % 2 else "test"
        lines.append(json.dumps({"id": f"r{i}", "task": "demo" if i % 4 else "<b>demo", "split": split, "messages": [{"role": "user", "content": text}],
                                 "outcomes": {"w": {"quality": 0 if hard else 1, "cost_usd": 0.001}, "s": {"quality": 1, "cost_usd": 0.01}}}))
    data.write_text("\n".join(lines) + "\n")
    png, js, cfg, page = tmp_path / "c.png", tmp_path / "r.json", tmp_path / "tierwise.yaml", tmp_path / "r.html"
    assert main(["eval", "--data", str(data), "--tiers", "small=w,frontier=s", "--split", "test", "--weights", "heuristic",
                 "--plot", str(png), "--json", str(js), "--html", str(page), "--bootstrap", "20"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    html = page.read_text()
    # One page that travels alone: the table (task names escaped) and the picture embedded.
    assert "router (thresholds" in html and "&lt;b&gt;demo" in html and "<b>demo" not in html
    assert html.count('src="data:image/png;base64,') == 1 and "http" not in html
    report = json.loads(js.read_text())
    assert report["used"] == 30 and set(report["baselines"]) == {"w", "s", "oracle", "random"}
    calibrate = ["calibrate", "--data", str(data), "--tiers", "small=w,frontier=s", "--split", "dev", "--weights", "heuristic"]
    # The set's names are not priced models: a file a Router cannot load is refused, not written.
    assert main([*calibrate, "--target", "quality=0.9", "--out", str(cfg)]) == 2 and not cfg.exists()
    base = tmp_path / "base.yaml"
    base.write_text("# our tiers\ntiers:\n  - name: small   # cheap\n    models: [gpt-5-nano]\n"
                    "  - name: frontier\n    models: [gpt-5]\nthresholds: [0.5]  # tuned below\n")
    for bad in ("quality=95", "quality", "quality=abc", "speed=1"):
        assert main([*calibrate, "--target", bad, "--config", str(base), "--out", str(cfg)]) == 2
    assert main([*calibrate, "--target", "quality=90%", "--config", str(base), "--out", str(cfg)]) == 0
    from router import Router, RouterConfig

    text = cfg.read_text()
    assert "# our tiers" in text and "# cheap" in text  # the user's comments survive
    config = RouterConfig.from_file(cfg)
    assert len(config.thresholds or []) == 1 and config.thresholds != [0.5]
    Router(config.model_copy(update={"ledger": f"sqlite:///{tmp_path / 'l.db'}"})).close()  # what calibrate writes, a Router loads
    assert main(["eval", "--data", str(data), "--tiers", "nonsense"]) == 2


def test_routerbench_answers_are_read_as_the_models_gave_them() -> None:
    from classifiers import parse_row

    def row(source: str, response: str) -> str | None:
        return parse_row({"id": "a", "source": source, "messages": [{"role": "user", "content": "A or B?"}],
                          "outcomes": {"m": {"quality": 1, "response": response}}}).outcomes["m"].response

    assert row("routerbench", "['C\\n']") == "C\n" and row("routerbench", '["turn one", "turn two"]') == "turn one\n\nturn two"
    assert row("routerbench", "[not a list") == "[not a list" and row("routerbench", "[1, 2]") == "[1, 2]"
    assert row("arena", "['C']") == "['C']"  # other sets' answers are kept as recorded


def test_routerbench_wide_table(tmp_path: Path) -> None:
    import csv

    from classifiers import DataError, load_rows

    path = tmp_path / "rb.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", "prompt", "eval_name", "m7b", "m7b|total_cost", "m7b|model_response", "gpt4", "gpt4|total_cost", "gpt4|model_response"])
        w.writerow(["s1", "What is 2+2?", "arith", "1.0", "0.0001", "['4\\n']", "1.0", "0.003", "4"])
        w.writerow(["s2", "Prove it", "proof", "0.0", "0.0002", "", "", "", ""])
    rows = load_rows(path)
    assert [r.id for r in rows] == ["s1", "s2"] and rows[0].outcomes["gpt4"].cost_usd == 0.003
    assert "gpt4" not in rows[1].outcomes and rows[1].task == "proof"
    assert rows[0].outcomes["m7b"].response == "4\n"  # RouterBench's list repr of the turns: the answer as given
    rep = evaluate(rows, ["m7b", "gpt4"], Fixed({"What is 2+2?": 0.1, "Prove it": 0.9}), bootstrap=0)
    assert rep.used == 1 and rep.missing == {"gpt4": 1}
    path.write_text(path.read_text().replace("0.0002", "lots"))
    with pytest.raises(DataError, match=r"rb.csv:3"):
        load_rows(path)


def test_streamed_evaluation_gives_the_same_report_as_the_loaded_one(tmp_path: Path) -> None:
    from classifiers import default_classifier, load_rows
    from router.evaluate import evaluate, evaluate_file

    data = Path(__file__).resolve().parents[1] / "examples" / "data" / "demo-set.jsonl"
    tiers = ["small-model", "mid-model", "big-model"]
    loaded = evaluate([r for r in load_rows(data) if r.split == "test"], tiers, default_classifier(), bootstrap=50)
    streamed = evaluate_file([data], tiers, default_classifier(), split="test", bootstrap=50)
    assert streamed.router == loaded.router and streamed.baselines == loaded.baselines
    assert streamed.napgr == loaded.napgr and streamed.least_cost_share == loaded.least_cost_share
    assert streamed.per_task == loaded.per_task and streamed.rows == loaded.rows == 22
    bad = tmp_path / "bad.jsonl"
    bad.write_text(data.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        evaluate_file([bad], tiers, default_classifier())


def _costless_set(path: Path, rows: int, words: int = 20) -> Path:
    import json
    import random

    rng = random.Random(1)
    with path.open("w") as fh:
        for i in range(rows):
            fh.write(json.dumps({"id": str(i), "messages": [{"role": "user", "content": "explain this " * rng.randint(1, words)}],
                                 "outcomes": {"a": {"quality": rng.random() * 0.5}, "b": {"quality": rng.random() * 0.8},
                                              "c": {"quality": rng.random()}}}) + "\n")
    return path


def test_a_set_without_costs_on_three_tiers_says_the_middle_tier_counts_as_free(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from router.cli import main

    data = _costless_set(tmp_path / "s.jsonl", 60)
    assert main(["eval", "--data", str(data), "--tiers", "small=a,flash=b,frontier=c", "--bootstrap", "20"]) == 0
    assert "WARNING: this set has no costs" in capsys.readouterr().out
    assert main(["eval", "--data", str(data), "--tiers", "small=a,frontier=c", "--bootstrap", "20"]) == 0
    assert "WARNING" not in capsys.readouterr().out  # two tiers: the share of top-tier calls is a fair cost


def _group(leader: int) -> list[str]:
    """Live processes of a process group (zombies aside), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == leader and fields[0] != "Z":
            found.append(stat.parent.name)
    return found


def test_ctrl_c_in_eval_stops_cleanly(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    data = _costless_set(tmp_path / "big.jsonl", 50_000, words=48)  # over 20 MB: scored by worker processes
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "router.cli", "eval", "--data", str(data), "--tiers", "small=a,flash=b,frontier=c"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_group(proc.pid)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # until its workers run: however slow the machine, the interrupt lands mid-evaluation
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and err.strip().endswith("interrupted"), (proc.returncode, err[-2000:])
    time.sleep(0.5)
    alive = _group(proc.pid)
    assert alive == [], alive  # no worker left behind
