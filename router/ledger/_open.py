"""The ledger factory: a URL in, a backend out (the backends import the base, never this)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from router._errors import ConfigError
from router.ledger._base import Ledger
from router.ledger._records import BudgetLookup


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
    kwargs: dict[str, Any] = {"tz": tz, **({"clock": clock} if clock is not None else {})}
    if owner_timeout_s is not None:
        kwargs["owner_timeout_s"] = owner_timeout_s
    if flush_s is not None:
        kwargs["flush_s"] = flush_s
    if durability is not None:
        if durability not in ("process", "os"):
            raise ConfigError(f"durability must be 'process' or 'os', not {durability!r}")
        kwargs["durability"] = durability
    if url.startswith(("postgresql://", "postgres://")):
        from router.ledger._postgres import PostgresLedger  # psycopg only when asked for

        return PostgresLedger(url, budgets, **kwargs)
    if lock_timeout_s is not None:
        kwargs["lock_timeout_s"] = lock_timeout_s
    from router.ledger._sqlite import SQLiteLedger

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
    return SQLiteLedger(path, budgets, **kwargs)
