"""Ledger throughput: settled entries per second, SQLite and PostgreSQL, 1 and 16 writer threads.

    python bench/ledger.py [--seconds 3] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Each settled entry is a full budget cycle: an atomic reservation against the tenant's cap, then
the settlement that records the entry and releases the hold.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router import RouterConfig
from router.ledger import Entry, open_ledger


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

    t0 = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    spent = sum((ledger.spent(t) for t in set(tenants)), Decimal(0))
    assert spent == Decimal("0.0000385") * sum(counts)  # nothing lost, nothing doubled
    ledger.close()
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for writers in (1, 16):
            rate = throughput(f"sqlite:///{Path(tmp) / f'bench-{writers}.db'}", writers, args.seconds)
            print(f"SQLite     {writers:>2} writer(s): {rate:8.0f} settled entries/s (one tenant)")
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
                print(f"PostgreSQL {writers:>2} writer(s): {rate:8.0f} settled entries/s (one tenant)")
            rate = throughput(url, 16, args.seconds, shared_tenant=False)
            print(f"PostgreSQL 16 writer(s): {rate:8.0f} settled entries/s (a tenant each)")
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
