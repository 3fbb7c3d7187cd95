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
