"""The ledger factory: a URL in, a store for it, the ledger composed over it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from router._errors import ConfigError, LedgerError
from router.ledger._base import Ledger
from router.ledger._commit import FLUSH_S
from router.ledger._ledger import SQLLedger
from router.ledger._owner import OWNER_TIMEOUT_S, ServerClock
from router.ledger._records import BudgetLookup

if TYPE_CHECKING:
    from router.ledger._postgres import PostgresStore
    from router.ledger._sqlite import SQLiteStore

_POSTGRES = ("postgresql://", "postgres://")


def open_ledger(
    url: str, budgets: BudgetLookup, clock: Callable[[], float] | None = None, tz: tzinfo = UTC, *, must_exist: bool = False,
    owner_timeout_s: float | None = None, lock_timeout_s: float | None = None, flush_s: float | None = None,
    durability: str | None = None,
) -> Ledger:
    """A ledger from a URL: `sqlite:///path`, `sqlite://:memory:`, a plain path, or `postgresql://...`.

    With `must_exist` (reports), a SQLite file that is not there is a ConfigError, not a new empty ledger.
    `owner_timeout_s`: how soon the holds of a process that stopped beating are freed (default 20 s).
    `lock_timeout_s` (SQLite): how long a write waits for another process's lock (default 30 s).
    `flush_s`: how long a bill may wait to be committed with others (default 0.05; 0: each before `settle` returns).
    `durability`: "process" (default: a bill survives a killed process) or "os" (the outbox is synced once
    per group and SQLite syncs each commit: a power loss takes only bills younger than `flush_s`).
    """
    if flush_s is not None and not 0 <= flush_s <= 60:
        raise ConfigError(f"flush_s must be between 0 and 60 seconds, not {flush_s}")
    if durability not in (None, "process", "os"):
        raise ConfigError(f"durability must be 'process' or 'os', not {durability!r}")
    store = _store(url, must_exist, lock_timeout_s, durability or "process")
    if clock is None:  # hosts that share a PostgreSQL ledger keep its server's time (one host's SQLite: its own)
        clock = ServerClock() if url.startswith(_POSTGRES) else time.time
    try:
        return SQLLedger(store, store.journal, budgets, clock=clock, tz=tz, owner_timeout_s=owner_timeout_s or OWNER_TIMEOUT_S,
                         flush_s=FLUSH_S if flush_s is None else flush_s, durability=durability or "process")
    except LedgerError as exc:
        store.close()
        raise ConfigError(f"cannot use the ledger: {exc} (is it writable?)") from None


def _store(url: str, must_exist: bool, lock_timeout_s: float | None, durability: str) -> SQLiteStore | PostgresStore:
    if url.startswith(_POSTGRES):
        from router.ledger._postgres import PostgresStore  # psycopg only when asked for

        return PostgresStore(url)
    from router.ledger._sqlite import SQLiteStore

    if url.startswith("sqlite://"):
        # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db; sqlite://:memory: -> :memory:
        rest = url[len("sqlite://") :]
        path = (rest.removeprefix("/")) or ":memory:"
    elif "://" in url:
        raise ConfigError(f"unsupported ledger URL {url!r}: use sqlite:///path or postgresql://...")
    else:
        path = url
    if must_exist and path != ":memory:" and not Path(path).expanduser().is_file():
        raise ConfigError(f"no ledger at {path}: check the URL (sqlite:///relative.db, sqlite:////absolute.db)")
    return SQLiteStore(path, lock_timeout_s=30.0 if lock_timeout_s is None else lock_timeout_s, durability=durability)
