"""Routing policies: pure functions from a complexity score and a budget to a plan of tiers."""

from policies._calibrate import Calibration, calibrate, sweep
from policies._cascade import BARS, NEVER, CascadeCalibration, calibrate_cascade, cascade_paths
from policies._policy import BudgetView, Plan, Policy, ThresholdPolicy

__all__ = [
    "BARS",
    "NEVER",
    "BudgetView",
    "Calibration",
    "CascadeCalibration",
    "Plan",
    "Policy",
    "ThresholdPolicy",
    "calibrate",
    "calibrate_cascade",
    "cascade_paths",
    "sweep",
]
