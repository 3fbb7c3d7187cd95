"""The shipped prior's recipe and its leave-one-set-out measurement, shared by bench/ scripts.

POOL: the permissively licensed sets the shipped weights may train on (with the project's seed
prompts); TARGETS: every labelled set of ../shared/data with the tiers it is measured on.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
SEED = ROOT / "bench" / "data" / "seed-prompts.jsonl"

from classifiers import LinearClassifier, Row, load_rows, train

MIXTRAL, GPT4_1106 = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
LLAMA_8B = ["Llama-3-Base-8B-TR_DPO-Alpha_0.6-UltraFeedback", "Llama-3-Base-8B-DPO-UltraFeedback", "Llama-3-Base-8B-IPO-UltraFeedback"]
# Each pooled file with its cheapest and top model (the first present in a row is used).
POOL = {
    "routellm-mmlu-gsm8k": (MIXTRAL, GPT4_1106),
    "routellm-mtbench": (MIXTRAL, GPT4_1106),
    "llmrouter-9model": ("mistral-7b-instruct-v0.3", "llama-3.3-nemotron-super-49b-v1"),
    "arenahard-v01": (LLAMA_8B, "gpt-4-0613"),
}
WEAK = [MIXTRAL, "mistral-7b-instruct-v0.3", *LLAMA_8B, "small"]
STRONG = [GPT4_1106, "llama-3.3-nemotron-super-49b-v1", "gpt-4-0613", "frontier"]
LENGTH_WEIGHT = 0.8  # chosen by leave-one-set-out nAPGR among 0.15-0.8 (the sanity suite still passes at 0.8)
# LLMRouter's file has no costs: list prices per million input tokens from its README.
LLMROUTER_PRICES = {"mistral-7b-instruct-v0.3": (Decimal("0.10e-6"), Decimal(0)), "llama-3.1-8b-instruct": (Decimal("0.20e-6"), Decimal(0)),
                    "llama-3.3-nemotron-super-49b-v1": (Decimal("0.90e-6"), Decimal(0))}


@dataclass(frozen=True)
class Target:
    name: str
    file: str
    tiers: tuple[str, ...]
    split: str | None = "test"
    source: str | None = None  # rows of this source only
    prices: dict[str, tuple[Decimal, Decimal]] | None = None


TARGETS = [
    Target("RouterBench train", "routerbench-train", ("mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106", GPT4_1106), split=None),
    Target("LLMRouter test", "llmrouter-9model", tuple(LLMROUTER_PRICES), prices=LLMROUTER_PRICES),
    Target("RouteLLM MMLU test", "routellm-mmlu-gsm8k", (MIXTRAL, GPT4_1106), source="routellm/mmlu"),
    Target("RouteLLM GSM8K test", "routellm-mmlu-gsm8k", (MIXTRAL, GPT4_1106), source="routellm/gsm8k"),
    Target("MT-Bench", "routellm-mtbench", (MIXTRAL, GPT4_1106), split=None),
    Target("Arena-Hard test", "arenahard-v01", ("Llama-3-Base-8B-TR_DPO-Alpha_0.6-UltraFeedback", "gpt-3.5-turbo-0125", "gpt-4-0613")),
    Target("MESS+ test", "messplus-llama3", ("Llama-3.2-1B-Instruct", "Llama-3.1-8B-Instruct-4bit", "Llama-3.3-70B-Instruct-4bit")),
]


def path(name: str) -> Path:
    return DATA / f"{name}.jsonl"


def pool_rows(leave_out: str | None = None) -> list[Row]:
    """The training pool without one file; that file's test rows stay in, so their texts are kept out of training."""
    rows: list[Row] = []
    for name in POOL:
        if path(name).exists():
            rows += load_rows(path(name)) if name != leave_out else [r for r in load_rows(path(name)) if r.split == "test"]
    if SEED.exists():
        rows += load_rows(SEED)
    return rows


