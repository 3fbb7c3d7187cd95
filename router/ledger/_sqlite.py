"""The SQLite spend ledger (default): WAL, one statement per reservation and per plain settlement.

Each hot write is a single statement (triggers keep the hourly totals and reservations in step), so
it is atomic on its own and releases the GIL once. Driver errors come out as LedgerError.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from router._errors import ConfigError, LedgerError
from router.ledger._base import OWNER_TIMEOUT_S, DuplicateEntry, LedgerBase
from router.ledger._journal import Journal
from router.ledger._labels import LABELS_SQLITE
from router.ledger._records import (
    SPEND_SQL,
    BudgetLookup,
    Entry,
    Reservation,
    SpendRow,
    StoredAnswer,
    StoredRequest,
    dumps,
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
    amount_nanos INTEGER NOT NULL CHECK (amount_nanos >= 0),
    expires REAL NOT NULL,
    owner TEXT
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
CREATE TABLE IF NOT EXISTS owners (id TEXT PRIMARY KEY, beat REAL NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT,
    status TEXT NOT NULL,
    owner TEXT,
    updated REAL NOT NULL,
    response TEXT,
    route TEXT,
    PRIMARY KEY (tenant, request_id)
);
"""


class SQLiteLedger(LedgerBase):
    """Spend ledger in one SQLite file; safe across threads and processes sharing the file.

    `:memory:` is a private file in a temporary directory, removed on close (SQLite's shared-cache
    memory databases lock whole tables under threads).
    """

    def __init__(
        self,
        path: str,
        budgets: BudgetLookup,
        *,
        reservation_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        tz: tzinfo = UTC,
        owner_timeout_s: float = OWNER_TIMEOUT_S,
        lock_timeout_s: float = 30.0,
    ) -> None:
        self._lock_timeout = lock_timeout_s
        super().__init__(budgets, reservation_ttl_s, clock, tz, owner_timeout_s)
        self.path = path
        self._tmpdir: str | None = None
        if path == ":memory:":
            self._tmpdir = tempfile.mkdtemp(prefix="tierwise-ledger-")
            path = str(Path(self._tmpdir) / "ledger.db")
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise ConfigError(f"ledger directory {parent} does not exist")
        self._target = str(Path(path).expanduser())
        try:
            self._conn().executescript(_SCHEMA + LABELS_SQLITE)  # runs in its own transaction
            self._migrate()
            self._start(Journal(Path(self._target + ".journal")))
        except LedgerError as exc:
            raise ConfigError(f"cannot use ledger {self.path!r}: {exc} (is the file writable?)") from None

    # ---- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._target, timeout=self._lock_timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; only an OS crash can lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self._lock_timeout * 1000)}")
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open ledger {self.path!r}: {exc}") from None
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _query(self, sql: str, params: Any = (), fetch: str = "") -> Any:
        """One statement; a driver error comes out as LedgerError (DuplicateEntry for a repeated bill)."""
        with _driver_errors():
            cursor = self._conn().execute(sql, params)
            return cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else cursor.rowcount

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of deadlocking."""
        with _driver_errors():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _migrate(self) -> None:
        columns = {row[1] for row in self._query("PRAGMA table_info(reservations)", fetch="all")}
        if "owner" not in columns:  # ledgers made before holds had owners
            try:
                self._query("ALTER TABLE reservations ADD COLUMN owner TEXT")
            except LedgerError as exc:
                if "duplicate column" not in str(exc):  # another process migrated it first: fine
                    raise

    # ---- budget ---------------------------------------------------------------------------------
    _SPENT = "(SELECT COALESCE(SUM(nanos), 0) FROM spend_hourly WHERE tenant = :t AND hour >= :h)"
    # A hold counts until it expires, or until its owner stops beating (its process died).
    _HELD = ("(SELECT COALESCE(SUM(r.amount_nanos), 0) FROM reservations r LEFT JOIN owners o ON o.id = r.owner"
             " WHERE r.tenant = :t AND r.expires > :now AND (r.owner IS NULL OR o.beat > :alive))")

    def _state_row(self, tenant: str, hour: int, now: float) -> tuple[int, int]:
        row = self._query(f"SELECT {self._SPENT}, {self._HELD}", {"t": tenant, "h": hour, "now": now, "alive": self._alive_since(now)}, "one")
        return int(row[0]), int(row[1])

    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation:
        """Hold `amount_usd` against the tenant's budget atomically, or raise BudgetExceeded."""
        if amount_usd < 0:
            raise ValueError(f"a hold cannot be negative: {amount_usd}")
        now = self._clock()
        budget, _, hour = self._bounds(tenant, now)
        rid = uuid.uuid4().hex
        amount = to_nanos(amount_usd)
        # One INSERT ... SELECT: the check and the hold are one atomic statement, so concurrent
        # reservations (threads, processes) can never pass the cap together.
        count = self._query(
            "INSERT INTO reservations (id, tenant, request_id, amount_nanos, expires, owner)"
            " SELECT :id, :t, :rq, :amount, :exp, :owner"
            f" WHERE :cap IS NULL OR {self._SPENT} + {self._HELD} + :amount <= :cap",
            {"id": rid, "t": tenant, "rq": request_id, "amount": amount, "exp": now + self._ttl, "now": now, "owner": self.owner,
             "alive": self._alive_since(now), "h": hour, "cap": None if budget is None else to_nanos(budget.budget_usd)},
        )
        if count != 1:
            raise self._exceeded(tenant, amount_usd)
        return Reservation(rid, tenant, request_id, amount_usd)

    _INSERT = ("INSERT INTO entries (request_id, attempt, tenant, tier, model, tokens_in, tokens_out, cost_nanos,"
               " latency_s, outcome, reason, ts, reservation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

    def _insert_entry(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None) -> None:
        values = (entry.request_id, entry.attempt, entry.tenant, entry.tier, entry.model, entry.tokens_in, entry.tokens_out,
                  to_nanos(entry.cost_usd), entry.latency_s, entry.outcome, entry.reason, entry.ts,
                  None if reservation is None else reservation.id)
        if answer is None:
            self._query(self._INSERT, values)
            return
        with self._tx() as conn:  # the bill and the answer it paid for, together or not at all
            conn.execute(self._INSERT, values)
            conn.execute("UPDATE claims SET status = 'done', updated = ?, response = ?, route = ? WHERE tenant = ? AND request_id = ?",
                         (entry.ts, dumps(answer.response), dumps(answer.route), entry.tenant, entry.request_id))

    def spend(self, since: float | None = None, until: float | None = None, tenant: str | None = None) -> list[SpendRow]:
        """Spend grouped by tenant, hour, tier and model, computed in SQL."""
        sql = SPEND_SQL.format(hour="CAST(ts / 3600 AS INTEGER)", table="entries", since=":since", until=":until", tenant=":tenant")
        return [spend_row(r) for r in self._query(sql, spend_params(since, until, tenant), "all")]

    # ---- idempotency ---------------------------------------------------------------------------
    def claim_request(self, request_id: str, tenant: str, fingerprint: str | None = None) -> StoredRequest | None:
        """None when this caller now owns the request id; else what is stored for it."""
        now = self._clock()
        with self._tx() as conn:
            row = conn.execute(self._claim_row_sql(), (tenant, request_id)).fetchone()
            if self._claimable(row, now, fingerprint, request_id):
                conn.execute(
                    "INSERT OR REPLACE INTO claims (tenant, request_id, fingerprint, status, owner, updated)"
                    " VALUES (?, ?, ?, 'pending', ?, ?)",
                    (tenant, request_id, fingerprint, self.owner, now),
                )
                return None
        return stored(row)

    def close(self) -> None:
        super().close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


@contextmanager
def _driver_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise DuplicateEntry(str(exc)) from None
        raise LedgerError(f"the ledger refused a write: {exc}") from None
    except sqlite3.Error as exc:
        raise LedgerError(f"SQLite: {exc}") from None
