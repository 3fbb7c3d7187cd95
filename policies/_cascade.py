"""One cascade policy: the prompt score picks the first tier, and at each tier below the top an
answer score under that tier's bar moves the request up (both calls paid). Calibration chooses the
prompt thresholds and the bars together, for a target, on the labelled rows it is given (a dev
carve: never the rows a report shows).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from policies._calibrate import sweep

NEVER = -1.0  # a bar no score is under: that tier's answer is not checked
BARS = (NEVER, 0.25, 0.5, 0.75, 1.0)  # the grid evaluation measures (and the bars a hull is taken over)
CALIBRATION_BARS = (NEVER, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def cascade_paths(
    answer: Sequence[Sequence[float]], quality: Sequence[Sequence[float]], cost: Sequence[Sequence[float]], bars: Sequence[float],
    extra: Sequence[Sequence[float]] | None = None, reuse: Sequence[Sequence[bool]] | None = None,
) -> tuple[list[list[float]], list[list[float]]]:
    """Per row and starting tier: the quality obtained and the cost paid when each tier's answer
    escalates below its bar (`answer[i][k]` in [0, 1]; 1.0 for no signal). Every tier tried is
    paid, and so is a check's own cost (`extra[i][k]`, e.g. a second answer) when its bar can
    escalate; `reuse[i][k]` marks a check whose second answer is the next tier's, so escalating
    pays nothing more for it."""
    tiers = len(bars) + 1
    q_out, c_out = [], []
    for i, (q, c) in enumerate(zip(quality, cost, strict=True)):
        qs, cs = [], []
        for start in range(tiers):
            at, paid = start, c[start]
            for k in range(start, tiers - 1):
                if at != k or bars[k] < 0:
                    continue  # not here, or this tier's answer is not checked: nothing escalates, nothing extra is paid
                paid += extra[i][k] if extra is not None else 0.0
                if answer[i][k] < bars[k]:
                    paid += 0.0 if reuse is not None and reuse[i][k] else c[k + 1]
                    at = k + 1
            qs.append(q[at])
            cs.append(paid)
        q_out.append(qs)
        c_out.append(cs)
    return q_out, c_out


@dataclass(frozen=True)
class CascadeCalibration:
    """Thresholds and bars (NEVER: not checked) chosen together, and what they give per request."""

    thresholds: tuple[float, ...]
    bars: tuple[float, ...]
    cost: float
    quality: float
    frontier_share: float  # requests that start at the top tier
    target: str
    value: float


def calibrate_cascade(
    scores: Sequence[float], answer: Sequence[Sequence[float | None]], quality: Sequence[Sequence[float]],
    cost: Sequence[Sequence[float]], target: str = "quality", value: float = 0.95,
    extra: Sequence[Sequence[float]] | None = None, reuse: Sequence[Sequence[bool]] | None = None,
    bar_grid: Sequence[float] = CALIBRATION_BARS,
) -> CascadeCalibration:
    """The thresholds and bars that meet a target at least cost ("quality": mean quality >= value x
    always-top quality), or the best quality within it ("cost": mean cost <= value). A missing
    answer score (None) never escalates; with every bar NEVER this is plain `calibrate`."""
    if target not in ("quality", "cost"):
        raise ValueError(f"unknown target {target!r}: use quality or cost")
    tiers = len(quality[0]) if quality else 0
    filled = [[1.0 if a is None else float(a) for a in row] for row in answer]
    points = []
    for bars in itertools.product(bar_grid, repeat=max(0, tiers - 1)):
        q_paths, c_paths = cascade_paths(filled, quality, cost, bars, extra, reuse)
        points += [(p, bars) for p in sweep(scores, q_paths, c_paths)]
    if target == "quality":
        goal = value * sum(row[-1] for row in quality) / len(quality)
        ok = [x for x in points if x[0].quality >= goal - 1e-12]
        best = min(ok, key=lambda x: (x[0].cost, -x[0].quality)) if ok else max(points, key=lambda x: (x[0].quality, -x[0].cost))
    else:
        ok = [x for x in points if x[0].cost <= value + 1e-12]
        if not ok:
            raise ValueError(f"no thresholds and bars keep the cost at or under {value}")
        best = max(ok, key=lambda x: (x[0].quality, -x[0].cost))
    p, bars = best
    return CascadeCalibration(p.thresholds, tuple(bars), p.cost, p.quality, p.frontier_share, target, value)
