"""The PostgreSQL spend ledger: one budget shared by app instances on any number of hosts (psycopg 3).

A slice grows in one call of a server-side function (`tierwise_grant`) that takes the tenant's
advisory lock for its check-and-grow, so instances can never pass a cap together; a group of bills
is one pipelined transaction (a statement trigger keeps the hourly totals). Liveness is read on the
server's clock. Driver errors (a killed session, the server away) come out as LedgerUnavailable; a
group that fails stays queued and in the outbox and is tried again on a fresh pooled connection.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from router._config import data_home
from router._errors import ConfigError, LedgerUnavailable
from router.ledger._base import OWNER_TIMEOUT_S, DuplicateEntry, LedgerBase
from router.ledger._commit import FLUSH_S
from router.ledger._group import SLACK_SHARE, Bill
from router.ledger._journal import Journal
from router.ledger._labels import LABELS_POSTGRES
from router.ledger._postgres_sql import ANSWER, DBNOW, INSERT_BATCH, ROLLUP, SCHEMA, SHRINK, SPENT_HELD
from router.ledger._records import (
    SPEND_SQL,
    BudgetLookup,
    StoredRequest,
    dumps,
    stored,
)


class PostgresLedger(LedgerBase):
    """Spend ledger in PostgreSQL (tables prefixed `tierwise_`); safe across processes and hosts."""

    _prefix = "tierwise_"
    _mark = "%s"
    _dbnow = DBNOW

    def __init__(
        self,
        url: str,
        budgets: BudgetLookup,
        *,
        reservation_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        tz: tzinfo = UTC,
        owner_timeout_s: float = OWNER_TIMEOUT_S,
        connect_timeout_s: int = 5,
        pool_size: int = 16,
        flush_s: float = FLUSH_S,
        durability: str = "process",
    ) -> None:
        super().__init__(budgets, reservation_ttl_s, clock, tz, owner_timeout_s)
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
        # `check` tests a connection before it is lent, so one whose session was killed is replaced.
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs={"autocommit": True}, open=True, timeout=10,
                                    check=ConnectionPool.check_connection)
        try:
            with self._pool.connection() as conn, conn.transaction():
                # Two instances creating the schema at once would race on the catalog: serialise them.
                conn.execute("SELECT pg_advisory_xact_lock(7415201)")
                conn.execute(SCHEMA + LABELS_POSTGRES)
                found = conn.execute("SELECT to_regclass('tierwise_spend_rollup')").fetchone()
                if found is None or found[0] is None:
                    conn.execute(ROLLUP)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot create the ledger's tables: {str(exc).splitlines()[0][:200]}") from None
        self._start(Journal(Path(data_home()) / f"journal-{hashlib.sha256(url.encode()).hexdigest()[:16]}.jsonl"), flush_s, durability)

    def _query(self, sql: str, params: Any = None, fetch: str = "") -> Any:
        try:
            with self._pool.connection() as conn:
                cursor = conn.execute(sql, params)
                return cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else cursor.rowcount
        except self._psycopg.errors.UniqueViolation as exc:
            raise DuplicateEntry(str(exc).splitlines()[0]) from None
        except (self._psycopg.Error, OSError) as exc:  # also the pool's own timeout (PoolTimeout is a psycopg.Error)
            raise LedgerUnavailable(f"PostgreSQL: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}") from None

    def _state_row(self, tenant: str, hour: int, now: float) -> tuple[int, int, int]:
        row = self._query(SPENT_HELD, {"t": tenant, "h": hour, "now": now, "timeout": self._owner_timeout}, "one")
        return int(row[0]), int(row[1]), int(row[2])

    def _grant(self, tenant: str, slice_id: str, need: int, extra: int, now: float, hour: int, cap: int, request_id: str) -> int | None:
        row = self._query(
            "SELECT tierwise_grant(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (slice_id, tenant, request_id, need, extra, now + self._ttl, now, hour, cap, self.owner, 0.0, SLACK_SHARE),
            "one",
        )
        return None if row[0] is None else int(row[0])

    def _write_batch(self, bills: list[Bill], shrink: dict[str, int], expires: float) -> None:
        columns = list(zip(*[(e.request_id, e.attempt, e.tenant, e.tier, e.model, e.tokens_in, e.tokens_out, b.cost, e.latency_s,
                              e.outcome, e.reason, b.ts) for b in bills for e in [b.entry]], strict=True))
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.pipeline():
                conn.execute(INSERT_BATCH, [list(c) for c in columns])
                with conn.cursor() as cur:
                    cur.executemany(ANSWER, [(b.ts, dumps(b.answer.response), dumps(b.answer.route), b.entry.tenant, b.entry.request_id)
                                             for b in bills if b.answer is not None])
                    cur.executemany(SHRINK, [(cost, expires, slice_id) for slice_id, cost in shrink.items()])
        except (self._psycopg.Error, OSError) as exc:
            raise LedgerUnavailable(f"PostgreSQL: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}") from None

    _SPEND = SPEND_SQL.format(
        hour="floor(ts / 3600)::bigint", table="tierwise_entries", since="%(since)s", until="%(until)s", tenant="%(tenant)s::text"
    )

    def claim_request(self, request_id: str, tenant: str, fingerprint: str | None = None) -> StoredRequest | None:
        """None when this caller now owns the request id; else what is stored for it."""
        now = self._clock()
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (f"{tenant}\x1f{request_id}",))
                row = conn.execute(self._claim_row_sql(), (tenant, request_id)).fetchone()
                if self._claimable(row, now, fingerprint, request_id):
                    conn.execute(
                        "INSERT INTO tierwise_claims (tenant, request_id, fingerprint, status, owner, updated)"
                        " VALUES (%s, %s, %s, 'pending', %s, %s) ON CONFLICT (tenant, request_id) DO UPDATE SET"
                        " fingerprint = excluded.fingerprint, status = 'pending', owner = excluded.owner, updated = excluded.updated,"
                        " response = NULL, route = NULL",
                        (tenant, request_id, fingerprint, self.owner, now),
                    )
                    return None
        except self._psycopg.Error as exc:
            raise LedgerUnavailable(f"PostgreSQL: {str(exc).splitlines()[0][:300]}") from None
        return stored(row)

    def close(self) -> None:
        super().close()
        self._pool.close()
