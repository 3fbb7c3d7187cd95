"""The learned answer verifier: trained by `tierwise train-verifier`, loaded with every field
checked, replayed offline by `eval --verifier` and `score --verifier` (which agree), and used by
the router to escalate an answer under its tier's bar, both calls billed and held."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import KeywordClassifier, local_tiers

from router import ConfigError, LiteLLMClient, Router, RouterConfig
from router.cli import main as tierwise
from router.evaluate import cascade_napgr
from router.testing import LocalOpenAIServer
from router.verifier import FEATURES, Verifier, load_verifier

TIERS = "small=m-small,frontier=m-big"


def hand_made(path: Path, feature: str = "refusal", weight: float = -10.0, intercept: float = 2.0) -> Path:
    """A verifier by hand: every weight 0 but one dense feature's, so its scores are known."""
    dense = [weight if name == feature else 0.0 for name in FEATURES]
    Verifier(dense, [0.0] * 16, intercept, 16).save(path)
    return path


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def write_set(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    """Two tiers, no costs (the top call costs 1): (prompt, small's answer, small's quality)."""
    with path.open("w") as out:
        for i, (prompt, answer, quality) in enumerate(rows):
            out.write(json.dumps({"id": f"r{i}", "split": "train" if i % 4 else "test", "messages": [{"role": "user", "content": prompt}],
                                  "outcomes": {"m-small": {"quality": quality, "response": answer},
                                               "m-big": {"quality": 1.0, "response": "The answer, done well."}}}) + "\n")
    return path


ROWS = [(f"Question {i}: what is {i} plus {i}?", f"I'm sorry, I can't help with that {i}." if i % 3 == 0 else f"{i} + {i} = {2 * i}.",
         0.0 if i % 3 == 0 else 1.0) for i in range(1, 41)]


def test_train_verifier_learns_which_answers_fail_and_writes_json(tmp_path: Path, capsys: Any) -> None:
    data = write_set(tmp_path / "set.jsonl", ROWS)
    assert tierwise(["train-verifier", "--data", str(data), "--tiers", TIERS, "--out", str(tmp_path / "v.json")]) == 0
    trained = json.loads(capsys.readouterr().out.split(": ", 1)[1])
    assert trained["answers"] == 30 and trained["splits"] == "all but test"  # the test rows were left out
    v = load_verifier(tmp_path / "v.json")
    ask = [{"role": "user", "content": "Question 50: what is 50 plus 50?"}]
    assert v.score(ask, "50 + 50 = 100.") > 0.5 > v.score(ask, "I'm sorry, I can't help with that.")  # type: ignore[operator]
    assert json.loads((tmp_path / "v.json").read_text())["format"] == "tierwise-verifier"  # JSON weights, no pickle


def test_eval_and_score_with_a_verifier_agree_on_a_hand_computed_example(tmp_path: Path, capsys: Any) -> None:
    data, vfile = write_set(tmp_path / "set.jsonl", ROWS), hand_made(tmp_path / "v.json")
    assert tierwise(["score", "--data", str(data), "--tiers", TIERS, "--verifier", str(vfile), "--out", str(tmp_path / "s.jsonl"),
                     "--weights", "heuristic"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    for line, (_, answer, _) in zip(lines, ROWS, strict=True):  # by hand: sigmoid(2 - 10 x refusal)
        assert line["answer_scores"]["small"] == pytest.approx(sigmoid(-8.0 if "sorry" in answer else 2.0), abs=1e-6)
        assert line["answer_scores"]["frontier"] is None and line["extra_cost"] == {"small": 0.0, "frontier": 0.0} and not line["reuse"]
    capsys.readouterr()
    assert tierwise(["eval", "--data", str(data), "--tiers", TIERS, "--verifier", str(vfile), "--weights", "heuristic",
                     "--bootstrap", "20"]) == 0
    shown = re.search(r"cascade\s+nAPGR ([\d.]+).*\n.*\n.*cascade - prompt-only ([+-][\d.]+)", capsys.readouterr().out)
    assert shown is not None
    again = cascade_napgr([x["score"] for x in lines], [[x["answer_scores"]["small"], None] for x in lines],
                          [[q, 1.0] for _, _, q in ROWS], [[0.0, 1.0]] * len(ROWS), rounds=20)
    assert float(shown.group(1)) == pytest.approx(again.napgr["cascade"], abs=1e-3)  # replayed outside tierwise: the same figure
    assert float(shown.group(2)) > 0  # escalating exactly the refusals beats any prompt threshold here


@pytest.mark.parametrize(("edit", "message"), [
    ({"version": 2}, "version 2; this tierwise reads version 1"),
    ({"format": "pickle"}, "not a tierwise verifier"),
    ({"intercept": float("nan")}, "finite"),
    ({"coef_hash": [0.0] * 3}, "wrong length"),
    ({"dense": ["answer_chars"]}, "dense features"),
])
def test_a_bad_verifier_file_is_a_clear_error_at_load(tmp_path: Path, edit: dict[str, Any], message: str) -> None:
    data = json.loads(hand_made(tmp_path / "v.json").read_text())
    (tmp_path / "bad.json").write_text(json.dumps({**data, **edit}))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_verifier(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="cannot read verifier"):
        load_verifier(tmp_path / "missing.json")


def test_an_answer_it_cannot_score_is_no_signal(tmp_path: Path) -> None:
    v = load_verifier(hand_made(tmp_path / "v.json"))
    assert v.score([{"role": "user", "content": "hi"}], None) is None  # type: ignore[arg-type]
    assert v.score([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "x" * 200_000) is not None  # long and multi-part: scored


def test_the_router_escalates_under_the_bar_bills_and_holds_both_calls(server: LocalOpenAIServer, ledger_url: str, tmp_path: Path) -> None:
    server.scripts["m-small"].extend(["I'm sorry, I can't help with that.", "6 * 7 = 42."])
    server.scripts["m-flash"].append("It is 42: six sevens.")
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7],
                                     "escalation": {"verifier": str(hand_made(tmp_path / "v.json"))},
                                     "tenants": {"acme": {"budget_usd": "1", "period": "total"}}})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        ask = [{"role": "user", "content": "What is 6 times 7?"}]
        resp = router.complete(ask, tenant="acme", max_tokens=50)
        assert resp.route.tier == "flash" and "verifier score 0.00 under small's bar 0.50" in resp.route.reason
        assert [a.outcome for a in resp.route.attempts] == ["check_failed", "ok"]
        assert router.ledger.spent("acme") == resp.route.cost_usd > 0 and len(router.ledger.entries("acme")) == 2
        kept = router.complete(ask, tenant="acme", max_tokens=50)  # a plain answer scores sigmoid(2): kept on small
        assert kept.route.tier == "small" and [a.outcome for a in kept.route.attempts] == ["ok"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="not a tierwise verifier"):
        Router(RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "escalation": {"verifier": str(bad)}}))


