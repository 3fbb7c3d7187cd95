"""`tierwise simulate` and `tierwise labels export`: the learning loop, replayed offline and exported."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_learning_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("simulate", help="replay a labelled set as a stream: shadow labels, refits, the learning curve")
    sim.add_argument("--data", action="append", required=True, type=Path, help="labelled prompt set (JSONL); repeatable")
    sim.add_argument("--tiers", required=True, help="small=MODEL_A,flash=MODEL_B,frontier=MODEL_C (the sets' model names)")
    sim.add_argument("--prior", default="default", help="the model to start from: 'default' (shipped) or a weights file")
    sim.add_argument("--config", help="config file: the starting thresholds (else the defaults)")
    sim.add_argument("--split", help="only rows of this split")
    sim.add_argument("--shadow-rate", type=float, default=0.05, help="share of requests that buy a label (default 0.05)")
    sim.add_argument("--judge-noise", type=float, default=0.0, help="share of grades the judge gets wrong (flipped)")
    sim.add_argument("--judge-cost", type=float, help="cost of one grade (default: the middle tier's mean cost)")
    sim.add_argument("--refit-every", type=int, default=100, help="new labels between refits (0: never)")
    sim.add_argument("--target", default="quality=0.95", help="thresholds re-calibrated to this after each refit (quality=...)")
    sim.add_argument("--windows", type=int, default=10)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--plot", help="write the learning curve as PNG")
    sim.add_argument("--json", help="write the figures as JSON")
    sim.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from classifiers import default_classifier, load, load_rows
    from router._config import DEFAULT_THRESHOLDS, RouterConfig
    from router.cli._data import _tiers, parse_target, write_outputs
    from router.evaluate import matrices
    from router.learning import simulate

    tiers = [m for _, m in _tiers(args.tiers)]
    name, value = parse_target(args.target)
    if name != "quality":
        raise ValueError("--target for simulate is quality=SHARE (thresholds keep that share of always-top quality)")
    rows = [r for r in load_rows(args.data) if (args.split is None or r.split == args.split) and not r.contaminated
            and all(t in r.outcomes for t in tiers)]
    if len(rows) < 2 * args.windows:
        raise ValueError(f"{len(rows)} rows have outcomes for every tier {tiers}: too few to simulate {args.windows} windows")
    prior = default_classifier() if args.prior == "default" else load(args.prior)
    thresholds = DEFAULT_THRESHOLDS.get(len(tiers), [k / len(tiers) for k in range(1, len(tiers))])
    if args.config:
        config = RouterConfig.from_file(args.config)
        if len(config.tiers) == len(tiers):
            thresholds = config.effective_thresholds()
    quality, cost, _, _ = matrices(rows, tiers, {})
    result = simulate(rows, tiers, prior, quality=quality, cost=cost, thresholds=thresholds, shadow_rate=args.shadow_rate,
                      judge_noise=args.judge_noise, judge_cost=args.judge_cost, refit_every=args.refit_every,
                      windows=args.windows, target=value, seed=args.seed)
    return write_outputs(result, args)
