"""Training the linear classifier (scipy's L-BFGS on soft labels), then exporting plain weights."""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from classifiers._data import Row, load_rows
from classifiers._features import DENSE_NAMES, featurize
from classifiers._fit import fit_logistic, sigmoid, soft_log_loss
from classifiers._model import LinearClassifier
from classifiers._text import split_turns

_SPACE = re.compile(r"\s+")
Target = Literal["gap", "bar"]


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
    """The hard target of `target="bar"`, or None when the row lacks the models it needs.

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


def targets(row: Row, weak: Sequence[str], strong: Sequence[str], bar: float, target: Target) -> tuple[float, float] | None:
    """(training label, calibration label) of a row, or None when it lacks the models it needs.

    "gap": trained on the graded gap (q_strong - q_weak + 1) / 2, calibrated to max(q_strong - q_weak, 0),
    the chance the cheapest tier's answer is worse than the top tier's. "bar": `label()` for both.
    """
    if target == "bar" or not strong:
        y = label(row, weak, bar, strong)
        return None if y is None else (float(y), float(y))
    q_weak, q_strong = _first(row, weak), _first(row, strong)
    if q_weak is None or q_strong is None:
        return None
    return (q_strong - q_weak + 1) / 2, max(q_strong - q_weak, 0.0)


@dataclass
class _Set:
    rows: list[Row]
    y: list[float]
    cal: list[float]
    weight: list[float]


def _examples(rows: Sequence[Row], weak: Sequence[str], strong: Sequence[str], bar: float, target: Target, per_source: bool, seed: int,
              include_test: bool = False) -> tuple[_Set, _Set]:
    """Usable rows (not `test` unless `include_test`, never a test row's text, never contaminated), split into fit and dev.

    Each source without `dev` rows gives a seeded 15% of its rows to dev. With `per_source`, every
    source weighs the same in total, however many rows it has.
    """
    test_texts = set() if include_test else {normalise(r) for r in rows if r.split == "test"}
    usable = [(r, t) for r in rows if (include_test or r.split != "test") and not r.contaminated
              for t in [targets(r, weak, strong, bar, target)] if t is not None and normalise(r) not in test_texts]
    by_source: dict[str, list[tuple[Row, tuple[float, float]]]] = {}
    for r, t in usable:
        by_source.setdefault(r.source, []).append((r, t))
    fit, dev = _Set([], [], [], []), _Set([], [], [], [])
    for src, items in sorted(by_source.items()):
        w = (len(usable) / len(by_source) / len(items)) if per_source else 1.0
        has_dev = any(r.split == "dev" for r, _ in items)
        if not has_dev:
            items = sorted(items, key=lambda it: it[0].id)
            random.Random(f"{seed}:{src}").shuffle(items)
        cut = max(1, len(items) * 15 // 100)
        for k, (r, (y, cal)) in enumerate(items):
            into = dev if (r.split == "dev" if has_dev else k < cut) else fit
            into.rows.append(r)
            into.y.append(y)
            into.cal.append(cal)
            into.weight.append(w * r.weight)
    return fit, dev


def _matrix(feats: list[tuple[set[str], list[float]]], index: dict[str, int], mean: Any, scale: Any, sources: list[str], source_index: dict[str, int]) -> Any:
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
    dense = (np.array([d for _, d in feats], dtype=float).reshape(len(feats), len(DENSE_NAMES)) - mean) / scale
    onehot = sparse.csr_matrix(
        ([1.0] * len(sources), (range(len(sources)), [source_index[s] for s in sources])), shape=(len(feats), len(source_index))
    ) if source_index else sparse.csr_matrix((len(feats), 0))
    return sparse.hstack([words, sparse.csr_matrix(dense), onehot]).tocsr()


def row_features(row: Row) -> tuple[set[str], list[float]]:
    """The row's features: stored with it (`features: {"w": [...], "d": [...]}`, from a ledger that keeps no
    prompts), else computed from its messages."""
    stored = row.extra.get("features")
    if isinstance(stored, dict) and isinstance(stored.get("w"), list) and isinstance(stored.get("d"), list) and len(stored["d"]) == len(DENSE_NAMES):
        toks = {str(t) for t in stored["w"]}
        # Words outside the vocabulary were not kept, only counted: placeholders keep the normalisation.
        toks.update(f"\0{i}" for i in range(int(stored.get("n", 0)) - len(toks)))
        return toks, [float(v) for v in stored["d"]]
    return featurize(row.messages)


def _names(value: str | Sequence[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def train(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Sequence[Row],
    weak: str | Sequence[str] | None = None,
    *,
    strong: str | Sequence[str] = (),
    tiers: Sequence[str] | None = None,
    target: Target = "gap",
    bar: float = 0.5,
    prior: LinearClassifier | None = None,
    length_weight: float = 0.0,
    per_source: bool = True,
    min_df: int = 3,
    max_vocab: int = 40_000,
    c_grid: Sequence[float] = (0.1, 0.3, 1.0),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    include_test: bool = False,
) -> LinearClassifier:
    """Fit a classifier on labelled prompt sets (not on `test` rows unless `include_test`); deterministic given `seed`.

    `weak`/`strong` name the cheapest and the top model (or several: the first present in a row is
    used); `tiers=[small, flash, frontier]` says the same. With `strong`, the target is the graded
    gap between them (`target="gap"`); without, 1 where the weak model's quality is under `bar`.
    `prior`: warm start, the fit is pulled toward these weights instead of zero. `length_weight` in
    [0, 1] blends the logit with standardised prompt length. C is chosen and the score calibrated on
    `dev` rows (a seeded 15% of each source without them). `progress` hears each stage.
    """
    import numpy as np

    say = progress or (lambda _stage: None)
    weak_names = _names(weak) or _names(tiers)[:1]
    strong_names = _names(strong) or (_names(tiers)[-1:] if tiers and len(tiers) > 1 else [])
    if not weak_names:
        raise ValueError("name the cheapest model: weak=... or tiers=[small, ..., frontier]")
    if not 0.0 <= length_weight <= 1.0:
        raise ValueError(f"length_weight must be in [0, 1], got {length_weight}")
    if prior is not None and length_weight:
        raise ValueError("length_weight is for training from scratch: a prior already carries its blend with length")
    if isinstance(data, (str, os.PathLike)) or (data and not isinstance(data[0], Row)):
        rows = load_rows(data)  # type: ignore[arg-type]
    else:
        rows = list(data)  # type: ignore[arg-type]
    fit, dev = _examples(rows, weak_names, strong_names, bar, target, per_source, seed, include_test)
    if len(fit.rows) < 2 or max(fit.y) - min(fit.y) <= 0:
        raise ValueError("training needs rows of both classes: where the cheap model does well and where it does not")
    say(f"read {len(rows)} rows: {len(fit.rows)} to fit, {len(dev.rows)} to choose C and calibrate")

    fit_feats = [row_features(r) for r in fit.rows]
    dev_feats = [row_features(r) for r in dev.rows]
    df = Counter(t for toks, _ in fit_feats for t in toks)
    new_words = sorted((t for t, n in df.items() if n >= min_df), key=lambda t: (-df[t], t))[:max_vocab]
    if prior is not None:
        # A word no label contains gets no gradient: its weight stays the prior's. Only the words the
        # labels hold are fitted (a few thousand instead of the prior's tens of thousands).
        seen = {t for toks, _ in fit_feats + dev_feats for t in toks}
        vocab_words = [t for t in prior.vocab if t in seen] + [t for t in new_words if t not in prior.vocab]
        mean, scale = np.array(prior.dense_mean), np.array(prior.dense_scale)
    else:
        vocab_words = new_words
        dense_fit = np.array([d for _, d in fit_feats], dtype=float)
        mean, scale = dense_fit.mean(axis=0), dense_fit.std(axis=0)
        scale[scale < 1e-9] = 1.0
    index = {t: i for i, t in enumerate(vocab_words)}
    sources = sorted({r.source for r in fit.rows}) if per_source and len({r.source for r in fit.rows}) > 1 else []
    src_index = {s: i for i, s in enumerate(sources)}
    x_fit = _matrix(fit_feats, index, mean, scale, [r.source for r in fit.rows] if sources else [], src_index)
    x_dev = _matrix(dev_feats, index, mean, scale, [], {}) if dev.rows else None
    w0 = None
    if prior is not None:
        w0 = np.concatenate([[prior.vocab.get(t, 0.0) for t in vocab_words], prior.dense_weights, np.zeros(len(sources))])
    y_fit, w_fit = np.array(fit.y), np.array(fit.weight)
    say(f"featurised: {len(index)} words in the vocabulary" + (f", {len(sources)} source terms" if sources else ""))

    n_keep = len(index) + len(DENSE_NAMES)  # source terms are dropped at export
    best: tuple[float, float, Any, float] | None = None
    for c in c_grid:
        w, b = fit_logistic(x_fit, y_fit, w_fit, c, w0, prior.bias if prior is not None else 0.0)
        if x_dev is None:
            best = best or (0.0, c, w, b)
            continue
        loss = soft_log_loss(np.array(dev.y), sigmoid(x_dev @ w[:n_keep] + b), dev.weight)
        if best is None or loss < best[0]:
            best = (loss, c, w, b)
        say(f"fitted C={c}: dev log-loss {loss:.4f}")
    assert best is not None
    _, c_best, w, b = best
    w, b = w[:n_keep].copy(), b + (float(np.average(w[n_keep:])) if sources else 0.0)
    if length_weight > 0:
        w, b = _blend_length(w, b, x_fit[:, :n_keep], len(index), length_weight)
    calibration = (1.0, 0.0)
    if x_dev is not None and len(dev.rows) >= 10:
        z = (x_dev @ w + b).reshape(-1, 1)
        a, a0 = fit_logistic(z, np.array(dev.cal), np.array(dev.weight), 1e4)
        # A few noisy dev rows can give a slope of the wrong sign, which would flip the whole ranking:
        # calibration may rescale the score, never reverse it.
        calibration = (float(a[0]), a0) if a[0] > 0 else (1.0, 0.0)
        say(f"calibrated on {len(dev.rows)} dev rows (C={c_best})")
    fitted = {t: round(float(w[i]), 6) for t, i in index.items()}
    if prior is not None:  # the words no label held keep the prior's weights
        fitted = {**prior.vocab, **fitted}
    vocab = {t: v for t, v in fitted.items() if abs(v) >= 1e-5}
    return LinearClassifier(
        vocab=vocab,
        dense_weights=[round(float(v), 8) for v in w[len(index):]],
        dense_mean=[float(m) for m in mean],
        dense_scale=[float(s) for s in scale],
        bias=float(b),
        calibration=calibration,
        meta={
            "weak": weak_names, "strong": strong_names, "tiers": _names(tiers), "target": target, "bar": bar,
            "C": c_best, "seed": seed, "rows_fit": len(fit.rows), "rows_dev": len(dev.rows),
            "sources": dict(Counter(r.source for r in fit.rows)), "per_source": per_source,
            "length_weight": length_weight, "prior": (prior.meta.get("name") or "given") if prior is not None else None,
            "mean_label": round(float(np.average(y_fit, weights=w_fit)), 4), "dense": list(DENSE_NAMES),
        },
    )


def _blend_length(w: Any, b: float, x: Any, n_words: int, share: float) -> tuple[Any, float]:
    """Weights of (1 - share) * logit / sd(logit) + share * standardised length outside mechanical
    requests (sorting a long list is long, not hard): one linear model still."""
    import numpy as np

    sd = float(np.std(x @ w + b)) or 1.0
    w = w * ((1 - share) / sd)
    w[n_words + DENSE_NAMES.index("plain_log_words")] += share
    return w, b * (1 - share) / sd
