"""Offline evaluation: replay a labelled prompt set through the classifier and policy, and report
cost against quality with the metrics the field publishes.

    from router.evaluate import evaluate
    report = evaluate(rows, tiers=["mistral-7b", "gpt-3.5", "gpt-4"], classifier=default_classifier())
    report.least_cost_share[0.95], report.napgr, report.gap_closed, report.apgr, report.to_dict(), report.text()
"""

from router.evaluate._cascade import cascade_napgr
from router.evaluate._metrics import (
    aiq,
    apgr,
    cpt,
    least_cost_for_quality,
    random_least_cost,
    strong_share_curve,
)
from router.evaluate._napgr import NapgrResult, napgr, oracle_scores
from router.evaluate._replay import evaluate, evaluate_file, matrices, outcome_cost, score_all
from router.evaluate._report import Report

__all__ = [
    "NapgrResult",
    "Report",
    "aiq",
    "apgr",
    "cascade_napgr",
    "cpt",
    "evaluate",
    "evaluate_file",
    "least_cost_for_quality",
    "matrices",
    "napgr",
    "oracle_scores",
    "outcome_cost",
    "random_least_cost",
    "score_all",
    "strong_share_curve",
]
