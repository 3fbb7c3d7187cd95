"""Evaluation speed: 100,000 labelled rows through evaluate() (scoring, sweep, baselines, bootstrap).

    python bench/eval.py [--rows 100000] [--bootstrap 100]
    python bench/eval.py --file 1000000      # `tierwise eval` streaming a 1M-row, 11-model file

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


if __name__ == "__main__" and "--file" not in sys.argv:
    main()


def tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    import os

    from _procs import family

    total = 0
    for pid in family(root):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


def write_file(path: Path, n: int) -> int:
    """n rows of an 11-model set (RouterBench's rows, answers left out) as JSONL."""
    import json

    source = ROOT.parent / "shared" / "data" / "routerbench-train.jsonl"
    base = []
    for line in source.open():
        obj = json.loads(line)
        obj["outcomes"] = {m: {k: v for k, v in o.items() if k != "response"} for m, o in obj["outcomes"].items()}
        base.append(obj)
    with path.open("w") as fh:
        for i in range(n):
            obj = base[i % len(base)]
            fh.write(json.dumps({**obj, "id": f"{obj['id']}-{i}"}) + "\n")
    return len(base[0]["outcomes"])


def file_bench(n: int) -> None:
    """`tierwise eval` on an n-row, 11-model file: wall time and peak memory of all its processes."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        t = time.perf_counter()
        models = write_file(path, n)
        print(f"wrote {n:,} rows of {models} models ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f} s")
        cmd = [sys.executable, "-m", "router.cli", "eval", "--data", str(path), "--tiers", ",".join(f"t{k}={m}" for k, m in enumerate(TIERS))]
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.2)
        out, err = proc.communicate()
        elapsed = time.perf_counter() - t
        assert proc.returncode == 0, err[-2000:]
        print(f"tierwise eval: {n:,} rows in {elapsed:.0f} s, peak resident memory of all its processes {peak / 2**30:.2f} GiB")
        print("\n".join(line for line in out.splitlines() if line.startswith(("router", "nAPGR", "least cost reaching 95"))))


if __name__ == "__main__" and "--file" in sys.argv:
    file_bench(int(sys.argv[sys.argv.index("--file") + 1]))
