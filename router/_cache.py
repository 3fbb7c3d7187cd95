"""The response cache: a deterministic request (temperature 0 or a seed) whose normalised messages
and answer-shaping parameters were answered before, for the same tenant and within `cache.ttl_s`,
is answered from the ledger's database (or Redis, `router._redis_cache`): billed $0, the saving recorded in its entry's reason,
`route.cached` set. Keys always hold the tenant: two tenants never share an entry. A stored value
that does not parse is a miss; a cache that fails is a normal call with a warning, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from router._core import Core, Replay
from router._types import Attempt, Route, route_from_dict, stored_route
from router.ledger import Entry, StoredRequest

_log = logging.getLogger("tierwise")


def cache_key(core: Core, tenant: str, msgs: list[dict[str, Any]], kwargs: Mapping[str, Any], pinned: tuple[str | None, str | None],
              checks: Any) -> str | None:
    """The request's key when the cache is on and the request is deterministic; else None. A stream and
    a plain request share the key: either answers the other, replayed as a stream when one is asked."""
    if core.config.cache is None or not (kwargs.get("temperature") == 0 or kwargs.get("seed") is not None):
        return None
    shaped = {k: v for k, v in kwargs.items() if k not in ("stream", "stream_options", "user", "mock_delay", "prompt_cache_key")}
    text = json.dumps({"tenant": tenant, "messages": msgs, "params": shaped, "pin": list(pinned), "checks": repr(checks)},
                      sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def cached(core: Core, key: str, tenant: str, request_id: str, keyed: bool = False) -> Replay | None:
    """A stored answer for the key, billed as a $0 entry that records the saving (a caller's request
    id is marked done with it, as any answer); None on a miss."""
    assert core.config.cache is not None
    try:
        row = (core.cache_store or core.ledger).cache_get(key, tenant, time.time() - core.config.cache.ttl_s)
        if row is None:
            return None
        response, earlier, saved = json.loads(row[0]), route_from_dict(json.loads(row[1])), Decimal(row[2])
    except Exception as exc:  # noqa: BLE001 - an unreadable entry or a failing cache is a miss, never an error
        _log.warning("tierwise cache: lookup failed (%s: %s); calling the model", type(exc).__name__, exc)
        return None
    tier, model = earlier.tier or "", earlier.model or ""
    reason = f"cache hit: saved ${saved}"
    route = Route(request_id=request_id, tenant=tenant, score=earlier.score, planned_tiers=[tier], tier=tier, model=model,
                  attempts=[Attempt(tier, model, "ok", Decimal(0), 0.0, 0, 0, reason, 0)], reason=reason, cached=True)
    core.ledger.settle(None, Entry(request_id, 1, tenant, tier, model, 0, 0, Decimal(0), 0.0, "ok", reason))
    if keyed:
        core.ledger.finish_request(request_id, "done", response, stored_route(route), tenant=tenant)
    return Replay(request_id, StoredRequest("done", response, stored_route(route)), tenant, cached=True)


def remember(core: Core, key: str | None, tenant: str, response: Any, route: Route) -> None:
    """Store a passed answer under its key (a failing cache only warns)."""
    if key is None or core.config.cache is None or route.escalation_exhausted or not hasattr(response, "model_dump"):
        return
    try:
        (core.cache_store or core.ledger).cache_put(key, tenant, json.dumps(response.model_dump(), default=str), json.dumps(stored_route(route)),
                              format(route.cost_usd, "f"), time.time(), core.config.cache.max_entries)
    except Exception as exc:  # noqa: BLE001 - the answer is paid for and returned; the next one calls the model
        _log.warning("tierwise cache: store failed (%s: %s)", type(exc).__name__, exc)
