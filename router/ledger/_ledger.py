"""The ledger a caller opens: owners composed over one store, each with its own state and locks.

    Owner      heartbeat, presumed holds of dead owners          (_owner)
    Replays    stopped owners' outboxes, older journals          (_replay)
    Books      holds, slices, bills, budget periods, state       (_books)
    Committer  when queued bills go in; settles that wait         (_commit)
    Claims     request ids and their stored answers              (_claims)
    Reports    entries and spend totals                          (_reports)
    SideTables rates, counters, sessions, response cache         (_side)
    LabelStore labels and models, built on first use (learning)  (_labels)
    KeyStore   API keys by digest, shared by gateways            (_keys)

This class only wires them and passes calls through; it holds no lock of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, tzinfo
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

from router._errors import BudgetState
from router._types import RequestStatus
from router.ledger._books import Books, Periods
from router.ledger._budgets import Budgets
from router.ledger._claims import Claims
from router.ledger._commit import Committer
from router.ledger._group import Outbox
from router.ledger._journal import Journal
from router.ledger._keys import KeyStore
from router.ledger._labels import Label, LabelStore, SavedModel
from router.ledger._owner import Owner
from router.ledger._records import BudgetLookup, Entry, Reservation, SpendRow, StoredAnswer, StoredRequest
from router.ledger._replay import Replays
from router.ledger._reports import Reports
from router.ledger._side import SideTables
from router.ledger._store import Store


class SQLLedger:
    """The spend ledger over a SQLite or PostgreSQL store (see `router.ledger.Ledger`)."""

    def __init__(self, store: Store, journal: Journal, budgets: BudgetLookup, *, clock: Callable[[], float], tz: tzinfo = UTC,
                 reservation_ttl_s: float = 600.0, owner_timeout_s: float, flush_s: float, durability: str = "process") -> None:
        self._store = store
        self._owner = Owner(store, clock, owner_timeout_s)
        self._owner.beat()  # proves the ledger writable before anything else
        outbox = Outbox(Path(f"{journal.path}-{self._owner.id}.jsonl"))
        self._replays = Replays(store, self._owner.forget_dead, clock, str(journal.path), outbox.path)
        self._replays.journal(journal)
        self._replays.reap()
        self.keys = KeyStore(store)  # API keys and tenants' budgets: their own owner, reached as ledger.keys
        self.budget_for = Budgets(self.keys, budgets)  # a budget kept in the ledger, else the config's
        self._books = Books(store, Periods(self.budget_for, tz), self._owner.id, outbox, clock=clock, ttl_s=reservation_ttl_s,
                            owner_timeout_s=owner_timeout_s, sync_os=durability == "os")
        self._committer = Committer(self._books, flush_s, sync_os=durability == "os")
        self._claims = Claims(store, self._owner, clock, reservation_ttl_s, self._committer.flush)
        self._reports = Reports(store, self._committer.flush)
        self._side = SideTables(store, clock)
        self._closed = False
        self._committer.start()
        self._owner.start(upkeep=self._replays.reap)

    @cached_property
    def _labels(self) -> LabelStore:
        return LabelStore(self._store)

    # ---- money ---------------------------------------------------------------------------------
    def reserve(self, tenant: str, request_id: str, amount_usd: Decimal) -> Reservation:
        return self._books.reserve(tenant, request_id, amount_usd)

    def settle(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None = None) -> None:
        if (seq := self.settle_later(reservation, entry, answer)) is not None:
            self._committer.await_commit(seq)

    def settle_later(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None = None) -> int | None:
        seq, urgent = self._books.settle(reservation, entry, answer)
        return seq if self._committer.must_wait(urgent) else None

    def await_commit(self, seq: int) -> None:
        self._committer.await_commit(seq)

    def flush(self) -> None:
        self._committer.flush()

    def state(self, tenant: str) -> BudgetState:
        return self._books.state(tenant)

    def spent(self, tenant: str) -> Decimal:  # in the current budget period (all time without a budget)
        return self._books.state(tenant).spent_usd

    def presumed_holds(self) -> list[tuple[str, str, Decimal, float | None]]:
        return self._owner.presumed_holds()

    def release_presumed(self, owner: str | None = None) -> int:
        return self._owner.release_presumed(owner)

    def replay_outbox(self, path: Path) -> int | None:
        return self._replays.outbox(path)

    # ---- reports -------------------------------------------------------------------------------
    def entries(self, tenant: str | None = None) -> list[Entry]:
        return self._reports.entries(tenant)

    def spend(self, since: float | None = None, until: float | None = None, tenant: str | None = None) -> list[SpendRow]:
        return self._reports.spend(since, until, tenant)

    def spend_days(self, since: float | None = None, until: float | None = None, tenant: str | None = None,
                   tz: tzinfo = UTC) -> list[tuple[Any, ...]]:
        return self._reports.spend_days(since, until, tenant, tz)

    def spent_since(self, hour: int) -> dict[str, int]:
        return self._reports.spent_since(hour)

    # ---- request ids ---------------------------------------------------------------------------
    def claim_request(self, request_id: str, tenant: str, fingerprint: str | None = None) -> StoredRequest | None:
        return self._claims.claim_request(request_id, tenant, fingerprint)

    def finish_request(self, request_id: str, status: RequestStatus, response: dict[str, Any] | None, route: dict[str, Any] | None,
                       tenant: str = "default") -> None:
        self._claims.finish_request(request_id, status, response, route, tenant)

    def get_request(self, request_id: str, tenant: str = "default") -> StoredRequest | None:
        return self._claims.get_request(request_id, tenant)

    def next_attempt(self, request_id: str, tenant: str = "default") -> int:
        return self._claims.next_attempt(request_id, tenant)

    # ---- side tables ---------------------------------------------------------------------------
    def take_request(self, tenant: str, rpm: int) -> float | None:
        return self._side.take_request(tenant, rpm)

    def take_tokens(self, tenant: str, tokens: int, tpm: int) -> tuple[int | None, float]:
        return self._side.take_tokens(tenant, tokens, tpm)

    def adjust_tokens(self, tenant: str, minute: int, delta: int) -> None:
        self._side.adjust_tokens(tenant, minute, delta)

    def take_slot(self, name: str, window: int, limit: int) -> bool:
        return self._side.take_slot(name, window, limit)

    def session_level(self, tenant: str, session_id: str, ttl_s: float) -> int | None:
        return self._side.session_level(tenant, session_id, ttl_s)

    def keep_session(self, tenant: str, session_id: str, level: int, tier: str, ttl_s: float) -> None:
        self._side.keep_session(tenant, session_id, level, tier, ttl_s)

    def cache_get(self, key: str, tenant: str, since: float) -> tuple[str, str, str] | None:
        return self._side.cache_get(key, tenant, since)

    def cache_put(self, key: str, tenant: str, response: str, route: str, cost: str, now: float, max_entries: int) -> None:
        self._side.cache_put(key, tenant, response, route, cost, now, max_entries)

    # ---- learning ------------------------------------------------------------------------------
    def add_label(self, label: Label, now: float) -> None:
        self._labels.add_label(label, now)

    def labels(self, after_id: int = 0, limit: int = 1_000_000, tenant: str | None = None) -> list[Label]:
        return self._labels.labels(after_id, limit, tenant)

    def label_count(self, tenant: str | None = None) -> int:
        return self._labels.label_count(tenant)

    def claim_refit(self, owner: str, now: float, every: int, ttl_s: float = 600.0, tenant: str | None = None) -> int | None:
        return self._labels.claim_refit(owner, now, every, ttl_s, tenant)

    def release_refit(self, owner: str, labels: int, tenant: str | None = None) -> None:
        self._labels.release_refit(owner, labels, tenant)

    def labels_at_last_refit(self, tenant: str | None = None) -> int:
        return self._labels.labels_at_last_refit(tenant)

    def save_model(self, weights: dict[str, Any], thresholds: list[float], labels: int, now: float, tenant: str | None = None) -> None:
        self._labels.save_model(weights, thresholds, labels, now, tenant)

    def latest_model(self, after_id: int = 0) -> SavedModel | None:
        return self._labels.latest_model(after_id)

    def models(self, after_id: int = 0, limit: int = 100, tenants: bool = False) -> list[SavedModel]:
        return self._labels.models(after_id, limit, tenants)

    def close(self) -> None:
        """Commit what is queued, give the slices back, stop beating, close the store."""
        if self._closed:
            return
        self._closed = True
        self._committer.close()
        self._owner.stop()
        self._store.close()
