"""Sessions: a conversation stays on the tier that answered it and moves only up, per tenant, shared
by instances through the ledger (both backends), with a TTL; bad session ids are typed errors."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from conftest import KeywordClassifier, local_tiers
from test_gateway import KEY, gateway_config, serving

from router import InvalidRequestError, LiteLLMClient, Router, RouterConfig
from router.testing import LocalOpenAIServer


def turn(text: str, score: float) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{text} #{score}"}]  # KeywordClassifier reads the score after '#'


def test_a_session_stays_on_its_tier_and_moves_only_up(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": any_ledger_url, "thresholds": [0.4, 0.7]})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        first = router.complete(turn("explain the design", 0.5), tenant="acme", session_id="s1")
        assert first.route.tier == "flash"
        thanks = router.complete(turn("thanks!", 0.05), tenant="acme", session_id="s1")
        assert thanks.route.tier == "flash" and "kept on flash for session s1" in thanks.route.reason  # never down
        harder = router.complete(turn("now prove it", 0.9), tenant="acme", session_id="s1")
        assert harder.route.tier == "frontier"  # up when the turn asks for more
        assert router.complete(turn("ok", 0.05), tenant="acme", session_id="s1").route.tier == "frontier"
        # Another tenant's session of the same id is another session; no session id routes per turn.
        assert router.complete(turn("hi", 0.05), tenant="globex", session_id="s1").route.tier == "small"
        assert router.complete(turn("hi", 0.05), tenant="acme").route.tier == "small"
        # Each turn of a session asks the provider to keep its prefix cached under one key that names neither tenant nor session.
        keys = [r["body"].get("prompt_cache_key") for r in server.requests]
        assert keys[0] == keys[1] == keys[2] and keys[0].startswith("tw-") and "s1" not in keys[0] and "acme" not in keys[0]
        assert keys[4] != keys[0] and keys[5] is None  # another tenant's s1; no session
        # The bills say which turns came with a session id (`tierwise ledger --savings` splits their cached input out).
        router.ledger.flush()
        assert [e.in_session for e in sorted(router.ledger.entries(), key=lambda e: e.ts)] == [1, 1, 1, 1, 1, 0]
    # Another instance on the same ledger sees the session.
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as other:
        assert other.complete(turn("and?", 0.05), tenant="acme", session_id="s1").route.tier == "frontier"


def test_an_idle_session_starts_again(server: LocalOpenAIServer, ledger_url: str) -> None:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7],
                                     "sessions": {"ttl_s": 0.01}})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        assert router.complete(turn("hard", 0.9), tenant="acme", session_id="s").route.tier == "frontier"
        import time

        time.sleep(0.05)
        assert router.complete(turn("easy", 0.05), tenant="acme", session_id="s").route.tier == "small"


@pytest.mark.parametrize("bad", ["x" * 257, "é" * 200, "a\x00b", "line\nbreak", "tab\there", 42, ""])
def test_bad_session_ids_are_typed_errors_before_any_call(server: LocalOpenAIServer, ledger_url: str, bad: Any) -> None:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s)) as router, pytest.raises(InvalidRequestError, match="session_id"):
        router.complete([{"role": "user", "content": "hi"}], session_id=bad)
    assert server.requests == []


def test_the_gateway_takes_the_session_from_its_header(server: LocalOpenAIServer, ledger_url: str) -> None:
    config = RouterConfig.from_dict(gateway_config(server, ledger_url))
    with serving(config) as url:
        headers = {"authorization": f"Bearer {KEY}", "x-session-id": "chat-7"}
        long = {"model": "tierwise", "messages": [{"role": "user", "content": "Analyse the trade-offs of optimistic locking " * 40}]}
        first = httpx.post(f"{url}/chat/completions", json=long, headers=headers, timeout=30)
        short = httpx.post(f"{url}/chat/completions", json={"model": "tierwise", "messages": [{"role": "user", "content": "thanks"}]},
                           headers=headers, timeout=30)
        bad = httpx.post(f"{url}/chat/completions", json={"model": "tierwise", "messages": [{"role": "user", "content": "x"}]},
                         headers={**headers, "x-session-id": "a" * 300}, timeout=30)
    assert first.status_code == short.status_code == 200 and bad.status_code == 400
    assert first.headers["x-tierwise-tier"] != "small" and short.headers["x-tierwise-tier"] == first.headers["x-tierwise-tier"]
    assert hashlib.sha256(KEY.encode()).hexdigest() not in bad.text


def test_a_callers_prompt_cache_key_stays_within_its_tenant(server: LocalOpenAIServer, ledger_url: str) -> None:
    """Tenants share the provider account's prompt cache: a key sent as given could aim at another
    tenant's session (its key is a digest of tenant and session id, computable by anyone)."""
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        router.complete(turn("hi", 0.05), tenant="acme", session_id="s1")
        aimed = server.requests[0]["body"]["prompt_cache_key"]
        router.complete(turn("hi", 0.05), tenant="globex", prompt_cache_key=aimed)
        router.complete(turn("hi", 0.05), tenant="globex", prompt_cache_key="mine")
        router.complete(turn("hi", 0.05), tenant="globex", prompt_cache_key="mine", session_id="s9")  # the caller's key wins
        router.complete(turn("hi", 0.05), tenant="acme", prompt_cache_key="mine")
    sent = [r["body"]["prompt_cache_key"] for r in server.requests]
    assert aimed not in sent[1:] and all(k.startswith("tw-") and "mine" not in k and "globex" not in k for k in sent)
    assert sent[2] == sent[3] != sent[4]  # one tenant's key still groups its requests; another tenant's same key is another


def test_a_callers_user_id_stays_within_its_tenant(server: LocalOpenAIServer, ledger_url: str) -> None:
    """`user` is the end-user id a provider monitors for abuse and may block: tenants share the
    provider account, so one tenant's `user` sent as given could get another tenant's user blocked.
    (litellm passes `user` on only for models it knows, hence OpenAI's names on the local server.)"""
    names = {"small": ["gpt-4o-mini"], "flash": ["gpt-4o"], "frontier": ["gpt-4.1"]}
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url, names), "ledger": ledger_url})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        for tenant, user in (("acme", "alice@example.com"), ("globex", "alice@example.com"), ("acme", "alice@example.com"), ("acme", "bob")):
            router.complete(turn("hi", 0.05), tenant=tenant, user=user)
        router.complete(turn("hi", 0.05), tenant="acme")
    sent = [r["body"].get("user") for r in server.requests]
    assert sent[0] == sent[2] and len({sent[0], sent[1], sent[3]}) == 3 and sent[4] is None
    assert all(u.startswith("tw-u-") and "alice" not in u and "acme" not in u for u in sent[:4])


@pytest.mark.parametrize("bad", ["x" * 257, 7, {"key": "a"}, ["tw-1"]])
def test_a_hostile_prompt_cache_key_is_a_typed_error_before_any_call(server: LocalOpenAIServer, ledger_url: str, bad: Any) -> None:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url})
    with (Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router,
          pytest.raises(InvalidRequestError, match="prompt_cache_key")):
        router.complete(turn("hi", 0.05), tenant="acme", session_id="s1", prompt_cache_key=bad)
    assert server.requests == []
