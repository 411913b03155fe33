//! Automation storage: playbooks (each change a new immutable version), runs with every action
//! attempt, the durable job queue, human approvals and singleton leases.
//!
//! The queue (DESIGN.md "Durable jobs"): a job is ready when `status = 'queued'`, `run_at` has
//! passed and no live lease holds it. A claim takes a lease (`locked_by`, `locked_until`) in
//! one statement: PostgreSQL with `FOR UPDATE SKIP LOCKED` (many workers on many machines),
//! SQLite inside its single writer. A worker extends the lease while it works (heartbeat); a
//! worker that dies lets it lapse and another claims the job again, so a run resumes from its
//! last saved state. Every call that finishes or moves a job names the worker and succeeds only
//! while that worker still holds the lease, so a worker that lost its lease (paused too long)
//! cannot overwrite the work of the one that took over. Finished jobs are deleted: the run row
//! is the history.
//!
//! A playbook run has exactly one job while it is not finished (`jobs_run` is unique), written
//! in the same transaction as the run, and for triggered runs in the ingest transaction that
//! stored the alert.

use bulwark_core::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// A stored playbook (its current version).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlaybookRecord {
    pub id: Uuid,
    /// `None`: applies to every tenant.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<TenantId>,
    pub name: String,
    pub description: Option<String>,
    pub version: i32,
    pub enabled: bool,
    pub priority: i32,
    /// The playbook in its JSON form (`PlaybookSpec`).
    #[schema(value_type = Object)]
    pub spec: Value,
    /// `api` or `file` (loaded from the playbooks directory).
    pub origin: String,
    pub file_path: Option<String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Everything a create or an update writes. The caller has validated `spec`.
#[derive(Debug, Clone)]
pub struct PlaybookWrite {
    pub tenant_id: Option<TenantId>,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub priority: i32,
    pub spec: Value,
    /// The text as submitted (YAML or JSON), kept with the version.
    pub source: String,
    /// `yaml` or `json`.
    pub source_format: &'static str,
    /// `api` or `file`.
    pub origin: &'static str,
    pub file_path: Option<String>,
}

/// One version of a playbook, as it was written.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlaybookVersion {
    pub version: i32,
    #[schema(value_type = Object)]
    pub spec: Value,
    pub source: String,
    pub source_format: String,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Run statuses as stored. `queued` until a worker first picks the run up; then the playbook
/// crate's `RunStatus` (running, waiting, paused, succeeded, failed, cancelled).
pub const RUN_QUEUED: &str = "queued";

/// A run to create (with its job).
#[derive(Debug, Clone)]
pub struct NewRun {
    pub tenant_id: TenantId,
    pub playbook_id: Uuid,
    pub playbook_name: String,
    pub playbook_version: i32,
    /// `alert.created`, `alert.updated`, `incident.created`, `incident.updated`, `schedule`,
    /// `manual`.
    pub trigger: String,
    pub alert_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub input: Value,
    pub requested_by: Option<String>,
    /// Job priority: lower first (the playbook's priority).
    pub priority: i32,
}

/// A stored run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunRecord {
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    pub playbook_id: Uuid,
    pub playbook_name: String,
    pub playbook_version: i32,
    pub trigger: String,
    pub alert_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub status: String,
    #[schema(value_type = Object)]
    pub input: Value,
    /// The run's saved state (the playbook crate's `RunState`), `None` before it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub state: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub requested_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Filters of `list_runs`; newest first, keyset-paged by id.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub tenant_id: Option<TenantId>,
    pub playbook_id: Option<Uuid>,
    pub alert_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub status: Option<String>,
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// One attempt of one action (one item of a `for_each`), recorded before the run moves on.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepRecord {
    pub id: Uuid,
    pub run_id: Uuid,
    #[serde(rename = "ref")]
    pub step_ref: String,
    pub item_index: Option<i32>,
    pub attempt: i32,
    pub action: String,
    /// `succeeded`, `failed` or `paused`.
    pub status: String,
    #[schema(value_type = Object)]
    pub input: Value,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub error: Option<String>,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: i32,
}

#[derive(Debug, Clone)]
pub struct NewStep {
    pub step_ref: String,
    pub item_index: Option<i32>,
    pub attempt: i32,
    pub action: String,
    pub status: String,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// One save of [`AutomationStore::save_runs`].
#[derive(Debug, Clone)]
pub struct RunSave {
    pub run_id: Uuid,
    pub progress: RunProgress,
    /// The run is over: its job is deleted in the same transaction.
    pub done: bool,
}

/// What a worker saves after each step: the run's new state and status, and the attempt that
/// produced it, in one transaction.
#[derive(Debug, Clone)]
pub struct RunProgress {
    pub status: String,
    /// The run state; its `trigger` may be left out when `context` carries it (or carried
    /// it in an earlier save): reads put it back.
    pub state: Value,
    /// The run's trigger context, written once (a later `None` keeps it).
    pub context: Option<Value>,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub step: Option<NewStep>,
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: Uuid,
    pub kind: String,
    pub tenant_id: Option<TenantId>,
    pub run_id: Option<Uuid>,
    pub payload: Value,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub max_attempts: i32,
}

/// The job kind of a playbook run.
pub const JOB_PLAYBOOK_RUN: &str = "playbook_run";
/// The job kind of automatic enrichment: `{"observables": [ids], "force": bool}` (see
/// `enrichment`).
pub const JOB_ENRICHMENT: &str = "enrichment";
/// The job kind of a notification delivery: `{"delivery": id}` (see `notifications`).
pub const JOB_NOTIFICATION: &str = "notification";

/// How a worker hands a job back.
#[derive(Debug, Clone)]
pub enum JobRelease {
    /// Finished: the job is deleted.
    Done,
    /// Ready again at this time (a wait, a retry backoff); the claim count restarts.
    At(DateTime<Utc>),
    /// Waiting for the decision on this approval. If it was decided already (a race with the
    /// decider), the job is queued at once instead; otherwise the decision queues it.
    Parked { approval: Uuid },
    /// The worker failed at the job itself (not an action: those are part of the run). Ready
    /// again at this time, or dead after `max_attempts` claims.
    Failed {
        error: String,
        retry_at: DateTime<Utc>,
    },
}

/// One schedule trigger of a playbook and its next slot (`playbook_schedules`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    pub playbook_id: Uuid,
    /// Index into the playbook's `triggers`.
    pub trigger_index: i32,
    pub cron: String,
    pub next_fire_at: DateTime<Utc>,
    pub last_fired_at: Option<DateTime<Utc>>,
}

/// One slot of a schedule to fire (see `AutomationStore::fire_schedule`).
#[derive(Debug, Clone)]
pub struct ScheduleFire {
    pub playbook_id: Uuid,
    pub trigger_index: i32,
    /// The `next_fire_at` the scheduler read: the guard against firing a slot twice.
    pub expected: DateTime<Utc>,
    /// The slot after this one.
    pub next: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub runs: Vec<NewRun>,
}

/// An approval request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApprovalRecord {
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    pub run_id: Uuid,
    pub step_ref: String,
    pub item_index: Option<i32>,
    pub playbook_name: String,
    pub message: String,
    pub alert_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub approvers_required: i32,
    /// Roles allowed to decide.
    pub roles: Vec<String>,
    /// `fail` or `escalate`.
    pub on_timeout: String,
    /// `pending`, `approved`, `rejected`, `expired` or `cancelled`.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decisions: Vec<ApprovalDecision>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApprovalDecision {
    pub analyst_id: Uuid,
    pub username: String,
    /// `approve` or `reject`.
    pub decision: String,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewApproval {
    pub tenant_id: TenantId,
    pub run_id: Uuid,
    pub step_ref: String,
    pub item_index: Option<i32>,
    pub playbook_name: String,
    pub message: String,
    pub alert_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub approvers_required: i32,
    pub roles: Vec<String>,
    pub on_timeout: String,
    pub expires_at: DateTime<Utc>,
}

