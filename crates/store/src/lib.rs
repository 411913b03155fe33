//! Storage for Bulwark: one trait per capability, implemented for embedded SQLite and for
//! PostgreSQL. The backend is chosen at start-up from the database URL.
//!
//! Both implementations are generated from the same SQL (see `foundation.rs`): sqlx accepts
//! `$N` placeholders on both backends, and the few places where the dialects differ
//! (transaction start, locking) are methods each backend provides. One contract test suite
//! (`tests/contract.rs`) runs against both.
//!
//! Tenant isolation: every method that reads or writes tenant data takes the caller's
//! [`Scope`]; a record outside it is reported as not found, exactly like a missing one.

pub mod alert_triage;
pub mod alerts;
pub mod audit;
pub mod automation;
pub mod dashboard;
pub mod enrichment;
mod foundation;
pub mod incidents;
pub mod ingest;
pub mod ingest_ops;
pub mod integrations;
pub mod notifications;
pub mod observables;
mod postgres;
mod scope_sql;
pub mod sessions;
mod sqlite;
mod sqlite_checkpoint;
mod sqlite_ingest;
pub mod tag_access;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use async_trait::async_trait;
use bulwark_core::model::{Analyst, AnalystCredentials, ApiKey, ApiKeyCredentials, Tenant};
use bulwark_core::{
    AlertAccess, AnalystId, ApiKeyId, ApiKeyScope, Caller, Principal, Role, Scope, TenantId,
};
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Errors a store operation can end with. Everything but `Backend` is a caller mistake or a
/// rule, and maps to a 4xx.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{field} already exists")]
    Conflict { field: &'static str },
    #[error("{0}")]
    Forbidden(String),
    /// The record's current state does not allow the change (409).
    #[error("{0}")]
    State(String),
    #[error("the last active platform admin cannot be demoted or disabled")]
    LastAdmin,
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    /// SQLite's ingest statements run through rusqlite (see `sqlite_ingest`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// PostgreSQL aborted the transaction to break a deadlock or a serialization conflict with
    /// a concurrent one: nothing was written and the same request can simply be sent again.
    pub fn is_retryable_conflict(&self) -> bool {
        match self {
            StoreError::Backend(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Who makes a change, for the audit trail.
#[derive(Debug, Clone)]
pub struct ChangeCtx {
    pub actor_kind: &'static str,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub request_id: Option<String>,
}

impl ChangeCtx {
    pub fn system(what: &str) -> Self {
        Self {
            actor_kind: "system",
            actor_id: None,
            actor_name: Some(what.to_string()),
            request_id: None,
        }
    }

    pub fn cli() -> Self {
        Self {
            actor_kind: "system",
            actor_id: None,
            actor_name: Some("cli".into()),
            request_id: None,
        }
    }

    pub fn from_caller(caller: &Caller, request_id: Option<String>) -> Self {
        let (actor_kind, actor_id, actor_name) = match &caller.principal {
            Principal::Analyst { id, username } => ("user", id.to_string(), username.clone()),
            Principal::ApiKey { id, name } => ("api_key", id.to_string(), name.clone()),
        };
        Self {
            actor_kind,
            actor_id: Some(actor_id),
            actor_name: Some(actor_name),
            request_id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct NewAnalyst {
    pub tenant_id: TenantId,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub tenant_ids: Vec<TenantId>,
}

/// A partial update of an analyst; `None` leaves the field alone.
#[derive(Debug, Clone, Default)]
pub struct AnalystPatch {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub display_name: Option<String>,
    pub tenant_ids: Option<Vec<TenantId>>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    pub digest: Vec<u8>,
    pub scopes: Vec<ApiKeyScope>,
    pub source: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<AnalystId>,
    /// HMAC secret for `X-Bulwark-Signature`; when set, requests must be signed.
    pub signing_secret: Option<String>,
    /// Accept OpenSOAR's `X-Webhook-Signature` (HMAC keyed with the API key).
    pub accept_key_signature: bool,
    pub rate_limit: Option<bulwark_core::model::RateLimit>,
}

#[async_trait]
pub trait TenantStore {
    async fn create_tenant(&self, ctx: &ChangeCtx, new: NewTenant) -> StoreResult<Tenant>;
    async fn list_tenants(&self, scope: &Scope) -> StoreResult<Vec<Tenant>>;
    async fn get_tenant(&self, scope: &Scope, id: TenantId) -> StoreResult<Tenant>;
    /// Unscoped: for bootstrap and the CLI, which act as the operator.
    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>>;
}

#[async_trait]
pub trait AnalystStore {
    async fn create_analyst(&self, ctx: &ChangeCtx, new: NewAnalyst) -> StoreResult<Analyst>;
    async fn list_analysts(&self, scope: &Scope) -> StoreResult<Vec<Analyst>>;
    async fn get_analyst(&self, scope: &Scope, id: AnalystId) -> StoreResult<Analyst>;
    /// Applies a patch. Refuses (`LastAdmin`) to leave no active admin, also under concurrent
    /// changes.
    async fn update_analyst(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: AnalystId,
        patch: AnalystPatch,
    ) -> StoreResult<Analyst>;
    /// Sets a new password hash and bumps the token version (older tokens stop working).
    async fn set_password(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: AnalystId,
        password_hash: String,
    ) -> StoreResult<()>;
    /// Unscoped credential lookups, for authentication only.
    async fn credentials_by_username(
        &self,
        username: &str,
    ) -> StoreResult<Option<AnalystCredentials>>;
    async fn credentials_by_id(&self, id: AnalystId) -> StoreResult<Option<AnalystCredentials>>;
    /// Records a successful login (last_login_at and the audit trail).
    async fn record_login(
        &self,
        ctx: &ChangeCtx,
        id: AnalystId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn count_analysts(&self) -> StoreResult<i64>;
}

#[async_trait]
pub trait ApiKeyStore {
    async fn create_api_key(&self, ctx: &ChangeCtx, new: NewApiKey) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, scope: &Scope) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> StoreResult<ApiKey>;
    /// Unscoped credential lookup by the key's public prefix, for authentication only.
    async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKeyCredentials>>;
    /// Writes batched `last_used_at` values (kept in memory between flushes).
    async fn touch_api_keys(&self, used: &[(ApiKeyId, DateTime<Utc>)]) -> StoreResult<()>;
    /// Which of `ids` are usable at `now` (not revoked, not expired): on PostgreSQL, the
    /// ingest check of a batch's keys just before its transaction (SQLite checks inside it).
    async fn usable_api_keys(
        &self,
        ids: &[ApiKeyId],
        now: DateTime<Utc>,
    ) -> StoreResult<std::collections::HashSet<ApiKeyId>>;
}

/// The tamper-evident audit trail. Appends normally happen inside the other stores'
/// transactions; `append_event` is for events that change no other state (failed logins).
#[async_trait]
pub trait AuditStore {
    async fn append_event(
        &self,
        tenant: TenantId,
        rec: bulwark_audit::NewRecord,
    ) -> StoreResult<()>;
    async fn list_audit(
        &self,
        scope: &Scope,
        filter: &audit::AuditFilter,
    ) -> StoreResult<Vec<audit::AuditEvent>>;
    async fn audit_head(&self, tenant: TenantId) -> StoreResult<Option<bulwark_audit::ChainHead>>;
    /// Rows with `seq > after_seq`, in order (unscoped: for verification and export).
    async fn audit_rows(
        &self,
        tenant: TenantId,
        after_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<bulwark_audit::StoredRow>>;
    /// Tenants that have an audit chain, within the scope.
    async fn audit_tenants(&self, scope: &Scope) -> StoreResult<Vec<TenantId>>;
    /// Stores a signed checkpoint; `false` when one already exists for that (tenant, seq).
    async fn insert_checkpoint(&self, cp: &bulwark_audit::SignedCheckpoint) -> StoreResult<bool>;
    async fn checkpoints(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<bulwark_audit::SignedCheckpoint>>;
}

/// Ingested alerts.
#[async_trait]
pub trait IngestStore {
    /// Stores a batch in one transaction (deduplicated, observables upserted, audit records
    /// appended) and answers per alert, in order. Nothing is acknowledged before the commit.
    async fn ingest(
        &self,
        batch: &[ingest::IncomingAlert],
        dedup_window: chrono::Duration,
    ) -> StoreResult<Vec<ingest::IngestOutcome>>;
    /// [`IngestStore::ingest`] for alerts delivered with API keys: `keys[i]` is the key that
    /// delivered `batch[i]`. The keys are checked first (on SQLite inside the transaction):
    /// the alerts of a key revoked or expired since its request was authenticated are not
    /// stored, and get `None`.
    async fn ingest_delivered(
        &self,
        batch: &[ingest::IncomingAlert],
        keys: &[Option<ApiKeyId>],
        dedup_window: chrono::Duration,
    ) -> StoreResult<Vec<Option<ingest::IngestOutcome>>>;
    async fn alert_count(&self, tenant: TenantId) -> StoreResult<i64>;
    /// (sightings, linked alerts) of an observable.
    async fn observable_sightings(
        &self,
        tenant: TenantId,
        kind: &str,
        value: &str,
    ) -> StoreResult<Option<(i64, i64)>>;
}

/// The alert queue for triage.
#[async_trait]
pub trait AlertStore {
    /// Alerts matching the filter within the scope, newest first (or oldest first), one page.
    async fn list_alerts(
        &self,
        access: &AlertAccess,
        filter: &alerts::AlertFilter,
    ) -> StoreResult<Vec<alerts::AlertSummary>>;
    /// One alert with its payloads and observables; `NotFound` outside the scope or the
    /// caller's tag rules.
    async fn get_alert(
        &self,
        access: &AlertAccess,
        id: uuid::Uuid,
    ) -> StoreResult<alerts::AlertDetail>;
    /// Several alerts in full, as [`AlertStore::get_alert`] gives them, in three queries;
    /// those outside the scope or deleted are left out (in no particular order).
    async fn get_alerts(
        &self,
        access: &AlertAccess,
        ids: &[uuid::Uuid],
    ) -> StoreResult<Vec<alerts::AlertDetail>>;
}

/// Triage changes to alerts. Every method applies the caller's tenant scope and tag rules;
/// an alert outside them is `NotFound`.
#[async_trait]
pub trait AlertTriageStore {
    /// Applies a change in one transaction; `false` when it changed nothing (nothing written).
    async fn update_alert(
        &self,
        ctx: &ChangeCtx,
        access: &AlertAccess,
        id: uuid::Uuid,
        req: &alert_triage::ChangeRequest,
    ) -> StoreResult<bool>;
    /// Playbook actions' writes in one transaction, each in a savepoint: a result per write (in
    /// order); `Err` only when the transaction itself failed (then nothing was written).
    async fn alert_writes(
        &self,
        writes: &[alert_triage::AlertWrite],
    ) -> StoreResult<Vec<StoreResult<alert_triage::AlertWritten>>>;
    /// One transaction for the whole request, a result per alert (in request order).
    async fn bulk_alerts(
        &self,
        ctx: &ChangeCtx,
        access: &AlertAccess,
        ids: &[uuid::Uuid],
        action: &alert_triage::BulkAction,
    ) -> StoreResult<Vec<alert_triage::BulkItem>>;
    /// Soft delete (recorded in the timeline and the audit trail).
    async fn delete_alert(
        &self,
        ctx: &ChangeCtx,
        access: &AlertAccess,
        id: uuid::Uuid,
    ) -> StoreResult<()>;
    async fn add_alert_comment(
        &self,
        ctx: &ChangeCtx,
        access: &AlertAccess,
        id: uuid::Uuid,
        body: &str,
        mentions: &[uuid::Uuid],
    ) -> StoreResult<alert_triage::Comment>;
    /// Only the author may edit (`Forbidden` otherwise).
    async fn edit_alert_comment(
        &self,
        ctx: &ChangeCtx,
        access: &AlertAccess,
        alert_id: uuid::Uuid,
        comment_id: uuid::Uuid,
        body: &str,
        mentions: &[uuid::Uuid],
    ) -> StoreResult<alert_triage::Comment>;
    async fn list_alert_comments(
        &self,
        access: &AlertAccess,
        id: uuid::Uuid,
    ) -> StoreResult<Vec<alert_triage::Comment>>;
    /// Oldest first, after the cursor.
    async fn alert_activities(
        &self,
        access: &AlertAccess,
        id: uuid::Uuid,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<alert_triage::Activity>>;
}

/// Observables (IOCs): list, one with its sightings, manual additions and changes. Every
/// method applies the caller's scope and tag rules (see `observables`).
#[async_trait]
pub trait ObservableStore {
    /// Observables matching the filter, one page, in the filter's order.
    async fn list_observables(
        &self,
        access: &AlertAccess,
        filter: &observables::ObservableFilter,
    ) -> StoreResult<Vec<observables::Observable>>;
    /// One observable with its enrichment and the alerts and incidents it appears in (those
    /// the caller may see); `NotFound` outside the scope or the caller's tag rules.
    async fn get_observable(
        &self,
        access: &AlertAccess,
        id: uuid::Uuid,
        opts: observables::SightingOptions,
    ) -> StoreResult<observables::ObservableDetail>;
    /// Adds an observable by hand (origin `manual`, audited), or reports the existing one with
    /// the same (tenant, kind, value) without changing it.
    async fn create_observable(
        &self,
        ctx: &ChangeCtx,
        access: &AlertAccess,
        new: observables::NewObservable,
    ) -> StoreResult<observables::CreateOutcome>;
    /// Changes tags, description and reputation fields (audited when something changes).
    async fn update_observable(
        &self,
        ctx: &ChangeCtx,
        access: &AlertAccess,
        id: uuid::Uuid,
        patch: observables::ObservablePatch,
    ) -> StoreResult<observables::Observable>;
}

/// Dashboard statistics over the alerts the caller may see (see `dashboard`).
#[async_trait]
pub trait DashboardStore {
    async fn dashboard_stats(
        &self,
        access: &AlertAccess,
        query: &dashboard::DashboardQuery,
    ) -> StoreResult<dashboard::DashboardStats>;

    /// Rebuilds the dashboard's hourly roll-up from the alerts, in one transaction. Never
    /// needed by Bulwark itself (ingestion and triggers keep it exact); for tools that write
    /// alerts straight into the table (the benchmark's bulk loader) and for repairs.
    async fn rebuild_dashboard_rollup(&self) -> StoreResult<()>;
}

/// Incidents: lifecycle, linked alerts, timeline, comments, tasks and suggestions (see
/// `incidents`). Incidents are tenant-scoped; alerts reached through them obey tag access.
#[async_trait]
pub trait IncidentStore {
    /// Creates an incident (template defaults and tasks applied, alerts linked) with the next
    /// number of its tenant.
    async fn create_incident(
        &self,
        who: &incidents::Acting<'_>,
        new: incidents::NewIncident,
    ) -> StoreResult<incidents::IncidentDetail>;
    /// Newest first, one page.
    async fn list_incidents(
        &self,
        access: &AlertAccess,
        filter: &incidents::IncidentFilter,
    ) -> StoreResult<Vec<incidents::Incident>>;
    /// One incident with the aggregates of its visible linked alerts and its tasks.
    async fn get_incident(
        &self,
        access: &AlertAccess,
        id: uuid::Uuid,
    ) -> StoreResult<incidents::IncidentDetail>;
    /// Applies a patch; a status change must pass the lifecycle (`Invalid { field: "status" }`).
    async fn update_incident(
        &self,
        who: &incidents::Acting<'_>,
        id: uuid::Uuid,
        patch: incidents::IncidentPatch,
    ) -> StoreResult<incidents::IncidentDetail>;
    /// Soft delete.
    async fn delete_incident(&self, who: &incidents::Acting<'_>, id: uuid::Uuid)
    -> StoreResult<()>;
    /// Links alerts (idempotent); answers per alert, in request order.
    async fn link_alerts(
        &self,
        who: &incidents::Acting<'_>,
        id: uuid::Uuid,
        alert_ids: &[uuid::Uuid],
    ) -> StoreResult<Vec<incidents::LinkResult>>;
    /// `NotFound` when the alert is not linked (or not visible).
    async fn unlink_alert(
        &self,
        who: &incidents::Acting<'_>,
        id: uuid::Uuid,
        alert_id: uuid::Uuid,
    ) -> StoreResult<()>;
    /// Unlinks from `from` and links to `to` in one transaction.
    async fn move_alert(
        &self,
        who: &incidents::Acting<'_>,
        from: uuid::Uuid,
        alert_id: uuid::Uuid,
        to: uuid::Uuid,
    ) -> StoreResult<()>;
    /// The visible linked alerts, newest first, one page.
    async fn incident_alerts(
        &self,
        access: &AlertAccess,
        id: uuid::Uuid,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<alerts::AlertSummary>>;
    /// Events, arrivals of linked alerts, comments and linked alerts' activities, oldest first.
    async fn incident_timeline(
        &self,
        access: &AlertAccess,
        id: uuid::Uuid,
        filter: &incidents::TimelineFilter,
    ) -> StoreResult<Vec<incidents::TimelineItem>>;
    /// Groups of open, unlinked alerts sharing an observable or a hostname.
    async fn suggest_incidents(
        &self,
        access: &AlertAccess,
        filter: &incidents::SuggestionFilter,
    ) -> StoreResult<Vec<incidents::Suggestion>>;
    /// `mentioned` are lower-case usernames; those that exist and see the tenant are kept.
    async fn add_incident_comment(
        &self,
        who: &incidents::Acting<'_>,
        id: uuid::Uuid,
        body: String,
        mentioned: &[String],
    ) -> StoreResult<incidents::IncidentComment>;
    /// Oldest first, one page.
    async fn list_incident_comments(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<incidents::IncidentComment>>;
    /// Only the author may edit (`NotAuthor` otherwise).
    async fn edit_incident_comment(
        &self,
        who: &incidents::Acting<'_>,
        id: uuid::Uuid,
        comment: uuid::Uuid,
        body: String,
        mentioned: &[String],
    ) -> StoreResult<incidents::CommentEdit>;
    async fn list_incident_tasks(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<Vec<incidents::IncidentTask>>;
    async fn add_incident_task(
        &self,
        who: &incidents::Acting<'_>,
        id: uuid::Uuid,
        task: incidents::NewTask,
    ) -> StoreResult<incidents::IncidentTask>;
    async fn update_incident_task(
        &self,
        who: &incidents::Acting<'_>,
        id: uuid::Uuid,
        task: uuid::Uuid,
        patch: incidents::TaskPatch,
    ) -> StoreResult<incidents::IncidentTask>;
    async fn delete_incident_task(
        &self,
        who: &incidents::Acting<'_>,
        id: uuid::Uuid,
        task: uuid::Uuid,
    ) -> StoreResult<()>;
}

/// Automation: playbooks, runs, the durable job queue, approvals, leases (see `automation`).
/// Methods taking a `Scope` treat a record outside it as not found; global playbooks
/// (`tenant_id` None) are visible to every scope but changed only with `Scope::AllTenants`.
#[async_trait]
pub trait AutomationStore {
    async fn list_playbooks(&self, scope: &Scope) -> StoreResult<Vec<automation::PlaybookRecord>>;
    async fn get_playbook(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<automation::PlaybookRecord>;
    async fn playbook_by_name(&self, name: &str)
    -> StoreResult<Option<automation::PlaybookRecord>>;
    /// Versions of a playbook, newest first.
    async fn playbook_versions(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<Vec<automation::PlaybookVersion>>;
    /// The spec of one version (runs execute the version they started with).
    async fn playbook_version_spec(
        &self,
        id: uuid::Uuid,
        version: i32,
    ) -> StoreResult<serde_json::Value>;
    /// `Conflict { field: "name" }` when the name is taken. `audit_tenant`: whose chain records it.
    async fn create_playbook(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        audit_tenant: TenantId,
        new: automation::PlaybookWrite,
    ) -> StoreResult<automation::PlaybookRecord>;
    /// A new version. `expected_version`: `State` (409) when the stored one differs.
    async fn update_playbook(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        audit_tenant: TenantId,
        id: uuid::Uuid,
        expected_version: Option<i32>,
        new: automation::PlaybookWrite,
    ) -> StoreResult<automation::PlaybookRecord>;
    async fn set_playbook_enabled(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        audit_tenant: TenantId,
        id: uuid::Uuid,
        enabled: bool,
    ) -> StoreResult<automation::PlaybookRecord>;
    /// Deletes the playbook and its versions; its runs stay (with their name and version).
    async fn delete_playbook(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        audit_tenant: TenantId,
        id: uuid::Uuid,
    ) -> StoreResult<()>;
    /// Every enabled playbook, all tenants (for trigger matching).
    async fn enabled_playbooks(&self) -> StoreResult<Vec<automation::PlaybookRecord>>;
    /// Changes whenever any playbook changes (count and latest update): other nodes poll it to
    /// reload their triggers.
    async fn playbooks_marker(&self) -> StoreResult<String>;

    /// Creates runs, each with its job, in one transaction.
    async fn create_runs(&self, runs: &[automation::NewRun]) -> StoreResult<Vec<uuid::Uuid>>;
    async fn list_runs(
        &self,
        scope: &Scope,
        filter: &automation::RunFilter,
    ) -> StoreResult<Vec<automation::RunRecord>>;
    async fn get_run(&self, scope: &Scope, id: uuid::Uuid) -> StoreResult<automation::RunRecord>;
    /// The runs of claimed jobs with whether their playbook is still enabled (false when it
    /// was deleted), in one query: what a worker reads before driving them.
    async fn runs_to_drive(
        &self,
        ids: &[uuid::Uuid],
    ) -> StoreResult<Vec<(automation::RunRecord, bool)>>;
    /// Every attempt of a run, in order.
    async fn run_steps(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<Vec<automation::StepRecord>>;
    /// Cancels a run that has not finished (`State` if it has): status `cancelled`, its job and
    /// pending approvals removed. A worker holding it stops at its next save.
    async fn cancel_run(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<automation::RunRecord>;
    /// Saves a run's progress (state, status, the attempt) while `worker` holds the run's job
    /// lease; `State` when it does not (the lease lapsed and another worker took over) or the
    /// run was cancelled meanwhile.
    async fn save_run(
        &self,
        run_id: uuid::Uuid,
        worker: &str,
        progress: automation::RunProgress,
    ) -> StoreResult<()>;

    /// Several saves (of runs `worker` holds) in one transaction: group commit for a worker's
    /// concurrent runs. Per save, `false` when the worker no longer holds that run (nothing of
    /// it written); the others are written regardless.
    async fn save_runs(
        &self,
        worker: &str,
        saves: &[automation::RunSave],
    ) -> StoreResult<Vec<bool>>;

    /// Claims up to `limit` ready jobs of `kinds` for `lease`.
    async fn claim_jobs(
        &self,
        worker: &str,
        kinds: &[&str],
        limit: i64,
        lease: std::time::Duration,
    ) -> StoreResult<Vec<automation::ClaimedJob>>;
    /// Extends the lease; `false` when `worker` no longer holds it.
    async fn heartbeat(
        &self,
        job: uuid::Uuid,
        worker: &str,
        lease: std::time::Duration,
    ) -> StoreResult<bool>;
    /// Hands a job back; `false` when `worker` no longer holds it (nothing changed).
    async fn release_job(
        &self,
        job: uuid::Uuid,
        worker: &str,
        release: automation::JobRelease,
    ) -> StoreResult<bool>;
    /// Waits until jobs may have become ready (runs created, a parked run woken, here or, on
    /// PostgreSQL, on another node) or `timeout` passed. Wake-ups are hints: the caller claims
    /// to find out.
    async fn wait_for_jobs(&self, timeout: std::time::Duration);
    /// Queues a parked run's job again (an approval was decided).
    async fn wake_run(&self, run_id: uuid::Uuid) -> StoreResult<()>;
    /// Jobs by status (`queued`, `parked`, `dead`), for the metrics and tests.
    async fn job_counts(&self) -> StoreResult<Vec<(String, i64)>>;

    /// Creates the approval of a run's step, or returns the one that exists (a resumed run asks
    /// again).
    async fn request_approval(
        &self,
        new: automation::NewApproval,
    ) -> StoreResult<automation::ApprovalRecord>;
    async fn list_approvals(
        &self,
        scope: &Scope,
        status: Option<&str>,
    ) -> StoreResult<Vec<automation::ApprovalRecord>>;
    async fn get_approval(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<automation::ApprovalRecord>;
    /// The approval of a run's step, if one was requested.
    async fn approval_for_step(
        &self,
        run_id: uuid::Uuid,
        step_ref: &str,
        item_index: Option<i32>,
    ) -> StoreResult<Option<automation::ApprovalRecord>>;
    /// Records a decision. One reject rejects; `approvers_required` different approvers approve.
    /// `Forbidden` when the decider's role may not decide it; `State` when it is no longer
    /// pending or the decider already decided. A final decision wakes the run.
    async fn decide_approval(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: uuid::Uuid,
        decider: &automation::Decider,
        approve: bool,
        comment: Option<String>,
    ) -> StoreResult<automation::ApprovalRecord>;
    /// Marks pending approvals past their expiry `expired` and wakes their runs.
    async fn expire_approvals(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<automation::ApprovalRecord>>;

    /// Takes or renews the lease `name` for `holder` when it is free, expired or already
    /// `holder`'s; `false` when someone else holds it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<bool>;

    /// Every cron schedule row (one per schedule trigger of an enabled playbook, kept in step
    /// by the scheduler).
    async fn list_schedules(&self) -> StoreResult<Vec<automation::ScheduleRecord>>;
    /// Inserts the schedule of (playbook, trigger) or replaces its cron and next fire time.
    async fn upsert_schedule(&self, s: &automation::ScheduleRecord) -> StoreResult<()>;
    /// Removes the schedule of (playbook, trigger).
    async fn delete_schedule(&self, playbook_id: uuid::Uuid, trigger_index: i32)
    -> StoreResult<()>;
    /// Fires one slot of a schedule in one transaction: moves `next_fire_at` from
    /// `fire.expected` to `fire.next` and creates `fire.runs` (with their jobs). `None` (and
    /// nothing written) when the row no longer has `fire.expected`: another scheduler fired
    /// that slot, or the schedule changed or went away.
    async fn fire_schedule(
        &self,
        fire: &automation::ScheduleFire,
    ) -> StoreResult<Option<Vec<uuid::Uuid>>>;
}

/// Integration instances, health results and actions run by hand (see `integrations`).
#[async_trait]
pub trait IntegrationStore {
    /// The scope's instances (optionally one tenant's), by type and name.
    async fn list_integrations(
        &self,
        scope: &Scope,
        tenant: Option<TenantId>,
    ) -> StoreResult<Vec<integrations::IntegrationRecord>>;
    async fn get_integration(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<integrations::IntegrationRecord>;
    /// A tenant's instances of one type (for actions, which run in their run's tenant).
    async fn integrations_of_type(
        &self,
        tenant: TenantId,
        type_name: &str,
    ) -> StoreResult<Vec<integrations::IntegrationRecord>>;
    /// A tenant's enabled instances marked for automatic enrichment.
    async fn enrichment_integrations(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<integrations::IntegrationRecord>>;
    /// `Conflict { field: "name" }` when the tenant has one of that name. Audited.
    async fn create_integration(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        new: integrations::IntegrationWrite,
    ) -> StoreResult<integrations::IntegrationRecord>;
    /// Replaces the instance `write.id` (the caller merged the patch). Audited.
    async fn update_integration(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        write: integrations::IntegrationWrite,
    ) -> StoreResult<integrations::IntegrationRecord>;
    async fn delete_integration(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<()>;
    async fn record_integration_health(
        &self,
        id: uuid::Uuid,
        result: &integrations::HealthResult,
    ) -> StoreResult<()>;
    /// Every stored ciphertext (for key rotation), unscoped: the operator's CLI only.
    async fn integration_secrets(&self) -> StoreResult<Vec<(uuid::Uuid, String)>>;
    /// Replaces a ciphertext if it is still `old` (a concurrent change wins).
    async fn replace_integration_secret(
        &self,
        id: uuid::Uuid,
        old: &str,
        new: &str,
    ) -> StoreResult<bool>;
    /// Records an action run by hand, on the alert's timeline (kind `action`) when it names
    /// one, and in the audit chain.
    async fn record_action_execution(
        &self,
        ctx: &ChangeCtx,
        execution: &integrations::NewActionExecution,
    ) -> StoreResult<uuid::Uuid>;
}

/// Notification rules and deliveries (see `notifications`).
#[async_trait]
pub trait NotificationStore {
    async fn list_notification_rules(
        &self,
        scope: &Scope,
        tenant: Option<TenantId>,
    ) -> StoreResult<Vec<notifications::NotificationRule>>;
    async fn get_notification_rule(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<notifications::NotificationRule>;
    /// `Conflict { field: "name" }` when the tenant has a rule of that name; `Invalid {
    /// field: "integration_id" }` when the channel is not an instance of the tenant. Audited.
    async fn create_notification_rule(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        rule: notifications::RuleWrite,
    ) -> StoreResult<notifications::NotificationRule>;
    /// Replaces the rule `rule.id` (the caller merged the patch). Audited.
    async fn update_notification_rule(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        rule: notifications::RuleWrite,
    ) -> StoreResult<notifications::NotificationRule>;
    /// Deletes a rule; its deliveries stay. Audited.
    async fn delete_notification_rule(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<()>;
    /// A rule, unscoped (for the worker, acting for the delivery's tenant).
    async fn notification_rule_of(
        &self,
        id: uuid::Uuid,
    ) -> StoreResult<Option<notifications::NotificationRule>>;
    /// Newest first.
    async fn list_notification_deliveries(
        &self,
        scope: &Scope,
        filter: &notifications::DeliveryFilter,
    ) -> StoreResult<Vec<notifications::Delivery>>;
    async fn get_notification_delivery(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<notifications::Delivery>;
    /// A delivery, unscoped (for the worker).
    async fn delivery_for_worker(
        &self,
        id: uuid::Uuid,
    ) -> StoreResult<Option<notifications::Delivery>>;
    /// Records one attempt (the rendered text, the outcome); a final outcome is audited
    /// (`notification.sent` / `notification.failed`).
    async fn record_delivery_attempt(
        &self,
        id: uuid::Uuid,
        outcome: &notifications::AttemptOutcome,
    ) -> StoreResult<notifications::Delivery>;
    /// A test delivery of a rule (one attempt, no job: the caller sends it at once).
    async fn create_test_delivery(
        &self,
        scope: &Scope,
        rule_id: uuid::Uuid,
        context: serde_json::Value,
    ) -> StoreResult<notifications::Delivery>;
    /// Queues a failed delivery again with fresh attempts; `State` unless it failed. Audited.
    async fn retry_delivery(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<notifications::Delivery>;
    /// The scanner's SLA pass: one delivery per (rule, open incident) whose warning point
    /// passed. Idempotent. Returns how many were queued.
    async fn queue_sla_notifications(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Deliveries in the `failed` state, all tenants (for `/metrics`).
    async fn failed_delivery_count(&self) -> StoreResult<i64>;
}

/// Automatic enrichment: per-tenant settings, the lookup cache and the merged reputation (see
/// `enrichment`).
#[async_trait]
pub trait EnrichmentStore {
    /// The tenant's settings (the defaults when none were saved); `NotFound` outside the scope.
    async fn get_enrichment_settings(
        &self,
        scope: &Scope,
        tenant: TenantId,
    ) -> StoreResult<enrichment::EnrichmentSettings>;
    /// Replaces the tenant's settings (audited).
    async fn set_enrichment_settings(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        tenant: TenantId,
        settings: &enrichment::EnrichmentSettings,
    ) -> StoreResult<()>;
    /// The settings of a tenant, unscoped (for the worker, which acts for the job's tenant).
    async fn enrichment_settings_of(
        &self,
        tenant: TenantId,
    ) -> StoreResult<enrichment::EnrichmentSettings>;
    /// The observables a job names (unscoped: the job was queued for them).
    async fn enrichment_targets(
        &self,
        ids: &[uuid::Uuid],
    ) -> StoreResult<Vec<enrichment::EnrichTarget>>;
    /// Takes a lookup for `lease`: `true` when its cached answer expired (or there is none,
    /// or `force`), no backoff runs and no other worker holds it.
    async fn claim_lookup(
        &self,
        key: &enrichment::LookupKey,
        lease: std::time::Duration,
        force: bool,
    ) -> StoreResult<bool>;
    /// Records a lookup's outcome and the observable's merged reputation in one transaction.
    /// For a failure, when the next attempt is due.
    async fn record_lookup(
        &self,
        key: &enrichment::LookupKey,
        outcome: enrichment::LookupOutcome,
    ) -> StoreResult<Option<DateTime<Utc>>>;
    /// Queues enrichment of `ids` (of `tenant`) now; `force` looks fresh answers up again.
    /// Audited unless the actor is the system.
    async fn queue_enrichment(
        &self,
        ctx: &ChangeCtx,
        tenant: TenantId,
        ids: &[uuid::Uuid],
        force: bool,
    ) -> StoreResult<Vec<uuid::Uuid>>;
}

/// Incident templates, per tenant (names unique per tenant).
#[async_trait]
pub trait IncidentTemplateStore {
    async fn list_incident_templates(
        &self,
        scope: &Scope,
        tenant: Option<TenantId>,
    ) -> StoreResult<Vec<incidents::IncidentTemplate>>;
    async fn get_incident_template(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<incidents::IncidentTemplate>;
    async fn create_incident_template(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        new: incidents::NewTemplate,
    ) -> StoreResult<incidents::IncidentTemplate>;
    async fn update_incident_template(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: uuid::Uuid,
        patch: incidents::TemplatePatch,
    ) -> StoreResult<incidents::IncidentTemplate>;
    async fn delete_incident_template(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<()>;
}

/// Tag-based access settings, per tenant (see `tag_access`).
#[async_trait]
pub trait TagAccessStore {
    async fn get_tag_access(
        &self,
        scope: &Scope,
        tenant: TenantId,
    ) -> StoreResult<tag_access::TagAccessConfig>;
    /// Replaces the tenant's settings and allow-lists (audited).
    async fn set_tag_access(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        tenant: TenantId,
        config: &tag_access::TagAccessConfig,
    ) -> StoreResult<()>;
}

/// The dead-letter list and the ingestion counters.
#[async_trait]
pub trait IngestOpsStore {
    /// Keeps rejected payloads, then trims each tenant's list to its newest `keep_per_tenant`.
    async fn add_dead_letters(
        &self,
        letters: &[ingest_ops::NewDeadLetter],
        keep_per_tenant: u32,
    ) -> StoreResult<Vec<uuid::Uuid>>;
    /// Newest first, without payloads.
    async fn list_dead_letters(
        &self,
        scope: &Scope,
        filter: &ingest_ops::DeadLetterFilter,
    ) -> StoreResult<Vec<ingest_ops::DeadLetter>>;
    /// One dead letter with its payload.
    async fn get_dead_letter(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<ingest_ops::DeadLetter>;
    /// Records a successful replay (audited).
    async fn mark_dead_letter_replayed(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: uuid::Uuid,
        alert_id: uuid::Uuid,
    ) -> StoreResult<ingest_ops::DeadLetter>;
    /// Deletes a dead letter (audited).
    async fn discard_dead_letter(
        &self,
        ctx: &ChangeCtx,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> StoreResult<()>;
    async fn add_ingest_counts(&self, counts: &[ingest_ops::IngestCount]) -> StoreResult<()>;
    /// Counters summed from `since` (a UTC day) on.
    async fn ingest_stats(
        &self,
        scope: &Scope,
        since: chrono::NaiveDate,
    ) -> StoreResult<Vec<ingest_ops::IngestStat>>;
}

/// Sessions of the web console, keyed by the SHA-256 of the session id (see `sessions`).
#[async_trait]
pub trait SessionStore {
    async fn create_session(&self, new: &sessions::NewSession) -> StoreResult<()>;
    async fn session_by_hash(&self, id_hash: &[u8])
    -> StoreResult<Option<sessions::SessionRecord>>;
    /// Moves `last_seen_at` forward to `at` (never back).
    async fn touch_session(&self, id_hash: &[u8], at: DateTime<Utc>) -> StoreResult<()>;
    async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()>;
    /// Deletes the sessions past their absolute expiry or last seen before `idle_before`.
    async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> StoreResult<u64>;
}

#[async_trait]
pub trait Health {
    /// A round trip to the database.
    async fn ping(&self) -> StoreResult<()>;
    fn backend(&self) -> Backend;
    /// Closes the pools (graceful shutdown).
    async fn close(&self);
}

/// Everything a Bulwark node needs from its database.
pub trait Database:
    TenantStore
    + AnalystStore
    + ApiKeyStore
    + AuditStore
    + IngestStore
    + IngestOpsStore
    + AlertStore
    + AlertTriageStore
    + TagAccessStore
    + ObservableStore
    + DashboardStore
    + IncidentStore
    + IncidentTemplateStore
    + AutomationStore
    + SessionStore
    + IntegrationStore
    + EnrichmentStore
    + NotificationStore
    + Health
    + Send
    + Sync
{
}
impl<T> Database for T where
    T: TenantStore
        + AnalystStore
        + ApiKeyStore
        + AuditStore
        + IngestStore
        + IngestOpsStore
        + AlertStore
        + AlertTriageStore
        + TagAccessStore
        + ObservableStore
        + DashboardStore
        + IncidentStore
        + IncidentTemplateStore
        + AutomationStore
        + SessionStore
        + IntegrationStore
        + EnrichmentStore
        + NotificationStore
        + Health
        + Send
        + Sync
{
}

pub type Store = Arc<dyn Database>;

/// Opens (creating if needed) and migrates the database at `url`: `sqlite://path`,
/// `sqlite:path` or `postgres://...`.
pub async fn open(url: &str) -> StoreResult<Store> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::Invalid {
            field: "database_url",
            message: "must start with sqlite:, postgres:// or postgresql://".into(),
        })
    }
}

/// Applies pending migrations without serving (for `bulwark migrate`). Returns the backend.
pub async fn migrate(url: &str) -> StoreResult<Backend> {
    let store = open(url).await?;
    let backend = store.backend();
    store.close().await;
    Ok(backend)
}

fn parse_role(s: &str) -> StoreResult<Role> {
    s.parse()
        .map_err(|e: bulwark_core::access::UnknownName| StoreError::Corrupt(e.to_string()))
}

fn parse_scopes(s: &str) -> StoreResult<Vec<ApiKeyScope>> {
    s.split_whitespace()
        .map(|p| {
            p.parse()
                .map_err(|e: bulwark_core::access::UnknownName| StoreError::Corrupt(e.to_string()))
        })
        .collect()
}

fn format_scopes(scopes: &[ApiKeyScope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Maps a unique-constraint violation to `Conflict { field }`, anything else to `Backend`.
fn conflict_or(err: sqlx::Error, field: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { field },
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Invalid {
            field,
            message: "refers to a record that does not exist".into(),
        },
        _ => StoreError::Backend(err),
    }
}
