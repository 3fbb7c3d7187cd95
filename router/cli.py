"""The `tierwise` command: demo, score, train, ledger."""

from __future__ import annotations

import argparse
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
    from classifiers import HeuristicClassifier, default_classifier, load

    if weights == "heuristic":
        return HeuristicClassifier()
    return load(weights) if weights else default_classifier()


def _cmd_score(args: argparse.Namespace) -> int:
    from classifiers import iter_rows

    clf = _load_classifier(args.weights)
    if args.text is not None:
        print(f"{clf.score([{'role': 'user', 'content': args.text}]):.4f}")
        return 0
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        for row in iter_rows(args.data):
            out.write(json.dumps({"id": row.id, "score": round(clf.score(row.messages), 6)}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from classifiers import train

    clf = train(args.data, weak=args.weak, strong=args.strong or (), bar=args.bar, seed=args.seed)
    path = clf.save(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {json.dumps(clf.meta)}")
    return 0


def _cmd_ledger(args: argparse.Namespace) -> int:
    from router._config import RouterConfig
    from router._ledger import open_ledger

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
    score.add_argument("--weights", help="weights file (default: the shipped model; 'heuristic' for the heuristic)")
    score.set_defaults(func=_cmd_score)

    train = sub.add_parser("train", help="train a classifier on labelled prompt sets")
    train.add_argument("--data", action="append", required=True, help="labelled prompt set (JSONL); repeatable")
    train.add_argument("--weak", action="append", required=True, help="the cheap model's name in the sets; repeatable")
    train.add_argument("--strong", action="append", help="the strong model's name: target is the quality gap; repeatable")
    train.add_argument("--bar", type=float, default=0.5, help="adequacy bar (default 0.5)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, required=True, help="weights file to write (JSON)")
    train.set_defaults(func=_cmd_train)

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
