-- Automatic enrichment: every lookup of an observable by one intel integration is cached per
-- (tenant, kind, value, integration) with a TTL; the merged reputation is kept on the
-- observable. `enrich_after` is when the observable is due again: ingestion claims a due
-- observable (sets it to a short lease) in its own upsert and queues one job for the batch,
-- so many alerts carrying one indicator at once cause one lookup.

ALTER TABLE observables ADD COLUMN enrich_after timestamptz;
-- The sources of the merged reputation: [{integration_id, integration, type, verdict, score, fetched_at}].
ALTER TABLE observables ADD COLUMN reputation_sources jsonb NOT NULL DEFAULT '[]';
-- Who set verdict and score: `enrichment`, or `analyst` (then enrichment leaves them alone).
ALTER TABLE observables ADD COLUMN verdict_origin text CHECK (verdict_origin IN ('enrichment', 'analyst'));

CREATE TABLE enrichment_results (
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    kind             text NOT NULL,
    value            text NOT NULL,
    integration_id   uuid NOT NULL,
    integration      text NOT NULL,
    type             text NOT NULL,
    action           text NOT NULL,
    -- The last attempt: `pending` (being looked up), `ok` or `failed`.
    status           text NOT NULL CHECK (status IN ('pending', 'ok', 'failed')),
    -- The last successful lookup (kept when a refresh fails).
    verdict          text CHECK (verdict IN ('malicious', 'suspicious', 'benign', 'unknown')),
    score            bigint,
    result           jsonb,
    fetched_at       timestamptz,
    expires_at       timestamptz,
    -- Failures since the last success, and when to try again.
    error            text,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    -- A worker holds the lookup until then (no two lookups of one key at once).
    locked_until     timestamptz,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind, value, integration_id)
);
CREATE INDEX enrichment_results_integration ON enrichment_results (integration_id);

CREATE TABLE enrichment_settings (
    tenant_id       uuid PRIMARY KEY REFERENCES tenants(id),
    -- Values never sent out: IPs, CIDRs, domains (with their subdomains), or exact values.
    allow_list      jsonb NOT NULL DEFAULT '[]',
    cache_ttl_secs  bigint NOT NULL,
    updated_by      text,
    updated_at      timestamptz NOT NULL
);
