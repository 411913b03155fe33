//! Run planning: a pure state machine the worker drives.
//!
//! ```text
//! let mut state = RunState::new(&playbook, run_id, trigger_ctx);
//! loop {
//!     match state.advance(&playbook, &sandbox, now) {
//!         Advance::Steps(steps) => { persist(&state); for s in steps { let o = execute(s); state.record(&s.ref_, s.item_index, o)?; persist(&state) } }
//!         Advance::Busy => { /* steps still in flight: wait for one, record it */ }
//!         Advance::Waiting { until } => { persist; re-queue the job for `until`; break }
//!         Advance::Paused => { persist; release the job (an approval decision calls record() later); break }
//!         Advance::Finished { status, outputs } => { persist; break }
//!     }
//! }
//! ```
//!
//! The state is plain data (serde JSON). The worker persists it after every step; a worker
//! that claims a run another worker left behind calls [`RunState::recover`] first, which puts
//! steps that were in flight back to be issued again with the **same idempotency key**.
//!
//! # Semantics
//! * An action is ready when each dependency is *done*: succeeded, or failed with
//!   `on_error: continue`. If a dependency was **skipped** (its `run_if` was false, or it was
//!   skipped itself), or failed and was handed to an `on_error: {run: ..}` handler, the
//!   dependent is **skipped** too. Skips propagate down the graph: an action never runs on
//!   inputs that were not produced (e.g. "isolate host" after a skipped "escalate").
//! * `run_if` false → skipped. `run_if`/`for_each`/argument rendering errors fail the action
//!   (no retry: they would fail the same way again) and its `on_error` applies.
//! * `for_each` is evaluated once; one step per item, at most `concurrency` outstanding; results
//!   are a list in item order. An item that fails for good fails the action: items not yet
//!   started are skipped, items in flight finish.
//! * A failure with `retryable: true` and attempts left becomes ready again at
//!   `now + backoff(attempt)` (now = the `advance` after the failure was recorded).
//! * `on_error: fail` fails the run: steps in flight may finish, nothing new starts, paused
//!   steps are abandoned. `continue`: the failure counts as done. `{run: h}`: `h` runs with
//!   `error = {action, message}` in its context and the run does not fail because of the
//!   original failure (a handler shared by several actions runs once, for the first failure).
//! * `set` and `wait` are executed here, not by the worker: `set` renders its values (the
//!   result, also merged into `vars`); `wait` makes the run report `Waiting { until }`.
//! * Outputs are rendered when the run succeeds; an output that fails to render fails the run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::duration::parse_duration;
use crate::expr::{ExprError, PreparedContext, Sandbox};
use crate::spec::{ErrorPolicy, Playbook};

/// Status of a whole run (stored in a column by the worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Waiting,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Paused => "paused",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status of one action (visible to templates as `actions.<ref>.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

impl ActionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Pending => "pending",
            ActionStatus::Running => "running",
            ActionStatus::Succeeded => "succeeded",
            ActionStatus::Failed => "failed",
            ActionStatus::Skipped => "skipped",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ActionStatus::Succeeded | ActionStatus::Failed | ActionStatus::Skipped
        )
    }
}

/// Status of one execution unit: the action, or one `for_each` item of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    /// Not started, or waiting for a retry (`not_before`) or a `wait` (`wait_until`).
    Pending,
    /// Issued to the worker as a [`Step`].
    Running,
    /// The worker reported [`StepOutcome::Paused`]; a later `record` resumes it.
    Paused,
    /// A failure was recorded; the next `advance` retries it or fails it.
    Errored,
    Succeeded,
    Failed,
    Skipped,
}

