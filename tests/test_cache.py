"""The response cache: deterministic repeats answered from the ledger at $0 with the saving recorded,
per tenant (both backends), never for sampled requests; an unreadable entry is a miss."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import httpx
from conftest import KeywordClassifier, local_tiers
from test_gateway import KEY, OTHER, gateway_config, serving

from router import LiteLLMClient, Router, RouterConfig
from router.testing import LocalOpenAIServer

MSG = [{"role": "user", "content": "What is the capital of France?"}]


def _router(server: LocalOpenAIServer, url: str, **cfg: object) -> Router:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": url, "thresholds": [0.4, 0.7], "cache": {}, **cfg})
    return Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier())


def test_a_deterministic_repeat_is_a_free_hit_with_the_saving_recorded(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    server.scripts["m-small"].extend(["Paris.", "Lyon?"])
    with _router(server, any_ledger_url) as router:
        first = router.complete(MSG, tenant="acme", temperature=0)
        again = router.complete(MSG, tenant="acme", temperature=0)
        assert again.choices[0].message.content == "Paris." and again.route.cached and not again.route.replayed
        assert again.route.cost_usd == 0 and server.count("m-small") == 1
        entry = next(e for e in router.ledger.entries("acme") if e.request_id == again.route.request_id)
        assert entry.cost_usd == 0 and f"saved ${first.route.cost_usd}" in entry.reason
        sampled = router.complete(MSG, tenant="acme")  # no temperature 0, no seed: sampled, never cached
        assert not sampled.route.cached and sampled.choices[0].message.content == "Lyon?"
        assert router.complete(MSG, tenant="acme", seed=7).route.cached is False  # another parameter, another entry


def test_two_tenants_never_share_an_entry(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    server.scripts["m-small"].extend(["for acme", "for globex"])
    with _router(server, any_ledger_url) as router:
        router.complete(MSG, tenant="acme", temperature=0)
        globex = router.complete(MSG, tenant="globex", temperature=0)
        assert globex.choices[0].message.content == "for globex" and not globex.route.cached
        assert router.complete(MSG, tenant="globex", temperature=0).choices[0].message.content == "for globex"


def test_an_unreadable_entry_is_a_miss(server: LocalOpenAIServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    server.scripts["m-small"].extend(["one", "two"])
    with _router(server, url) as router:
        router.complete(MSG, tenant="acme", temperature=0)
        with sqlite3.connect(tmp_path / "l.db") as db:
            db.execute("UPDATE response_cache SET route = '{not json'")
        resp = router.complete(MSG, tenant="acme", temperature=0)
        assert resp.choices[0].message.content == "two" and not resp.route.cached


def test_the_gateway_says_a_hit_in_a_header(server: LocalOpenAIServer, ledger_url: str) -> None:
    with serving(RouterConfig.from_dict(gateway_config(server, ledger_url, cache={"ttl_s": 60}))) as url:
        body = {"model": "tierwise", "messages": MSG, "temperature": 0}
        first = httpx.post(f"{url}/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}, timeout=30)
        hit = httpx.post(f"{url}/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}, timeout=30)
        other = httpx.post(f"{url}/chat/completions", json=body, headers={"authorization": f"Bearer {OTHER}"}, timeout=30)
    assert "x-tierwise-cache" not in first.headers and hit.headers["x-tierwise-cache"] == "hit"
    assert Decimal(hit.headers["x-tierwise-cost-usd"]) == 0 and "x-tierwise-cache" not in other.headers
