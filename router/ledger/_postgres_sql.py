"""The PostgreSQL ledger's schema and its hot statements, kept apart from the Python that runs them."""

from __future__ import annotations

from router.ledger._records import ENTRY_COLUMNS, ENTRY_FIELDS, ROLLUP_TABLE, entry_select

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
    ts DOUBLE PRECISION NOT NULL
);
ALTER TABLE tierwise_entries ADD COLUMN IF NOT EXISTS cached_in BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tierwise_entries ADD COLUMN IF NOT EXISTS in_session BIGINT NOT NULL DEFAULT 0;
-- Bills are unique per tenant, request id and attempt: another tenant's id is another request.
ALTER TABLE tierwise_entries DROP CONSTRAINT IF EXISTS tierwise_entries_request_id_attempt_key;
CREATE UNIQUE INDEX IF NOT EXISTS tierwise_entries_key ON tierwise_entries (tenant, request_id, attempt);
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
CREATE INDEX IF NOT EXISTS tierwise_entries_ts ON tierwise_entries (ts);
CREATE TABLE IF NOT EXISTS tierwise_owners (id TEXT PRIMARY KEY, beat DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS tierwise_response_cache (key TEXT PRIMARY KEY, tenant TEXT NOT NULL, response TEXT NOT NULL,
    route TEXT NOT NULL, cost TEXT NOT NULL, created DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS tierwise_response_cache_tenant ON tierwise_response_cache (tenant, created);
CREATE TABLE IF NOT EXISTS tierwise_rates (tenant TEXT NOT NULL, minute BIGINT NOT NULL, requests INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute));
CREATE TABLE IF NOT EXISTS tierwise_counters (name TEXT NOT NULL, span BIGINT NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (name, span));
CREATE TABLE IF NOT EXISTS tierwise_sessions (tenant TEXT NOT NULL, session_id TEXT NOT NULL, level INTEGER NOT NULL,
    tier TEXT NOT NULL, updated DOUBLE PRECISION NOT NULL, PRIMARY KEY (tenant, session_id));
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
-- Grow a slice: check-and-grow in one round trip, under the tenant's lock. Inside a volatile
-- function each statement takes a fresh snapshot, so the sums are read after the lock is granted:
-- no two grants pass together. Only growths take the lock; holds come out of the slice in memory.
-- A hold counts until it expires or its owner stops beating (its process died).
-- Holds skip the WAL flush (a hold lost to a server crash is one that expired early); entries,
-- which are the money, keep synchronous commits.
CREATE OR REPLACE FUNCTION tierwise_grant(p_id TEXT, p_tenant TEXT, p_request TEXT, p_need BIGINT, p_extra BIGINT,
                                          p_expires DOUBLE PRECISION, p_now DOUBLE PRECISION, p_hour BIGINT, p_cap BIGINT,
                                          p_owner TEXT, p_alive DOUBLE PRECISION, p_share BIGINT) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE lft BIGINT; size BIGINT;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- for this transaction's commit
    PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant, 0));
    -- An owner's hold counts until it is given back or its bills are replayed, alive or dead;
    -- a hold of a version without owners counts until it expires. (p_alive is no longer read.)
    lft := p_cap
        - (SELECT COALESCE(SUM(nanos), 0) FROM tierwise_spend_rollup WHERE tenant = p_tenant AND hour >= p_hour)
        - (SELECT COALESCE(SUM(amount_nanos), 0) FROM tierwise_reservations
           WHERE tenant = p_tenant AND (owner IS NOT NULL OR expires > p_now));
    IF lft < p_need THEN
        RETURN NULL;
    END IF;
    INSERT INTO tierwise_reservations AS r (id, tenant, request_id, amount_nanos, expires, owner)
    VALUES (p_id, p_tenant, p_request, p_need + (CASE WHEN p_extra * p_share <= lft - p_need THEN p_extra ELSE 0 END), p_expires, p_owner)
    ON CONFLICT (id) DO UPDATE SET amount_nanos = r.amount_nanos + excluded.amount_nanos, expires = excluded.expires
    RETURNING r.amount_nanos INTO size;
    RETURN size;
END $$;
"""

# Totals per tenant, hour, tier and model, kept in step with the entries by a statement trigger
# (one upsert per batch, rows in key order so concurrent batches cannot deadlock). Made once, and
# filled from the entries of a ledger made before it.
ROLLUP = ROLLUP_TABLE.format(t="tierwise_", int="BIGINT") + """
CREATE OR REPLACE FUNCTION tierwise_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tierwise_spend_rollup AS r
    SELECT tenant, floor(ts / 3600)::bigint, tier, model, COUNT(*), SUM(CASE WHEN attempt = 1 THEN 1 ELSE 0 END),
        SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), SUM(tokens_in), SUM(tokens_out),
        SUM(CASE WHEN outcome = 'ok' THEN tokens_in ELSE 0 END), SUM(CASE WHEN outcome = 'ok' THEN tokens_out ELSE 0 END),
        SUM(cost_nanos)
    FROM new_entries GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant, hour, tier, model) DO UPDATE SET attempts = r.attempts + excluded.attempts,
        requests = r.requests + excluded.requests, answers = r.answers + excluded.answers,
        tokens_in = r.tokens_in + excluded.tokens_in, tokens_out = r.tokens_out + excluded.tokens_out,
        answer_tokens_in = r.answer_tokens_in + excluded.answer_tokens_in,
        answer_tokens_out = r.answer_tokens_out + excluded.answer_tokens_out, nanos = r.nanos + excluded.nanos;
    RETURN NULL;
