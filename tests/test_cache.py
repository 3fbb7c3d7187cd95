"""The response cache: deterministic repeats answered from the ledger (or Redis) at $0 with the saving
recorded, per tenant (both backends and Redis), never for sampled requests; an unreadable entry is a
miss; a Redis outage is a normal call with one warning."""

from __future__ import annotations

import logging
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis
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


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own on a free port (so stopping it harms no one else)."""
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on this machine")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


def test_redis_keeps_tenants_apart_and_an_unreadable_value_is_a_miss(server: LocalOpenAIServer, ledger_url: str, own_redis: str) -> None:
    server.scripts["m-small"].extend(["for acme", "for globex", "again for acme"])
    with _router(server, ledger_url, cache={"url": own_redis, "max_entries": 5}) as router:
        router.complete(MSG, tenant="acme", temperature=0)
        globex = router.complete(MSG, tenant="globex", temperature=0)
        assert globex.choices[0].message.content == "for globex" and not globex.route.cached
        hit = router.complete(MSG, tenant="acme", temperature=0)
        assert hit.route.cached and hit.choices[0].message.content == "for acme" and hit.route.cost_usd == 0
        client = redis.Redis.from_url(own_redis, decode_responses=True)
        assert len(client.keys("tierwise:cache:*")) == 2  # one entry a tenant; the ledger holds none
        for name in client.keys("tierwise:cache:*"):
            client.set(name, "{not json")
        miss = router.complete(MSG, tenant="acme", temperature=0)
        assert not miss.route.cached and miss.choices[0].message.content == "again for acme"
        for i in range(8):  # past max_entries the tenant's oldest go
            router.complete([{"role": "user", "content": f"question {i}"}], tenant="acme", temperature=0)
        index = [k for k in client.keys("tierwise:cache-index:*") if client.zcard(k) > 1]
        assert len(index) == 1 and client.zcard(index[0]) == 5


def test_a_redis_outage_is_a_normal_call_with_one_warning(server: LocalOpenAIServer, ledger_url: str, own_redis: str,
                                                          caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    server.scripts["m-small"].extend(["cached", "after the outage", "still served"])
    with _router(server, ledger_url, cache={"url": own_redis}) as router:
        router.complete(MSG, tenant="acme", temperature=0)
        assert router.complete(MSG, tenant="acme", temperature=0).route.cached
        redis.Redis.from_url(own_redis).shutdown(nosave=True)  # Redis stops: the next requests call the model
        with caplog.at_level(logging.WARNING, logger="tierwise"):
            down = router.complete(MSG, tenant="acme", temperature=0)
            later = router.complete(MSG, tenant="acme", temperature=0)
        assert down.choices[0].message.content == "after the outage" and not down.route.cached
        assert later.choices[0].message.content == "still served"
        assert sum("Redis failed" in r.getMessage() for r in caplog.records) == 1  # said once, not per request
        assert "redis://" not in caplog.text  # the URL (which may hold a password) is not logged


async def test_streams_are_served_from_the_cache_as_streams_and_fill_it(server: LocalOpenAIServer, ledger_url: str) -> None:
    from router import AsyncRouter

    server.scripts["m-small"].extend(["Paris.", "Rome."])
    with _router(server, ledger_url) as router:
        router.complete(MSG, tenant="acme", temperature=0)  # a plain answer ...
        stream = router.complete(MSG, tenant="acme", temperature=0, stream=True)  # ... answers a stream of the same request
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "Paris." and stream.route.cached and stream.route.cost_usd == 0 and server.count("m-small") == 1
        other = [{"role": "user", "content": "And of Italy?"}]
        first = router.complete(other, tenant="acme", temperature=0, stream=True)  # a stream that ends fills the cache
        assert "".join(c.choices[0].delta.content or "" for c in first if c.choices) == "Rome."
        first.close()
        again = router.complete(other, tenant="acme", temperature=0)
        assert again.route.cached and again.choices[0].message.content == "Rome." and server.count("m-small") == 2
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7], "cache": {}})
    async with AsyncRouter(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as arouter:
        astream = await arouter.acomplete(MSG, tenant="acme", temperature=0, stream=True)
        assert "".join([c.choices[0].delta.content or "" async for c in astream if c.choices]) == "Paris." and astream.route.cached


def test_a_replayed_request_id_asked_as_a_stream_comes_back_as_one(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("Once.")
    with _router(server, ledger_url, cache=None) as router:
        router.complete(MSG, tenant="acme", request_id="r-1")
        replay = router.complete(MSG, tenant="acme", request_id="r-1", stream=True)
        chunks = list(replay)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Once." and replay.route.replayed
        assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks) and server.count("m-small") == 1
