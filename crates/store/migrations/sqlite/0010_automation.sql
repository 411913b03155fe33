-- Automation: playbooks and their immutable versions, runs with every action attempt, the
-- durable job queue workers claim from, human approvals, cron schedules and the leases that
-- keep singleton duties (the scheduler) on one node at a time.

CREATE TABLE playbooks (
    id           BLOB PRIMARY KEY NOT NULL,
    -- NULL: the playbook applies to every tenant (platform admins only).
    tenant_id    BLOB REFERENCES tenants(id),
    name         TEXT NOT NULL UNIQUE,
    description  TEXT,
    version      INTEGER NOT NULL CHECK (version >= 1),
    enabled      INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    priority     INTEGER NOT NULL,
    spec         TEXT NOT NULL,
    origin       TEXT NOT NULL CHECK (origin IN ('api', 'file')),
    file_path    TEXT,
    created_by   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;

CREATE TABLE playbook_versions (
    playbook_id  BLOB NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    spec         TEXT NOT NULL,
    source       TEXT NOT NULL,
    source_format TEXT NOT NULL CHECK (source_format IN ('yaml', 'json')),
    created_by   TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (playbook_id, version)
) STRICT;

CREATE TABLE playbook_runs (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants(id),
    playbook_id       BLOB NOT NULL,
    playbook_name     TEXT NOT NULL,
    playbook_version  INTEGER NOT NULL,
    trigger           TEXT NOT NULL,
    alert_id          BLOB,
    incident_id       BLOB,
    status            TEXT NOT NULL,
    input             TEXT NOT NULL DEFAULT '{}',
    state             TEXT,
    outputs           TEXT,
    error             TEXT,
    requested_by      TEXT,
    created_at        TEXT NOT NULL,
    started_at        TEXT,
    finished_at       TEXT,
    updated_at        TEXT NOT NULL
) STRICT;
CREATE INDEX playbook_runs_tenant ON playbook_runs (tenant_id, id);
CREATE INDEX playbook_runs_alert ON playbook_runs (alert_id, id) WHERE alert_id IS NOT NULL;
CREATE INDEX playbook_runs_incident ON playbook_runs (incident_id, id) WHERE incident_id IS NOT NULL;
CREATE INDEX playbook_runs_playbook ON playbook_runs (playbook_id, id);
CREATE INDEX playbook_runs_status ON playbook_runs (status, id);

-- One row per attempt of one action (and item of a for_each), written before the run moves on.
CREATE TABLE run_steps (
    id           BLOB PRIMARY KEY NOT NULL,
    run_id       BLOB NOT NULL REFERENCES playbook_runs(id),
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    ref          TEXT NOT NULL,
    item_index   INTEGER,
    attempt      INTEGER NOT NULL,
    action       TEXT NOT NULL,
    status       TEXT NOT NULL,
    input        TEXT NOT NULL,
    output       TEXT,
    error        TEXT,
    worker       TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX run_steps_run ON run_steps (run_id, id);

-- The durable queue. A job is ready when status = 'queued' and run_at has passed and no live
-- lease holds it; a claim sets locked_by/locked_until (the lease), heartbeats extend it, and a
-- worker that dies simply lets it lapse. Finished jobs are deleted; their history is the run.
CREATE TABLE jobs (
    id            BLOB PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL,
    tenant_id     BLOB REFERENCES tenants(id),
    run_id        BLOB,
    payload       TEXT NOT NULL DEFAULT '{}',
    priority      INTEGER NOT NULL DEFAULT 100,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'parked', 'dead')),
    run_at        TEXT NOT NULL,
    locked_by     TEXT,
    locked_until  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL DEFAULT 5,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX jobs_ready ON jobs (status, run_at) WHERE status = 'queued';
CREATE UNIQUE INDEX jobs_run ON jobs (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE approvals (
    id                  BLOB PRIMARY KEY NOT NULL,
    tenant_id           BLOB NOT NULL REFERENCES tenants(id),
    run_id              BLOB NOT NULL REFERENCES playbook_runs(id),
    step_ref            TEXT NOT NULL,
    item_index          INTEGER,
    playbook_name       TEXT NOT NULL,
    message             TEXT NOT NULL,
    alert_id            BLOB,
    incident_id         BLOB,
    approvers_required  INTEGER NOT NULL,
    roles               TEXT NOT NULL DEFAULT '[]',
    on_timeout          TEXT NOT NULL CHECK (on_timeout IN ('fail', 'escalate')),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    expires_at          TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    decided_at          TEXT
) STRICT;
CREATE INDEX approvals_tenant ON approvals (tenant_id, status, id);
CREATE INDEX approvals_pending ON approvals (expires_at) WHERE status = 'pending';
CREATE UNIQUE INDEX approvals_step ON approvals (run_id, step_ref, COALESCE(item_index, -1));

CREATE TABLE approval_decisions (
    approval_id  BLOB NOT NULL REFERENCES approvals(id),
    analyst_id   BLOB NOT NULL,
    username     TEXT NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment      TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (approval_id, analyst_id)
) STRICT;

CREATE TABLE playbook_schedules (
    playbook_id    BLOB NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    trigger_index  INTEGER NOT NULL,
    cron           TEXT NOT NULL,
    next_fire_at   TEXT NOT NULL,
    last_fired_at  TEXT,
    PRIMARY KEY (playbook_id, trigger_index)
) STRICT;

-- Singleton duties (the scheduler, expiry of approvals, lease reaping): whoever holds an
-- unexpired lease row does the work; the others wait for it to lapse.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;
