"""The PostgreSQL ledger's schema and its hot statements, kept apart from the Python that runs them."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS tierwise_entries (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    tokens_in BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL CHECK (cost_nanos >= 0),
    latency_s DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    UNIQUE (request_id, attempt)
);
CREATE INDEX IF NOT EXISTS tierwise_entries_tenant_ts ON tierwise_entries (tenant, ts);
CREATE TABLE IF NOT EXISTS tierwise_reservations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    amount_nanos BIGINT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
ALTER TABLE tierwise_reservations ADD COLUMN IF NOT EXISTS owner TEXT;
CREATE INDEX IF NOT EXISTS tierwise_reservations_tenant ON tierwise_reservations (tenant);
CREATE TABLE IF NOT EXISTS tierwise_spend_hourly (
    tenant TEXT NOT NULL,
    hour BIGINT NOT NULL,
    nanos BIGINT NOT NULL,
    PRIMARY KEY (tenant, hour)
);
CREATE TABLE IF NOT EXISTS tierwise_owners (id TEXT PRIMARY KEY, beat DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS tierwise_claims (
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT,
    status TEXT NOT NULL,
    owner TEXT,
    updated DOUBLE PRECISION NOT NULL,
    response TEXT,
    route TEXT,
    PRIMARY KEY (tenant, request_id)
);
-- Check-and-hold in one round trip. Inside a volatile function each statement takes a fresh
-- snapshot, so the sums are read after the tenant's lock is granted: no two holds pass together.
-- A hold counts until it expires or its owner stops beating (its process died).
-- Holds skip the WAL flush (a hold lost to a server crash is one that expired early); entries,
-- which are the money, keep synchronous commits.
CREATE OR REPLACE FUNCTION tierwise_reserve(p_id TEXT, p_tenant TEXT, p_request TEXT, p_amount BIGINT,
                                            p_expires DOUBLE PRECISION, p_now DOUBLE PRECISION,
                                            p_hour BIGINT, p_cap BIGINT, p_owner TEXT, p_alive DOUBLE PRECISION) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
DECLARE granted INTEGER;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- for this transaction's commit
    IF p_cap IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant, 0));
    END IF;
    INSERT INTO tierwise_reservations (id, tenant, request_id, amount_nanos, expires, owner)
    SELECT p_id, p_tenant, p_request, p_amount, p_expires, p_owner
    WHERE p_cap IS NULL
       OR (SELECT COALESCE(SUM(nanos), 0) FROM tierwise_spend_hourly WHERE tenant = p_tenant AND hour >= p_hour)
        + (SELECT COALESCE(SUM(r.amount_nanos), 0) FROM tierwise_reservations r LEFT JOIN tierwise_owners o ON o.id = r.owner
           WHERE r.tenant = p_tenant AND r.expires > p_now AND (r.owner IS NULL OR o.beat > p_alive))
        + p_amount <= p_cap;
    GET DIAGNOSTICS granted = ROW_COUNT;
    RETURN granted = 1;
END $$;
"""

SPENT_HELD = (
    "SELECT (SELECT COALESCE(SUM(nanos), 0) FROM tierwise_spend_hourly WHERE tenant = %(t)s AND hour >= %(h)s),"
    " (SELECT COALESCE(SUM(r.amount_nanos), 0) FROM tierwise_reservations r LEFT JOIN tierwise_owners o ON o.id = r.owner"
    " WHERE r.tenant = %(t)s AND r.expires > %(now)s AND (r.owner IS NULL OR o.beat > %(alive)s))"
)

# The entry, the hourly total, the hold's release and (for a request id's answer) the stored answer:
# one statement, one transaction.
SETTLE = (
    "WITH e AS (INSERT INTO tierwise_entries (request_id, attempt, tenant, tier, model, tokens_in, tokens_out, cost_nanos,"
    " latency_s, outcome, reason, ts)"
    " VALUES (%(rq)s, %(at)s, %(t)s, %(tier)s, %(model)s, %(ti)s, %(to)s, %(c)s, %(lat)s, %(out)s, %(why)s, %(ts)s)"
    " RETURNING tenant, request_id, cost_nanos, ts),"
    " s AS (INSERT INTO tierwise_spend_hourly (tenant, hour, nanos)"
    " SELECT tenant, floor(ts / 3600)::bigint, cost_nanos FROM e"
    " ON CONFLICT (tenant, hour) DO UPDATE SET nanos = tierwise_spend_hourly.nanos + excluded.nanos),"
    " a AS (UPDATE tierwise_claims c SET status = 'done', updated = e.ts, response = %(resp)s, route = %(route)s"
    " FROM e WHERE %(answer)s AND c.tenant = e.tenant AND c.request_id = e.request_id)"
    " DELETE FROM tierwise_reservations WHERE id = %(res)s"
)
