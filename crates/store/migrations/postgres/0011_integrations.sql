-- Integrations: per-tenant instances of integration types (VirusTotal, Slack, ...). Secret
-- fields are one AEAD ciphertext (`secrets`, key outside the database, see
-- docs/integrations.md); `config` holds only the non-secret fields. Actions run by hand are
-- recorded in `action_executions` (and on the alert's timeline).

CREATE TABLE integrations (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants(id),
    type               text NOT NULL,
    name               text NOT NULL,
    description        text,
    config             jsonb NOT NULL DEFAULT '{}',
    secrets            text,
    enabled            boolean NOT NULL,
    is_default         boolean NOT NULL,
    enrichment         boolean NOT NULL,
    health_status      text CHECK (health_status IN ('ok', 'failed')),
    health_message     text,
    health_checked_at  timestamptz,
    health_latency_ms  integer,
    created_by         text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX integrations_type ON integrations (tenant_id, type);
CREATE UNIQUE INDEX integrations_default ON integrations (tenant_id, type) WHERE is_default;

CREATE TABLE action_executions (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    alert_id        uuid,
    integration_id  uuid,
    action          text NOT NULL,
    status          text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    input           jsonb NOT NULL,
    output          jsonb,
    error           text,
    actor_kind      text NOT NULL,
    actor_id        text,
    actor_name      text,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    duration_ms     integer NOT NULL
);
CREATE INDEX action_executions_tenant ON action_executions (tenant_id, id);
CREATE INDEX action_executions_alert ON action_executions (alert_id, id) WHERE alert_id IS NOT NULL;
