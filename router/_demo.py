"""`tierwise demo`: a dozen varied prompts through a real Router, offline, against a local server."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from router._config import RouterConfig
from router._router import Router
from router.testing import LocalOpenAIServer

PROMPTS = [
    "Hi there!",
    "Thanks, that's all for today.",
    "What is the capital of Australia?",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "Translate 'good morning' into French.",
    "Summarise in one sentence: The meeting moved from Tuesday to Thursday because the room was booked.",
    "Format this as a bulleted list: apples, pears, plums.",
    "Capitalise each word of this title: the quick brown fox jumps over the lazy dog and runs far away",
    "Write a Python function that returns the n-th Fibonacci number using memoisation, with type hints and a docstring.",
    "Fix the bug: def mean(xs): return sum(xs) / len(xs) - it crashes on an empty list. Explain the fix and write tests.",
    "Prove that the square root of 2 is irrational, step by step, and explain why the proof by contradiction works.",
    "Let f(x) = x^3 - 6x^2 + 11x - 6. Find all real roots, prove there are no others, and sketch the derivative's sign.",
    (
        "Analyse the trade-offs between optimistic and pessimistic concurrency control for a multi-region payments ledger: "
        "compare latency, throughput, failure modes and auditability, justify a recommendation, and design the schema and "
        "the retry policy. The system must handle 5,000 writes per second, at least three regions, and exactly-once billing."
    ),
]
MODELS = {"small": "gpt-5-nano", "flash": "gpt-5-mini", "frontier": "gpt-5"}
# The simulated small model gives up on longer requests: the router's check catches it and escalates.
_GIVE_UP_WORDS = 14


def _responder(model: str, messages: list[dict[str, Any]]) -> str:
    text = str(messages[-1].get("content", ""))
    if model == MODELS["small"] and len(text.split()) > _GIVE_UP_WORDS:
        return ""
    length = {MODELS["small"]: 12, MODELS["flash"]: 60, MODELS["frontier"]: 180}.get(model, 20)
    return " ".join(["answer"] * length)


def demo_config(api_base: str, ledger: str, tiers: tuple[str, ...] = tuple(MODELS)) -> RouterConfig:
    """The default tiers, served by the local server (prices still from litellm's map)."""
    specs = [{"name": n, "models": [{"model": f"openai/{MODELS[n]}", "api_base": api_base, "api_key": "demo"}]} for n in tiers]
    return RouterConfig.from_dict({"tiers": specs, "ledger": ledger, "checks": ["non_empty"]})


def run_demo(out: Any = print) -> dict[str, Any]:
    """Route PROMPTS, print a table and the total against always-frontier; returns the figures."""
    with tempfile.TemporaryDirectory() as tmp, LocalOpenAIServer(responder=_responder) as server:
        ledger = f"sqlite:///{Path(tmp) / 'demo-ledger.db'}"
        router = Router(demo_config(server.url, ledger))
        baseline = Router(demo_config(server.url, ledger, tiers=("frontier",)))  # always-frontier, same server
        total, frontier_total = Decimal(0), Decimal(0)
        out(f"{'prompt':<48} {'score':>5}  {'tier':<8} {'model':<18} {'cost $':>11}  attempts")
        for prompt in PROMPTS:
            resp = router.complete([{"role": "user", "content": prompt}], tenant="demo")
            route = resp.route
            total += route.cost_usd
            frontier_total += baseline.complete([{"role": "user", "content": prompt}], tenant="baseline").route.cost_usd
            tries = " > ".join(f"{a.tier}:{a.outcome}" for a in route.attempts)
            short = prompt if len(prompt) <= 46 else prompt[:45] + "…"
            out(f"{short:<48} {route.score:5.2f}  {route.tier:<8} {str(route.model).split('/')[-1]:<18} {route.cost_usd:11.8f}  {tries}")
        saving = 1 - total / frontier_total if frontier_total else Decimal(0)
        out(f"\ntotal ${total:.6f} vs always-frontier ${frontier_total:.6f}: {saving:.0%} saved")
        out(f"ledger: {len(router.ledger.entries('demo'))} entries, spent ${router.ledger.spent('demo')}")
        router.close()
        baseline.close()
        return {"total": total, "frontier_total": frontier_total, "saving": saving}
