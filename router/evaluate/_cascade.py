"""nAPGR of a cascade: the prompt score picks the first tier, and at each tier below the top an
answer score under that tier's bar escalates to the next one (both calls paid). The prompt
thresholds and the bars are chosen together: every combination gives a (cost, quality) point and
the hull over all of them is measured as `napgr` measures a prompt-only router, on the same rows,
with the same random baseline and oracle. Extra thresholds flatter any policy, so the same cascade
fed shuffled answer scores is measured beside it: the difference is what the answers tell.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from policies import BARS, cascade_paths
from router.evaluate._napgr import NapgrResult, _gap, _measure, _Oracle, _Table


class _Cascade:
    """Every bar choice as a table of prompt thresholds: the union of their points."""

    def __init__(self, scores: Any, answer: Any, quality: Any, cost: Any, extra: Any, reuse: Any) -> None:
        tiers = quality.shape[1]
        import numpy as np

        args = (answer.tolist(), quality.tolist(), cost.tolist())
        self.tables = [_Table(scores, *(np.asarray(m, dtype=float) for m in cascade_paths(*args, bars, extra.tolist(), reuse.tolist())))
                       for bars in itertools.product(BARS, repeat=tiers - 1)]

    def points(self, w: Any) -> tuple[Any, Any]:
        import numpy as np

        found = [t.points(w) for t in self.tables]
        return np.concatenate([c for c, _ in found]), np.concatenate([q for _, q in found])


def cascade_napgr(
    prompt_scores: Sequence[float], answer_scores: Sequence[Sequence[float | None]], quality: Sequence[Sequence[float]],
    cost: Sequence[Sequence[float]], rounds: int = 300, seed: int = 0, extra_cost: Sequence[Sequence[float]] | None = None,
    reuse: Sequence[Sequence[bool]] | None = None,
) -> NapgrResult:
    """nAPGR of `prompt` (thresholds only), `cascade` (thresholds and answer bars) and `shuffled`
    (the cascade with each tier's answer scores shuffled across rows), paired: `answer_scores[i][k]`
    is tier k's answer on row i scored in [0, 1], None for no signal (never escalates);
    `extra_cost[i][k]` what scoring it pays beyond the tier's own call (a second answer), and
    `reuse[i][k]` whether an escalation from tier k re-uses the answer the check already bought."""
    import numpy as np

    q, c = np.asarray(quality, dtype=float), np.asarray(cost, dtype=float)
    s = np.asarray(prompt_scores, dtype=float)
    a = np.asarray([[1.0 if v is None else float(v) for v in row] for row in answer_scores], dtype=float)
    if a.shape != q.shape or q.shape != c.shape or len(s) != len(q):
        raise ValueError("prompt scores, answer scores, quality and cost need one row per prompt and one column per tier")
    extra = np.zeros_like(q) if extra_cost is None else np.asarray(extra_cost, dtype=float)
    again = np.zeros(q.shape, dtype=bool) if reuse is None else np.asarray(reuse, dtype=bool)
    if extra.shape != q.shape or again.shape != q.shape:
        raise ValueError("extra_cost and reuse need one row per prompt and one column per tier")
    rng = np.random.default_rng(seed)
    shuffled = np.column_stack([rng.permutation(a[:, k]) for k in range(a.shape[1])])
    tables: dict[str, _Table | _Cascade | _Oracle] = {"prompt": _Table(s, q, c), "cascade": _Cascade(s, a, q, c, extra, again),
                                                      "shuffled": _Cascade(s, shuffled, q, c, extra, again), "oracle": _Oracle(q, c)}

    point = _measure(tables, q, c, np.ones(len(q)))
    names = ("prompt", "cascade", "shuffled")
    draws: dict[str, list[float]] = {}
    for _ in range(rounds):
        try:
            m = _measure(tables, q, c, rng.poisson(1.0, len(q)).astype(float))
        except ValueError:
            continue
        for name in names:
            draws.setdefault(name, []).append(m[name])
            draws.setdefault(f"{name} gap", []).append(_gap(m[name], m["random"], m["oracle"]))
        for a_name, b_name in (("cascade", "prompt"), ("cascade", "shuffled")):
            draws.setdefault(f"{a_name} - {b_name}", []).append(m[a_name] - m[b_name])
    ci = {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for k, v in draws.items() if len(v) >= 10}
    return NapgrResult(napgr={n: point[n] for n in names}, random=point["random"], oracle=point["oracle"],
                       gap_closed={n: _gap(point[n], point["random"], point["oracle"]) for n in names}, ci95=ci, rows=len(q))
