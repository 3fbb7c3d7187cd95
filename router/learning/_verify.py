"""Refitting the answer verifier on labels: each label keeps the verifier features of the answers it
graded (the cheap tier's, on a downward label; every tier's below the top, on a shadow). A
candidate trained on them (penalty by grouped cross-validation) replaces the verifier in force only
when its out-of-fold log loss beats that verifier's on the same answers in CONFIDENCE of paired
bootstrap rounds; with no verifier in force, it must beat the base rate (a constant score). Given
how the router escalates (`Escalation`), its escalations must also pay: more quality than the
prompt alone buys for the same spend, in CONFIDENCE of paired bootstrap rounds. Each label counts
by its sampling weight."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router.ledger import Label
from router.verifier import FEATURES, Verifier
from router.verifier._train import Features, features_of, fit_verifier

HASH_DIMS = 1024  # hashed words kept per answer in a label: small rows, and enough for a linear model
MIN_ANSWERS = 100  # fewer graded answers than this never swap the verifier
CONFIDENCE = 0.95


@dataclass(frozen=True)
class VerifierRefit:
    """One verifier refit: the verifier to use, whether it changed, and why."""

    verifier: Verifier | None
    swapped: bool
    answers: int
    loss_old: float | None = None  # log loss of the verifier in force (or the base rate) on the labelled answers
    loss_new: float | None = None  # the candidate's, out of fold
    why: str = ""


def label_answers(messages: list[dict[str, Any]], texts: dict[str, str], words: bool) -> dict[str, Any]:
    """The verifier features of each tier's answer, as a label keeps them; hashed words only with
    `words` (store_prompts): without it a label holds numbers about the answer, not its words."""
    out = {}
    for tier, text in texts.items():
        values, hashed = features_of(messages, text, HASH_DIMS)
        out[tier] = {"d": [round(v, 6) for v in values], "h": {str(k): round(v, 6) for k, v in hashed.items()} if words else {}}
    return out


def graded_locally(answer: str, reference: str) -> float | None:
    """A downward label's grade without a judge: 1 when the answer and the reference settle on the
    same final answer (a choice letter or a number), 0 when on different ones; None when either
    settles on none (then the judge grades)."""
    from router._signals import final_answer

    mine, theirs = final_answer(answer), final_answer(reference)
    return None if mine is None or theirs is None else float(mine == theirs)


def sample_weight(label: Label) -> float:
    """What a label stands for: the inverse of how much likelier than average it was to be sampled
    (kept as `sw` in its features; 1 for a label not sampled, or of a version without it)."""
    w = label.features.get("sw", 1.0) if isinstance(label.features, dict) else 1.0
    return float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and 0 < w <= 100 else 1.0


def examples_of(labels: Sequence[Label], keys: list[tuple[int, str]] | None = None) -> tuple[list[Features], list[int], list[str], list[float]]:
    """(features, good, request, sampling weight) of every graded answer the labels kept; a label of
    another version's features is left out. `keys` gets each answer's (label index, tier)."""
    found: list[Features] = []
    good: list[int] = []
    groups: list[str] = []
    weights: list[float] = []
    for i, lab in enumerate(labels):
        answers = lab.features.get("answers") if isinstance(lab.features, dict) else None
        for tier, f in (answers or {}).items() if isinstance(answers, dict) else ():
            parsed = _parsed(f)
            if parsed is not None and isinstance(lab.quality.get(tier), (int, float)):
                found.append(parsed)
                good.append(int(lab.quality[tier] >= 0.5))
                groups.append(f"{lab.tenant}/{lab.request_id}")
                weights.append(sample_weight(lab))
                if keys is not None:
                    keys.append((i, tier))
    return found, good, groups, weights


def _parsed(f: Any) -> Features | None:
    try:
        values = [float(v) for v in f["d"]]
        words = {int(k): float(v) for k, v in f.get("h", {}).items()}
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    ok = len(values) == len(FEATURES) and all(math.isfinite(v) for v in [*values, *words.values()])
    return (values, words) if ok else None


@dataclass(frozen=True)
class Escalation:
    """How the router escalates on a verifier: tiers (cheapest first), the prompt score of each label
    (the model in force), the thresholds in force and each checked tier's bar."""

    tiers: Sequence[str]
    scores: Sequence[float]
    thresholds: Sequence[float]
    bars: Sequence[float] = ()  # one per tier below the top; none given: 0.5 each, the verifier's default


MIN_WHOLE = 50  # labels grading the cheapest tier's answer, to show a verifier's escalations pay
BOOTSTRAP = 200  # rounds of the paired bootstrap that shows it
MAX_REPLAYED = 5000  # the latest labels replayed: each round sorts them, so a refit stays a few seconds


