"""The PostgreSQL spend ledger: one budget shared by many app instances (psycopg 3).

A reservation is one call of a server-side function that takes a per-tenant advisory lock for
its check-and-hold, so processes on any machine can never pass a cap together; a settlement is
one statement (CTEs), atomic on its own. Both are one round trip.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, tzinfo
from decimal import Decimal
from typing import Any

from router._errors import ConfigError
from router._types import RequestStatus
from router.ledger._base import (
    ENTRY_COLUMNS,
    SPEND_SQL,
    BudgetLookup,
    Entry,
    LedgerBase,
    Reservation,
    SpendRow,
    StoredRequest,
    dumps,
    entry_from_row,
    spend_params,
    spend_row,
    stored,
    to_nanos,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tierwise_entries (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    tokens_in BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL CHECK (cost_nanos >= 0),
    latency_s DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    UNIQUE (request_id, attempt)
);
CREATE INDEX IF NOT EXISTS tierwise_entries_tenant_ts ON tierwise_entries (tenant, ts);
CREATE TABLE IF NOT EXISTS tierwise_reservations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    amount_nanos BIGINT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS tierwise_reservations_tenant ON tierwise_reservations (tenant);
CREATE TABLE IF NOT EXISTS tierwise_spend_hourly (
    tenant TEXT NOT NULL,
    hour BIGINT NOT NULL,
    nanos BIGINT NOT NULL,
    PRIMARY KEY (tenant, hour)
);
-- Check-and-hold in one round trip. Inside a volatile function each statement takes a fresh
-- snapshot, so the sums are read after the tenant's lock is granted: no two holds pass together.
-- Holds skip the WAL flush (a hold lost to a server crash is one that expired early); entries,
-- which are the money, keep synchronous commits.
CREATE OR REPLACE FUNCTION tierwise_reserve(p_id TEXT, p_tenant TEXT, p_request TEXT, p_amount BIGINT,
                                            p_expires DOUBLE PRECISION, p_now DOUBLE PRECISION,
                                            p_hour BIGINT, p_cap BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
DECLARE granted INTEGER;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- for this transaction's commit
    IF p_cap IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant, 0));
    END IF;
    INSERT INTO tierwise_reservations (id, tenant, request_id, amount_nanos, expires)
    SELECT p_id, p_tenant, p_request, p_amount, p_expires
    WHERE p_cap IS NULL
       OR (SELECT COALESCE(SUM(nanos), 0) FROM tierwise_spend_hourly WHERE tenant = p_tenant AND hour >= p_hour)
        + (SELECT COALESCE(SUM(amount_nanos), 0) FROM tierwise_reservations WHERE tenant = p_tenant AND expires > p_now)
        + p_amount <= p_cap;
    GET DIAGNOSTICS granted = ROW_COUNT;
    RETURN granted = 1;
END $$;
CREATE TABLE IF NOT EXISTS tierwise_requests (
    request_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    response TEXT,
    route TEXT
);
"""
_SPENT = "(SELECT COALESCE(SUM(nanos), 0) FROM tierwise_spend_hourly WHERE tenant = %(t)s AND hour >= %(h)s)"
_HELD = "(SELECT COALESCE(SUM(amount_nanos), 0) FROM tierwise_reservations WHERE tenant = %(t)s AND expires > %(now)s)"


