-- Automatic enrichment: every lookup of an observable by one intel integration is cached per
-- (tenant, kind, value, integration) with a TTL; the merged reputation is kept on the
-- observable. `enrich_after` is when the observable is due again: ingestion claims a due
-- observable (sets it to a short lease) in its own upsert and queues one job for the batch,
-- so many alerts carrying one indicator at once cause one lookup.

ALTER TABLE observables ADD COLUMN enrich_after TEXT;
-- The sources of the merged reputation: [{integration_id, integration, type, verdict, score, fetched_at}].
ALTER TABLE observables ADD COLUMN reputation_sources TEXT NOT NULL DEFAULT '[]';
-- Who set verdict and score: `enrichment`, or `analyst` (then enrichment leaves them alone).
ALTER TABLE observables ADD COLUMN verdict_origin TEXT CHECK (verdict_origin IN ('enrichment', 'analyst'));

CREATE TABLE enrichment_results (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    kind             TEXT NOT NULL,
    value            TEXT NOT NULL,
    integration_id   BLOB NOT NULL,
    integration      TEXT NOT NULL,
    type             TEXT NOT NULL,
    action           TEXT NOT NULL,
    -- The last attempt: `pending` (being looked up), `ok` or `failed`.
    status           TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'failed')),
    -- The last successful lookup (kept when a refresh fails).
    verdict          TEXT CHECK (verdict IN ('malicious', 'suspicious', 'benign', 'unknown')),
    score            INTEGER,
    result           TEXT,
    fetched_at       TEXT,
    expires_at       TEXT,
    -- Failures since the last success, and when to try again.
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    -- A worker holds the lookup until then (no two lookups of one key at once).
    locked_until     TEXT,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, value, integration_id)
) STRICT;
CREATE INDEX enrichment_results_integration ON enrichment_results (integration_id);

CREATE TABLE enrichment_settings (
    tenant_id       BLOB PRIMARY KEY NOT NULL REFERENCES tenants(id),
    -- Values never sent out: IPs, CIDRs, domains (with their subdomains), or exact values.
    allow_list      TEXT NOT NULL DEFAULT '[]',
    cache_ttl_secs  INTEGER NOT NULL,
    updated_by      TEXT,
    updated_at      TEXT NOT NULL
) STRICT;
