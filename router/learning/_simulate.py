"""`tierwise simulate`: replay a labelled set as a stream and show what learning from it is worth.

The router routes each prompt with the model in force, buys a label on a sampled share of the stream
(the recorded outcome of every tier, graded by a judge that may err), refits every `refit_every`
labels, and the report shows, window by window, nAPGR and the gap closed, against the static prior
on the same rows, with the money spent (labels included) against always-top.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from classifiers import Classifier, LinearClassifier, Outcome, Row
from router.learning._refit import refit
from router.learning._verify import Escalation, graded_locally, label_answers, refit_verifier
from router.ledger import Label

BINS = 10  # score bins that shadow sampling keeps evenly covered


@dataclass
class Simulation:
    """The learning curve of one simulated stream."""

    tiers: list[str]
    rows: int
    windows: list[dict[str, Any]] = field(default_factory=list)
    last_half: dict[str, Any] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)
    refits: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tiers": self.tiers, "rows": self.rows, "windows": self.windows, "last_half": self.last_half,
                "totals": self.totals, "refits": self.refits}

    def text(self) -> str:
        verifiers = sum(bool(r.get("verifier", {}).get("swapped")) for r in self.refits)
        lines = [(f"{self.rows} requests, tiers {' / '.join(self.tiers)}; {len(self.refits)} refits "
                 f"({sum(r['swapped'] for r in self.refits)} swapped in" + (f", {verifiers} verifiers" if verifiers else "") + ")"), "",
                 f"{'window':>8} {'labels':>7} {'nAPGR':>7} {'prior':>7} {'gap':>7} {'prior':>7} {'cost/top':>9} {'q/top':>7}"]
        for w in self.windows:
            lines.append(f"{w['end']:>8} {w['labels']:>7} {w['napgr']:7.3f} {w['prior_napgr']:7.3f} {w['gap_closed']:7.1%} "
                         f"{w['prior_gap_closed']:7.1%} {w['cost_vs_top']:9.1%} {w['quality_vs_top']:7.1%}")
        h, t = self.last_half, self.totals
        if "gap_closed" in h:
            ci = h.get("ci95", {})
            lines += ["", (f"last half: learning closes {h['gap_closed']:.1%} of the random-to-oracle gap "
                          f"({_ci(ci.get('learning gap'))}), the static prior {h['prior_gap_closed']:.1%} ({_ci(ci.get('prior gap'))}); "
                          f"nAPGR difference {h['napgr'] - h['prior_napgr']:+.3f} ({_ci(ci.get('learning - prior'), '+.3f')})")]
        equal = t.get("prior_cost_at_equal_quality")
        lines.append(f"cost with labels {t['cost_vs_top']:.1%} of always-top (labels {t['label_cost_vs_top']:.1%}), quality "
                     f"{t['quality_vs_top']:.1%}; the static prior at its thresholds: cost {t['prior_cost_vs_top']:.1%}, "
                     f"quality {t['prior_quality_vs_top']:.1%}; at the learner's quality: "
                     + ("not reached" if equal is None else f"cost {equal:.1%}"))
        lines.append(self.verdict())
        return "\n".join(lines)

    def verdict(self) -> str:
        """One line: whether learning paid for its labels on this stream, at equal quality."""
        t = self.totals
        equal = t.get("prior_cost_at_equal_quality")
        if equal is None:
            return (f"learning reached a quality the static prior cannot ({t['quality_vs_top']:.1%} of always-top) at "
                    f"{t['cost_vs_top']:.1%} of its cost, labels included")
        if t["cost_vs_top"] <= equal:
            return (f"learning saved {1 - t['cost_vs_top'] / equal:.0%} at equal quality: {t['cost_vs_top']:.1%} of always-top with "
                    f"labels ({t['label_cost_vs_top']:.1%}) against the static prior's {equal:.1%}")
        return (f"learning lost: {t['cost_vs_top']:.1%} of always-top with labels ({t['label_cost_vs_top']:.1%}) against the static "
                f"prior's {equal:.1%} at the same quality ({t['quality_vs_top']:.1%})")

    def plot(self, path: str) -> str:
        """Quality (gap closed) and cost (labels apart) for the learner and the static prior, window by window."""
        from router.evaluate._report import new_figure

        fig = new_figure("the learning curve picture", (10, 4))
        xs = [w["end"] for w in self.windows]
        ax = fig.add_subplot(1, 2, 1)
        ax.plot(xs, [w["gap_closed"] for w in self.windows], "o-", label="learning (labels + refits)")
        ax.plot(xs, [w["prior_gap_closed"] for w in self.windows], "s--", color="gray", label="static prior")
        ax.axhline(0, color="black", lw=0.5)
        ax.set_xlabel("requests served")
        ax.set_ylabel("share of random-to-oracle gap closed (window)")
        ax.legend()
        ax = fig.add_subplot(1, 2, 2)
        ax.plot(xs, [w["cost_vs_top"] for w in self.windows], "o-", label="learning, labels included")
        ax.plot(xs, [w["label_cost_vs_top"] for w in self.windows], "^:", label="of which labels")
        ax.plot(xs, [w["prior_cost_vs_top"] for w in self.windows], "s--", color="gray", label="static prior")
        ax.set_xlabel("requests served")
        ax.set_ylabel("cost so far, share of always-top")
        ax.legend()
        fig.suptitle(self.verdict(), fontsize=8)
        fig.savefig(path)
        return path


def _ci(pair: Any, fmt: str = ".1%") -> str:
    return "95% CI " + " to ".join(format(v, fmt) for v in pair) if pair else "no interval"


class _Sampler:
    """Shadow sampling at `rate` overall, spread so that every score bin seen gets a like share of the
    labels: a bin with little traffic is sampled more, a crowded one less (within 2x of `rate`: labels
    that stray far from the traffic teach a model that ranks the traffic worse). `weight` is what the
    last request taken stands for: `rate` over its chance (1 at the overall rate), carried into every
    fit and calibration so that labels weigh as the traffic does."""

    def __init__(self, rate: float, rng: random.Random) -> None:
        self.rate, self.rng, self.seen = rate, rng, [0] * BINS
        self.weight = 1.0

    def take(self, score: float) -> bool:
        b = min(max(int(score * BINS), 0), BINS - 1)
        self.seen[b] += 1
        total, used = sum(self.seen), sum(1 for n in self.seen if n)
        p = self.rate * total / (used * self.seen[b])  # this bin's fair share of the labels, over its share of traffic
        chance = min(1.0, 2 * self.rate, max(self.rate / 2, p))
        self.weight = self.rate / chance if chance > 0 else 1.0
        return self.rng.random() < chance


def simulate(
    rows: Sequence[Row],
    tiers: Sequence[str],
    prior: LinearClassifier,
    *,
    quality: Sequence[Sequence[float]],
    cost: Sequence[Sequence[float]],
    thresholds: Sequence[float],
    shadow_rate: float = 0.05,
    judge_noise: float = 0.0,
    judge_cost: float | None = None,
    refit_every: int = 100,
    windows: int = 10,
    target: float = 0.95,
    seed: int = 0,
    labels: int | None = None,
    downward: bool = False,
    verifier: bool = False,
    bar: float = 0.5,
    grade_locally: bool = False,
) -> Simulation:
    """Replay `rows` (with per-tier `quality` and `cost`, cheapest first) in a seeded order; see the module.
    `labels`: a label budget for the whole stream, spread over it (the rate falls as labels arrive);
    `shadow_rate` stays an upper bound. `downward`: a request a stronger tier answered buys only the
    cheapest tier's answer, graded against the one served (which stands in for the top tier's in the
    label); one the cheapest tier answered buys an upward shadow (with `verifier` too, only a grade of
    the answer served: the verifier learns from it, one judge call). `verifier`: labels keep their
    answers' verifier features (the rows' recorded responses; no hashed words, as without
    store_prompts), refits train the verifier as `learning.verifier` does, and once one is in force
    an answer below the top scoring under `bar` moves the request up a tier (both calls paid).
    `grade_locally`: a downward label whose two recorded answers settle on a final answer is graded
    by their match (`learning.grade_locally`), with no judge paid and no judge noise."""

    if not 0 <= shadow_rate <= 1 or not 0 <= judge_noise <= 1 or not 0 <= bar <= 1 or refit_every < 0:
        raise ValueError("shadow_rate, judge_noise and bar must be in [0, 1], refit_every >= 0")
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    n_tiers = len(tiers)
    # A grade reads the request and one answer and writes one number: by default a tenth of a top-tier call.
    grade_cost = 0.1 * sum(c[-1] for c in cost) / len(cost) if judge_cost is None else judge_cost
    sampler, ths = _Sampler(shadow_rate, rng), list(thresholds)
    model: Classifier = prior
    checker: Any = None  # the learned verifier in force
    graded_answers: list[Label] = []
    answered: list[list[dict[str, Any]]] = []  # the messages of each of those labels
    labels_bought: list[Row] = []  # what the prompt model refits on
    bought = 0  # every label paid for, answers graded alone included
    steps: list[_Step] = []
    since = 0
    sim = Simulation(list(tiers), len(rows))
    for i in order:
        row = rows[i]
        s = model.score(row.messages)
        p = prior.score(row.messages) if model is not prior else s
        k, paid = _escalated(row, tiers, _tier(s, ths), checker, bar, cost[i])
        step = _Step(i, s, p, k, _tier(p, thresholds), paid=paid)
        steps.append(step)
        if labels is not None:  # a budget spread over what is left of the stream
            sampler.rate = min(shadow_rate, max(0, labels - bought) / max(1, len(rows) - len(steps) + 1))
        if sampler.rate and (labels is None or bought < labels) and sampler.take(s):
            weight = sampler.weight
            def grade(q: float) -> float:
                return 1 - q if rng.random() < judge_noise else q

            if downward and verifier and k == 0:  # the answer served, graded alone: what the verifier learns from
                step.label_cost = grade_cost
                graded = {tiers[0]: Outcome(quality=grade(quality[i][0]), cost_usd=cost[i][0])}
            elif downward and k > 0:  # the cheapest tier's answer, graded against the answer served (the reference)
                local = _local(row, tiers[0], tiers[k]) if grade_locally else None
                step.label_cost = cost[i][0] + (grade_cost if local is None else 0.0)
                graded = {tiers[0]: Outcome(quality=grade(quality[i][0]) if local is None else local, cost_usd=cost[i][0]),
                          tiers[-1]: Outcome(quality=quality[i][k], cost_usd=cost[i][k])}
            else:  # an upward shadow: every tier not tried, each graded
                step.label_cost = sum(c for j, c in enumerate(cost[i]) if j != k) + grade_cost * n_tiers
                graded = {t: Outcome(quality=grade(q), cost_usd=c) for t, q, c in zip(tiers, quality[i], cost[i])}
            if tiers[-1] in graded:  # an answer graded alone teaches the verifier only (as `rows_of` leaves it out)
                labels_bought.append(Row(id=row.id, messages=row.messages, outcomes=graded, source="shadow", weight=weight))
            if verifier:
                texts = {t: text for t in graded if t != tiers[-1] and isinstance(text := row.outcomes[t].response, str)}
                graded_answers.append(Label(row.id, "sim", "shadow", {t: o.quality for t, o in graded.items()},
                                            {"answers": label_answers(row.messages, texts, words=False), "sw": weight},
                                            {t: o.cost_usd for t, o in graded.items() if o.cost_usd is not None}))
                answered.append(row.messages)
            step.labelled = True
            since += 1
            bought += 1
        if refit_every and since >= refit_every:
            since = 0
            r = refit(labels_bought, tiers, model, prior, ths, target, seed)
            model, ths = r.classifier, list(r.thresholds)
            sim.refits.append({"at": len(steps), "labels": r.labels, "swapped": r.swapped, "auc_old": r.auc_old,
                               "auc_new": r.auc_new, "thresholds": [round(t, 4) for t in ths], "why": r.why})
            if verifier:
                how = Escalation(tiers, [model.score(m) for m in answered], ths, [bar] * (n_tiers - 1))
                v = refit_verifier(graded_answers, checker, seed, how)
                checker = v.verifier
                sim.refits[-1]["verifier"] = {"swapped": v.swapped, "answers": v.answers, "why": v.why}
    size = max(1, len(steps) // windows)
    for end in range(size, len(steps) + 1, size):
        window = _figures(steps[end - size:end], steps[:end], quality, cost, rounds=0)
        if window:
            sim.windows.append({"end": end, **window})
    sim.last_half = _figures(steps[len(steps) // 2:], steps, quality, cost, rounds=1000)
    sim.totals = {k: v for k, v in _figures(steps, steps, quality, cost, rounds=0).items() if not k.endswith("napgr") and "gap" not in k}
    sim.totals["prior_cost_at_equal_quality"] = _prior_cost_at(steps, quality, cost, sim.totals["quality_vs_top"])
    sim.totals["verdict"] = sim.verdict()
    return sim


def _prior_cost_at(steps: list[_Step], quality: Sequence[Sequence[float]], cost: Sequence[Sequence[float]], share: float) -> float | None:
    """The static prior's least cost (share of always-top) reaching the learner's quality: at its best
    thresholds on a grid of score quantiles, or at the thresholds it started with, whichever is cheaper
    (a coarse grid alone would price the prior above its own operating point and flatter learning)."""
    from policies import sweep

    q, c = [quality[s.row] for s in steps], [cost[s.row] for s in steps]
    top_q, top_c = sum(x[-1] for x in q) / len(q), sum(x[-1] for x in c) / len(c) or 1.0
    own = (sum(c[j][s.prior_tier] for j, s in enumerate(steps)) / len(c), sum(q[j][s.prior_tier] for j, s in enumerate(steps)) / len(q))
    points = [(p.cost, p.quality) for p in sweep([s.prior_score for s in steps], q, c, grid=101)] + [own]
    ok = [cst for cst, qual in points if qual >= share * top_q - 1e-12]
    return min(ok) / top_c if ok else None


def _local(row: Row, cheap: str, served: str) -> float | None:
    """The grade `learning.grade_locally` gives the cheap tier's recorded answer against the served one."""
    a, b = row.outcomes[cheap].response, row.outcomes[served].response
    return graded_locally(a, b) if isinstance(a, str) and isinstance(b, str) else None