def escalation_pays(labels: Sequence[Label], answer: dict[tuple[int, str], float], how: Escalation) -> tuple[bool, str]:
    """Whether escalating the cheapest tier's answers on these scores (out of fold) gives the labelled
    requests more quality than the prompt alone can buy for the same spend (any threshold): else a
    verifier only adds calls. Judged as labels are made, on the cheapest tier against the top (or the
    answer served in its stead: quality 1 when not graded, its cost the labels' weighted mean where
    not paid), with the first threshold and bar, by the labels' sampling weights."""
    from policies import cascade_paths, sweep

    small, top = how.tiers[0], how.tiers[-1]
    used = [i for i, lab in enumerate(labels) if isinstance(lab.quality.get(small), (int, float)) and small in lab.cost_usd][-MAX_REPLAYED:]
    priced = [(sample_weight(labels[i]), float(labels[i].cost_usd[top])) for i in used if top in labels[i].cost_usd]
    if len(used) < MIN_WHOLE or not priced:
        return False, f"{len(used)} labels grade the cheapest tier ({len(priced)} price the top): showing its escalations pay needs {MIN_WHOLE} and a price"
    top_cost = sum(w * c for w, c in priced) / sum(w for w, _ in priced)
    quality = [[float(labels[i].quality[small]), float(labels[i].quality.get(top, 1.0))] for i in used]
    cost = [[float(labels[i].cost_usd[small]), float(labels[i].cost_usd.get(top, top_cost))] for i in used]
    w = [sample_weight(labels[i]) for i in used]
    scores = [how.scores[i] for i in used]
    bar = (list(how.bars) or [0.5])[0]
    q_paths, c_paths = cascade_paths([[answer.get((i, small), 1.0), 1.0] for i in used], quality, cost, [bar])  # no score: no escalation
    start = [int(s >= how.thresholds[0]) if how.thresholds else 0 for s in scores]
    served = [(qs[k], cs[k]) for qs, cs, k in zip(q_paths, c_paths, start, strict=True)]

    def gain(rows: Sequence[int]) -> tuple[float, float, float]:
        """(cascade quality, its spend, what the prompt alone reaches for that spend) on these rows."""
        ws = [w[i] for i in rows]
        q = sum(ws[j] * served[i][0] for j, i in enumerate(rows)) / sum(ws)
        c = sum(ws[j] * served[i][1] for j, i in enumerate(rows)) / sum(ws)
        points = sweep([scores[i] for i in rows], [quality[i] for i in rows], [cost[i] for i in rows], grid=51, weights=ws)
        return q, c, max((p.quality for p in points if p.cost <= c + 1e-12), default=-1.0)

    q, c, alone = gain(range(len(used)))
    rng = random.Random(0)  # paired bootstrap: each round replays both on the same resampled labels
    rounds = [gain([rng.randrange(len(used)) for _ in used]) for _ in range(BOOTSTRAP)]
    sure = sorted(r[0] - r[2] for r in rounds)[int(BOOTSTRAP * (1 - CONFIDENCE))] > 0
    said = f"the prompt alone reaches {alone:.3f} for that spend" if alone >= 0 else "the prompt alone cannot spend that little"
    return sure, (f"escalating under bar {bar:.2f} gives quality {q:.3f} for {c:.6g} a request on {len(used)} labels; {said}"
                  f" ({'more' if sure else 'not more'} in {CONFIDENCE:.0%} of paired bootstrap rounds)")


def refit_verifier(labels: Sequence[Label], current: Verifier | None, seed: int = 0, escalation: Escalation | None = None) -> VerifierRefit:
    """A candidate trained on the labels' answers, swapped in only when it beats `current` (see module)
    and, given how the router escalates on it, when its escalations pay (`escalation_pays`)."""
    import numpy as np

    keys: list[tuple[int, str]] = []
    found, good, groups, weights = examples_of(labels, keys)
    y = np.asarray(good, dtype=float)
    if len(y) < MIN_ANSWERS or y.min() == y.max():
        return VerifierRefit(current, False, len(y), why=f"kept the verifier in force: {len(y)} graded answers "
                             f"({int(y.sum())} good), a swap needs {MIN_ANSWERS} of both kinds")
    candidate, oof = fit_verifier(found, good, groups, HASH_DIMS, folds=3 if len(y) < 500 else 5, seed=seed,
                                  about={"source": "tierwise learning", "labels": len(labels)}, weights=weights)
    w = np.asarray(weights)
    old = np.full(len(y), np.average(y, weights=w)) if current is None else np.asarray([_or_half(current.score_features(*f)) for f in found])
    l_old, l_new = _losses(y, old), _losses(y, np.asarray(oof))
    rng = np.random.default_rng(seed)
    diffs = [float(np.average(l_old[i] - l_new[i], weights=w[i])) for i in (rng.integers(0, len(y), len(y)) for _ in range(300))]
    swap = float(np.percentile(diffs, 100 * (1 - CONFIDENCE))) > 0
    name = "the verifier in force" if current is not None else "no verifier (the base rate)"
    verdict = "swapped in" if swap else f"kept out: not better in {CONFIDENCE:.0%} of paired bootstrap rounds"
    if swap and escalation is not None:
        swap, said = escalation_pays(labels, {k: float(p) for k, p in zip(keys, oof, strict=True)}, escalation)
        verdict = f"swapped in ({said})" if swap else f"kept out: it predicts better, but {said}"
    loss_old, loss_new = float(np.average(l_old, weights=w)), float(np.average(l_new, weights=w))
    why = (f"verifier candidate (C {candidate.trained['penalty_c']}, CV log loss {loss_new:.4f}) {verdict} against {name} "
           f"({loss_old:.4f}) on {len(y)} graded answers")
    return VerifierRefit(candidate if swap else current, swap, len(y), loss_old, loss_new, why)


def _or_half(score: float | None) -> float:
    return 0.5 if score is None else score


def _losses(y: Any, p: Any) -> Any:
    import numpy as np

    p = np.clip(p, 1e-6, 1 - 1e-6)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))
