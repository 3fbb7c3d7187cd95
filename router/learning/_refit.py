"""One refit: train on the labels warm-started from the prior, keep it only if it beats the model in
force on held-back labels, then re-calibrate the thresholds to the target on the labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from classifiers import Classifier, LinearClassifier, Row

HOLD_EVERY = 4  # every fourth label is held back to judge a refit against the model it would replace
C_GRID = (0.03, 0.1, 0.3)  # strong pulls toward the prior: measured best from 200 to 1,500 labels (MMLU, RouterBench)


@dataclass(frozen=True)
class Refit:
    """The outcome of one refit: the model and thresholds to use, and whether they changed."""

    classifier: Classifier
    thresholds: tuple[float, ...]
    swapped: bool
    labels: int
    auc_old: float | None = None  # ranking of the held-back labels by the model in force
    auc_new: float | None = None  # and by the candidate


def _gaps(rows: Sequence[Row], tiers: Sequence[str]) -> Any:
    import numpy as np

    return np.array([r.outcomes[tiers[-1]].quality - r.outcomes[tiers[0]].quality for r in rows])


def _auc(scores: Any, needs: Any) -> float:
    """The chance a request that needed a better tier outscores one that did not (ties half)."""
    from scipy.stats import rankdata

    pos = needs.sum()
    neg = len(needs) - pos
    if pos == 0 or neg == 0:
        return 0.5
    ranks = rankdata(scores)
    return float((ranks[needs].sum() - pos * (pos + 1) / 2) / (pos * neg))


CONFIDENCE = 0.7  # how sure the paired bootstrap must be that a refit ranks better before it is swapped in


def better(old: Any, new: Any, gaps: Any, rounds: int = 300, seed: int = 0) -> tuple[bool, float, float]:
    """Whether the new scores rank the held-back labels better: in at least CONFIDENCE of paired
    bootstrap rounds AUC(new) > AUC(old). Returns (verdict, AUC old, AUC new). (95% kept good
    refits out: with a few hundred held-back labels, a real gain of 0.05 nAPGR does not reach it.)"""
    import numpy as np

    old, new, needs = np.asarray(old), np.asarray(new), np.asarray(gaps) > 1e-9
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(rounds):
        i = rng.integers(0, len(needs), len(needs))
        diffs.append(_auc(new[i], needs[i]) - _auc(old[i], needs[i]))
    return bool(np.percentile(diffs, 100 * (1 - CONFIDENCE)) > 0), _auc(old, needs), _auc(new, needs)


def _score_features(clf: Classifier, row: Row) -> float:
    from classifiers import row_features

    if isinstance(clf, LinearClassifier) and "features" in row.extra:
        return clf.score_features(*row_features(row))
    return clf.score(row.messages)


def scores_of(clf: Classifier, rows: Sequence[Row]) -> list[float]:
    """Scores of labelled rows, from their stored features when they carry no prompt."""
    return [_score_features(clf, r) for r in rows]


def refit(
    labels: Sequence[Row],
    tiers: Sequence[str],
    current: Classifier,
    prior: LinearClassifier,
    thresholds: Sequence[float],
    quality_target: float = 0.95,
    seed: int = 0,
) -> Refit:
    """Train on `labels` (outcomes keyed by the names in `tiers`, cheapest first) pulled toward `prior`.

    The new model replaces `current` only when it ranks the held-back labels better beyond noise; either way
    the thresholds of the model kept are re-calibrated to `quality_target` of always-top quality.
    """
    from classifiers import train
    from policies import calibrate

    usable = [r for r in labels if tiers[0] in r.outcomes and tiers[-1] in r.outcomes]  # enough to train on
    held = usable[::HOLD_EVERY]
    fit = [r for i, r in enumerate(usable) if i % HOLD_EVERY]
    keep, swapped, old, new = current, False, None, None
    if len(fit) >= 20 and len(held) >= 5:
        try:
            candidate = train(fit, tiers=list(tiers), prior=prior, per_source=False, seed=seed, c_grid=C_GRID)
        except ValueError:  # the labels hold one class only so far: nothing to learn yet
            candidate = None
        if candidate is not None:
            swap, old, new = better(scores_of(current, held), scores_of(candidate, held), _gaps(held, tiers), seed=seed)
            if swap:
                keep, swapped = candidate, True
    ths = tuple(thresholds)
    whole = [r for r in usable if all(t in r.outcomes and r.outcomes[t].cost_usd is not None for t in tiers)]  # enough to calibrate on
    if len(whole) >= 20:
        quality = [[r.outcomes[t].quality for t in tiers] for r in whole]
        cost = [[r.outcomes[t].cost_usd or 0.0 for t in tiers] for r in whole]
        if any(any(c) for c in cost) and sum(q[-1] for q in quality) > 0:
            ths = calibrate(scores_of(keep, whole), quality, cost, "quality", quality_target).thresholds
    return Refit(keep, ths, swapped, len(usable), old, new)
