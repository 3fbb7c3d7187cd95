"""Labels that weigh as the traffic does and cost what they must: sampling weights in every fit and
calibration, each tier's share kept when a swapped model cannot be calibrated, downward labels
graded by their final answers without a judge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_learning import _config, _labels

from classifiers import Outcome, Row, default_classifier
from router import Router
from router.learning import refit
from router.testing import LocalOpenAIServer


def test_grade_locally_matches_final_answers_and_calls_the_judge_only_where_none_settles(tmp_path: Path) -> None:
    """`grade_locally`: a downward label whose cheap answer and served answer both settle on a final
    answer (a number, a choice letter) is graded by their match, with no judge call; prose goes to the judge."""
    judged: list[str] = []

    def responder(model: str, messages: list[dict[str, Any]]) -> Any:
        text = str(messages[-1]["content"])
        if "[REFERENCE]" in text:
            judged.append(text)
            return "7"
        if "sum" in text:
            return "So the total is 12." if model == "m-small" else "The total is 12."
        if "product" in text:
            return "The answer is 30." if model == "m-small" else "The answer is 35."
        return "A gentle essay." if model == "m-small" else "A longer essay."

    with LocalOpenAIServer(responder=responder) as server:
        router = Router(_config(server.url, f"sqlite:///{tmp_path / 'l.db'}", downward=True, grade_locally=True))
        for text in ("the sum of 5 and 7", "the product of 5 and 7", "an essay on rain"):
            router.complete([{"role": "user", "content": text}], tenant="acme", tier="flash")
            router.learning.close()
        labels = router.ledger.labels()
    assert [lab.quality["small"] for lab in labels] == [1.0, 0.0, 0.7]  # matched, differed, judged
    assert [lab.features.get("g") for lab in labels] == ["local", "local", None]
    assert len(judged) == 1 and "essay" in judged[0]  # one judge call, for the answers that settle on nothing
    router.close()


def test_labels_weigh_as_the_traffic_does_a_label_of_weight_two_counts_as_two_labels() -> None:
    """Sampling favours sparse score ranges; each label's weight (rate over its chance) is carried into
    the ranking a refit compares and into the thresholds it calibrates, so a weight of 2 is two labels."""
    from policies import calibrate

    prior = default_classifier()
    tiers = ["small", "flash", "frontier"]
    rows = _labels(240, signal=False, seed=3)
    twice = [2.0 if int(r.id) % 3 == 0 else 1.0 for r in rows]
    weighted = [Row(r.id, r.messages, r.outcomes, weight=w) for r, w in zip(rows, twice, strict=True)]
    doubled = rows + [Row(f"{r.id}b", r.messages, r.outcomes) for r, w in zip(rows, twice, strict=True) if w == 2.0]
    as_weighted, as_doubled, plain = (refit(x, tiers, prior, prior, [0.2, 0.6]) for x in (weighted, doubled, rows))
    assert as_weighted.auc_old == pytest.approx(as_doubled.auc_old) and as_weighted.auc_old != pytest.approx(plain.auc_old)
    scores = [prior.score(r.messages) for r in rows]
    quality = [[r.outcomes[t].quality for t in tiers] for r in rows]
    cost = [[r.outcomes[t].cost_usd or 0.0 for t in tiers] for r in rows]
    extra = [i for i, w in enumerate(twice) if w == 2.0]
    by_weight = calibrate(scores, quality, cost, "quality", 0.9, twice)
    by_rows = calibrate(scores + [scores[i] for i in extra], quality + [quality[i] for i in extra], cost + [cost[i] for i in extra], "quality", 0.9)
    assert (by_weight.cost, by_weight.quality) == pytest.approx((by_rows.cost, by_rows.quality))
    with pytest.raises(ValueError, match="weights"):
        calibrate(scores, quality, cost, weights=[-1.0] * len(scores))


def test_a_model_swapped_in_without_labels_to_calibrate_on_keeps_each_tiers_share() -> None:
    """Downward labels carry the cheapest and the top tier only: with three tiers none can calibrate
    thresholds. The old cut points would read the new model's scores on another scale (in simulate a
    swap moved RouterBench to 6x the prior's spend at lower quality); each tier keeps its share instead."""
    prior = default_classifier()
    tiers = ["small", "flash", "frontier"]
    rows = [Row(r.id, r.messages, {t: o for t, o in r.outcomes.items() if t != "flash"}) for r in _labels(240, signal=True)]
    old = (0.2, 0.6)
    result = refit(rows, tiers, prior, prior, old)
    assert result.swapped and "keep each tier's share" in result.why
    before = [prior.score(r.messages) for r in rows]
    after = [result.classifier.score(r.messages) for r in rows]
    for t_old, t_new in zip(old, result.thresholds, strict=True):
        assert abs(sum(s < t_new for s in after) - sum(s < t_old for s in before)) <= 3  # the same share, to a few ties