/// Who decides an approval.
#[derive(Debug, Clone)]
pub struct Decider {
    pub analyst_id: Uuid,
    pub username: String,
    pub role: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct PlaybookRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    name: String,
    description: Option<String>,
    version: i32,
    enabled: bool,
    priority: i32,
    spec: sqlx::types::Json<Value>,
    origin: String,
    file_path: Option<String>,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl PlaybookRow {
    pub(crate) fn into_record(self) -> PlaybookRecord {
        PlaybookRecord {
            id: self.id,
            tenant_id: self.tenant_id.map(TenantId),
            name: self.name,
            description: self.description,
            version: self.version,
            enabled: self.enabled,
            priority: self.priority,
            spec: self.spec.0,
            origin: self.origin,
            file_path: self.file_path,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub(crate) const PLAYBOOK_COLUMNS: &str = "id, tenant_id, name, description, version, enabled, priority, spec, \
     origin, file_path, created_by, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct RunRow {
    id: Uuid,
    tenant_id: Uuid,
    playbook_id: Uuid,
    playbook_name: String,
    playbook_version: i32,
    trigger: String,
    alert_id: Option<Uuid>,
    incident_id: Option<Uuid>,
    status: String,
    input: sqlx::types::Json<Value>,
    state: Option<sqlx::types::Json<Value>>,
    context: Option<sqlx::types::Json<Value>>,
    outputs: Option<sqlx::types::Json<Value>>,
    error: Option<String>,
    requested_by: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl RunRow {
    pub(crate) fn into_record(self) -> RunRecord {
        RunRecord {
            id: self.id,
            tenant_id: TenantId(self.tenant_id),
            playbook_id: self.playbook_id,
            playbook_name: self.playbook_name,
            playbook_version: self.playbook_version,
            trigger: self.trigger,
            alert_id: self.alert_id,
            incident_id: self.incident_id,
            status: self.status,
            input: self.input.0,
            state: self
                .state
                .map(|j| with_context(j.0, self.context.map(|c| c.0))),
            outputs: self.outputs.map(|j| j.0),
            error: self.error,
            requested_by: self.requested_by,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            updated_at: self.updated_at,
        }
    }
}

/// A saved state with its trigger context put back (saved apart since migration 0015).
fn with_context(mut state: Value, context: Option<Value>) -> Value {
    if let (Some(context), Some(obj)) = (context, state.as_object_mut())
        && obj.get("trigger").is_none_or(Value::is_null)
    {
        obj.insert("trigger".into(), context);
    }
    state
}

pub(crate) const RUN_COLUMNS: &str = "id, tenant_id, playbook_id, playbook_name, playbook_version, trigger, \
     alert_id, incident_id, status, input, state, context, outputs, error, requested_by, created_at, started_at, \
     finished_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct StepRow {
    id: Uuid,
    run_id: Uuid,
    #[sqlx(rename = "ref")]
    step_ref: String,
    item_index: Option<i32>,
    attempt: i32,
    action: String,
    status: String,
    input: sqlx::types::Json<Value>,
    output: Option<sqlx::types::Json<Value>>,
    error: Option<String>,
    worker: String,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    duration_ms: i32,
}

impl StepRow {
    pub(crate) fn into_record(self) -> StepRecord {
        StepRecord {
            id: self.id,
            run_id: self.run_id,
            step_ref: self.step_ref,
            item_index: self.item_index,
            attempt: self.attempt,
            action: self.action,
            status: self.status,
            input: self.input.0,
            output: self.output.map(|j| j.0),
            error: self.error,
            worker: self.worker,
            started_at: self.started_at,
            finished_at: self.finished_at,
            duration_ms: self.duration_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApprovalRow {
    id: Uuid,
    tenant_id: Uuid,
    run_id: Uuid,
    step_ref: String,
    item_index: Option<i32>,
    playbook_name: String,
    message: String,
    alert_id: Option<Uuid>,
    incident_id: Option<Uuid>,
    approvers_required: i32,
    roles: sqlx::types::Json<Vec<String>>,
    on_timeout: String,
    status: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}

impl ApprovalRow {
    pub(crate) fn into_record(self, decisions: Vec<ApprovalDecision>) -> ApprovalRecord {
        ApprovalRecord {
            id: self.id,
            tenant_id: TenantId(self.tenant_id),
            run_id: self.run_id,
            step_ref: self.step_ref,
            item_index: self.item_index,
            playbook_name: self.playbook_name,
            message: self.message,
            alert_id: self.alert_id,
            incident_id: self.incident_id,
            approvers_required: self.approvers_required,
            roles: self.roles.0,
            on_timeout: self.on_timeout,
            status: self.status,
            expires_at: self.expires_at,
            created_at: self.created_at,
            decided_at: self.decided_at,
            decisions,
        }
    }
}

pub(crate) const APPROVAL_COLUMNS: &str = "id, tenant_id, run_id, step_ref, item_index, playbook_name, message, \
     alert_id, incident_id, approvers_required, roles, on_timeout, status, expires_at, created_at, decided_at";

#[derive(sqlx::FromRow)]
pub(crate) struct DecisionRow {
    approval_id: Uuid,
    analyst_id: Uuid,
    username: String,
    decision: String,
    comment: Option<String>,
    created_at: DateTime<Utc>,
}

/// Groups decision rows by approval.
pub(crate) fn decisions_by_approval(
    rows: Vec<DecisionRow>,
) -> std::collections::HashMap<Uuid, Vec<ApprovalDecision>> {
    let mut out: std::collections::HashMap<Uuid, Vec<ApprovalDecision>> = Default::default();
    for r in rows {
        out.entry(r.approval_id)
            .or_default()
            .push(ApprovalDecision {
                analyst_id: r.analyst_id,
                username: r.username,
                decision: r.decision,
                comment: r.comment,
                created_at: r.created_at,
            });
    }
    out
}

/// A `std::time::Duration` as a chrono one (saturating: leases are seconds to minutes).
pub(crate) fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Whether `role` may decide an approval limited to `roles` (empty: analysts and admins).
pub fn role_may_decide(roles: &[String], role: &str) -> bool {
    if roles.is_empty() {
        role == "analyst" || role == "admin"
    } else {
        roles.iter().any(|r| r == role)
    }
}

/// The outcome of the decisions so far: `Some(true)` approved, `Some(false)` rejected.
pub fn approval_outcome(decisions: &[ApprovalDecision], required: i32) -> Option<bool> {
    if decisions.iter().any(|d| d.decision == "reject") {
        return Some(false);
    }
    let approvers = decisions
        .iter()
        .filter(|d| d.decision == "approve")
        .map(|d| d.analyst_id)
        .collect::<std::collections::HashSet<_>>()
        .len();
    (approvers as i64 >= i64::from(required.max(1))).then_some(true)
}

/// `AutomationStore` for a backend. `$for_update`: the row lock suffix (PostgreSQL
/// `FOR UPDATE`, SQLite nothing: its writer is exclusive); `$skip_locked`: the claim's
/// `FOR UPDATE SKIP LOCKED` on PostgreSQL.
macro_rules! impl_automation {
    ($store:ident, $db:ty, $for_update:literal, $skip_locked:literal) => {
        mod automation_impl {
            use super::$store;
            use $crate::automation::*;
            use $crate::{AutomationStore, ChangeCtx, StoreError, StoreResult};
            use bulwark_audit::EventType;
            use bulwark_core::{Scope, TenantId};
            use chrono::{DateTime, Utc};
            use serde_json::{json, Value};
            use sqlx::types::Json;
            use sqlx::{AssertSqlSafe, QueryBuilder, Transaction};
            use uuid::Uuid;

            type Tx = Transaction<'static, $db>;
            type Conn = <$db as sqlx::Database>::Connection;

            const TERMINAL: [&str; 3] = ["succeeded", "failed", "cancelled"];

            /// Global playbooks and those of the scope's tenants.
            fn push_playbook_scope(qb: &mut QueryBuilder<$db>, scope: &Scope) {
                match scope.tenant_filter() {
                    None => {}
                    Some(tenants) => {
                        qb.push(" AND (tenant_id IS NULL");
                        for t in tenants {
                            qb.push(" OR tenant_id = ").push_bind(t.0);
                        }
                        qb.push(")");
                    }
                }
            }

            /// A playbook the scope may change: its own tenant's, or any with all tenants.
            fn may_change(scope: &Scope, tenant: Option<TenantId>) -> bool {
                match tenant {
                    None => matches!(scope, Scope::AllTenants),
                    Some(t) => scope.allows(t),
                }
            }

            impl $store {
                async fn playbook_row(tx: &mut Tx, scope: &Scope, id: Uuid) -> StoreResult<PlaybookRecord> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {PLAYBOOK_COLUMNS} FROM playbooks WHERE id = "));
                    qb.push_bind(id);
                    push_playbook_scope(&mut qb, scope);
                    qb.push($for_update);
                    let row: Option<PlaybookRow> = qb.build_query_as().fetch_optional(&mut **tx).await?;
                    row.map(PlaybookRow::into_record).ok_or(StoreError::NotFound)
                }

                async fn playbook_audit(
                    tx: &mut Tx,
                    ctx: &ChangeCtx,
                    tenant: TenantId,
                    event: EventType,
                    id: Uuid,
                    after: Value,
                ) -> StoreResult<()> {
                    let rec = $crate::audit::record(ctx, event, "playbook", Some(id.to_string()), None, Some(after))?;
                    Self::append_audit(tx, tenant, rec).await
                }

                async fn insert_version(tx: &mut Tx, ctx: &ChangeCtx, id: Uuid, version: i32, w: &PlaybookWrite, now: DateTime<Utc>) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO playbook_versions (playbook_id, version, spec, source, source_format, created_by, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(id)
                    .bind(version)
                    .bind(Json(&w.spec))
                    .bind(&w.source)
                    .bind(w.source_format)
                    .bind(ctx.actor_name.clone())
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                    Ok(())
                }

                async fn approval_with_decisions(&self, row: ApprovalRow) -> StoreResult<ApprovalRecord> {
                    let id = row.id_value();
                    let rows: Vec<DecisionRow> = sqlx::query_as(
                        "SELECT approval_id, analyst_id, username, decision, comment, created_at \
                         FROM approval_decisions WHERE approval_id = $1 ORDER BY created_at",
                    )
                    .bind(id)
                    .fetch_all(&self.reader)
                    .await?;
                    let mut by = decisions_by_approval(rows);
                    Ok(row.into_record(by.remove(&id).unwrap_or_default()))
                }

                /// Queues a run's parked job (inside `tx`, after its job row was locked).
                async fn wake_in(tx: &mut Tx, run_id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
                    let woken = sqlx::query("UPDATE jobs SET status = 'queued', run_at = $1, updated_at = $1 WHERE run_id = $2 AND status = 'parked'")
                        .bind(now)
                        .bind(run_id)
                        .execute(&mut **tx)
                        .await?;
                    if woken.rows_affected() > 0 {
                        Self::announce_jobs(tx).await?;
                    }
                    Ok(())
                }

                /// Locks a run's job row (PostgreSQL), so a decision and a worker parking the
                /// job happen one after the other.
                async fn lock_job_of(tx: &mut Tx, run_id: Uuid) -> StoreResult<()> {
                    let _: Option<(Uuid,)> = sqlx::query_as(concat!("SELECT id FROM jobs WHERE run_id = $1", $for_update))
                        .bind(run_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl AutomationStore for $store {
                async fn list_playbooks(&self, scope: &Scope) -> StoreResult<Vec<PlaybookRecord>> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {PLAYBOOK_COLUMNS} FROM playbooks WHERE 1 = 1"));
                    push_playbook_scope(&mut qb, scope);
                    qb.push(" ORDER BY priority, name LIMIT 1000");
                    let rows: Vec<PlaybookRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(PlaybookRow::into_record).collect())
                }

                async fn get_playbook(&self, scope: &Scope, id: Uuid) -> StoreResult<PlaybookRecord> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {PLAYBOOK_COLUMNS} FROM playbooks WHERE id = "));
                    qb.push_bind(id);
                    push_playbook_scope(&mut qb, scope);
                    let row: Option<PlaybookRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    row.map(PlaybookRow::into_record).ok_or(StoreError::NotFound)
                }

                async fn playbook_by_name(&self, name: &str) -> StoreResult<Option<PlaybookRecord>> {
                    let row: Option<PlaybookRow> =
                        sqlx::query_as(AssertSqlSafe(format!("SELECT {PLAYBOOK_COLUMNS} FROM playbooks WHERE name = $1")))
                            .bind(name)
                            .fetch_optional(&self.reader)
                            .await?;
                    Ok(row.map(PlaybookRow::into_record))
                }

                async fn playbook_versions(&self, scope: &Scope, id: Uuid) -> StoreResult<Vec<PlaybookVersion>> {
                    self.get_playbook(scope, id).await?;
                    let rows: Vec<(i32, Json<Value>, String, String, Option<String>, DateTime<Utc>)> = sqlx::query_as(
                        "SELECT version, spec, source, source_format, created_by, created_at FROM playbook_versions \
                         WHERE playbook_id = $1 ORDER BY version DESC",
                    )
                    .bind(id)
                    .fetch_all(&self.reader)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(version, spec, source, source_format, created_by, created_at)| PlaybookVersion {
                            version,
                            spec: spec.0,
                            source,
                            source_format,
                            created_by,
                            created_at,
                        })
                        .collect())
                }

                async fn playbook_version_spec(&self, id: Uuid, version: i32) -> StoreResult<Value> {
                    let row: Option<(Json<Value>,)> =
                        sqlx::query_as("SELECT spec FROM playbook_versions WHERE playbook_id = $1 AND version = $2")
                            .bind(id)
                            .bind(version)
                            .fetch_optional(&self.reader)
                            .await?;
                    row.map(|r| r.0 .0).ok_or(StoreError::NotFound)
                }

                async fn create_playbook(&self, ctx: &ChangeCtx, scope: &Scope, audit_tenant: TenantId, w: PlaybookWrite) -> StoreResult<PlaybookRecord> {
                    if !may_change(scope, w.tenant_id) {
                        return Err(StoreError::Invalid {
                            field: "tenant_id",
                            message: "a playbook for every tenant needs a platform administrator; name one of your tenants".into(),
                        });
                    }
                    let now = bulwark_core::time::now();
                    let id = Uuid::now_v7();
                    let mut tx = self.begin_write().await?;
                    let row: PlaybookRow = sqlx::query_as(AssertSqlSafe(format!(
                        "INSERT INTO playbooks (id, tenant_id, name, description, version, enabled, priority, spec, origin, \
                         file_path, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10, $11, $11) \
                         RETURNING {PLAYBOOK_COLUMNS}"
                    )))
                    .bind(id)
                    .bind(w.tenant_id.map(|t| t.0))
                    .bind(&w.name)
                    .bind(w.description.clone())
                    .bind(w.enabled)
                    .bind(w.priority)
                    .bind(Json(&w.spec))
                    .bind(w.origin)
                    .bind(w.file_path.clone())
                    .bind(ctx.actor_name.clone())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| $crate::conflict_or(e, "name"))?;
                    Self::insert_version(&mut tx, ctx, id, 1, &w, now).await?;
                    Self::playbook_audit(&mut tx, ctx, w.tenant_id.unwrap_or(audit_tenant), EventType::PlaybookCreated, id,
                        json!({"name": w.name, "version": 1, "enabled": w.enabled})).await?;
                    tx.commit().await?;
                    Ok(row.into_record())
                }

                async fn update_playbook(
                    &self,
                    ctx: &ChangeCtx,
                    scope: &Scope,
                    audit_tenant: TenantId,
                    id: Uuid,
                    expected_version: Option<i32>,
                    w: PlaybookWrite,
                ) -> StoreResult<PlaybookRecord> {
                    let mut tx = self.begin_write().await?;
                    let old = Self::playbook_row(&mut tx, scope, id).await?;
                    if !may_change(scope, old.tenant_id) || !may_change(scope, w.tenant_id) {
                        return Err(StoreError::Forbidden("a playbook for every tenant is changed by platform administrators".into()));
                    }
                    if let Some(v) = expected_version {
                        if v != old.version {
                            return Err(StoreError::State(format!(
                                "version {v} is not the current one ({}): reload the playbook and apply the change again",
                                old.version
                            )));
                        }
                    }
                    let now = bulwark_core::time::now();
                    let version = old.version + 1;
                    let row: PlaybookRow = sqlx::query_as(AssertSqlSafe(format!(
                        "UPDATE playbooks SET tenant_id = $1, name = $2, description = $3, version = $4, enabled = $5, \
                         priority = $6, spec = $7, origin = $8, file_path = $9, updated_at = $10 WHERE id = $11 \
                         RETURNING {PLAYBOOK_COLUMNS}"
                    )))
                    .bind(w.tenant_id.map(|t| t.0))
                    .bind(&w.name)
                    .bind(w.description.clone())
                    .bind(version)
                    .bind(w.enabled)
                    .bind(w.priority)
                    .bind(Json(&w.spec))
                    .bind(w.origin)
                    .bind(w.file_path.clone())
                    .bind(now)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| $crate::conflict_or(e, "name"))?;
                    Self::insert_version(&mut tx, ctx, id, version, &w, now).await?;
                    Self::playbook_audit(&mut tx, ctx, w.tenant_id.unwrap_or(audit_tenant), EventType::PlaybookUpdated, id,
                        json!({"name": w.name, "version": version, "enabled": w.enabled})).await?;
                    tx.commit().await?;
                    Ok(row.into_record())
                }

                async fn set_playbook_enabled(&self, ctx: &ChangeCtx, scope: &Scope, audit_tenant: TenantId, id: Uuid, enabled: bool) -> StoreResult<PlaybookRecord> {
                    let mut tx = self.begin_write().await?;
                    let old = Self::playbook_row(&mut tx, scope, id).await?;
                    if !may_change(scope, old.tenant_id) {
                        return Err(StoreError::Forbidden("a playbook for every tenant is changed by platform administrators".into()));
                    }
                    let now = bulwark_core::time::now();
                    let row: PlaybookRow = sqlx::query_as(AssertSqlSafe(format!(
                        "UPDATE playbooks SET enabled = $1, updated_at = $2 WHERE id = $3 RETURNING {PLAYBOOK_COLUMNS}"
                    )))
                    .bind(enabled)
                    .bind(now)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if old.enabled != enabled {
                        let event = if enabled { EventType::PlaybookEnabled } else { EventType::PlaybookDisabled };
                        Self::playbook_audit(&mut tx, ctx, old.tenant_id.unwrap_or(audit_tenant), event, id,
                            json!({"name": old.name, "enabled": enabled})).await?;
                    }
                    tx.commit().await?;
                    Ok(row.into_record())
                }

                async fn delete_playbook(&self, ctx: &ChangeCtx, scope: &Scope, audit_tenant: TenantId, id: Uuid) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    let old = Self::playbook_row(&mut tx, scope, id).await?;
                    if !may_change(scope, old.tenant_id) {
                        return Err(StoreError::Forbidden("a playbook for every tenant is changed by platform administrators".into()));
                    }
                    for sql in [
                        "DELETE FROM playbook_schedules WHERE playbook_id = $1",
                        "DELETE FROM playbook_versions WHERE playbook_id = $1",
                        "DELETE FROM playbooks WHERE id = $1",
                    ] {
                        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                    }
                    Self::playbook_audit(&mut tx, ctx, old.tenant_id.unwrap_or(audit_tenant), EventType::PlaybookDeleted, id,
                        json!({"name": old.name, "version": old.version})).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn enabled_playbooks(&self) -> StoreResult<Vec<PlaybookRecord>> {
                    let rows: Vec<PlaybookRow> = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT {PLAYBOOK_COLUMNS} FROM playbooks WHERE enabled = $1 ORDER BY priority, name"
                    )))
                    .bind(true)
                    .fetch_all(&self.reader)
                    .await?;
                    Ok(rows.into_iter().map(PlaybookRow::into_record).collect())
                }

                async fn playbooks_marker(&self) -> StoreResult<String> {
                    let (n, last, versions): (i64, Option<DateTime<Utc>>, Option<i64>) = sqlx::query_as(
                        "SELECT COUNT(*), MAX(updated_at), SUM(version) FROM playbooks",
                    )
                    .fetch_one(&self.reader)
                    .await?;
                    Ok(format!("{n}:{}:{}", last.map(|t| t.to_rfc3339()).unwrap_or_default(), versions.unwrap_or(0)))
                }

                async fn create_runs(&self, runs: &[NewRun]) -> StoreResult<Vec<Uuid>> {
                    let mut tx = self.begin_write().await?;
                    let ids = Self::insert_runs(&mut tx, runs).await?;
                    tx.commit().await?;
                    self.jobs_ready.notify_one();
                    Ok(ids)
                }

                async fn list_runs(&self, scope: &Scope, f: &RunFilter) -> StoreResult<Vec<RunRecord>> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {RUN_COLUMNS} FROM playbook_runs WHERE 1 = 1"));
                    $crate::scope_sql::push_scope(&mut qb, "tenant_id", scope);
                    if let Some(t) = f.tenant_id {
                        qb.push(" AND tenant_id = ").push_bind(t.0);
                    }
                    for (col, v) in [("playbook_id", f.playbook_id), ("alert_id", f.alert_id), ("incident_id", f.incident_id)] {
                        if let Some(v) = v {
                            qb.push(format_args!(" AND {col} = ")).push_bind(v);
                        }
                    }
                    if let Some(s) = &f.status {
                        qb.push(" AND status = ").push_bind(s.clone());
                    }
                    if let Some(b) = f.before {
                        qb.push(" AND id < ").push_bind(b);
                    }
                    qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(f.limit.clamp(1, 500)));
                    let rows: Vec<RunRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(RunRow::into_record).collect())
                }

                async fn get_run(&self, scope: &Scope, id: Uuid) -> StoreResult<RunRecord> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {RUN_COLUMNS} FROM playbook_runs WHERE id = "));
                    qb.push_bind(id);
                    $crate::scope_sql::push_scope(&mut qb, "tenant_id", scope);
                    let row: Option<RunRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    row.map(RunRow::into_record).ok_or(StoreError::NotFound)
                }

                async fn runs_to_drive(&self, ids: &[Uuid]) -> StoreResult<Vec<(RunRecord, bool)>> {
                    #[derive(sqlx::FromRow)]
                    struct Row {
                        #[sqlx(flatten)]
                        run: RunRow,
                        playbook_enabled: Option<bool>,
                    }
                    let mut out = Vec::with_capacity(ids.len());
                    let columns = RUN_COLUMNS.split(", ").map(|c| format!("r.{}", c.trim())).collect::<Vec<_>>().join(", ");
                    for chunk in ids.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new(format!(
                            "SELECT {columns}, p.enabled AS playbook_enabled FROM playbook_runs r \
                             LEFT JOIN playbooks p ON p.id = r.playbook_id WHERE r.id IN ("
                        ));
                        let mut sep = qb.separated(", ");
                        for id in chunk {
                            sep.push_bind(*id);
                        }
                        qb.push(")");
                        let rows: Vec<Row> = qb.build_query_as().fetch_all(&self.reader).await?;
                        out.extend(rows.into_iter().map(|r| (r.run.into_record(), r.playbook_enabled.unwrap_or(false))));
                    }
                    Ok(out)
                }

                async fn run_steps(&self, scope: &Scope, id: Uuid) -> StoreResult<Vec<StepRecord>> {
                    self.get_run(scope, id).await?;
                    let rows: Vec<StepRow> = sqlx::query_as(
                        "SELECT id, run_id, ref, item_index, attempt, action, status, input, output, error, worker, \
                         started_at, finished_at, duration_ms FROM run_steps WHERE run_id = $1 ORDER BY id LIMIT 10000",
                    )
                    .bind(id)
                    .fetch_all(&self.reader)
                    .await?;
                    Ok(rows.into_iter().map(StepRow::into_record).collect())
                }

                async fn cancel_run(&self, _ctx: &ChangeCtx, scope: &Scope, id: Uuid) -> StoreResult<RunRecord> {
                    let mut tx = self.begin_write().await?;
                    Self::lock_job_of(&mut tx, id).await?;
                    let mut qb = QueryBuilder::<$db>::new("SELECT status FROM playbook_runs WHERE id = ");
                    qb.push_bind(id);
                    $crate::scope_sql::push_scope(&mut qb, "tenant_id", scope);
                    qb.push($for_update);
                    let status: Option<String> = qb.build_query_scalar().fetch_optional(&mut *tx).await?;
                    let status = status.ok_or(StoreError::NotFound)?;
                    if TERMINAL.contains(&status.as_str()) {
                        return Err(StoreError::State(format!("the run has already finished ({status})")));
                    }
                    let now = bulwark_core::time::now();
                    sqlx::query(
                        "UPDATE playbook_runs SET status = 'cancelled', finished_at = $1, updated_at = $1, \
                         error = COALESCE(error, 'cancelled') WHERE id = $2",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM jobs WHERE run_id = $1").bind(id).execute(&mut *tx).await?;
                    sqlx::query("UPDATE approvals SET status = 'cancelled', decided_at = $1 WHERE run_id = $2 AND status = 'pending'")
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    self.get_run(scope, id).await
                }

                async fn save_run(&self, run_id: Uuid, worker: &str, p: RunProgress) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    if !Self::save_in(&mut tx, run_id, worker, &p, false).await? {
                        return Err(StoreError::State("this worker no longer holds the run (lease lost or run cancelled)".into()));
                    }
                    let notified = if p.status == "failed" {
                        let events = Self::run_failed_events(&mut tx, &[(run_id, p.error.clone())]).await?;
                        Self::queue_notifications(&mut tx, &events).await?
                    } else {
                        false
                    };
                    tx.commit().await?;
                    if notified {
                        self.jobs_ready.notify_one();
                    }
                    Ok(())
                }

                async fn save_runs(&self, worker: &str, saves: &[RunSave]) -> StoreResult<Vec<bool>> {
                    if saves.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut tx = self.begin_write().await?;
                    // Statements per batch, not per save: one read of the leases held (locking
                    // the job rows on PostgreSQL, as a single save does), one update per run,
                    // one insert of all attempts, one delete of the finished jobs.
                    let mut held: std::collections::HashMap<Uuid, Option<Uuid>> = std::collections::HashMap::new();
                    for chunk in saves.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new("SELECT run_id, tenant_id FROM jobs WHERE locked_by = ");
                        qb.push_bind(worker.to_string()).push(" AND run_id IN (");
                        let mut sep = qb.separated(", ");
                        for s in chunk {
                            sep.push_bind(s.run_id);
                        }
                        qb.push(")").push($for_update);
                        let rows: Vec<(Uuid, Option<Uuid>)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                        held.extend(rows);
                    }
                    let now = bulwark_core::time::now();
                    let mut steps = Vec::new();
                    let mut done = Vec::new();
                    // The run rows change in one statement per chunk (a join with a VALUES
                    // list), not one UPDATE per save: on SQLite each statement is a round trip
                    // to the writer's thread. A run has one save in flight at a time; should a
                    // batch hold two, the later one wins.
                    let mut latest: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
                    for (i, s) in saves.iter().enumerate() {
                        let Some(tenant) = held.get(&s.run_id) else { continue };
                        let tenant = tenant.ok_or_else(|| StoreError::Corrupt(format!("the job of run {} has no tenant", s.run_id)))?;
                        latest.insert(s.run_id, i);
                        if let Some(step) = &s.progress.step {
                            steps.push((s.run_id, tenant, step));
                        }
                        if s.done {
                            done.push(s.run_id);
                        }
                    }
                    let mut rows: Vec<&RunSave> = latest.values().map(|&i| &saves[i]).collect();
                    rows.sort_by_key(|s| s.run_id);
                    const IS_PG: bool = matches!(<$db as sqlx::Database>::NAME.as_bytes(), b"PostgreSQL");
                    let cast = |t: &'static str| if IS_PG { t } else { "" };
                    for chunk in rows.chunks(200) {
                        let mut qb = QueryBuilder::<$db>::new("WITH v (id, status, state, context, outputs, error, finished_at) AS (VALUES ");
                        let mut first = true;
                        for s in chunk {
                            let p = &s.progress;
                            let finished = TERMINAL.contains(&p.status.as_str()).then_some(now);
                            qb.push(if first { "(" } else { ", (" });
                            first = false;
                            qb.push_bind(s.run_id).push(cast("::uuid")).push(", ");
                            qb.push_bind(p.status.as_str()).push(cast("::text")).push(", ");
                            qb.push_bind(Json(&p.state)).push(cast("::jsonb")).push(", ");
                            qb.push_bind(p.context.as_ref().map(Json)).push(cast("::jsonb")).push(", ");
                            qb.push_bind(p.outputs.as_ref().map(Json)).push(cast("::jsonb")).push(", ");
                            qb.push_bind(p.error.as_deref()).push(cast("::text")).push(", ");
                            qb.push_bind(finished).push(cast("::timestamptz")).push(")");
                        }
                        qb.push(") UPDATE playbook_runs SET status = v.status, state = v.state, \
                                 context = COALESCE(v.context, playbook_runs.context), outputs = v.outputs, \
                                 error = v.error, started_at = COALESCE(playbook_runs.started_at, ");
                        qb.push_bind(now).push("), finished_at = v.finished_at, updated_at = ").push_bind(now);
                        qb.push(" FROM v WHERE playbook_runs.id = v.id");
                        qb.build().execute(&mut *tx).await?;
                    }
                    for chunk in steps.chunks(200) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO run_steps (id, run_id, tenant_id, ref, item_index, attempt, action, status, input, output, \
                             error, worker, started_at, finished_at, duration_ms) ",
                        );
                        qb.push_values(chunk, |mut b, (run_id, tenant, step)| {
                            let ms = (step.finished_at - step.started_at).num_milliseconds().clamp(0, i64::from(i32::MAX));
                            b.push_bind(Uuid::now_v7())
                                .push_bind(*run_id)
                                .push_bind(*tenant)
                                .push_bind(step.step_ref.as_str())
                                .push_bind(step.item_index)
                                .push_bind(step.attempt)
                                .push_bind(step.action.as_str())
                                .push_bind(step.status.as_str())
                                .push_bind(Json(&step.input))
                                .push_bind(step.output.as_ref().map(Json))
                                .push_bind(step.error.as_deref())
                                .push_bind(worker)
                                .push_bind(step.started_at)
                                .push_bind(step.finished_at)
                                .push_bind(ms as i32);
                        });
                        qb.build().execute(&mut *tx).await?;
                    }
                    // Runs that failed in this batch notify (in this transaction).
                    let failed: Vec<(Uuid, Option<String>)> = rows
                        .iter()
                        .filter(|s| s.progress.status == "failed")
                        .map(|s| (s.run_id, s.progress.error.clone()))
                        .collect();
                    let notified = if failed.is_empty() {
                        false
                    } else {
                        let events = Self::run_failed_events(&mut tx, &failed).await?;
                        Self::queue_notifications(&mut tx, &events).await?
                    };
                    for chunk in done.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new("DELETE FROM jobs WHERE locked_by = ");
                        qb.push_bind(worker.to_string()).push(" AND run_id IN (");
                        let mut sep = qb.separated(", ");
                        for id in chunk {
                            sep.push_bind(*id);
                        }
                        qb.push(")");
                        qb.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    if notified {
                        self.jobs_ready.notify_one();
                    }
                    Ok(saves.iter().map(|s| held.contains_key(&s.run_id)).collect())
                }

                async fn claim_jobs(&self, worker: &str, kinds: &[&str], limit: i64, lease: std::time::Duration) -> StoreResult<Vec<ClaimedJob>> {
                    if kinds.is_empty() || limit <= 0 {
                        return Ok(Vec::new());
                    }
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    // Jobs whose lease lapsed once too often (a worker dies on them every time)
                    // go to the dead-letter state, and their runs fail, instead of being
                    // claimed again.
                    let dead: Vec<(Uuid, Option<Uuid>, String, Json<Value>)> = sqlx::query_as(
                        "UPDATE jobs SET status = 'dead', locked_by = NULL, locked_until = NULL, updated_at = $1, \
                         last_error = COALESCE(last_error, 'the lease lapsed on every attempt (the worker died or hung)') \
                         WHERE status = 'queued' AND locked_until IS NOT NULL AND locked_until < $1 AND attempts >= max_attempts \
                         RETURNING id, run_id, kind, payload",
                    )
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?;
                    for (_, _, kind, payload) in dead.iter() {
                        if kind == JOB_NOTIFICATION {
                            Self::abandon_delivery(&mut tx, &payload.0, "the delivery job was dead-lettered: its lease lapsed on every attempt").await?;
                        }
                    }
                    let mut lapsed = Vec::new();
                    for (_, run, _, _) in dead.iter() {
                        if let Some(run) = run {
                            sqlx::query(
                                "UPDATE playbook_runs SET status = 'failed', error = 'dead-lettered: the lease lapsed on every attempt', \
                                 finished_at = $1, updated_at = $1 WHERE id = $2",
                            )
                            .bind(now)
                            .bind(*run)
                            .execute(&mut *tx)
                            .await?;
                            lapsed.push((*run, Some("dead-lettered: the lease lapsed on every attempt".to_string())));
                        }
                    }
                    if !lapsed.is_empty() {
                        let events = Self::run_failed_events(&mut tx, &lapsed).await?;
                        Self::queue_notifications(&mut tx, &events).await?;
                    }
                    let mut qb = QueryBuilder::<$db>::new("UPDATE jobs SET locked_by = ");
                    qb.push_bind(worker.to_string());
                    qb.push(", locked_until = ").push_bind(now + chrono_duration(lease));
                    qb.push(", attempts = attempts + 1, updated_at = ").push_bind(now);
                    qb.push(" WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= ").push_bind(now);
                    qb.push(" AND (locked_until IS NULL OR locked_until < ").push_bind(now);
                    qb.push(") AND kind IN (");
                    let mut sep = qb.separated(", ");
                    for k in kinds {
                        sep.push_bind(k.to_string());
                    }
                    qb.push(") ORDER BY priority, run_at LIMIT ").push_bind(limit);
                    qb.push(concat!($skip_locked, ") RETURNING id, kind, tenant_id, run_id, payload, attempts, max_attempts"));
                    let rows: Vec<(Uuid, String, Option<Uuid>, Option<Uuid>, Json<Value>, i32, i32)> =
                        qb.build_query_as().fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(rows
                        .into_iter()
                        .map(|(id, kind, tenant_id, run_id, payload, attempts, max_attempts)| ClaimedJob {
                            id,
                            kind,
                            tenant_id: tenant_id.map(TenantId),
                            run_id,
                            payload: payload.0,
                            attempts,
                            max_attempts,
                        })
                        .collect())
                }

                async fn heartbeat(&self, job: Uuid, worker: &str, lease: std::time::Duration) -> StoreResult<bool> {
                    let now = bulwark_core::time::now();
                    let done = sqlx::query("UPDATE jobs SET locked_until = $1, updated_at = $2 WHERE id = $3 AND locked_by = $4")
                        .bind(now + chrono_duration(lease))
                        .bind(now)
                        .bind(job)
                        .bind(worker)
                        .execute(&self.writer)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn release_job(&self, job: Uuid, worker: &str, release: JobRelease) -> StoreResult<bool> {
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    let held: Option<(i32, i32, Option<Uuid>, String, Json<Value>)> = sqlx::query_as(concat!(
                        "SELECT attempts, max_attempts, run_id, kind, payload FROM jobs WHERE id = $1 AND locked_by = $2",
                        $for_update
                    ))
                    .bind(job)
                    .bind(worker)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((attempts, max_attempts, run_id, kind, payload)) = held else {
                        return Ok(false);
                    };
                    let requeue = "UPDATE jobs SET status = $1, run_at = $2, locked_by = NULL, locked_until = NULL, \
                                   attempts = $3, last_error = $4, updated_at = $5 WHERE id = $6";
                    match release {
                        JobRelease::Done => {
                            sqlx::query("DELETE FROM jobs WHERE id = $1").bind(job).execute(&mut *tx).await?;
                        }
                        JobRelease::At(at) => {
                            sqlx::query(requeue)
                                .bind("queued").bind(at).bind(0).bind(None::<String>).bind(now).bind(job)
                                .execute(&mut *tx).await?;
                        }
                        JobRelease::Parked { approval } => {
                            let status: Option<(String,)> = sqlx::query_as("SELECT status FROM approvals WHERE id = $1")
                                .bind(approval)
                                .fetch_optional(&mut *tx)
                                .await?;
                            let pending = matches!(status.as_ref().map(|s| s.0.as_str()), Some("pending"));
                            sqlx::query(requeue)
                                .bind(if pending { "parked" } else { "queued" }).bind(now).bind(0).bind(None::<String>).bind(now).bind(job)
                                .execute(&mut *tx).await?;
                        }
                        JobRelease::Failed { error, retry_at } => {
                            if attempts >= max_attempts {
                                sqlx::query(requeue)
                                    .bind("dead").bind(now).bind(attempts).bind(Some(error.clone())).bind(now).bind(job)
                                    .execute(&mut *tx).await?;
                                if kind == JOB_NOTIFICATION {
                                    let why = format!("the delivery job was dead-lettered after {attempts} attempts: {error}");
                                    Self::abandon_delivery(&mut tx, &payload.0, &why).await?;
                                }
                                if let Some(run) = run_id {
                                    let why = format!("dead-lettered after {attempts} attempts: {error}");
                                    let failed = sqlx::query(
                                        "UPDATE playbook_runs SET status = 'failed', error = $1, finished_at = $2, updated_at = $2 \
                                         WHERE id = $3 AND status NOT IN ('succeeded', 'failed', 'cancelled')",
                                    )
                                    .bind(why.clone())
                                    .bind(now)
                                    .bind(run)
                                    .execute(&mut *tx)
                                    .await?;
                                    if failed.rows_affected() == 1 {
                                        let events = Self::run_failed_events(&mut tx, &[(run, Some(why))]).await?;
                                        Self::queue_notifications(&mut tx, &events).await?;
                                    }
                                }
                            } else {
                                sqlx::query(requeue)
                                    .bind("queued").bind(retry_at).bind(attempts).bind(Some(error)).bind(now).bind(job)
                                    .execute(&mut *tx).await?;
                            }
                        }
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn wait_for_jobs(&self, timeout: std::time::Duration) {
                    self.listen_for_jobs();
                    let _ = tokio::time::timeout(timeout, self.jobs_ready.notified()).await;
                }

                async fn wake_run(&self, run_id: Uuid) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    Self::lock_job_of(&mut tx, run_id).await?;
                    Self::wake_in(&mut tx, run_id, bulwark_core::time::now()).await?;
                    tx.commit().await?;
                    self.jobs_ready.notify_one();
                    Ok(())
                }

                async fn job_counts(&self) -> StoreResult<Vec<(String, i64)>> {
                    Ok(sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status")
                        .fetch_all(&self.reader)
                        .await?)
                }

                async fn request_approval(&self, a: NewApproval) -> StoreResult<ApprovalRecord> {
                    if let Some(existing) = self.approval_for_step(a.run_id, &a.step_ref, a.item_index).await? {
                        return Ok(existing);
                    }
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    let inserted: Result<ApprovalRow, sqlx::Error> = sqlx::query_as(AssertSqlSafe(format!(
                        "INSERT INTO approvals (id, tenant_id, run_id, step_ref, item_index, playbook_name, message, alert_id, \
                         incident_id, approvers_required, roles, on_timeout, status, expires_at, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14) RETURNING {APPROVAL_COLUMNS}"
                    )))
                    .bind(Uuid::now_v7())
                    .bind(a.tenant_id.0)
                    .bind(a.run_id)
                    .bind(&a.step_ref)
                    .bind(a.item_index)
                    .bind(&a.playbook_name)
                    .bind(&a.message)
                    .bind(a.alert_id)
                    .bind(a.incident_id)
                    .bind(a.approvers_required)
                    .bind(Json(&a.roles))
                    .bind(&a.on_timeout)
                    .bind(a.expires_at)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await;
                    match inserted {
                        Ok(row) => {
                            let rec = $crate::audit::record(
                                &ChangeCtx::system("automation"), EventType::ApprovalRequested, "approval",
                                Some(row.id_value().to_string()), None,
                                Some(json!({"run_id": a.run_id, "step": a.step_ref, "playbook": a.playbook_name, "message": a.message})),
                            )?;
                            Self::append_audit(&mut tx, a.tenant_id, rec).await?;
                            let approval_id = row.id_value();
                            let notified = Self::queue_notifications(&mut tx, &[$crate::notifications::NotifyEvent {
                                tenant_id: a.tenant_id,
                                event: "approval.requested",
                                severity: None,
                                subject_id: Some(approval_id.to_string()),
                                context: json!({"approval": {"id": approval_id, "run_id": a.run_id, "step": a.step_ref,
                                    "playbook_name": a.playbook_name, "message": a.message, "alert_id": a.alert_id,
                                    "incident_id": a.incident_id, "approvers_required": a.approvers_required,
                                    "roles": a.roles, "expires_at": a.expires_at}}),
                            }]).await?;
                            tx.commit().await?;
                            if notified {
                                self.jobs_ready.notify_one();
                            }
                            Ok(row.into_record(Vec::new()))
                        }
                        Err(e) if matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation()) => {
                            drop(tx);
                            self.approval_for_step(a.run_id, &a.step_ref, a.item_index).await?.ok_or(StoreError::NotFound)
                        }
                        Err(e) => Err(e.into()),
                    }
                }

                async fn list_approvals(&self, scope: &Scope, status: Option<&str>) -> StoreResult<Vec<ApprovalRecord>> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE 1 = 1"));
                    $crate::scope_sql::push_scope(&mut qb, "tenant_id", scope);
                    if let Some(s) = status {
                        qb.push(" AND status = ").push_bind(s.to_string());
                    }
                    qb.push(" ORDER BY id DESC LIMIT 500");
                    let rows: Vec<ApprovalRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    if rows.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT approval_id, analyst_id, username, decision, comment, created_at FROM approval_decisions WHERE approval_id IN (",
                    );
                    let mut sep = qb.separated(", ");
                    for r in &rows {
                        sep.push_bind(r.id_value());
                    }
                    qb.push(") ORDER BY created_at");
                    let decisions: Vec<DecisionRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    let mut by = decisions_by_approval(decisions);
                    Ok(rows
                        .into_iter()
                        .map(|r| {
                            let d = by.remove(&r.id_value()).unwrap_or_default();
                            r.into_record(d)
                        })
                        .collect())
                }

                async fn get_approval(&self, scope: &Scope, id: Uuid) -> StoreResult<ApprovalRecord> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = "));
                    qb.push_bind(id);
                    $crate::scope_sql::push_scope(&mut qb, "tenant_id", scope);
                    let row: Option<ApprovalRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    self.approval_with_decisions(row.ok_or(StoreError::NotFound)?).await
                }

                async fn approval_for_step(&self, run_id: Uuid, step_ref: &str, item_index: Option<i32>) -> StoreResult<Option<ApprovalRecord>> {
                    let row: Option<ApprovalRow> = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run_id = $1 AND step_ref = $2 \
                         AND COALESCE(item_index, -1) = $3"
                    )))
                    .bind(run_id)
                    .bind(step_ref)
                    .bind(item_index.unwrap_or(-1))
                    .fetch_optional(&self.reader)
                    .await?;
                    match row {
                        Some(r) => Ok(Some(self.approval_with_decisions(r).await?)),
                        None => Ok(None),
                    }
                }

                async fn decide_approval(
                    &self,
                    ctx: &ChangeCtx,
                    scope: &Scope,
                    id: Uuid,
                    decider: &Decider,
                    approve: bool,
                    comment: Option<String>,
                ) -> StoreResult<ApprovalRecord> {
                    let run_id: Option<(Uuid,)> = {
                        let mut qb = QueryBuilder::<$db>::new("SELECT run_id FROM approvals WHERE id = ");
                        qb.push_bind(id);
                        $crate::scope_sql::push_scope(&mut qb, "tenant_id", scope);
                        qb.build_query_as().fetch_optional(&self.reader).await?
                    };
                    let run_id = run_id.ok_or(StoreError::NotFound)?.0;
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    Self::lock_job_of(&mut tx, run_id).await?;
                    let row: ApprovalRow = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1{}", $for_update
                    )))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                    let approval = row.into_record(Vec::new());
                    if !role_may_decide(&approval.roles, &decider.role) {
                        return Err(StoreError::Forbidden(format!(
                            "this approval is decided by: {}",
                            if approval.roles.is_empty() { "analyst, admin".to_string() } else { approval.roles.join(", ") }
                        )));
                    }
                    if approval.status != "pending" {
                        return Err(StoreError::State(format!("the approval is {}", approval.status)));
                    }
                    if approval.expires_at <= now {
                        return Err(StoreError::State("the approval has expired".into()));
                    }
                    sqlx::query(
                        "INSERT INTO approval_decisions (approval_id, analyst_id, username, decision, comment, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id)
                    .bind(decider.analyst_id)
                    .bind(&decider.username)
                    .bind(if approve { "approve" } else { "reject" })
                    .bind(comment.clone())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match &e {
                        sqlx::Error::Database(d) if d.is_unique_violation() => {
                            StoreError::State("you have already decided this approval".into())
                        }
                        _ => StoreError::Backend(e),
                    })?;
                    let rows: Vec<DecisionRow> = sqlx::query_as(
                        "SELECT approval_id, analyst_id, username, decision, comment, created_at \
                         FROM approval_decisions WHERE approval_id = $1 ORDER BY created_at",
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let decisions = decisions_by_approval(rows).remove(&id).unwrap_or_default();
                    let outcome = approval_outcome(&decisions, approval.approvers_required);
                    if let Some(approved) = outcome {
                        sqlx::query("UPDATE approvals SET status = $1, decided_at = $2 WHERE id = $3")
                            .bind(if approved { "approved" } else { "rejected" })
                            .bind(now)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        Self::wake_in(&mut tx, run_id, now).await?;
                    }
                    let event = if approve { EventType::ApprovalApproved } else { EventType::ApprovalRejected };
                    let rec = $crate::audit::record(ctx, event, "approval", Some(id.to_string()), None,
                        Some(json!({"run_id": run_id, "decision": if approve { "approve" } else { "reject" }, "comment": comment,
                                    "final": outcome.is_some()})))?;
                    Self::append_audit(&mut tx, approval.tenant_id, rec).await?;
                    tx.commit().await?;
                    self.jobs_ready.notify_one();
                    self.get_approval(scope, id).await
                }

                async fn expire_approvals(&self, now: DateTime<Utc>) -> StoreResult<Vec<ApprovalRecord>> {
                    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
                        "SELECT id, run_id FROM approvals WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT 500",
                    )
                    .bind(now)
                    .fetch_all(&self.reader)
                    .await?;
                    let mut out = Vec::new();
                    for (id, run_id) in due {
                        let mut tx = self.begin_write().await?;
                        Self::lock_job_of(&mut tx, run_id).await?;
                        let row: Option<ApprovalRow> = sqlx::query_as(AssertSqlSafe(format!(
                            "UPDATE approvals SET status = 'expired', decided_at = $1 WHERE id = $2 AND status = 'pending' \
                             RETURNING {APPROVAL_COLUMNS}"
                        )))
                        .bind(now)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if let Some(row) = row {
                            // The run is ready now (real time), whatever instant `now` says
                            // the approval expired at.
                            Self::wake_in(&mut tx, run_id, bulwark_core::time::now()).await?;
                            let rec = $crate::audit::record(
                                &ChangeCtx::system("automation"), EventType::ApprovalExpired, "approval",
                                Some(id.to_string()), None, Some(json!({"run_id": run_id})),
                            )?;
                            let tenant = TenantId(row.tenant_id_value());
                            Self::append_audit(&mut tx, tenant, rec).await?;
                            out.push(row.into_record(Vec::new()));
                        }
                        tx.commit().await?;
                    }
                    if !out.is_empty() {
                        self.jobs_ready.notify_one();
                    }
                    Ok(out)
                }

                async fn try_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> StoreResult<bool> {
                    let now = bulwark_core::time::now();
                    let done = sqlx::query(
                        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                         WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
                    )
                    .bind(name)
                    .bind(holder)
                    .bind(now + chrono_duration(ttl))
                    .bind(now)
                    .execute(&self.writer)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn list_schedules(&self) -> StoreResult<Vec<ScheduleRecord>> {
                    let rows: Vec<(Uuid, i32, String, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
                        "SELECT playbook_id, trigger_index, cron, next_fire_at, last_fired_at FROM playbook_schedules \
                         ORDER BY next_fire_at, playbook_id, trigger_index",
                    )
                    .fetch_all(&self.reader)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(playbook_id, trigger_index, cron, next_fire_at, last_fired_at)| ScheduleRecord {
                            playbook_id,
                            trigger_index,
                            cron,
                            next_fire_at,
                            last_fired_at,
                        })
                        .collect())
                }

                async fn upsert_schedule(&self, s: &ScheduleRecord) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO playbook_schedules (playbook_id, trigger_index, cron, next_fire_at, last_fired_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (playbook_id, trigger_index) DO UPDATE \
                         SET cron = excluded.cron, next_fire_at = excluded.next_fire_at",
                    )
                    .bind(s.playbook_id)
                    .bind(s.trigger_index)
                    .bind(&s.cron)
                    .bind(s.next_fire_at)
                    .bind(s.last_fired_at)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| $crate::conflict_or(e, "playbook_id"))?;
                    Ok(())
                }

                async fn delete_schedule(&self, playbook_id: Uuid, trigger_index: i32) -> StoreResult<()> {
                    sqlx::query("DELETE FROM playbook_schedules WHERE playbook_id = $1 AND trigger_index = $2")
                        .bind(playbook_id)
                        .bind(trigger_index)
                        .execute(&self.writer)
                        .await?;
                    Ok(())
                }

                async fn fire_schedule(&self, f: &ScheduleFire) -> StoreResult<Option<Vec<Uuid>>> {
                    let mut tx = self.begin_write().await?;
                    // The guard: of two schedulers that read the same slot, the second finds
                    // the row moved on (PostgreSQL re-checks the WHERE after the first commits;
                    // SQLite's writer runs them one after the other).
                    let moved = sqlx::query(
                        "UPDATE playbook_schedules SET next_fire_at = $1, last_fired_at = $2 \
                         WHERE playbook_id = $3 AND trigger_index = $4 AND next_fire_at = $5",
                    )
                    .bind(f.next)
                    .bind(f.fired_at)
                    .bind(f.playbook_id)
                    .bind(f.trigger_index)
                    .bind(f.expected)
                    .execute(&mut *tx)
                    .await?;
                    if moved.rows_affected() != 1 {
                        return Ok(None);
                    }
                    let ids = Self::insert_runs(&mut tx, &f.runs).await?;
                    tx.commit().await?;
                    Ok(Some(ids))
                }
            }

            impl $store {
                /// Inserts runs and their jobs (the ingest transaction calls this too).
                /// One save inside `tx`; `false` (nothing written) when `worker` does not hold
                /// the run's job. `done`: the job is finished too (deleted).
                async fn save_in(tx: &mut Tx, run_id: Uuid, worker: &str, p: &RunProgress, done: bool) -> StoreResult<bool> {
                    // The run's job carries its tenant: one read checks the lease and gives it.
                    let held: Option<(Option<Uuid>,)> = sqlx::query_as(concat!(
                        "SELECT tenant_id FROM jobs WHERE run_id = $1 AND locked_by = $2",
                        $for_update
                    ))
                    .bind(run_id)
                    .bind(worker)
                    .fetch_optional(&mut **tx)
                    .await?;
                    let Some((tenant,)) = held else {
                        return Ok(false);
                    };
                    let tenant = tenant.ok_or_else(|| StoreError::Corrupt(format!("the job of run {run_id} has no tenant")))?;
                    let now = bulwark_core::time::now();
                    if let Some(step) = &p.step {
                        let ms = (step.finished_at - step.started_at).num_milliseconds().clamp(0, i64::from(i32::MAX));
                        sqlx::query(
                            "INSERT INTO run_steps (id, run_id, tenant_id, ref, item_index, attempt, action, status, input, output, \
                             error, worker, started_at, finished_at, duration_ms) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                        )
                        .bind(Uuid::now_v7())
                        .bind(run_id)
                        .bind(tenant)
                        .bind(&step.step_ref)
                        .bind(step.item_index)
                        .bind(step.attempt)
                        .bind(&step.action)
                        .bind(&step.status)
                        .bind(Json(&step.input))
                        .bind(step.output.as_ref().map(Json))
                        .bind(step.error.clone())
                        .bind(worker)
                        .bind(step.started_at)
                        .bind(step.finished_at)
                        .bind(ms as i32)
                        .execute(&mut **tx)
                        .await?;
                    }
                    let finished = TERMINAL.contains(&p.status.as_str()).then_some(now);
                    sqlx::query(
                        "UPDATE playbook_runs SET status = $1, state = $2, outputs = $3, error = $4, \
                         started_at = COALESCE(started_at, $5), finished_at = $6, updated_at = $5, \
                         context = COALESCE($8, context) WHERE id = $7",
                    )
                    .bind(&p.status)
                    .bind(Json(&p.state))
                    .bind(p.outputs.as_ref().map(Json))
                    .bind(p.error.clone())
                    .bind(now)
                    .bind(finished)
                    .bind(run_id)
                    .bind(p.context.as_ref().map(Json))
                    .execute(&mut **tx)
                    .await?;
                    if done {
                        sqlx::query("DELETE FROM jobs WHERE run_id = $1 AND locked_by = $2")
                            .bind(run_id)
                            .bind(worker)
                            .execute(&mut **tx)
                            .await?;
                    }
                    Ok(true)
                }

                pub(crate) async fn insert_runs(tx: &mut Conn, runs: &[NewRun]) -> StoreResult<Vec<Uuid>> {
                    let now = bulwark_core::time::now();
                    let ids: Vec<Uuid> = runs.iter().map(|_| Uuid::now_v7()).collect();
                    for (chunk, chunk_ids) in runs.chunks(200).zip(ids.chunks(200)) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO playbook_runs (id, tenant_id, playbook_id, playbook_name, playbook_version, trigger, \
                             alert_id, incident_id, status, input, requested_by, created_at, updated_at) ",
                        );
                        qb.push_values(chunk.iter().zip(chunk_ids), |mut b, (r, id)| {
                            b.push_bind(*id)
                                .push_bind(r.tenant_id.0)
                                .push_bind(r.playbook_id)
                                .push_bind(r.playbook_name.clone())
                                .push_bind(r.playbook_version)
                                .push_bind(r.trigger.clone())
                                .push_bind(r.alert_id)
                                .push_bind(r.incident_id)
                                .push_bind(RUN_QUEUED)
                                .push_bind(Json(r.input.clone()))
                                .push_bind(r.requested_by.clone())
                                .push_bind(now)
                                .push_bind(now);
                        });
                        qb.build().execute(&mut *tx).await?;
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO jobs (id, kind, tenant_id, run_id, payload, priority, status, run_at, attempts, \
                             max_attempts, created_at, updated_at) ",
                        );
                        qb.push_values(chunk.iter().zip(chunk_ids), |mut b, (r, id)| {
                            b.push_bind(Uuid::now_v7())
                                .push_bind(JOB_PLAYBOOK_RUN)
                                .push_bind(r.tenant_id.0)
                                .push_bind(*id)
                                .push_bind(Json(json!({})))
                                .push_bind(r.priority)
                                .push_bind("queued")
                                .push_bind(now)
                                .push_bind(0)
                                .push_bind(5)
                                .push_bind(now)
                                .push_bind(now);
                        });
                        qb.build().execute(&mut *tx).await?;
                    }
                    if !runs.is_empty() {
                        Self::announce_jobs(tx).await?;
                    }
                    Ok(ids)
                }
            }
        }
    };
}
pub(crate) use impl_automation;

impl ApprovalRow {
    pub(crate) fn id_value(&self) -> Uuid {
        self.id
    }
    pub(crate) fn tenant_id_value(&self) -> Uuid {
        self.tenant_id
    }
}
