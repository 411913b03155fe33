-- Triage and incident management: the activity timeline of alerts, comments (on alerts or
-- incidents), incidents with their linked alerts, own timeline, tasks and templates,
-- tag-based access rules, and the reputation fields of observables.

CREATE TABLE alert_activities (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    alert_id    BLOB NOT NULL REFERENCES alerts(id),
    kind        TEXT NOT NULL,
    old_value   TEXT,
    new_value   TEXT,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX alert_activities_alert ON alert_activities (alert_id, id);

CREATE TABLE incidents (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    number       INTEGER NOT NULL,
    title        TEXT NOT NULL,
    description  TEXT,
    severity     TEXT NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    status       TEXT NOT NULL DEFAULT 'open',
    assignee_id  BLOB,
    tags         TEXT NOT NULL DEFAULT '[]',
    template_id  BLOB,
    created_by   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    closed_at    TEXT,
    deleted_at   TEXT,
    UNIQUE (tenant_id, number)
);
CREATE INDEX incidents_tenant ON incidents (tenant_id, id);
CREATE INDEX incidents_tenant_status ON incidents (tenant_id, status, id);

CREATE TABLE incident_alerts (
    incident_id  BLOB NOT NULL REFERENCES incidents(id),
    alert_id     BLOB NOT NULL REFERENCES alerts(id),
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    linked_at    TEXT NOT NULL,
    linked_by    TEXT,
    PRIMARY KEY (incident_id, alert_id)
);
CREATE INDEX incident_alerts_alert ON incident_alerts (alert_id, incident_id);

CREATE TABLE incident_events (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    incident_id  BLOB NOT NULL REFERENCES incidents(id),
    kind         TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}',
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT,
    actor_name   TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);

CREATE TABLE comments (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    alert_id     BLOB REFERENCES alerts(id),
    incident_id  BLOB REFERENCES incidents(id),
    author_kind  TEXT NOT NULL,
    author_id    TEXT,
    author_name  TEXT,
    body         TEXT NOT NULL,
    mentions     TEXT NOT NULL DEFAULT '[]',
    created_at   TEXT NOT NULL,
    edited_at    TEXT,
    CHECK ((alert_id IS NULL) <> (incident_id IS NULL))
);
CREATE INDEX comments_alert ON comments (alert_id, id) WHERE alert_id IS NOT NULL;
CREATE INDEX comments_incident ON comments (incident_id, id) WHERE incident_id IS NOT NULL;

CREATE TABLE incident_tasks (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    incident_id   BLOB NOT NULL REFERENCES incidents(id),
    title         TEXT NOT NULL,
    description   TEXT,
    assignee_id   BLOB,
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
    due_at        TEXT,
    position      INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    completed_at  TEXT
);
CREATE INDEX incident_tasks_incident ON incident_tasks (incident_id, position);

CREATE TABLE incident_templates (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    description  TEXT,
    severity     TEXT NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    tags         TEXT NOT NULL DEFAULT '[]',
    tasks        TEXT NOT NULL DEFAULT '[]',
    playbooks    TEXT NOT NULL DEFAULT '[]',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Tag-based access, per tenant. No settings row means the tenant does not restrict by tag.
CREATE TABLE tag_access_settings (
    tenant_id    BLOB PRIMARY KEY NOT NULL REFERENCES tenants(id),
    enabled      INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    untagged     TEXT NOT NULL,
    default_tag  TEXT,
    updated_at   TEXT NOT NULL
);
-- subject: `user:<analyst id>`, `role:<role>` or `api_key:<key id>`.
CREATE TABLE tag_access_rules (
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    subject     TEXT NOT NULL,
    tag         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, subject, tag)
);

ALTER TABLE observables ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE observables ADD COLUMN origin TEXT NOT NULL DEFAULT 'alert';
ALTER TABLE observables ADD COLUMN description TEXT;
ALTER TABLE observables ADD COLUMN reputation_score INTEGER;
ALTER TABLE observables ADD COLUMN verdict TEXT;
ALTER TABLE observables ADD COLUMN enrichment TEXT;
ALTER TABLE observables ADD COLUMN enriched_at TEXT;
CREATE INDEX observables_tenant_last_seen ON observables (tenant_id, last_seen);
CREATE INDEX observables_value ON observables (value);
