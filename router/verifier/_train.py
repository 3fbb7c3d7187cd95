"""Training a verifier on recorded answers (scikit-learn, at build time only).

Each answer of a tier below the top that a labelled set recorded is an example: its features, and
whether its quality reached 0.5. The penalty is chosen by K-fold cross-validation grouped by
prompt (a prompt's answers never sit on both sides of a fold), with the one-standard-error rule:
the strongest penalty whose log loss is within one standard error of the best.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router._errors import ConfigError
from router.verifier._features import DENSE, dense, hashed, prompt_text
from router.verifier._model import Verifier

PENALTIES = (0.03, 0.1, 0.3, 1.0, 3.0)  # C of the logistic regression, strongest penalty first


def examples(rows: Sequence[Any], tiers: Sequence[str]) -> tuple[list[tuple[list[dict[str, Any]], str]], list[int], list[str]]:
    """(messages, answer) pairs, labels and prompt ids from labelled rows: every recorded answer of
    the tiers below the top (`tiers` cheapest first)."""
    pairs: list[tuple[list[dict[str, Any]], str]] = []
    labels: list[int] = []
    groups: list[str] = []
    for row in rows:
        for tier in tiers[:-1]:
            outcome = row.outcomes.get(tier)
            if outcome is None or not isinstance(outcome.response, str):
                continue
            pairs.append((row.messages, outcome.response))
            labels.append(int(outcome.quality >= 0.5))
            groups.append(row.id)
    return pairs, labels, groups


def answer_scores(verifier: Verifier, rows: Sequence[Any], models: Sequence[str]) -> list[list[float | None]]:
    """Each tier's recorded answer on each row scored by the verifier (None: no answer); the top
    tier's is not scored (a cascade never escalates past it)."""
    out = []
    for r in rows:
        scores: list[float | None] = []
        for k, m in enumerate(models):
            text = r.outcomes[m].response
            scores.append(None if k == len(models) - 1 or not isinstance(text, str) else verifier.score(r.messages, text))
        out.append(scores)
    return out


Features = tuple[list[float], dict[int, float]]  # an answer's dense features and its hashed words


def features_of(messages: list[dict[str, Any]], answer: str, hash_dims: int) -> Features:
    """What the verifier reads of one answer: its dense features and hashed words."""
    prompt = prompt_text(messages)
    return dense(prompt, answer), hashed(prompt, answer, hash_dims)


def matrix(found: Sequence[Features], hash_dims: int) -> Any:
    """The sparse feature matrix [dense | hashed] of answers' features."""
    from scipy import sparse

    data, cols, indptr = [], [], [0]
    for values, words in found:
        row = [(i, v) for i, v in enumerate(values) if v] + sorted((len(DENSE) + k, v) for k, v in words.items() if 0 <= k < hash_dims)
        cols += [c for c, _ in row]
        data += [v for _, v in row]
        indptr.append(len(cols))
    return sparse.csr_matrix((data, cols, indptr), shape=(len(found), len(DENSE) + hash_dims))


def train_verifier(pairs: Sequence[tuple[list[dict[str, Any]], str]], labels: Sequence[int], groups: Sequence[str],
                   hash_dims: int = 4096, folds: int = 5, seed: int = 0, about: dict[str, Any] | None = None) -> Verifier:
    """Fit a verifier, the penalty chosen by grouped cross-validation; `about` goes into its file."""
    found = [features_of(messages, answer, hash_dims) for messages, answer in pairs]
    return fit_verifier(found, labels, groups, hash_dims, folds, seed, about)[0]


def fit_verifier(found: Sequence[Features], labels: Sequence[int], groups: Sequence[str], hash_dims: int, folds: int = 5,
                 seed: int = 0, about: dict[str, Any] | None = None, weights: Sequence[float] | None = None) -> tuple[Verifier, Any]:
    """`train_verifier` on answers' features: the verifier and its out-of-fold scores of them.
    `weights`: each answer's sampling weight, in every fit and loss (1 each by default)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import GroupKFold

    y = np.asarray(labels, dtype=int)
    if len(y) < 2 * folds or y.min() == y.max():
        raise ConfigError(f"a verifier needs good and bad answers to learn from: {len(y)} answers, {int(y.sum())} good")
    x = matrix(found, hash_dims)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    splits = list(GroupKFold(n_splits=min(folds, len(set(groups)))).split(x, y, groups))
    results = []
    for c in PENALTIES:
        losses, held = [], np.zeros(len(y))
        for fit_rows, test_rows in splits:
            if y[fit_rows].min() == y[fit_rows].max():
                continue
            model = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=seed).fit(x[fit_rows], y[fit_rows],
                                                                                                     sample_weight=w[fit_rows])
            held[test_rows] = model.predict_proba(x[test_rows])[:, 1]
            losses.append(log_loss(y[test_rows], held[test_rows], labels=[0, 1], sample_weight=w[test_rows]))
        results.append((c, float(np.mean(losses)), float(np.std(losses) / max(1.0, np.sqrt(len(losses)))), held))
    best = min(results, key=lambda r: r[1])
    chosen = next(r for r in results if r[1] <= best[1] + best[2])  # one standard error: the strongest penalty that is as good
    model = LogisticRegression(C=chosen[0], solver="liblinear", max_iter=1000, random_state=seed).fit(x, y, sample_weight=w)
    coef = model.coef_[0]
    trained = {**(about or {}), "answers": len(y), "good": int(y.sum()), "penalty_c": chosen[0],
               "cv_log_loss": round(chosen[1], 4), "cv_auc": round(float(roc_auc_score(y, chosen[3], sample_weight=w)), 4),
               "cv": {str(c): round(loss, 4) for c, loss, _, _ in results}}
    return Verifier(list(coef[: len(DENSE)]), list(coef[len(DENSE) :]), float(model.intercept_[0]), hash_dims, trained), chosen[3]
