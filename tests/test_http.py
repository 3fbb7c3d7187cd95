"""The HTTP path against a local OpenAI-compatible server: retries, fallbacks, faults, secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal

import pytest
from conftest import SECRET, KeywordClassifier, local_tiers

from router import AsyncRouter, LiteLLMClient, ProviderError, Router, RouterConfig
from router.testing import LocalOpenAIServer

MSG = [{"role": "user", "content": "hello there"}]


def make(server: LocalOpenAIServer, ledger_url: str, names: dict | None = None, **cfg: object) -> tuple[Router, list[float]]:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url, names), "ledger": ledger_url, "thresholds": [0.4, 0.7], **cfg})
    sleeps: list[float] = []
    client = LiteLLMClient(config.retry, config.timeout_s, sleep=sleeps.append)
    return Router(config, client=client, classifier=KeywordClassifier()), sleeps


def test_429_retry_after_is_honoured(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].extend([{"status": 429, "headers": {"Retry-After": "3"}}, "fine"])
    router, sleeps = make(server, ledger_url)
    resp = router.complete(MSG)
    assert resp.choices[0].message.content == "fine"
    assert sleeps == [3.0] and server.count("m-small") == 2  # one retry, and no SDK retries besides ours
    assert resp.route.attempts[0].tries == 2


def test_async_retries_replay_the_first_failure_into_tenacity(server: LocalOpenAIServer, ledger_url: str) -> None:
    """The first try runs outside tenacity; its failure is tenacity's attempt 1: Retry-After is
    honoured, the tries are counted, and an error that is not worth a retry is sent once."""
    server.scripts["m-small"].extend([{"status": 429, "headers": {"Retry-After": "3"}}, {"status": 503}, "fine", {"status": 400}])
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7]})
    sleeps: list[float] = []

    async def asleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> tuple[object, BaseException]:
        client = LiteLLMClient(config.retry, config.timeout_s, asleep=asleep)
        async with AsyncRouter(config, client=client, classifier=KeywordClassifier()) as router:
            resp = await router.acomplete(MSG, tier="small")
            with pytest.raises(ProviderError) as info:
                await router.acomplete(MSG, tier="small")
            return resp, info.value

    resp, error = asyncio.run(run())
    assert resp.choices[0].message.content == "fine" and resp.route.attempts[0].tries == 3  # type: ignore[attr-defined]
    assert sleeps[0] == 3.0 and len(sleeps) == 2 and server.count("m-small") == 4  # the 400: one request, no retry
    assert [a.tries for a in error.attempts] == [1]  # type: ignore[attr-defined]


def test_retry_after_is_capped(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].extend([{"status": 503, "headers": {"Retry-After": "3600"}}, "fine"])
    router, sleeps = make(server, ledger_url, retry={"retry_after_cap_s": 5})
    router.complete(MSG)
    assert sleeps == [5.0]


def test_500s_use_full_jitter_then_fall_back_within_the_tier(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].extend([{"status": 500}] * 3)
    router, sleeps = make(server, ledger_url, {"small": ["m-small", "m-small-b"], "flash": ["m-flash"], "frontier": ["m-big"]})
    resp = router.complete(MSG)
    assert server.count("m-small") == 3 and server.count("m-small-b") == 1
    assert resp.route.tier == "small" and resp.route.model == "openai/m-small-b"
    assert len(sleeps) == 2 and all(0 <= s <= 20 for s in sleeps)
    assert [a.outcome for a in resp.route.attempts] == ["error", "ok"]
    assert [e.outcome for e in router.ledger.entries()] == ["error", "ok"]


def test_not_found_is_not_retried_but_falls_back(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append({"status": 404})
    router, sleeps = make(server, ledger_url)
    resp = router.complete(MSG)
    assert server.count("m-small") == 1 and sleeps == []
    assert resp.route.tier == "flash"  # the tier's only model failed: the next tier answers
    assert "m-small failed (NotFoundError): fell back" in resp.route.reason


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_raises_at_once_instead_of_escalating(server: LocalOpenAIServer, ledger_url: str, status: int) -> None:
    server.scripts["m-small"].append({"status": status})
    router, sleeps = make(server, ledger_url)
    with pytest.raises(ProviderError) as info:
        router.complete(MSG)
    assert server.count("m-small") == 1 and server.count("m-flash") == 0 and sleeps == []
    assert info.value.status_code == status and "tier 'small'" in str(info.value) and "key" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_falls_back_when_configured(server: LocalOpenAIServer, ledger_url: str, status: int) -> None:
    server.scripts["m-small"].append({"status": status})
    router, _ = make(server, ledger_url, auth_errors="fallback")
    assert router.complete(MSG).route.tier == "flash"


def test_a_missing_key_names_the_tier_and_the_variable_and_is_not_retried(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tiers = [{"name": "small", "models": ["gpt-5-nano"]}, {"name": "frontier", "models": ["gpt-5"]}]
    config = RouterConfig.from_dict({"tiers": tiers, "ledger": ledger_url, "thresholds": [0.5]})
    sleeps: list[float] = []
    router = Router(config, client=LiteLLMClient(config.retry, config.timeout_s, sleep=sleeps.append), classifier=KeywordClassifier())
    with pytest.raises(ProviderError) as info:
        router.complete(MSG)
    assert "tier 'small'" in str(info.value) and "OPENAI_API_KEY" in str(info.value), str(info.value)
    assert sleeps == [] and [a.tier for a in info.value.attempts] == ["small"]


def test_attempt_tries_count_every_request_the_provider_received(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].extend([{"status": 503}] * 3)
    router, _ = make(server, ledger_url)
    resp = router.complete(MSG)
    assert server.count("m-small") == 3
    assert resp.route.attempts[0].outcome == "error" and resp.route.attempts[0].tries == 3


@pytest.mark.parametrize("status", [400, 422])
def test_bad_request_is_not_retried_and_raises_provider_error(server: LocalOpenAIServer, ledger_url: str, status: int) -> None:
    server.scripts["m-small"].append({"status": status})
    router, sleeps = make(server, ledger_url)
    with pytest.raises(ProviderError) as info:
        router.complete(MSG)
    err = info.value
    assert server.count("m-small") == 1 and server.count("m-flash") == 0 and sleeps == []
    assert err.status_code == status and err.__cause__ is not None
    assert type(err.__cause__).__module__.startswith("litellm")


def test_quota_exhausted_429_is_not_retried(server: LocalOpenAIServer, ledger_url: str) -> None:
    body = json.dumps({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}})
    server.scripts["m-small"].append({"status": 429, "body": body})
    router, sleeps = make(server, ledger_url)
    resp = router.complete(MSG)
    assert server.count("m-small") == 1 and sleeps == [] and resp.route.tier == "flash"


def test_malformed_json_is_retried_then_falls_back(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].extend([{"body": "{not json"}] * 3)
    router, _ = make(server, ledger_url)
    resp = router.complete(MSG)
    assert resp.route.tier == "flash" and resp.route.attempts[0].outcome == "error"


def test_slow_reply_times_out_and_is_retried(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].extend([{"delay": 1.5, "content": "late"}, "quick"])
    router, sleeps = make(server, ledger_url, timeout_s=0.5)
    resp = router.complete(MSG)
    assert resp.choices[0].message.content == "quick" and len(sleeps) == 1


def test_every_model_down_raises_provider_error_with_attempts(server: LocalOpenAIServer, ledger_url: str) -> None:
    for model in ("m-small", "m-flash", "m-big"):
        server.scripts[model].extend([{"status": 503}] * 3)
    router, _ = make(server, ledger_url)
    with pytest.raises(ProviderError) as info:
        router.complete(MSG)
    assert len(info.value.attempts) == 3 and info.value.status_code == 503
    assert router.ledger.spent("default") == 0


def test_token_usage_and_cost_come_from_the_server_reply(server: LocalOpenAIServer, ledger_url: str) -> None:
    router, _ = make(server, ledger_url)
    resp = router.complete(MSG)
    usage = resp.usage
    attempt = resp.route.attempts[0]
    assert (attempt.tokens_in, attempt.tokens_out) == (usage.prompt_tokens, usage.completion_tokens)

    assert resp.route.cost_usd == Decimal("0.0000001") * usage.prompt_tokens + Decimal("0.0000004") * usage.completion_tokens


def test_stream_over_http(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("streamed words here")
    router, _ = make(server, ledger_url)
    stream = router.complete(MSG, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "streamed words here"
    assert router.ledger.spent("default") == stream.route.cost_usd > 0


def test_no_secret_in_errors_logs_or_ledger(server: LocalOpenAIServer, ledger_url: str, caplog: pytest.LogCaptureFixture, tmp_path) -> None:
    server.scripts["m-small"].append({"status": 400, "body": json.dumps({"error": {"message": f"bad key {SECRET}"}})})
    router, _ = make(server, ledger_url)
    caplog.set_level(logging.DEBUG, logger="tierwise")
    with pytest.raises(ProviderError) as info:
        router.complete(MSG)
    router.complete([{"role": "user", "content": "my private question"}])
    assert SECRET not in str(info.value) and SECRET not in repr(router.config)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "tierwise.attempt" in logs and "tierwise.decision" in logs
    assert SECRET not in logs and "private question" not in logs
    db = (tmp_path / "ledger.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("ledger.db-*"))
    assert SECRET.encode() not in db


def test_content_logged_only_when_turned_on(server: LocalOpenAIServer, ledger_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tierwise")
    quiet, _ = make(server, ledger_url)
    quiet.complete([{"role": "user", "content": "hidden-text"}])
    loud, _ = make(server, ledger_url, log_content=True)
    loud.complete([{"role": "user", "content": "visible"}])
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "visible" in logs and "hidden-text" not in logs


def test_streams_ask_for_usage_and_are_billed_on_what_the_provider_reports(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append({"content": "three words here", "prompt_tokens": 1234, "completion_tokens": 77})
    router, _ = make(server, ledger_url)
    stream = router.complete(MSG, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "three words here"
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    attempt = stream.route.attempts[0]
    assert (attempt.tokens_in, attempt.tokens_out) == (1234, 77)  # not our estimate of a 2-word prompt
    assert stream.route.cost_usd == Decimal("0.0000001") * 1234 + Decimal("0.0000004") * 77


def test_litellm_console_noise_is_silenced_for_our_calls_only(server: LocalOpenAIServer, ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import litellm

    server.scripts["m-small"].extend([{"status": 404}, "fine"])
    router, _ = make(server, ledger_url)
    router.complete(MSG)
    for chunk in router.complete(MSG, stream=True):
        pass
    out = capsys.readouterr().out
    assert "Give Feedback" not in out and "Provider List" not in out
    with pytest.raises(litellm.NotFoundError):  # litellm's own callers still get its messages
        litellm.completion(model="openai/m-small", api_base=server.url, api_key="x", messages=MSG, max_retries=0,
                           mock_response=litellm.NotFoundError("gone", model="m-small", llm_provider="openai"))
    server.scripts["m-small"].append({"status": 404})
    with pytest.raises(litellm.NotFoundError):
        litellm.completion(model="openai/m-small", api_base=server.url, api_key="x", messages=MSG, max_retries=0)
    assert "Give Feedback" in capsys.readouterr().out
