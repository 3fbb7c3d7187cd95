"""Requests in flight per tenant on one gateway worker.

litellm keeps at most 500 connections to one provider host per process (1,000 in all): without a
bound, one tenant's burst of slow requests (long generations, a slow model) takes every one of them
and every other tenant's request waits for that burst to finish. A tenant past its bound waits for
one of its own requests to end (before its body is read: a waiting request holds no body and no
provider connection), and past `wait_s` is refused with a 429 its client retries; so is a request
that finds as many of its tenant's waiting as running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class TenantSlots:
    """At most `limit` requests of one tenant in flight (None: no bound)."""

    def __init__(self, limit: int | None, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}  # requests holding or awaiting a tenant's gate: it is dropped at 0

    async def take(self, tenant: str) -> bool:
        """A slot for one request (give it back with `give`), or False after waiting `wait_s` (at
        once when as many of the tenant's requests already wait as run)."""
        if self.limit is None:
            return True
        if self._users.get(tenant, 0) >= 2 * self.limit:
            return False  # as many wait as run: more would only hold the worker's connections (and its file descriptors)
        gate = self._gates.get(tenant)
        if gate is None:
            gate = self._gates[tenant] = asyncio.Semaphore(self.limit)
        self._users[tenant] = self._users.get(tenant, 0) + 1
        try:
            async with asyncio.timeout(self.wait_s):
                await gate.acquire()
            return True
        except TimeoutError:
            self._drop(tenant)
            return False
        except BaseException:
            self._drop(tenant)
            raise

    def give(self, tenant: str) -> None:
        if self.limit is not None:
            self._gates[tenant].release()
            self._drop(tenant)

    def _drop(self, tenant: str) -> None:
        self._users[tenant] -= 1
        if not self._users[tenant]:  # no request holds or awaits it: a tenant seen once costs nothing after
            del self._users[tenant], self._gates[tenant]


class ReleasingStream(StreamingResponse):
    """A streamed answer that gives its slot back when the response ends, however it ends (sent,
    failed, the client gone, cancelled before its first chunk)."""

    def __init__(self, content: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
