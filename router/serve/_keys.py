"""Which tenant a bearer key belongs to: the config's keys (`gateway.keys`, by digest), and the keys
kept in the ledger's database (`tierwise keys`), refreshed at most every half second so that an
added key works and a revoked or expired one stops within a second on every instance. Only digests
are compared; a key's last use is written back in batches."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from router._config import LEARNING_TENANT
from router._errors import LedgerError
from router.ledger import ApiKey

REFRESH_S = 0.5
_log = logging.getLogger("tierwise")


class LiveKeys:
    """digest -> (tenant, the stored key or None for a config key)."""

    def __init__(self, configured: dict[str, str]) -> None:
        self._configured = configured
        self._stored: dict[str, ApiKey] = {}
        self._at = -1e18
        self._loaded = False  # until the first read ends, every request waits for it
        self._lock = asyncio.Lock()
        self._used: dict[str, float] = {}

    async def lookup(self, digest: str | None, ledger: Any) -> tuple[str, ApiKey | None] | None:
        if digest is None:
            return None
        if digest in self._configured:
            return self._configured[digest], None
        await self._refresh(ledger)
        key = self._stored.get(digest)
        now = time.time()
        if key is None or (key.expires is not None and key.expires <= now) or key.tenant == LEARNING_TENANT:
            return None  # (a key for the labels' tenant, which a version before the check could add: not a caller)
        self._used[key.id] = now
        return key.tenant, key

    async def _refresh(self, ledger: Any) -> None:
        # One request re-reads, the others go on with the keys known: a slow database delays one, not all.
        if self._loaded and (time.monotonic() - self._at < REFRESH_S or self._lock.locked()):
            return
        async with self._lock:  # before the first read has ended, every request waits for it here
            if time.monotonic() - self._at < REFRESH_S:
                return  # read (or failed) while this request waited: not again within the half second
            self._at = time.monotonic()
            used, self._used = self._used, {}
            try:
                self._stored = await asyncio.to_thread(_read, ledger, used)
                self._loaded = True
            except LedgerError as exc:  # the database is away: the keys known a moment ago still work
                _log.warning("tierwise gateway: cannot read the stored keys (%s); using the last known", exc)


def _read(ledger: Any, used: dict[str, float]) -> dict[str, ApiKey]:
    if used:
        ledger.keys.touch_keys(used)
    keys: dict[str, ApiKey] = ledger.keys.active_keys(time.time())
    return keys
