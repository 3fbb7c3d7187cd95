"""The learning loop on streams the prior never saw: `tierwise simulate` over every labelled set (all its
rows, in a seeded order), with the prior trained without that set (leave one set out;
bench/classifier.py saves those priors).

    python bench/learning.py [--shadow-rate 0.1] [--refit-every 100] [--judge-noise 0.1] [--plots DIR]
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace
from pathlib import Path

import _prior as P
from classifier import OUT, prior_for

from classifiers import LinearClassifier
from router import RouterConfig
from router.evaluate import matrices
from router.learning import simulate


def defaults(tiers: int) -> list[float]:
    """The router's default thresholds for this many tiers."""
    return RouterConfig.from_dict({"tiers": [{"name": f"t{i}", "models": ["gpt-5"]} for i in range(tiers)]}).effective_thresholds()


def warm_start(target: P.Target, prior: LinearClassifier, cap: int = 4000) -> None:
    """`tierwise train --data HALF_A --prior default` (selection by cross-validation, the default),
    then score HALF_B: against the prior alone, a model trained on HALF_A alone and one plain warm
    start (HALF_A capped at `cap` rows: labels a deployment buys in weeks)."""
    from classifiers import train
    from router.evaluate import napgr
    from router.learning import select

    rows = P.target_rows(replace(target, split=None))
    random.Random(0).shuffle(rows)
    half_a, half_b = rows[: min(len(rows) // 2, cap)], rows[len(rows) // 2:]
    tiers = list(target.tiers)
    quality, cost, _, _ = matrices(half_b, tiers, target.prices or {})
    messages = [r.messages for r in half_b]
    try:
        sel = select(half_a, tiers, None, prior)
        scores = {"prior": prior.score_batch(messages),
                  "HALF_A alone": train(half_a, tiers=tiers, per_source=False).score_batch(messages),
                  "warm start": train(half_a, tiers=tiers, prior=prior, per_source=False).score_batch(messages),
                  "selected": sel.classifier.score_batch(messages)}
        res = napgr(scores, quality, cost, rounds=300)
    except ValueError as exc:
        print(f"  {target.name}: {exc}")
        return
    g = res.gap_closed
    better = max(("prior", "HALF_A alone"), key=lambda k: res.napgr[k])
    ci = res.ci95.get(f"selected - {better}", (float("nan"),) * 2)
    print(f"  {target.name:<20} A {len(half_a):>5} B {len(half_b):>5} | gap closed on B: prior {g['prior']:6.1%}, "
          f"HALF_A alone {g['HALF_A alone']:6.1%}, warm start {g['warm start']:6.1%}, selected {g['selected']:6.1%} "
          f"({sel.chosen}) | selected - {better} {res.napgr['selected'] - res.napgr[better]:+.3f} ({ci[0]:+.3f} to {ci[1]:+.3f})",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shadow-rate", type=float, default=0.1)
    parser.add_argument("--refit-every", type=int, default=100)
    parser.add_argument("--judge-noise", type=float, default=0.0)
    parser.add_argument("--plots", type=Path, help="write each learning curve here as PNG")
    parser.add_argument("--only", help="only this set (a name from the table)")
    parser.add_argument("--test-only", action="store_true", help="stream only the sets' test rows (default: every row of the file)")
    parser.add_argument("--warm-start", action="store_true", help="only the warm-start check: train on half A, score half B")
    parser.add_argument("--labels", type=int, help="a label budget per stream, spread over it (else --shadow-rate)")
    parser.add_argument("--downward", action="store_true", help="downward labels: the cheapest tier graded against the answer served")
    parser.add_argument("--grade-locally", action="store_true", help="downward labels graded by their final answers' match where both have one")
    parser.add_argument("--verifier", action="store_true", help="labels also train the answer verifier, which then escalates")
    args = parser.parse_args()
    cache: dict[str, object] = {}
    OUT.mkdir(exist_ok=True)
    if args.warm_start:
        print("warm start: trained on half A of a set the prior never saw, nAPGR on half B (paired 95% intervals)")
        for target in P.TARGETS:
            if P.path(target.file).exists() and (not args.only or args.only == target.name):
                warm_start(target, prior_for(target, cache))  # type: ignore[arg-type]
        return
    print(f"shadow rate {args.shadow_rate}, labels {args.labels or 'no budget'}, {'downward' if args.downward else 'upward'} labels"
          f"{' (graded locally where they can be)' if args.grade_locally else ''}, "
          f"{'verifier learned' if args.verifier else 'no verifier'}, "
          f"refit every {args.refit_every} labels, judge noise {args.judge_noise}; "
          "prior trained without the set; figures on the last half of each stream")
    for target in P.TARGETS:
        if not P.path(target.file).exists() or (args.only and args.only != target.name):
            continue
        # The whole file is a stream the prior never saw (it was trained without it), not only its test rows.
        rows = P.target_rows(target if args.test_only else replace(target, split=None))
        quality, cost, _, _ = matrices(rows, target.tiers, target.prices or {})
        sim = simulate(rows, target.tiers, prior_for(target, cache), quality=quality, cost=cost,  # type: ignore[arg-type]
                       thresholds=defaults(len(target.tiers)), shadow_rate=args.shadow_rate,
                       judge_noise=args.judge_noise, refit_every=args.refit_every, seed=0, labels=args.labels,
                       downward=args.downward, verifier=args.verifier, grade_locally=args.grade_locally)
        h, t = sim.last_half, sim.totals
        ci = h.get("ci95", {})
        diff = ci.get("learning - prior", [float("nan")] * 2)
        verifiers = sum(r.get("verifier", {}).get("swapped", False) for r in sim.refits)
        print(f"\n== {target.name}: {len(rows)} requests, {t['labels']} labels, {len(sim.refits)} refits "
              f"({sum(r['swapped'] for r in sim.refits)} swapped in" + (f", {verifiers} verifiers swapped in)" if args.verifier else ")"))
        print(f"  {t['verdict']}")
        print(f"  last half: gap closed learning {h.get('gap_closed', float('nan')):.1%} vs static prior {h.get('prior_gap_closed', float('nan')):.1%}; "
              f"nAPGR {h.get('napgr', float('nan')):.3f} vs {h.get('prior_napgr', float('nan')):.3f}, difference 95% CI {diff[0]:+.3f} to {diff[1]:+.3f}")
        equal = t.get("prior_cost_at_equal_quality")
        print(f"  cost incl. labels {t['cost_vs_top']:.1%} of always-top (labels {t['label_cost_vs_top']:.1%}) at quality {t['quality_vs_top']:.1%}; "
              f"static prior at the same quality: " + ("not reached" if equal is None else f"{equal:.1%}"))
        for w in sim.windows:
            print(f"    after {w['end']:>6} requests, {w['labels']:>5} labels: gap closed {w['gap_closed']:6.1%} (prior {w['prior_gap_closed']:6.1%})")
        slug = target.name.lower().replace(" ", "-").replace("+", "plus")
        (OUT / f"learning-{slug}.json").write_text(json.dumps(sim.to_dict()))
        if args.plots:
            args.plots.mkdir(parents=True, exist_ok=True)
            sim.plot(str(args.plots / f"learning-{slug}.png"))


if __name__ == "__main__":
    main()
