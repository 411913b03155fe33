-- Alerts, observables and their links. `normalized` keeps the whole normalized alert (hashes,
-- tags, techniques, indicators) as JSON; the hot fields are columns for filtering.
CREATE TABLE alerts (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants(id),
    source             text NOT NULL,
    source_id          text,
    fingerprint        bytea NOT NULL,
    title              text NOT NULL,
    severity           text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    severity_original  text,
    rule_name          text,
    rule_id            text,
    event_time         timestamptz,
    source_ip          text,
    dest_ip            text,
    hostname           text,
    username           text,
    status             text NOT NULL DEFAULT 'new',
    normalized         jsonb NOT NULL,
    raw_payload        text NOT NULL,
    latest_payload     text,
    duplicate_count    bigint NOT NULL DEFAULT 0,
    first_seen         timestamptz NOT NULL,
    last_seen          timestamptz NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE UNIQUE INDEX alerts_source_id ON alerts (tenant_id, source, source_id) WHERE source_id IS NOT NULL;
CREATE INDEX alerts_fingerprint ON alerts (tenant_id, fingerprint, last_seen) WHERE source_id IS NULL;
CREATE INDEX alerts_tenant ON alerts (tenant_id, id);

CREATE TABLE observables (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    kind        text NOT NULL,
    value       text NOT NULL,
    is_private  boolean NOT NULL DEFAULT false,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    sightings   bigint NOT NULL DEFAULT 1,
    UNIQUE (tenant_id, kind, value)
);

CREATE TABLE alert_observables (
    alert_id       uuid NOT NULL REFERENCES alerts(id),
    observable_id  uuid NOT NULL REFERENCES observables(id),
    PRIMARY KEY (alert_id, observable_id)
);
CREATE INDEX alert_observables_observable ON alert_observables (observable_id, alert_id);
