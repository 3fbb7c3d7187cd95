"""Holds taken from slices and bills committed in groups: the ledger's hot path (see `_group`).

What is durable when: a hold is in the database before the call it pays for is made. A bill is
appended to this instance's outbox file before `settle` returns (it survives the process being
killed, like SQLite's own commits in WAL mode with synchronous=NORMAL), and is committed to the
database by the commit thread with the others queued within `flush_s` (50 ms by default); a bill
that carries a request id's answer, one near the cap, or any bill when `flush_s` is 0, is committed
before `settle` returns: its caller waits for the commit thread's next group, so concurrent
settles share one transaction. With durability "os" the outbox is synced (msync) once per group,
before its transaction: a power loss can take only bills younger than `flush_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from router._config import TenantBudget
from router._errors import AlreadyBilled, BudgetExceeded, BudgetState, LedgerError
from router.ledger._group import SLACK_HOLDS, Bill, Outbox, Slices
from router.ledger._journal import Journal
from router.ledger._records import Entry, Reservation, StoredAnswer, from_nanos, to_nanos

_log = logging.getLogger("tierwise")
FLUSH_S = 0.05
_COMMIT_TRIES = 3
_IDLE_S = 0.1  # a slice unused this long goes back to the tenant
_TIDY_S = 0.1
_QUEUE_MAX = 4096  # past this many queued bills, the writer waits for their commit
_AWAIT_S = 2.0  # a settle that waits for its commit gives up after this (the bill stays queued and on file)


class GroupCommit:
    """reserve / settle / flush / state for LedgerBase; backends give `_grant` and `_write_batch`."""

    owner: str
    _clock: Callable[[], float]
    _ttl: float
    _stop: threading.Event
    _owner_timeout: float

    # ---- backends provide these ------------------------------------------------------------------
    def _grant(self, tenant: str, slice_id: str, need: int, extra: int, now: float, hour: int, cap: int, request_id: str) -> int | None:
        """Grow the slice's row by `need` if the cap allows, plus `extra` when that is at most
        1/SLACK_SHARE of what is left past `need`, atomically; the row's new amount, or None when
        `need` does not fit."""
        raise NotImplementedError

    def _write_batch(self, bills: list[Bill], shrink: dict[str, int], expires: float) -> None:
        """One transaction: the entries (an attempt already there is skipped), the answers, and each
        slice's row shrunk by what its bills cost."""
        raise NotImplementedError

    def _state_row(self, tenant: str, hour: int, now: float) -> tuple[int, int, int]:
        """(spent, held, presumed) nano-dollars: presumed is the part of held whose owner is dead."""
        raise NotImplementedError

    def _bounds(self, tenant: str, now: float) -> tuple[TenantBudget | None, str, int]:
        raise NotImplementedError

    def _give_back(self, slice_ids: list[str], renew_until: float | None = None) -> None:
        raise NotImplementedError

    def _start_commits(self, outbox_prefix: str, flush_s: float, sync_os: bool = False) -> None:
        self._flush_s = flush_s
        self._sync_os = sync_os
        self._done = threading.Condition()
        self._done_seq = 0  # every bill up to this sequence number is committed
        self._urgent = threading.Event()  # wakes the commit thread early (closing)
        self._leading = False  # a settle commits the queued group for the others waiting
        self._prefix_path = outbox_prefix
        self._slices = Slices()
        self._rows = threading.RLock()  # held while our rows in the database change, so a slice's size stays its row's amount
        self._outbox = Outbox(Path(f"{outbox_prefix}-{self.owner}.jsonl"))
        self._flush_lock = threading.Lock()
        self._tidied = self._renewed = 0.0
        self._reap()
        self._flusher = threading.Thread(target=self._flush_loop, name="tierwise-ledger-commit", daemon=True)
        self._flusher.start()

    # ---- holds ---------------------------------------------------------------------------------
    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation:
        """Hold `amount_usd` against the tenant's budget, or raise BudgetExceeded. A tenant without a
        cap has nothing to hold against: its reservation is a receipt, not a database row."""
        if amount_usd < 0:
            raise ValueError(f"a hold cannot be negative: {amount_usd}")
        now = self._clock()
        budget, _, hour = self._bounds(tenant, now)
        if budget is None:
            return Reservation("", tenant, request_id, amount_usd)
        amount = to_nanos(amount_usd)
        hold = self._slices.take(tenant, amount, now) or self._grow(tenant, request_id, amount, now, hour, to_nanos(budget.budget_usd))
        if hold is None:
            raise self._exceeded(tenant, amount_usd)
        self._outbox.hold(hold, tenant, request_id, amount, now)  # billed as spent if this process dies first
        return Reservation(hold, tenant, request_id, amount_usd)

    def _grow(self, tenant: str, request_id: str, amount: int, now: float, hour: int, cap: int) -> str | None:
        with self._rows:  # one change of our rows at a time: a slice's size stays its row's amount
            hold = self._slices.take(tenant, amount, now)  # another thread may have grown it meanwhile
            if hold is not None:
                return hold
            slice_id, need = self._slices.shortfall(tenant, amount)
            size = self._grant(tenant, slice_id, need, amount * SLACK_HOLDS, now, hour, cap, request_id)
            if size is None:
                return None
            self._slices.grown(tenant, size, need, amount * SLACK_HOLDS)  # no slack: near the cap
            return self._slices.take(tenant, amount, now)

    def _exceeded(self, tenant: str, amount_usd: Decimal) -> BudgetExceeded:
        state = self.state(tenant)
        return BudgetExceeded(
            f"tenant {tenant!r}: ${amount_usd} more would pass its {state.period} budget of "
            f"${state.cap_usd} (spent ${state.spent_usd}, held ${state.reserved_usd})",
            state,
            amount_usd,
        )

    def state(self, tenant: str) -> BudgetState:
        """Spent and held money of the tenant's current period; this instance's bills not yet
        committed count as spent, and its slice's unused part as free."""
        now = self._clock()
        budget, period, hour = self._bounds(tenant, now)
        with self._rows:
            spent, held, presumed = self._state_row(tenant, hour, now)
            slice_id, free = self._slices.free(tenant)
            waiting = self._outbox.unflushed(tenant)
        spent += sum(b.cost for b in waiting if b.ts // 3600 >= hour)
        held -= free + sum(b.cost for b in waiting if slice_id is not None and b.slice_id == slice_id)
        return BudgetState(tenant, budget.budget_usd if budget else None, from_nanos(spent), from_nanos(max(held, 0)), period,
                           from_nanos(presumed))

    def spent(self, tenant: str) -> Decimal:
        """What the tenant spent in its current budget period (all time when it has no budget)."""
        return self.state(tenant).spent_usd

    # ---- bills ---------------------------------------------------------------------------------
    def settle(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None = None) -> None:
        """Bill the attempt and release its hold (the slice keeps the cost until it is committed).
        A second bill for the same attempt is refused; a database failure keeps the bill queued and
        in the outbox file, retried until it goes in, and the request goes on."""
        ts = entry.ts or self._clock()
        cost = to_nanos(entry.cost_usd)
        slice_id = self._slices.release(reservation.id, cost) if reservation is not None and reservation.id else None
        seq = self._outbox.put(Bill(entry, answer, cost, slice_id, ts, reservation.id if reservation is not None else ""))
        if not seq:
            if slice_id is not None:
                self._slices.forget(slice_id, cost)
            raise AlreadyBilled(f"attempt {entry.attempt} of request {entry.request_id!r} of tenant {entry.tenant!r} is already billed")
        # Near the cap (or past a bill no hold covered) holds go back as they settle, as other instances expect.
        tight = self._slices.is_tight(slice_id) if slice_id is not None else self._slices.tighten(entry.tenant)
        if answer is not None or tight or self._flush_s == 0 or len(self._outbox) >= _QUEUE_MAX:
            self._await_commit(seq)

    def _await_commit(self, seq: int) -> None:
        """Return once bill `seq` is committed. Group commit with waiters: the first waiter leads and
        commits everything queued in one transaction while the others wait for it, so concurrent
        settles share a commit; a failing database keeps the bill queued (and on file) for later."""
        deadline = time.monotonic() + _AWAIT_S
        while True:
            with self._done:
                while self._leading and self._done_seq < seq and time.monotonic() < deadline:
                    self._done.wait(deadline - time.monotonic())
                if self._done_seq >= seq:
                    return
                if self._leading:  # the leader's commit is late
                    _log.warning("tierwise: ledger commit is late; the bill is kept in %s and retried", self._outbox.path)
                    return
                self._leading = True
            try:
                self._flush_or_keep()
            finally:
                with self._done:
                    self._leading = False
                    self._done.notify_all()
            if self._done_seq < seq:  # the database refused the group: the bill waits in the outbox
                return

    def _flush_or_keep(self) -> None:
        for attempt in range(_COMMIT_TRIES):
            try:
                self.flush()
                return
            except LedgerError as exc:
                if attempt == _COMMIT_TRIES - 1:
                    _log.warning("tierwise: ledger write failed (%s); the bill is kept in %s and retried", exc, self._outbox.path)
                    return
                time.sleep(0.05 * 4**attempt)

    def flush(self) -> None:
        """Commit every queued bill now (reports and `close` call this)."""
        with self._flush_lock:
            while self._commit_batch():
                pass
            self._outbox.committed()

    def _commit_batch(self) -> bool:
        """One transaction for the bills queued; False when there were none. The batch leaves the
        queue under `rows`, so `state` never sees a bill in neither the queue nor the database."""
        with self._rows:
            batch = self._outbox.take()
            if not batch:
                return False
            costs: dict[str, int] = {}
            for bill in batch:
                if bill.slice_id is not None:
                    costs[bill.slice_id] = costs.get(bill.slice_id, 0) + bill.cost
            freed = self._slices.trim()
            shrink = {k: costs.get(k, 0) + freed.get(k, 0) for k in costs.keys() | freed.keys()}
            try:
                if self._sync_os:
                    self._outbox.sync()  # once per group: a power loss takes only what came since
                self._write_batch(batch, shrink, self._clock() + self._ttl)
            except LedgerError:
                self._outbox.put_back(batch)
                raise
            self._slices.committed(costs)
        with self._done:
            self._done_seq = max(self._done_seq, batch[-1].seq)
            self._done.notify_all()
        return True

    def _flush_loop(self) -> None:
        fails = 0
        while not self._stop.is_set():
            if self._outbox.ready.wait(_TIDY_S):
                # Linger: let the batch fill. With flush_s 0 the settles commit their own groups; this
                # thread only picks up what a failing database left.
                self._urgent.wait(self._flush_s or FLUSH_S)
                self._urgent.clear()
                if self._stop.is_set():
                    break
                try:
                    self.flush()
                    fails = 0
                except LedgerError as exc:
                    fails += 1
                    _log.warning("tierwise: ledger commit failed (%s); %d bills wait in %s", exc, len(self._outbox), self._outbox.path)
                    self._back_off(min(2.0, 0.05 * 2**fails))
            self._tidy()

    def _back_off(self, seconds: float) -> None:
        """Wait before the next try at a failing database; with durability "os" the bills that keep
        coming are still synced every flush_s meanwhile."""
        step = (self._flush_s or FLUSH_S) if self._sync_os else seconds
        end = time.monotonic() + seconds
        while not self._stop.wait(min(step, max(0.0, end - time.monotonic()))) and time.monotonic() < end:
            self._outbox.sync()

    def _tidy(self) -> None:
        """Give idle slices back to their tenants and keep the rest from expiring."""
        now = self._clock()
        if now - self._tidied < _TIDY_S:
            return
        self._tidied = now
        try:
            with self._rows:
                idle = self._slices.drop_idle(now - _IDLE_S)
                if idle:
                    self._give_back(idle)
                if now - self._renewed > self._ttl / 4:
                    self._renewed = now
                    self._give_back(self._slices.ids(), renew_until=now + self._ttl)
        except LedgerError as exc:
            _log.warning("tierwise: ledger upkeep failed: %s", exc)

    def _close_commits(self) -> None:
        """Commit what is queued and give every slice back; a bill that cannot go in stays in the file."""
        self._flush_or_keep()
        try:
            with self._rows:
                self._give_back(self._slices.ids())
        except LedgerError:
            pass  # its rows lapse with this owner's heartbeat
        self._outbox.close()

    # ---- other instances' outboxes ----------------------------------------------------------------
    def _reap(self) -> None:
        """Commit the outboxes of instances on this host that stopped (an outbox's owner holds its
        lock until it exits): their bills, and their holds in flight as spent; then their rows go."""
        for path in Path(self._prefix_path).parent.glob(Path(self._prefix_path).name + "-*.jsonl"):
            if path.name != self._outbox.path.name:
                self.replay_outbox(path)

    def replay_outbox(self, path: Path) -> int | None:
        """Commit a stopped instance's outbox file (from this host, or copied from another): its bills,
        and each hold it had in flight billed at the hold; then its reservation rows are deleted, as
        everything they could hide is in the books. The number of bills, or None when its owner lives."""
        owner = path.name.rsplit("-", 1)[-1].removesuffix(".jsonl")
        now = self._clock()
        try:
            done = Journal(path).drain(lambda bills: self._write_batch(bills, {}, now), lambda: self._forget_dead(owner))
        except (LedgerError, OSError) as exc:
            _log.warning("tierwise: cannot replay the outbox %s: %s", path, exc)
            return None
        if done is not None:
            _log.info("tierwise: committed %d bills a stopped instance left in %s", done, path)
        return done

    def _forget_dead(self, owner: str) -> None:
        """A stopped owner whose outbox is committed: its rows hold nothing more."""
        raise NotImplementedError