def _escalated(row: Row, tiers: Sequence[str], k: int, checker: Any, bar: float, cost: Sequence[float]) -> tuple[int, float | None]:
    """The tier that serves the row once the verifier in force has read each answer below the top,
    and what every tier tried cost (None: no verifier, the tier's own cost)."""
    if checker is None:
        return k, None
    paid = cost[k]
    while k < len(tiers) - 1:
        text = row.outcomes[tiers[k]].response
        score = checker.score(row.messages, text) if isinstance(text, str) else None
        if score is None or score >= bar:
            break
        k += 1
        paid += cost[k]
    return k, paid


def _tier(score: float, thresholds: Sequence[float]) -> int:
    return next((j for j, t in enumerate(thresholds) if score < t), len(thresholds))


@dataclass
class _Step:
    row: int
    score: float
    prior_score: float
    tier: int  # the tier that served it
    prior_tier: int
    label_cost: float = 0.0
    labelled: bool = False  # a label was bought here (its cost may be 0: a free cheap tier graded locally)
    paid: float | None = None  # every tier tried, when the verifier moved it up (else the serving tier's cost)


def _figures(part: list[_Step], upto: list[_Step], quality: Sequence[Sequence[float]], cost: Sequence[Sequence[float]], rounds: int) -> dict[str, Any]:
    """nAPGR of the scores in force against the static prior on `part`; money and quality so far on `upto`."""
    from router.evaluate import napgr

    out: dict[str, Any] = {"labels": sum(s.labelled for s in upto)}
    try:
        res = napgr({"learning": [s.score for s in part], "prior": [s.prior_score for s in part]},
                    [quality[s.row] for s in part], [cost[s.row] for s in part], rounds=rounds)
        out |= {"rows": len(part), "napgr": res.napgr["learning"], "prior_napgr": res.napgr["prior"], "random": res.random,
                "oracle": res.oracle, "gap_closed": res.gap_closed["learning"], "prior_gap_closed": res.gap_closed["prior"]}
        if rounds:
            out["ci95"] = {k: list(v) for k, v in res.ci95.items()}
    except ValueError:  # the top tier is not better on these rows: no nAPGR
        if rounds == 0 and part is not upto:
            return {}
    top_c = sum(cost[s.row][-1] for s in upto) or 1.0
    top_q = sum(quality[s.row][-1] for s in upto) or 1.0
    label = sum(s.label_cost for s in upto)
    out |= {
        "cost_vs_top": (sum(cost[s.row][s.tier] if s.paid is None else s.paid for s in upto) + label) / top_c,
        "label_cost_vs_top": label / top_c,
        "quality_vs_top": sum(quality[s.row][s.tier] for s in upto) / top_q,
        "prior_cost_vs_top": sum(cost[s.row][s.prior_tier] for s in upto) / top_c,
        "prior_quality_vs_top": sum(quality[s.row][s.prior_tier] for s in upto) / top_q,
    }
    return out
