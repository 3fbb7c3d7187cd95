"""The spend ledger contract, and the rules both SQL backends share.

Holds belong to an owner (one per open ledger) that beats every few seconds: a process that dies
stops beating, and its holds stop counting within `OWNER_TIMEOUT_S` instead of locking the
tenant's money until they expire. A request id is claimed per tenant with a fingerprint of what was
asked, so another tenant's id is another request, and a reused id with other messages is a
conflict, not a replay.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, tzinfo
from decimal import Decimal
from typing import Any, Protocol

from router._config import TenantBudget
from router._errors import BudgetExceeded, BudgetState, LedgerError, RequestIdConflict
from router._types import RequestStatus
from router.ledger._journal import Journal
from router.ledger._labels import Label, LabelStore, SavedModel
from router.ledger._records import (
    ENTRY_COLUMNS,
    BudgetLookup,
    Entry,
    Reservation,
    SpendRow,
    StoredAnswer,
    StoredRequest,
    dumps,
    entry_from_row,
    from_nanos,
    period_start,
    stored,
)

BEAT_S = 5.0
OWNER_TIMEOUT_S = 20.0  # four missed beats: the owner is gone, its holds and claims are free
_SETTLE_TRIES = 3
_log = logging.getLogger("tierwise")


class DuplicateEntry(LedgerError):
    """This attempt of this request is already in the ledger."""


class Ledger(Protocol):
    """Every backend keeps this contract; the contract tests run against each."""

    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation: ...

    def settle(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None = None) -> None: ...

    def state(self, tenant: str) -> BudgetState: ...

    def spent(self, tenant: str) -> Decimal: ...

    def entries(self, tenant: str | None = None) -> list[Entry]: ...

    def spend(self, since: float | None = None, until: float | None = None, tenant: str | None = None) -> list[SpendRow]: ...

    def claim_request(self, request_id: str, tenant: str, fingerprint: str | None = None) -> StoredRequest | None: ...

    def finish_request(
        self, request_id: str, status: RequestStatus, response: dict[str, Any] | None, route: dict[str, Any] | None, tenant: str = "default"
    ) -> None: ...

    def get_request(self, request_id: str, tenant: str = "default") -> StoredRequest | None: ...

    def next_attempt(self, request_id: str) -> int: ...

    def add_label(self, label: Label, now: float) -> None: ...

    def labels(self, after_id: int = 0, limit: int = 1_000_000) -> list[Label]: ...

    def label_count(self) -> int: ...

    def claim_refit(self, owner: str, now: float, every: int, ttl_s: float = 600.0) -> int | None: ...

    def release_refit(self, owner: str, labels: int) -> None: ...

    def labels_at_last_refit(self) -> int: ...

    def save_model(self, weights: dict[str, Any], thresholds: list[float], labels: int, now: float) -> None: ...

    def latest_model(self, after_id: int = 0) -> SavedModel | None: ...

    def close(self) -> None: ...


class LedgerBase(LabelStore):
    """What the SQL backends share: budgets and periods, the owner's heartbeat, the claim rule, and
    settling that retries, then journals, and never drops a bill."""

    def __init__(
        self, budgets: BudgetLookup, reservation_ttl_s: float, clock: Callable[[], float], tz: tzinfo = UTC,
        owner_timeout_s: float = OWNER_TIMEOUT_S,
    ) -> None:
        self._owner_timeout = owner_timeout_s
        self._beat_s = min(BEAT_S, owner_timeout_s / 4)
        self._budgets = budgets
        self._tz = tz
        self._ttl = reservation_ttl_s
        self._clock = clock
        self._local = threading.local()
        self._settled = 0
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None
        self._journal: Journal | None = None

    # ---- backends provide these ------------------------------------------------------------------
    _prefix = ""  # table-name prefix
    _mark = "?"  # the driver's placeholder

    def _query(self, sql: str, params: Any = (), fetch: str = "") -> Any:
        """One statement: the row (fetch="one"), the rows ("all") or the row count; driver errors as LedgerError."""
        raise NotImplementedError

    def _state_row(self, tenant: str, hour: int, now: float) -> tuple[int, int]:
        raise NotImplementedError

    def _insert_entry(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None) -> None:
        raise NotImplementedError

    # ---- statements the backends share, written once: `{t}` is the table prefix, `?` the placeholder
    def _sql(self, text: str) -> str:
        return text.replace("{t}", self._prefix).replace("?", self._mark)

    def _sweep(self, now: float) -> None:
        self._query(self._sql("DELETE FROM {t}reservations WHERE expires <= ?"), (now,))

    def _beat(self, now: float) -> None:
        self._query(self._sql("INSERT INTO {t}owners (id, beat) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET beat = excluded.beat"),
                    (self.owner, now))

    def _forget_owner(self) -> None:
        self._query(self._sql("DELETE FROM {t}owners WHERE id = ?"), (self.owner,))

    def _claim_row_sql(self) -> str:
        return self._sql("SELECT c.status, c.updated, c.response, c.route, c.fingerprint, o.beat FROM {t}claims c"
                         " LEFT JOIN {t}owners o ON o.id = c.owner WHERE c.tenant = ? AND c.request_id = ?")

    def entries(self, tenant: str | None = None) -> list[Entry]:
        sql = f"SELECT {ENTRY_COLUMNS} FROM {{t}}entries" + (" WHERE tenant = ?" if tenant else "") + " ORDER BY id"
        return [entry_from_row(r) for r in self._query(self._sql(sql), (tenant,) if tenant else (), "all")]

    def finish_request(
        self, request_id: str, status: RequestStatus, response: dict[str, Any] | None, route: dict[str, Any] | None, tenant: str = "default"
    ) -> None:
        self._query(
            self._sql("UPDATE {t}claims SET status = ?, updated = ?, response = COALESCE(?, response), route = COALESCE(?, route)"
                      " WHERE tenant = ? AND request_id = ? AND status != 'done'"),
            (status, self._clock(), dumps(response), dumps(route), tenant, request_id),
        )

    def get_request(self, request_id: str, tenant: str = "default") -> StoredRequest | None:
        row = self._query(self._claim_row_sql(), (tenant, request_id), "one")
        return None if row is None else stored(row)

    def next_attempt(self, request_id: str) -> int:
        row = self._query(self._sql("SELECT COALESCE(MAX(attempt), 0) FROM {t}entries WHERE request_id = ?"), (request_id,), "one")
        return int(row[0]) + 1

    # ---- owner -----------------------------------------------------------------------------------
    def _start(self, journal: Journal) -> None:
        """Called by a backend once its schema exists: first beat (which also proves the ledger is
        writable), replay of any journalled bills, then a beat every BEAT_S on a daemon thread."""
        self._journal = journal
        self._beat(self._clock())
        self._replay()
        self._beater = threading.Thread(target=self._beat_loop, name="tierwise-ledger-owner", daemon=True)
        self._beater.start()

    def _beat_loop(self) -> None:
        while not self._stop.wait(self._beat_s):
            try:
                self._beat(self._clock())
            except LedgerError as exc:  # the database is away: holds may lapse; requests will say so
                _log.warning("tierwise: ledger heartbeat failed: %s", exc)

    def _alive_since(self, now: float) -> float:
        return now - self._owner_timeout

    def close(self) -> None:
        self._stop.set()
        if self._beater is not None:
            self._beater.join(timeout=2)
            self._beater = None
            try:
                self._forget_owner()
            except LedgerError:
                pass

    # ---- budget ----------------------------------------------------------------------------------
    def _bounds(self, tenant: str, now: float) -> tuple[TenantBudget | None, str, int]:
        """(budget, period, first hour of the period): hourly totals bound the work to a period."""
        budget = self._budgets(tenant)
        period = budget.period if budget else "total"
        since = period_start(period, now, self._tz)
        # A zone off UTC by a part hour starts its bucket early: more spend counted, never less.
        return budget, period, -(2**62) if since == -math.inf else int(since // 3600)

    def state(self, tenant: str) -> BudgetState:
        now = self._clock()
        budget, period, hour = self._bounds(tenant, now)
        spent, held = self._state_row(tenant, hour, now)
        return BudgetState(tenant, budget.budget_usd if budget else None, from_nanos(spent), from_nanos(held), period)

    def spent(self, tenant: str) -> Decimal:
        """What the tenant spent in its current budget period (all time when it has no budget)."""
        return self.state(tenant).spent_usd

    def _exceeded(self, tenant: str, amount_usd: Decimal) -> BudgetExceeded:
        state = self.state(tenant)
        return BudgetExceeded(
            f"tenant {tenant!r}: ${amount_usd} more would pass its {state.period} budget of "
            f"${state.cap_usd} (spent ${state.spent_usd}, held ${state.reserved_usd})",
            state,
            amount_usd,
        )

    # ---- bills -----------------------------------------------------------------------------------
    def settle(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None = None) -> None:
        """Record the attempt (and the request's answer), add it to the hourly total and release its
        hold, atomically. A database failure is retried on a fresh connection; if it persists the
        bill goes to the local journal, to be replayed, and the request goes on."""
        entry = entry if entry.ts else replace(entry, ts=self._clock())
        self._settled += 1
        if self._settled % 256 == 0:  # expired holds are already ignored; this only keeps the table small
            self._sweep(entry.ts)
        for attempt in range(_SETTLE_TRIES):
            try:
                self._insert_entry(reservation, entry, answer)
                break
            except DuplicateEntry:
                raise LedgerError(f"attempt {entry.attempt} of request {entry.request_id!r} is already billed") from None
            except LedgerError as exc:
                if attempt == _SETTLE_TRIES - 1:
                    self._spill(reservation, entry, answer, exc)
                    return
                time.sleep(0.05 * 4**attempt)
        if self._journal is not None and self._journal.pending():
            self._replay()

    def _spill(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None, exc: LedgerError) -> None:
        if self._journal is None:
            raise exc
        self._journal.spill(reservation, entry, answer)
        _log.warning("tierwise: ledger write failed (%s); bill of %s attempt %d kept in %s for replay",
                     exc, entry.request_id, entry.attempt, self._journal.path)

    def _replay(self) -> None:
        assert self._journal is not None
        try:
            done = self._journal.replay(self._insert_entry, lambda exc: isinstance(exc, DuplicateEntry))
        except OSError as exc:
            _log.warning("tierwise: cannot replay the ledger journal %s: %s", self._journal.path, exc)
            return
        if done:
            _log.info("tierwise: replayed %d journalled bills into the ledger", done)

    # ---- request ids -----------------------------------------------------------------------------
    def _claimable(self, row: Any, now: float, fingerprint: str | None, request_id: str) -> bool:
        """Whether a caller may take a request id whose stored (status, updated, response, route,
        fingerprint, owner beat) row is `row`: a new id, a failed request, or a pending one whose
        owner is gone. Other content under the same id is a conflict."""
        if row is not None and fingerprint and row[4] and row[4] != fingerprint:
            raise RequestIdConflict(
                f"request id {request_id!r} was used for a different request (other messages or parameters): use a new id",
                request_id,
            )
        if row is None or row[0] == "failed":
            return True
        owner_gone = row[5] is None or row[5] < self._alive_since(now)
        return row[0] == "pending" and row[2] is None and (owner_gone or row[1] < now - self._ttl)
