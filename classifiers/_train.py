"""Training the linear classifier with scikit-learn, then exporting plain weights."""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from classifiers._data import Row, load_rows
from classifiers._features import DENSE_NAMES, featurize
from classifiers._model import LinearClassifier
from classifiers._text import split_turns

_SPACE = re.compile(r"\s+")


def normalise(row: Row) -> str:
    """The prompt's text, lower-cased with white space folded: the key used to deduplicate sets."""
    last, earlier, system, _ = split_turns(row.messages)
    return _SPACE.sub(" ", f"{system}\n{earlier}\n{last}".lower()).strip()


def _first(row: Row, names: Sequence[str]) -> float | None:
    for name in names:
        outcome = row.outcomes.get(name)
        if outcome is not None:
            return outcome.quality
    return None


def label(row: Row, weak: Sequence[str], bar: float, strong: Sequence[str] = ()) -> int | None:
    """The training target, or None when the row lacks the models it needs.

    Without `strong`: 1 when the weak model's quality is under `bar`. With `strong`: 1 when the
    strong model beats the weak one by at least `bar` (only then does paying for it help).
    """
    q_weak = _first(row, weak)
    if q_weak is None:
        return None
    if not strong:
        return int(q_weak < bar)
    q_strong = _first(row, strong)
    return None if q_strong is None else int(q_strong - q_weak >= bar)


def _matrix(feats: list[tuple[set[str], list[float]]], index: dict[str, int], mean: Any, scale: Any) -> Any:
    import numpy as np
    from scipy import sparse

    rows, cols, vals = [], [], []
    for i, (toks, _) in enumerate(feats):
        known = [index[t] for t in toks if t in index]
        if toks:
            v = 1.0 / np.sqrt(len(toks))  # same normalisation as LinearClassifier.logit
            rows.extend([i] * len(known))
            cols.extend(known)
            vals.extend([v] * len(known))
    words = sparse.csr_matrix((vals, (rows, cols)), shape=(len(feats), len(index)))
    dense = (np.array([d for _, d in feats], dtype=float) - mean) / scale
    return sparse.hstack([words, sparse.csr_matrix(dense)]).tocsr()


def train(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Sequence[Row],
    weak: str | Sequence[str],
    *,
    strong: str | Sequence[str] = (),
    bar: float = 0.5,
    min_df: int = 3,
    max_vocab: int = 40_000,
    c_grid: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> LinearClassifier:
    """Fit a classifier on labelled prompt sets (never on `test` rows); deterministic given `seed`.

    `weak` names the cheapest model (or several: the first present in a row is used); the target
    is 1 where its quality is below `bar`. C is chosen and the scores calibrated on `dev` rows, or on
    a seeded 15% of the training rows when the sets have no dev split. `progress` hears each stage.
    """
    say = progress or (lambda _stage: None)
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    weak_names = [weak] if isinstance(weak, str) else list(weak)
    strong_names = [strong] if isinstance(strong, str) else list(strong)
    if isinstance(data, (str, os.PathLike)) or (data and not isinstance(data[0], Row)):
        rows = load_rows(data)  # type: ignore[arg-type]
    else:
        rows = list(data)  # type: ignore[arg-type]
    test_texts = {normalise(r) for r in rows if r.split == "test"}
    usable = [(r, y) for r in rows if r.split != "test" for y in [label(r, weak_names, bar, strong_names)] if y is not None]
    usable = [(r, y) for r, y in usable if normalise(r) not in test_texts]
    if len({y for _, y in usable}) < 2:
        raise ValueError("training needs rows of both classes (weak model adequate and inadequate)")
    fit_rows = [(r, y) for r, y in usable if r.split != "dev"]
    dev_rows = [(r, y) for r, y in usable if r.split == "dev"]
    if not dev_rows:
        rng = random.Random(seed)
        shuffled = sorted(fit_rows, key=lambda ry: ry[0].id)
        rng.shuffle(shuffled)
        cut = max(1, len(shuffled) * 15 // 100)
        dev_rows, fit_rows = shuffled[:cut], shuffled[cut:]

    say(f"read {len(rows)} rows: {len(fit_rows)} to fit, {len(dev_rows)} to choose C and calibrate")
    fit_feats = [featurize(r.messages) for r, _ in fit_rows]
    dev_feats = [featurize(r.messages) for r, _ in dev_rows]
    df = Counter(t for toks, _ in fit_feats for t in toks)
    vocab_words = sorted((t for t, n in df.items() if n >= min_df), key=lambda t: (-df[t], t))[:max_vocab]
    index = {t: i for i, t in enumerate(vocab_words)}
    dense_fit = np.array([d for _, d in fit_feats], dtype=float)
    mean = dense_fit.mean(axis=0)
    scale = dense_fit.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x_fit = _matrix(fit_feats, index, mean, scale)
    x_dev = _matrix(dev_feats, index, mean, scale)
    y_fit = np.array([y for _, y in fit_rows])
    y_dev = np.array([y for _, y in dev_rows])
    say(f"featurised: {len(index)} words in the vocabulary")

    best: tuple[float, float, Any] | None = None
    for c in c_grid:
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x_fit, y_fit)
        loss = log_loss(y_dev, model.predict_proba(x_dev)[:, 1], labels=[0, 1])
        if best is None or loss < best[0]:
            best = (loss, c, model)
        say(f"fitted C={c}: dev log-loss {loss:.4f}")
    assert best is not None
    _, c_best, model = best
    # Platt scaling on dev logits corrects the over- or under-confidence of the regularised fit.
    dev_logits = model.decision_function(x_dev).reshape(-1, 1)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(dev_logits, y_dev)
    say(f"calibrated on {len(dev_rows)} dev rows (C={c_best})")
    coef = model.coef_[0]
    n_words = len(index)
    vocab = {t: round(float(coef[i]), 6) for t, i in index.items() if abs(coef[i]) >= 1e-5}
    return LinearClassifier(
        vocab=vocab,
        dense_weights=[round(float(w), 8) for w in coef[n_words:]],
        dense_mean=[float(m) for m in mean],
        dense_scale=[float(s) for s in scale],
        bias=float(model.intercept_[0]),
        calibration=(float(platt.coef_[0][0]), float(platt.intercept_[0])),
        meta={
            "weak": weak_names,
            "strong": strong_names,
            "bar": bar,
            "C": c_best,
            "seed": seed,
            "rows_fit": len(fit_rows),
            "rows_dev": len(dev_rows),
            "positive_share": round(float(y_fit.mean()), 4),
            "dense": list(DENSE_NAMES),
        },
    )
