//! # bulwark-engine: the worker that executes playbook runs
//!
//! ## Execution model
//! A run is a row (`runs`) plus exactly one job (`jobs`) while it is not finished. A worker
//! claims jobs with a lease ([`EngineConfig::lease`]), heartbeats the lease every third of
//! it while working, loads the run's saved [`bulwark_playbook::RunState`] (or starts one) and
//! drives it: [`bulwark_playbook::RunState::advance`] says what to execute, the worker runs the
//! external actions from the [`ActionRegistry`] (each in its own tokio task, with its
//! timeout: a panic or a timeout is a failed step, never a dead worker), records each outcome
//! and saves the state **after every step, before anything that depends on it starts**
//! (`save_run`, one transaction with the attempt row). `set` and `wait` happen inside the state
//! machine; `approval` is handled by the worker itself (it asks the store for an approval and
//! parks the job until a decision or expiry wakes it).
//!
//! ## At-least-once, with idempotency keys
//! A worker that dies (or loses its lease) after an action's side effect but before the save
//! leaves the step "running" in the last saved state; the next worker calls
//! [`bulwark_playbook::RunState::recover`] and executes it again with the same
//! [`ActionContext::idempotency_key`]. Steps that were saved never run twice. Actions should
//! be idempotent where they can (tags are sets, statuses are targets; `http.request` sends the
//! key as `Idempotency-Key`); a comment or an incident created by the cut-off step may appear
//! twice.
//!
//! ## Leases
//! Every save, heartbeat and release names the worker; the store refuses them once the lease
//! was lost (lapsed and taken by another worker) or the run was cancelled, and the worker then
//! stops touching the run at once. Singleton duties (expiring approvals) run on the node that
//! holds the `scheduler` lease, which also fires cron schedules ([`schedule`]); the
//! playbooks directory ([`playbook_dir`]) is synced by the holder of the `playbook-loader`
//! lease. Wake-ups are by polling ([`EngineConfig::poll_interval`]); a
//! claim that returned jobs is followed by another at once. PostgreSQL LISTEN/NOTIFY is not
//! used yet.

pub mod action;
pub mod actions;
pub mod alert_writes;
pub mod http;
pub mod playbook_dir;
pub mod schedule;
pub mod worker;

pub use action::{Action, ActionContext, ActionError, ActionRegistry};
pub use worker::{Worker, run_worker, run_worker_with};

use bulwark_core::TenantId;
use std::time::Duration;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This worker's name in job leases (unique per worker; default: a random id).
    pub node_id: String,
    /// Jobs (runs) worked on at once.
    pub concurrency: usize,
    /// Steps of one run executing at once.
    pub step_concurrency: usize,
    /// Job lease; heartbeats every third of it.
    pub lease: Duration,
    /// How often an idle worker looks for jobs.
    pub poll_interval: Duration,
    /// A retry backoff or wait shorter than this is slept in place instead of releasing the job.
    pub inline_wait: Duration,
    /// `http.request` destinations allowed although private/loopback/...: host names or CIDRs.
    pub http_allow: Vec<String>,
    /// Largest `http.request` response body read.
    pub http_body_limit: usize,
    /// The platform tenant (its admins see every tenant), for assignee checks; default: the
    /// run's tenant.
    pub platform_tenant: Option<TenantId>,
    pub script_limits: bulwark_playbook::ScriptLimits,
    /// Playbooks loaded from (and kept in step with) this directory; see [`playbook_dir`].
    pub playbooks_dir: Option<std::path::PathBuf>,
    /// The actions playbooks may use: the built-in ones plus the integrations' (which the
    /// binary registers, with their implementations, through [`run_worker_with`]).
    pub catalog: std::sync::Arc<bulwark_playbook::Catalog>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            node_id: format!("worker-{}", uuid::Uuid::now_v7().simple()),
            concurrency: 64,
            step_concurrency: 8,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            inline_wait: Duration::from_secs(5),
            http_allow: Vec::new(),
            http_body_limit: 1024 * 1024,
            platform_tenant: None,
            script_limits: bulwark_playbook::ScriptLimits::default(),
            playbooks_dir: None,
            catalog: std::sync::Arc::new(bulwark_playbook::Catalog::builtin()),
        }
    }
}

/// Group commit: `first` and whatever else is already waiting in `rx`, up to `max` items, to be
/// written in one transaction (the worker's saves and its actions' alert writes).
pub(crate) fn gathered<T>(first: T, rx: &mut tokio::sync::mpsc::Receiver<T>, max: usize) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
    batch
}
