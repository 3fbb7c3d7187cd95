"""The spend ledger contract: reservations before a call, one entry per attempt after it."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, Decimal
from typing import Any, Protocol

from router._config import TenantBudget
from router._errors import BudgetExceeded, BudgetState, ConfigError, LedgerError
from router._types import AttemptOutcome, RequestStatus

NANOS = Decimal(1_000_000_000)
BudgetLookup = Callable[[str], TenantBudget | None]


def to_nanos(usd: Decimal) -> int:
    """USD to integer nano-dollars, rounded up so the ledger never under-bills."""
    return int((usd * NANOS).to_integral_value(rounding=ROUND_CEILING))


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS


def period_start(period: str, now: float, tz: tzinfo = UTC) -> float:
    """Epoch seconds at which the current calendar period began in time zone `tz`."""
    if period == "total":
        return -math.inf
    t = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
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
    outcome: AttemptOutcome
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

    status: RequestStatus
    response: dict[str, Any] | None
    route: dict[str, Any] | None


@dataclass(frozen=True)
class SpendRow:
    """Spend of one tenant on one tier and model in one UTC hour (epoch seconds // 3600)."""

    tenant: str
    hour: int
    tier: str
    model: str
    attempts: int
    requests: int  # requests whose first attempt falls here (so rows add up without counting one twice)
    answers: int  # attempts whose answer passed its checks ("ok")
    tokens_in: int
    tokens_out: int
    answer_tokens_in: int  # tokens of those answers: what an always-frontier router would have paid for
    answer_tokens_out: int
    cost_usd: Decimal


class Ledger(Protocol):
    """Every backend keeps this contract; the contract tests run against each."""

    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation: ...

    def settle(self, reservation: Reservation | None, entry: Entry) -> None: ...

    def state(self, tenant: str) -> BudgetState: ...

    def spent(self, tenant: str) -> Decimal: ...

    def entries(self, tenant: str | None = None) -> list[Entry]: ...

    def spend(self, since: float | None = None, until: float | None = None, tenant: str | None = None) -> list[SpendRow]: ...

    def claim_request(self, request_id: str, tenant: str) -> StoredRequest | None: ...

    def finish_request(self, request_id: str, status: RequestStatus, response: dict[str, Any] | None, route: dict[str, Any] | None) -> None: ...

    def get_request(self, request_id: str) -> StoredRequest | None: ...

    def next_attempt(self, request_id: str) -> int: ...

    def close(self) -> None: ...


class LedgerBase:
    """What the SQL backends share: budget lookup, periods, clock, per-thread connections."""

    def __init__(self, budgets: BudgetLookup, reservation_ttl_s: float, clock: Callable[[], float], tz: tzinfo = UTC) -> None:
        self._budgets = budgets
        self._tz = tz
        self._ttl = reservation_ttl_s
        self._clock = clock
        self._local = threading.local()
        self._settled = 0

    def _bounds(self, tenant: str, now: float) -> tuple[TenantBudget | None, str, int]:
        """(budget, period, first hour of the period): hourly totals bound the work to a period."""
        budget = self._budgets(tenant)
        period = budget.period if budget else "total"
        since = period_start(period, now, self._tz)
        # A zone off UTC by a part hour starts its bucket early: more spend counted, never less.
        return budget, period, -(2**62) if since == -math.inf else int(since // 3600)

    def _state_row(self, tenant: str, hour: int, now: float) -> tuple[int, int]:
        raise NotImplementedError

    def state(self, tenant: str) -> BudgetState:
        now = self._clock()
        budget, period, hour = self._bounds(tenant, now)
        spent, held = self._state_row(tenant, hour, now)
        return BudgetState(tenant, budget.budget_usd if budget else None, from_nanos(spent), from_nanos(held), period)

    def spent(self, tenant: str) -> Decimal:
        """What the tenant spent in its current budget period (all time when it has no budget)."""
        return self.state(tenant).spent_usd

    def settle(self, reservation: Reservation | None, entry: Entry) -> None:
        """Record the attempt, add it to the tenant's hourly total and release its hold, atomically."""
        ts = entry.ts or self._clock()
        self._settled += 1
        if self._settled % 256 == 0:  # expired holds are already ignored; this only keeps the table small
            self._sweep(ts)
        try:
            self._insert_entry(reservation, entry, ts)
        except Exception as exc:
            if self._is_duplicate(exc):
                raise LedgerError(f"attempt {entry.attempt} of request {entry.request_id!r} is already billed") from None
            raise

    def _sweep(self, now: float) -> None:
        raise NotImplementedError

    def _is_duplicate(self, exc: Exception) -> bool:
        raise NotImplementedError

    def _insert_entry(self, reservation: Reservation | None, entry: Entry, ts: float) -> None:
        raise NotImplementedError

    def _claimable(self, row: Any, now: float) -> bool:
        """Whether a caller may take a request id whose stored (status, updated, ...) row is `row`:
        a new id, a failed request (tried again), or a pending one whose owner died."""
        return row is None or row[0] == "failed" or (row[0] == "pending" and row[1] < now - self._ttl)

    def _exceeded(self, tenant: str, amount_usd: Decimal) -> BudgetExceeded:
        state = self.state(tenant)
        return BudgetExceeded(
            f"tenant {tenant!r}: ${amount_usd} more would pass its {state.period} budget of "
            f"${state.cap_usd} (spent ${state.spent_usd}, held ${state.reserved_usd})",
            state,
            amount_usd,
        )


# One GROUP BY for reports, the same on both backends (the hour expression differs).
SPEND_SQL = (
    "SELECT tenant, {hour} AS h, tier, model, COUNT(*), SUM(CASE WHEN attempt = 1 THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), SUM(tokens_in), SUM(tokens_out),"
    " SUM(CASE WHEN outcome = 'ok' THEN tokens_in ELSE 0 END),"
    " SUM(CASE WHEN outcome = 'ok' THEN tokens_out ELSE 0 END), SUM(cost_nanos)"
    " FROM {table} WHERE ts >= {since} AND ts < {until} AND ({tenant} IS NULL OR tenant = {tenant})"
    " GROUP BY tenant, h, tier, model ORDER BY tenant, h, tier, model"
)


def spend_params(since: float | None, until: float | None, tenant: str | None) -> dict[str, Any]:
    return {"since": -1e18 if since is None else since, "until": 1e18 if until is None else until, "tenant": tenant}


def spend_row(r: Any) -> SpendRow:
    n = [int(v or 0) for v in r[4:12]]
    return SpendRow(str(r[0]), int(r[1]), str(r[2]), str(r[3]), n[0], n[1], n[2], n[3], n[4], n[5], n[6], from_nanos(n[7]))


def dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def stored(row: Any) -> StoredRequest:
    """A StoredRequest from a (status, updated, response, route) row."""
    return StoredRequest(row[0], json.loads(row[2]) if row[2] else None, json.loads(row[3]) if row[3] else None)


def entry_from_row(r: Any) -> Entry:
    return Entry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], from_nanos(r[7]), r[8], r[9], r[10], r[11])


ENTRY_COLUMNS = "request_id, attempt, tenant, tier, model, tokens_in, tokens_out, cost_nanos, latency_s, outcome, reason, ts"
