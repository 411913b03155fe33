//! Planning a change to an alert: from its current triage state and a requested change, the
//! next state and the list of field changes the activity timeline records (old -> new).
//!
//! Pure, so PATCH, claim, bulk actions and (later) playbooks share one set of rules and the
//! rules are tested without a database. The store applies a plan inside one transaction.

use crate::triage::{self, AlertStatus, Determination, ResolveReason, TransitionError};
use uuid::Uuid;

pub const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "info"];
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 64;

/// The triage fields of an alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    pub status: AlertStatus,
    pub severity: String,
    pub determination: Option<Determination>,
    pub resolve_reason: Option<ResolveReason>,
    pub assignee_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub acknowledged: bool,
}

/// A requested change; `None` leaves a field alone. `assignee: Some(None)` unassigns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertChange {
    pub status: Option<AlertStatus>,
    pub severity: Option<String>,
    pub determination: Option<Determination>,
    pub resolve_reason: Option<ResolveReason>,
    pub assignee: Option<Option<Uuid>>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
}

impl AlertChange {
    pub fn is_empty(&self) -> bool {
        *self == AlertChange::default()
    }
}

/// One field that changed, for the activity timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub next: AlertState,
    pub changes: Vec<FieldChange>,
    /// Set `acknowledged_at` now (the alert left `new` for the first time).
    pub acknowledge: bool,
    /// `Some(true)`: set `closed_at` now; `Some(false)`: clear it (reopened).
    pub closed: Option<bool>,
}

impl Plan {
    /// Whether the change closes the alert (for the `alert.resolved` audit event).
    pub fn closes(&self) -> bool {
        self.closed == Some(true)
    }
}

/// Why a change was refused; `field` names the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeError {
    pub field: &'static str,
    pub message: String,
}

impl From<TransitionError> for ChangeError {
    fn from(e: TransitionError) -> Self {
        ChangeError {
            field: e.field(),
            message: e.to_string(),
        }
    }
}

fn err(field: &'static str, message: impl Into<String>) -> ChangeError {
    ChangeError {
        field,
        message: message.into(),
    }
}

/// Trims, checks and de-duplicates tags (order kept).
pub fn clean_tags(field: &'static str, tags: &[String]) -> Result<Vec<String>, ChangeError> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if t.is_empty() || t.len() > MAX_TAG_LEN {
            return Err(err(
                field,
                format!("each tag must be 1 to {MAX_TAG_LEN} bytes"),
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(err(field, "tags must not contain control characters"));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(err(field, format!("at most {MAX_TAGS} tags")));
    }
    Ok(out)
}

fn opt<T: ToString>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(ToString::to_string)
}