def test_calibrate_chooses_thresholds_and_bars_together_and_the_config_loads(tmp_path: Path, capsys: Any) -> None:
    data, vfile = write_set(tmp_path / "set.jsonl", ROWS), hand_made(tmp_path / "v.json")
    base = tmp_path / "base.yaml"
    base.write_text(json.dumps({"tiers": [{"name": "small", "models": [{"model": "openai/m-small", "input_cost_per_token": "0.0000001",
                                                                         "output_cost_per_token": "0.0000004"}]},
                                          {"name": "frontier", "models": [{"model": "openai/m-big", "input_cost_per_token": "0.00001",
                                                                            "output_cost_per_token": "0.00004"}]}]}))
    args = ["--data", str(data), "--tiers", TIERS, "--weights", "heuristic", "--target", "quality=0.95", "--config", str(base)]
    assert tierwise(["calibrate", *args, "--out", str(tmp_path / "plain.yaml")]) == 0
    plain = float(re.search(r"cost ([\d.e-]+)", capsys.readouterr().out).group(1))  # type: ignore[union-attr]
    assert tierwise(["calibrate", *args, "--verifier", str(vfile), "--out", str(tmp_path / "cascade.yaml")]) == 0
    said = capsys.readouterr().out
    cascade = float(re.search(r"cost ([\d.e-]+)", said).group(1))  # type: ignore[union-attr]
    # Only the refusals (a third) need the top tier; the bar sends exactly those up, the prompt cannot tell them.
    assert cascade == pytest.approx(1 / 3, abs=0.01) and plain > 0.9, said
    config = RouterConfig.from_file(str(tmp_path / "cascade.yaml"))
    assert config.escalation.verifier == str(vfile) and 0 < config.escalation.bars["small"] <= 0.8
    assert sum(q for _, _, q in ROWS) / len(ROWS) < 0.95  # the set's small tier alone would miss the target
