-- Alerts, observables and their links. `normalized` keeps the whole normalized alert (hashes,
-- tags, techniques, indicators) as JSON; the hot fields are columns for filtering.
CREATE TABLE alerts (
    id                 BLOB PRIMARY KEY NOT NULL,
    tenant_id          BLOB NOT NULL REFERENCES tenants(id),
    source             TEXT NOT NULL,
    source_id          TEXT,
    fingerprint        BLOB NOT NULL,
    title              TEXT NOT NULL,
    severity           TEXT NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    severity_original  TEXT,
    rule_name          TEXT,
    rule_id            TEXT,
    event_time         TEXT,
    source_ip          TEXT,
    dest_ip            TEXT,
    hostname           TEXT,
    username           TEXT,
    status             TEXT NOT NULL DEFAULT 'new',
    normalized         TEXT NOT NULL,
    raw_payload        TEXT NOT NULL,
    latest_payload     TEXT,
    duplicate_count    INTEGER NOT NULL DEFAULT 0,
    first_seen         TEXT NOT NULL,
    last_seen          TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX alerts_source_id ON alerts (tenant_id, source, source_id) WHERE source_id IS NOT NULL;
CREATE INDEX alerts_fingerprint ON alerts (tenant_id, fingerprint, last_seen) WHERE source_id IS NULL;
CREATE INDEX alerts_tenant ON alerts (tenant_id, id);

CREATE TABLE observables (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    is_private  INTEGER NOT NULL DEFAULT 0,
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    sightings   INTEGER NOT NULL DEFAULT 1,
    UNIQUE (tenant_id, kind, value)
) STRICT;

CREATE TABLE alert_observables (
    alert_id       BLOB NOT NULL REFERENCES alerts(id),
    observable_id  BLOB NOT NULL REFERENCES observables(id),
    PRIMARY KEY (alert_id, observable_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX alert_observables_observable ON alert_observables (observable_id, alert_id);
