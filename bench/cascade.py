"""Answer-aware cascades on the recorded answers of ../shared/data: prompt-only routing against the
same prompt thresholds with an answer score between tiers (a label-free check, or the learned
verifier), and against that cascade fed shuffled answer scores (extra thresholds flatter any
policy); nAPGR, gap closed and paired 95% intervals on rows the shipped prior never saw; speed on
one pinned core.

    python bench/cascade.py [--rounds 300]

Learned verifier (router.verifier): "in-domain" is trained on the set's own other half (GSM8K and
Arena-Hard: train and dev rows, reported on test; RouterBench: halves by a hash of the row id),
"cross-set" on the other two sets only (their answers, other models). The verifier's penalty is
chosen by grouped cross-validation on its training rows; nothing is fitted on the reported rows.

Signals (router.checks, local, no labels): GSM8K, arithmetic and final_answer_format on the small
model's answer; RouterBench (ARC, MBPP, Winogrande), final_answer_format and code_parses on each
tier's answer, and ("RouterBench, agrees") flash's answer checked for agreement with small's
(router.checks.agreement: the final choice letter, else text similarity; small's call is paid for
the check, even on paths that already bought it: the cost is an upper bound). Escalating pays both
calls; a set without costs counts a strong call as 1. RouterBench's recorded answers are read as
the models gave them (`load_rows` unwraps the list repr the set stores them in).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from classifiers import default_classifier, load_rows
from router.checks import Verdict, agreement, arithmetic, code_parses, final_answer_format
from router.evaluate import cascade_napgr, matrices
from router.verifier import answer_scores, examples, train_verifier

RB = ["mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"]
SETS = [  # name, file, tiers cheapest first, rows kept, reported (else trained on), label-free checks
    ("GSM8K", "routellm-mmlu-gsm8k.jsonl", ["mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"],
     lambda r: r.task.startswith("gsm8k") and not r.contaminated, lambda r: r.split == "test", [arithmetic, final_answer_format]),
    ("RouterBench", "routerbench-train.jsonl", RB, lambda r: True, lambda r: zlib.crc32(r.id.encode()) % 2 == 1,
     [final_answer_format, code_parses]),
    ("Arena-Hard", "arenahard-v01.jsonl", ["Llama-3-Base-8B-TR_DPO-Alpha_0.6-UltraFeedback", "gpt-3.5-turbo-0125", "gpt-4-0613"],
     lambda r: not r.contaminated, lambda r: r.split == "test", [final_answer_format, code_parses]),
]


class _Reply:
    def __init__(self, text: str) -> None:
        self.choices = [type("C", (), {"message": type("M", (), {"content": text, "tool_calls": None})(), "finish_reason": "stop"})()]


def answer_score(checks: list[Any], messages: list[dict[str, Any]], text: str | None) -> float | None:
    """The lowest score the checks give a recorded answer; None when none of them has a signal."""
    if text is None:
        return None
    scores = [v.score for c in checks for v in [c(messages, _Reply(text))] if isinstance(v, Verdict) and v.score is not None]
    return min(scores) if scores else None


def agrees(rows: list[Any], tiers: list[str], prompt: Any, quality: Any, cost: Any, rounds: int) -> Any:
    """Flash's answer checked against small's before frontier is paid; small's call paid for it."""
    def text(r: Any, k: int) -> str | None:
        found = r.outcomes[tiers[k]].response
        return found if isinstance(found, str) else None

    answers = [[None, None if text(r, 0) is None or text(r, 1) is None else agreement(text(r, 1), text(r, 0)), None] for r in rows]
    extra = [[0.0, float(c[0]), 0.0] for c in cost]
    return cascade_napgr(prompt, answers, quality, cost, rounds=rounds, extra_cost=extra)


def signals_speed(score: Any, rows: list[Any], tier: str) -> str:
    """p50 and p90 of scoring one recorded answer (about 500 tokens and longer included)."""
    texts = [(r.messages, r.outcomes[tier].response) for r in rows[:400] if isinstance(r.outcomes[tier].response, str)]
    times = []
    for messages, text in texts:
        t0 = time.perf_counter()
        score(messages, text)
        times.append(time.perf_counter() - t0)
    times.sort()
    return f"p50 {times[len(times) // 2] * 1e6:.0f} us, p90 {times[len(times) * 9 // 10] * 1e6:.0f} us"


def line(label: str, rows: int, res: Any) -> str:
    ci, g = res.ci95, res.gap_closed
    d1, d2 = ci.get("cascade - prompt", (0, 0)), ci.get("cascade - shuffled", (0, 0))
    return (f"{label:<32} {rows:>5} | {res.napgr['prompt']:>6.3f} {g['prompt']:>6.1%} | {res.napgr['cascade']:>6.3f} {g['cascade']:>6.1%}"
            f" | {g['shuffled']:>6.1%} | {g['cascade'] - g['prompt']:+6.1%} | {res.napgr['cascade'] - res.napgr['prompt']:+.3f}"
            f" ({d1[0]:+.3f} to {d1[1]:+.3f}) | {res.napgr['cascade'] - res.napgr['shuffled']:+.3f} ({d2[0]:+.3f} to {d2[1]:+.3f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1 % (os.cpu_count() or 1)})
    classifier = default_classifier()
    found = {name: (tiers, [r for r in load_rows(str(DATA / file)) if keep(r) and all(t in r.outcomes for t in tiers)], report, checks)
             for name, file, tiers, keep, report, checks in SETS if (DATA / file).exists()}
    print(f"{'set / answer score':<32} {'rows':>5} | {'prompt-only':>13} | {'cascade':>13} | {'shuffl':>6} | {'points':>6} | "
          f"{'cascade - prompt (95% CI)':>25} | {'cascade - shuffled (95% CI)':>25}")
    for name, (tiers, rows, report, checks) in found.items():
        shown, fit = [r for r in rows if report(r)], [r for r in rows if not report(r)]
        quality, cost, _, _ = matrices(shown, tiers, {})
        prompt = classifier.score_batch([r.messages for r in shown])
        own = train_verifier(*examples(fit, tiers), hash_dims=1024)
        others = [(t, r) for other, (t, rs, _, _) in found.items() if other != name for r in rs]
        pooled = [examples([r], t) for t, r in others]
        cross = train_verifier([p for e in pooled for p in e[0]], [y for e in pooled for y in e[1]], [g for e in pooled for g in e[2]],
                               hash_dims=1024)
        for label, answers in ((f"{name}, label-free", [[answer_score(checks, r.messages, r.outcomes[t].response) for t in tiers]
                                                        for r in shown]),
                               (f"{name}, verifier in-domain", answer_scores(own, shown, tiers)),
                               (f"{name}, verifier cross-set", answer_scores(cross, shown, tiers))):
            res = cascade_napgr(prompt, answers, quality, cost, rounds=args.rounds)
            print(line(label, len(shown), res), flush=True)
        if name == "RouterBench":
            print(line(f"{name}, agrees", len(shown), agrees(shown, tiers, prompt, quality, cost, args.rounds)), flush=True)
        print(f"{'':<32} random {res.random:.3f}, oracle {res.oracle:.3f}; in-domain verifier trained on {len(fit)} rows "
              f"(CV AUC {own.trained['cv_auc']}, C {own.trained['penalty_c']}), cross-set on {len(others)} "
              f"(CV AUC {cross.trained['cv_auc']}); verifier speed {signals_speed(own.score, shown, tiers[0])}", flush=True)


if __name__ == "__main__":
    main()
