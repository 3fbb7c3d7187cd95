"""The PostgreSQL store: one budget shared by app instances on any number of hosts (psycopg 3).

A slice grows in one call of a server-side function (`tierwise_grant`) that takes the tenant's
advisory lock for its check-and-grow, so instances can never pass a cap together; a group of bills
is one statement, its own transaction in one round trip (a statement trigger keeps the hourly
totals). Liveness is read on the server's clock. Driver errors (a killed session, the server away)
come out as LedgerUnavailable; a group that fails stays queued and in the outbox and is tried
again on a fresh pooled connection.
"""

from __future__ import annotations

import hashlib
import json
import select
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router._config import data_home
from router._errors import ConfigError, LedgerUnavailable
from router.ledger._group import SLACK_SHARE, Bill, batch_json, slice_costs
from router.ledger._journal import Journal
from router.ledger._keys import KEYS_SQL
from router.ledger._labels import LABELS_POSTGRES
from router.ledger._postgres_sql import DBNOW, ROLLUP, SCHEMA, SPENT_HELD, WRITE_GROUP, WRITE_RETRIED_GROUP
from router.ledger._records import SPEND_SQL, dumps
from router.ledger._store import DuplicateEntry, Grant


def _check(conn: Any) -> None:
    """The pool's check of a connection before it is lent, with a round trip only when something
    arrived on its socket while it sat idle: a server that ends a session (killed, restarting, idle
    timeout) says so and closes it, which makes the socket readable. A quiet socket is lent as is,
    so a busy ledger's writes pay one round trip, not two."""
    from psycopg_pool import ConnectionPool

    if conn.closed:
        ConnectionPool.check_connection(conn)
        return
    poller = select.poll()  # not select.select: a busy gateway's descriptors pass 1,024, which select cannot watch
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


class PostgresStore:
    """The ledger's tables in PostgreSQL (prefixed `tierwise_`); safe across processes and hosts."""

    prefix = "tierwise_"
    mark = "%s"
    dbnow = DBNOW
    minute = f"floor({DBNOW} / 60)::bigint"  # a cast alone rounds: the window would turn at second 30
    rollup_scan = "tierwise_spend_rollup"
    spend_sql = SPEND_SQL.format(
        hour="floor(ts / 3600)::bigint", table="tierwise_entries", since="%(since)s", until="%(until)s", tenant="%(tenant)s::text"
    )

    def __init__(self, url: str, *, connect_timeout_s: int = 5, pool_size: int = 16) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise ConfigError("the PostgreSQL ledger needs psycopg: pip install 'tierwise[postgres]'") from None
        self._psycopg = psycopg
        self.journal = Journal(Path(data_home()) / f"journal-{hashlib.sha256(url.encode()).hexdigest()[:16]}.jsonl")
        try:  # fail now, with a clear message, rather than on the first request
            psycopg.connect(url, connect_timeout=connect_timeout_s).close()
        except psycopg.Error as exc:
            # Only the driver's first line: the URL (and its password) is not repeated.
            raise ConfigError(f"cannot connect to the PostgreSQL ledger: {str(exc).splitlines()[0][:200]}") from None
        # A bounded pool: many threads share a few connections instead of exhausting the server's.
        # `_check` tests a connection before it is lent, so one whose session was killed is replaced.
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs={"autocommit": True}, open=True, timeout=10,
                                    check=_check)
        try:
            with self._pool.connection() as conn, conn.transaction():
                # Two instances creating the schema at once would race on the catalog: serialise them.
                conn.execute("SELECT pg_advisory_xact_lock(7415201)")
                conn.execute(SCHEMA + LABELS_POSTGRES + KEYS_SQL.format(t="tierwise_", real="DOUBLE PRECISION"))
                found = conn.execute("SELECT to_regclass('tierwise_spend_rollup')").fetchone()
                if found is None or found[0] is None:
                    conn.execute(ROLLUP)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot create the ledger's tables: {str(exc).splitlines()[0][:200]}") from None

    def _unavailable(self, exc: BaseException) -> LedgerUnavailable:
        return LedgerUnavailable(f"PostgreSQL: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}")

    def query(self, sql: str, params: Any = None, fetch: str = "") -> Any:
        try:
            with self._pool.connection() as conn:
                cursor = conn.execute(sql, params)
                return cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else cursor.rowcount
        except self._psycopg.errors.UniqueViolation as exc:
            raise DuplicateEntry(str(exc).splitlines()[0]) from None
        except (self._psycopg.Error, OSError) as exc:  # also the pool's own timeout (PoolTimeout is a psycopg.Error)
            raise self._unavailable(exc) from None

    def state_row(self, tenant: str, hour: int, now: float, owner_timeout_s: float) -> tuple[int, int, int]:
        row = self.query(SPENT_HELD, {"t": tenant, "h": hour, "now": now, "timeout": owner_timeout_s}, "one")
        return int(row[0]), int(row[1]), int(row[2])

    def grant(self, g: Grant) -> int | None:
        row = self.query(
            "SELECT tierwise_grant(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (g.slice_id, g.tenant, g.request_id, g.need, g.extra, g.expires, g.now, g.hour, g.cap, g.owner, 0.0, SLACK_SHARE),
            "one",
        )
        return None if row[0] is None else int(row[0])

    def write_batch(self, bills: list[Bill], shrink: dict[str, int], expires: float) -> None:
        answers = [[b.ts, dumps(b.answer.response), dumps(b.answer.route), b.entry.tenant, b.entry.request_id]
                   for b in bills if b.answer is not None]
        try:
            with self._pool.connection() as conn:  # autocommit: the one statement is the transaction
                params = {"answers": json.dumps(answers), "expires": expires}
                if any(b.retried for b in bills):  # its commit may have gone in unanswered: shrink by what goes in now
                    conn.execute(WRITE_RETRIED_GROUP, {**params, "batch": batch_json(bills, slices=True), "freed": json.dumps(shrink)})
                else:
                    conn.execute(WRITE_GROUP, {**params, "batch": batch_json(bills), "shrink": json.dumps(slice_costs(bills, shrink))})
        except (self._psycopg.Error, OSError) as exc:
            raise self._unavailable(exc) from None

    def claim(self, tenant: str, request_id: str, row_sql: str, decide: Callable[[Any], bool], owner: str, now: float,
              fingerprint: str | None) -> tuple[bool, Any]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (f"{tenant}\x1f{request_id}",))
                row = conn.execute(row_sql, (tenant, request_id)).fetchone()
                if not decide(row):
                    return False, row
                conn.execute(
                    "INSERT INTO tierwise_claims (tenant, request_id, fingerprint, status, owner, updated)"
                    " VALUES (%s, %s, %s, 'pending', %s, %s) ON CONFLICT (tenant, request_id) DO UPDATE SET"
                    " fingerprint = excluded.fingerprint, status = 'pending', owner = excluded.owner, updated = excluded.updated,"
                    " response = NULL, route = NULL",
                    (tenant, request_id, fingerprint, owner, now),
                )
                return True, row
        except self._psycopg.Error as exc:
            raise self._unavailable(exc) from None

    def close(self) -> None:
        self._pool.close()