impl UnitStatus {
    fn is_terminal(self) -> bool {
        matches!(
            self,
            UnitStatus::Succeeded | UnitStatus::Failed | UnitStatus::Skipped
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitState {
    pub status: UnitStatus,
    /// The number of the current or last attempt (1-based; 0 = never started).
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_until: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_value"
    )]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<String>,
}

impl UnitState {
    fn new() -> Self {
        Self {
            status: UnitStatus::Pending,
            attempt: 0,
            not_before: None,
            wait_until: None,
            output: None,
            error: None,
            retryable: false,
            pause_reason: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionState {
    pub status: ActionStatus,
    /// The evaluated `for_each` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<UnitState>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_value"
    )]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// For an error handler: the failure it handles (`{action, message}`); set = activated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling: Option<Value>,
}

impl ActionState {
    fn new() -> Self {
        Self {
            status: ActionStatus::Pending,
            items: None,
            units: Vec::new(),
            result: None,
            error: None,
            skip_reason: None,
            handling: None,
        }
    }
}

/// One unit of work for the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    #[serde(rename = "ref")]
    pub ref_: String,
    pub item_index: Option<usize>,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Catalog action name, e.g. `alert.update`.
    pub action: String,
    /// The rendered arguments.
    pub input: Value,
    pub timeout: Duration,
    /// `<run_id>:<ref>` or `<run_id>:<ref>:<item_index>`: the same across retries and workers.
    pub idempotency_key: String,
}

/// What happened to a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum StepOutcome {
    Succeeded {
        output: Value,
    },
    Failed {
        error: String,
        retryable: bool,
    },
    /// Waiting for something outside the run (an approval decision). The worker releases the
    /// job; a later `record(.., Succeeded | Failed)` resumes the run.
    Paused {
        reason: String,
    },
}

/// What the worker should do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Advance {
    /// Execute these steps (others may still be in flight).
    Steps(Vec<Step>),
    /// Nothing new to start; steps are in flight: record their outcomes, then advance again.
    Busy,
    /// Nothing in flight; advance again at `until` (a retry backoff or a `wait`).
    Waiting {
        until: DateTime<Utc>,
    },
    /// Only paused steps remain: release the job until `record` is called for them.
    Paused,
    Finished {
        status: RunStatus,
        outputs: Value,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error("action `{ref_}` has no item {item_index:?}")]
    UnknownItem {
        ref_: String,
        item_index: Option<usize>,
    },
    #[error("action `{ref_}` item {item_index:?} is not running (status {status:?})")]
    NotRunning {
        ref_: String,
        item_index: Option<usize>,
        status: UnitStatus,
    },
    #[error("the run is already {0}")]
    Finished(RunStatus),
}

/// The durable state of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub playbook: String,
    pub status: RunStatus,
    /// `{"alert": .., "incident": .., "input": ..}` as given at the start. Left out of the
    /// serialized state when null (a store may keep it apart, since it never changes).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub trigger: Value,
    pub actions: BTreeMap<String, ActionState>,
    #[serde(default)]
    pub vars: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// An action failed with `on_error: fail`: nothing new starts.
    #[serde(default)]
    pub failing: bool,
}

impl RunState {
    /// A new run. `trigger_ctx` is an object (`alert`, `incident`, `input`, ...); anything
    /// else is put under `input`.
    pub fn new(playbook: &Playbook, run_id: impl fmt::Display, trigger_ctx: Value) -> RunState {
        let trigger = match trigger_ctx {
            Value::Object(_) => trigger_ctx,
            Value::Null => json!({}),
            other => json!({ "input": other }),
        };
        RunState {
            run_id: run_id.to_string(),
            playbook: playbook.name().to_owned(),
            status: RunStatus::Running,
            trigger,
            actions: playbook
                .spec()
                .actions
                .iter()
                .map(|a| (a.ref_.clone(), ActionState::new()))
                .collect(),
            vars: Map::new(),
            outputs: None,
            error: None,
            failing: false,
        }
    }

    /// After a crash: steps that were issued but never recorded are issued again (same
    /// attempt number, same idempotency key). Paused steps stay paused.
    pub fn recover(&mut self) {
        for a in self.actions.values_mut() {
            for u in &mut a.units {
                if u.status == UnitStatus::Running {
                    u.status = UnitStatus::Pending;
                    u.attempt = u.attempt.saturating_sub(1);
                }
            }
        }
    }

    /// Stops the run: no more steps; outcomes recorded later are refused.
    pub fn cancel(&mut self) {
        if self.status.is_terminal() {
            return;
        }
        for a in self.actions.values_mut() {
            for u in &mut a.units {
                if !u.status.is_terminal() {
                    u.status = UnitStatus::Skipped;
                    u.error.get_or_insert_with(|| "cancelled".into());
                }
            }
            if !a.status.is_terminal() {
                a.status = ActionStatus::Skipped;
                a.skip_reason = Some("run cancelled".into());
            }
        }
        self.status = RunStatus::Cancelled;
    }

