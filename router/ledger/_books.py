"""The books of an open ledger: holds out of budget slices, bills into the outbox, the groups the
committer writes, and a tenant's state in its budget period (see `_group` for slices and outbox).

`Books` is the one owner of this instance's reservation rows: every change of them (a slice grown,
a group of bills written with the slices shrunk, idle slices given back) happens under its `_rows`
lock, so a slice's size is always its row's amount and `state` never sees a bill in neither the
outbox's queue nor the database. No other class takes that lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, tzinfo
from decimal import Decimal

from router._config import TenantBudget
from router._errors import AlreadyBilled, BudgetExceeded, BudgetState
from router.ledger._group import SLACK_HOLDS, Bill, Outbox, Slices, slice_costs
from router.ledger._records import BudgetLookup, Entry, Reservation, StoredAnswer, bill_nanos, from_nanos, period_start, to_nanos
from router.ledger._store import Grant, Store, render

_IDLE_S = 0.1  # a slice unused this long goes back to the tenant
_QUEUE_MAX = 4096  # past this many queued bills, the writer waits for their commit


class Periods:
    """A tenant's budget and the first hour of its current period (hourly totals bound the work)."""

    def __init__(self, budgets: BudgetLookup, tz: tzinfo = UTC) -> None:
        self._budgets = budgets
        self._tz = tz
        self._lock = threading.Lock()
        self._starts: dict[tuple[str, int], int] = {}

    def bounds(self, tenant: str, now: float) -> tuple[TenantBudget | None, str, int]:
        """(budget, period, first hour of the period)."""
        budget = self._budgets(tenant)
        period = budget.period if budget else "total"
        key = (period, int(now // 900))  # a period starts on a quarter hour in every zone
        hour = self._starts.get(key)  # one dict read is atomic; the lock guards the writes
        if hour is None:
            since = period_start(period, now, self._tz)
            # A zone off UTC by a part hour starts its bucket early: more spend counted, never less.
            hour = -(2**62) if since == -math.inf else int(since // 3600)
            with self._lock:
                if len(self._starts) > 64:
                    self._starts.clear()
                self._starts[key] = hour
        return budget, period, hour


class Books:
    """reserve / settle / state, and the groups of bills that `Committer` asks to be written."""

    def __init__(self, store: Store, periods: Periods, owner: str, outbox: Outbox, *, clock: Callable[[], float], ttl_s: float,
                 owner_timeout_s: float, sync_os: bool) -> None:
        self._store, self._periods, self._owner, self.outbox = store, periods, owner, outbox
        self._clock, self._ttl, self._owner_timeout, self._sync_os = clock, ttl_s, owner_timeout_s, sync_os
        self._slices = Slices()
        self._rows = threading.RLock()
        self._tidied = self._renewed = 0.0

    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation:
        """Hold `amount_usd` against the tenant's budget, or raise BudgetExceeded. A tenant without a
        cap has nothing to hold against: its reservation is a receipt, not a database row."""
        if amount_usd < 0:
            raise ValueError(f"a hold cannot be negative: {amount_usd}")
        now = self._clock()
        budget, _, hour = self._periods.bounds(tenant, now)
        if budget is None:
            return Reservation("", tenant, request_id, amount_usd)
        amount = to_nanos(amount_usd)
        hold = self._slices.take(tenant, amount, now) or self._grow(Grant(
            tenant, "", request_id, amount, amount * SLACK_HOLDS, to_nanos(budget.budget_usd), hour, now, now + self._ttl, self._owner))
        if hold is None:
            raise self._exceeded(tenant, amount_usd)
        self.outbox.hold(hold, tenant, request_id, amount, now)  # billed as spent if this process dies first
        return Reservation(hold, tenant, request_id, amount_usd)

    def _grow(self, want: Grant) -> str | None:
        with self._rows:
            hold = self._slices.take(want.tenant, want.need, want.now)  # another thread may have grown it meanwhile
            if hold is not None:
                return hold
            slice_id, need = self._slices.shortfall(want.tenant, want.need)
            size = self._store.grant(replace(want, slice_id=slice_id, need=need))
            if size is None:
                return None
            self._slices.grown(want.tenant, size, need, want.extra)  # no slack: near the cap
            return self._slices.take(want.tenant, want.need, want.now)

    def _exceeded(self, tenant: str, amount_usd: Decimal) -> BudgetExceeded:
        state = self.state(tenant)
        return BudgetExceeded(f"tenant {tenant!r}: ${amount_usd} more would pass its {state.period} budget of "
                              f"${state.cap_usd} (spent ${state.spent_usd}, held ${state.reserved_usd})", state, amount_usd)

    def state(self, tenant: str) -> BudgetState:
        """Spent and held money of the tenant's current period; this instance's bills not yet
        committed count as spent, and its slice's unused part as free."""
        now = self._clock()
        budget, period, hour = self._periods.bounds(tenant, now)
        with self._rows:
            spent, held, presumed = self._store.state_row(tenant, hour, now, self._owner_timeout)
            slice_id, free = self._slices.free(tenant)
            waiting = self.outbox.unflushed(tenant)
        spent += sum(b.cost for b in waiting if b.ts // 3600 >= hour)
        held -= free + sum(b.cost for b in waiting if slice_id is not None and b.slice_id == slice_id)
        return BudgetState(tenant, budget.budget_usd if budget else None, from_nanos(spent), from_nanos(max(held, 0)), period,
                           from_nanos(presumed))

    def settle(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None) -> tuple[int, bool]:
        """Bill the attempt and release its hold (the slice keeps the cost until it is committed):
        (the bill's place in the queue, whether its caller must wait for the commit: a stored
        answer, a slice near the cap, a full queue). A second bill for one attempt is AlreadyBilled."""
        if not (entry.cost_usd.is_finite() and entry.cost_usd >= 0):
            raise ValueError(f"a bill's cost must be a finite amount of at least $0, not {entry.cost_usd}")
        ts = entry.ts if entry.ts and math.isfinite(entry.ts) else self._clock()  # a time that is no number: billed now
        cost = bill_nanos(entry.cost_usd)
        hold = reservation.id if reservation is not None else ""
        released = self._slices.release(hold, cost) if hold else None
        slice_id = released[0] if released is not None else None
        seq = self.outbox.put(Bill(entry, answer, cost, slice_id, ts, hold))
        if not seq:
            if slice_id is not None:
                self._slices.forget(slice_id, cost)
            raise AlreadyBilled(f"attempt {entry.attempt} of request {entry.request_id!r} of tenant {entry.tenant!r} is already billed")
        # Near the cap (or past a bill no hold covered) holds go back as they settle, as other instances expect.
        tight = released[1] if released is not None else self._slices.tighten(entry.tenant)
        return seq, answer is not None or tight or len(self.outbox) >= _QUEUE_MAX

    def write_group(self) -> int | None:
        """Write the queued bills in one transaction with our slices shrunk by what they cost: the
        last sequence number written, or None when nothing was queued. A failure puts the group back."""
        with self._rows:
            batch = self.outbox.take()
            if not batch:
                return None
            costs = slice_costs(batch)
            freed = self._slices.trim()
            try:
                if self._sync_os:
                    self.outbox.sync()  # once per group: a power loss takes only what came since
                # The store shrinks each slice by its bills that go in (a group retried after a commit
                # whose answer was lost shrinks nothing twice) and by what trim freed.
                self._store.write_batch(batch, freed, self._clock() + self._ttl)
            except BaseException:
                self.outbox.put_back(batch)
                raise
            self._slices.committed(costs)
            return batch[-1].seq

    def tidy(self, min_gap_s: float) -> None:
        """Give idle slices back to their tenants and keep the rest from expiring."""
        now = self._clock()
        if now - self._tidied < min_gap_s:
            return
        self._tidied = now
        with self._rows:
            idle = self._slices.drop_idle(now - _IDLE_S)
            if idle:
                self._give_back(idle)
            if now - self._renewed > self._ttl / 4:
                self._renewed = now
                self._give_back(self._slices.ids(), renew_until=now + self._ttl)

    def give_back_all(self) -> None:
        """Every slice's row goes (closing)."""
        with self._rows:
            self._give_back(self._slices.ids())

    def _give_back(self, slice_ids: list[str], renew_until: float | None = None) -> None:
        for slice_id in slice_ids:
            if renew_until is None:
                self._store.query(render(self._store, "DELETE FROM {t}reservations WHERE id = ?"), (slice_id,))
            else:
                self._store.query(render(self._store, "UPDATE {t}reservations SET expires = ? WHERE id = ?"), (renew_until, slice_id))
