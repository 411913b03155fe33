//! Trigger matching: which enabled playbooks an event starts, evaluated at ingestion.
//!
//! Conditions are compiled once (in the [`Playbook`]); the event context is converted once
//! per event and shared by every condition. A condition that fails to evaluate counts as
//! not matched and is reported in [`TriggerMatches::errors`]: ingestion never fails because
//! of a playbook.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::expr::{ExprError, PreparedContext};
use crate::spec::{Playbook, TriggerKind};

/// An event that can start runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerEvent {
    /// `duplicate`: the alert was folded into an existing one (only `on_duplicate: true` triggers fire).
    AlertCreated {
        duplicate: bool,
    },
    AlertUpdated,
    IncidentCreated,
    IncidentUpdated,
}

impl TriggerEvent {
    fn kind(self) -> TriggerKind {
        match self {
            TriggerEvent::AlertCreated { .. } => TriggerKind::AlertCreated,
            TriggerEvent::AlertUpdated => TriggerKind::AlertUpdated,
            TriggerEvent::IncidentCreated => TriggerKind::IncidentCreated,
            TriggerEvent::IncidentUpdated => TriggerKind::IncidentUpdated,
        }
    }
}

/// A playbook to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match<Id> {
    pub playbook_id: Id,
    pub playbook_name: String,
    pub priority: i32,
}

/// A condition that could not be evaluated (counted as not matched).
#[derive(Clone, Debug, PartialEq)]
pub struct MatchError<Id> {
    pub playbook_id: Id,
    pub playbook_name: String,
    /// Index into the playbook's `triggers`.
    pub trigger_index: usize,
    pub error: ExprError,
}

/// The result of [`TriggerSet::matching`].
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerMatches<Id> {
    /// Ordered by (priority, name).
    pub matches: Vec<Match<Id>>,
    pub errors: Vec<MatchError<Id>>,
}

/// The enabled playbooks' triggers, ready for matching. `Id` is the store's playbook id
/// (e.g. `uuid::Uuid`).
#[derive(Clone, Debug)]
pub struct TriggerSet<Id = uuid::Uuid> {
    /// Sorted by (priority, name) so matches come out in order.
    playbooks: Vec<(Id, Arc<Playbook>)>,
}

impl<Id: Clone> TriggerSet<Id> {
    /// Keeps only enabled playbooks.
    pub fn new(playbooks: Vec<(Id, Arc<Playbook>)>) -> Self {
        let mut playbooks: Vec<(Id, Arc<Playbook>)> =
            playbooks.into_iter().filter(|(_, p)| p.enabled()).collect();
        playbooks.sort_by(|a, b| (a.1.priority(), a.1.name()).cmp(&(b.1.priority(), b.1.name())));
        Self { playbooks }
    }

    pub fn len(&self) -> usize {
        self.playbooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty()
    }

    /// The playbooks the event starts, in (priority, name) order. A playbook matches at most
    /// once, on its first matching trigger.
    pub fn matching(&self, event: TriggerEvent, ctx: &serde_json::Value) -> TriggerMatches<Id> {
        let mut out = TriggerMatches {
            matches: Vec::new(),
            errors: Vec::new(),
        };
        let kind = event.kind();
        let duplicate = matches!(event, TriggerEvent::AlertCreated { duplicate: true });
        let mut prepared: Option<PreparedContext> = None;
        for (id, pb) in &self.playbooks {
            for (ti, t) in pb.triggers().iter().enumerate() {
                if t.kind != kind || (duplicate && !t.on_duplicate) {
                    continue;
                }
                let matched = match &t.condition {
                    None => true,
                    Some(cond) => {
                        let ctx = prepared.get_or_insert_with(|| PreparedContext::new(ctx));
                        match cond.eval_prepared(ctx) {
                            Ok(b) => b,
                            Err(error) => {
                                out.errors.push(MatchError {
                                    playbook_id: id.clone(),
                                    playbook_name: pb.name().to_owned(),
                                    trigger_index: ti,
                                    error,
                                });
                                false
                            }
                        }
                    }
                };
                if matched {
                    out.matches.push(Match {
                        playbook_id: id.clone(),
                        playbook_name: pb.name().to_owned(),
                        priority: pb.priority(),
                    });
                    break;
                }
            }
        }
        out
    }

    /// Playbooks started by hand (`on: manual`).
    pub fn manual(&self) -> Vec<Id> {
        self.playbooks
            .iter()
            .filter(|(_, p)| p.triggers().iter().any(|t| t.kind == TriggerKind::Manual))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// `(playbook id, cron)` for every schedule trigger.
    pub fn schedule_triggers(&self) -> Vec<(Id, String)> {
        self.playbooks
            .iter()
            .flat_map(|(id, p)| {
                p.triggers()
                    .iter()
                    .filter(|t| t.kind == TriggerKind::Schedule)
                    .filter_map(|t| t.cron.clone())
                    .map(move |c| (id.clone(), c))
            })
            .collect()
    }
}

/// The first fire time of a 5-field cron (UTC) strictly after `after`; `None` for an invalid
/// cron or one that never fires.
pub fn next_fire(cron: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let c = crate::validate::parse_cron(cron).ok()?;
    c.find_next_occurrence(&after, false).ok()
}
