-- Automation: playbooks and their immutable versions, runs with every action attempt, the
-- durable job queue workers claim from, human approvals, cron schedules and the leases that
-- keep singleton duties (the scheduler) on one node at a time.

CREATE TABLE playbooks (
    id           uuid PRIMARY KEY,
    -- NULL: the playbook applies to every tenant (platform admins only).
    tenant_id    uuid REFERENCES tenants(id),
    name         text NOT NULL UNIQUE,
    description  text,
    version      integer NOT NULL CHECK (version >= 1),
    enabled      boolean NOT NULL,
    priority     integer NOT NULL,
    spec         jsonb NOT NULL,
    origin       text NOT NULL CHECK (origin IN ('api', 'file')),
    file_path    text,
    created_by   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE playbook_versions (
    playbook_id  uuid NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    version      integer NOT NULL,
    spec         jsonb NOT NULL,
    source       text NOT NULL,
    source_format text NOT NULL CHECK (source_format IN ('yaml', 'json')),
    created_by   text,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (playbook_id, version)
);

CREATE TABLE playbook_runs (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants(id),
    playbook_id       uuid NOT NULL,
    playbook_name     text NOT NULL,
    playbook_version  integer NOT NULL,
    trigger           text NOT NULL,
    alert_id          uuid,
    incident_id       uuid,
    status            text NOT NULL,
    input             jsonb NOT NULL DEFAULT '{}',
    state             jsonb,
    outputs           jsonb,
    error             text,
    requested_by      text,
    created_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX playbook_runs_tenant ON playbook_runs (tenant_id, id);
CREATE INDEX playbook_runs_alert ON playbook_runs (alert_id, id) WHERE alert_id IS NOT NULL;
CREATE INDEX playbook_runs_incident ON playbook_runs (incident_id, id) WHERE incident_id IS NOT NULL;
CREATE INDEX playbook_runs_playbook ON playbook_runs (playbook_id, id);
CREATE INDEX playbook_runs_status ON playbook_runs (status, id);

-- One row per attempt of one action (and item of a for_each), written before the run moves on.
CREATE TABLE run_steps (
    id           uuid PRIMARY KEY,
    run_id       uuid NOT NULL REFERENCES playbook_runs(id),
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    ref          text NOT NULL,
    item_index   integer,
    attempt      integer NOT NULL,
    action       text NOT NULL,
    status       text NOT NULL,
    input        jsonb NOT NULL,
    output       jsonb,
    error        text,
    worker       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    duration_ms  integer NOT NULL
);
CREATE INDEX run_steps_run ON run_steps (run_id, id);

-- The durable queue. A job is ready when status = 'queued' and run_at has passed and no live
-- lease holds it; a claim sets locked_by/locked_until (the lease), heartbeats extend it, and a
-- worker that dies simply lets it lapse. Finished jobs are deleted; their history is the run.
CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL,
    tenant_id     uuid REFERENCES tenants(id),
    run_id        uuid,
    payload       jsonb NOT NULL DEFAULT '{}',
    priority      integer NOT NULL DEFAULT 100,
    status        text NOT NULL CHECK (status IN ('queued', 'parked', 'dead')),
    run_at        timestamptz NOT NULL,
    locked_by     text,
    locked_until  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL DEFAULT 5,
    last_error    text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX jobs_ready ON jobs (status, run_at) WHERE status = 'queued';
CREATE UNIQUE INDEX jobs_run ON jobs (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE approvals (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    run_id              uuid NOT NULL REFERENCES playbook_runs(id),
    step_ref            text NOT NULL,
    item_index          integer,
    playbook_name       text NOT NULL,
    message             text NOT NULL,
    alert_id            uuid,
    incident_id         uuid,
    approvers_required  integer NOT NULL,
    roles               jsonb NOT NULL DEFAULT '[]',
    on_timeout          text NOT NULL CHECK (on_timeout IN ('fail', 'escalate')),
    status              text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL,
    decided_at          timestamptz
);
CREATE INDEX approvals_tenant ON approvals (tenant_id, status, id);
CREATE INDEX approvals_pending ON approvals (expires_at) WHERE status = 'pending';
CREATE UNIQUE INDEX approvals_step ON approvals (run_id, step_ref, COALESCE(item_index, -1));

CREATE TABLE approval_decisions (
    approval_id  uuid NOT NULL REFERENCES approvals(id),
    analyst_id   uuid NOT NULL,
    username     text NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment      text,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (approval_id, analyst_id)
);

CREATE TABLE playbook_schedules (
    playbook_id    uuid NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    trigger_index  integer NOT NULL,
    cron           text NOT NULL,
    next_fire_at   timestamptz NOT NULL,
    last_fired_at  timestamptz,
    PRIMARY KEY (playbook_id, trigger_index)
);

-- Singleton duties (the scheduler, expiry of approvals, lease reaping): whoever holds an
-- unexpired lease row does the work; the others wait for it to lapse.
CREATE TABLE leases (
    name        text PRIMARY KEY NOT NULL,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL
);
