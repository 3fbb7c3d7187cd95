"""The one seam between the ledger's owners and a database: what SQLite and PostgreSQL each implement.

Everything else in the ledger (`Books`, `Committer`, `Owner`, `Claims`, `Reports`, the label and
side tables) is written once over this protocol; a backend gives one statement (`query`), the few
statements whose atomicity needs the dialect (`grant`, `write_batch`, `claim`, `state_row`), its
placeholder, table prefix and clock expression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from router._errors import AlreadyBilled
from router.ledger._group import Bill


class DuplicateEntry(AlreadyBilled):
    """This attempt of this request is already in the ledger (the database's unique key said so)."""


@dataclass(frozen=True)
class Grant:
    """Grow a slice's row by `need` if the tenant's cap allows, plus `extra` when that is at most
    1/SLACK_SHARE of what is left past `need`; all money in nano-dollars."""

    tenant: str
    slice_id: str
    request_id: str
    need: int
    extra: int
    cap: int
    hour: int  # the first hour of the budget period
    now: float
    expires: float
    owner: str


class Store(Protocol):
    """A SQL database holding the ledger's tables; every driver error comes out as LedgerError
    (LedgerUnavailable when the database is away, DuplicateEntry for a second bill)."""

    prefix: str  # table-name prefix
    mark: str  # the driver's placeholder
    dbnow: str  # the database's own clock in epoch seconds: liveness never compares local clocks across hosts
    minute: str  # the minute of `dbnow` (epoch seconds // 60, rounded down: rate windows turn with the clock's minute)
    spend_sql: str  # SPEND_SQL in this dialect, with named parameters since, until and tenant
    rollup_scan: str  # the hourly totals as a report of every tenant reads them (SQLite: the table, not its key's index)

    def query(self, sql: str, params: Any = (), fetch: str = "") -> Any:
        """One statement: the row (fetch="one"), the rows ("all") or the row count."""
        ...

    def state_row(self, tenant: str, hour: int, now: float, owner_timeout_s: float) -> tuple[int, int, int]:
        """(spent since `hour`, held, presumed) nano-dollars: presumed is the part of held whose owner is dead."""
        ...

    def grant(self, grant: Grant) -> int | None:
        """Apply `grant` atomically (instances can never pass a cap together): the row's new amount,
        or None when `need` does not fit."""
        ...

    def write_batch(self, bills: list[Bill], shrink: dict[str, int], expires: float) -> None:
        """One transaction: the entries (an attempt already there is skipped), the hourly totals,
        the answers, and each slice's row shrunk by what its bills that went in cost (one already
        there, as in a group retried after a commit whose answer was lost, shrinks nothing) and by
        `shrink` (unused parts given back)."""
        ...

    def claim(self, tenant: str, request_id: str, row_sql: str, decide: Callable[[Any], bool], owner: str, now: float,
              fingerprint: str | None) -> tuple[bool, Any]:
        """In one transaction (serialised per request id): read the claim row with `row_sql` and, when
        `decide(row)`, take the id as `owner`. (taken, the row read)."""
        ...

    def close(self) -> None: ...


def render(store: Store, text: str) -> str:
    """A statement written once for both backends: `{t}` the table prefix, `{dbnow}` the database's
    clock, `?` the placeholder."""
    return text.replace("{t}", store.prefix).replace("{dbnow}", store.dbnow).replace("?", store.mark)
