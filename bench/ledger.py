"""Ledger throughput against baselines of the same durability, SQLite and PostgreSQL, 1 and 16 writers.

    python bench/ledger.py [--seconds 3] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Each settled entry is a full budget cycle: a hold against the tenant's cap (from the instance's
budget slice, grown atomically in the database when it runs short), then the settlement that
records the entry and releases the hold. The count is checked against the ledger's spend at the end.
Each mode is printed against the baseline a user would run with the same durability, same driver
and settings: the default mode (bills committed in groups within 50 ms) against INSERTs batched by
a thread every 50 ms (and, on PostgreSQL, one-INSERT transactions with synchronous_commit=off);
ledger_flush_s 0 (each bill committed before settle returns) against one-INSERT autocommit
transactions. A third figure is not a baseline but a floor: a ledger skeleton (a hold and a bill
kept in memory under one lock, committed like the batched baseline, nothing on file) shows how
much of the gap is the ledger's own work per bill. The report is timed in a fresh ledger object over entries billed through the ledger.
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


def throughput(url: str, writers: int, seconds: float, shared_tenant: bool = True, flush_s: float = 0.05) -> float:
    config = RouterConfig.from_dict({"default_budget": {"budget_usd": "1000000000", "period": "month"}})
    run = uuid.uuid4().hex[:6]
    tenants = [f"bench-{run}" if shared_tenant else f"bench-{run}-{k}" for k in range(writers)]
    ledger = open_ledger(url, config.budget_for, flush_s=flush_s)
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


def batched_rate(connect: Callable[[], Any], mark: str, writers: int, seconds: float, every_s: float = 0.05,
                 row: Callable[[int, int], tuple[Any, ...]] | None = None) -> float:
    """The baseline of the default mode: writers queue rows, a thread commits the queue every `every_s`
    in one transaction (a writer returns before its row is committed, as a settle does)."""
    sql = f"INSERT INTO bare (request_id, tenant, model, tokens_in, tokens_out, cost_nanos, ts) VALUES ({', '.join([mark] * 7)})"
    queue: list[tuple[Any, ...]] = []
    lock = threading.Lock()
    committed = [0]
    stop = time.perf_counter() + seconds
    done = threading.Event()

    def committer() -> None:
        conn = connect()
        while not done.is_set() or queue:
            time.sleep(every_s)
            with lock:
                rows, queue[:] = list(queue), []
            if rows:
                with conn.transaction() if hasattr(conn, "transaction") else _sqlite_tx(conn):
                    conn.cursor().executemany(sql, rows)
                committed[0] += len(rows)
        conn.close()

    def writer(k: int) -> None:
        i = 0
        while time.perf_counter() < stop:
            i += 1
            found = row(k, i) if row else (uuid.uuid4().hex, "bench", "gpt-5-nano", 120, 80, 38500, time.time())
            with lock:
                queue.append(found)

    thread = threading.Thread(target=committer)
    thread.start()
    elapsed = run_threads(writer, writers)
    done.set()
    thread.join()
    return committed[0] / elapsed


def skeleton_rate(connect: Callable[[], Any], mark: str, writers: int, seconds: float) -> float:
    """Not a baseline: the floor of any budgeted ledger in Python. A hold taken from an in-memory slice
    and the bill queued, each under one lock, committed like `batched_rate`; no outbox line (a killed
    process loses the queue), no hourly rollup, no budget lookup, no Entry object."""
    lock, holds, used = threading.Lock(), {}, [0]

    def hold(k: int, i: int) -> tuple[Any, ...]:
        with lock:  # the hold
            used[0] += 10_000_000
            holds[(k, i)] = 10_000_000
        with lock:  # the settle: the hold released, the bill queued (by batched_rate's writer)
            used[0] += 38_500 - holds.pop((k, i))
        return (uuid.uuid4().hex, "bench", "gpt-5-nano", 120, 80, 38500, time.time())

    return batched_rate(connect, mark, writers, seconds, row=hold)


class _sqlite_tx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("COMMIT")


def sqlite_connect(path: str) -> Callable[[], Any]:
    import sqlite3

    def connect() -> Any:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(BARE_TABLE.format(pk="INTEGER PRIMARY KEY"))
        return conn

    return connect


def report_time(url: str, rows: int) -> tuple[float, float]:
    """Seconds for the whole `tierwise ledger` report over `rows` entries billed through the ledger:
    100 tenants spread over 30 days (sparse: most hours hold one entry of a tenant), and for the same
    figures one GROUP BY over the raw entries (tenant, day, tier, model) with the same driver."""
    import contextlib
    import io
    import json

    from router import LiteLLMClient, ModelSpec
    from router.cli import main as tierwise

    config = RouterConfig.from_dict({"default_budget": {"budget_usd": "1000000000", "period": "month"}})
    ledger = open_ledger(url, config.budget_for)
    now = time.time()
    models = [("small", "gpt-5-nano"), ("flash", "gpt-5-mini"), ("frontier", "gpt-5")]
    for i in range(rows):
        tier, model = models[i % 3]
        ledger.settle(None, Entry(f"r{i}", 1, f"tenant-{i % 100}", tier, model, 120, 80, Decimal("0.0000385"), 0.2, "ok", "",
                                  now - (i * 2_592_000 / rows)))
    ledger.flush()
    ledger.close()
    LiteLLMClient().prices(ModelSpec(model="gpt-5"))  # the CLI imports litellm for the frontier prices: seconds, whatever the data
    out = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(out):
        tierwise(["ledger", "--url", url, "--json"])  # a fresh ledger object: nothing cached
    elapsed = time.perf_counter() - t
    assert json.loads(out.getvalue())["total"]["requests"] >= rows  # PostgreSQL also holds the throughput runs' entries
    return elapsed, group_by_time(url)


def group_by_time(url: str) -> float:
    """One GROUP BY over the raw entries by tenant, UTC day, tier and model: the baseline of the report."""
    sql = ("SELECT tenant, {day}, tier, model, COUNT(*), SUM(tokens_in), SUM(tokens_out), SUM(cost_nanos) FROM {t}entries"
           " GROUP BY 1, 2, 3, 4")
    if url.startswith("sqlite"):
        import sqlite3

        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        sql = sql.format(day="CAST(ts / 86400 AS INTEGER)", t="")
    else:
        import psycopg

        conn = psycopg.connect(url)
        sql = sql.format(day="floor(ts / 86400)::bigint", t="tierwise_")
    t = time.perf_counter()
    conn.execute(sql).fetchall()
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--report-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for writers in (1, 16):
            modes(lambda flush, w=writers: throughput(f"sqlite:///{Path(tmp) / f'bench-{w}-{flush}.db'}", w, args.seconds, flush_s=flush),
                  sqlite_connect(str(Path(tmp) / f"bare-{writers}.db")), "?", "SQLite    ", writers, args.seconds)
        path = Path(tmp) / "report.db"
        took, group_by = report_time(f"sqlite:///{path}", args.report_rows)
        print(f"SQLite     report over {args.report_rows:,} entries (100 tenants, 30 days): {took:.2f} s; one GROUP BY over the entries {group_by:.2f} s")
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
                default = modes(lambda flush, w=writers: throughput(url, w, args.seconds, flush_s=flush), pg_connect(psycopg, url), "%s",
                                "PostgreSQL", writers, args.seconds)
                off = bare_rate(pg_connect(psycopg, url, sync_off=True), "%s", writers, args.seconds)
                print(f"PostgreSQL {writers:>2} writer(s): default {default:8.0f}/s vs one-INSERT transactions with"
                      f" synchronous_commit=off {off:8.0f}/s: {default / off:.2f}x")
            took, group_by = report_time(url, args.report_rows)
            print(f"PostgreSQL report over {args.report_rows:,} entries (100 tenants, 30 days): {took:.2f} s;"
                  f" one GROUP BY over the entries {group_by:.2f} s")
            rate = throughput(url, 16, args.seconds, shared_tenant=False)
            print(f"PostgreSQL 16 writer(s): {rate:8.0f} settled entries/s (a tenant each)")
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_connect(psycopg: Any, url: str, sync_off: bool = False) -> Callable[[], Any]:
    def connect() -> Any:
        conn = psycopg.connect(url, autocommit=True)
        conn.execute(BARE_TABLE.format(pk="BIGSERIAL PRIMARY KEY"))
        if sync_off:
            conn.execute("SET synchronous_commit = off")
        return conn

    return connect


def modes(ledger_rate: Callable[[float], float], connect: Callable[[], Any], mark: str, name: str, writers: int, seconds: float) -> float:
    """Print the default mode against batched inserts and flush_s 0 against autocommit inserts; the default's rate."""
    default, batched = ledger_rate(0.05), batched_rate(connect, mark, writers, seconds)
    flush0, bare = ledger_rate(0.0), bare_rate(connect, mark, writers, seconds)
    floor = skeleton_rate(connect, mark, writers, seconds)
    print(f"{name} {writers:>2} writer(s): default {default:8.0f}/s vs inserts batched every 50 ms {batched:8.0f}/s: {default / batched:.2f}x;"
          f" flush_s 0 {flush0:8.0f}/s vs one-INSERT autocommit {bare:8.0f}/s: {flush0 / bare:.2f}x;"
          f" a ledger skeleton (see skeleton_rate) {floor:8.0f}/s: {floor / batched:.2f}x of batched", flush=True)
    return default


if __name__ == "__main__":
    main()
