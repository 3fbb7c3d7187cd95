"""Rate limits: requests a minute per tenant, counted in the ledger's database so two instances share
them exactly (both backends), answered with 429, retry-after and OpenAI's error body by the gateway."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import KeywordClassifier, local_tiers
from test_gateway import KEY, OTHER, gateway_config, serving

from router import LiteLLMClient, RateLimited, Router, RouterConfig
from router.testing import LocalOpenAIServer

MSG = [{"role": "user", "content": "hi"}]


def _same_minute(seconds: float) -> None:
    """Start where the next `seconds` stay inside one minute of the clock the ledger counts by."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)


def test_200_requests_over_two_instances_pass_exactly_the_limit(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": any_ledger_url, "rate_limits": {"acme": {"rpm": 25}}})
    routers = [Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) for _ in range(2)]
    results: list[str] = []
    lock = threading.Lock()

    def one(k: int) -> None:
        try:
            routers[k % 2].complete(MSG, tenant="acme")
            outcome = "ok"
        except RateLimited as exc:
            outcome = "limited" if 0 < exc.retry_after_s <= 60 else f"bad wait {exc.retry_after_s}"
        except Exception as exc:  # noqa: BLE001 - named in the assertion below, not lost with the thread
            outcome = f"{type(exc).__name__}: {str(exc)[:200]}"
        with lock:
            results.append(outcome)

    _same_minute(8)
    first = int(time.time() // 60)
    threads = [threading.Thread(target=one, args=(k,)) for k in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    minutes = int(time.time() // 60) - first + 1  # a loaded machine may cross into the next minute
    assert results.count("ok") == 25 if minutes == 1 else 25 <= results.count("ok") <= 25 * minutes
    assert results.count("ok") + results.count("limited") == 200, sorted({r for r in results if r not in ("ok", "limited")})
    assert routers[0].complete(MSG, tenant="globex").choices[0].message.content == "ok"  # another tenant, no limit
    for r in routers:
        r.close()


def test_the_gateway_answers_429_with_retry_after(server: LocalOpenAIServer, ledger_url: str) -> None:
    config = RouterConfig.from_dict(gateway_config(server, ledger_url, rate_limits={"*": {"rpm": 2}}))
    _same_minute(5)
    first = int(time.time() // 60)
    with serving(config) as url:
        send = [httpx.post(f"{url}/chat/completions", json={"model": "tierwise", "messages": MSG},
                           headers={"authorization": f"Bearer {KEY}"}, timeout=30) for _ in range(3)]
        other = httpx.post(f"{url}/chat/completions", json={"model": "tierwise", "messages": MSG},
                           headers={"authorization": f"Bearer {OTHER}"}, timeout=30)
        metrics = httpx.get(url.replace("/v1", "/metrics"), timeout=10).text
    if int(time.time() // 60) != first:  # a loaded machine crossed into the next minute: the count started again
        pytest.skip("the minute changed during the test")
    assert [r.status_code for r in send] == [200, 200, 429] and other.status_code == 200  # "*": each tenant its own count
    limited = send[2]
    assert limited.json()["error"]["code"] == "rate_limit_exceeded" and 1 <= int(limited.headers["retry-after"]) <= 60
    assert 'status="rate_limited"' in metrics


def test_a_rate_limit_needs_a_whole_number() -> None:
    with pytest.raises(Exception, match="rpm"):
        RouterConfig.from_dict({"rate_limits": {"acme": {"rpm": 0}}})
    with pytest.raises(Exception, match="rpm, tpm or both"):
        RouterConfig.from_dict({"rate_limits": {"acme": {}}})


def test_tokens_a_minute_are_held_before_the_call_and_corrected_to_the_bill(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    server.scripts["m-small"].extend([{"content": "a", "prompt_tokens": 60, "completion_tokens": 40}] * 2)
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": any_ledger_url, "rate_limits": {"acme": {"tpm": 250}}})
    _same_minute(5)
    first = int(time.time() // 60)
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        with pytest.raises(RateLimited, match="lower max_tokens"):  # no max_tokens: held for 4,096 output tokens, more than 250
            router.complete(MSG, tenant="acme")
        served = [router.complete(MSG, tenant="acme", max_tokens=100) for _ in range(2)]  # each held 110, billed 100
        with pytest.raises(RateLimited, match="110 more tokens .* would pass its 250 tokens a minute") as refused:
            router.complete(MSG, tenant="acme", max_tokens=100)  # 200 billed + 110 held > 250
        assert 0 < refused.value.retry_after_s <= 60
        assert router.complete(MSG, tenant="globex").choices[0].message.content == "ok"  # another tenant, no limit
    if int(time.time() // 60) != first:
        pytest.skip("the minute changed during the test")
    assert all(s.route.attempts[0].tokens_in == 60 for s in served)


def test_concurrent_requests_over_two_instances_never_pass_the_tokens_a_minute(server: LocalOpenAIServer, pg_url: str) -> None:
    server.scripts["m-small"].extend([{"content": "a", "prompt_tokens": 50, "completion_tokens": 40, "delay": 0.2}] * 60)
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": pg_url, "rate_limits": {"acme": {"tpm": 1000}}})
    routers = [Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) for _ in range(2)]
    _same_minute(8)
    first = int(time.time() // 60)

    def one(k: int) -> str:
        try:
            routers[k % 2].complete(MSG, tenant="acme", max_tokens=90)  # held 100 each: at most ten at once
            return "ok"
        except RateLimited:
            return "limited"

    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(one, range(40)))
    routers[1].ledger.flush()  # the other instance's bills committed too
    billed = sum(e.tokens_in + e.tokens_out for e in routers[0].ledger.entries("acme"))
    for r in routers:
        r.close()
    if int(time.time() // 60) != first:
        pytest.skip("the minute changed during the test")
    assert billed <= 1000 and results.count("ok") * 90 == billed and results.count("limited") > 0  # never past the limit


def test_a_rate_window_turns_with_the_clocks_minute_on_both_backends(any_ledger_url: str) -> None:
    """The minute a request is counted in is the clock's (rounded down): PostgreSQL's cast alone
    rounds, which turned its windows at second 30 and made Retry-After (to the clock's next minute)
    wrong by half a minute. Read at 100 s past the epoch, the minute is 1 on both backends."""
    from router.ledger import open_ledger

    ledger = open_ledger(any_ledger_url, RouterConfig.from_dict({}).budget_for)
    store = ledger._store  # type: ignore[attr-defined]  # the dialect's expression, read at a fixed time
    try:
        assert store.query(f"SELECT {store.minute.replace(store.dbnow, '(100.0)')}", (), "one")[0] == 1
        assert store.query(f"SELECT {store.minute.replace(store.dbnow, '(119.999)')}", (), "one")[0] == 1
    finally:
        ledger.close()
