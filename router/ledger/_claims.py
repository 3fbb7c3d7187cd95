"""Request ids: claimed per tenant with a fingerprint of what was asked, so another tenant's id is
another request and a reused id with other messages is a conflict, not a replay. A claim whose
owner died (by the database's clock) or that is older than the hold lifetime can be taken again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from router._errors import RequestIdConflict
from router._types import RequestStatus
from router.ledger._owner import Owner
from router.ledger._records import StoredRequest, dumps, stored
from router.ledger._store import Store, render


class Claims:
    """claim_request / finish_request / get_request / next_attempt."""

    def __init__(self, store: Store, owner: Owner, clock: Callable[[], float], ttl_s: float, flush: Callable[[], None]) -> None:
        self._store, self._owner, self._clock, self._ttl, self._flush = store, owner, clock, ttl_s, flush
        self._row_sql = render(store, "SELECT c.status, c.updated, c.response, c.route, c.fingerprint,"
                                      f" CASE WHEN {owner.live_sql('o')} THEN 1 ELSE 0 END FROM {{t}}claims c"
                                      " LEFT JOIN {t}owners o ON o.id = c.owner WHERE c.tenant = ? AND c.request_id = ?")

    def claim_request(self, request_id: str, tenant: str, fingerprint: str | None = None) -> StoredRequest | None:
        """None when this caller now owns the request id; else what is stored for it."""
        now = self._clock()
        taken, row = self._store.claim(tenant, request_id, self._row_sql, lambda r: self._claimable(r, now, fingerprint, request_id),
                                       self._owner.id, now, fingerprint)
        return None if taken else stored(row)

    def _claimable(self, row: Any, now: float, fingerprint: str | None, request_id: str) -> bool:
        """Whether a caller may take a request id whose stored (status, updated, response, route,
        fingerprint, owner alive) row is `row`: a new id, a failed request, or a pending one whose
        owner is gone. Other content under the same id is a conflict."""
        if row is not None and fingerprint and row[4] and row[4] != fingerprint:
            raise RequestIdConflict(
                f"request id {request_id!r} was used for a different request (other messages or parameters): use a new id",
                request_id,
            )
        if row is None or row[0] == "failed":
            return True
        owner_gone = not row[5]  # by the database's clock
        return bool(row[0] == "pending" and row[2] is None and (owner_gone or row[1] < now - self._ttl))

    def finish_request(self, request_id: str, status: RequestStatus, response: dict[str, Any] | None, route: dict[str, Any] | None,
                       tenant: str = "default") -> None:
        self._store.query(
            render(self._store, "UPDATE {t}claims SET status = ?, updated = ?, response = COALESCE(?, response),"
                                " route = COALESCE(?, route) WHERE tenant = ? AND request_id = ? AND status != 'done'"),
            (status, self._clock(), dumps(response), dumps(route), tenant, request_id),
        )

    def get_request(self, request_id: str, tenant: str = "default") -> StoredRequest | None:
        row = self._store.query(self._row_sql, (tenant, request_id), "one")
        return None if row is None else stored(row)

    def next_attempt(self, request_id: str, tenant: str = "default") -> int:
        self._flush()
        row = self._store.query(render(self._store, "SELECT COALESCE(MAX(attempt), 0) FROM {t}entries WHERE tenant = ? AND request_id = ?"),
                                (tenant, request_id), "one")
        return int(row[0]) + 1