END $$;
INSERT INTO tierwise_spend_rollup
SELECT tenant, floor(ts / 3600)::bigint, tier, model, COUNT(*), SUM(CASE WHEN attempt = 1 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), SUM(tokens_in), SUM(tokens_out),
    SUM(CASE WHEN outcome = 'ok' THEN tokens_in ELSE 0 END), SUM(CASE WHEN outcome = 'ok' THEN tokens_out ELSE 0 END), SUM(cost_nanos)
FROM tierwise_entries GROUP BY 1, 2, 3, 4;
CREATE TRIGGER tierwise_entries_rollup AFTER INSERT ON tierwise_entries REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION tierwise_rollup();
DROP TABLE IF EXISTS tierwise_spend_hourly;
DROP FUNCTION IF EXISTS tierwise_reserve;
"""

DBNOW = "extract(epoch from clock_timestamp())::float8"
# Spent, held (live and presumed) and presumed: the holds of owners dead by the server's clock.
SPENT_HELD = (
    "SELECT (SELECT COALESCE(SUM(nanos), 0) FROM tierwise_spend_rollup WHERE tenant = %(t)s AND hour >= %(h)s),"
    " (SELECT COALESCE(SUM(amount_nanos), 0) FROM tierwise_reservations WHERE tenant = %(t)s AND (owner IS NOT NULL OR expires > %(now)s)),"
    " (SELECT COALESCE(SUM(r.amount_nanos), 0) FROM tierwise_reservations r LEFT JOIN tierwise_owners o ON o.id = r.owner"
    f" WHERE r.tenant = %(t)s AND r.owner IS NOT NULL AND (o.beat IS NULL OR o.beat <= {DBNOW} - %(timeout)s))"
)

# A group of bills in one statement, so one round trip that commits on its own (autocommit): the
# entries over one JSON parameter the server parses (see `entry_select`; an attempt already billed is
# skipped), the answers they carry, and the slices shrunk by what they cost and by the unused parts
# given back (`shrink`, summed by the caller). The trigger sees the entries that went in; it all
# commits together or not at all.
_ENTRIES = (f"WITH entries AS (INSERT INTO tierwise_entries ({ENTRY_COLUMNS}) SELECT"
            f" {entry_select({'str': 'e->>{i}', 'int': '(e->>{i})::bigint', 'float': '(e->>{i})::float8'})}"
            " FROM json_array_elements(%(batch)s::json) AS b(e) ON CONFLICT (tenant, request_id, attempt) DO NOTHING"
            " RETURNING {went_in}),"
            " answers AS (UPDATE tierwise_claims c SET status = 'done', updated = (a->>0)::float8, response = a->>1, route = a->>2"
            " FROM json_array_elements(%(answers)s::json) AS n(a) WHERE c.tenant = a->>3 AND c.request_id = a->>4 RETURNING 1),")
_SHRINK = (" slices AS (UPDATE tierwise_reservations r SET amount_nanos = r.amount_nanos - x.nanos, expires = %(expires)s"
           " FROM ({used}) x WHERE r.id = x.id RETURNING 1)"
           " SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM answers), (SELECT count(*) FROM slices)")
WRITE_GROUP = _ENTRIES.format(went_in="1") + _SHRINK.format(
    used="SELECT key AS id, value::bigint AS nanos FROM json_each_text(%(shrink)s::json)")
# A group holding bills put back after a failed write, whose commit may have gone in with its answer
# lost: each slice shrinks by its bills that went in now (and the unused parts), never twice.
_T, _R, _A = (f"b.e->>{ENTRY_FIELDS.index(name)}" for name in ("tenant", "request_id", "attempt"))
_COST, _SLICE = f"(b.e->>{len(ENTRY_FIELDS)})::bigint", f"b.e->>{len(ENTRY_FIELDS) + 1}"
WRITE_RETRIED_GROUP = _ENTRIES.format(went_in="tenant, request_id, attempt") + _SHRINK.format(used=(
    f"SELECT id, SUM(nanos) AS nanos FROM (SELECT {_SLICE} AS id, {_COST} AS nanos FROM json_array_elements(%(batch)s::json) AS b(e)"
    f" JOIN entries i ON i.tenant = {_T} AND i.request_id = {_R} AND i.attempt = ({_A})::int WHERE {_SLICE} IS NOT NULL"
    " UNION ALL SELECT key, value::bigint FROM json_each_text(%(freed)s::json)) u GROUP BY id"))
