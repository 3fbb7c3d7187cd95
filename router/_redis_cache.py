"""The response cache in Redis (`cache: {url: redis://...}`), shared by instances on any host.

An entry is one JSON value under a key that holds a digest of the tenant and the request's key
(which holds the tenant too), and it names its tenant: a value of another tenant is a miss. Each
tenant has an index (a sorted set by time) that keeps it under `max_entries`; Redis expires every
entry after `ttl_s`. A Redis that fails is skipped for a few seconds (one warning), so an outage
costs each request nothing more than a normal call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any

from router._errors import ConfigError

_log = logging.getLogger("tierwise")
_PAUSE_S = 5.0  # after a failure, Redis is not asked again for this long
_TIMEOUT_S = 0.25


class RedisCache:
    """cache_get / cache_put, as the ledger's, over Redis."""

    def __init__(self, url: str, ttl_s: float) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError("cache.url names Redis: pip install 'tierwise[redis]'") from None
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("cache.url must be a redis://, rediss:// or unix:// URL")
        self._redis = redis.Redis.from_url(url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S, decode_responses=True)
        self._errors = redis.RedisError
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._lock = threading.Lock()
        self._paused_until = 0.0

    @staticmethod
    def _names(tenant: str, key: str) -> tuple[str, str]:
        t = hashlib.sha256(tenant.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return f"tierwise:cache:{t}:{key}", f"tierwise:cache-index:{t}"

    def _available(self) -> bool:
        with self._lock:
            return time.monotonic() >= self._paused_until

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            first = time.monotonic() >= self._paused_until
            self._paused_until = time.monotonic() + _PAUSE_S
        if first:  # one warning per outage, not one per request
            _log.warning("tierwise cache: Redis failed (%s); calling the models without the cache for %.0f s", type(exc).__name__, _PAUSE_S)

    def cache_get(self, key: str, tenant: str, since: float) -> tuple[str, str, str] | None:
        if not self._available():
            return None
        try:
            raw = self._redis.get(self._names(tenant, key)[0])
        except self._errors as exc:
            self._failed(exc)
            return None
        if not isinstance(raw, str):
            return None
        value: Any = json.loads(raw)  # a value that does not parse: the caller counts it a miss
        if not isinstance(value, dict) or value.get("tenant") != tenant or float(value.get("created", 0)) < since:
            return None
        return str(value["response"]), str(value["route"]), str(value["cost"])

    def cache_put(self, key: str, tenant: str, response: str, route: str, cost: str, now: float, max_entries: int) -> None:
        if not self._available():
            return
        name, index = self._names(tenant, key)
        value = json.dumps({"tenant": tenant, "response": response, "route": route, "cost": cost, "created": now})
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(name, value, px=self._ttl_ms)
            pipe.zadd(index, {name: now})
            pipe.zremrangebyscore(index, "-inf", now - self._ttl_ms / 1000)  # entries Redis already expired
            pipe.zcard(index)
            count = pipe.execute()[-1]
            if int(count) > max_entries:  # the tenant's oldest entries go
                old: Any = self._redis.zpopmin(index, int(count) - max_entries)
                if old:
                    self._redis.delete(*[str(item[0]) for item in old])
        except self._errors as exc:
            self._failed(exc)
