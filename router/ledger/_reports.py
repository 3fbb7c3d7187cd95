"""Reports over the books: entries, and spend per hour or per day computed in SQL. Whole hours come
from the hourly totals the ledger keeps in step with its entries; only the hours that `since` and
`until` cut are summed from the entries. Every read first commits what this instance has queued.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Any

from router.ledger._records import (
    ENTRY_COLUMNS,
    ROLLUP_BY,
    ROLLUP_SQL,
    Entry,
    SpendRow,
    add_sums,
    entry_from_row,
    local_day,
    offset_segments,
    spend_params,
    spend_row,
)
from router.ledger._store import Store, render


class Reports:
    """entries / spend / spend_days."""

    def __init__(self, store: Store, flush: Callable[[], None]) -> None:
        self._store, self._flush = store, flush

    def _select(self, text: str, params: Any) -> list[Any]:
        return list(self._store.query(render(self._store, text), params, "all"))

    def entries(self, tenant: str | None = None) -> list[Entry]:
        self._flush()
        sql = f"SELECT {ENTRY_COLUMNS} FROM {{t}}entries" + (" WHERE tenant = ?" if tenant else "") + " ORDER BY id"
        return [entry_from_row(r) for r in self._select(sql, (tenant,) if tenant else ())]

    def spend(self, since: float | None = None, until: float | None = None, tenant: str | None = None) -> list[SpendRow]:
        """Spend grouped by tenant, hour, tier and model."""
        self._flush()
        lo, hi = _hours(since, until)
        rows = [spend_row(r) for r in self._select(ROLLUP_SQL, (lo, hi, tenant, tenant))] if lo < hi else []
        for start, end in _edges(since, until, lo, hi):
            rows += [spend_row(r) for r in self._store.query(self._store.spend_sql, spend_params(start, end, tenant), "all")]
        return sorted(rows, key=lambda r: (r.tenant, r.hour, r.tier, r.model))

    def spend_days(self, since: float | None = None, until: float | None = None, tenant: str | None = None,
                   tz: tzinfo = UTC) -> list[tuple[Any, ...]]:
        """Spend totals per tenant, day of `tz` (a day number since 1970-01-01; a zone off UTC by part
        of an hour counts each hour whole), tier and model, summed in SQL from the hourly totals in one
        scan per offset of `tz`: plain tuples (tenant, day, tier, model, attempts, requests, answers,
        tokens in, tokens out, answer tokens in and out, nanos), no object per hour."""
        self._flush()
        lo, hi = _hours(since, until)
        merged: dict[tuple[Any, ...], list[int]] = {}
        scan = self._store.rollup_scan if tenant is None else "{t}spend_rollup"  # one tenant's rows: by the key
        if lo < hi:
            for first, end, off in self._segments(lo, hi, tz):
                for r in self._select(ROLLUP_BY.format(day=f"(hour + {int(off)}) / 24", scan=scan), (first, end, tenant, tenant)):
                    add_sums(merged, tuple(r[:-8]), r[-8:])
        for start, stop in _edges(since, until, lo, hi):
            for r in self._store.query(self._store.spend_sql, spend_params(start, stop, tenant), "all"):
                add_sums(merged, (r[0], local_day(int(r[1]), tz), r[2], r[3]), r[4:12])
        return [(*k, *v) for k, v in merged.items()]

    def spent_since(self, hour: int) -> dict[str, int]:
        """Nano-dollars each tenant spent from `hour` (a budget period's first hour) on, in one grouped
        scan of the hourly totals: what a report shows as spent in the period, for every tenant at once."""
        self._flush()
        rows = self._select("SELECT tenant, SUM(nanos) FROM {t}spend_rollup WHERE hour >= ? GROUP BY tenant", (hour,))
        return {str(t): int(n or 0) for t, n in rows}

    def _segments(self, lo: int, hi: int, tz: tzinfo) -> list[tuple[int, int, int]]:
        """The hours of the rollup in [lo, hi) cut where `tz`'s offset changes: (first, end, offset hours)."""
        row = self._store.query(render(self._store, "SELECT MIN(hour), MAX(hour) FROM {t}spend_rollup WHERE hour >= ? AND hour < ?"),
                                (lo, hi), "one")
        if row is None or row[0] is None:
            return []
        return offset_segments(int(row[0]), int(row[1]) + 1, tz)


def _hours(since: float | None, until: float | None) -> tuple[int, int]:
    """The whole hours inside [since, until)."""
    return (-(2**62) if since is None else math.ceil(since / 3600), 2**62 if until is None else math.floor(until / 3600))


def _edges(since: float | None, until: float | None, lo: int, hi: int) -> list[tuple[float, float]]:
    """The parts of [since, until) outside the whole hours [lo, hi)."""
    edges = [(since, until)] if lo > hi else [(since, lo * 3600.0), (hi * 3600.0, until)]
    return [(a, b) for a, b in edges if a is not None and b is not None and a < b]
