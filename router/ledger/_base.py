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
import uuid
from collections.abc import Callable
from datetime import UTC, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from router._config import TenantBudget
from router._errors import AlreadyBilled, BudgetState, LedgerError, RequestIdConflict
from router._types import RequestStatus
from router.ledger._commit import GroupCommit
from router.ledger._group import Bill
from router.ledger._journal import Journal
from router.ledger._labels import Label, LabelStore, SavedModel
from router.ledger._records import (
    ENTRY_COLUMNS,
    ROLLUP_BY,
    ROLLUP_SQL,
    BudgetLookup,
    Entry,
    Reservation,
    SpendRow,
    StoredAnswer,
    StoredRequest,
    add_sums,
    dumps,
    entry_from_row,
    from_nanos,
    local_day,
    offset_segments,
    period_start,
    spend_params,
    spend_row,
    stored,
    to_nanos,
)
from router.ledger._side import SideTables

BEAT_S = 5.0
OWNER_TIMEOUT_S = 20.0  # four missed beats: the owner is gone, its holds and claims are free
_SETTLE_TRIES = 3
_log = logging.getLogger("tierwise")


class DuplicateEntry(AlreadyBilled):
    """This attempt of this request is already in the ledger (the database's unique key said so)."""


class Ledger(Protocol):
    """Every backend keeps this contract; the contract tests run against each."""

    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation: ...

    def flush(self) -> None: ...

    def settle(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None = None) -> None: ...

    def state(self, tenant: str) -> BudgetState: ...

    def spent(self, tenant: str) -> Decimal: ...

    def entries(self, tenant: str | None = None) -> list[Entry]: ...

    def spend(self, since: float | None = None, until: float | None = None, tenant: str | None = None) -> list[SpendRow]: ...

    def spend_days(self, since: float | None = None, until: float | None = None, tenant: str | None = None,
                   tz: tzinfo = UTC) -> list[tuple[Any, ...]]: ...

    def claim_request(self, request_id: str, tenant: str, fingerprint: str | None = None) -> StoredRequest | None: ...

    def finish_request(
        self, request_id: str, status: RequestStatus, response: dict[str, Any] | None, route: dict[str, Any] | None, tenant: str = "default"
    ) -> None: ...

    def get_request(self, request_id: str, tenant: str = "default") -> StoredRequest | None: ...

    def next_attempt(self, request_id: str, tenant: str = "default") -> int: ...

    def take_request(self, tenant: str, rpm: int) -> float | None: ...

    def take_slot(self, name: str, window: int, limit: int) -> bool: ...

    def session_level(self, tenant: str, session_id: str, ttl_s: float) -> int | None: ...

    def keep_session(self, tenant: str, session_id: str, level: int, tier: str, ttl_s: float) -> None: ...

    def cache_get(self, key: str, tenant: str, since: float) -> tuple[str, str, str] | None: ...

    def cache_put(self, key: str, tenant: str, response: str, route: str, cost: str, now: float, max_entries: int) -> None: ...

    def presumed_holds(self) -> list[tuple[str, str, Decimal, float | None]]: ...

    def replay_outbox(self, path: Path) -> int | None: ...

    def release_presumed(self, owner: str | None = None) -> int: ...

    def add_label(self, label: Label, now: float) -> None: ...

    def labels(self, after_id: int = 0, limit: int = 1_000_000) -> list[Label]: ...

    def label_count(self) -> int: ...

    def claim_refit(self, owner: str, now: float, every: int, ttl_s: float = 600.0) -> int | None: ...

    def release_refit(self, owner: str, labels: int) -> None: ...

    def labels_at_last_refit(self) -> int: ...

    def save_model(self, weights: dict[str, Any], thresholds: list[float], labels: int, now: float) -> None: ...

    def latest_model(self, after_id: int = 0) -> SavedModel | None: ...

    def close(self) -> None: ...


