"""A tenant's budget: the one kept in the ledger's database (`tierwise keys add --budget-usd`), read
again at most every second, else the config's. A database that cannot be read keeps the last known."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from router._config import TenantBudget
from router._errors import LedgerError
from router.ledger._keys import KeyStore
from router.ledger._records import BudgetLookup

REFRESH_S = 1.0
_log = logging.getLogger("tierwise")


class Budgets:
    """budget_for(tenant): the ledger's row for it, else `configured(tenant)`."""

    def __init__(self, keys: KeyStore, configured: BudgetLookup, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys, self._configured, self._clock = keys, configured, clock
        self._lock = threading.Lock()
        self._stored: dict[str, TenantBudget] = {}
        self._at = -1e18
        self._refresh()  # read once before any request: a tenant's stored cap is never missed at start

    def __call__(self, tenant: str) -> TenantBudget | None:
        # One caller re-reads, the others go on with what is known: a slow or dead database delays
        # one request a second, never all of them.
        if self._clock() - self._at >= REFRESH_S and self._lock.acquire(blocking=False):
            try:
                self._refresh()
            finally:
                self._lock.release()
        return self._stored.get(tenant) or self._configured(tenant)

    def _refresh(self) -> None:
        self._at = self._clock()
        try:
            rows = self._keys.budgets()
            self._stored = {t: TenantBudget(budget_usd=b, period=p) for t, (b, p) in rows.items()}  # type: ignore[arg-type]
        except LedgerError as exc:
            _log.warning("tierwise: cannot read the tenants' budgets from the ledger (%s); using the last known", exc)
