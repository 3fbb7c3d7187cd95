"""The OpenAI-compatible gateway: any OpenAI client, in any language, routed by changing its base_url.

Starlette, because it is the small, typed ASGI toolkit under FastAPI: four routes need no more.
The key names the tenant; `model` is `tierwise` (routed), `tierwise/<tier>` (a pinned tier) or a
configured model (passed straight to it, billed and budgeted). Errors come back in OpenAI's shape.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from router import __version__
from router._config import RouterConfig
from router._errors import (
    BudgetExceeded,
    InvalidRequestError,
    RateLimited,
    TierwiseError,
)
from router._params import ANSWER_PARAMS, allowed_params
from router._router import AsyncRouter
from router._savings import PriceBook, route_levers
from router._types import Route as RouteInfo
from router.ledger import ApiKey
from router.serve._admin import Admin
from router.serve._docs import routes_of, spec
from router.serve._http import _error, _not_found, _typed, _unauthorised, read_json
from router.serve._keys import LiveKeys
from router.serve._metrics import Metrics
from router.serve._slots import ReleasingStream, TenantSlots

_OURS = ("messages", "model", "stream")  # read by the gateway itself; every other field goes to the model


def _headers(route: RouteInfo, with_cost: bool = True) -> dict[str, str]:
    headers = {"x-tierwise-tier": route.tier or "", "x-tierwise-model": route.model or "", "x-tierwise-score": f"{route.score:.4f}",
               "x-tierwise-request-id": route.request_id}
    if with_cost:
        headers["x-tierwise-cost-usd"] = format(route.cost_usd, "f")
    if route.cached:
        headers["x-tierwise-cache"] = "hit"
    return headers


class Gateway:
    """One worker's state: the router, the keys' tenants, the metrics."""

    def __init__(self, config: RouterConfig, router: AsyncRouter | None = None) -> None:
        self.config = config
        self.router = router
        self.keys = LiveKeys({digest: tenant for tenant, digests in config.gateway.keys.items() for digest in digests})
        self.metrics = Metrics()
        self.prices = PriceBook(config)  # what each answer saved, by lever, for /metrics
        self.slots = TenantSlots(config.gateway.tenant_in_flight, config.gateway.tenant_wait_s)

    @staticmethod
    def _digest(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() if key else None

    async def _caller(self, request: Request) -> tuple[str, ApiKey | None] | None:
        assert self.router is not None
        return await self.keys.lookup(self._digest(request), self.router.ledger)

    async def chat(self, request: Request) -> Response:
        caller = await self._caller(request)
        if caller is None:
            return _unauthorised()
        tenant, key = caller
        if key is not None and key.rpm is not None:  # the key's own limit, shared by every gateway through the ledger
            assert self.router is not None
            wait = await asyncio.to_thread(self.router.ledger.take_request, "\x1fkey:" + key.id, key.rpm)
            if wait is not None:
                self.metrics.observe(tenant, "-", "rate_limited", 0.0)
                return _typed(RateLimited(f"key {key.id} sent {key.rpm} requests this minute (its limit)", tenant, wait))
        waited = time.monotonic()
        if not await self.slots.take(tenant):  # before the body is read: a waiting request holds next to nothing
            self.metrics.observe(tenant, "-", "in_flight", time.monotonic() - waited)
            return _typed(RateLimited(f"tenant {tenant!r} has {self.slots.limit} requests in flight on this gateway worker"
                                      f" (gateway.tenant_in_flight): none ended within {self.slots.wait_s:g} s, or as many more"
                                      " already wait", tenant, 1.0))
        streaming = False
        try:
            response = await self._chat(request, tenant)
            streaming = isinstance(response, ReleasingStream)
            return response
        finally:
            if not streaming:  # a stream gives its slot back when it ends
                self.slots.give(tenant)

    async def _chat(self, request: Request, tenant: str) -> Response:
        gw = self.config.gateway
        try:
            body = await asyncio.wait_for(read_json(request, int(gw.max_body_mb * 2**20)), gw.read_timeout_s)
        except TimeoutError:
            return _error(408, f"the request body did not arrive within {gw.read_timeout_s} s", "invalid_request_error")
        if isinstance(body, Response):
            return body
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object", "invalid_request_error")
        try:
            params = allowed_params({k: v for k, v in body.items() if k not in _OURS}, ANSWER_PARAMS)
        except InvalidRequestError as exc:
            return _typed(exc)
        if not isinstance(body.get("stream", False), (bool, type(None))):
            return _error(400, "stream must be true or false", "invalid_request_error")
        model = body.get("model") or "tierwise"
        if not isinstance(model, str):
            return _error(400, "model must be a string: tierwise, tierwise/<tier> or a configured model", "invalid_request_error")
        tier = model.split("/", 1)[1] if model.startswith("tierwise/") else None
        if model != "tierwise" and tier is None:
            params["model"] = model  # a configured model, pinned
        request_id = request.headers.get("idempotency-key") or request.headers.get("x-request-id")
        session = request.headers.get("x-session-id")
        if session is not None:
            params["session_id"] = session  # a conversation stays on its tier (checked like any other field)
        started = time.monotonic()
        assert self.router is not None
        messages = body.get("messages")
        try:
            if body.get("stream"):
                stream = await self.router.acomplete(messages, tenant=tenant, request_id=request_id, tier=tier, stream=True, **params)
                return ReleasingStream(self._events(stream, tenant, started, session is not None), lambda: self.slots.give(tenant),
                                       media_type="text/event-stream", headers=_headers(stream.route, with_cost=False))
            result = await self.router.acomplete(messages, tenant=tenant, request_id=request_id, tier=tier, **params)
        except TierwiseError as exc:
            status = "budget_exceeded" if isinstance(exc, BudgetExceeded) else "rate_limited" if isinstance(exc, RateLimited) else "error"
            self.metrics.observe(tenant, "-", status, time.monotonic() - started)
            return _typed(exc)
        route = result.route
        data = result.model_dump()
        data["model"] = route.model
        self._observe(tenant, route, started, session is not None)
        return JSONResponse(data, headers=_headers(route))

    async def _events(self, stream: Any, tenant: str, started: float, session: bool) -> AsyncIterator[str]:
        try:
            async for chunk in stream:
                data = chunk.model_dump(exclude_none=True)
                data["model"] = stream.route.model
                yield f"data: {json.dumps(data, default=str)}\n\n"
        except TierwiseError as exc:
            yield f"data: {bytes(_typed(exc).body).decode()}\n\n"
        finally:
            await stream.aclose()  # billed once, whether it ended, failed or the client left
            self._observe(tenant, stream.route, started, session)
        yield "data: [DONE]\n\n"

    def _observe(self, tenant: str, route: RouteInfo, started: float, session: bool) -> None:
        moves = max(0, len({a.tier for a in route.attempts if a.tier != "judge"}) - 1)
        self.metrics.observe(tenant, route.tier or "-", "ok", time.monotonic() - started, route.cost_usd or Decimal(0), moves,
                             route_levers(route, self.prices, session))

    async def models(self, request: Request) -> Response:
        if await self._caller(request) is None:  # tier and model names are the operator's, not the public's
            return _unauthorised()
        ids = ["tierwise", *(f"tierwise/{t.name}" for t in self.config.tiers), *(s.model for t in self.config.tiers for s in t.models)]
        return JSONResponse({"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "tierwise"} for i in ids]})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics_page(self, request: Request) -> Response:
        # Tenant names and spend: for the loopback (a local scraper), else only with a metrics key.
        local = request.client is not None and request.client.host in ("127.0.0.1", "::1", "localhost")
        if not local and self._digest(request) not in self.config.gateway.metrics_keys:
            return _error(401, "/metrics needs a metrics key (gateway.metrics_keys) from outside this host", "invalid_request_error",
                          "invalid_api_key")
        # The learning loop's figures come from the ledger (shared by every worker), read off the loop.
        assert self.router is not None
        state = await asyncio.to_thread(self.router.learning.state)
        learning = (f"# TYPE tierwise_label_spend_usd gauge\ntierwise_label_spend_usd {format(state['label_spend_usd'], 'f')}\n"
                    f"# TYPE tierwise_labels gauge\ntierwise_labels {state['labels']}\n"
                    f"# TYPE tierwise_refits_total counter\ntierwise_refits_total {len(state['refits'])}\n"
                    f"# TYPE tierwise_refits_swapped_total counter\ntierwise_refits_swapped_total {sum(r['swapped'] for r in state['refits'])}\n"
                    f"# TYPE tierwise_unparsable_grades gauge\ntierwise_unparsable_grades {state['unparsable_grades']}\n"
                    f"# TYPE tierwise_label_buying_stopped gauge\ntierwise_label_buying_stopped {int(bool(state['stopped']))}\n")
        return PlainTextResponse(self.metrics.render() + learning, media_type="text/plain; version=0.0.4")


def _ledger(gateway: Gateway) -> Any:
    assert gateway.router is not None  # the routes run once the app started
    return gateway.router.ledger


def create_app(config: RouterConfig, router: AsyncRouter | None = None, *, freeze_gc: bool = False) -> Starlette:
    """The gateway as an ASGI app; the router is built when the app starts (one per worker).
    `freeze_gc` (`tierwise serve`, whose process is the gateway's own): once started, the objects
    loaded so far are left out of the garbage collector's full passes."""
    if not config.gateway.keys:  # keys may all live in the ledger (tierwise keys add): said, not refused
        logging.getLogger("tierwise").info("tierwise gateway: no keys in gateway.keys; the ledger's keys (tierwise keys) are used")
    gateway = Gateway(config, router)
    openapi, docs = routes_of(spec(bool(config.gateway.admin_keys), __version__))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = gateway.router is None
        if own:
            gateway.router = AsyncRouter(config)
        if freeze_gc:
            # litellm and its SDKs load ~300k objects that live as long as the process; a full
            # collection walks them all (about 125 ms, stalling every request in flight).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if own and gateway.router is not None:
                gateway.router.close()

    return Starlette(
        routes=[
            Route("/v1/chat/completions", gateway.chat, methods=["POST"]),
            Route("/v1/models", gateway.models, methods=["GET"]),
            Route("/healthz", gateway.health, methods=["GET"]),
            Route("/metrics", gateway.metrics_page, methods=["GET"]),
            *Admin(config.gateway.admin_keys, lambda: _ledger(gateway)).routes(),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_found},
    )
