"""Routing metrics the field publishes: APGR and CPT of a two-model router, AIQ and the convex hull
of a cost-quality curve, least costs for a quality target."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise


def strong_share_curve(
    scores: Sequence[float], q_weak: Sequence[float], q_strong: Sequence[float]
) -> list[tuple[float, float]]:
    """(share of strong calls, mean quality) as the threshold sweeps from above every score to below.

    Prompts with the highest scores go to the strong model first. Prompts with tied scores move
    together, so the curve is linear between tie groups: the expectation of random tie-breaking.
    """
    n = len(scores)
    if n == 0 or not (len(q_weak) == len(q_strong) == n):
        raise ValueError("scores, q_weak and q_strong must be non-empty and of equal length")
    order = sorted(range(n), key=lambda i: -scores[i])
    total = float(sum(q_weak))
    points = [(0.0, total / n)]
    i = 0
    while i < n:
        j = i
        while j < n and scores[order[j]] == scores[order[i]]:
            total += q_strong[order[j]] - q_weak[order[j]]
            j += 1
        points.append((j / n, total / n))
        i = j
    return points


def apgr(scores: Sequence[float], q_weak: Sequence[float], q_strong: Sequence[float]) -> float:
    """RouteLLM's average performance gap recovered: the area under PGR against strong-call share.

    Random routing gives 0.5 in expectation; an oracle approaches 1 (more when the weak model beats
    the strong one on some prompts).
    """
    curve = strong_share_curve(scores, q_weak, q_strong)
    weak, strong = curve[0][1], curve[-1][1]
    if strong == weak:
        raise ValueError("the two models have equal mean quality: PGR is undefined")
    area = 0.0
    for (x0, y0), (x1, y1) in pairwise(curve):
        area += (x1 - x0) * ((y0 - weak) + (y1 - weak)) / 2
    return area / (strong - weak)


def cpt(
    scores: Sequence[float], q_weak: Sequence[float], q_strong: Sequence[float], pgr_target: float
) -> float:
    """RouteLLM's call-performance threshold: least share of strong calls reaching `pgr_target` PGR."""
    curve = strong_share_curve(scores, q_weak, q_strong)
    weak, strong = curve[0][1], curve[-1][1]
    if strong == weak:
        raise ValueError("the two models have equal mean quality: PGR is undefined")
    goal = weak + pgr_target * (strong - weak)
    for (x0, y0), (x1, y1) in pairwise(curve):
        if y1 >= goal - 1e-12:
            if y0 >= goal - 1e-12:
                return x0
            return x0 + (x1 - x0) * (goal - y0) / (y1 - y0)
    return 1.0



def least_cost_for_quality(scores: Sequence[float], quality: Sequence[Sequence[float]], cost: Sequence[Sequence[float]], target: float) -> tuple[float, float] | None:
    """(mean cost, mean quality) of the cheapest threshold choice whose mean quality reaches `target`."""
    from policies import sweep

    ok = [p for p in sweep(scores, quality, cost) if p.quality >= target - 1e-12]
    best = min(ok, key=lambda p: (p.cost, -p.quality)) if ok else None
    return None if best is None else (best.cost, best.quality)

def random_least_cost(quality: Sequence[Sequence[float]], cost: Sequence[Sequence[float]], target: float, steps: int = 100) -> float | None:
    """Least mean cost of random routing (fixed tier shares) whose expected quality reaches `target`."""
    import itertools

    tiers = len(quality[0])
    q = [sum(row[k] for row in quality) / len(quality) for k in range(tiers)]
    c = [sum(row[k] for row in cost) / len(cost) for k in range(tiers)]
    best = None
    for parts in itertools.product(range(steps + 1), repeat=tiers - 1):
        if sum(parts) > steps:
            continue
        shares = [p / steps for p in parts] + [1 - sum(parts) / steps]
        if sum(s * qk for s, qk in zip(shares, q)) >= target - 1e-12:
            mean_cost = sum(s * ck for s, ck in zip(shares, c))
            best = mean_cost if best is None else min(best, mean_cost)
    return best


def upper_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-decreasing upper convex hull of (cost, quality) points, cheapest first."""
    hull: list[tuple[float, float]] = []
    for p in sorted(set(points)):
        if hull and p[1] <= hull[-1][1]:
            continue
        while len(hull) >= 2 and (hull[-1][0] - hull[-2][0]) * (p[1] - hull[-2][1]) >= (hull[-1][1] - hull[-2][1]) * (p[0] - hull[-2][0]):
            hull.pop()
        hull.append(p)
    return hull


def interp(hull: Sequence[tuple[float, float]], x: float) -> float:
    if x <= hull[0][0]:
        return hull[0][1]
    for (x0, y0), (x1, y1) in pairwise(hull):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return hull[-1][1]


def aiq(curve: Sequence[tuple[float, float]], low: float, high: float) -> float:
    """RouterBench's AIQ: mean quality of the router's non-decreasing convex hull over [low, high] cost."""
    hull = upper_hull(curve)
    if high <= low:
        return hull[-1][1]
    xs = sorted({low, high, *(x for x, _ in hull if low < x < high)})
    area = sum((x1 - x0) * (interp(hull, x0) + interp(hull, x1)) / 2 for x0, x1 in pairwise(xs))
    return area / (high - low)
