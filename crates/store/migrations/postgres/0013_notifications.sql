-- Notifications: per-tenant rules (an event kind, a filter, a channel integration, templates)
-- and durable deliveries. A delivery is written in the transaction of the event that caused it
-- (with its `notification` job), rendered and sent by the integrations worker, retried with
-- backoff, and kept with its outcome: a failed delivery stays visible with its (redacted)
-- error. `dedup_key` makes scanner events (SLA warnings) idempotent per rule.

CREATE TABLE notification_rules (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    name            text NOT NULL,
    event           text NOT NULL,
    min_severity    text CHECK (min_severity IN ('critical', 'high', 'medium', 'low', 'info')),
    sla_minutes     integer,
    warn_minutes    integer,
    integration_id  uuid NOT NULL,
    title           text NOT NULL,
    template        text NOT NULL,
    enabled         boolean NOT NULL,
    created_by      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX notification_rules_event ON notification_rules (event, tenant_id) WHERE enabled;

CREATE TABLE notification_deliveries (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    rule_id          uuid,
    rule_name        text NOT NULL,
    integration_id   uuid NOT NULL,
    event            text NOT NULL,
    subject_id       text,
    dedup_key        text,
    context          jsonb NOT NULL,
    title            text,
    message          text,
    status           text NOT NULL CHECK (status IN ('queued', 'retrying', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    last_error       text,
    next_attempt_at  timestamptz,
    sent_at          timestamptz,
    is_test          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX notification_deliveries_tenant ON notification_deliveries (tenant_id, id);
CREATE INDEX notification_deliveries_status ON notification_deliveries (tenant_id, status, id);
CREATE UNIQUE INDEX notification_deliveries_dedup ON notification_deliveries (rule_id, dedup_key)
    WHERE dedup_key IS NOT NULL;
-- `/metrics` counts failed deliveries across tenants.
CREATE INDEX notification_deliveries_failed ON notification_deliveries (status) WHERE status = 'failed';
