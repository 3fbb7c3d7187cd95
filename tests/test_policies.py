from __future__ import annotations

from decimal import Decimal

import pytest

from policies import BudgetView, Plan, ThresholdPolicy


def test_thresholds_map_scores_to_first_tier_and_ladder() -> None:
    p = ThresholdPolicy(["s", "f", "x"], [0.3, 0.7])
    assert p.plan(0.0, BudgetView()) == Plan(("s", "f", "x"), "score 0.000 < 0.300: s")
    assert p.plan(0.5, BudgetView()).reason == "score 0.500 >= 0.300 and < 0.700: f"  # the score, the thresholds, the tier
    assert p.plan(0.3, BudgetView()).tiers == ("f", "x")
    assert p.plan(0.99, BudgetView()).tiers == ("x",)


def test_low_budget_closes_top_tiers() -> None:
    p = ThresholdPolicy(["s", "f", "x"], [0.3, 0.7], downgrade={0.5: 1, 0.1: 2})
    rich = BudgetView(Decimal(10), Decimal(9))
    low = BudgetView(Decimal(10), Decimal(4))
    broke = BudgetView(Decimal(10), Decimal("0.5"))
    assert p.plan(0.9, rich).tiers == ("x",)
    assert p.plan(0.9, low).tiers == ("f",)
    assert p.plan(0.1, low).tiers == ("s", "f")
    assert p.plan(0.9, broke).tiers == ("s",)


def test_invalid_policies_raise() -> None:
    with pytest.raises(ValueError):
        ThresholdPolicy([], [])
    with pytest.raises(ValueError):
        ThresholdPolicy(["a", "b"], [0.5, 0.6])
    with pytest.raises(ValueError):
        ThresholdPolicy(["a", "b", "c"], [0.7, 0.2])
    with pytest.raises(ValueError):
        ThresholdPolicy(["a", "b"], [0.5]).plan(float("nan"), BudgetView())


def test_cascade_paths_pay_every_tier_tried_and_the_checks_own_cost() -> None:
    from policies import NEVER, cascade_paths

    quality, cost = [[0.0, 1.0], [1.0, 1.0]], [[1.0, 10.0], [1.0, 10.0]]
    answer = [[0.2, 1.0], [0.9, 1.0]]  # row 0's cheap answer scores under the bar, row 1's above it
    q, c = cascade_paths(answer, quality, cost, [0.5], extra=[[0.5, 0.0], [0.5, 0.0]])
    assert q == [[1.0, 1.0], [1.0, 1.0]] and c == [[11.5, 10.0], [1.5, 10.0]]  # start small: its call, the check, then the top
    q, c = cascade_paths(answer, quality, cost, [NEVER], extra=[[0.5, 0.0], [0.5, 0.0]])
    assert q == [[0.0, 1.0], [1.0, 1.0]] and c == [[1.0, 10.0], [1.0, 10.0]]  # unchecked: nothing escalates, nothing extra
    q, c = cascade_paths(answer, quality, cost, [0.5], reuse=[[True, False], [True, False]])
    assert c[0][0] == 1.0  # the answer the check bought is the next tier's: escalating pays nothing more


def test_calibrate_cascade_meets_the_target_cheaper_than_thresholds_alone() -> None:
    from policies import calibrate, calibrate_cascade

    scores = [0.1, 0.2, 0.3, 0.4]  # the prompt cannot tell which cheap answer fails
    quality, cost = [[1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]], [[0.0, 1.0]] * 4
    answer: list[list[float | None]] = [[0.9, None], [0.1, None], [0.8, None], [0.3, None]]
    plain = calibrate(scores, quality, cost, "quality", 1.0)
    cascade = calibrate_cascade(scores, answer, quality, cost, "quality", 1.0)
    assert plain.cost == 0.75 and cascade.quality == 1.0 and cascade.cost == 0.5 and cascade.bars[0] > 0.1  # row 2 escalates
