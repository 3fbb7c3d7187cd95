"""nAPGR: the area under a router's cost-quality hull across tiers, against *expected* random routing.

For scores and per-tier outcomes, every pair (or tuple) of thresholds on a grid of score quantiles
gives a (mean cost, mean quality) point; the non-decreasing upper convex hull of those points,
averaged over cost from always-cheapest to always-top, and normalised so always-cheapest = 0 and
always-top = 1, is the nAPGR. Random routing's expectation is the hull of the always-tier points
alone (mixing tiers at fixed shares). The oracle is the per-prompt Lagrangian one: for each cost
weight, each prompt takes the tier that maximises quality minus weight x cost; the hull over the
weights bounds every per-prompt routing from above, graded quality included (the cheapest tier
that reaches a prompt's best quality does not). Intervals come from a paired bootstrap: every
router is measured on the same resampled rows in each round.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

GRID = 41  # threshold candidates per tier boundary: score quantiles
WEIGHTS = 257  # cost weights of the oracle: quantiles of the prompts' own break-even weights


@dataclass(frozen=True)
class NapgrResult:
    """nAPGR of each scorer, of random and of the oracle, the gap closed, and paired 95% intervals."""

    napgr: dict[str, float]
    random: float
    oracle: float
    gap_closed: dict[str, float]
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"napgr": self.napgr, "random": self.random, "oracle": self.oracle, "gap_closed": self.gap_closed,
                "ci95": {k: list(v) for k, v in self.ci95.items()}, "rows": self.rows}


def oracle_scores(quality: Sequence[Sequence[float]]) -> list[float]:
    """Perfect-hindsight scores: the cheapest tier reaching the prompt's best quality (ties: by gain)."""
    out = []
    for q in quality:
        best = max(q)
        k = next(i for i, v in enumerate(q) if v >= best - 1e-12)
        out.append(k + 0.5 * (best - q[0]))  # within a tier, prompts the cheapest tier fails most go up first
    return out