def test_simulate_grades_downward_labels_locally_for_the_price_of_the_cheap_call() -> None:
    from router.learning import simulate

    rows = [Row(id=f"q{i}", messages=[{"role": "user", "content": f"what is {i} times 3"}],
                outcomes={"small": Outcome(float(i % 3 > 0), cost_usd=1.0, response=f"It is {3 * i + (i % 3 == 0)}."),
                          "frontier": Outcome(1.0, cost_usd=10.0, response=f"The answer is {3 * i}.")}) for i in range(300)]
    args: dict[str, Any] = {"quality": [[float(i % 3 > 0), 1.0] for i in range(300)], "cost": [[1.0, 10.0]] * 300, "thresholds": [0.0],
                            "shadow_rate": 1.0, "labels": 60, "downward": True, "refit_every": 0, "judge_cost": 2.0}
    judged = simulate(rows, ["small", "frontier"], default_classifier(), **args)
    local = simulate(rows, ["small", "frontier"], default_classifier(), grade_locally=True, **args)
    assert judged.totals["labels"] == local.totals["labels"] == 60  # every request starts at the top: 60 downward labels
    assert local.totals["label_cost_vs_top"] == pytest.approx(judged.totals["label_cost_vs_top"] / 3)  # the cheap call (1), not + a grade (2)


def test_each_tenant_has_its_own_refit_slot_and_published_models(any_ledger_url: str) -> None:
    """Learning keeps tenants apart: a tenant's labels, refit slot and models are its own; the
    deployment's slot and models (learning.shared) are apart from every tenant's."""
    from router import RouterConfig
    from router.ledger import Label, open_ledger

    ledger = open_ledger(any_ledger_url, RouterConfig().budget_for)
    for i, tenant in enumerate(["acme", "acme", "acme", "globex"]):
        ledger.add_label(Label(f"r{i}", tenant, "feedback", {"small": 1.0}, {}), 1000.0 + i)
    assert (ledger.label_count("acme"), ledger.label_count("globex"), ledger.label_count()) == (3, 1, 4)
    assert [lab.request_id for lab in ledger.labels(tenant="globex")] == ["r3"]
    assert ledger.claim_refit("one", 2000.0, 3, tenant="acme") == 3
    assert ledger.claim_refit("two", 2000.0, 3, tenant="acme") is None  # held by the first instance
    assert ledger.claim_refit("two", 2000.0, 1, tenant="globex") == 1  # another tenant's slot is free
    assert ledger.claim_refit("two", 2000.0, 4) == 4  # so is the deployment's
    ledger.release_refit("one", 3, tenant="acme")
    assert (ledger.labels_at_last_refit("acme"), ledger.labels_at_last_refit()) == (3, 0)
    assert ledger.claim_refit("two", 2001.0, 1, tenant="acme") is None  # no new acme label since its refit
    ledger.save_model({"w": 1}, [0.5], 3, 2002.0, tenant="acme")
    assert ledger.models() == [] and ledger.latest_model() is None  # a version that reads only these never installs it
    assert [(m.tenant, m.weights, m.thresholds) for m in ledger.models(tenants=True)] == [("acme", {"w": 1}, [0.5])]
    # An instance catching up reads each tenant's newest classifier and verifier, not every refit since.
    ledger.save_model({"w": 2}, [0.6], 4, 2003.0, tenant="acme")
    ledger.save_model({"format": "tierwise-verifier", "v": 1}, [], 4, 2004.0, tenant="acme")
    ledger.save_model({"w": 3}, [0.7], 1, 2005.0, tenant="globex")
    found = ledger.models(tenants=True)
    assert [(m.tenant, m.weights.get("w", m.weights.get("v"))) for m in found] == [("acme", 2), ("acme", 1), ("globex", 3)]
    assert [m.tenant for m in ledger.models(found[0].id, tenants=True)] == ["acme", "globex"]  # what came after the cursor
    assert [m.tenant for m in ledger.models(0, 1, tenants=True)] == ["acme"]
    ledger.close()
