"""Classifier figures: speed against LiteLLM's complexity router, weights size and load time, and
routing quality on the labelled sets in ../shared/data (skipped when they are absent).

    python bench/classifier.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from classifiers import HeuristicClassifier, default_classifier, default_weights_path, load, load_rows, train
from router.evaluate import apgr, least_cost_for_quality, random_least_cost

WORDS = ["the", "model", "should", "explain", "why", "a", "function", "returns", "wrong", "values", "when", "the", "input", "list", "is", "empty", "and", "propose", "a", "fix", "with", "tests", "while", "keeping", "the", "interface", "stable", "for", "existing", "callers"]


def prompt(n_words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words)) + "?"


def timings(fn, texts: list[str]) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    out = []
    for text in texts:
        t = time.perf_counter()
        fn(text)
        out.append(time.perf_counter() - t)
    out.sort()
    return statistics.median(out) * 1e6, out[int(len(out) * 0.99)] * 1e6


def litellm_complexity():  # type: ignore[no-untyped-def]
    from litellm.router_strategy.complexity_router import ComplexityRouter

    router = ComplexityRouter(model_name="bench", litellm_router_instance=None)
    return lambda text: router.classify(text)[1]


def pin_to_one_core() -> str:
    """Keep the timing loop on one core: moves between cores were most of the run-to-run spread."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def speed(n: int) -> None:
    clf = default_classifier()
    ours = lambda text: clf.score([{"role": "user", "content": text}])
    theirs = litellm_complexity()
    print(f"speed: score() on one request, microseconds (same prompts, same run; {pin_to_one_core()})")
    for words in (20, 200, 2000):
        texts = [prompt(words, i) for i in range(n)]
        for fn in (ours, theirs):
            fn(texts[0])
        o50, o99 = timings(ours, texts)
        l50, l99 = timings(theirs, texts)
        print(f"  {words:>5} words: tierwise p50 {o50:7.1f} p99 {o99:7.1f} | litellm complexity_router p50 {l50:8.1f} "
              f"p99 {l99:8.1f} | {l50 / o50:5.1f}x faster at p50")
    # Apps send one long system prompt with every request; its words are worked out once.
    system = {"role": "system", "content": " ".join(WORDS) * 10}
    chat = [[system, {"role": "user", "content": prompt(20, i)}] for i in range(n)]
    s50, s99 = timings(clf.score, chat)  # type: ignore[arg-type]
    print(f"  20 words after the same {len(system['content']):,}-character system prompt: p50 {s50:.1f} p99 {s99:.1f}")
    path = Path(default_weights_path())
    loads = []
    for _ in range(7):
        t = time.perf_counter()
        load(path)
        loads.append(time.perf_counter() - t)
    print(f"  weights file {path.stat().st_size / 1e6:.2f} MB, load {statistics.median(loads) * 1000:.1f} ms (median of 7)")