    /// Records what happened to a step issued by [`RunState::advance`] (or resumes a paused one).
    pub fn record(
        &mut self,
        ref_: &str,
        item_index: Option<usize>,
        outcome: StepOutcome,
    ) -> Result<(), RunError> {
        if self.status.is_terminal() {
            return Err(RunError::Finished(self.status));
        }
        let a = self
            .actions
            .get_mut(ref_)
            .ok_or_else(|| RunError::UnknownAction(ref_.to_owned()))?;
        let idx = match (item_index, &a.items) {
            (None, None) => 0,
            (Some(i), Some(items)) if i < items.len() => i,
            _ => {
                return Err(RunError::UnknownItem {
                    ref_: ref_.to_owned(),
                    item_index,
                });
            }
        };
        let u = a.units.get_mut(idx).ok_or_else(|| RunError::UnknownItem {
            ref_: ref_.to_owned(),
            item_index,
        })?;
        if !matches!(u.status, UnitStatus::Running | UnitStatus::Paused) {
            return Err(RunError::NotRunning {
                ref_: ref_.to_owned(),
                item_index,
                status: u.status,
            });
        }
        match outcome {
            StepOutcome::Succeeded { output } => {
                u.status = UnitStatus::Succeeded;
                u.output = Some(output);
                u.error = None;
                u.pause_reason = None;
            }
            StepOutcome::Failed { error, retryable } => {
                u.status = UnitStatus::Errored;
                u.error = Some(error);
                u.retryable = retryable;
                u.pause_reason = None;
            }
            StepOutcome::Paused { reason } => {
                u.status = UnitStatus::Paused;
                u.pause_reason = Some(reason);
            }
        }
        Ok(())
    }

    /// Moves the run forward at time `now`: settles recorded outcomes, skips what must be
    /// skipped, runs `set`/`wait`, and returns what the worker should do.
    pub fn advance(&mut self, pb: &Playbook, sandbox: &Sandbox, now: DateTime<Utc>) -> Advance {
        if self.status.is_terminal() {
            return self.finished();
        }
        let inner = &pb.inner;
        let mut steps = Vec::new();
        loop {
            let mut changed = false;
            for &i in &inner.order {
                let (Some(spec), Some(comp)) = (inner.spec.actions.get(i), inner.actions.get(i))
                else {
                    continue;
                };
                let r = spec.ref_.as_str();
                changed |= self.resolve_errored(pb, i, now);
                let Some(status) = self.actions.get(r).map(|a| a.status) else {
                    continue;
                };
                if status == ActionStatus::Pending {
                    if self.failing
                        || (comp.is_handler
                            && self.actions.get(r).is_some_and(|a| a.handling.is_none()))
                    {
                        continue;
                    }
                    match self.dependency_gate(pb, i) {
                        Gate::Blocked => continue,
                        Gate::Skip(reason) => {
                            self.skip_action(r, reason);
                            changed = true;
                            continue;
                        }
                        Gate::Ready => {}
                    }
                    changed = true;
                    let ctx = PreparedContext::new(&self.context(pb, i, None));
                    if let Some(cond) = &comp.run_if {
                        match cond.eval_prepared(&ctx) {
                            Ok(true) => {}
                            Ok(false) => {
                                self.skip_action(r, "run_if was false".into());
                                continue;
                            }
                            Err(e) => {
                                self.fail_action(pb, i, format!("run_if: {e}"));
                                continue;
                            }
                        }
                    }
                    let items = match &comp.for_each {
                        None => None,
                        Some(expr) => match expr.eval_prepared(&ctx) {
                            Ok(Value::Array(items)) => Some(items),
                            Ok(other) => {
                                let kind = crate::catalog::json_kind(&other);
                                self.fail_action(
                                    pb,
                                    i,
                                    format!("for_each must evaluate to a list, got {kind}"),
                                );
                                continue;
                            }
                            Err(e) => {
                                self.fail_action(pb, i, format!("for_each: {e}"));
                                continue;
                            }
                        },
                    };
                    if let Some(a) = self.actions.get_mut(r) {
                        a.units = match &items {
                            Some(items) => items.iter().map(|_| UnitState::new()).collect(),
                            None => vec![UnitState::new()],
                        };
                        a.items = items;
                        a.status = ActionStatus::Running;
                    }
                }
                if self
                    .actions
                    .get(r)
                    .is_some_and(|a| a.status == ActionStatus::Running)
                {
                    changed |= self.start_units(pb, sandbox, i, now, &mut steps);
                    changed |= self.settle(pb, i);
                }
            }
            if !changed {
                break;
            }
        }
        self.conclude(pb, sandbox, steps)
    }

