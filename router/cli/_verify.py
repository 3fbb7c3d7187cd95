"""`tierwise train-verifier`, and the verifier's parts of `score` and `eval`: a learned answer
verifier trained on the recorded answers of labelled sets, replayed as a cascade offline."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from router.cli._args import _tiers
from router.verifier import answer_scores


def add_verifier_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tv = sub.add_parser("train-verifier", help="train a learned answer verifier on the recorded answers of labelled sets")
    tv.add_argument("--data", action="append", required=True, type=Path, help="labelled prompt set (JSONL) with responses; repeatable")
    tv.add_argument("--tiers", required=True, help="small=MODEL_A,flash=MODEL_B,frontier=MODEL_C: the answers of all but the top are learned")
    tv.add_argument("--split", action="append", help="only rows of this split; repeatable (default: every split but test)")
    tv.add_argument("--include-test", action="store_true", help="also train on rows marked split: test")
    tv.add_argument("--hash-dims", type=int, default=4096, help="hashed word buckets (default 4096)")
    tv.add_argument("--seed", type=int, default=0)
    tv.add_argument("--out", required=True, type=Path, help="verifier file to write (JSON)")
    tv.set_defaults(func=cmd_train_verifier)


def _rows(data: list[Any], models: list[str], splits: list[str] | None, include_test: bool) -> list[Any]:
    from classifiers import load_rows

    rows = [r for r in load_rows(data) if all(m in r.outcomes for m in models)]
    if splits:
        return [r for r in rows if r.split in splits]
    return rows if include_test else [r for r in rows if r.split != "test"]


def cmd_train_verifier(args: argparse.Namespace) -> int:
    from router.verifier import examples, train_verifier

    tiers = _tiers(args.tiers)
    if len(tiers) < 2:
        raise ValueError("--tiers needs at least two tiers: the answers of the cheaper ones are learned, the top one is the reference")
    if not 16 <= args.hash_dims <= 1 << 20:
        raise ValueError(f"--hash-dims must be from 16 to {1 << 20}")
    models = [m for _, m in tiers]
    rows = _rows(args.data, models, args.split, args.include_test)
    pairs, labels, groups = examples(rows, models)
    if not pairs:
        raise ValueError(f"no recorded answers of {', '.join(models[:-1])} in {', '.join(map(str, args.data))} (the rows need 'response')")
    about = {"sets": [Path(d).name for d in args.data], "tiers": dict(tiers), "splits": args.split or ("all" if args.include_test else "all but test")}
    verifier = train_verifier(pairs, labels, groups, hash_dims=args.hash_dims, seed=args.seed, about=about)
    verifier.save(args.out)
    print(f"wrote {args.out}: {json.dumps(verifier.trained)}")
    return 0


def score_lines(args: argparse.Namespace, clf: Any) -> int:
    """`score --data SET --verifier FILE --tiers ...`: per row the prompt score, each tier's answer
    score, what scoring it paid beyond the tier's call (a local verifier: 0) and whether an
    escalation re-uses an answer the check bought (never, for a verifier)."""
    from router.verifier import load_verifier

    if not args.tiers or args.data is None:
        raise ValueError("score --verifier needs --data and --tiers (which models' answers to score)")
    tiers = _tiers(args.tiers)
    models = [m for _, m in tiers]
    verifier = load_verifier(args.verifier)
    rows = _rows([args.data], models, None, True)
    with open(args.out, "w", encoding="utf-8") if args.out else contextlib.nullcontext(sys.stdout) as out:
        for r, scores in zip(rows, answer_scores(verifier, rows, models), strict=True):
            line = {"id": r.id, "score": round(clf.score(r.messages), 6),
                    "answer_scores": {name: None if s is None else round(s, 6) for (name, _), s in zip(tiers, scores, strict=True)},
                    "extra_cost": {name: 0.0 for name, _ in tiers}, "reuse": False}
            out.write(json.dumps(line) + "\n")
    return 0


def cascade_text(args: argparse.Namespace, rows: list[Any], models: list[str], clf: Any) -> str:
    """`eval --verifier`: the cascade (prompt thresholds and answer bars chosen together) beside the
    prompt-only router and the same cascade fed shuffled answer scores, with paired intervals."""
    from router.evaluate import cascade_napgr, matrices
    from router.verifier import load_verifier

    verifier = load_verifier(args.verifier)
    rows = [r for r in rows if all(m in r.outcomes for m in models)]
    quality, cost, unit, _ = matrices(rows, models, {})
    res = cascade_napgr(clf.score_batch([r.messages for r in rows]), answer_scores(verifier, rows, models), quality, cost,
                        rounds=max(args.bootstrap, 20))
    ci, g = res.ci95, res.gap_closed

    def diff(name: str) -> str:
        lo, hi = ci.get(f"cascade - {name}", (float("nan"), float("nan")))
        return f"{res.napgr['cascade'] - res.napgr[name]:+.3f} (95% CI {lo:+.3f} to {hi:+.3f})"

    return (f"cascade with verifier {Path(args.verifier).name} on {len(rows)} rows (cost in {unit}):\n"
            f"  prompt-only nAPGR {res.napgr['prompt']:.3f} (gap closed {g['prompt']:.1%})\n"
            f"  cascade     nAPGR {res.napgr['cascade']:.3f} (gap closed {g['cascade']:.1%})\n"
            f"  shuffled    nAPGR {res.napgr['shuffled']:.3f} (gap closed {g['shuffled']:.1%}): the cascade fed shuffled answer scores\n"
            f"  cascade - prompt-only {diff('prompt')}; cascade - shuffled {diff('shuffled')}")

