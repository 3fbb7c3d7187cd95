"""Conversations and the response cache, replayed against a local provider with a prompt cache.

    python bench/sessions.py [--conversations 60] [--system-tokens 0,2000] [--answer-tokens N]

Workload: multi-turn conversations opened by the Arena-Hard and MT-Bench prompts of ../shared/data,
each followed by follow-ups of several lengths (a "thanks", a short question, a long request, and
another set prompt as a harder turn). Answers are sized by the turn, as a chat model's are: about
300 tokens for a set prompt, 600 for the long request, 80 for "make it shorter", 10 for "thanks"
(`--answer-tokens N` gives every answer N tokens instead). The local server bills as a provider
with a prefix cache would: the longest prefix of the request (whole messages) that this same model
saw before is reported 90% cached, so a router that comes back to a model finds its earlier turns.
Prices per million tokens (input / cached input / output): small 0.05 / 0.005 / 0.40, flash
0.25 / 0.025 / 2.00, frontier 1.25 / 0.125 / 10.00. The shipped classifier routes.

Each workload is replayed twice: as open chat (no system prompt) and as an app that sends 2,000
tokens of instructions before every conversation (`--system-tokens 0,2000`), where a conversation's
input is most of its bill. Printed side by side: per-turn routing (no session), sessions (session_id per conversation) and
always-frontier (pinned, so every turn hits its cache); each total, its cached share, and turns a
session moved down (must be 0). Then the response cache: p50 of a repeated deterministic request
answered from the cache (SQLite ledger; Redis when one answers on 127.0.0.1:6379) against p50 of
the same request answered by the local server (which replies at once).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from router import Router, RouterConfig
from router.testing import LocalOpenAIServer

PRICES = {"small": ("m-small", "0.00000005", "0.000000005", "0.0000004"), "flash": ("m-flash", "0.00000025", "0.000000025", "0.000002"),
          "frontier": ("m-big", "0.00000125", "0.000000125", "0.00001")}
FOLLOW_UPS = ["Thanks!", "Can you make it shorter?", ("Now explain the reasoning step by step, with two worked examples, and say "
              "where a careful reader could disagree and what evidence would settle it.")]
SENTENCE = "This is a considered answer. "  # about 6 tokens
SIZED = {"Thanks!": 2, FOLLOW_UPS[1]: 13, FOLLOW_UPS[2]: 100}  # sentences an answer to these takes; set prompts take 50


def _digest(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps([[m.get("role"), m.get("content")] for m in messages]).encode()).hexdigest()


class PromptCache:
    """The provider's side: which prefixes each model has seen (and so holds cached), and answers
    sized by the turn they answer."""

    def __init__(self, answer_sentences: int | None = None) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._fixed = answer_sentences
        self.cached = self.prompt = 0  # tokens reported

    def __call__(self, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        last = str(messages[-1].get("content", ""))
        answer = SENTENCE * (self._fixed or SIZED.get(last, 50))
        sizes = [(len(json.dumps(m.get("content", ""))) + 3) // 4 for m in messages]
        with self._lock:
            hit = max((k for k in range(1, len(messages)) if (model, _digest(messages[:k])) in self._seen), default=0)
            whole = [*messages, {"role": "assistant", "content": answer}]
            self._seen.update((model, _digest(whole[:k])) for k in range(1, len(whole) + 1))
            cached = int(0.9 * sum(sizes[:hit]))
            self.cached += cached
            self.prompt += sum(sizes)
        return {"content": answer, "cached_tokens": cached}


def conversations(n: int, seed: int = 0) -> list[list[str]]:
    """Openers from Arena-Hard and MT-Bench, each with follow-ups of several lengths and one harder turn."""
    prompts = []
    for name in ("arenahard-v01.jsonl", "routellm-mtbench.jsonl"):
        path = DATA / name
        if path.exists():
            prompts += [json.loads(line)["messages"][0]["content"] for line in path.open()]
    if not prompts:
        raise SystemExit(f"no Arena-Hard or MT-Bench set in {DATA}")
    rng = random.Random(seed)
    rng.shuffle(prompts)
    out = []
    for i in range(n):
        turns = [prompts[i % len(prompts)], *rng.sample(FOLLOW_UPS, 2), prompts[(i + n) % len(prompts)], rng.choice(FOLLOW_UPS)]
        out.append(turns)
    return out


def config(url: str, ledger: str, **extra: Any) -> RouterConfig:
    tiers = [{"name": tier, "models": [{"model": f"openai/{m}", "api_base": url, "api_key": "sk-local-0123456789",
                                        "input_cost_per_token": i, "cache_read_input_cost_per_token": c, "output_cost_per_token": o}]}
             for tier, (m, i, c, o) in PRICES.items()]
    return RouterConfig.from_dict({"tiers": tiers, "ledger": ledger, **extra})


def system_prompt(tokens: int) -> list[dict[str, Any]]:
    """An app's instructions sent before every conversation (none for 0 tokens)."""
    rule = "Answer as the support assistant of Example Corp; cite the policy section you rely on. "  # about 20 tokens
    return [{"role": "system", "content": rule * (tokens // 20)}] if tokens else []


def replay(router: Router, convs: list[list[str]], mode: str, system: list[dict[str, Any]]) -> tuple[Decimal, int]:
    """Total cost and the turns a session moved down."""
    total, down = Decimal(0), 0
    order = list(PRICES)
    for k, turns in enumerate(convs):
        messages: list[dict[str, Any]] = list(system)
        level = -1
        for text in turns:
            messages.append({"role": "user", "content": text})
            kwargs: dict[str, Any] = {"max_tokens": 400}
            if mode == "sessions":
                kwargs["session_id"] = f"conv-{k}"
            if mode == "always-frontier":
                kwargs["tier"] = "frontier"
            resp = router.complete(list(messages), tenant="bench", **kwargs)
            total += resp.route.cost_usd
            now = order.index(resp.route.tier)
            down += mode == "sessions" and now < level
            level = max(level, now) if mode == "sessions" else now
            messages.append({"role": "assistant", "content": resp.choices[0].message.content})
    return total, down


def cache_latency(url: str, home: Path) -> None:
    ask = [{"role": "user", "content": "What is the capital of France?"}]
    backends = [("SQLite ledger", {})]
    try:
        import redis

        redis.Redis(socket_connect_timeout=0.2).ping()
        backends.append(("Redis", {"url": "redis://127.0.0.1:6379/0"}))
    except Exception as exc:  # noqa: BLE001 - no Redis here: the ledger's cache only
        print(f"no Redis on 127.0.0.1:6379 ({type(exc).__name__}): the ledger's cache only")
    for name, extra in backends:
        cfg = config(url, f"sqlite:///{home / (name.split()[0] + '.db')}", cache={"ttl_s": 600, **extra})
        with Router(cfg) as router:
            nonce = os.urandom(4).hex()
            calls, hits = [], []
            for i in range(200):
                msgs = [{"role": "user", "content": f"{ask[0]['content']} ({nonce}-{i})"}]
                t = time.perf_counter()
                router.complete(msgs, tenant="bench", temperature=0, tier="small")
                calls.append(time.perf_counter() - t)
                t = time.perf_counter()
                assert router.complete(msgs, tenant="bench", temperature=0, tier="small").route.cached
                hits.append(time.perf_counter() - t)
        print(f"response cache ({name}): a hit p50 {statistics.median(hits) * 1e3:.2f} ms against a call p50 "
              f"{statistics.median(calls) * 1e3:.2f} ms to a local server that answers at once (200 requests each)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=60)
    parser.add_argument("--system-tokens", type=lambda v: [int(x) for x in v.split(",")], default=[0, 2000],
                        help="system prompt sizes to replay, comma-separated (0: none)")
    parser.add_argument("--answer-tokens", type=int, default=None, help="every answer this long (about), not sized by its turn")
    args = parser.parse_args()
    convs = conversations(args.conversations)
    with tempfile.TemporaryDirectory() as home, LocalOpenAIServer() as server:
        print(f"{len(convs)} conversations of {len(convs[0])} turns; a 90% prefix cache per model; prices as in the module text")
        for tokens in args.system_tokens:
            print(f"with {f'a {tokens:,}-token system prompt' if tokens else 'no system prompt'}:")
            results = {}
            for mode in ("per-turn routing", "sessions", "always-frontier"):
                server.responder = provider = PromptCache(args.answer_tokens and max(1, args.answer_tokens // 6))  # a fresh cache each
                with Router(config(server.url, f"sqlite:///{Path(home) / f'{mode.split()[0]}-{tokens}.db'}")) as router:
                    cost, down = replay(router, convs, mode, system_prompt(tokens))
                    entries = router.ledger.entries("bench")
                results[mode] = cost
                tiers = {t: sum(e.tier == t for e in entries) for t in PRICES}
                print(f"  {mode:<18} ${cost:.6f}  ({len(entries)} calls {tiers}; {provider.cached / max(1, provider.prompt):.0%} of input "
                      "tokens cached)" + (f"; turns moved down within a session: {down}" if mode == "sessions" else ""))
            base = results["per-turn routing"]
            print(f"  sessions cost {results['sessions'] / base:.2f}x per-turn routing and "
                  f"{results['sessions'] / results['always-frontier']:.2f}x always-frontier")
        cache_latency(server.url, Path(home))


if __name__ == "__main__":
    main()
