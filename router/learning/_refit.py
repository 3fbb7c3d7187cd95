"""One refit: train on the labels warm-started from the prior, keep it only if it beats the model in
force on held-back labels, then re-calibrate the thresholds to the target on the labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from classifiers import Classifier, LinearClassifier, Row

HOLD_EVERY = 5  # every fifth label is held back to judge a refit against the model it would replace


@dataclass(frozen=True)
class Refit:
    """The outcome of one refit: the model and thresholds to use, and whether they changed."""

    classifier: Classifier
    thresholds: tuple[float, ...]
    swapped: bool
    labels: int
    loss_old: float | None = None
    loss_new: float | None = None


def _gap_loss(clf: Classifier, rows: Sequence[Row], tiers: Sequence[str]) -> float:
    """Log-loss of the scores against max(q_top - q_cheapest, 0): what the score claims to be."""
    import numpy as np

    from classifiers._fit import soft_log_loss

    y = np.array([max(r.outcomes[tiers[-1]].quality - r.outcomes[tiers[0]].quality, 0.0) for r in rows])
    return soft_log_loss(y, np.array(scores_of(clf, rows)), np.ones(len(rows)))


def _score_features(clf: Classifier, row: Row) -> float:
    from classifiers._train import row_features

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

    The new model replaces `current` only when its loss on the held-back labels is lower; either way
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
            candidate = train(fit, tiers=list(tiers), prior=prior, per_source=False, seed=seed, c_grid=(0.3, 1.0, 3.0))
        except ValueError:  # the labels hold one class only so far: nothing to learn yet
            candidate = None
        if candidate is not None:
            old, new = _gap_loss(current, held, tiers), _gap_loss(candidate, held, tiers)
            if new < old:
                keep, swapped = candidate, True
    ths = tuple(thresholds)
    whole = [r for r in usable if all(t in r.outcomes and r.outcomes[t].cost_usd is not None for t in tiers)]  # enough to calibrate on
    if len(whole) >= 20:
        quality = [[r.outcomes[t].quality for t in tiers] for r in whole]
        cost = [[r.outcomes[t].cost_usd or 0.0 for t in tiers] for r in whole]
        if any(any(c) for c in cost) and sum(q[-1] for q in quality) > 0:
            ths = calibrate(scores_of(keep, whole), quality, cost, "quality", quality_target).thresholds
    return Refit(keep, ths, swapped, len(usable), old, new)
