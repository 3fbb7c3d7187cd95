"""OpenTelemetry: a span per request with the GenAI semantic conventions and tierwise's decisions,
a child span per attempt, through the SDK's in-memory exporter; the app's on_route callback; a
broken exporter or callback never fails a request."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import KeywordClassifier, local_tiers
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router import ConfigError, LiteLLMClient, Router, RouterConfig
from router.testing import LocalOpenAIServer


def test_a_request_and_its_attempts_are_spans_with_genai_attributes(server: LocalOpenAIServer, ledger_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server.scripts["m-small"].append("")  # fails non_empty: the request escalates to flash
    seen: list[Any] = []
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7]})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier(),
                tracer_provider=provider, on_route=seen.append) as router:
        resp = router.complete([{"role": "user", "content": "hello there"}], tenant="acme")
    spans = exporter.get_finished_spans()
    (parent,) = [s for s in spans if s.parent is None]
    children = [s for s in spans if s.parent is not None]
    attrs = dict(parent.attributes or {})
    assert parent.name == "chat openai/m-flash" and attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.response.model"] == "openai/m-flash" and attrs["tierwise.tier"] == "flash" and attrs["tierwise.escalations"] == 1
    assert attrs["tierwise.tenant"] == "acme" and attrs["tierwise.cost_usd"] == float(resp.route.cost_usd) > 0
    assert attrs["gen_ai.usage.input_tokens"] == sum(a.tokens_in for a in resp.route.attempts)
    assert [(dict(c.attributes or {})["tierwise.tier"], dict(c.attributes or {})["tierwise.outcome"]) for c in children] == [
        ("small", "check_failed"), ("flash", "ok")]
    assert all(c.parent is not None and c.parent.span_id == parent.context.span_id for c in children)
    assert seen == [resp.route]


def test_a_broken_callback_never_fails_the_request(server: LocalOpenAIServer, ledger_url: str, caplog: pytest.LogCaptureFixture) -> None:
    def boom(_route: Any) -> None:
        raise RuntimeError("collector down")

    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), on_route=boom) as router, caplog.at_level("WARNING"):
        assert router.complete([{"role": "user", "content": "hi"}]).choices[0].message.content == "ok"
        assert router.complete([{"role": "user", "content": "hi"}]).choices[0].message.content == "ok"
    assert sum("collector down" in r.getMessage() for r in caplog.records) == 1  # said once


def test_an_otlp_endpoint_in_the_config_builds_an_exporter() -> None:
    config = RouterConfig.from_dict({"telemetry": {"otlp_endpoint": "http://127.0.0.1:4318/v1/traces", "service_name": "shop"}})
    with Router(config) as router:
        assert router._telemetry is not None
    with pytest.raises(ConfigError):
        RouterConfig.from_dict({"telemetry": {"endpoint": "x"}})


async def test_a_stream_is_traced_once_it_is_billed_sync_and_async(server: LocalOpenAIServer, ledger_url: str) -> None:
    from router import AsyncRouter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: list[Any] = []
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7]})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier(),
                tracer_provider=provider, on_route=seen.append) as router:
        stream = router.complete([{"role": "user", "content": "hello there"}], tenant="acme", stream=True)
        assert not exporter.get_finished_spans()  # not before it ends: its bill is not known yet
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        stream.close()
    async with AsyncRouter(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier(),
                           tracer_provider=provider, on_route=seen.append) as arouter:
        astream = await arouter.acomplete([{"role": "user", "content": "hello there"}], tenant="acme", stream=True)
        async for _ in astream:
            pass
        await astream.aclose()
    parents = [s for s in exporter.get_finished_spans() if s.parent is None]
    assert len(parents) == 2 and len(seen) == 2 and all(dict(p.attributes or {})["tierwise.cost_usd"] > 0 for p in parents)
