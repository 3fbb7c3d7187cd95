"""OpenTelemetry traces of routed requests: one span per request with the GenAI semantic conventions
(model, tokens) and tierwise's decisions (tier, score, cost, escalations), a child span per attempt.
Off unless the config has `telemetry:` or the app passes a tracer provider; needs the `otel` extra.
A failing exporter or callback never fails the request: it is logged once and dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from router._config import RouterConfig
from router._errors import ConfigError
from router._types import Route

_log = logging.getLogger("tierwise")


class Telemetry:
    """Records each served route as spans, and hands it to the app's `on_route` callback."""

    def __init__(self, provider: Any = None, on_route: Callable[[Route], Any] | None = None) -> None:
        self._tracer = provider.get_tracer("tierwise") if provider is not None else None
        self._on_route = on_route
        self._warned = False

    def served(self, route: Route) -> None:
        try:
            if self._tracer is not None:
                self._spans(route)
            if self._on_route is not None:
                self._on_route(route)
        except Exception as exc:  # noqa: BLE001 - observability must not break the answer
            if not self._warned:
                self._warned = True
                _log.warning("tierwise telemetry: %s: %s (further failures are not logged)", type(exc).__name__, exc)

    def _spans(self, route: Route) -> None:
        from opentelemetry import trace

        assert self._tracer is not None
        end = time.time_ns()
        start = end - int(route.latency_s * 1e9)
        attempts = [a for a in route.attempts if a.tier != "judge"]
        span = self._tracer.start_span(f"chat {route.model or 'tierwise'}", kind=trace.SpanKind.CLIENT, start_time=start, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "tierwise", "gen_ai.response.model": route.model or "",
            "gen_ai.usage.input_tokens": sum(a.tokens_in for a in route.attempts),
            "gen_ai.usage.output_tokens": sum(a.tokens_out for a in route.attempts),
            "tierwise.tenant": route.tenant, "tierwise.request_id": route.request_id, "tierwise.tier": route.tier or "",
            "tierwise.score": float(route.score), "tierwise.cost_usd": float(route.cost_usd), "tierwise.reason": route.reason[:500],
            "tierwise.escalations": max(0, len({a.tier for a in attempts}) - 1), "tierwise.attempts": len(route.attempts),
            "tierwise.replayed": bool(route.replayed), "tierwise.escalation_exhausted": bool(route.escalation_exhausted),
        })
        parent = trace.set_span_in_context(span)
        at = start
        for a in route.attempts:  # attempts run one after another: laid end to end from the request's start
            child = self._tracer.start_span(f"chat {a.model}", context=parent, kind=trace.SpanKind.CLIENT, start_time=at, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": a.model, "gen_ai.usage.input_tokens": a.tokens_in,
                "gen_ai.usage.output_tokens": a.tokens_out, "tierwise.tier": a.tier, "tierwise.outcome": a.outcome,
                "tierwise.cost_usd": float(a.cost_usd), "tierwise.tries": a.tries, "tierwise.reason": a.reason[:300]})
            at = min(end, at + int(a.latency_s * 1e9))
            child.end(end_time=at)
        span.end(end_time=end)


def telemetry_for(config: RouterConfig, provider: Any = None, on_route: Callable[[Route], Any] | None = None) -> Telemetry | None:
    """The telemetry a router records to: the app's tracer provider, else one exporting to the config's
    OTLP endpoint; None when neither (nor a callback) is given."""
    endpoint = config.telemetry.otlp_endpoint
    if provider is None and endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise ConfigError("telemetry.otlp_endpoint needs OpenTelemetry: pip install 'tierwise[otel]'") from None
        provider = TracerProvider(resource=Resource.create({"service.name": config.telemetry.service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if provider is None and on_route is None:
        return None
    return Telemetry(provider, on_route)
