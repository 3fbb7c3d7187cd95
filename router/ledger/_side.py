"""Small tables beside the money, shared by instances through the ledger's database: per-minute
request counts (rate limits), counters, sessions (a conversation's tier) and the response cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from router.ledger._store import Store, render

_TPM = "tpm\x1f"  # counter names of tokens a minute (a tenant name never starts with it: no control characters)


class SideTables:
    """Rate counters, sessions and the response cache."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store, self._clock = store, clock
        self._cache_puts = 0

    def _q(self, text: str, params: Any = (), fetch: str = "") -> Any:
        return self._store.query(render(self._store, text), params, fetch)

    # ---- rate limits: requests a minute, counted in the database (the minute from its clock) ----------
    def take_request(self, tenant: str, rpm: int) -> float | None:
        """Count one request of the tenant in this minute if fewer than `rpm` were; else the seconds
        until the next minute (one atomic statement: instances never pass the limit together)."""
        minute = self._store.minute  # this minute, by the database's clock
        row = self._q(
            f"INSERT INTO {{t}}rates (tenant, minute, requests) VALUES (?, {minute}, 1) ON CONFLICT (tenant, minute)"
            " DO UPDATE SET requests = {t}rates.requests + 1 WHERE {t}rates.requests < ? RETURNING requests", (tenant, rpm), "one")
        if row is not None:
            if int(row[0]) == 1:  # a new minute: older ones are done with
                self._q(f"DELETE FROM {{t}}rates WHERE tenant = ? AND minute < {minute} - 1", (tenant,))
            return None
        now = self._q("SELECT {dbnow}", (), "one")
        return 60.0 - float(now[0]) % 60.0

    def take_tokens(self, tenant: str, tokens: int, tpm: int) -> tuple[int | None, float]:
        """Hold `tokens` of the tenant's minute (by the database's clock) if they fit under `tpm`, in
        one atomic statement: (the minute held in, 0), or (None, seconds until the next minute)."""
        minute = self._store.minute  # this minute, by the database's clock
        row = self._q(f"INSERT INTO {{t}}counters (name, span, used) SELECT ?, {minute}, ? WHERE ? <= ? ON CONFLICT (name, span)"
                      " DO UPDATE SET used = {t}counters.used + excluded.used WHERE {t}counters.used + excluded.used <= ? RETURNING span",
                      (_TPM + tenant, tokens, tokens, tpm, tpm), "one")
        if row is not None:
            return int(row[0]), 0.0
        now = self._q("SELECT {dbnow}", (), "one")
        return None, 60.0 - float(now[0]) % 60.0

    def adjust_tokens(self, tenant: str, minute: int, delta: int) -> None:
        """Correct a minute's held tokens by what was billed (delta may be negative)."""
        self._q("UPDATE {t}counters SET used = used + ? WHERE name = ? AND span = ?", (delta, _TPM + tenant, minute))

    # ---- sessions: a conversation stays on its tier, and only moves up --------------------------------
    def take_slot(self, name: str, window: int, limit: int) -> bool:
        """Take one of `limit` slots of a counter for a window (a budget period's labels): one atomic
        statement, so instances never take more than `limit` together; False when none is left."""
        row = self._q(
            "INSERT INTO {t}counters (name, span, used) VALUES (?, ?, 1) ON CONFLICT (name, span)"
            " DO UPDATE SET used = {t}counters.used + 1 WHERE {t}counters.used < ? RETURNING used", (name, window, limit), "one")
        return row is not None and int(row[0]) <= limit

    def session_level(self, tenant: str, session_id: str, ttl_s: float) -> int | None:
        """The tier index a tenant's session is on, None when it is new or idle past `ttl_s`."""
        row = self._q("SELECT level, updated FROM {t}sessions WHERE tenant = ? AND session_id = ?", (tenant, session_id), "one")
        return None if row is None or float(row[1]) < self._clock() - ttl_s else int(row[0])

    def keep_session(self, tenant: str, session_id: str, level: int, tier: str, ttl_s: float) -> None:
        """Note the tier a session's turn was answered on: the session's level rises, never falls
        (unless the session was idle past `ttl_s`: then it starts again)."""
        self._q(
            "INSERT INTO {t}sessions (tenant, session_id, level, tier, updated) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, session_id)"
            " DO UPDATE SET updated = excluded.updated, level = CASE WHEN excluded.level > {t}sessions.level OR {t}sessions.updated < ?"
            " THEN excluded.level ELSE {t}sessions.level END, tier = CASE WHEN excluded.level > {t}sessions.level OR"
            " {t}sessions.updated < ? THEN excluded.tier ELSE {t}sessions.tier END",
            (tenant, session_id, level, tier, self._clock(), self._clock() - ttl_s, self._clock() - ttl_s))

    # ---- the response cache (per tenant; see router._cache) ----------------------------------------------
    def cache_get(self, key: str, tenant: str, since: float) -> tuple[str, str, str] | None:
        """(response, route, cost) stored for the key by this tenant since `since`, else None."""
        row = self._q("SELECT response, route, cost FROM {t}response_cache WHERE key = ? AND tenant = ? AND created >= ?",
                          (key, tenant, since), "one")
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def cache_put(self, key: str, tenant: str, response: str, route: str, cost: str, now: float, max_entries: int) -> None:
        """Store an answer; now and then the tenant's oldest entries past `max_entries` go."""
        self._q("INSERT INTO {t}response_cache (key, tenant, response, route, cost, created) VALUES (?, ?, ?, ?, ?, ?)"
                              " ON CONFLICT (key) DO UPDATE SET response = excluded.response, route = excluded.route,"
                              " cost = excluded.cost, created = excluded.created", (key, tenant, response, route, cost, now))
        self._cache_puts += 1
        if self._cache_puts % 64 == 1:
            self._q("DELETE FROM {t}response_cache WHERE tenant = ? AND key NOT IN (SELECT key FROM {t}response_cache"
                                  " WHERE tenant = ? ORDER BY created DESC LIMIT ?)", (tenant, tenant, max_entries))