    /// Failure recorded → retry later, or fail the unit for good.
    fn resolve_errored(&mut self, pb: &Playbook, i: usize, now: DateTime<Utc>) -> bool {
        let (Some(spec), Some(comp)) = (pb.inner.spec.actions.get(i), pb.inner.actions.get(i))
        else {
            return false;
        };
        let failing = self.failing;
        let Some(a) = self.actions.get_mut(&spec.ref_) else {
            return false;
        };
        let mut changed = false;
        let mut failed_for_good = false;
        for u in &mut a.units {
            if u.status != UnitStatus::Errored {
                continue;
            }
            changed = true;
            if u.retryable && u.attempt < comp.retry.max_attempts && !failing {
                let delay = comp.retry.delay_after(u.attempt);
                u.status = UnitStatus::Pending;
                u.not_before = Some(add(now, delay));
            } else {
                u.status = UnitStatus::Failed;
                failed_for_good = true;
            }
        }
        if failed_for_good {
            for u in &mut a.units {
                if u.status == UnitStatus::Pending {
                    u.status = UnitStatus::Skipped;
                    u.error = Some("not started: another item failed".into());
                }
            }
        }
        if changed {
            self.settle(pb, i);
        }
        changed
    }

    fn dependency_gate(&self, pb: &Playbook, i: usize) -> Gate {
        let Some(comp) = pb.inner.actions.get(i) else {
            return Gate::Blocked;
        };
        let mut skip = None;
        for &d in &comp.deps {
            let Some(dr) = pb.inner.spec.actions.get(d).map(|a| a.ref_.as_str()) else {
                continue;
            };
            let Some(ds) = self.actions.get(dr) else {
                continue;
            };
            match ds.status {
                ActionStatus::Pending | ActionStatus::Running => return Gate::Blocked,
                ActionStatus::Succeeded => {}
                ActionStatus::Skipped => {
                    skip.get_or_insert_with(|| format!("dependency `{dr}` was skipped"));
                }
                ActionStatus::Failed => match pb.inner.actions.get(d).map(|c| c.on_error) {
                    Some(ErrorPolicy::Continue) => {}
                    _ => {
                        skip.get_or_insert_with(|| format!("dependency `{dr}` failed"));
                    }
                },
            }
        }
        match skip {
            Some(reason) => Gate::Skip(reason),
            None => Gate::Ready,
        }
    }

    fn skip_action(&mut self, r: &str, reason: String) {
        if let Some(a) = self.actions.get_mut(r) {
            a.status = ActionStatus::Skipped;
            a.skip_reason = Some(reason);
        }
    }

    /// Fails a whole action before any unit ran (run_if/for_each errors) and applies on_error.
    fn fail_action(&mut self, pb: &Playbook, i: usize, error: String) {
        let Some(r) = pb.inner.spec.actions.get(i).map(|a| a.ref_.clone()) else {
            return;
        };
        if let Some(a) = self.actions.get_mut(&r) {
            a.status = ActionStatus::Failed;
            a.error = Some(error.clone());
        }
        self.apply_on_error(pb, i, &error);
    }

    fn apply_on_error(&mut self, pb: &Playbook, i: usize, error: &str) {
        let Some(r) = pb.inner.spec.actions.get(i).map(|a| a.ref_.clone()) else {
            return;
        };
        match pb.inner.actions.get(i).map(|c| c.on_error) {
            Some(ErrorPolicy::Continue) => {}
            Some(ErrorPolicy::Run(h)) => {
                let Some(hr) = pb.inner.spec.actions.get(h).map(|a| a.ref_.clone()) else {
                    return;
                };
                if let Some(ha) = self.actions.get_mut(&hr)
                    && ha.handling.is_none()
                {
                    ha.handling = Some(json!({"action": r, "message": error}));
                }
            }
            Some(ErrorPolicy::Fail) | None => {
                if !self.failing {
                    self.failing = true;
                    self.error = Some(format!("action `{r}` failed: {error}"));
                }
            }
        }
    }

