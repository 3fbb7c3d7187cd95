"""Evaluation speed: 100,000 labelled rows through evaluate() (scoring, sweep, baselines, bootstrap).

    python bench/eval.py [--rows 100000] [--bootstrap 100]

Rows are RouterBench's (../shared/data), repeated under new ids up to --rows; without the data,
generated prompts of similar length.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifiers import Outcome, Row, default_classifier, load_rows
from router.evaluate import evaluate

TIERS = ["mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"]


def rows(n: int) -> list[Row]:
    path = ROOT.parent / "shared" / "data" / "routerbench-train.jsonl"
    if path.exists():
        base = [r for r in load_rows(path) if all(t in r.outcomes for t in TIERS)]
    else:
        rng = random.Random(0)
        base = [Row(id=str(i), messages=[{"role": "user", "content": " ".join("word" for _ in range(rng.randint(20, 400)))}],
                    outcomes={t: Outcome(quality=float(rng.random() < 0.5 + 0.2 * k), cost_usd=0.0001 * 10**k) for k, t in enumerate(TIERS)})
                for i in range(1000)]
    return [replace(base[i % len(base)], id=f"{base[i % len(base)].id}-{i}") for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bootstrap", type=int, default=100)
    args = parser.parse_args()
    data = rows(args.rows)
    clf = default_classifier()
    t = time.perf_counter()
    report = evaluate(data, TIERS, clf, bootstrap=args.bootstrap)
    elapsed = time.perf_counter() - t
    print(f"evaluate(): {len(data):,} rows, 3 tiers, {args.bootstrap} bootstrap rounds in {elapsed:.1f} s "
          f"({len(data) / elapsed:,.0f} rows/s); least cost for 95% quality {report.least_cost_share[0.95]:.1%} of top-tier cost")


if __name__ == "__main__":
    main()