/// Plans `change` on `current`. A change that changes nothing gives an empty `changes` list.
pub fn plan(current: &AlertState, change: &AlertChange) -> Result<Plan, ChangeError> {
    if change.is_empty() {
        return Err(err("body", "nothing to change"));
    }
    let mut next = current.clone();
    let mut changes = Vec::new();
    let mut acknowledge = false;
    let mut closed = None;

    let to = change.status.unwrap_or(current.status);
    if to != current.status {
        triage::check(&triage::Transition {
            from: current.status,
            to,
            determination: change.determination,
            resolve_reason: change.resolve_reason,
        })?;
        next.status = to;
        if to.is_closed() {
            next.determination = change.determination;
            next.resolve_reason = change.resolve_reason;
            closed = Some(true);
        } else if current.status.is_closed() {
            next.determination = None;
            next.resolve_reason = None;
            closed = Some(false);
        }
        if !current.acknowledged {
            acknowledge = true;
            next.acknowledged = true;
        }
    } else if change.determination.is_some() || change.resolve_reason.is_some() {
        // Re-classifying a closed alert keeps its status; an open alert has nothing to classify.
        if !current.status.is_closed() {
            let field = if change.determination.is_some() {
                "determination"
            } else {
                "resolve_reason"
            };
            return Err(TransitionError::OnlyWhenClosing { field }.into());
        }
        let d = change
            .determination
            .or(current.determination)
            .ok_or_else(|| ChangeError::from(TransitionError::DeterminationRequired))?;
        let r = change
            .resolve_reason
            .or(current.resolve_reason)
            .ok_or_else(|| {
                ChangeError::from(TransitionError::ReasonRequired {
                    allowed: triage::reasons_for(current.status, d),
                })
            })?;
        if !r.fits(d, current.status) {
            return Err(TransitionError::ReasonDoesNotFit {
                reason: r,
                determination: d,
                to: current.status,
            }
            .into());
        }
        next.determination = Some(d);
        next.resolve_reason = Some(r);
    }

    if let Some(s) = &change.severity {
        if !SEVERITIES.contains(&s.as_str()) {
            return Err(err(
                "severity",
                format!("expected one of {}", SEVERITIES.join(", ")),
            ));
        }
        next.severity = s.clone();
    }
    if let Some(a) = change.assignee {
        next.assignee_id = a;
    }
    if let Some(tags) = &change.tags {
        if !change.add_tags.is_empty() || !change.remove_tags.is_empty() {
            return Err(err(
                "tags",
                "give either tags (replace) or add_tags/remove_tags, not both",
            ));
        }
        next.tags = clean_tags("tags", tags)?;
    }
    if !change.add_tags.is_empty() || !change.remove_tags.is_empty() {
        let add = clean_tags("add_tags", &change.add_tags)?;
        let remove = clean_tags("remove_tags", &change.remove_tags)?;
        let mut tags: Vec<String> = next
            .tags
            .iter()
            .filter(|t| !remove.contains(t))
            .cloned()
            .collect();
        for t in add {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(err("add_tags", format!("at most {MAX_TAGS} tags")));
        }
        next.tags = tags;
    }

    if next.status != current.status {
        changes.push(FieldChange {
            field: "status",
            old: Some(current.status.to_string()),
            new: Some(next.status.to_string()),
        });
    }
    if next.determination != current.determination {
        changes.push(FieldChange {
            field: "determination",
            old: opt(&current.determination),
            new: opt(&next.determination),
        });
    }
    if next.resolve_reason != current.resolve_reason {
        changes.push(FieldChange {
            field: "resolve_reason",
            old: opt(&current.resolve_reason),
            new: opt(&next.resolve_reason),
        });
    }
    if next.severity != current.severity {
        changes.push(FieldChange {
            field: "severity",
            old: Some(current.severity.clone()),
            new: Some(next.severity.clone()),
        });
    }
    if next.assignee_id != current.assignee_id {
        changes.push(FieldChange {
            field: "assignee",
            old: opt(&current.assignee_id),
            new: opt(&next.assignee_id),
        });
    }
    if next.tags != current.tags {
        changes.push(FieldChange {
            field: "tags",
            old: Some(current.tags.join(", ")),
            new: Some(next.tags.join(", ")),
        });
    }
    Ok(Plan {
        next,
        changes,
        acknowledge,
        closed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: AlertStatus) -> AlertState {
        AlertState {
            status,
            severity: "high".into(),
            determination: None,
            resolve_reason: None,
            assignee_id: None,
            tags: vec!["a".into()],
            acknowledged: status != AlertStatus::New,
        }
    }

    #[test]
    fn closing_records_determination_reason_and_acknowledges() {
        let p = plan(
            &state(AlertStatus::New),
            &AlertChange {
                status: Some(AlertStatus::Resolved),
                determination: Some(Determination::Malicious),
                resolve_reason: Some(ResolveReason::TruePositive),
                ..Default::default()
            },
        )
        .expect("valid");
        assert!(p.acknowledge && p.closes());
        let fields: Vec<_> = p.changes.iter().map(|c| c.field).collect();
        assert_eq!(fields, vec!["status", "determination", "resolve_reason"]);
    }

    #[test]
    fn closing_without_determination_names_the_field() {
        let e = plan(
            &state(AlertStatus::InProgress),
            &AlertChange {
                status: Some(AlertStatus::Resolved),
                ..Default::default()
            },
        )
        .expect_err("refused");
        assert_eq!(e.field, "determination");
    }

    #[test]
    fn reopening_clears_the_classification() {
        let mut s = state(AlertStatus::Resolved);
        s.determination = Some(Determination::Benign);
        s.resolve_reason = Some(ResolveReason::ExpectedActivity);
        let p = plan(
            &s,
            &AlertChange {
                status: Some(AlertStatus::InProgress),
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(p.closed, Some(false));
        assert_eq!(p.next.determination, None);
        assert_eq!(p.changes.len(), 3);
    }

    #[test]
    fn invalid_transition_lists_allowed() {
        let e = plan(
            &state(AlertStatus::Resolved),
            &AlertChange {
                status: Some(AlertStatus::Triaged),
                ..Default::default()
            },
        )
        .expect_err("refused");
        assert_eq!(e.field, "status");
        assert!(e.message.contains("allowed: in_progress"), "{}", e.message);
    }

    #[test]
    fn reclassifying_a_closed_alert_must_still_fit() {
        let mut s = state(AlertStatus::Resolved);
        s.determination = Some(Determination::Malicious);
        s.resolve_reason = Some(ResolveReason::TruePositive);
        let e = plan(
            &s,
            &AlertChange {
                determination: Some(Determination::Benign),
                ..Default::default()
            },
        )
        .expect_err("true_positive does not fit benign");
        assert_eq!(e.field, "resolve_reason");
        let ok = plan(
            &s,
            &AlertChange {
                determination: Some(Determination::Suspicious),
                ..Default::default()
            },
        )
        .expect("fits");
        assert_eq!(ok.changes.len(), 1);
        let open = plan(
            &state(AlertStatus::Triaged),
            &AlertChange {
                determination: Some(Determination::Benign),
                ..Default::default()
            },
        )
        .expect_err("open alerts are not classified");
        assert_eq!(open.field, "determination");
    }

    #[test]
    fn tags_are_cleaned_and_merged() {
        let p = plan(
            &state(AlertStatus::New),
            &AlertChange {
                add_tags: vec![" b ".into(), "b".into()],
                remove_tags: vec!["a".into()],
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(p.next.tags, vec!["b"]);
        let e = plan(
            &state(AlertStatus::New),
            &AlertChange {
                tags: Some(vec!["".into()]),
                ..Default::default()
            },
        )
        .expect_err("empty tag");
        assert_eq!(e.field, "tags");
    }

    #[test]
    fn a_change_to_the_same_values_records_nothing() {
        let p = plan(
            &state(AlertStatus::Triaged),
            &AlertChange {
                status: Some(AlertStatus::Triaged),
                severity: Some("high".into()),
                ..Default::default()
            },
        )
        .expect("valid");
        assert!(p.changes.is_empty());
        assert_eq!(
            plan(&state(AlertStatus::New), &AlertChange::default())
                .expect_err("empty")
                .field,
            "body"
        );
    }
}