class LedgerBase(LabelStore, SideTables, GroupCommit):
    """What the SQL backends share: budgets and periods, the owner's heartbeat, the claim rule, and
    holds and bills in groups (`GroupCommit`) that never drop a bill."""

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
        self._starts: dict[tuple[str, int], int] = {}
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

    def _insert_entry(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None) -> None:
        """One bill of an older version's journal, and the hold it released."""
        self._write_batch([Bill(entry, answer, to_nanos(entry.cost_usd), None, entry.ts)], {}, 0.0)
        if reservation is not None:
            self._give_back([reservation.id])

    # ---- statements the backends share, written once: `{t}` is the table prefix, `?` the placeholder
    _dbnow = ""  # the database's own clock in epoch seconds: liveness is never a local clock compared across hosts

    def _sql(self, text: str) -> str:
        return text.replace("{t}", self._prefix).replace("{dbnow}", self._dbnow).replace("?", self._mark)

    def _sweep(self, now: float) -> None:
        # Only holds of versions without owners expire: an owner's rows count until it gives them
        # back, or, once it is dead, until its bills are replayed (they may hide answers it billed).
        self._query(self._sql("DELETE FROM {t}reservations WHERE owner IS NULL AND expires <= ?"), (now,))

    def _beat(self, now: float) -> None:
        self._query(self._sql("INSERT INTO {t}owners (id, beat) VALUES (?, {dbnow}) ON CONFLICT (id) DO UPDATE SET beat = excluded.beat"),
                    (self.owner,))

    def _forget_owner(self) -> None:
        self._query(self._sql("DELETE FROM {t}owners WHERE id = ?"), (self.owner,))

    def _forget_dead(self, owner: str) -> None:
        self._query(self._sql("DELETE FROM {t}reservations WHERE owner = ?"), (owner,))
        self._query(self._sql("DELETE FROM {t}owners WHERE id = ?"), (owner,))

    # ---- presumed spend: what dead owners held -----------------------------------------------------
    def presumed_holds(self) -> list[tuple[str, str, Decimal, float | None]]:
        """(owner, tenant, amount, seconds since its last beat or None) for each dead owner's holds:
        money counted as spent until its outbox is replayed (`replay_outbox`) or released."""
        rows = self._query(self._sql(
            "SELECT r.owner, r.tenant, SUM(r.amount_nanos), {dbnow} - MAX(o.beat) FROM {t}reservations r LEFT JOIN {t}owners o"
            f" ON o.id = r.owner WHERE r.owner IS NOT NULL AND (o.beat IS NULL OR o.beat <= {{dbnow}} - {float(self._owner_timeout)!r})"
            " GROUP BY r.owner, r.tenant ORDER BY r.tenant, r.owner"), (), "all")
        return [(str(o), str(t), from_nanos(int(n)), None if age is None else float(age)) for o, t, n, age in rows]

    def release_presumed(self, owner: str | None = None) -> int:
        """Drop dead owners' holds (one owner's, or all) without their bills: for an operator who
        knows that outbox is lost. The rows released."""
        released = 0
        for dead in {o for o, _, _, _ in self.presumed_holds() if owner in (None, o)}:
            released += int(self._query(self._sql("DELETE FROM {t}reservations WHERE owner = ?"), (dead,)))
            self._query(self._sql("DELETE FROM {t}owners WHERE id = ?"), (dead,))
        return released

    def _claim_row_sql(self) -> str:
        return self._sql("SELECT c.status, c.updated, c.response, c.route, c.fingerprint,"
                         f" CASE WHEN o.beat > {{dbnow}} - {float(self._owner_timeout)!r} THEN 1 ELSE 0 END FROM {{t}}claims c"
                         " LEFT JOIN {t}owners o ON o.id = c.owner WHERE c.tenant = ? AND c.request_id = ?")

    def entries(self, tenant: str | None = None) -> list[Entry]:
        self.flush()
        sql = f"SELECT {ENTRY_COLUMNS} FROM {{t}}entries" + (" WHERE tenant = ?" if tenant else "") + " ORDER BY id"
        return [entry_from_row(r) for r in self._query(self._sql(sql), (tenant,) if tenant else (), "all")]

    _SPEND = ""  # SPEND_SQL in the backend's dialect

    def spend(self, since: float | None = None, until: float | None = None, tenant: str | None = None) -> list[SpendRow]:
        """Spend grouped by tenant, hour, tier and model, computed in SQL: whole hours from the
        rollup, and from the entries only the parts of hours that `since` and `until` cut."""
        self.flush()
        lo = -(2**62) if since is None else math.ceil(since / 3600)
        hi = 2**62 if until is None else math.floor(until / 3600)
        rows = [spend_row(r) for r in self._query(self._sql(ROLLUP_SQL), (lo, hi, tenant, tenant), "all")] if lo < hi else []
        edges = [(since, until)] if lo > hi else [(since, lo * 3600.0), (hi * 3600.0, until)]
        for start, end in edges:
            if start is not None and end is not None and start < end:
                rows += [spend_row(r) for r in self._query(self._SPEND, spend_params(start, end, tenant), "all")]
        return sorted(rows, key=lambda r: (r.tenant, r.hour, r.tier, r.model))

    def spend_days(self, since: float | None = None, until: float | None = None, tenant: str | None = None,
                   tz: tzinfo = UTC) -> list[tuple[Any, ...]]:
        """Spend totals per tenant, day of `tz` (a day number since 1970-01-01; a zone off UTC by part
        of an hour counts each hour whole), tier and model, summed in SQL from the hourly totals in one
        scan (and, for the hours `since`/`until` cut, from the entries): plain tuples (tenant, day,
        tier, model, attempts, requests, answers, tokens in, tokens out, answer tokens in and out,
        nanos), so a report costs what it shows, not one object per hour."""
        self.flush()
        lo = -(2**62) if since is None else math.ceil(since / 3600)
        hi = 2**62 if until is None else math.floor(until / 3600)
        merged: dict[tuple[Any, ...], list[int]] = {}
        if lo < hi:
            for first, end, off in self._segments(lo, hi, tz):
                sql = ROLLUP_BY.format(day=f"(hour + {int(off)}) / 24")
                for r in self._query(self._sql(sql), (first, end, tenant, tenant), "all"):
                    add_sums(merged, tuple(r[: -8]), r[-8:])
        edges = [(since, until)] if lo > hi else [(since, lo * 3600.0), (hi * 3600.0, until)]
        for start, stop in edges:
            if start is not None and stop is not None and start < stop:
                for r in self._query(self._SPEND, spend_params(start, stop, tenant), "all"):
                    add_sums(merged, (r[0], local_day(int(r[1]), tz), r[2], r[3]), r[4:12])
        return [(*k, *v) for k, v in merged.items()]

    def _segments(self, lo: int, hi: int, tz: tzinfo) -> list[tuple[int, int, int]]:
        """The hours of the rollup in [lo, hi) cut where `tz`'s offset changes: (first, end, offset hours)."""
        row = self._query(self._sql("SELECT MIN(hour), MAX(hour) FROM {t}spend_rollup WHERE hour >= ? AND hour < ?"), (lo, hi), "one")
        if row is None or row[0] is None:
            return []
        return offset_segments(int(row[0]), int(row[1]) + 1, tz)

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

    def next_attempt(self, request_id: str, tenant: str = "default") -> int:
        self.flush()
        row = self._query(self._sql("SELECT COALESCE(MAX(attempt), 0) FROM {t}entries WHERE tenant = ? AND request_id = ?"),
                          (tenant, request_id), "one")
        return int(row[0]) + 1

    # ---- owner -----------------------------------------------------------------------------------
    def _start(self, journal: Journal, flush_s: float, durability: str = "process") -> None:
        """Called by a backend once its schema exists: first beat (which also proves the ledger is
        writable), replay of any journalled bills and stopped instances' outboxes (named after the
        journal), the committer, then a beat every BEAT_S on a daemon thread."""
        self._journal = journal
        self._beat(self._clock())
        self._replay()
        self._start_commits(str(journal.path), flush_s, sync_os=durability == "os")
        self._beater = threading.Thread(target=self._beat_loop, name="tierwise-ledger-owner", daemon=True)
        self._beater.start()

    def _beat_loop(self) -> None:
        while not self._stop.wait(self._beat_s):
            try:
                now = self._clock()
                self._beat(now)
                self._sweep(now)  # expired holds are already ignored; this only keeps the table small
                self._reap()
            except LedgerError as exc:  # the database is away: holds may lapse; requests will say so
                _log.warning("tierwise: ledger heartbeat failed: %s", exc)

    def close(self) -> None:
        """Commit what is queued, give the slices back, stop beating."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._urgent.set()  # the commit thread stops lingering
        self._flusher.join(timeout=5)
        self._close_commits()
        with self._done:  # settles still waiting: their bills were just committed (or stay on file)
            self._done.notify_all()
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
        # A period starts on a quarter hour in every zone: the start holds within one.
        key = (period, int(now // 900))
        hour = self._starts.get(key)
        if hour is None:
            since = period_start(period, now, self._tz)
            # A zone off UTC by a part hour starts its bucket early: more spend counted, never less.
            hour = self._starts[key] = -(2**62) if since == -math.inf else int(since // 3600)
            if len(self._starts) > 64:
                self._starts.clear()
        return budget, period, hour

    def _give_back(self, slice_ids: list[str], renew_until: float | None = None) -> None:
        """Delete our slices' rows (or, with `renew_until`, keep them from expiring)."""
        for slice_id in slice_ids:
            if renew_until is None:
                self._query(self._sql("DELETE FROM {t}reservations WHERE id = ?"), (slice_id,))
            else:
                self._query(self._sql("UPDATE {t}reservations SET expires = ? WHERE id = ?"), (renew_until, slice_id))

    def _replay(self) -> None:
        """Bills a failed write left in the journal of earlier versions, one by one."""
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
        owner_gone = not row[5]  # by the database's clock
        return row[0] == "pending" and row[2] is None and (owner_gone or row[1] < now - self._ttl)
