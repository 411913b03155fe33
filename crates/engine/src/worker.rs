//! The worker loop: claims playbook-run jobs and drives their runs (see the crate docs).

use crate::EngineConfig;
use crate::action::{ActionContext, ActionRegistry};
use bulwark_core::{AlertAccess, Scope};
use bulwark_playbook::{
    Advance, Catalog, Playbook, RunState, Sandbox, Step, StepOutcome, UnitStatus,
};
use bulwark_store::automation::{
    ApprovalRecord, ClaimedJob, JOB_PLAYBOOK_RUN, JobRelease, NewApproval, NewStep, RunProgress,
    RunRecord, RunSave,
};
use bulwark_store::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

/// What a run needs before it starts, read for a whole claim at once ([`Worker::prefetch`]).
struct Prefetched {
    run: RunRecord,
    enabled: bool,
    /// The alert the run starts from, as `get_alert` gives it (new runs only).
    alert: Option<Value>,
}

/// Where a run's saves go, and whether its trigger context was saved by this drive.
struct RunSaving {
    run_id: Uuid,
    /// Written with the first save of every drive (a resumed run's row may predate the
    /// context column), left out after that.
    context_saved: bool,
}

/// Why driving a run stopped early.
#[derive(Debug)]
enum Stop {
    /// The lease was lost or the run cancelled: do not touch the run any more.
    Lost,
    /// A failure of the worker (not of an action): the job is retried later.
    Job(String),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::State(_) => Stop::Lost,
            e => Stop::Job(e.to_string()),
        }
    }
}

/// A worker: the store, the actions and the compiled-playbook cache.
pub struct Worker {
    store: Store,
    config: EngineConfig,
    registry: ActionRegistry,
    catalog: Catalog,
    playbooks: Mutex<HashMap<(Uuid, i32), Arc<Playbook>>>,
    /// Group commit of this worker's saves (started on first use).
    saves: tokio::sync::OnceCell<mpsc::Sender<PendingSave>>,
    /// Group commit of its actions' alert writes (started on first use).
    alert_writer: std::sync::OnceLock<crate::alert_writes::AlertWriter>,
}

const CACHE_MAX: usize = 256;

/// Saves gathered into one transaction at most.
const SAVE_BATCH: usize = 256;

type PendingSave = (RunSave, oneshot::Sender<Result<bool, StoreError>>);

