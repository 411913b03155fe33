-- Notifications: per-tenant rules (an event kind, a filter, a channel integration, templates)
-- and durable deliveries. A delivery is written in the transaction of the event that caused it
-- (with its `notification` job), rendered and sent by the integrations worker, retried with
-- backoff, and kept with its outcome: a failed delivery stays visible with its (redacted)
-- error. `dedup_key` makes scanner events (SLA warnings) idempotent per rule.

CREATE TABLE notification_rules (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    event           TEXT NOT NULL,
    min_severity    TEXT CHECK (min_severity IN ('critical', 'high', 'medium', 'low', 'info')),
    sla_minutes     INTEGER,
    warn_minutes    INTEGER,
    integration_id  BLOB NOT NULL,
    title           TEXT NOT NULL,
    template        TEXT NOT NULL,
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_by      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (tenant_id, name)
) STRICT;
CREATE INDEX notification_rules_event ON notification_rules (event, tenant_id) WHERE enabled = 1;

CREATE TABLE notification_deliveries (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    rule_id          BLOB,
    rule_name        TEXT NOT NULL,
    integration_id   BLOB NOT NULL,
    event            TEXT NOT NULL,
    subject_id       TEXT,
    dedup_key        TEXT,
    context          TEXT NOT NULL,
    title            TEXT,
    message          TEXT,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'retrying', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    last_error       TEXT,
    next_attempt_at  TEXT,
    sent_at          TEXT,
    is_test          INTEGER NOT NULL DEFAULT 0 CHECK (is_test IN (0, 1)),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;
CREATE INDEX notification_deliveries_tenant ON notification_deliveries (tenant_id, id);
CREATE INDEX notification_deliveries_status ON notification_deliveries (tenant_id, status, id);
CREATE UNIQUE INDEX notification_deliveries_dedup ON notification_deliveries (rule_id, dedup_key)
    WHERE dedup_key IS NOT NULL;
-- `/metrics` counts failed deliveries across tenants.
CREATE INDEX notification_deliveries_failed ON notification_deliveries (status) WHERE status = 'failed';
