"""Labelled examples and refitted models, kept in the ledger so app instances share them.

A model is the deployment's (`models`, one refit slot) or one tenant's (`tenant_models`, a refit slot
a tenant): learning keeps tenants apart unless its config says they share. Tenant models live in
tables of their own so that a version that knows only shared models never installs one of them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from router.ledger._store import Store, render

# One feedback label per request: a later grade replaces the earlier (older ledgers keep their last).
FEEDBACK_ONCE = """
DELETE FROM {t}labels WHERE source = 'feedback' AND id NOT IN (SELECT MAX(id) FROM {t}labels WHERE source = 'feedback' GROUP BY tenant, request_id);
CREATE UNIQUE INDEX IF NOT EXISTS {t}labels_feedback ON {t}labels (tenant, request_id) WHERE source = 'feedback';
"""
# A tenant's labels, counted at each refit check; a refit slot a tenant (tenant_models: per dialect below).
TENANT_SLOTS = """
CREATE INDEX IF NOT EXISTS {t}labels_tenant ON {t}labels (tenant, id);
CREATE TABLE IF NOT EXISTS {t}tenant_refits (tenant TEXT PRIMARY KEY, owner TEXT, expires {real} NOT NULL, labels BIGINT NOT NULL);
"""
LABELS_SQLITE = """
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    outcomes TEXT NOT NULL,
    features TEXT NOT NULL,
    messages TEXT
);
CREATE TABLE IF NOT EXISTS refits (
    id INTEGER PRIMARY KEY,
    owner TEXT,
    expires REAL NOT NULL,
    labels INTEGER NOT NULL
);
""" + FEEDBACK_ONCE.format(t="") + TENANT_SLOTS.format(t="", real="REAL") + """
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    labels INTEGER NOT NULL,
    weights TEXT NOT NULL,
    thresholds TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tenant_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,
    labels INTEGER NOT NULL,
    weights TEXT NOT NULL,
    thresholds TEXT NOT NULL
);
"""
LABELS_POSTGRES = """
CREATE TABLE IF NOT EXISTS tierwise_labels (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    source TEXT NOT NULL,
    outcomes TEXT NOT NULL,
    features TEXT NOT NULL,
    messages TEXT
);
""" + FEEDBACK_ONCE.format(t="tierwise_") + TENANT_SLOTS.format(t="tierwise_", real="DOUBLE PRECISION") + """
CREATE TABLE IF NOT EXISTS tierwise_refits (
    id INTEGER PRIMARY KEY,
    owner TEXT,
    expires DOUBLE PRECISION NOT NULL,
    labels BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS tierwise_models (
    id BIGSERIAL PRIMARY KEY,
    ts DOUBLE PRECISION NOT NULL,
    labels INTEGER NOT NULL,
    weights TEXT NOT NULL,
    thresholds TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tierwise_tenant_models (
    id BIGSERIAL PRIMARY KEY,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    labels INTEGER NOT NULL,
    weights TEXT NOT NULL,
    thresholds TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Label:
    """One labelled request: per-tier quality in [0, 1] (and cost in USD where paid), with its source
    (shadow, check, feedback) and the classifier's features; the messages only when prompts are kept."""

    request_id: str
    tenant: str
    source: str
    quality: dict[str, float]
    features: dict[str, Any]
    cost_usd: dict[str, float] = field(default_factory=dict)
    messages: list[dict[str, Any]] | None = None
    ts: float = 0.0
    id: int = 0


@dataclass(frozen=True)
class SavedModel:
    """A refitted classifier (its weights file as JSON) and its thresholds, as stored for other instances."""

    id: int
    ts: float
    labels: int
    weights: dict[str, Any]
    thresholds: list[float]
    tenant: str | None = None  # the tenant it was learned for and routes; None: the deployment's


class LabelStore:
    """Labels, the refit slot and published models, over the ledger's store; built on first use,
    which only learning makes."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _q(self, text: str, params: Any = (), fetch: str = "") -> Any:
        return self._store.query(render(self._store, text), params, fetch)

    def add_label(self, label: Label, now: float) -> None:
        """Store one label."""
        outcomes = {"quality": label.quality, "cost_usd": label.cost_usd}
        # A second feedback on one request replaces the first: a caller cannot stuff the labels.
        self._q("INSERT INTO {t}labels (request_id, tenant, ts, source, outcomes, features, messages) VALUES (?, ?, ?, ?, ?, ?, ?)"
                              " ON CONFLICT (tenant, request_id) WHERE source = 'feedback' DO UPDATE SET ts = excluded.ts,"
                              " outcomes = excluded.outcomes, features = excluded.features, messages = excluded.messages",
                    (label.request_id, label.tenant, now, label.source, json.dumps(outcomes), json.dumps(label.features),
                     None if label.messages is None else json.dumps(label.messages)))

    def labels(self, after_id: int = 0, limit: int = 1_000_000, tenant: str | None = None) -> list[Label]:
        """Labels in the order they came, after `after_id` (one tenant's, when named)."""
        mine, params = _of(tenant)
        rows = self._q("SELECT id, request_id, tenant, ts, source, outcomes, features, messages FROM {t}labels"
                       f" WHERE id > ?{mine} ORDER BY id LIMIT ?", (after_id, *params, limit), "all")
        out = []
        for rid, request_id, who, ts, source, outcomes, features, messages in rows:
            o = json.loads(outcomes)
            out.append(Label(request_id, who, source, o.get("quality", {}), json.loads(features), o.get("cost_usd", {}),
                             None if messages is None else json.loads(messages), float(ts), int(rid)))
        return out

    def label_count(self, tenant: str | None = None) -> int:
        mine, params = _of(tenant)
        row = self._q(f"SELECT COUNT(*) FROM {{t}}labels WHERE id > 0{mine}", params, "one")
        return int(row[0])

    def claim_refit(self, owner: str, now: float, every: int, ttl_s: float = 600.0, tenant: str | None = None) -> int | None:
        """Take the refit slot of all instances (the deployment's, or a tenant's) when `every` labels came
        since its last refit and no other instance holds it (one conditional UPDATE: two instances never
        both win). Returns the label count the refit covers, or None."""
        count = self.label_count(tenant)
        table, key, slot = _slot(tenant)
        self._q(f"INSERT INTO {{t}}{table} ({key}, owner, expires, labels) VALUES (?, NULL, 0, 0) ON CONFLICT ({key}) DO NOTHING", (slot,))
        won = self._q(f"UPDATE {{t}}{table} SET owner = ?, expires = ? WHERE {key} = ? AND expires < ? AND ? - labels >= ?",
                      (owner, now + ttl_s, slot, now, count, every))
        return count if won == 1 else None

    def release_refit(self, owner: str, labels: int, tenant: str | None = None) -> None:
        """Free the refit slot, noting the labels the refit covered."""
        table, key, slot = _slot(tenant)
        self._q(f"UPDATE {{t}}{table} SET expires = 0, labels = ? WHERE {key} = ? AND owner = ?", (labels, slot, owner))

    def labels_at_last_refit(self, tenant: str | None = None) -> int:
        table, key, slot = _slot(tenant)
        row = self._q(f"SELECT labels FROM {{t}}{table} WHERE {key} = ?", (slot,), "one")
        return 0 if row is None else int(row[0])

    def save_model(self, weights: dict[str, Any], thresholds: list[float], labels: int, now: float, tenant: str | None = None) -> None:
        """Publish a refitted model (the deployment's, or a tenant's): every instance reading this ledger picks it up."""
        if tenant is None:
            self._q("INSERT INTO {t}models (ts, labels, weights, thresholds) VALUES (?, ?, ?, ?)",
                    (now, labels, json.dumps(weights), json.dumps(thresholds)))
        else:
            kind = str(weights.get("format") or "classifier")  # a tenant's newest of each kind is what is in force
            self._q("INSERT INTO {t}tenant_models (tenant, kind, ts, labels, weights, thresholds) VALUES (?, ?, ?, ?, ?, ?)",
                    (tenant, kind, now, labels, json.dumps(weights), json.dumps(thresholds)))

    def models(self, after_id: int = 0, limit: int = 100, tenants: bool = False) -> list[SavedModel]:
        """Published models newer than `after_id`, oldest first (classifiers and verifiers alike): the
        deployment's, or (`tenants`) each tenant's newest classifier and verifier among them, each
        naming its tenant (an instance catching up reads what is in force, not every refit since)."""
        if not tenants:
            rows = self._q("SELECT id, ts, labels, weights, thresholds FROM {t}models WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit), "all")
            return [_saved(r, None) for r in rows]
        rows = self._q("SELECT tenant, id, ts, labels, weights, thresholds FROM {t}tenant_models WHERE id IN"
                       " (SELECT MAX(id) FROM {t}tenant_models WHERE id > ? GROUP BY tenant, kind) ORDER BY id LIMIT ?", (after_id, limit), "all")
        return [_saved(r[1:], r[0]) for r in rows]

    def latest_model(self, after_id: int = 0) -> SavedModel | None:
        """The deployment's newest published model, if newer than `after_id`."""
        row = self._q("SELECT id, ts, labels, weights, thresholds FROM {t}models WHERE id > ? ORDER BY id DESC LIMIT 1",
                          (after_id,), "one")
        return None if row is None else _saved(row, None)


def _of(tenant: str | None) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause's part and parameters that keep one tenant's labels (none: every label)."""
    return ("", ()) if tenant is None else (" AND tenant = ?", (tenant,))


def _slot(tenant: str | None) -> tuple[str, str, Any]:
    """The refit slot's table, key column and key: the deployment's one row, or the tenant's."""
    return ("refits", "id", 1) if tenant is None else ("tenant_refits", "tenant", tenant)


def _saved(row: Any, tenant: str | None) -> SavedModel:
    return SavedModel(int(row[0]), float(row[1]), int(row[2]), json.loads(row[3]), [float(t) for t in json.loads(row[4])], tenant)
