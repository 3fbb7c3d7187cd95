"""API keys kept in the ledger's database, so every instance sees an added or revoked key within a
second without a restart: only a key's SHA-256 digest is stored, never the key."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from router.ledger._store import Store, render

KEYS_SQL = """
CREATE TABLE IF NOT EXISTS {t}api_keys (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, created {real} NOT NULL,
    last_used {real}, expires {real}, revoked {real}, rpm INTEGER);
CREATE TABLE IF NOT EXISTS {t}tenant_budgets (tenant TEXT PRIMARY KEY, budget_usd TEXT NOT NULL, period TEXT NOT NULL, updated {real} NOT NULL);
"""


@dataclass(frozen=True)
class ApiKey:
    """A stored key: its id (shown, never secret), tenant, and limits; times in epoch seconds."""

    id: str
    tenant: str
    created: float
    last_used: float | None = None
    expires: float | None = None
    revoked: float | None = None
    rpm: int | None = None


def new_key() -> tuple[str, str, str]:
    """(key id, key, its digest): the key is tw- and 43 random URL-safe characters."""
    key = "tw-" + secrets.token_urlsafe(32)
    return "key_" + secrets.token_hex(6), key, hashlib.sha256(key.encode()).hexdigest()


def checked(tenant: Any, rpm: Any, expires: float | None, now: float) -> None:
    """What a new key may carry, for the CLI and the admin API alike; InvalidRequestError otherwise."""
    from router._config import LEARNING_TENANT
    from router._errors import InvalidRequestError
    from router._messages import check_name

    check_name("tenant", tenant)
    if any(ord(c) < 32 or ord(c) == 127 for c in tenant):
        raise InvalidRequestError("a tenant name holds no control characters")
    if tenant == LEARNING_TENANT:  # its money is the learning budget's and no rate limit applies to it
        raise InvalidRequestError(f"{LEARNING_TENANT!r} is reserved for the labels' calls: no key can name it")
    if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1):
        raise InvalidRequestError("rpm must be a whole number of 1 or more")
    if expires is not None and expires <= now:
        raise InvalidRequestError("the expiry is in the past")


def _time(value: Any) -> float | None:
    return None if value is None else float(value)


def _key(row: Any) -> ApiKey:
    return ApiKey(str(row[0]), str(row[1]), float(row[2]), _time(row[3]), _time(row[4]), _time(row[5]),
                  None if row[6] is None else int(row[6]))


class KeyStore:
    """add / list / revoke keys; `active` is what a gateway refreshes every second."""

    _COLUMNS = "id, tenant, created, last_used, expires, revoked, rpm"

    def __init__(self, store: Store) -> None:
        self._store = store

    def _q(self, text: str, params: Any = (), fetch: str = "") -> Any:
        return self._store.query(render(self._store, text), params, fetch)

    def add_key(self, key_id: str, tenant: str, digest: str, now: float, expires: float | None = None, rpm: int | None = None) -> None:
        self._q("INSERT INTO {t}api_keys (id, tenant, digest, created, expires, rpm) VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, tenant, digest, now, expires, rpm))

    def api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        return [_key(r) for r in self._q(f"SELECT {self._COLUMNS} FROM {{t}}api_keys ORDER BY created, id", (), "all")]

    def revoke_key(self, key_id: str, now: float) -> ApiKey | None:
        """Revoke a key (at once for every instance's next refresh); the key, or None when unknown."""
        self._q("UPDATE {t}api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (now, key_id))
        row = self._q(f"SELECT {self._COLUMNS} FROM {{t}}api_keys WHERE id = ?", (key_id,), "one")
        return None if row is None else _key(row)

    def active_keys(self, now: float) -> dict[str, ApiKey]:
        """Digest -> key for every key neither revoked nor expired."""
        rows = self._q(f"SELECT digest, {self._COLUMNS} FROM {{t}}api_keys WHERE revoked IS NULL AND (expires IS NULL OR expires > ?)",
                       (now,), "all")
        return {str(r[0]): _key(r[1:]) for r in rows}

    def set_budget(self, tenant: str, budget_usd: str, period: str, now: float) -> None:
        """A tenant's budget kept in the ledger (every instance applies it within a second); it
        takes the place of the config's for that tenant."""
        self._q("INSERT INTO {t}tenant_budgets (tenant, budget_usd, period, updated) VALUES (?, ?, ?, ?) ON CONFLICT (tenant)"
                " DO UPDATE SET budget_usd = excluded.budget_usd, period = excluded.period, updated = excluded.updated",
                (tenant, budget_usd, period, now))

    def budgets(self) -> dict[str, tuple[str, str]]:
        """tenant -> (budget in USD as text, period) for every tenant budget kept in the ledger."""
        return {str(t): (str(b), str(p)) for t, b, p in self._q("SELECT tenant, budget_usd, period FROM {t}tenant_budgets", (), "all")}

    def touch_keys(self, used: dict[str, float]) -> None:
        """Note when keys were last used (a gateway batches these)."""
        for key_id, at in used.items():
            self._q("UPDATE {t}api_keys SET last_used = ? WHERE id = ?", (at, key_id))
