"""The learning loop trains the answer verifier: labels keep their answers' verifier features, a refit
swaps in a verifier only when it beats the one in force, and escalation then uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import local_tiers

from router import Router, RouterConfig
from router.learning import refit_verifier
from router.ledger import Label
from router.testing import LocalOpenAIServer

HEDGED = "I am not sure, maybe it is something like that, perhaps, I think, possibly."


def _responder(model: str, messages: list[dict[str, Any]]) -> Any:
    text = str(messages[-1]["content"])
    if "[REQUEST]" in text:  # the judge: a hedged answer is poor, a plain one good
        return "2" if "not sure" in text.split("[ANSWER]")[-1] else "9"
    if model == "m-small":  # the cheap tier hedges on the odd questions
        return HEDGED if "odd" in text else "The answer is 42."
    return f"The answer is 42, says {model}."


def _config(url: str, ledger: str, **learning: Any) -> RouterConfig:
    return RouterConfig.from_dict({
        "tiers": local_tiers(url), "ledger": ledger, "thresholds": [0.99, 0.995], "budget_wait_s": 0, "checks": [],
        "learning": {"shadow_rate": 1.0, "judge": "frontier", "budget_usd": "5.00", "downward": True, "verifier": True,
                     "refit_every": 100, "pickup_s": 0, **learning},
    })


def test_downward_labels_train_a_verifier_that_then_escalates_a_poor_cheap_answer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with LocalOpenAIServer(responder=_responder) as server:
        router = Router(_config(server.url, url))
        assert router._core.verifier is None
        for i in range(100):  # a stronger tier answers: each buys the cheap tier's answer, graded against it
            router.complete([{"role": "user", "content": f"question {i} {'odd' if i % 2 else 'even'}"}], tenant="acme", tier="flash")
        router.learning.close()  # the labels and the refit run on the loop's threads
        labels = router.ledger.labels()
        assert len(labels) == 100 and all(set(lab.features["answers"]) == {"small"} for lab in labels)
        assert all(lab.features["answers"]["small"]["h"] == {} for lab in labels)  # no hashed words without store_prompts
        last = router.learning.state()["refits"][-1]["verifier"]
        assert last["swapped"] and last["log_loss_new"] < last["log_loss_old"] and "swapped in" in last["why"]
        assert router._core.verifier_for("acme") is not None and router._core.verifier is None  # acme's own
        resp = router.complete([{"role": "user", "content": "one more odd question"}], tenant="acme")
        assert resp.route.tier == "flash" and "verifier score" in resp.route.reason  # the hedged cheap answer escalated
        plain = router.complete([{"role": "user", "content": "one more even question"}], tenant="acme")
        assert plain.route.tier == "small"
        # Another tenant's answers are not scored by what acme's labels taught.
        assert router.complete([{"role": "user", "content": "one more odd question"}], tenant="globex").route.tier == "small"
        # A second instance on the ledger picks the published verifier up on its next request.
        other = Router(_config(server.url, url, shadow_rate=0, judge=None, refit_every=0))
        other.complete([{"role": "user", "content": "hello"}], tenant="acme")
        other.learning.close()
        assert other._core.verifier_for("acme") is not None and other._core.verifier_for("globex") is None
        other.close()
        router.close()


def _label(i: int, quality: float, values: Any) -> Label:
    return Label(f"r{i}", "acme", "downward", {"small": quality, "frontier": 1.0}, {"answers": {"small": {"d": values, "h": {}}}})


def test_a_verifier_refit_needs_enough_answers_a_real_gain_and_readable_features() -> None:
    from router.verifier import FEATURES

    noise = [_label(i, float(i % 2), [0.5] * len(FEATURES)) for i in range(200)]  # nothing in the features tells good from bad
    kept = refit_verifier(noise, None)
    assert not kept.swapped and kept.verifier is None and "kept out" in kept.why
    few = refit_verifier(noise[:50], None)
    assert not few.swapped and "a swap needs 100" in few.why
    # Another version's features (a different length), junk and non-finite values: left out, never an error.
    odd = [_label(0, 1.0, [0.1, 0.2]), _label(1, 0.0, "junk"), _label(2, 1.0, [float("nan")] * len(FEATURES)),
           Label("r3", "acme", "downward", {"small": 1.0}, {"answers": "junk"})]
    assert refit_verifier(odd, None).answers == 0


def test_a_verifier_that_predicts_well_stays_out_when_its_escalations_do_not_pay() -> None:
    """The top tier fails where the cheap one fails: the verifier tells good answers from bad, but an
    escalation buys nothing, so it is kept out (on RouterBench in simulate, a verifier at bar 0.5
    doubled the spend for no quality before this rule)."""
    from router.learning import Escalation
    from router.verifier import FEATURES

    good, bad = [0.9] * len(FEATURES), [0.1] * len(FEATURES)
    labels = [Label(f"r{i}", "acme", "downward", {"small": float(i % 2), "frontier": float(i % 2)},
                    {"answers": {"small": {"d": good if i % 2 else bad, "h": {}}}}, {"small": 1.0, "frontier": 10.0}) for i in range(200)]
    how = Escalation(["small", "frontier"], [0.1] * len(labels), [0.5])
    assert refit_verifier(labels, None).swapped  # without the rule: swapped in on its fit alone
    kept = refit_verifier(labels, None, escalation=how)
    assert not kept.swapped and kept.verifier is None and "kept out: it predicts better, but escalating under bar 0.50" in kept.why
    lifted = [Label(lab.request_id, lab.tenant, lab.source, {**lab.quality, "frontier": 1.0}, lab.features, lab.cost_usd) for lab in labels]
    assert refit_verifier(lifted, None, escalation=how).swapped  # where the top tier answers better, escalating pays


def test_a_request_the_cheapest_tier_answered_buys_one_grade_of_its_answer(tmp_path: Path) -> None:
    with LocalOpenAIServer(responder=_responder) as server:
        router = Router(_config(server.url, f"sqlite:///{tmp_path / 'l.db'}", refit_every=1))
        router.complete([{"role": "user", "content": "an even question"}], tenant="acme")
        router.learning.close()
        (label,) = router.ledger.labels()
        assert label.source == "answer" and set(label.quality) == {"small"} and set(label.features["answers"]) == {"small"}
        refit = router.learning.state()["refits"][-1]
        assert refit["labels"] == 0 and refit["verifier"]["answers"] == 1  # it teaches the verifier, not the prompt model
        assert [e.tier for e in router.ledger.entries("tierwise-learning")] == ["frontier"]  # the judge's one call, nothing else bought
        router.close()


def test_simulate_learns_a_verifier_from_cheap_labels_and_escalates_with_it() -> None:
    from classifiers import Outcome, Row, default_classifier
    from router.learning import simulate

    rows = [Row(id=f"q{i}", messages=[{"role": "user", "content": f"question {i}"}],
                outcomes={"small": Outcome(quality=float(i % 2 == 0), cost_usd=1.0, response="The answer is 42." if i % 2 == 0 else HEDGED),
                          "frontier": Outcome(quality=1.0, cost_usd=10.0, response="The answer is 42.")}) for i in range(600)]
    quality = [[r.outcomes[t].quality for t in ("small", "frontier")] for r in rows]
    cost = [[1.0, 10.0] for _ in rows]
    # Some requests (under half) start at the top: their downward labels price it, which showing that
    # escalations pay needs (the others' labels grade the cheap answer alone).
    scores = sorted(default_classifier().score(r.messages) for r in rows)
    quarter = min(x for x in scores if x > scores[len(scores) // 2])  # past the median and its ties
    assert 0.1 < sum(x >= quarter for x in scores) / len(scores) < 0.5
    args: dict[str, Any] = {"quality": quality, "cost": cost, "thresholds": [quarter], "shadow_rate": 1.0, "labels": 150, "downward": True,
                            "refit_every": 50, "judge_cost": 0.1}
    plain = simulate(rows, ["small", "frontier"], default_classifier(), **args)
    learned = simulate(rows, ["small", "frontier"], default_classifier(), verifier=True, **args)
    swapped = [r["verifier"] for r in learned.refits if r.get("verifier", {}).get("swapped")]
    assert swapped and "escalating under bar 0.50 gives quality" in swapped[0]["why"]
    assert learned.totals["quality_vs_top"] > plain.totals["quality_vs_top"] + 0.1  # hedged answers move up once it is in
    assert learned.totals["label_cost_vs_top"] < 0.03  # a label buys at most a cheap answer and a grade
    with pytest.raises(ValueError, match="bar must be in"):
        simulate(rows, ["small", "frontier"], default_classifier(), verifier=True, bar=1.5, **args)
