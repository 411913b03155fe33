-- Webhook signatures and rate limits per API key; the dead-letter list of rejected payloads;
-- per-day ingestion counters.
ALTER TABLE api_keys ADD COLUMN signing_secret TEXT;
ALTER TABLE api_keys ADD COLUMN accept_key_signature INTEGER NOT NULL DEFAULT 0 CHECK (accept_key_signature IN (0, 1));
ALTER TABLE api_keys ADD COLUMN rate_per_second INTEGER;
ALTER TABLE api_keys ADD COLUMN rate_burst INTEGER;

CREATE TABLE dead_letters (
    id             BLOB PRIMARY KEY NOT NULL,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    source         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    detail         TEXT NOT NULL,
    payload        TEXT NOT NULL,
    payload_bytes  INTEGER NOT NULL,
    truncated      INTEGER NOT NULL CHECK (truncated IN (0, 1)),
    api_key_id     BLOB,
    request_id     TEXT,
    received_at    TEXT NOT NULL,
    replayed_at    TEXT,
    replayed_by    TEXT,
    alert_id       BLOB
) STRICT;
CREATE INDEX dead_letters_tenant ON dead_letters (tenant_id, id);

CREATE TABLE ingest_counters (
    tenant_id  BLOB NOT NULL REFERENCES tenants(id),
    source     TEXT NOT NULL,
    day        TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('accepted', 'duplicate', 'rejected')),
    reason     TEXT NOT NULL,
    count      INTEGER NOT NULL,
    last_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, source, day, outcome, reason)
) STRICT, WITHOUT ROWID;