def train_prior(leave_out: str | None = None, length_weight: float = LENGTH_WEIGHT, rows: list[Row] | None = None) -> LinearClassifier:
    """The shipped recipe; with `leave_out`, without that file (for leave-one-set-out figures)."""
    clf = train(rows if rows is not None else pool_rows(leave_out), weak=WEAK, strong=STRONG, length_weight=length_weight)
    clf.meta["name"] = "tierwise-default"
    return clf


def target_rows(t: Target) -> list[Row]:
    rows = [r for r in load_rows(path(t.file)) if not r.contaminated and (t.split is None or r.split == t.split)]
    return [r for r in rows if (t.source is None or r.source == t.source) and all(m in r.outcomes for m in t.tiers)]


SEED_COST = (0.04, 0.2, 1.0)  # gpt-5-nano / mini / gpt-5 list prices relative to gpt-5


def _seed_trivial(clf: LinearClassifier, tiers: int) -> tuple[list[float], list[list[float]], list[list[float]]]:
    """The seed set's trivial rows of its dev carve (the 15% train() held out of it): every tier answers
    them fully by the band's definition, so their outcome on every tier is known."""
    import random

    rows = sorted(load_rows(SEED), key=lambda r: r.id)
    random.Random("0:tierwise-seed").shuffle(rows)
    dev = [r for r in rows[: len(rows) * 15 // 100] if r.task == "trivial"]
    reps = max(1, round(2000 / len(dev)))
    costs = [SEED_COST[0], SEED_COST[-1]] if tiers == 2 else list(SEED_COST)
    return clf.score_batch([r.messages for r in dev]) * reps, [[1.0] * tiers] * (len(dev) * reps), [costs] * (len(dev) * reps)


def pooled_dev_thresholds(clf: LinearClassifier, target: float = 0.95) -> dict[int, tuple[list[float], dict[str, float]]]:
    """Default thresholds: calibrated to `target` of always-top quality on the permissive sets' dev rows
    (LLMRouter has none: a seeded 15% of its train rows), each set weighing the same, cost in units of
    that set's always-top cost. Returns {tiers: (thresholds, share of traffic per tier)}."""
    import random

    from policies import calibrate
    from router.evaluate import matrices

    three = [("llmrouter-9model", tuple(LLMROUTER_PRICES), LLMROUTER_PRICES),
             ("arenahard-v01", ("Llama-3-Base-8B-TR_DPO-Alpha_0.6-UltraFeedback", "gpt-3.5-turbo-0125", "gpt-4-0613"), None)]
    two = [("routellm-mmlu-gsm8k", (MIXTRAL, GPT4_1106), None), ("routellm-mtbench", (MIXTRAL, GPT4_1106), None)]
    out = {}
    for sets in (three, two):
        scores, quality, cost = _seed_trivial(clf, len(sets[0][1]))
        for name, tiers, prices in sets:
            rows = [r for r in load_rows(path(name)) if not r.contaminated and all(t in r.outcomes for t in tiers)]
            dev = [r for r in rows if r.split == "dev"]
            if not dev:  # no dev split (and never test rows): a seeded 15% of the rest
                rest = sorted((r for r in rows if r.split != "test"), key=lambda r: r.id)
                random.Random(0).shuffle(rest)
                dev = rest[: len(rest) * 15 // 100]
            q, c, _, _ = matrices(dev, tiers, prices or {})
            top = sum(x[-1] for x in c) / len(c) or 1.0
            reps = max(1, round(2000 / len(dev)))  # equal weight per set: repeat small sets
            scores += clf.score_batch([r.messages for r in dev]) * reps
            quality += q * reps
            cost += [[v / top for v in x] for x in c] * reps
        cal = calibrate(scores, quality, cost, "quality", target)
        starts = [next((k for k, t in enumerate(cal.thresholds) if s < t), len(cal.thresholds)) for s in scores]
        shares = {f"tier {k}": starts.count(k) / len(starts) for k in range(len(cal.thresholds) + 1)}
        out[len(cal.thresholds) + 1] = ([round(t, 3) for t in cal.thresholds], shares | {"cost_vs_top": cal.cost, "quality": cal.quality})
    return out
