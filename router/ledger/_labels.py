"""Labelled examples and refitted models, kept in the ledger so app instances share them."""

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
""" + FEEDBACK_ONCE.format(t="") + """
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
""" + FEEDBACK_ONCE.format(t="tierwise_") + """
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

    def labels(self, after_id: int = 0, limit: int = 1_000_000) -> list[Label]:
        """Labels in the order they came, after `after_id`."""
        rows = self._q("SELECT id, request_id, tenant, ts, source, outcomes, features, messages FROM {t}labels"
                                     " WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit), "all")
        out = []
        for rid, request_id, tenant, ts, source, outcomes, features, messages in rows:
            o = json.loads(outcomes)
            out.append(Label(request_id, tenant, source, o.get("quality", {}), json.loads(features), o.get("cost_usd", {}),
                             None if messages is None else json.loads(messages), float(ts), int(rid)))
        return out

    def label_count(self) -> int:
        row = self._q("SELECT COUNT(*) FROM {t}labels", (), "one")
        return int(row[0])

    def claim_refit(self, owner: str, now: float, every: int, ttl_s: float = 600.0) -> int | None:
        """Take the one refit slot of all instances when `every` labels came since the last refit and no
        other instance holds it (one conditional UPDATE: two instances never both win). Returns the
        label count the refit covers, or None."""
        count = self.label_count()
        self._q("INSERT INTO {t}refits (id, owner, expires, labels) VALUES (1, NULL, 0, 0) ON CONFLICT (id) DO NOTHING")
        won = self._q("UPDATE {t}refits SET owner = ?, expires = ? WHERE id = 1 AND expires < ? AND ? - labels >= ?",
                          (owner, now + ttl_s, now, count, every))
        return count if won == 1 else None

    def release_refit(self, owner: str, labels: int) -> None:
        """Free the refit slot, noting the labels the refit covered."""
        self._q("UPDATE {t}refits SET expires = 0, labels = ? WHERE id = 1 AND owner = ?", (labels, owner))

    def labels_at_last_refit(self) -> int:
        row = self._q("SELECT labels FROM {t}refits WHERE id = 1", (), "one")
        return 0 if row is None else int(row[0])

    def save_model(self, weights: dict[str, Any], thresholds: list[float], labels: int, now: float) -> None:
        """Publish a refitted model: every instance reading this ledger picks it up."""
        self._q("INSERT INTO {t}models (ts, labels, weights, thresholds) VALUES (?, ?, ?, ?)",
                    (now, labels, json.dumps(weights), json.dumps(thresholds)))

    def models(self, after_id: int = 0, limit: int = 100) -> list[SavedModel]:
        """Published models newer than `after_id`, oldest first (classifiers and verifiers alike)."""
        rows = self._q("SELECT id, ts, labels, weights, thresholds FROM {t}models WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit), "all")
        return [SavedModel(int(r[0]), float(r[1]), int(r[2]), json.loads(r[3]), [float(t) for t in json.loads(r[4])]) for r in rows]

    def latest_model(self, after_id: int = 0) -> SavedModel | None:
        """The newest published model, if newer than `after_id`."""
        row = self._q("SELECT id, ts, labels, weights, thresholds FROM {t}models WHERE id > ? ORDER BY id DESC LIMIT 1",
                          (after_id,), "one")
        if row is None:
            return None
        return SavedModel(int(row[0]), float(row[1]), int(row[2]), json.loads(row[3]), [float(t) for t in json.loads(row[4])])