    /// Starts the units that may start now; `set`/`wait` complete here.
    fn start_units(
        &mut self,
        pb: &Playbook,
        sandbox: &Sandbox,
        i: usize,
        now: DateTime<Utc>,
        steps: &mut Vec<Step>,
    ) -> bool {
        let (Some(spec), Some(comp)) = (pb.inner.spec.actions.get(i), pb.inner.actions.get(i))
        else {
            return false;
        };
        if self.failing {
            return false;
        }
        let r = spec.ref_.as_str();
        let limit = if comp.for_each.is_some() {
            comp.concurrency
        } else {
            1
        };
        let mut changed = false;
        let n = self.actions.get(r).map_or(0, |a| a.units.len());
        for k in 0..n {
            let Some(a) = self.actions.get(r) else { break };
            let outstanding = a
                .units
                .iter()
                .filter(|u| matches!(u.status, UnitStatus::Running | UnitStatus::Paused))
                .count();
            let Some(u) = a.units.get(k) else { break };
            if u.status != UnitStatus::Pending {
                continue;
            }
            // A `wait` already started: done once its time has come.
            if let Some(until) = u.wait_until {
                if until <= now {
                    self.complete_unit(r, k, Value::Null);
                    changed = true;
                }
                continue;
            }
            if u.not_before.is_some_and(|t| t > now) {
                continue;
            }
            if outstanding >= limit {
                break;
            }
            let item = a
                .items
                .as_ref()
                .and_then(|items| items.get(k))
                .map(|v| (k, v.clone()));
            let item_index = item.as_ref().map(|(k, _)| *k);
            let ctx = self.context(pb, i, item.as_ref().map(|(k, v)| (*k, v)));
            let rendered = sandbox.render_value_prepared(
                &Value::Object(spec.args.clone()),
                &PreparedContext::new(&ctx),
                "args",
                &comp.raw_args,
            );
            let attempt = u.attempt + 1;
            changed = true;
            let input = match rendered
                .map_err(|e| render_error(&e))
                .and_then(|v| check_rendered(&comp.schema, v))
            {
                Ok(v) => v,
                Err(e) => {
                    self.fail_unit(r, k, attempt, e);
                    continue;
                }
            };
            match spec.action.as_str() {
                "set" => {
                    let values = input.get("values").cloned().unwrap_or(Value::Null);
                    self.set_attempt(r, k, attempt);
                    self.complete_unit(r, k, values);
                }
                "wait" => {
                    self.set_attempt(r, k, attempt);
                    match wait_target(&input, now) {
                        Ok(until) if until <= now => self.complete_unit(r, k, Value::Null),
                        Ok(until) => {
                            if let Some(u) =
                                self.actions.get_mut(r).and_then(|a| a.units.get_mut(k))
                            {
                                u.wait_until = Some(until);
                            }
                        }
                        Err(m) => self.fail_unit(r, k, attempt, m),
                    }
                }
                _ => {
                    if let Some(u) = self.actions.get_mut(r).and_then(|a| a.units.get_mut(k)) {
                        u.status = UnitStatus::Running;
                        u.attempt = attempt;
                        u.not_before = None;
                    }
                    let idempotency_key = match item_index {
                        Some(k) => format!("{}:{r}:{k}", self.run_id),
                        None => format!("{}:{r}", self.run_id),
                    };
                    steps.push(Step {
                        ref_: r.to_owned(),
                        item_index,
                        attempt,
                        action: spec.action.clone(),
                        input,
                        timeout: comp.timeout,
                        idempotency_key,
                    });
                }
            }
        }
        changed
    }

    fn set_attempt(&mut self, r: &str, k: usize, attempt: u32) {
        if let Some(u) = self.actions.get_mut(r).and_then(|a| a.units.get_mut(k)) {
            u.attempt = attempt;
        }
    }

    fn complete_unit(&mut self, r: &str, k: usize, output: Value) {
        if let Some(u) = self.actions.get_mut(r).and_then(|a| a.units.get_mut(k)) {
            u.status = UnitStatus::Succeeded;
            u.output = Some(output);
            u.wait_until = None;
            u.not_before = None;
        }
    }

    /// A unit failed without a retry (rendering error): the other pending units are skipped.
    fn fail_unit(&mut self, r: &str, k: usize, attempt: u32, error: String) {
        if let Some(a) = self.actions.get_mut(r) {
            for (j, u) in a.units.iter_mut().enumerate() {
                if j == k {
                    u.status = UnitStatus::Failed;
                    u.attempt = attempt;
                    u.error = Some(error.clone());
                } else if u.status == UnitStatus::Pending {
                    u.status = UnitStatus::Skipped;
                    u.error = Some("not started: another item failed".into());
                }
            }
        }
    }

