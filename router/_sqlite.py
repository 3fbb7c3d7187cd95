"""The SQLite spend ledger (default): WAL, and one statement per reservation and per settlement.

Each write is a single statement (triggers keep the hourly totals and reservations in step), so it
is atomic on its own and releases the GIL once: fewer round trips, less convoying with litellm's
logging threads.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from router._errors import BudgetExceeded, BudgetState, ConfigError
from router._ledger import BudgetLookup, Entry, Reservation, StoredRequest, from_nanos, period_start, to_nanos

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


class SQLiteLedger:
    """Spend ledger in one SQLite file; safe across threads and processes sharing the file."""

    def __init__(
        self,
        path: str,
        budgets: BudgetLookup,
        *,
        reservation_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._budgets = budgets
        self._ttl = reservation_ttl_s
        self._clock = clock
        self._local = threading.local()
        self._settled = 0
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

    def _bounds(self, tenant: str, now: float) -> tuple[Any, str, int]:
        budget = self._budgets(tenant)
        period = budget.period if budget else "total"
        since = period_start(period, now)
        # Hourly totals, kept in step with the entries by a trigger, bound the work to a period's hours.
        return budget, period, -(2**62) if since == -math.inf else int(since // 3600)

    def _state(self, conn: sqlite3.Connection, tenant: str, now: float) -> BudgetState:
        budget, period, hour = self._bounds(tenant, now)
        spent, held = conn.execute(f"SELECT {self._SPENT}, {self._HELD}", {"t": tenant, "h": hour, "now": now}).fetchone()
        return BudgetState(tenant, budget.budget_usd if budget else None, from_nanos(spent), from_nanos(held), period)

    def state(self, tenant: str) -> BudgetState:
        return self._state(self._conn(), tenant, self._clock())

    def spent(self, tenant: str) -> Decimal:
        """What the tenant spent in its current budget period (all time when it has no budget)."""
        return self.state(tenant).spent_usd

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
            state = self.state(tenant)
            raise BudgetExceeded(
                f"tenant {tenant!r}: ${amount_usd} more would pass its {state.period} budget of "
                f"${state.cap_usd} (spent ${state.spent_usd}, held ${state.reserved_usd})",
                state,
            )
        return Reservation(rid, tenant, request_id, amount_usd)

    def settle(self, reservation: Reservation | None, entry: Entry) -> None:
        """Record the attempt; a trigger adds it to the hourly total and releases its reservation."""
        ts = entry.ts or self._clock()
        self._settled += 1
        if self._settled % 256 == 0:  # expired holds are already ignored; this only keeps the table small
            self._conn().execute("DELETE FROM reservations WHERE expires <= ?", (ts,))
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
        sql = "SELECT request_id, attempt, tenant, tier, model, tokens_in, tokens_out, cost_nanos, latency_s, outcome, reason, ts FROM entries"
        rows = self._conn().execute(sql + (" WHERE tenant = ? ORDER BY id" if tenant else " ORDER BY id"), (tenant,) if tenant else ()).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], from_nanos(r[7]), r[8], r[9], r[10], r[11]) for r in rows]

    # ---- idempotency ---------------------------------------------------------------------------
    def claim_request(self, request_id: str, tenant: str) -> StoredRequest | None:
        """None when this caller now owns the request id; else what is stored for it."""
        now = self._clock()
        with self._tx() as conn:
            row = conn.execute("SELECT status, updated, response, route FROM requests WHERE request_id = ?", (request_id,)).fetchone()
            # A failed request may be tried again; a pending one whose owner died is taken over.
            if row is None or row[0] == "failed" or (row[0] == "pending" and row[1] < now - self._ttl):
                conn.execute(
                    "INSERT OR REPLACE INTO requests (request_id, tenant, status, updated) VALUES (?, ?, 'pending', ?)",
                    (request_id, tenant, now),
                )
                return None
        return _stored(row)

    def finish_request(self, request_id: str, status: str, response: dict[str, Any] | None, route: dict[str, Any] | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE requests SET status = ?, updated = ?, response = ?, route = ? WHERE request_id = ?",
                (status, self._clock(), _dumps(response), _dumps(route), request_id),
            )

    def get_request(self, request_id: str) -> StoredRequest | None:
        row = self._conn().execute("SELECT status, updated, response, route FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return None if row is None else _stored(row)

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


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _stored(row: tuple[Any, ...]) -> StoredRequest:
    return StoredRequest(row[0], json.loads(row[2]) if row[2] else None, json.loads(row[3]) if row[3] else None)