class _Table:
    """One scorer's rows sorted by score, with the tier boundaries of every threshold choice."""

    def __init__(self, scores: Any, quality: Any, cost: Any) -> None:
        import numpy as np

        order = np.argsort(scores, kind="stable")
        ranked = scores[order]
        self.q, self.c = quality[order], cost[order]
        self.order = order
        n, tiers = quality.shape
        cuts = np.unique(np.concatenate([ranked[np.minimum(n - 1, np.arange(GRID) * n // (GRID - 1))], [ranked[-1] + 1e-9]]))
        pos = np.searchsorted(ranked, cuts, side="left")
        combos = np.array(list(itertools.combinations_with_replacement(np.unique(pos), tiers - 1)), dtype=int).reshape(-1, tiers - 1)
        self.bounds = np.hstack([np.zeros((len(combos), 1), dtype=int), combos, np.full((len(combos), 1), n)])

    def points(self, w: Any) -> tuple[Any, Any]:
        """(mean cost, mean quality) of every threshold choice, rows weighted by `w` (in input order)."""
        import numpy as np

        ws = w[self.order]
        total = ws.sum()
        tiers = self.q.shape[1]
        pq = np.vstack([np.zeros(tiers), np.cumsum(ws[:, None] * self.q, axis=0)])
        pc = np.vstack([np.zeros(tiers), np.cumsum(ws[:, None] * self.c, axis=0)])
        cols = np.arange(tiers)
        mean_q = (pq[self.bounds[:, 1:], cols] - pq[self.bounds[:, :-1], cols]).sum(axis=1) / total
        mean_c = (pc[self.bounds[:, 1:], cols] - pc[self.bounds[:, :-1], cols]).sum(axis=1) / total
        return mean_c, mean_q


class _Oracle:
    """The per-prompt Lagrangian oracle: for each cost weight, every prompt on its best tier."""

    def __init__(self, quality: Any, cost: Any) -> None:
        import numpy as np

        self.q, self.c = quality, cost
        tiers = quality.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):  # tiers of equal cost have no break-even weight
            breaks = [(quality[:, j] - quality[:, k]) / (cost[:, j] - cost[:, k])
                      for k in range(tiers) for j in range(k + 1, tiers)]
        found = np.concatenate(breaks) if breaks else np.zeros(0)
        found = found[np.isfinite(found) & (found > 0)]
        # Fewer weights on very large sets: the choices are kept as weights x prompts bytes.
        count = max(33, min(WEIGHTS, 50_000_000 // max(1, 2 * quality.shape[0])))
        inner = np.quantile(found, np.linspace(0, 1, count)) if len(found) else np.zeros(0)
        # Each weight just under and over each chosen break-even, plus 0 (best quality, cheapest on ties) and a weight past all.
        self.weights = np.unique(np.concatenate([[0.0], inner * (1 - 1e-9), inner * (1 + 1e-9), [found.max() * 2 + 1 if len(found) else 1.0]]))
        # Ties go to the cheaper tier: a vanishing extra weight on cost. One weight at a time: bounded memory.
        self.choice = np.empty((len(self.weights), quality.shape[0]), dtype=np.int8)
        for i, lam in enumerate(self.weights):
            self.choice[i] = np.argmax(quality - (lam + 1e-12) * cost, axis=1)

    def points(self, w: Any) -> tuple[Any, Any]:
        import numpy as np

        rows = np.arange(self.q.shape[0])
        total = w.sum()
        mean_q = (self.q[rows, self.choice] * w).sum(axis=1) / total
        mean_c = (self.c[rows, self.choice] * w).sum(axis=1) / total
        return mean_c, mean_q


def _area(cost: Any, qual: Any, low: float, high: float, q_low: float, q_high: float) -> float:
    """Normalised mean of the upper hull over [low, high] cost."""
    import numpy as np

    keep = np.argsort(cost, kind="stable")
    xs, ys = cost[keep], qual[keep]
    best = np.maximum.accumulate(ys)
    pareto = np.concatenate([[True], best[1:] > best[:-1] + 1e-15])  # only points that raise quality
    hull: list[tuple[float, float]] = []
    for x, y in zip(xs[pareto].tolist(), best[pareto].tolist()):
        while len(hull) >= 2 and (hull[-1][0] - hull[-2][0]) * (y - hull[-2][1]) >= (hull[-1][1] - hull[-2][1]) * (x - hull[-2][0]):
            hull.pop()
        hull.append((x, y))
    grid_x = np.array([h[0] for h in hull])
    grid_y = np.array([h[1] for h in hull])
    if high <= low:
        return 1.0
    inside = (grid_x > low) & (grid_x < high)
    px = np.concatenate([[low], grid_x[inside], [high]])
    py = np.interp(px, grid_x, grid_y)
    mean = float(np.sum(np.diff(px) * (py[1:] + py[:-1]) / 2) / (high - low))
    return (mean - q_low) / (q_high - q_low)


class _Points(Protocol):
    def points(self, w: Any) -> tuple[Any, Any]: ...


def _measure(tables: Mapping[str, _Points], quality: Any, cost: Any, w: Any) -> dict[str, float]:
    """Each table's nAPGR and random routing's, with rows weighted by `w` (a bootstrap round)."""
    total = w.sum()
    q_tier = (w[:, None] * quality).sum(axis=0) / total
    c_tier = (w[:, None] * cost).sum(axis=0) / total
    low, high, q_low, q_high = float(c_tier[0]), float(c_tier[-1]), float(q_tier[0]), float(q_tier[-1])
    if q_high <= q_low:
        raise ValueError("the top tier is not better than the cheapest on these rows: nAPGR is undefined")
    out = {name: _area(*t.points(w), low, high, q_low, q_high) for name, t in tables.items()}
    out["random"] = _area(c_tier, q_tier, low, high, q_low, q_high)
    return out


def napgr(
    scores: Mapping[str, Sequence[float]] | Sequence[float],
    quality: Sequence[Sequence[float]],
    cost: Sequence[Sequence[float]],
    rounds: int = 1000,
    seed: int = 0,
) -> NapgrResult:
    """nAPGR of one scorer (or several by name, compared paired) with random, the oracle and intervals.

    `quality[i][k]`, `cost[i][k]`: prompt i on tier k, cheapest first. Interval keys: each name,
    `NAME gap` (share of the random-to-oracle gap closed), and `A - B` for every pair of scorers.
    """
    import numpy as np

    named = dict(scores) if isinstance(scores, Mapping) else {"router": scores}
    q = np.asarray(quality, dtype=float)
    c = np.asarray(cost, dtype=float)
    if q.ndim != 2 or q.shape != c.shape or q.shape[1] < 2 or any(len(s) != len(q) for s in named.values()):
        raise ValueError("quality and cost must be rows x tiers (at least 2 tiers), and each scorer needs a score per row")
    tables: dict[str, _Table | _Oracle] = {name: _Table(np.asarray(s, dtype=float), q, c) for name, s in named.items()}
    tables["oracle"] = _Oracle(q, c)
    point = _measure(tables, q, c, np.ones(len(q)))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(rounds):
        try:
            m = _measure(tables, q, c, rng.poisson(1.0, len(q)).astype(float))
        except ValueError:
            continue  # a resample where the top tier is not better: no figure for that round
        for name in named:
            draws.setdefault(name, []).append(m[name])
            draws.setdefault(f"{name} gap", []).append(_gap(m[name], m["random"], m["oracle"]))
        for a, b in itertools.permutations(named, 2):
            draws.setdefault(f"{a} - {b}", []).append(m[a] - m[b])
    ci = {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for k, v in draws.items() if len(v) >= 10}
    return NapgrResult(
        napgr={name: point[name] for name in named}, random=point["random"], oracle=point["oracle"],
        gap_closed={name: _gap(point[name], point["random"], point["oracle"]) for name in named}, ci95=ci, rows=len(q),
    )


def _gap(value: float, random: float, oracle: float) -> float:
    return (value - random) / (oracle - random) if oracle > random else 0.0
