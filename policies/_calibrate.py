"""Calibration: the thresholds that meet a target at least cost, found on a labelled set."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Calibration:
    """Chosen thresholds and what they are expected to give, per request, on the set they were fit on."""

    thresholds: tuple[float, ...]
    cost: float
    quality: float
    frontier_share: float
    target: str
    value: float


def sweep(
    scores: Sequence[float], quality: Sequence[Sequence[float]], cost: Sequence[Sequence[float]], grid: int = 41,
    weights: Sequence[float] | None = None,
) -> list[Calibration]:
    """Every threshold choice on a grid of score quantiles, with its mean cost, quality and top-tier share.

    `quality[i][k]`, `cost[i][k]`: prompt i's outcome on tier k (cheapest first). A score under
    thresholds[k] starts at tier k; past every threshold, at the last tier. `weights[i]`: what
    prompt i stands for in the means (its sampling weight; 1 each by default).
    """
    n = len(scores)
    if n == 0 or len(quality) != n or len(cost) != n or (weights is not None and len(weights) != n):
        raise ValueError("scores, quality, cost (and weights) must be non-empty and of equal length")
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if min(w) < 0 or sum(w) <= 0:
        raise ValueError("weights must be non-negative, and not all 0")
    tiers = len(quality[0])
    ranked = sorted(scores)
    cuts = sorted({ranked[min(n - 1, q * n // (grid - 1))] for q in range(grid)} | {ranked[-1] + 1e-9})
    order = sorted(range(n), key=scores.__getitem__)
    ordered = [scores[i] for i in order]
    # Prefix sums per tier over prompts sorted by score make each threshold choice O(tiers).
    pre_q = [list(itertools.accumulate((w[i] * quality[i][k] for i in order), initial=0.0)) for k in range(tiers)]
    pre_c = [list(itertools.accumulate((w[i] * cost[i][k] for i in order), initial=0.0)) for k in range(tiers)]
    pre_w = list(itertools.accumulate((w[i] for i in order), initial=0.0))
    total = pre_w[-1]
    out = []
    for ths in itertools.combinations_with_replacement(cuts, tiers - 1):
        bounds = [0, *(bisect.bisect_left(ordered, t) for t in ths), n]
        q = sum(pre_q[k][bounds[k + 1]] - pre_q[k][bounds[k]] for k in range(tiers))
        c = sum(pre_c[k][bounds[k + 1]] - pre_c[k][bounds[k]] for k in range(tiers))
        out.append(Calibration(tuple(float(t) for t in ths), c / total, q / total, (total - pre_w[bounds[-2]]) / total, "", 0.0))
    return out


def calibrate(
    scores: Sequence[float],
    quality: Sequence[Sequence[float]],
    cost: Sequence[Sequence[float]],
    target: str = "quality",
    value: float = 0.95,
    weights: Sequence[float] | None = None,
) -> Calibration:
    """Thresholds meeting a target at least cost.

    target "quality": mean quality >= value x always-top-tier quality; "cost": mean cost per
    request <= value (then the best quality); "frontier_share": share of requests starting at the
    top tier <= value (then the best quality). `weights`: as in `sweep`, for every mean.
    """
    points = sweep(scores, quality, cost, weights=weights)
    if target == "quality":
        w = [1.0] * len(quality) if weights is None else [float(x) for x in weights]
        goal = value * sum(wi * row[-1] for wi, row in zip(w, quality, strict=True)) / sum(w)
        ok = [p for p in points if p.quality >= goal - 1e-12]
        best = min(ok, key=lambda p: (p.cost, -p.quality)) if ok else max(points, key=lambda p: (p.quality, -p.cost))
    elif target in ("cost", "frontier_share"):
        ok = [p for p in points if (p.cost if target == "cost" else p.frontier_share) <= value + 1e-12]
        if not ok:
            raise ValueError(f"no thresholds keep {target} at or under {value}")
        best = max(ok, key=lambda p: (p.quality, -p.cost))
    else:
        raise ValueError(f"unknown target {target!r}: use quality, cost or frontier_share")
    return Calibration(best.thresholds, best.cost, best.quality, best.frontier_share, target, value)
