"""Routing policies: pure functions from a complexity score and a budget to a plan of tiers."""

from policies._calibrate import Calibration, calibrate, sweep
from policies._policy import BudgetView, Plan, Policy, ThresholdPolicy

__all__ = ["BudgetView", "Calibration", "Plan", "Policy", "ThresholdPolicy", "calibrate", "sweep"]
