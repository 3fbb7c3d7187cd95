"""The `tierwise` command: demo, score, train, eval, calibrate, ledger, serve, simulate."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from router._errors import TierwiseError
from router.cli._data import cmd_calibrate, cmd_eval, cmd_score, cmd_train
from router.cli._keys import add_key_commands
from router.cli._learn import add_learning_commands
from router.cli._ledger import cmd_ledger, mask_url
from router.cli._verify import add_verifier_commands

__all__ = ["build_parser", "main", "mask_url"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from router._demo import run_demo

    run_demo()
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from router.serve import run

    run(args.config, host=args.host, port=args.port, workers=args.workers)
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tierwise")
    except PackageNotFoundError:  # run from a checkout that was never installed
        from router import __version__

        return __version__


def _add_eval_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, helptext in (("eval", "replay a labelled set: cost against quality"), ("calibrate", "choose thresholds for a target")):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--data", action="append", required=True, type=Path, help="labelled prompt set (JSONL); repeatable")
        cmd.add_argument("--tiers", required=True, help="small=MODEL_A,flash=MODEL_B,frontier=MODEL_C (the sets' model names)")
        cmd.add_argument("--weights", help="classifier weights (default: the shipped model; 'heuristic'; 'random' as a baseline)")
        cmd.add_argument("--split", help="only rows of this split (train, dev, test)")
        cmd.add_argument("--config", help="config file: thresholds to evaluate / to update (its comments are kept)")
        cmd.add_argument("--drop-contaminated", action="store_true", help="leave out rows marked contaminated")
        cmd.add_argument("--verifier", help="a verifier file: eval replays the cascade it makes; calibrate chooses its bars with the thresholds")
    evaluate = sub.choices["eval"]
    evaluate.add_argument("--checks", help="built-in checks to replay on recorded answers, e.g. non_empty,not_refusal")
    evaluate.add_argument("--bootstrap", type=int, default=100, help="bootstrap rounds for 95%% intervals (0: none)")
    evaluate.add_argument("--json", help="write the report as JSON")
    evaluate.add_argument("--plot", help="write the cost-quality picture as PNG")
    evaluate.add_argument("--html", help="write the report as one HTML page (tables, picture, what each metric means)")
    evaluate.set_defaults(func=cmd_eval)
    cal = sub.choices["calibrate"]
    cal.add_argument("--target", required=True, help="quality=0.95 (or 95%%) | cost=0.002 (USD per request) | frontier_share=0.2")
    cal.add_argument("--out", required=True, help="config file to write (YAML)")
    cal.set_defaults(func=cmd_calibrate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tierwise", description="Route LLM requests to the cheapest adequate model.")
    parser.add_argument("--version", action="version", version=f"tierwise {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="route a dozen prompts offline and print the savings").set_defaults(func=_cmd_demo)

    score = sub.add_parser("score", help="score prompts with the classifier")
    src = score.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="labelled prompt set (JSONL)")
    src.add_argument("--text", help="one prompt to score")
    score.add_argument("--out", type=Path, help="write {id, score} lines here (default: stdout)")
    score.add_argument("--weights", help="weights file (default: the shipped model; 'heuristic'; 'random')")
    score.add_argument("--verifier", help="also score each tier's recorded answer with this verifier (needs --data and --tiers)")
    score.add_argument("--tiers", help="small=MODEL_A,flash=MODEL_B,frontier=MODEL_C: whose answers --verifier scores")
    score.set_defaults(func=cmd_score)

    train = sub.add_parser("train", help="train a classifier on labelled prompt sets")
    train.add_argument("--data", action="append", required=True, help="labelled prompt set (JSONL); repeatable")
    train.add_argument("--weak", action="append", help="the cheap model's name in the sets; repeatable")
    train.add_argument("--strong", action="append", help="the strong model's name: target is the quality gap; repeatable")
    train.add_argument("--tiers", help="small=MODEL_A,flash=MODEL_B,frontier=MODEL_C: the cheapest and the top model, as eval reads them")
    train.add_argument("--prior", help="warm start: 'default' (the shipped model) or a weights file; few labels then move it little")
    train.add_argument("--select", choices=["cv", "none"], default="cv",
                       help="with --prior: cv (default) chooses among the prior, warm starts and a model trained alone by "
                            "cross-validation; none: one warm start")
    train.add_argument("--length-weight", type=float, default=0.0, help="blend share of prompt length in the score, 0..1 (default 0)")
    train.add_argument("--target", choices=["gap", "bar"], default="gap",
                       help="gap: the graded quality gap between cheapest and top model (default); bar: strong beats weak by --bar")
    train.add_argument("--bar", type=float, default=0.5, help="adequacy bar (default 0.5)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--include-test", action="store_true", help="also train on rows marked split: test (left out, and said, by default)")
    train.add_argument("--out", type=Path, required=True, help="weights file to write (JSON)")
    train.set_defaults(func=cmd_train)

    _add_eval_commands(sub)

    ledger = sub.add_parser("ledger", help="spend by tenant, day, tier and model; --csv exports every entry; reconcile: what dead instances held")
    ledger.add_argument("action", nargs="?", choices=["report", "reconcile"], default="report",
                        help="report (default), or reconcile: show the holds of instances that died, presumed spent, and settle them")
    ledger.add_argument("--outbox", action="append", default=[], type=Path,
                        help="reconcile: commit this outbox file a dead instance left (copied from its host); repeatable")
    ledger.add_argument("--release", action="store_true",
                        help="reconcile: drop the presumed holds whose outbox is lost (their unbilled answers stay unbilled)")
    ledger.add_argument("--config", help="config file (default: TIERWISE_CONFIG or defaults): ledger URL, budgets, prices")
    ledger.add_argument("--url", help="ledger URL, overriding the config's")
    ledger.add_argument("--since", help="from this ISO date or time (in the config's time zone when it has none)")
    ledger.add_argument("--until", help="up to (not including) this ISO date or time")
    ledger.add_argument("--tenant", help="only this tenant")
    ledger.add_argument("--json", action="store_true", help="print the report as JSON")
    ledger.add_argument("--savings", action="store_true",
                        help="also what each lever saved against always-top (routing, cached input, cache hits), per tenant and day")
    ledger.add_argument("--csv", help="write every entry to this CSV file")
    ledger.set_defaults(func=cmd_ledger)

    serve = sub.add_parser("serve", help="an OpenAI-compatible gateway: point any OpenAI client's base_url at it")
    serve.add_argument("--config", required=True, help="config file (tiers, tenants, gateway.keys)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8400)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (share budgets through a PostgreSQL ledger)")
    serve.set_defaults(func=_cmd_serve)
    add_learning_commands(sub)
    add_verifier_commands(sub)
    add_key_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (TierwiseError, ValueError, OSError, ImportError) as exc:  # user-facing errors: one line, no traceback
        print(f"tierwise {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line; worker processes were stopped on the way out
        print(f"tierwise {args.command}: interrupted", file=sys.stderr)
        return 130
