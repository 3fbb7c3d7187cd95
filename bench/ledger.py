"""Ledger throughput: settled entries per second, SQLite and PostgreSQL, 1 and 16 writer threads.

    python bench/ledger.py [--seconds 3] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Each settled entry is a full budget cycle: a hold against the tenant's cap (from the instance's
budget slice, grown atomically in the database when it runs short), then the settlement that
records the entry (appended to the instance's outbox file, committed with the others queued within
50 ms) and releases the hold. The count is checked against the ledger's spend at the end. The
baseline is one INSERT a transaction with the same driver and settings. The report is timed in a
fresh ledger object over entries billed through the ledger.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router import RouterConfig
from router.ledger import Entry, open_ledger


def run_threads(writer: Callable[[int], None], writers: int) -> float:
    """Run `writer(k)` on `writers` threads at once; the seconds they took."""
    t0 = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def throughput(url: str, writers: int, seconds: float, shared_tenant: bool = True) -> float:
    config = RouterConfig.from_dict({"default_budget": {"budget_usd": "1000000000", "period": "month"}})
    run = uuid.uuid4().hex[:6]
    tenants = [f"bench-{run}" if shared_tenant else f"bench-{run}-{k}" for k in range(writers)]
    ledger = open_ledger(url, config.budget_for)
    counts = [0] * writers
    stop = time.perf_counter() + seconds

    def writer(k: int) -> None:
        tenant = tenants[k]
        i = 0
        while time.perf_counter() < stop:
            i += 1
            rid = f"w{k}-{i}-{uuid.uuid4().hex[:6]}"
            held = ledger.reserve(tenant, rid, Decimal("0.01"))
            ledger.settle(held, Entry(rid, 1, tenant, "small", "gpt-5-nano", 120, 80, Decimal("0.0000385"), 0.2, "ok"))
            counts[k] += 1

    elapsed = run_threads(writer, writers)
    spent = sum((ledger.spent(t) for t in set(tenants)), Decimal(0))
    assert spent == Decimal("0.0000385") * sum(counts)  # nothing lost, nothing doubled
    ledger.close()
    return sum(counts) / elapsed


BARE_TABLE = ("CREATE TABLE IF NOT EXISTS bare (id {pk}, request_id TEXT NOT NULL, tenant TEXT NOT NULL, model TEXT NOT NULL, "
              "tokens_in INTEGER, tokens_out INTEGER, cost_nanos BIGINT, ts DOUBLE PRECISION)")


def bare_rate(connect: Callable[[], Any], mark: str, writers: int, seconds: float) -> float:
    """The baseline: one INSERT a transaction per entry, same driver and settings, no ledger logic."""
    counts = [0] * writers
    sql = f"INSERT INTO bare (request_id, tenant, model, tokens_in, tokens_out, cost_nanos, ts) VALUES ({', '.join([mark] * 7)})"

    connect().close()  # the table exists before the writers start
    stop = time.perf_counter() + seconds

    def writer(k: int) -> None:
        conn = connect()
        while time.perf_counter() < stop:
            conn.execute(sql, (uuid.uuid4().hex, "bench", "gpt-5-nano", 120, 80, 38500, time.time()))
            counts[k] += 1
        conn.close()

    elapsed = run_threads(writer, writers)  # before counting: the writers fill `counts`
    return sum(counts) / elapsed


def sqlite_connect(path: str) -> Callable[[], Any]:
    import sqlite3

    def connect() -> Any:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(BARE_TABLE.format(pk="INTEGER PRIMARY KEY"))
        return conn

    return connect


def report_time(url: str, rows: int) -> float:
    """Seconds for the `tierwise ledger` report's aggregates over `rows` entries (billed through the
    ledger, 20 tenants over the last `rows` seconds, so the totals it keeps are filled as in use)."""
    config = RouterConfig.from_dict({"default_budget": {"budget_usd": "1000000000", "period": "month"}})
    ledger = open_ledger(url, config.budget_for)
    now = time.time()
    for i in range(rows):
        tenant = f"tenant-{i % 20}"
        ledger.settle(None, Entry(f"r{i}", 1, tenant, "small" if i % 3 else "frontier", "gpt-5-nano", 120, 80, Decimal("0.0000385"),
                                  0.2, "ok", "", now - i))
    ledger.flush()
    ledger.close()
    ledger = open_ledger(url, config.budget_for)  # a fresh process's report: nothing cached
    t = time.perf_counter()
    found = ledger.spend()
    elapsed = time.perf_counter() - t
    assert sum(r.requests for r in found) >= rows  # PostgreSQL also holds the throughput runs' entries
    ledger.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--report-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for writers in (1, 16):
            rate = throughput(f"sqlite:///{Path(tmp) / f'bench-{writers}.db'}", writers, args.seconds)
            bare = bare_rate(sqlite_connect(str(Path(tmp) / f"bare-{writers}.db")), "?", writers, args.seconds)
            print(f"SQLite     {writers:>2} writer(s): {rate:8.0f} settled entries/s (one tenant); bare inserts {bare:8.0f}/s: {rate / bare:.2f}x")
        path = Path(tmp) / "report.db"
        print(f"SQLite     report over {args.report_rows:,} entries: {report_time(f'sqlite:///{path}', args.report_rows):.2f} s")
    try:
        import psycopg
    except ImportError:
        print("PostgreSQL: psycopg not installed, skipped")
        return
    name = f"tierwise_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(args.pg, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL: not reachable ({str(exc).splitlines()[0]}), skipped")
        return
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = args.pg.rsplit("/", 1)[0] + "/" + name
            for writers in (1, 16):
                rate = throughput(url, writers, args.seconds)
                bare = bare_rate(pg_connect(psycopg, url), "%s", writers, args.seconds)
                print(f"PostgreSQL {writers:>2} writer(s): {rate:8.0f} settled entries/s (one tenant); bare inserts {bare:8.0f}/s: {rate / bare:.2f}x")
            print(f"PostgreSQL report over {args.report_rows:,} entries: {report_time(url, args.report_rows):.2f} s")
            rate = throughput(url, 16, args.seconds, shared_tenant=False)
            print(f"PostgreSQL 16 writer(s): {rate:8.0f} settled entries/s (a tenant each)")
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_connect(psycopg: Any, url: str) -> Callable[[], Any]:
    def connect() -> Any:
        conn = psycopg.connect(url, autocommit=True)
        conn.execute(BARE_TABLE.format(pk="BIGSERIAL PRIMARY KEY"))
        return conn

    return connect


if __name__ == "__main__":
    main()
