"""The spend ledger contract: reservations before a call, one entry per attempt after it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any, Protocol

from router._config import TenantBudget
from router._errors import BudgetState, ConfigError

NANOS = Decimal(1_000_000_000)
BudgetLookup = Callable[[str], TenantBudget | None]


def to_nanos(usd: Decimal) -> int:
    """USD to integer nano-dollars, rounded up so the ledger never under-bills."""
    return int((usd * NANOS).to_integral_value(rounding=ROUND_CEILING))


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS


def period_start(period: str, now: float) -> float:
    """Epoch seconds at which the current calendar period began (UTC)."""
    if period == "total":
        return -math.inf
    t = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        t -= timedelta(days=t.weekday())
    elif period == "month":
        t = t.replace(day=1)
    elif period != "day":
        raise ConfigError(f"unknown budget period {period!r}")
    return t.timestamp()


@dataclass(frozen=True)
class Entry:
    """One attempt as billed."""

    request_id: str
    attempt: int
    tenant: str
    tier: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal
    latency_s: float
    outcome: str
    reason: str = ""
    ts: float = 0.0


@dataclass(frozen=True)
class Reservation:
    """Money held for one attempt until it is settled (or its holder dies and it expires)."""

    id: str
    tenant: str
    request_id: str
    amount_usd: Decimal


@dataclass(frozen=True)
class StoredRequest:
    """A request id seen before: its status and, once done, the stored response and route."""

    status: str  # "pending", "done", "failed"
    response: dict[str, Any] | None
    route: dict[str, Any] | None


class Ledger(Protocol):
    """Every backend keeps this contract; the contract tests run against each."""

    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation: ...

    def settle(self, reservation: Reservation | None, entry: Entry) -> None: ...

    def state(self, tenant: str) -> BudgetState: ...

    def spent(self, tenant: str) -> Decimal: ...

    def entries(self, tenant: str | None = None) -> list[Entry]: ...

    def claim_request(self, request_id: str, tenant: str) -> StoredRequest | None: ...

    def finish_request(self, request_id: str, status: str, response: dict[str, Any] | None, route: dict[str, Any] | None) -> None: ...

    def get_request(self, request_id: str) -> StoredRequest | None: ...

    def next_attempt(self, request_id: str) -> int: ...

    def close(self) -> None: ...


def open_ledger(url: str, budgets: BudgetLookup, clock: Callable[[], float] | None = None) -> Ledger:
    """A ledger from a URL: `sqlite:///path`, `sqlite://:memory:` or a plain file path."""
    from router._sqlite import SQLiteLedger

    if url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("the PostgreSQL ledger is not available in this version; use sqlite:///path")
    if url.startswith("sqlite://"):
        # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db; sqlite://:memory: -> :memory:
        rest = url[len("sqlite://") :]
        path = (rest[1:] if rest.startswith("/") else rest) or ":memory:"
    elif "://" in url:
        raise ConfigError(f"unsupported ledger URL {url!r}: use sqlite:///path")
    else:
        path = url
    kwargs = {"clock": clock} if clock is not None else {}
    return SQLiteLedger(path, budgets, **kwargs)
