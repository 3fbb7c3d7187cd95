"""Routing metrics the field publishes: the cost-quality curve of a two-model router, APGR, CPT."""

from __future__ import annotations

from collections.abc import Sequence


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
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
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
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if y1 >= goal - 1e-12:
            if y0 >= goal - 1e-12:
                return x0
            return x0 + (x1 - x0) * (goal - y0) / (y1 - y0)
    return 1.0


def tier_sweep(
    scores: Sequence[float], quality: Sequence[Sequence[float]], cost: Sequence[Sequence[float]], grid: int = 41
) -> list[tuple[float, float, tuple[float, ...]]]:
    """(mean cost, mean quality, thresholds) of a score-threshold router over a grid of thresholds.

    `quality[i][k]` and `cost[i][k]` are prompt i's outcome on tier k (cheapest first); a prompt
    whose score is under thresholds[k] goes to tier k, past every threshold to the last tier.
    Thresholds run over score quantiles, so the grid adapts to the score distribution.
    """
    import itertools

    n, tiers = len(scores), len(quality[0])
    ranked = sorted(scores)
    cuts = sorted({ranked[min(n - 1, int(q * n / (grid - 1)))] for q in range(grid)} | {ranked[0], ranked[-1] + 1e-9})
    out = []
    for ths in itertools.combinations_with_replacement(cuts, tiers - 1):
        q_sum = c_sum = 0.0
        for i, s in enumerate(scores):
            k = next((j for j, t in enumerate(ths) if s < t), tiers - 1)
            q_sum += quality[i][k]
            c_sum += cost[i][k]
        out.append((c_sum / n, q_sum / n, ths))
    return out


def least_cost_for_quality(points: Sequence[tuple[float, float, tuple[float, ...]]], target: float) -> tuple[float, float, tuple[float, ...]] | None:
    """The cheapest swept point whose mean quality reaches `target`, or None."""
    ok = [p for p in points if p[1] >= target - 1e-12]
    return min(ok, key=lambda p: (p[0], -p[1])) if ok else None


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
