"""The SQLite spend ledger (default): WAL, and one statement per reservation and per settlement.

Each write is a single statement (triggers keep the hourly totals and reservations in step), so it
is atomic on its own and releases the GIL once: fewer round trips, less convoying with litellm's
logging threads.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, tzinfo
from decimal import Decimal
from pathlib import Path
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
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL CHECK (cost_nanos >= 0),
    latency_s REAL NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    ts REAL NOT NULL,
    reservation TEXT,
    UNIQUE (request_id, attempt)
);
CREATE INDEX IF NOT EXISTS entries_tenant_ts ON entries (tenant, ts);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    amount_nanos INTEGER NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_tenant ON reservations (tenant);
CREATE TABLE IF NOT EXISTS spend_hourly (
    tenant TEXT NOT NULL,
    hour INTEGER NOT NULL,
    nanos INTEGER NOT NULL,
    PRIMARY KEY (tenant, hour)
);
CREATE TRIGGER IF NOT EXISTS entries_settle AFTER INSERT ON entries BEGIN
    INSERT INTO spend_hourly (tenant, hour, nanos) VALUES (NEW.tenant, CAST(NEW.ts / 3600 AS INTEGER), NEW.cost_nanos)
        ON CONFLICT (tenant, hour) DO UPDATE SET nanos = nanos + excluded.nanos;
    DELETE FROM reservations WHERE id = NEW.reservation;
END;
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    updated REAL NOT NULL,
    response TEXT,
    route TEXT
);
"""


class SQLiteLedger(LedgerBase):
    """Spend ledger in one SQLite file; safe across threads and processes sharing the file."""

    def __init__(
        self,
        path: str,
        budgets: BudgetLookup,
        *,
        reservation_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        tz: tzinfo = UTC,
    ) -> None:
        super().__init__(budgets, reservation_ttl_s, clock, tz)
        self.path = path
        if path == ":memory:":
            # Each connection to ":memory:" is its own database; a named shared one is not.
            self._target, self._uri = f"file:tierwise-{uuid.uuid4().hex}?mode=memory&cache=shared", True
            self._keepalive: sqlite3.Connection | None = self._connect()
        else:
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError(f"ledger directory {parent} does not exist")
            self._target, self._uri, self._keepalive = str(Path(path).expanduser()), False, None
        self._conn().executescript(_SCHEMA)  # runs in its own transaction

    # ---- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._target, uri=self._uri, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; only an OS crash can lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open ledger {self.path!r}: {exc}") from None
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of deadlocking."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # ---- budget ---------------------------------------------------------------------------------
    _SPENT = "(SELECT COALESCE(SUM(nanos), 0) FROM spend_hourly WHERE tenant = :t AND hour >= :h)"
    _HELD = "(SELECT COALESCE(SUM(amount_nanos), 0) FROM reservations WHERE tenant = :t AND expires > :now)"

    def _state_row(self, tenant: str, hour: int, now: float) -> tuple[int, int]:
        row = self._conn().execute(f"SELECT {self._SPENT}, {self._HELD}", {"t": tenant, "h": hour, "now": now}).fetchone()
        return int(row[0]), int(row[1])

    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation:
        """Hold `amount_usd` against the tenant's budget atomically, or raise BudgetExceeded."""
        now = self._clock()
        budget, _, hour = self._bounds(tenant, now)
        rid = uuid.uuid4().hex
        amount = to_nanos(amount_usd)
        # One INSERT ... SELECT: the check and the hold are one atomic statement, so concurrent
        # reservations (threads, processes) can never pass the cap together.
        cursor = self._conn().execute(
            "INSERT INTO reservations (id, tenant, request_id, amount_nanos, expires)"
            " SELECT :id, :t, :rq, :amount, :exp"
            f" WHERE :cap IS NULL OR {self._SPENT} + {self._HELD} + :amount <= :cap",
            {"id": rid, "t": tenant, "rq": request_id, "amount": amount, "exp": now + self._ttl, "now": now,
             "h": hour, "cap": None if budget is None else to_nanos(budget.budget_usd)},
        )
        if cursor.rowcount != 1:
            raise self._exceeded(tenant, amount_usd)
        return Reservation(rid, tenant, request_id, amount_usd)

    def _sweep(self, now: float) -> None:
        self._conn().execute("DELETE FROM reservations WHERE expires <= ?", (now,))

    def _is_duplicate(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def _insert_entry(self, reservation: Reservation | None, entry: Entry, ts: float) -> None:
        self._conn().execute(
            "INSERT INTO entries (request_id, attempt, tenant, tier, model, tokens_in, tokens_out, cost_nanos,"
            " latency_s, outcome, reason, ts, reservation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.request_id, entry.attempt, entry.tenant, entry.tier, entry.model, entry.tokens_in,
                entry.tokens_out, to_nanos(entry.cost_usd), entry.latency_s, entry.outcome, entry.reason, ts,
                None if reservation is None else reservation.id,
            ),
        )

    def entries(self, tenant: str | None = None) -> list[Entry]:
        sql = f"SELECT {ENTRY_COLUMNS} FROM entries" + (" WHERE tenant = ?" if tenant else "") + " ORDER BY id"
        return [entry_from_row(r) for r in self._conn().execute(sql, (tenant,) if tenant else ()).fetchall()]

    def spend(self, since: float | None = None, until: float | None = None, tenant: str | None = None) -> list[SpendRow]:
        """Spend grouped by tenant, hour, tier and model, computed in SQL."""
        sql = SPEND_SQL.format(hour="CAST(ts / 3600 AS INTEGER)", table="entries", since=":since", until=":until", tenant=":tenant")
        return [spend_row(r) for r in self._conn().execute(sql, spend_params(since, until, tenant)).fetchall()]

    # ---- idempotency ---------------------------------------------------------------------------
    def claim_request(self, request_id: str, tenant: str) -> StoredRequest | None:
        """None when this caller now owns the request id; else what is stored for it."""
        now = self._clock()
        with self._tx() as conn:
            row = conn.execute("SELECT status, updated, response, route FROM requests WHERE request_id = ?", (request_id,)).fetchone()
            if self._claimable(row, now):
                conn.execute(
                    "INSERT OR REPLACE INTO requests (request_id, tenant, status, updated) VALUES (?, ?, 'pending', ?)",
                    (request_id, tenant, now),
                )
                return None
        return stored(row)

    def finish_request(self, request_id: str, status: RequestStatus, response: dict[str, Any] | None, route: dict[str, Any] | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE requests SET status = ?, updated = ?, response = ?, route = ? WHERE request_id = ?",
                (status, self._clock(), dumps(response), dumps(route), request_id),
            )

    def get_request(self, request_id: str) -> StoredRequest | None:
        row = self._conn().execute("SELECT status, updated, response, route FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return None if row is None else stored(row)

    def next_attempt(self, request_id: str) -> int:
        row = self._conn().execute("SELECT COALESCE(MAX(attempt), 0) FROM entries WHERE request_id = ?", (request_id,)).fetchone()
        return int(row[0]) + 1

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None

