"""The `tierwise` command: demo, score, train, eval, calibrate, ledger."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from router._errors import TierwiseError


def _cmd_demo(args: argparse.Namespace) -> int:
    from router._demo import run_demo

    run_demo()
    return 0


def _load_classifier(weights: str | None):  # type: ignore[no-untyped-def]
    from classifiers import HeuristicClassifier, RandomClassifier, default_classifier, load

    if weights == "heuristic":
        return HeuristicClassifier()
    if weights == "random":
        return RandomClassifier()
    return load(weights) if weights else default_classifier()


def _cmd_score(args: argparse.Namespace) -> int:
    from classifiers import iter_rows

    clf = _load_classifier(args.weights)
    if args.text is not None:
        print(f"{clf.score([{'role': 'user', 'content': args.text}]):.4f}")
        return 0
    with open(args.out, "w", encoding="utf-8") if args.out else contextlib.nullcontext(sys.stdout) as out:
        for row in iter_rows(args.data):
            out.write(json.dumps({"id": row.id, "score": round(clf.score(row.messages), 6)}) + "\n")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from classifiers import train

    clf = train(args.data, weak=args.weak, strong=args.strong or (), bar=args.bar, seed=args.seed)
    path = clf.save(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {json.dumps(clf.meta)}")
    return 0


def _cmd_ledger(args: argparse.Namespace) -> int:
    from router._config import RouterConfig
    from router.ledger import open_ledger

    config = RouterConfig.from_file(args.config) if args.config else RouterConfig.from_env()
    ledger = open_ledger(args.url or config.ledger, config.budget_for)
    entries = ledger.entries()
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["request_id", "attempt", "tenant", "tier", "model", "tokens_in", "tokens_out", "cost_usd", "latency_s", "outcome", "reason", "ts"])
            for e in entries:
                writer.writerow([e.request_id, e.attempt, e.tenant, e.tier, e.model, e.tokens_in, e.tokens_out, e.cost_usd, e.latency_s, e.outcome, e.reason, e.ts])
        print(f"wrote {len(entries)} entries to {args.csv}")
    tenants = sorted({e.tenant for e in entries})
    print(f"{'tenant':<20} {'requests':>8} {'attempts':>8} {'spent (period) $':>18} {'budget $':>10} {'period':>7}")
    for tenant in tenants:
        state = ledger.state(tenant)
        mine = [e for e in entries if e.tenant == tenant]
        cap = "-" if state.cap_usd is None else str(state.cap_usd)
        print(f"{tenant:<20} {len({e.request_id for e in mine}):>8} {len(mine):>8} {state.spent_usd:>18} {cap:>10} {state.period:>7}")
    total = sum((e.cost_usd for e in entries), Decimal(0))
    print(f"{'all':<20} {len({e.request_id for e in entries}):>8} {len(entries):>8} {total:>18}")
    ledger.close()
    return 0


def _tiers(text: str) -> list[tuple[str, str]]:
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise ValueError(f"--tiers must look like small=MODEL_A,flash=MODEL_B,frontier=MODEL_C, got {text!r}")
    return [(a.strip(), b.strip()) for a, b in pairs]


def _eval_inputs(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from classifiers import load_rows

    tiers = _tiers(args.tiers)
    rows = [r for r in load_rows(args.data) if (args.split is None or r.split == args.split) and not (args.drop_contaminated and r.contaminated)]
    if not rows:
        raise ValueError(f"no rows{' in split ' + args.split if args.split else ''} in {', '.join(map(str, args.data))}")
    return tiers, rows, _load_classifier(args.weights)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        width = 30
        filled = width * done // max(total, 1)
        print(f"\rscoring [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="" if done < total else "\n", file=sys.stderr)


def _cmd_eval(args: argparse.Namespace) -> int:
    from router._config import RouterConfig
    from router.checks import all_of
    from router.evaluate import evaluate

    tiers, rows, clf = _eval_inputs(args)
    thresholds = None
    if args.config:
        config = RouterConfig.from_file(args.config)
        if len(config.tiers) == len(tiers):
            thresholds = config.effective_thresholds()
    check = all_of(args.checks.split(",")) if args.checks else None
    report = evaluate(rows, [m for _, m in tiers], clf, thresholds=thresholds, check=check, bootstrap=args.bootstrap, progress=_progress)
    print(report.text())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2))
        print(f"wrote {args.json}")
    if args.plot:
        print(f"wrote {report.plot(args.plot)}")
    if args.html:
        print(f"wrote {report.html(args.html)}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import yaml

    from policies import calibrate
    from router._config import RouterConfig
    from router.evaluate import matrices

    tiers, rows, clf = _eval_inputs(args)
    target, _, value = args.target.partition("=")
    models = [m for _, m in tiers]
    usable = [r for r in rows if all(m in r.outcomes for m in models)]
    quality, cost, unit, _ = matrices(usable, models, {})
    cal = calibrate(clf.score_batch([r.messages for r in usable]), quality, cost, target, float(value))
    data = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
    data = data or {}
    if "tiers" not in data:  # the evaluated tiers; their models are the set's names: map them to litellm models
        data["tiers"] = [{"name": name, "models": [model]} for name, model in tiers]
    data["thresholds"] = [round(t, 6) for t in cal.thresholds]
    RouterConfig.from_dict(data)  # what we write must load
    Path(args.out).write_text(yaml.safe_dump(data, sort_keys=False))
    print(f"thresholds {data['thresholds']} on {len(usable)} rows: quality {cal.quality:.3f}, cost "
          f"{cal.cost:.6g} ({unit}), top-tier share {cal.frontier_share:.1%}; wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tierwise", description="Route LLM requests to the cheapest adequate model.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="route a dozen prompts offline and print the savings")
    demo.set_defaults(func=_cmd_demo)

    score = sub.add_parser("score", help="score prompts with the classifier")
    src = score.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="labelled prompt set (JSONL)")
    src.add_argument("--text", help="one prompt to score")
    score.add_argument("--out", type=Path, help="write {id, score} lines here (default: stdout)")
    score.add_argument("--weights", help="weights file (default: the shipped model; 'heuristic'; 'random')")
    score.set_defaults(func=_cmd_score)

    train = sub.add_parser("train", help="train a classifier on labelled prompt sets")
    train.add_argument("--data", action="append", required=True, help="labelled prompt set (JSONL); repeatable")
    train.add_argument("--weak", action="append", required=True, help="the cheap model's name in the sets; repeatable")
    train.add_argument("--strong", action="append", help="the strong model's name: target is the quality gap; repeatable")
    train.add_argument("--bar", type=float, default=0.5, help="adequacy bar (default 0.5)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, required=True, help="weights file to write (JSON)")
    train.set_defaults(func=_cmd_train)

    for name, helptext in (("eval", "replay a labelled set: cost against quality"), ("calibrate", "choose thresholds for a target")):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--data", action="append", required=True, type=Path, help="labelled prompt set (JSONL); repeatable")
        cmd.add_argument("--tiers", required=True, help="small=MODEL_A,flash=MODEL_B,frontier=MODEL_C (the sets' model names)")
        cmd.add_argument("--weights", help="classifier weights (default: the shipped model; 'heuristic'; 'random' as a baseline)")
        cmd.add_argument("--split", help="only rows of this split (train, dev, test)")
        cmd.add_argument("--config", help="config file: thresholds to evaluate / to update")
        cmd.add_argument("--drop-contaminated", action="store_true", help="leave out rows marked contaminated")
    evaluate = sub.choices["eval"]
    evaluate.add_argument("--checks", help="built-in checks to replay on recorded answers, e.g. non_empty,not_refusal")
    evaluate.add_argument("--bootstrap", type=int, default=100, help="bootstrap rounds for 95%% intervals (0: none)")
    evaluate.add_argument("--json", help="write the report as JSON")
    evaluate.add_argument("--plot", help="write the cost-quality picture as PNG")
    evaluate.add_argument("--html", help="write the report and the picture as one HTML page")
    evaluate.set_defaults(func=_cmd_eval)
    cal = sub.choices["calibrate"]
    cal.add_argument("--target", required=True, help="quality=0.95 | cost=0.002 | frontier_share=0.2")
    cal.add_argument("--out", required=True, help="config file to write (YAML)")
    cal.set_defaults(func=_cmd_calibrate)

    ledger = sub.add_parser("ledger", help="spend per tenant; --csv exports every entry")
    ledger.add_argument("--config", help="config file (default: TIERWISE_CONFIG or defaults)")
    ledger.add_argument("--url", help="ledger URL, overriding the config's")
    ledger.add_argument("--csv", help="write every entry to this CSV file")
    ledger.set_defaults(func=_cmd_ledger)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (TierwiseError, ValueError, OSError) as exc:  # user-facing errors: one line, no traceback
        print(f"tierwise {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