    /// When every unit of a running action is terminal, the action is.
    fn settle(&mut self, pb: &Playbook, i: usize) -> bool {
        let Some(spec) = pb.inner.spec.actions.get(i) else {
            return false;
        };
        let r = spec.ref_.as_str();
        let for_each = pb
            .inner
            .actions
            .get(i)
            .is_some_and(|c| c.for_each.is_some());
        let Some(a) = self.actions.get_mut(r) else {
            return false;
        };
        if a.status != ActionStatus::Running || !a.units.iter().all(|u| u.status.is_terminal()) {
            return false;
        }
        let failure = a
            .units
            .iter()
            .enumerate()
            .find(|(_, u)| u.status == UnitStatus::Failed)
            .map(|(k, u)| {
                let msg = u.error.clone().unwrap_or_else(|| "failed".into());
                if for_each {
                    format!("item {k}: {msg}")
                } else {
                    msg
                }
            });
        let result = if for_each {
            Value::Array(
                a.units
                    .iter()
                    .map(|u| u.output.clone().unwrap_or(Value::Null))
                    .collect(),
            )
        } else {
            a.units
                .first()
                .and_then(|u| u.output.clone())
                .unwrap_or(Value::Null)
        };
        match failure {
            Some(err) => {
                a.status = ActionStatus::Failed;
                a.error = Some(err.clone());
                a.result = Some(result);
                self.apply_on_error(pb, i, &err);
            }
            None => {
                a.status = ActionStatus::Succeeded;
                if spec.action == "set"
                    && let Value::Object(m) = &result
                {
                    for (k, v) in m {
                        self.vars.insert(k.clone(), v.clone());
                    }
                }
                if let Some(a) = self.actions.get_mut(r) {
                    a.result = Some(result);
                }
            }
        }
        true
    }

    fn conclude(&mut self, pb: &Playbook, sandbox: &Sandbox, steps: Vec<Step>) -> Advance {
        if !steps.is_empty() {
            self.status = RunStatus::Running;
            return Advance::Steps(steps);
        }
        let units = || self.actions.values().flat_map(|a| a.units.iter());
        if units().any(|u| u.status == UnitStatus::Running) {
            self.status = RunStatus::Running;
            return Advance::Busy;
        }
        if !self.failing {
            let next = units()
                .filter(|u| u.status == UnitStatus::Pending)
                .filter_map(|u| u.wait_until.or(u.not_before))
                .min();
            if let Some(until) = next {
                self.status = RunStatus::Waiting;
                return Advance::Waiting { until };
            }
            if units().any(|u| u.status == UnitStatus::Paused) {
                self.status = RunStatus::Paused;
                return Advance::Paused;
            }
        }
        // Nothing can happen any more: close what is left.
        let failing = self.failing;
        for a in self.actions.values_mut() {
            for u in &mut a.units {
                if !u.status.is_terminal() {
                    u.status = UnitStatus::Skipped;
                    u.error
                        .get_or_insert_with(|| "abandoned: the run failed".into());
                }
            }
            if !a.status.is_terminal() {
                a.status = ActionStatus::Skipped;
                a.skip_reason = Some(
                    if a.handling.is_none() && a.units.is_empty() && !failing {
                        "not needed"
                    } else {
                        "the run failed"
                    }
                    .into(),
                );
            }
        }
        if self.failing {
            self.status = RunStatus::Failed;
            self.outputs = Some(json!({}));
        } else {
            let ctx = self.context(pb, usize::MAX, None);
            let prepared = PreparedContext::new(&ctx);
            let mut outputs = Map::new();
            for (name, tpl) in &pb.inner.spec.outputs {
                match sandbox.render_value_prepared(
                    &Value::String(tpl.clone()),
                    &prepared,
                    &format!("outputs.{name}"),
                    &[],
                ) {
                    Ok(v) => {
                        outputs.insert(name.clone(), v);
                    }
                    Err(e) => {
                        self.failing = true;
                        self.error = Some(e.to_string());
                        break;
                    }
                }
            }
            if self.failing {
                self.status = RunStatus::Failed;
                self.outputs = Some(json!({}));
            } else {
                self.status = RunStatus::Succeeded;
                self.outputs = Some(Value::Object(outputs));
            }
        }
        self.finished()
    }

