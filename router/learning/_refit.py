"""One refit: candidates compared by cross-validation on the labels (`_select`), the one chosen
swapped in only when it beats the model in force beyond noise, and only then the thresholds
re-calibrated to the target on the labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from classifiers import Classifier, LinearClassifier, Row
from router.learning._select import auc, needs_better, scores_of, select

MIN_LABELS = 100  # fewer labels than this never swap the model in force


@dataclass(frozen=True)
class Refit:
    """The outcome of one refit: the model and thresholds to use, and whether they changed."""

    classifier: Classifier
    thresholds: tuple[float, ...]
    swapped: bool
    labels: int
    auc_old: float | None = None  # ranking of the labels by the model in force (out of fold)
    auc_new: float | None = None  # and by the candidate chosen (out of fold)
    candidates: dict[str, tuple[float, float]] = field(default_factory=dict)  # CV AUC (mean, standard error) of each
    why: str = ""


def _gaps(rows: Sequence[Row], tiers: Sequence[str]) -> Any:
    import numpy as np

    return np.array([r.outcomes[tiers[-1]].quality - r.outcomes[tiers[0]].quality for r in rows])


CONFIDENCE = 0.95  # how sure the paired bootstrap must be that a candidate ranks better before it is swapped in


def better(old: Any, new: Any, gaps: Any, rounds: int = 300, seed: int = 0, weights: Any = None) -> tuple[bool, float, float]:
    """Whether the new scores rank the labels better: in at least CONFIDENCE of paired bootstrap
    rounds AUC(new) > AUC(old), each label counted by its sampling weight. Returns (verdict, AUC old, AUC new)."""
    import numpy as np

    old, new, needs = np.asarray(old), np.asarray(new), np.asarray(gaps) > 1e-9
    w = np.ones(len(needs)) if weights is None else np.asarray(weights, dtype=float)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(rounds):
        i = rng.integers(0, len(needs), len(needs))
        diffs.append(auc(new[i], needs[i], w[i]) - auc(old[i], needs[i], w[i]))
    return bool(np.percentile(diffs, 100 * (1 - CONFIDENCE)) > 0), auc(old, needs, w), auc(new, needs, w)


def refit(
    labels: Sequence[Row],
    tiers: Sequence[str],
    current: Classifier,
    prior: LinearClassifier,
    thresholds: Sequence[float],
    quality_target: float = 0.95,
    seed: int = 0,
) -> Refit:
    """Choose among the model in force, the prior, warm starts and a model trained alone by
    cross-validation on `labels` (outcomes keyed by the names in `tiers`, cheapest first); a
    candidate replaces `current` only with at least MIN_LABELS labels and when its out-of-fold
    ranking beats the model in force's in CONFIDENCE of paired bootstrap rounds. The thresholds
    move only with a swapped model (re-calibrated to `quality_target` of always-top quality)."""
    from policies import calibrate

    usable = [r for r in labels if tiers[0] in r.outcomes and tiers[-1] in r.outcomes]  # enough to train on
    ths = tuple(thresholds)
    if len(usable) < MIN_LABELS:
        return Refit(current, ths, False, len(usable), why=f"kept the model in force: {len(usable)} labels, a swap needs {MIN_LABELS}")
    sel = select(usable, tiers, current, prior, seed=seed)
    weights = [r.weight for r in usable]  # sampling weights: labels stand for the traffic, not for how they were sampled
    old = auc(sel.oof["in force"], needs_better(usable, tiers), weights)
    new = auc(sel.oof[sel.chosen], needs_better(usable, tiers), weights) if sel.chosen in sel.oof else None
    if sel.chosen == "in force":
        return Refit(current, ths, False, len(usable), old, new, sel.candidates, f"kept the model in force: {sel.why}")
    swap, _, _ = better(sel.oof["in force"], sel.oof[sel.chosen], _gaps(usable, tiers), seed=seed, weights=weights)
    if not swap:
        return Refit(current, ths, False, len(usable), old, new, sel.candidates,
                     f"candidate {sel.chosen} kept out: {sel.why}, but not better than the model in force in {CONFIDENCE:.0%} "
                     "of paired bootstrap rounds")
    whole = [r for r in usable if all(t in r.outcomes and r.outcomes[t].cost_usd is not None for t in tiers)]  # enough to calibrate on
    quality = [[r.outcomes[t].quality for t in tiers] for r in whole]
    cost = [[r.outcomes[t].cost_usd or 0.0 for t in tiers] for r in whole]
    if len(whole) >= 20 and any(any(c) for c in cost) and sum(q[-1] for q in quality) > 0:
        ths = calibrate(scores_of(sel.classifier, whole), quality, cost, "quality", quality_target, [r.weight for r in whole]).thresholds
        how = "thresholds calibrated on the labels"
    else:  # too few labels carry every tier to calibrate: each tier keeps its share of the labelled traffic
        ths = mapped(sel.oof["in force"], scores_of(sel.classifier, usable), weights, thresholds)
        how = "thresholds moved to keep each tier's share of the labelled traffic (too few labels carry every tier to calibrate)"
    return Refit(sel.classifier, ths, True, len(usable), old, new, sel.candidates, f"candidate {sel.chosen} swapped in: {sel.why}; {how}")


def mapped(old: Sequence[float], new: Sequence[float], weights: Sequence[float], thresholds: Sequence[float]) -> tuple[float, ...]:
    """Thresholds for the `new` scores that start each tier on the same (weighted) share of the
    requests as `thresholds` did on the `old` scores: a model swapped in without enough labels to
    calibrate keeps the mix of tiers, and so the spend, instead of reading the old cut points on
    another scale."""
    import numpy as np

    o, n, w = np.asarray(old, dtype=float), np.asarray(new, dtype=float), np.asarray(weights, dtype=float)
    order = np.argsort(n, kind="mergesort")
    ranked, below = n[order], np.cumsum(w[order]) / w.sum()  # share of the weight at or under each new score
    out = []
    for t in thresholds:
        share = float(w[o < t].sum() / w.sum())
        k = int(np.searchsorted(below, share - 1e-12))  # the first score that takes the share past it starts the next tier
        out.append(float(ranked[k]) if share > 0 and k < len(ranked) else float(ranked[0]) if share <= 0 else float(ranked[-1]) + 1e-9)
    return tuple(out)
