-- Triage and incident management: the activity timeline of alerts, comments (on alerts or
-- incidents), incidents with their linked alerts, own timeline, tasks and templates,
-- tag-based access rules, and the reputation fields of observables.

CREATE TABLE alert_activities (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    alert_id    uuid NOT NULL REFERENCES alerts(id),
    kind        text NOT NULL,
    old_value   text,
    new_value   text,
    actor_kind  text NOT NULL,
    actor_id    text,
    actor_name  text,
    created_at  timestamptz NOT NULL
);
CREATE INDEX alert_activities_alert ON alert_activities (alert_id, id);

CREATE TABLE incidents (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    number       bigint NOT NULL,
    title        text NOT NULL,
    description  text,
    severity     text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    status       text NOT NULL DEFAULT 'open',
    assignee_id  uuid,
    tags         jsonb NOT NULL DEFAULT '[]',
    template_id  uuid,
    created_by   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    closed_at    timestamptz,
    deleted_at   timestamptz,
    UNIQUE (tenant_id, number)
);
CREATE INDEX incidents_tenant ON incidents (tenant_id, id);
CREATE INDEX incidents_tenant_status ON incidents (tenant_id, status, id);

CREATE TABLE incident_alerts (
    incident_id  uuid NOT NULL REFERENCES incidents(id),
    alert_id     uuid NOT NULL REFERENCES alerts(id),
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    linked_at    timestamptz NOT NULL,
    linked_by    text,
    PRIMARY KEY (incident_id, alert_id)
);
CREATE INDEX incident_alerts_alert ON incident_alerts (alert_id, incident_id);

CREATE TABLE incident_events (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    incident_id  uuid NOT NULL REFERENCES incidents(id),
    kind         text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    actor_kind   text NOT NULL,
    actor_id     text,
    actor_name   text,
    created_at   timestamptz NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);

CREATE TABLE comments (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    alert_id     uuid REFERENCES alerts(id),
    incident_id  uuid REFERENCES incidents(id),
    author_kind  text NOT NULL,
    author_id    text,
    author_name  text,
    body         text NOT NULL,
    mentions     jsonb NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL,
    edited_at    timestamptz,
    CHECK ((alert_id IS NULL) <> (incident_id IS NULL))
);
CREATE INDEX comments_alert ON comments (alert_id, id) WHERE alert_id IS NOT NULL;
CREATE INDEX comments_incident ON comments (incident_id, id) WHERE incident_id IS NOT NULL;

CREATE TABLE incident_tasks (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    incident_id   uuid NOT NULL REFERENCES incidents(id),
    title         text NOT NULL,
    description   text,
    assignee_id   uuid,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
    due_at        timestamptz,
    position      bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    completed_at  timestamptz
);
CREATE INDEX incident_tasks_incident ON incident_tasks (incident_id, position);

CREATE TABLE incident_templates (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    name         text NOT NULL,
    description  text,
    severity     text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    tags         jsonb NOT NULL DEFAULT '[]',
    tasks        jsonb NOT NULL DEFAULT '[]',
    playbooks    jsonb NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Tag-based access, per tenant. No settings row means the tenant does not restrict by tag.
CREATE TABLE tag_access_settings (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants(id),
    enabled      boolean NOT NULL,
    untagged     text NOT NULL,
    default_tag  text,
    updated_at   timestamptz NOT NULL
);
-- subject: `user:<analyst id>`, `role:<role>` or `api_key:<key id>`.
CREATE TABLE tag_access_rules (
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    subject     text NOT NULL,
    tag         text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, subject, tag)
);

ALTER TABLE observables ADD COLUMN tags jsonb NOT NULL DEFAULT '[]';
ALTER TABLE observables ADD COLUMN origin text NOT NULL DEFAULT 'alert';
ALTER TABLE observables ADD COLUMN description text;
ALTER TABLE observables ADD COLUMN reputation_score bigint;
ALTER TABLE observables ADD COLUMN verdict text;
ALTER TABLE observables ADD COLUMN enrichment jsonb;
ALTER TABLE observables ADD COLUMN enriched_at timestamptz;
CREATE INDEX observables_tenant_last_seen ON observables (tenant_id, last_seen);
CREATE INDEX observables_value ON observables (value);
