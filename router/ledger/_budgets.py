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

    def __call__(self, tenant: str) -> TenantBudget | None:
        if self._clock() - self._at >= REFRESH_S:
            self._refresh()
        return self._stored.get(tenant) or self._configured(tenant)

    def _refresh(self) -> None:
        with self._lock:
            if self._clock() - self._at < REFRESH_S:
                return
            try:
                rows = self._keys.budgets()
                self._stored = {t: TenantBudget(budget_usd=b, period=p) for t, (b, p) in rows.items()}  # type: ignore[arg-type]
            except LedgerError as exc:
                _log.warning("tierwise: cannot read the tenants' budgets from the ledger (%s); using the last known", exc)
            self._at = self._clock()
