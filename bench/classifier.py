"""Classifier figures: speed against LiteLLM's complexity router, weights size and load time, the
sanity suite, and routing quality (nAPGR, leave one set out) on the labelled sets in ../shared/data
(skipped when they are absent).

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

import _prior as P

from classifiers import default_classifier, default_weights_path, load
from router.evaluate import matrices, napgr

OUT = ROOT / "bench" / "out"  # leave-one-set-out priors, reused by bench/learning.py (not committed)

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


def auc(high: list[float], low: list[float]) -> float:
    return sum((h > lo) + 0.5 * (h == lo) for h in high for lo in low) / (len(high) * len(low))


def sanity(clf) -> str:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    import sanity_suite as s

    sc = lambda items: clf.score_batch([[{"role": "user", "content": t}] for _, t in items])
    trivial, ordinary, demanding = sc(s.TRIVIAL + s.LONG_TRIVIAL), sc(s.ORDINARY), sc(s.DEMANDING + s.SHORT_DEMANDING)
    matched = auc(sc(s.SHORT_DEMANDING), sc(s.LONG_TRIVIAL))
    return f"AUC trivial<demanding {auc(demanding, trivial):.3f}, ordinary<demanding {auc(demanding, ordinary):.3f}, length-matched {matched:.3f}"


def prior_for(target: P.Target, cache: dict[str, object]):  # type: ignore[no-untyped-def]
    """The prior trained without the target's file (leave one set out); the shipped one for sets outside the pool."""
    if target.file not in P.POOL:
        return default_classifier()
    if target.file not in cache:
        saved = OUT / f"prior-without-{target.file}.json"
        if saved.exists():
            cache[target.file] = load(saved)
        else:
            clf = P.train_prior(target.file)
            clf.save(saved)
            cache[target.file] = clf
    return cache[target.file]


def loso_quality(rounds: int) -> None:
    """nAPGR of the prior (trained without the set), prompt length and random on every labelled set."""
    if not DATA.exists():
        print(f"quality: {DATA} not found, skipped")
        return
    OUT.mkdir(exist_ok=True)
    print(f"shipped prior on the sanity suite (tests/data, never trained on): {sanity(default_classifier())}")
    print(f"default thresholds, calibrated to 95% of always-top quality on pooled permissive dev rows: {P.pooled_dev_thresholds(default_classifier())}")
    print(f"quality, leave one set out: nAPGR (random = expected random routing), gap closed = (x - random) / (oracle - random); "
          f"paired bootstrap, {rounds} rounds")
    print(f"  {'set':<22} {'rows':>5} {'random':>7} {'oracle':>7} | {'prior':>6} {'gap':>6} | {'length':>6} {'gap':>6} | prior - length (95% CI)     | prior gap (95% CI)")
    cache: dict[str, object] = {}
    for target in P.TARGETS:
        if not P.path(target.file).exists():
            continue
        rows = P.target_rows(target)
        quality, cost, _, _ = matrices(rows, target.tiers, target.prices or {})
        clf = prior_for(target, cache)
        scores = {"prior": clf.score_batch([r.messages for r in rows]), "length": [len(str(r.messages[-1]["content"])) for r in rows]}
        res = napgr(scores, quality, cost, rounds=rounds)
        d = res.ci95.get("prior - length", (float("nan"), float("nan")))
        g = res.ci95.get("prior gap", (float("nan"), float("nan")))
        print(f"  {target.name:<22} {len(rows):>5} {res.random:7.3f} {res.oracle:7.3f} | {res.napgr['prior']:6.3f} {res.gap_closed['prior']:6.1%} | "
              f"{res.napgr['length']:6.3f} {res.gap_closed['length']:6.1%} | {res.napgr['prior'] - res.napgr['length']:+.3f} "
              f"({d[0]:+.3f} to {d[1]:+.3f}) | {g[0]:.1%} to {g[1]:.1%}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="speed only")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    args = parser.parse_args()
    speed(300 if args.quick else 2000)
    if not args.quick:
        loso_quality(args.rounds)


if __name__ == "__main__":
    main()
