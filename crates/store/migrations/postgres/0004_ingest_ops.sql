-- Webhook signatures and rate limits per API key; the dead-letter list of rejected payloads;
-- per-day ingestion counters.
ALTER TABLE api_keys ADD COLUMN signing_secret text;
ALTER TABLE api_keys ADD COLUMN accept_key_signature boolean NOT NULL DEFAULT false;
ALTER TABLE api_keys ADD COLUMN rate_per_second bigint;
ALTER TABLE api_keys ADD COLUMN rate_burst bigint;

CREATE TABLE dead_letters (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    source         text NOT NULL,
    reason         text NOT NULL,
    detail         text NOT NULL,
    payload        text NOT NULL,
    payload_bytes  bigint NOT NULL,
    truncated      boolean NOT NULL,
    api_key_id     uuid,
    request_id     text,
    received_at    timestamptz NOT NULL,
    replayed_at    timestamptz,
    replayed_by    text,
    alert_id       uuid
);
CREATE INDEX dead_letters_tenant ON dead_letters (tenant_id, id);

CREATE TABLE ingest_counters (
    tenant_id  uuid NOT NULL REFERENCES tenants(id),
    source     text NOT NULL,
    day        date NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('accepted', 'duplicate', 'rejected')),
    reason     text NOT NULL,
    count      bigint NOT NULL,
    last_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, source, day, outcome, reason)
);
