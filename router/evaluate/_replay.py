"""Replay a labelled prompt set through the classifier and a threshold policy: per row and tier,
the quality obtained and the cost paid, escalation included; then the report's figures."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from classifiers import Classifier, Row
from policies import sweep
from router.checks import QualityCheck
from router.evaluate._metrics import aiq, apgr, cpt, interp, upper_hull
from router.evaluate._napgr import napgr
from router.evaluate._report import Report
from router.evaluate._stream import gather

Prices = Mapping[str, tuple[Decimal, Decimal]]


class _Answer:
    """A recorded response shaped like a ModelResponse, so quality checks can judge it."""

    def __init__(self, text: str) -> None:
        message = type("Message", (), {"content": text, "tool_calls": None})()
        self.choices = [type("Choice", (), {"message": message, "finish_reason": "stop"})()]


def outcome_cost(row: Row, model: str, prices: Prices) -> float | None:
    """cost_usd, else tokens x price, else text length (4 characters a token) x price; None if unpriced."""
    out = row.outcomes[model]
    if out.cost_usd is not None:
        return out.cost_usd
    if model not in prices:
        return None
    p_in, p_out = prices[model]
    t_in = out.tokens_in if out.tokens_in is not None else sum(len(str(m.get("content", ""))) for m in row.messages) // 4
    t_out = out.tokens_out if out.tokens_out is not None else len(out.response or "") // 4
    return float(p_in * t_in + p_out * t_out)


def matrices(
    rows: Sequence[Row], tiers: Sequence[str], prices: Prices, check: QualityCheck | None = None
) -> tuple[list[list[float]], list[list[float]], str, dict[str, float]]:
    """Per row and starting tier: the quality obtained and the cost paid, escalation replayed.

    With a check, a recorded answer that fails it sends the request on to the next tier; every
    attempt is paid for. Without costs or prices in the set, a call of the top tier costs 1 and
    the others 0 (RouteLLM's convention: cost is the share of strong calls).
    """
    base_c, unit = priced([[outcome_cost(r, t, prices) for t in tiers] for r in rows], len(tiers))
    base_q = [[r.outcomes[t].quality for t in tiers] for r in rows]
    if check is None:
        return base_q, base_c, unit, {}
    quality, cost, failed = [], [], 0
    for r, q_row, c_row in zip(rows, base_q, base_c):
        passes = [check([dict(m) for m in r.messages], _Answer(r.outcomes[t].response or "")).passed for t in tiers]
        failed += sum(not p for p in passes[:-1])
        q_out, c_out = [], []
        for start in range(len(tiers)):
            paid, k = 0.0, start
            while True:
                paid += c_row[k]
                if passes[k] or k == len(tiers) - 1:
                    break
                k += 1
            q_out.append(q_row[k])
            c_out.append(paid)
        quality.append(q_out)
        cost.append(c_out)
    n = max(len(rows), 1)
    stats = {
        "failed_checks_share": failed / (n * max(len(tiers) - 1, 1)),
        "quality_gain_small_tier": sum(q[0] for q in quality) / n - sum(q[0] for q in base_q) / n,
        "cost_added_small_tier": sum(c[0] for c in cost) / n - sum(c[0] for c in base_c) / n,
    }
    return quality, cost, unit, stats


_JOB: tuple[Any, list[Any]] | None = None  # what forked scoring workers inherit, instead of pickling it


def _score_range(bounds: tuple[int, int]) -> list[float]:
    assert _JOB is not None
    classifier, batch = _JOB
    return list(classifier.score_batch(batch[bounds[0] : bounds[1]]))


def score_all(classifier: Classifier, batch: list[Any], progress: Callable[[int, int], None] | None = None, chunk: int = 2000) -> list[float]:
    """Scores of many requests; large batches are split over the machine's cores (forked workers)."""
    import multiprocessing
    import os

    global _JOB
    ranges = [(i, min(i + chunk, len(batch))) for i in range(0, len(batch), chunk)]
    workers = min(os.cpu_count() or 1, 8)
    scores: list[float] = []
    if len(batch) >= 20_000 and workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        _JOB = (classifier, batch)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for part in pool.imap(_score_range, ranges):
                    scores.extend(part)
                    if progress:
                        progress(len(scores), len(batch))
        finally:
            _JOB = None
        return scores
    for bounds in ranges:
        scores.extend(classifier.score_batch(batch[bounds[0] : bounds[1]]))
        if progress:
            progress(len(scores), len(batch))
    return scores


def _headline(scores: list[float], quality: list[list[float]], cost: list[list[float]]) -> dict[str, Any]:
    points = sweep(scores, quality, cost)
    q_top = sum(q[-1] for q in quality) / len(quality)
    c_top = sum(c[-1] for c in cost) / len(cost) or 1.0
    least: dict[float, float | None] = {}
    for share in (0.9, 0.95, 1.0):
        ok = [p.cost for p in points if p.quality >= share * q_top - 1e-12]
        least[share] = min(ok) / c_top if ok else None
    at_cost = {f: max((p.quality for p in points if p.cost <= f * c_top + 1e-12), default=0.0) for f in (0.2, 0.5)}
    return {"points": points, "least": least, "at_cost": at_cost, "q_top": q_top, "c_top": c_top}


def evaluate(
    rows: Sequence[Row],
    tiers: Sequence[str],
    classifier: Classifier,
    thresholds: Sequence[float] | None = None,
    prices: Prices | None = None,
    check: QualityCheck | None = None,
    bootstrap: int = 100,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    dataset: str = "",
) -> Report:
    """Replay `rows` through the classifier and a threshold policy over `tiers` (cheapest first)."""
    if not tiers:
        raise ValueError("at least one tier is needed")
    missing = Counter(t for r in rows for t in tiers if t not in r.outcomes)
    usable = [r for r in rows if all(t in r.outcomes for t in tiers)]
    if not usable:
        raise ValueError(f"no row has outcomes for every tier {list(tiers)}; missing: {dict(missing)}")
    scores = score_all(classifier, [r.messages for r in usable], progress)
    quality, cost, unit, check_stats = matrices(usable, tiers, prices or {}, check)
    report = _finish(scores, quality, cost, unit, [r.task or "(none)" for r in usable], tiers, thresholds, bootstrap, seed)
    report.rows, report.missing, report.checks, report.dataset = len(rows), dict(missing), check_stats, dataset
    return report


def evaluate_file(
    paths: Sequence[str | os.PathLike[str]],
    tiers: Sequence[str],
    classifier: Classifier,
    thresholds: Sequence[float] | None = None,
    prices: Prices | None = None,
    split: str | None = None,
    drop_contaminated: bool = False,
    bootstrap: int = 100,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    dataset: str = "",
) -> Report:
    """evaluate() over JSONL files read as a stream: memory holds a few numbers a row, whatever the
    number of models in the file. (Replaying checks needs the recorded answers: use evaluate().)"""
    if not tiers:
        raise ValueError("at least one tier is needed")
    got = gather(paths, tiers, classifier, prices=prices, split=split, drop_contaminated=drop_contaminated, progress=progress)
    if not got.scores:
        raise ValueError(f"no row has outcomes for every tier {list(tiers)}; missing: {dict(got.missing)}")
    quality, cost, unit = got.quality, *priced(got.cost, len(tiers))
    report = _finish(got.scores, quality, cost, unit, got.tasks, tiers, thresholds, bootstrap, seed)
    report.rows, report.missing, report.dataset = got.rows, dict(got.missing), dataset
    return report


def priced(raw: list[list[float | None]], tiers: int) -> tuple[list[list[float]], str]:
    """Costs in USD when every one is known, else RouteLLM's convention: a top-tier call costs 1."""
    if all(c is not None for row in raw for c in row):
        return [[float(c or 0.0) for c in row] for row in raw], "usd"
    return [[0.0] * (tiers - 1) + [1.0] for _ in raw], "top-tier call share"


def _finish(
    scores: list[float], quality: list[list[float]], cost: list[list[float]], unit: str, tasks: list[str], tiers: Sequence[str],
    thresholds: Sequence[float] | None, bootstrap: int, seed: int,
) -> Report:
    n = len(scores)
    head = _headline(scores, quality, cost)
    if thresholds is None:  # the router's defaults; calibrating here would tune on the evaluation rows
        from router._config import DEFAULT_THRESHOLDS

        thresholds = DEFAULT_THRESHOLDS.get(len(tiers), [k / len(tiers) for k in range(1, len(tiers))])
    if len(thresholds) != len(tiers) - 1:
        raise ValueError(f"{len(tiers)} tiers need {len(tiers) - 1} thresholds, got {len(thresholds)}")
    ths = list(thresholds)
    start = [next((k for k, t in enumerate(ths) if s < t), len(tiers) - 1) for s in scores]
    router = {"quality": sum(quality[i][k] for i, k in enumerate(start)) / n, "cost": sum(cost[i][k] for i, k in enumerate(start)) / n}
    baselines = {t: {"quality": sum(q[k] for q in quality) / n, "cost": sum(c[k] for c in cost) / n} for k, t in enumerate(tiers)}
    best_q = [max(q) for q in quality]
    oracle_k = [next(k for k in range(len(tiers)) if quality[i][k] >= best_q[i]) for i in range(n)]
    baselines["oracle"] = {"quality": sum(best_q) / n, "cost": sum(cost[i][k] for i, k in enumerate(oracle_k)) / n}
    tier_hull = upper_hull([(b["cost"], b["quality"]) for name, b in baselines.items() if name != "oracle"])
    baselines["random"] = {"quality": interp(tier_hull, router["cost"]), "cost": router["cost"]}
    curve = [(p.cost, p.quality) for p in head["points"]]
    costs = [b["cost"] for name, b in baselines.items() if name in tiers]
    report = Report(
        tiers=list(tiers), rows=n, used=n, missing={}, cost_unit=unit, thresholds=ths,
        router=router, baselines=baselines, curve=upper_hull(curve), least_cost_share=head["least"],
        quality_at_cost=head["at_cost"], aiq=aiq(curve, min(costs), max(costs)),
    )
    if len(tiers) == 2 and head["q_top"] != baselines[tiers[0]]["quality"]:
        q_weak, q_strong = [q[0] for q in quality], [q[1] for q in quality]
        report.apgr = apgr(scores, q_weak, q_strong)
        report.cpt50, report.cpt80 = cpt(scores, q_weak, q_strong, 0.5), cpt(scores, q_weak, q_strong, 0.8)
    report.ci95 = _bootstrap(scores, quality, cost, bootstrap, seed, two_tier=report.apgr is not None)
    _add_napgr(report, scores, quality, cost, bootstrap, seed)
    by_task: dict[str, list[int]] = {}
    for i, task in enumerate(tasks):
        by_task.setdefault(task, []).append(i)
    for task, idx in sorted(by_task.items()):
        report.per_task[task] = {
            "rows": len(idx),
            "quality": sum(quality[i][start[i]] for i in idx) / len(idx),
            "cost": sum(cost[i][start[i]] for i in idx) / len(idx),
            "top_quality": sum(quality[i][-1] for i in idx) / len(idx),
            "top_cost": sum(cost[i][-1] for i in idx) / len(idx),
        }
    return report


def _add_napgr(report: Report, scores: list[float], quality: list[list[float]], cost: list[list[float]], rounds: int, seed: int) -> None:
    if len(report.tiers) < 2:
        return
    try:
        result = napgr({"router": scores}, quality, cost, rounds=rounds, seed=seed)
    except ValueError:  # the top tier is not better than the cheapest here: no nAPGR to give
        return
    report.napgr, report.gap_closed = result.napgr["router"], result.gap_closed["router"]
    report.napgr_random, report.napgr_oracle = result.random, result.oracle
    for key, name in (("router", "napgr"), ("router gap", "gap_closed")):
        if key in result.ci95:
            report.ci95[name] = result.ci95[key]


def _bootstrap(scores: list[float], quality: list[list[float]], cost: list[list[float]], rounds: int, seed: int, two_tier: bool) -> dict[str, tuple[float, float]]:
    """95% intervals of the headline numbers (Poisson bootstrap: each row weighted by a Poisson(1) draw).

    The rows are sorted by score once; each round is a few weighted prefix sums over the same
    threshold grid as the sweep, so thousands of rows cost milliseconds a round.
    """
    if rounds <= 0:
        return {}
    import itertools

    import numpy as np

    rng = np.random.default_rng(seed)
    order = np.argsort(np.asarray(scores), kind="stable")
    ranked = np.asarray(scores)[order]
    q, c = np.asarray(quality, dtype=float)[order], np.asarray(cost, dtype=float)[order]
    n, tiers = q.shape
    cuts = np.unique(np.concatenate([ranked[np.minimum(n - 1, np.arange(41) * n // 40)], [ranked[-1] + 1e-9]]))
    pos = np.searchsorted(ranked, cuts, side="left")
    combos = np.array(list(itertools.combinations_with_replacement(pos, tiers - 1)), dtype=int).reshape(-1, tiers - 1)
    bounds = np.hstack([np.zeros((len(combos), 1), dtype=int), combos, np.full((len(combos), 1), n)])
    least, gaps = [], []
    for _ in range(rounds):
        w = np.asarray(rng.poisson(1.0, n), dtype=float)
        total = w.sum()
        pq = np.vstack([np.zeros(tiers), np.cumsum(w[:, None] * q, axis=0)])
        pc = np.vstack([np.zeros(tiers), np.cumsum(w[:, None] * c, axis=0)])
        cols = np.arange(tiers)
        mean_q = (pq[bounds[:, 1:], cols] - pq[bounds[:, :-1], cols]).sum(axis=1) / total
        mean_c = (pc[bounds[:, 1:], cols] - pc[bounds[:, :-1], cols]).sum(axis=1) / total
        q_top, c_top = pq[-1, -1] / total, pc[-1, -1] / total or 1.0
        ok = mean_q >= 0.95 * q_top - 1e-12
        if ok.any():
            least.append(float(mean_c[ok].min() / c_top))
        if two_tier:
            q_weak = pq[-1, 0] / total
            if q_top != q_weak:
                share = 1 - np.cumsum(w)[np.maximum(combos[:, 0] - 1, 0)] / total * (combos[:, 0] > 0)
                xs, ys = share[::-1], ((mean_q - q_weak) / (q_top - q_weak))[::-1]
                gaps.append(float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2)))
    out = {}
    for name, values in (("least_cost_share_95", least), ("apgr", gaps)):
        if len(values) >= 10:
            lo, hi = np.percentile(values, [2.5, 97.5])
            out[name] = (float(lo), float(hi))
    return out
