"""Answer-aware cascades on the recorded answers of ../shared/data: prompt-only routing against the
same prompt thresholds with a label-free answer check between tiers, and against that cascade fed
shuffled answer scores (extra thresholds flatter any policy); nAPGR, gap closed and paired 95%
intervals on rows the shipped prior never saw; signal speed on one pinned core.

    python bench/cascade.py [--rounds 300]

Signals (router.checks, local, no labels): GSM8K, arithmetic and final_answer_format on the small
model's answer; RouterBench (ARC, MBPP, Winogrande), final_answer_format and code_parses on each
tier's answer, and ("RB agrees") flash's answer checked for agreement with small's (small's call is
paid for the check, even on paths that already bought it: the cost is an upper bound). Escalating
pays both calls; a set without costs counts a strong call as 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from classifiers import default_classifier, load_rows
from router.checks import Verdict, agreement, arithmetic, code_parses, final_answer_format
from router.evaluate import cascade_napgr, matrices

SETS = [  # name, file, tiers cheapest first, rows kept, checks, whether the cheapest tier's check is agreement with the next
    ("GSM8K test", "routellm-mmlu-gsm8k.jsonl", ["mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"],
     lambda r: r.task.startswith("gsm8k") and r.split == "test" and not r.contaminated, [arithmetic, final_answer_format], False),
    ("RouterBench", "routerbench-train.jsonl", ["mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"],
     lambda r: True, [final_answer_format, code_parses], False),
    ("RB agrees", "routerbench-train.jsonl", ["mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"],
     lambda r: True, [final_answer_format, code_parses], True),
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


def signal_speed(checks: list[Any], rows: list[Any], tiers: list[str]) -> str:
    texts = [(r.messages, r.outcomes[t].response) for r in rows[:400] for t in tiers[:1] if r.outcomes[t].response]
    times = []
    for messages, text in texts:
        t0 = time.perf_counter()
        answer_score(checks, messages, text)
        times.append(time.perf_counter() - t0)
    return f"p50 {statistics.median(times) * 1e6:.0f} us over {len(times)} answers"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1 % (os.cpu_count() or 1)})
    classifier = default_classifier()
    print(f"{'set':<12} {'rows':>5} | {'prompt-only':>11} {'gap':>6} | {'cascade':>7} {'gap':>6} | {'shuffled':>8} {'gap':>6} | "
          f"{'cascade - prompt (95% CI)':>26} | {'cascade - shuffled (95% CI)':>27} | signals")
    for name, file, tiers, keep, checks, agrees in SETS:
        path = DATA / file
        if not path.exists():
            print(f"{name}: {path} not found, skipped")
            continue
        rows = [r for r in load_rows(str(path)) if keep(r) and all(t in r.outcomes for t in tiers)]
        quality, cost, _, _ = matrices(rows, tiers, {})
        answers = [[answer_score(checks, r.messages, r.outcomes[t].response) for t in tiers] for r in rows]
        extra = [[0.0] * len(tiers) for _ in rows]
        reuse = [[False] * len(tiers) for _ in rows]
        if agrees:  # flash's answer checked against small's (bought for the check, cheaper), before paying frontier
            for i, r in enumerate(rows):
                first, second = r.outcomes[tiers[0]].response, r.outcomes[tiers[1]].response
                answers[i][1] = None if first is None or second is None else agreement(first, second)
                extra[i][1] = cost[i][0]  # counted even where small was already tried: an upper bound on the cost
        prompt = classifier.score_batch([r.messages for r in rows])
        res = cascade_napgr(prompt, answers, quality, cost, rounds=args.rounds, extra_cost=extra, reuse=reuse)
        ci, g = res.ci95, res.gap_closed
        d1, d2 = ci.get("cascade - prompt", (0, 0)), ci.get("cascade - shuffled", (0, 0))
        print(f"{name:<12} {len(rows):>5} | {res.napgr['prompt']:>11.3f} {g['prompt']:>6.1%} | {res.napgr['cascade']:>7.3f} "
              f"{g['cascade']:>6.1%} | {res.napgr['shuffled']:>8.3f} {g['shuffled']:>6.1%} | "
              f"{res.napgr['cascade'] - res.napgr['prompt']:+.3f} ({d1[0]:+.3f} to {d1[1]:+.3f}) | "
              f"{res.napgr['cascade'] - res.napgr['shuffled']:+.3f} ({d2[0]:+.3f} to {d2[1]:+.3f}) | {signal_speed(checks, rows, tiers)}",
              flush=True)
        print(f"{'':<12} random {res.random:.3f}, oracle {res.oracle:.3f}; answers with a signal: "
              f"{sum(a is not None for row in answers for a in row[:-1]) / max(1, len(answers) * (len(tiers) - 1)):.0%} of the cheaper tiers'")


if __name__ == "__main__":
    main()