    fn finished(&self) -> Advance {
        Advance::Finished {
            status: self.status,
            outputs: self.outputs.clone().unwrap_or_else(|| json!({})),
        }
    }

    /// The template context for action `i` (or the outputs when `i` is out of range).
    pub fn context(&self, pb: &Playbook, i: usize, item: Option<(usize, &Value)>) -> Value {
        let mut ctx = match &self.trigger {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        ctx.insert("playbook".into(), json!({"name": pb.name()}));
        ctx.insert("run".into(), json!({"id": self.run_id}));
        let actions: Map<String, Value> = self
            .actions
            .iter()
            .map(|(r, a)| {
                let mut m = Map::new();
                m.insert("status".into(), Value::from(a.status.as_str()));
                m.insert("result".into(), a.result.clone().unwrap_or(Value::Null));
                m.insert(
                    "error".into(),
                    a.error.clone().map_or(Value::Null, Value::String),
                );
                (r.clone(), Value::Object(m))
            })
            .collect();
        ctx.insert("actions".into(), Value::Object(actions));
        ctx.insert("vars".into(), Value::Object(self.vars.clone()));
        if let Some((k, v)) = item {
            ctx.insert("item".into(), v.clone());
            ctx.insert("item_index".into(), Value::from(k));
        }
        if let Some(handling) = pb
            .inner
            .spec
            .actions
            .get(i)
            .and_then(|a| self.actions.get(&a.ref_))
            .and_then(|a| a.handling.clone())
        {
            ctx.insert("error".into(), handling);
        }
        Value::Object(ctx)
    }

    /// The result of an action so far (for_each: the list).
    pub fn result(&self, ref_: &str) -> Option<&Value> {
        self.actions.get(ref_).and_then(|a| a.result.as_ref())
    }
}

/// `null` present in the JSON is `Some(Null)` (a result that is null), absent is `None`.
fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

enum Gate {
    Blocked,
    Skip(String),
    Ready,
}

/// Rendered arguments are checked against the catalog (templates could produce anything).
/// Scalars are turned into strings where a string is expected (`"{{ alert.id }}"` as a tag).
pub(crate) fn check_rendered(
    schema: &Option<crate::catalog::ActionSchema>,
    mut input: Value,
) -> Result<Value, String> {
    use crate::catalog::ArgType;
    let Some(schema) = schema else {
        return Ok(input);
    };
    let Value::Object(map) = &mut input else {
        return Ok(input);
    };
    fn stringify(v: &mut Value) {
        match v {
            Value::Number(n) => *v = Value::String(n.to_string()),
            Value::Bool(b) => *v = Value::String(b.to_string()),
            _ => {}
        }
    }
    for (k, v) in map.iter_mut() {
        let Some(arg) = schema.arg(k) else { continue };
        match &arg.ty {
            ArgType::String => {
                if v.is_array() || v.is_object() {
                    *v = Value::String(v.to_string());
                }
                stringify(v);
            }
            ArgType::Enum(_) | ArgType::Duration => stringify(v),
            ArgType::StringList => {
                if let Value::Array(items) = v {
                    items.iter_mut().for_each(stringify);
                }
            }
            _ => {}
        }
        arg.ty.check(v).map_err(|m| format!("args.{k}: {m}"))?;
    }
    Ok(input)
}

fn render_error(e: &ExprError) -> String {
    format!("rendering arguments: {e}")
}

fn add(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now)
}

fn wait_target(input: &Value, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(d) = input.get("duration") {
        let s = d
            .as_str()
            .ok_or("wait: `duration` must be a string such as \"5m\"")?;
        let d = parse_duration(s)?;
        if d > crate::validate::MAX_WAIT {
            return Err(format!("wait: `{s}` exceeds the maximum of 7d"));
        }
        return Ok(add(now, d));
    }
    if let Some(u) = input.get("until") {
        let s = u
            .as_str()
            .ok_or("wait: `until` must be an RFC 3339 string")?;
        let t = DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("wait: `{s}` is not an RFC 3339 time: {e}"))?
            .with_timezone(&Utc);
        if t > add(now, crate::validate::MAX_WAIT) {
            return Err(format!("wait: `{s}` is more than 7 days away"));
        }
        return Ok(t);
    }
    Err("wait needs `duration` or `until`".into())
}
