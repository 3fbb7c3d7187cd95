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
    url: str, budgets: BudgetLookup, clock: Callable[[], float] | None = None, tz: tzinfo = UTC, *, must_exist: bool = False
) -> Ledger:
    """A ledger from a URL: `sqlite:///path`, `sqlite://:memory:`, a plain path, or `postgresql://...`.

    With `must_exist` (reports), a SQLite file that is not there is a ConfigError, not a new empty ledger.
    """
    kwargs: dict[str, Any] = {"tz": tz, **({"clock": clock} if clock is not None else {})}
    if url.startswith(("postgresql://", "postgres://")):
        from router.ledger._postgres import PostgresLedger  # psycopg only when asked for

        return PostgresLedger(url, budgets, **kwargs)
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