/// Writes the saves of this worker's concurrent runs: whatever has gathered goes in one
/// transaction (on SQLite every write waits for the one writer, so one commit per save would
/// cap a worker at the writer's commit rate). Each run still waits for its own save to commit
/// before it starts anything that depends on it. If a batch fails, each save is retried alone
/// so one bad save cannot fail the others.
async fn save_loop(store: Store, worker: String, mut rx: mpsc::Receiver<PendingSave>) {
    while let Some(first) = rx.recv().await {
        let batch = crate::gathered(first, &mut rx, SAVE_BATCH);
        let (saves, replies): (Vec<RunSave>, Vec<_>) = batch.into_iter().unzip();
        match store.save_runs(&worker, &saves).await {
            Ok(held) => {
                for (reply, h) in replies.into_iter().zip(held) {
                    let _ = reply.send(Ok(h));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, saves = saves.len(), "batched save failed; saving one by one");
                for (save, reply) in saves.into_iter().zip(replies) {
                    let result = store
                        .save_runs(&worker, std::slice::from_ref(&save))
                        .await
                        .map(|h| h.first().copied().unwrap_or(false));
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Runs a worker until `stop` turns true; runs in progress are finished or handed back.
/// With `playbooks_dir`, the directory loader runs beside it.
pub async fn run_worker(store: Store, config: EngineConfig, stop: watch::Receiver<bool>) {
    run_worker_with(store, config, Vec::new(), stop).await
}

/// [`run_worker`] with more actions (the integrations'); `config.catalog` must list them.
pub async fn run_worker_with(
    store: Store,
    config: EngineConfig,
    extra: Vec<Arc<dyn crate::action::Action>>,
    stop: watch::Receiver<bool>,
) {
    let loader = config.playbooks_dir.clone().map(|dir| {
        tokio::spawn(crate::playbook_dir::run_loader_with(
            store.clone(),
            dir,
            config.node_id.clone(),
            config.platform_tenant,
            config.catalog.clone(),
            stop.clone(),
        ))
    });
    let mut registry = ActionRegistry::builtin(&config);
    for a in extra {
        registry.register(a);
    }
    Arc::new(Worker::new(store, config, registry))
        .run(stop)
        .await;
    if let Some(l) = loader {
        let _ = l.await;
    }
}

impl Worker {
    pub fn new(store: Store, config: EngineConfig, registry: ActionRegistry) -> Self {
        Self {
            store,
            registry,
            catalog: (*config.catalog).clone(),
            config,
            playbooks: Mutex::new(HashMap::new()),
            saves: tokio::sync::OnceCell::new(),
            alert_writer: std::sync::OnceLock::new(),
        }
    }

    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let slots = self.config.concurrency.max(1);
        let sem = Arc::new(Semaphore::new(slots));
        let mut next_duty = tokio::time::Instant::now();
        tracing::info!(node = %self.config.node_id, "worker running");
        loop {
            if *stop.borrow() {
                break;
            }
            if tokio::time::Instant::now() >= next_duty {
                self.scheduler_duties().await;
                next_duty = tokio::time::Instant::now() + Duration::from_secs(5);
            }
            let free = sem.available_permits();
            if free == 0 {
                // Every slot busy: go on as soon as one frees.
                tokio::select! {
                    p = sem.clone().acquire_owned() => drop(p),
                    _ = stop.changed() => {}
                }
                continue;
            }
            if free < slots / 2 {
                // Claim for several freed slots at once (one claim transaction per group, not
                // per slot), waiting briefly for more runs to finish.
                let _ = tokio::time::timeout(
                    Duration::from_millis(2),
                    sem.acquire_many((slots / 2) as u32),
                )
                .await;
            }
            let free = sem.available_permits();
            let mut claimed = 0;
            {
                match self
                    .store
                    .claim_jobs(
                        &self.config.node_id,
                        &[JOB_PLAYBOOK_RUN],
                        free as i64,
                        self.config.lease,
                    )
                    .await
                {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        let mut loaded = self.prefetch(&jobs).await;
                        for job in jobs {
                            let Ok(permit) = sem.clone().acquire_owned().await else {
                                break;
                            };
                            let me = self.clone();
                            let stop = stop.clone();
                            let pre = job.run_id.and_then(|id| loaded.remove(&id));
                            tokio::spawn(async move {
                                me.process_loaded(job, pre, stop).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot claim jobs"),
                }
            }
            if claimed > 0 {
                continue;
            }
            // Idle: wait for a wake-up (runs queued, a run woken) or the poll interval.
            tokio::select! {
                _ = self.store.wait_for_jobs(self.config.poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
        // Let the runs in progress reach a save point and hand their jobs back.
        let _ = sem.acquire_many(slots as u32).await;
        tracing::info!("worker stopped");
    }

    /// Duties of the node that holds the `scheduler` lease.
    async fn scheduler_duties(&self) {
        match self
            .store
            .try_lease("scheduler", &self.config.node_id, Duration::from_secs(15))
            .await
        {
            Ok(true) => {
                match self.store.expire_approvals(Utc::now()).await {
                    Ok(v) if !v.is_empty() => {
                        tracing::info!(expired = v.len(), "approvals expired")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot expire approvals"),
                }
                if let Err(e) = crate::schedule::run_schedules(&self.store, Utc::now()).await {
                    tracing::warn!(error = %e, "cannot run the cron schedules");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "scheduler lease"),
        }
    }

    /// Reads what the runs of claimed jobs need before they start, for the whole claim at
    /// once: the runs with their playbooks' enabled flag (one query) and the alerts new runs
    /// start from (three queries). Read per run, these were most of a short run's database
    /// round trips. Whatever is missing here is read by the run itself.
    async fn prefetch(&self, jobs: &[ClaimedJob]) -> HashMap<Uuid, Prefetched> {
        let ids: Vec<Uuid> = jobs.iter().filter_map(|j| j.run_id).collect();
        if ids.is_empty() {
            return HashMap::new();
        }
        let runs = match self.store.runs_to_drive(&ids).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the claimed runs; each reads its own");
                return HashMap::new();
            }
        };
        let alert_ids: Vec<Uuid> = runs
            .iter()
            .filter(|(r, _)| r.state.is_none())
            .filter_map(|(r, _)| r.alert_id)
            .collect();
        let mut alerts: HashMap<Uuid, bulwark_store::alerts::AlertDetail> = HashMap::new();
        if !alert_ids.is_empty() {
            let access = AlertAccess::unrestricted(Scope::AllTenants);
            match self.store.get_alerts(&access, &alert_ids).await {
                Ok(list) => alerts.extend(list.into_iter().map(|a| (a.summary.id, a))),
                Err(e) => tracing::warn!(error = %e, "cannot read the claimed runs' alerts"),
            }
        }
        runs.into_iter()
            .map(|(run, enabled)| {
                // Only the run's own tenant's alert (the store links them; checked anyway).
                let alert = run
                    .alert_id
                    .and_then(|id| alerts.get(&id))
                    .filter(|a| a.summary.tenant_id == run.tenant_id)
                    .map(|a| serde_json::to_value(a).unwrap_or(Value::Null));
                (
                    run.id,
                    Prefetched {
                        run,
                        enabled,
                        alert,
                    },
                )
            })
            .collect()
    }

    /// Works on one claimed job until the run finishes, waits, pauses or the lease is lost.
    pub async fn process(self: &Arc<Self>, job: ClaimedJob, stop: watch::Receiver<bool>) {
        self.process_loaded(job, None, stop).await
    }

    async fn process_loaded(
        self: &Arc<Self>,
        job: ClaimedJob,
        pre: Option<Prefetched>,
        stop: watch::Receiver<bool>,
    ) {
        let worker = self.config.node_id.clone();
        let Some(run_id) = job.run_id else {
            let _ = self
                .store
                .release_job(job.id, &worker, JobRelease::Done)
                .await;
            return;
        };
        let lost = Arc::new(AtomicBool::new(false));
        let beat = {
            let (store, lost, lease, worker) = (
                self.store.clone(),
                lost.clone(),
                self.config.lease,
                worker.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match store.heartbeat(job.id, &worker, lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }
                }
            })
        };
        let res = self.drive(&job, run_id, pre, &lost, &stop).await;
        beat.abort();
        match res {
            Ok(()) => {}
            Err(Stop::Lost) => {
                tracing::info!(%run_id, "lease lost or run cancelled: stopped working on it");
            }
            Err(Stop::Job(error)) => {
                tracing::warn!(%run_id, %error, "run job failed; retried later");
                let retry_at =
                    Utc::now() + chrono::Duration::seconds(10 * i64::from(job.attempts.max(1)));
                let _ = self
                    .store
                    .release_job(job.id, &worker, JobRelease::Failed { error, retry_at })
                    .await;
            }
        }
    }

    fn playbook_cached(&self, key: (Uuid, i32)) -> Option<Arc<Playbook>> {
        self.playbooks.lock().ok()?.get(&key).cloned()
    }

    async fn load_playbook(&self, run: &RunRecord) -> Result<Result<Arc<Playbook>, String>, Stop> {
        let key = (run.playbook_id, run.playbook_version);
        if let Some(pb) = self.playbook_cached(key) {
            return Ok(Ok(pb));
        }
        let spec = self
            .store
            .playbook_version_spec(run.playbook_id, run.playbook_version)
            .await?;
        match bulwark_playbook::parse_json(&spec, &self.catalog) {
            Ok(pb) => {
                let pb = Arc::new(pb);
                if let Ok(mut c) = self.playbooks.lock() {
                    if c.len() >= CACHE_MAX {
                        c.clear();
                    }
                    c.insert(key, pb.clone());
                }
                Ok(Ok(pb))
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    async fn trigger_ctx(&self, run: &RunRecord, alert: Option<Value>) -> Result<Value, Stop> {
        let access = AlertAccess::unrestricted(Scope::Tenants(vec![run.tenant_id]));
        let alert = match (alert, run.alert_id) {
            (Some(alert), _) => alert,
            (None, Some(id)) => match self.store.get_alert(&access, id).await {
                Ok(a) => serde_json::to_value(a).unwrap_or(Value::Null),
                Err(StoreError::NotFound) => Value::Null,
                Err(e) => return Err(e.into()),
            },
            (None, None) => Value::Null,
        };
        let incident = match run.incident_id {
            Some(id) => match self.store.get_incident(&access, id).await {
                Ok(i) => serde_json::to_value(i).unwrap_or(Value::Null),
                Err(StoreError::NotFound) => Value::Null,
                Err(e) => return Err(e.into()),
            },
            None => Value::Null,
        };
        Ok(bulwark_playbook::trigger_context(
            alert,
            incident,
            run.input.clone(),
            (&run.playbook_name, run.playbook_version),
            &run.id.to_string(),
            &run.trigger,
        ))
    }

    async fn save(
        &self,
        run: &mut RunSaving,
        state: &mut RunState,
        step: Option<NewStep>,
    ) -> Result<(), Stop> {
        self.save_as(run, state, step, false).await
    }

    /// Saves the final state and finishes the job in the same transaction.
    async fn save_done(&self, run: &mut RunSaving, state: &mut RunState) -> Result<(), Stop> {
        self.save_as(run, state, None, true).await
    }

    /// One save. The trigger context goes to the store once (with the run's first save) and
    /// is left out of every saved state: it is most of the state's size and never changes.
    async fn save_as(
        &self,
        run: &mut RunSaving,
        state: &mut RunState,
        step: Option<NewStep>,
        done: bool,
    ) -> Result<(), Stop> {
        let context = (!run.context_saved).then(|| state.trigger.clone());
        let trigger = std::mem::take(&mut state.trigger);
        let serialized = serde_json::to_value(&*state);
        state.trigger = trigger;
        let progress = RunProgress {
            status: state.status.as_str().to_owned(),
            state: serialized.map_err(|e| Stop::Job(e.to_string()))?,
            context,
            outputs: state.outputs.clone(),
            error: state.error.clone(),
            step,
        };
        let run_id = run.run_id;
        let saves = self
            .saves
            .get_or_init(|| async {
                let (tx, rx) = mpsc::channel(SAVE_BATCH * 4);
                tokio::spawn(save_loop(
                    self.store.clone(),
                    self.config.node_id.clone(),
                    rx,
                ));
                tx
            })
            .await;
        let (reply, answer) = oneshot::channel();
        let save = RunSave {
            run_id,
            progress,
            done,
        };
        saves
            .send((save, reply))
            .await
            .map_err(|_| Stop::Job("the save writer stopped".into()))?;
        match answer.await {
            Ok(Ok(true)) => {
                run.context_saved = true;
                Ok(())
            }
            Ok(Ok(false)) => Err(Stop::Lost),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(Stop::Job("the save writer stopped".into())),
        }
    }

    async fn release(&self, job: &ClaimedJob, how: JobRelease) -> Result<(), Stop> {
        match self
            .store
            .release_job(job.id, &self.config.node_id, how)
            .await?
        {
            true => Ok(()),
            false => Err(Stop::Lost),
        }
    }

    async fn drive(
        self: &Arc<Self>,
        job: &ClaimedJob,
        run_id: Uuid,
        pre: Option<Prefetched>,
        lost: &AtomicBool,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Stop> {
        let (run, enabled, alert) = match pre {
            Some(p) => (p.run, Some(p.enabled), p.alert),
            None => match self.store.get_run(&Scope::AllTenants, run_id).await {
                Ok(r) => (r, None, None),
                Err(StoreError::NotFound) => return self.release(job, JobRelease::Done).await,
                Err(e) => return Err(e.into()),
            },
        };
        if matches!(run.status.as_str(), "succeeded" | "failed" | "cancelled") {
            return self.release(job, JobRelease::Done).await;
        }
        let mut saving = RunSaving {
            run_id,
            context_saved: false,
        };
        let saved: Option<RunState> = match &run.state {
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .map_err(|e| Stop::Job(format!("saved run state is not valid: {e}")))?,
            ),
            None => None,
        };
        // A playbook disabled or deleted since the run was queued: the run is cancelled.
        let enabled = match enabled {
            Some(enabled) => enabled,
            None => match self
                .store
                .get_playbook(&Scope::AllTenants, run.playbook_id)
                .await
            {
                Ok(p) => p.enabled,
                Err(StoreError::NotFound) => false,
                Err(e) => return Err(e.into()),
            },
        };
        let pb = match self.load_playbook(&run).await {
            Ok(Ok(pb)) => Some(pb),
            Ok(Err(errors)) => {
                // Should not happen (specs are validated on write): the run fails.
                let mut state = failed_state(
                    &run,
                    saved,
                    format!("the playbook does not parse: {errors}"),
                );
                self.save(&mut saving, &mut state, None).await?;
                return self.release(job, JobRelease::Done).await;
            }
            Err(Stop::Job(_)) if !enabled => None,
            Err(e) => return Err(e),
        };
        if !enabled {
            let mut state = match (saved, &pb) {
                (Some(s), _) => s,
                (None, Some(pb)) => RunState::new(pb, run_id, Value::Null),
                (None, None) => failed_state(&run, None, String::new()),
            };
            state.cancel();
            state.status = bulwark_playbook::RunStatus::Cancelled;
            state.error = Some("playbook disabled".into());
            self.save(&mut saving, &mut state, None).await?;
            return self.release(job, JobRelease::Done).await;
        }
        let Some(pb) = pb else {
            return Err(Stop::Job("playbook not loaded".into()));
        };
        let mut state = match saved {
            Some(mut s) => {
                s.recover();
                s
            }
            None => RunState::new(&pb, run_id, self.trigger_ctx(&run, alert).await?),
        };
        let run = Arc::new(run);
        let step_slots = Arc::new(Semaphore::new(self.config.step_concurrency.max(1)));
        let mut inflight: JoinSet<(Step, DateTime<Utc>, StepOutcome)> = JoinSet::new();
        let sandbox = Sandbox::shared();
        // The attempt that finished last, recorded in `state` but not saved yet: it is saved
        // before anything else happens, and together with the final state when it was the
        // last one (one commit less per run).
        let mut pending: Option<NewStep> = None;
        loop {
            if lost.load(Ordering::SeqCst) {
                inflight.abort_all();
                return Err(Stop::Lost);
            }
            let next = state.advance(&pb, sandbox, Utc::now());
            if let Some(step) = pending.take() {
                if matches!(next, Advance::Finished { .. }) {
                    return self
                        .save_as(&mut saving, &mut state, Some(step), true)
                        .await;
                }
                self.save(&mut saving, &mut state, Some(step)).await?;
            }
            match next {
                Advance::Steps(steps) => {
                    for step in steps {
                        if step.action == "approval" {
                            let started = Utc::now();
                            let (outcome, _) = self.approval_step(&run, &step).await?;
                            self.finish_step(&mut saving, &mut state, &step, started, outcome)
                                .await?;
                        } else {
                            let me = self.clone();
                            let run = run.clone();
                            let slots = step_slots.clone();
                            inflight.spawn(async move {
                                let _permit = slots.acquire_owned().await;
                                let started = Utc::now();
                                let outcome = me.execute(&run, &step).await;
                                (step, started, outcome)
                            });
                        }
                    }
                }
                Advance::Busy => match inflight.join_next().await {
                    Some(Ok((step, started, outcome))) => {
                        pending = Some(Self::record_step(&mut state, &step, started, outcome)?);
                    }
                    Some(Err(e)) => return Err(Stop::Job(format!("step task failed: {e}"))),
                    None => return Err(Stop::Job("busy with no step in flight".into())),
                },
                Advance::Waiting { until } => {
                    let now = Utc::now();
                    let short = (until - now)
                        .to_std()
                        .map(|d| d <= self.config.inline_wait)
                        .unwrap_or(true);
                    if short && !*stop.borrow() {
                        if let Ok(d) = (until - now).to_std() {
                            tokio::time::sleep(d).await;
                        }
                        continue;
                    }
                    self.save(&mut saving, &mut state, None).await?;
                    return self.release(job, JobRelease::At(until)).await;
                }
                Advance::Paused => {
                    match self.resolve_paused(&run, &mut saving, &mut state).await? {
                        None => continue,
                        Some(approval) => {
                            self.save(&mut saving, &mut state, None).await?;
                            return self.release(job, JobRelease::Parked { approval }).await;
                        }
                    }
                }
                Advance::Finished { .. } => return self.save_done(&mut saving, &mut state).await,
            }
            if *stop.borrow() && inflight.is_empty() {
                // Shutting down: hand the run back at a save point.
                self.save(&mut saving, &mut state, pending.take()).await?;
                return self.release(job, JobRelease::At(Utc::now())).await;
            }
        }
    }

    /// Records an outcome and saves it with the attempt (before anything depending on it starts).
    async fn finish_step(
        &self,
        saving: &mut RunSaving,
        state: &mut RunState,
        step: &Step,
        started: DateTime<Utc>,
        outcome: StepOutcome,
    ) -> Result<(), Stop> {
        let rec = Self::record_step(state, step, started, outcome)?;
        self.save(saving, state, Some(rec)).await
    }

    /// Records an outcome in the run state; the attempt to save with it.
    fn record_step(
        state: &mut RunState,
        step: &Step,
        started: DateTime<Utc>,
        outcome: StepOutcome,
    ) -> Result<NewStep, Stop> {
        let (status, output, error) = match &outcome {
            StepOutcome::Succeeded { output } => ("succeeded", Some(output.clone()), None),
            StepOutcome::Failed { error, .. } => ("failed", None, Some(error.clone())),
            StepOutcome::Paused { reason } => ("paused", None, Some(reason.clone())),
        };
        state
            .record(&step.ref_, step.item_index, outcome)
            .map_err(|e| Stop::Job(format!("cannot record step {}: {e}", step.ref_)))?;
        let rec = NewStep {
            step_ref: step.ref_.clone(),
            item_index: step.item_index.map(|i| i as i32),
            attempt: step.attempt as i32,
            action: step.action.clone(),
            status: status.to_owned(),
            input: step.input.clone(),
            output,
            error,
            started_at: started,
            finished_at: Utc::now(),
        };
        Ok(rec)
    }

    fn context(&self, run: &RunRecord, step: &Step) -> ActionContext {
        ActionContext {
            store: self.store.clone(),
            tenant_id: run.tenant_id,
            run_id: run.id,
            playbook_name: run.playbook_name.clone(),
            alert_id: run.alert_id,
            incident_id: run.incident_id,
            idempotency_key: step.idempotency_key.clone(),
            timeout: step.timeout,
            platform_tenant: self.config.platform_tenant.unwrap_or(run.tenant_id),
            alert_writer: Some(
                self.alert_writer
                    .get_or_init(|| crate::alert_writes::AlertWriter::start(self.store.clone()))
                    .clone(),
            ),
        }
    }

    /// Runs one external action in its own task, with its timeout; a panic is a failed step.
    async fn execute(&self, run: &RunRecord, step: &Step) -> StepOutcome {
        let Some(action) = self.registry.get(&step.action) else {
            return StepOutcome::Failed {
                error: format!("no action `{}` on this worker", step.action),
                retryable: false,
            };
        };
        let ctx = self.context(run, step);
        let input = step.input.clone();
        let task = tokio::spawn(async move { action.execute(&ctx, &input).await });
        let abort = task.abort_handle();
        match tokio::time::timeout(step.timeout, task).await {
            Ok(Ok(Ok(output))) => StepOutcome::Succeeded { output },
            Ok(Ok(Err(e))) => StepOutcome::Failed {
                error: e.message,
                retryable: e.retryable,
            },
            Ok(Err(join)) => StepOutcome::Failed {
                error: if join.is_panic() {
                    "the action panicked".into()
                } else {
                    format!("the action was stopped: {join}")
                },
                retryable: false,
            },
            Err(_) => {
                abort.abort();
                StepOutcome::Failed {
                    error: format!("timed out after {}", fmt_duration(step.timeout)),
                    retryable: false,
                }
            }
        }
    }

    /// An `approval` step: asks for the approval (idempotent per step) and maps its state.
    async fn approval_step(
        &self,
        run: &RunRecord,
        step: &Step,
    ) -> Result<(StepOutcome, ApprovalRecord), Stop> {
        let input = &step.input;
        let ttl = input
            .get("ttl")
            .and_then(Value::as_str)
            .and_then(|t| bulwark_playbook::parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(4 * 3600))
            .min(Duration::from_secs(7 * 86400));
        let roles = input
            .get("roles")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let approval = self
            .store
            .request_approval(NewApproval {
                tenant_id: run.tenant_id,
                run_id: run.id,
                step_ref: step.ref_.clone(),
                item_index: step.item_index.map(|i| i as i32),
                playbook_name: run.playbook_name.clone(),
                message: input
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("approval required")
                    .to_owned(),
                alert_id: run.alert_id,
                incident_id: run.incident_id,
                approvers_required: input
                    .get("approvers")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
                    .clamp(1, 5) as i32,
                roles,
                on_timeout: input
                    .get("on_timeout")
                    .and_then(Value::as_str)
                    .unwrap_or("fail")
                    .to_owned(),
                expires_at: Utc::now()
                    + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(4)),
            })
            .await?;
        let outcome = self.approval_outcome(run, &approval).await;
        Ok((outcome, approval))
    }

    /// What an approval's state means for its step. Expired with `on_timeout: escalate`: the
    /// run's alert (if any) is set to `escalated` and the step succeeds with
    /// `{approved: false, expired: true}` so the run goes on.
    async fn approval_outcome(&self, run: &RunRecord, a: &ApprovalRecord) -> StepOutcome {
        let deciders = |d: &str| -> Vec<String> {
            a.decisions
                .iter()
                .filter(|x| x.decision == d)
                .map(|x| x.username.clone())
                .collect()
        };
        match a.status.as_str() {
            "approved" => StepOutcome::Succeeded {
                output: json!({ "approved": true, "approval_id": a.id, "decided_by": deciders("approve") }),
            },
            "rejected" => StepOutcome::Failed {
                error: format!("rejected by {}", deciders("reject").join(", ")),
                retryable: false,
            },
            "expired" if a.on_timeout == "escalate" => {
                if let Some(alert) = run.alert_id {
                    let ctx = self.context(
                        run,
                        &Step {
                            ref_: a.step_ref.clone(),
                            item_index: None,
                            attempt: 1,
                            action: "alert.update".into(),
                            input: Value::Null,
                            timeout: Duration::from_secs(30),
                            idempotency_key: format!("{}:{}:escalate", run.id, a.step_ref),
                        },
                    );
                    let esc = crate::actions::AlertUpdate;
                    use crate::action::Action;
                    if let Err(e) = esc.execute(&ctx, &json!({ "status": "escalated" })).await {
                        tracing::warn!(%alert, error = %e, "approval expired: cannot escalate the alert");
                    }
                }
                StepOutcome::Succeeded {
                    output: json!({ "approved": false, "expired": true, "approval_id": a.id }),
                }
            }
            "expired" => StepOutcome::Failed {
                error: "approval expired without a decision".into(),
                retryable: false,
            },
            "cancelled" => StepOutcome::Failed {
                error: "approval cancelled".into(),
                retryable: false,
            },
            _ => StepOutcome::Paused {
                reason: format!("waiting for approval {}", a.id),
            },
        }
    }

    /// For a paused run: records the decided approvals. `None` when something was recorded
    /// (advance again); `Some(approval)` to park on when every one is still pending.
    async fn resolve_paused(
        &self,
        run: &RunRecord,
        saving: &mut RunSaving,
        state: &mut RunState,
    ) -> Result<Option<Uuid>, Stop> {
        let mut paused = Vec::new();
        for (r, a) in &state.actions {
            for (i, u) in a.units.iter().enumerate() {
                if u.status == UnitStatus::Paused {
                    paused.push((r.clone(), a.items.as_ref().map(|_| i), u.attempt));
                }
            }
        }
        let mut park = None;
        let mut progressed = false;
        for (r, item, attempt) in paused {
            let approval = self
                .store
                .approval_for_step(run.id, &r, item.map(|i| i as i32))
                .await?;
            let Some(approval) = approval else {
                let step = paused_step(run, &r, item, attempt);
                self.finish_step(
                    saving,
                    state,
                    &step,
                    Utc::now(),
                    StepOutcome::Failed {
                        error: "approval request missing".into(),
                        retryable: false,
                    },
                )
                .await?;
                progressed = true;
                continue;
            };
            match self.approval_outcome(run, &approval).await {
                StepOutcome::Paused { .. } => park = park.or(Some(approval.id)),
                outcome => {
                    let step = paused_step(run, &r, item, attempt);
                    let started = approval.created_at;
                    self.finish_step(saving, state, &step, started, outcome)
                        .await?;
                    progressed = true;
                }
            }
        }
        if progressed {
            return Ok(None);
        }
        park.map(Some)
            .ok_or_else(|| Stop::Job("paused run without a paused step".into()))
    }
}

fn paused_step(run: &RunRecord, r: &str, item: Option<usize>, attempt: u32) -> Step {
    Step {
        ref_: r.to_owned(),
        item_index: item,
        attempt,
        action: "approval".into(),
        input: Value::Null,
        timeout: Duration::from_secs(0),
        idempotency_key: match item {
            Some(i) => format!("{}:{r}:{i}", run.id),
            None => format!("{}:{r}", run.id),
        },
    }
}

/// A state for a run that ends before it could start properly (no usable saved state).
fn failed_state(run: &RunRecord, saved: Option<RunState>, error: String) -> RunState {
    let mut s = saved.unwrap_or_else(|| {
        let spec = json!({"name": "unavailable", "triggers": [{"on": "manual"}], "actions": [
            {"ref": "noop", "action": "set", "args": {"values": {}}}]});
        let pb = bulwark_playbook::parse_json(&spec, &Catalog::builtin())
            .expect("the built-in placeholder playbook parses");
        let mut s = RunState::new(&pb, run.id, Value::Null);
        s.playbook = run.playbook_name.clone();
        s
    });
    s.status = bulwark_playbook::RunStatus::Failed;
    s.error = Some(error);
    s
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{s}s")
    }
}