def routellm_quality() -> None:
    path = DATA / "routellm-mmlu-gsm8k.jsonl"
    if not path.exists():
        print(f"quality: {path} not found, skipped")
        return
    weak, strong = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    rows = [r for r in load_rows(path) if r.split == "test" and not r.contaminated]
    judge = litellm_complexity()
    clfs = {"tierwise (shipped)": default_classifier(), "heuristic": HeuristicClassifier()}
    print("quality: APGR on RouteLLM test split, contaminated rows dropped (random = 0.5)")
    for task in ("mmlu", "gsm8k"):
        sub = [r for r in rows if r.source.endswith(task)]
        qw = [r.outcomes[weak].quality for r in sub]
        qs = [r.outcomes[strong].quality for r in sub]
        ours = clfs["tierwise (shipped)"].score_batch([r.messages for r in sub])
        length = [len(str(r.messages[-1]["content"])) for r in sub]
        figures = {name: apgr(c.score_batch([r.messages for r in sub]), qw, qs) for name, c in clfs.items()}
        figures["prompt length"] = apgr(length, qw, qs)
        figures["litellm complexity_router"] = apgr([judge(str(r.messages[-1]["content"])) for r in sub], qw, qs)
        rng = random.Random(0)  # random routing: the mean of 20 draws (one draw varies by about 0.03)
        figures["random"] = statistics.mean(apgr([rng.random() for _ in sub], qw, qs) for _ in range(20))
        print(f"  {task} ({len(sub)} rows): " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
        print("    95% bootstrap intervals: " + ", ".join(
            f"{name} {lo:.3f} to {hi:.3f}" for name, s in (("tierwise", ours), ("prompt length", length))
            for lo, hi in [bootstrap_apgr(s, qw, qs)]))
    # What knowing the subject is worth: each MMLU test row scored by the share of train/dev rows
    # of its subject where the strong model beat the weak one. No prompt shows its subject (it is
    # metadata), so a text router has to infer it; this is what perfect inference alone would give.
    gaps: dict[str, list[float]] = {}
    for r in load_rows(path):
        if r.split != "test" and r.source.endswith("mmlu"):
            gaps.setdefault(r.task, []).append(float(r.outcomes[strong].quality > r.outcomes[weak].quality))
    sub = [r for r in rows if r.source.endswith("mmlu")]
    subject = [statistics.mean(gaps[r.task]) for r in sub]
    figure = apgr(subject, [r.outcomes[weak].quality for r in sub], [r.outcomes[strong].quality for r in sub])
    print(f"  ceiling: the MMLU subject known exactly (not in the prompt), scored by its train/dev gap rate: APGR {figure:.3f}")


def bootstrap_apgr(scores: list[float], qw: list[float], qs: list[float], rounds: int = 300) -> tuple[float, float]:
    rng = random.Random(0)
    n = len(scores)
    draws = []
    for _ in range(rounds):
        idx = [rng.randrange(n) for _ in range(n)]
        draws.append(apgr([scores[i] for i in idx], [qw[i] for i in idx], [qs[i] for i in idx]))
    draws.sort()
    return draws[int(rounds * 0.025)], draws[int(rounds * 0.975) - 1]


def routerbench_quality(folds: int = 5) -> None:
    path = DATA / "routerbench-train.jsonl"
    if not path.exists():
        print(f"quality: {path} not found, skipped")
        return
    tiers = ["mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"]
    rows = [r for r in load_rows(path) if all(t in r.outcomes for t in tiers)]
    rows.sort(key=lambda r: r.id)
    random.Random(0).shuffle(rows)
    # Cross-validated: each fold is scored by a classifier trained on the other folds.
    scores: dict[str, float] = {}
    for k in range(folds):
        held = rows[k::folds]
        rest = [r for i, r in enumerate(rows) if i % folds != k]
        clf = train(rest, weak=tiers[0], strong=tiers[-1], seed=k)
        scores.update(zip((r.id for r in held), clf.score_batch([r.messages for r in held])))
    quality = [[r.outcomes[t].quality for t in tiers] for r in rows]
    cost = [[r.outcomes[t].cost_usd or 0.0 for t in tiers] for r in rows]
    q_top = sum(q[-1] for q in quality) / len(rows)
    c_top = sum(c[-1] for c in cost) / len(rows)
    target = 0.95 * q_top
    judge = litellm_complexity()
    candidates = {
        "tierwise (trained per fold)": [scores[r.id] for r in rows],
        "tierwise (shipped, not trained on this set)": default_classifier().score_batch([r.messages for r in rows]),
        "litellm complexity_router": [judge(str(r.messages[-1]["content"])) for r in rows],
    }
    print(f"quality: routerbench ({len(rows)} rows, {folds}-fold), tiers {' / '.join(tiers)}; "
          f"always-frontier quality {q_top:.3f}, cost ${c_top * 1000:.3f} per 1k requests")
    print(f"  least cost reaching 95% of always-frontier quality ({target:.3f}), as a share of always-frontier cost:")
    for name, s in candidates.items():
        best = least_cost_for_quality(s, quality, cost, target)
        print(f"    {name:<44} " + ("not reached" if best is None else f"{best[0] / c_top:6.1%} (quality {best[1]:.3f})"))
    rnd = random_least_cost(quality, cost, target)
    print(f"    {'random routing (best fixed tier shares)':<44} " + ("not reached" if rnd is None else f"{rnd / c_top:6.1%}"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="speed only")
    args = parser.parse_args()
    speed(300 if args.quick else 2000)
    if not args.quick:
        routellm_quality()
        routerbench_quality()


if __name__ == "__main__":
    main()
