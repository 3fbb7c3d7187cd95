"""Model selection that never hurts: the model in force, the prior, warm starts from the prior at
several penalty strengths and a model trained on the labels alone, compared by K-fold
cross-validation on the labels (how well each ranks the requests that needed a better tier: AUC),
with the one-standard-error rule: the model in force (then the prior) stays unless a trained
candidate beats it by more than one standard error; else the best trained candidate wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from classifiers import Classifier, LinearClassifier, Row

WARM_C = (0.03, 0.1, 0.3, 1.0)  # pulls toward the prior, strongest first
FOLDS = 5


@dataclass
class Selection:
    """The candidates' cross-validated AUC (mean, standard error), the one chosen and why, and the
    out-of-fold scores of the chosen one and of the model in force (for a paired test)."""

    chosen: str
    classifier: Classifier
    candidates: dict[str, tuple[float, float]]
    why: str
    oof: dict[str, list[float]] = field(default_factory=dict)


def needs_better(rows: Sequence[Row], tiers: Sequence[str]) -> list[bool]:
    """Whether each labelled request did better on the top tier than on the cheapest."""
    return [r.outcomes[tiers[-1]].quality - r.outcomes[tiers[0]].quality > 1e-9 for r in rows]


def auc(scores: Any, needs: Any, weights: Any = None) -> float:
    """The chance a request that needed a better tier outscores one that did not (ties half), each
    request counted by its sampling weight (1 each by default)."""
    import numpy as np

    needs = np.asarray(needs, dtype=bool)
    w = np.ones(len(needs)) if weights is None else np.asarray(weights, dtype=float)
    pos, neg = float(w[needs].sum()), float(w[~needs].sum())
    if pos <= 0 or neg <= 0:
        return 0.5
    order = np.argsort(np.asarray(scores, dtype=float), kind="mergesort")
    ranked = np.asarray(scores, dtype=float)[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # each run of tied scores
    pos_in = np.add.reduceat(np.where(needs[order], w[order], 0.0), starts)
    neg_in = np.add.reduceat(np.where(needs[order], 0.0, w[order]), starts)
    below = np.cumsum(neg_in) - neg_in
    return float((pos_in * (below + neg_in / 2)).sum() / (pos * neg))


def scores_of(clf: Classifier, rows: Sequence[Row]) -> list[float]:
    """Scores of labelled rows, from their stored features when they carry no prompt."""
    from classifiers import row_features

    return [clf.score_features(*row_features(r)) if isinstance(clf, LinearClassifier) and "features" in r.extra else clf.score(r.messages)
            for r in rows]


def _trainer(tiers: Sequence[str], prior: LinearClassifier | None, c: float | None, seed: int) -> Any:
    from classifiers import train

    def fit(rows: Sequence[Row]) -> Classifier:
        grid = (c,) if c is not None else (0.1, 0.3, 1.0)
        return train(list(rows), tiers=list(tiers), prior=prior, per_source=False, seed=seed, c_grid=grid)

    return fit


def select(rows: Sequence[Row], tiers: Sequence[str], current: Classifier | None, prior: LinearClassifier | None,
           folds: int = FOLDS, seed: int = 0) -> Selection:
    """Cross-validate every candidate on `rows` and choose by the one-standard-error rule; the
    chosen trained candidate is refitted on all rows."""
    import numpy as np

    needs = np.asarray(needs_better(rows, tiers))
    w = np.asarray([r.weight for r in rows], dtype=float)  # sampling weights: every fit and score counts a row as it stands
    k = max(2, min(folds if len(rows) >= 500 else 3, len(rows) // 10))  # fewer folds while labels are few: refits stay quick
    fold = np.random.default_rng(seed).permutation(len(rows)) % k
    fixed: dict[str, Classifier] = {}
    if current is not None:
        fixed["in force"] = current
    if prior is not None and prior is not current:
        fixed["prior"] = prior
    trained = {**({f"warm C={c}": _trainer(tiers, prior, c, seed) for c in WARM_C} if prior is not None else {}),
               "alone": _trainer(tiers, None, None, seed)}
    oof = {name: np.asarray(scores_of(clf, rows)) for name, clf in fixed.items()}
    for name, fit in trained.items():
        scores = np.zeros(len(rows))
        try:
            for f in range(k):
                held = fold == f
                model = fit([r for r, h in zip(rows, held, strict=True) if not h])
                scores[held] = scores_of(model, [r for r, h in zip(rows, held, strict=True) if h])
        except ValueError:  # a fold with one class only: this candidate cannot be judged yet
            continue
        oof[name] = scores
    per_fold = {name: [auc(s[fold == f], needs[fold == f], w[fold == f]) for f in range(k)] for name, s in oof.items()}
    table = {name: (float(np.mean(v)), float(np.std(v) / np.sqrt(k))) for name, v in per_fold.items()}
    best = max(table, key=lambda n: table[n][0])
    # One standard error: a model already fitted (in force, then the prior) stays unless a trained one beats it by more.
    chosen = next((n for n in fixed if n in table and table[n][0] >= table[best][0] - table[best][1]), best)
    why = (f"{chosen} chosen by {k}-fold CV: AUC {table[chosen][0]:.3f} (best {best} {table[best][0]:.3f} "
           f"± {table[best][1]:.3f}; a model in hand stays unless beaten by more than one standard error)")
    model = fixed[chosen] if chosen in fixed else trained[chosen](rows)
    return Selection(chosen, model, table, why, {name: list(map(float, s)) for name, s in oof.items()})