class PostgresLedger(LedgerBase):
    """Spend ledger in PostgreSQL (tables prefixed `tierwise_`); safe across processes and hosts."""

    def __init__(
        self,
        url: str,
        budgets: BudgetLookup,
        *,
        reservation_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        tz: tzinfo = UTC,
        connect_timeout_s: int = 5,
        pool_size: int = 16,
    ) -> None:
        super().__init__(budgets, reservation_ttl_s, clock, tz)
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise ConfigError("the PostgreSQL ledger needs psycopg: pip install 'tierwise[postgres]'") from None
        self._psycopg = psycopg
        try:  # fail now, with a clear message, rather than on the first request
            psycopg.connect(url, connect_timeout=connect_timeout_s).close()
        except psycopg.Error as exc:
            # Only the driver's first line: the URL (and its password) is not repeated.
            raise ConfigError(f"cannot connect to the PostgreSQL ledger: {str(exc).splitlines()[0][:200]}") from None
        # A bounded pool: many threads share a few connections instead of exhausting the server's.
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs={"autocommit": True}, open=True, timeout=60)
        with self._pool.connection() as conn, conn.transaction():
            # Two instances creating the schema at once would race on the catalog: serialise them.
            conn.execute("SELECT pg_advisory_xact_lock(7415201)")
            conn.execute(_SCHEMA)

    def _run(self, sql: str, params: Any = None, fetch: str = "") -> Any:
        with self._pool.connection() as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else cursor.rowcount

    def _state_row(self, tenant: str, hour: int, now: float) -> tuple[int, int]:
        row = self._run(f"SELECT {_SPENT}, {_HELD}", {"t": tenant, "h": hour, "now": now}, "one")
        return int(row[0]), int(row[1])

    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation:
        """Hold `amount_usd` against the tenant's budget atomically, or raise BudgetExceeded."""
        now = self._clock()
        budget, _, hour = self._bounds(tenant, now)
        rid = uuid.uuid4().hex
        params = {"id": rid, "t": tenant, "rq": request_id, "amount": to_nanos(amount_usd), "exp": now + self._ttl,
                  "now": now, "h": hour, "cap": None if budget is None else to_nanos(budget.budget_usd)}
        granted = self._run(
            "SELECT tierwise_reserve(%(id)s, %(t)s, %(rq)s, %(amount)s, %(exp)s, %(now)s, %(h)s, %(cap)s)", params, "one"
        )[0]
        if not granted:
            raise self._exceeded(tenant, amount_usd)
        return Reservation(rid, tenant, request_id, amount_usd)

    def _sweep(self, now: float) -> None:
        self._run("DELETE FROM tierwise_reservations WHERE expires <= %s", (now,))

    def _is_duplicate(self, exc: Exception) -> bool:
        return isinstance(exc, self._psycopg.errors.UniqueViolation)

    def _insert_entry(self, reservation: Reservation | None, entry: Entry, ts: float) -> None:
        self._run(
            "WITH e AS (INSERT INTO tierwise_entries (" + ENTRY_COLUMNS + ")"
            " VALUES (%(rq)s, %(at)s, %(t)s, %(tier)s, %(model)s, %(ti)s, %(to)s, %(c)s, %(lat)s, %(out)s, %(why)s, %(ts)s)"
            " RETURNING tenant, cost_nanos, ts),"
            " s AS (INSERT INTO tierwise_spend_hourly (tenant, hour, nanos)"
            " SELECT tenant, floor(ts / 3600)::bigint, cost_nanos FROM e"
            " ON CONFLICT (tenant, hour) DO UPDATE SET nanos = tierwise_spend_hourly.nanos + excluded.nanos)"
            " DELETE FROM tierwise_reservations WHERE id = %(res)s",
            {"rq": entry.request_id, "at": entry.attempt, "t": entry.tenant, "tier": entry.tier, "model": entry.model,
             "ti": entry.tokens_in, "to": entry.tokens_out, "c": to_nanos(entry.cost_usd), "lat": entry.latency_s,
             "out": entry.outcome, "why": entry.reason, "ts": ts, "res": None if reservation is None else reservation.id},
        )

    def entries(self, tenant: str | None = None) -> list[Entry]:
        sql = f"SELECT {ENTRY_COLUMNS} FROM tierwise_entries" + (" WHERE tenant = %s" if tenant else "") + " ORDER BY id"
        return [entry_from_row(r) for r in self._run(sql, (tenant,) if tenant else (), "all")]

    def spend(self, since: float | None = None, until: float | None = None, tenant: str | None = None) -> list[SpendRow]:
        """Spend grouped by tenant, hour, tier and model, computed in SQL."""
        sql = SPEND_SQL.format(
            hour="floor(ts / 3600)::bigint", table="tierwise_entries", since="%(since)s", until="%(until)s", tenant="%(tenant)s::text"
        )
        return [spend_row(r) for r in self._run(sql, spend_params(since, until, tenant), "all")]

    def claim_request(self, request_id: str, tenant: str) -> StoredRequest | None:
        """None when this caller now owns the request id; else what is stored for it."""
        now = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (request_id,))
            row = conn.execute(
                "SELECT status, updated, response, route FROM tierwise_requests WHERE request_id = %s", (request_id,)
            ).fetchone()
            if self._claimable(row, now):
                conn.execute(
                    "INSERT INTO tierwise_requests (request_id, tenant, status, updated) VALUES (%s, %s, 'pending', %s)"
                    " ON CONFLICT (request_id) DO UPDATE SET status = 'pending', updated = excluded.updated,"
                    " response = NULL, route = NULL",
                    (request_id, tenant, now),
                )
                return None
        return stored(row)

    def finish_request(self, request_id: str, status: RequestStatus, response: dict[str, Any] | None, route: dict[str, Any] | None) -> None:
        self._run(
            "UPDATE tierwise_requests SET status = %s, updated = %s, response = %s, route = %s WHERE request_id = %s",
            (status, self._clock(), dumps(response), dumps(route), request_id),
        )

    def get_request(self, request_id: str) -> StoredRequest | None:
        row = self._run("SELECT status, updated, response, route FROM tierwise_requests WHERE request_id = %s", (request_id,), "one")
        return None if row is None else stored(row)

    def next_attempt(self, request_id: str) -> int:
        row = self._run("SELECT COALESCE(MAX(attempt), 0) FROM tierwise_entries WHERE request_id = %s", (request_id,), "one")
        return int(row[0]) + 1

    def close(self) -> None:
        self._pool.close()
