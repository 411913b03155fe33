-- Integrations: per-tenant instances of integration types (VirusTotal, Slack, ...). Secret
-- fields are one AEAD ciphertext (`secrets`, key outside the database, see
-- docs/integrations.md); `config` holds only the non-secret fields. Actions run by hand are
-- recorded in `action_executions` (and on the alert's timeline).

CREATE TABLE integrations (
    id                 BLOB PRIMARY KEY NOT NULL,
    tenant_id          BLOB NOT NULL REFERENCES tenants(id),
    type               TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT,
    config             TEXT NOT NULL DEFAULT '{}',
    secrets            TEXT,
    enabled            INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    is_default         INTEGER NOT NULL CHECK (is_default IN (0, 1)),
    enrichment         INTEGER NOT NULL CHECK (enrichment IN (0, 1)),
    health_status      TEXT CHECK (health_status IN ('ok', 'failed')),
    health_message     TEXT,
    health_checked_at  TEXT,
    health_latency_ms  INTEGER,
    created_by         TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (tenant_id, name)
) STRICT;
CREATE INDEX integrations_type ON integrations (tenant_id, type);
CREATE UNIQUE INDEX integrations_default ON integrations (tenant_id, type) WHERE is_default = 1;

CREATE TABLE action_executions (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants(id),
    alert_id        BLOB,
    integration_id  BLOB,
    action          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    input           TEXT NOT NULL,
    output          TEXT,
    error           TEXT,
    actor_kind      TEXT NOT NULL,
    actor_id        TEXT,
    actor_name      TEXT,
    started_at      TEXT NOT NULL,
    finished_at     TEXT NOT NULL,
    duration_ms     INTEGER NOT NULL
) STRICT;
CREATE INDEX action_executions_tenant ON action_executions (tenant_id, id);
CREATE INDEX action_executions_alert ON action_executions (alert_id, id) WHERE alert_id IS NOT NULL;
