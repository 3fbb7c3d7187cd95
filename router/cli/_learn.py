"""`tierwise simulate` and `tierwise labels export`: the learning loop, replayed offline and exported."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_learning_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("simulate", help="replay a labelled set as a stream: shadow labels, refits, the learning curve")
    sim.add_argument("--data", action="append", required=True, type=Path, help="labelled prompt set (JSONL); repeatable")
    sim.add_argument("--tiers", required=True, help="small=MODEL_A,flash=MODEL_B,frontier=MODEL_C (the sets' model names)")
    sim.add_argument("--prior", default="default", help="the model to start from: 'default' (shipped) or a weights file")
    sim.add_argument("--config", help="config file: the starting thresholds (else the defaults)")
    sim.add_argument("--split", help="only rows of this split")
    sim.add_argument("--shadow-rate", type=float, help="share of requests that buy a label (default 0.05; with --labels an upper bound, default 1)")
    sim.add_argument("--labels", type=int, help="a label budget for the whole stream, spread over it (the rate falls as labels arrive)")
    sim.add_argument("--downward", action="store_true",
                     help="downward labels: a request a stronger tier answered buys only the cheapest tier's answer, graded against it")
    sim.add_argument("--verifier", action="store_true",
                     help="labels also train the answer verifier (learning.verifier): once one is in force, answers under --bar move up")
    sim.add_argument("--bar", type=float, default=0.5, help="the verifier score under which an answer moves up a tier (default 0.5)")
    sim.add_argument("--grade-locally", action="store_true",
                     help="downward labels whose recorded answers both settle on a final answer are graded by their match, no judge")
    sim.add_argument("--judge-noise", type=float, default=0.0, help="share of grades the judge gets wrong (flipped)")
    sim.add_argument("--judge-cost", type=float, help="cost of one grade (default: a tenth of the top tier's mean cost)")
    sim.add_argument("--refit-every", type=int, default=100, help="new labels between refits (0: never)")
    sim.add_argument("--target", default="quality=0.95", help="thresholds re-calibrated to this after each refit (quality=...)")
    sim.add_argument("--windows", type=int, default=10)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--plot", help="write the learning curve as PNG")
    sim.add_argument("--json", help="write the figures as JSON")
    sim.set_defaults(func=cmd_simulate)
    labels = sub.add_parser("labels", help="the labels the learning loop collected")
    actions = labels.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write them as a labelled set (JSONL v1): what train, eval and calibrate read")
    export.add_argument("--ledger", help="ledger URL (default: the config's)")
    export.add_argument("--config", help="config file (default: TIERWISE_CONFIG or defaults)")
    export.add_argument("--out", required=True, type=Path, help="JSONL file to write")
    export.add_argument("--tenant", help="only this tenant's labels (what its own model learns from; default: every tenant's)")
    export.set_defaults(func=cmd_labels_export)


def cmd_labels_export(args: argparse.Namespace) -> int:
    """One JSONL v1 row per label, outcomes keyed by the config's tier names. Without stored prompts a
    row carries the classifier's features (which `train` reads) and an empty user message."""
    from router._config import RouterConfig
    from router.learning._loop import rows_of
    from router.ledger import open_ledger

    config = RouterConfig.from_file(args.config) if args.config else RouterConfig.from_env()
    ledger = open_ledger(args.ledger or config.ledger_url(), config.budget_for, must_exist=True)
    try:
        labels = ledger.labels(tenant=args.tenant)
    finally:
        ledger.close()
    with args.out.open("w", encoding="utf-8") as out:
        for row in rows_of(labels, [t.name for t in config.tiers]):
            outcomes = {t: {"quality": o.quality, **({"cost_usd": o.cost_usd} if o.cost_usd is not None else {})} for t, o in row.outcomes.items()}
            weight = {"weight": row.weight} if row.weight != 1.0 else {}  # its sampling weight, which train counts
            out.write(json.dumps({"id": row.id, "source": row.source, "task": row.task, "messages": row.messages, "outcomes": outcomes,
                                  **row.extra, **weight}) + "\n")
    print(f"wrote {len(labels)} labels to {args.out}" + ("" if all(lab.messages for lab in labels) else
          " (labels without stored prompts carry features only: train reads them; eval needs prompts, see learning.store_prompts)"))
    return 0


def _rate(args: argparse.Namespace) -> float:
    if args.labels is not None and args.labels < 0:
        raise ValueError(f"--labels must be 0 or more, not {args.labels}")
    return float(args.shadow_rate if args.shadow_rate is not None else 0.05 if args.labels is None else 1.0)


def cmd_simulate(args: argparse.Namespace) -> int:
    from classifiers import default_classifier, load, load_rows
    from router._config import DEFAULT_THRESHOLDS, RouterConfig
    from router.cli._args import _tiers
    from router.cli._data import parse_target, write_outputs
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
    result = simulate(rows, tiers, prior, quality=quality, cost=cost, thresholds=thresholds, shadow_rate=_rate(args),
                      judge_noise=args.judge_noise, judge_cost=args.judge_cost, refit_every=args.refit_every,
                      windows=args.windows, target=value, seed=args.seed, labels=args.labels,
                      downward=args.downward, verifier=args.verifier, bar=args.bar, grade_locally=args.grade_locally)
    return write_outputs(result, args)
