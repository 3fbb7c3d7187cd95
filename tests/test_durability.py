"""Durability as a setting: with ledger_flush_s 0 a bill is in the database when settle returns
(concurrent settles share a transaction); with durability "os" a power loss (only what was synced
survives) takes no bill older than ledger_flush_s, even while the database refuses writes."""

from __future__ import annotations

import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from router import ConfigError, RouterConfig
from router.ledger import Entry, open_ledger

BUDGETS = RouterConfig.from_dict({"tenants": {"acme": {"budget_usd": "1000", "period": "total"}}}).budget_for


def _entry(rid: str) -> Entry:
    return Entry(rid, 1, "acme", "small", "m", 1, 1, Decimal("0.001"), 0.01, "ok")


def test_with_flush_0_a_settled_bill_is_committed_when_settle_returns(any_ledger_url: str) -> None:
    ledger = open_ledger(any_ledger_url, BUDGETS, flush_s=0)
    reader = open_ledger(any_ledger_url, BUDGETS)
    missing: list[str] = []

    def writer(k: int) -> None:
        for i in range(15):
            rid = f"w{k}-{i}"
            ledger.settle(ledger.reserve("acme", rid, Decimal("0.01")), _entry(rid))
            if rid not in {e.request_id for e in reader.entries("acme")}:  # another instance reads the database
                missing.append(rid)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert missing == [] and len(reader.entries("acme")) == 240
    ledger.close()
    reader.close()


def test_os_durability_loses_no_bill_older_than_flush_s_at_a_power_loss(tmp_path: Path) -> None:
    flush_s = 0.1
    ledger: Any = open_ledger(f"sqlite:///{tmp_path / 'l.db'}", BUDGETS, flush_s=flush_s, durability="os", lock_timeout_s=0.02)
    disk: list[tuple[float, bytes]] = []  # what each msync put on the disk
    outbox = ledger._books.outbox
    synced = outbox.sync

    def spy() -> None:
        synced()
        if outbox._map is not None:
            disk.append((time.monotonic(), bytes(outbox._map[: outbox._end])))

    outbox.sync = spy
    blocker = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the database refuses every commit: bills stay in the outbox
    settled: list[tuple[float, str]] = []
    for i in range(25):
        rid = f"bill-{i}"
        ledger.settle(None, _entry(rid))
        settled.append((time.monotonic(), rid))
        time.sleep(0.04)
    power_loss = time.monotonic()
    on_disk = max(disk)[1].decode() if disk else ""
    older = [rid for at, rid in settled if at < power_loss - flush_s - 0.4]  # a loaded machine may run the sync late
    assert older and all(f'"{rid}"' in on_disk for rid in older), (len(disk), [r for r in older if f'"{r}"' not in on_disk])
    blocker.execute("ROLLBACK")
    blocker.close()
    ledger.close()


def test_a_bad_durability_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="durability"):
        open_ledger(f"sqlite:///{tmp_path / 'x.db'}", BUDGETS, durability="disk")
    with pytest.raises(ConfigError):
        RouterConfig.from_dict({"ledger_durability": "disk"})
    assert RouterConfig.from_dict({"ledger_durability": "os"}).ledger_durability == "os"
