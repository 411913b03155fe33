//! The incident lifecycle and the rules for incident input, as pure logic.
//!
//! An incident moves through the response phases
//! `open → in_progress → pending_approval → contained → eradicated → recovered → closed`.
//! The allowed moves ([`allowed_from`]):
//!
//! | from | may go to |
//! | --- | --- |
//! | any status but `closed` | any **later** status (skipping phases is allowed: not every incident needs approval or eradication) |
//! | any status but `open` and `closed` | the status **one step back** (a correction: "not contained after all") |
//! | any status | `closed` (closing is a later status for every open phase) |
//! | `closed` | `in_progress` only (reopen; `closed_at` is cleared) |
//!
//! A status to itself is a no-op and always passes. Jumping back more than one step is refused
//! so that a regression is a deliberate, visible sequence of corrections in the timeline, and
//! a closed incident is reopened into active work (`in_progress`), never straight into a late
//! phase. [`check`] returns an error that names the allowed targets, so a client can tell the
//! analyst what would have been accepted.

use crate::access::UnknownName;
use crate::validate::FieldError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where an incident is in its response lifecycle.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Debug,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Declared, nobody working on it yet.
    Open,
    /// Being investigated.
    InProgress,
    /// Waiting for a decision (e.g. approval of a containment action).
    PendingApproval,
    /// The threat can no longer spread.
    Contained,
    /// The threat is removed.
    Eradicated,
    /// Systems are back to normal operation.
    Recovered,
    /// Done (`closed_at` is set).
    Closed,
}

impl IncidentStatus {
    /// In lifecycle order.
    pub const ALL: &'static [IncidentStatus] = &[
        IncidentStatus::Open,
        IncidentStatus::InProgress,
        IncidentStatus::PendingApproval,
        IncidentStatus::Contained,
        IncidentStatus::Eradicated,
        IncidentStatus::Recovered,
        IncidentStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::InProgress => "in_progress",
            IncidentStatus::PendingApproval => "pending_approval",
            IncidentStatus::Contained => "contained",
            IncidentStatus::Eradicated => "eradicated",
            IncidentStatus::Recovered => "recovered",
            IncidentStatus::Closed => "closed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    pub fn is_closed(self) -> bool {
        self == IncidentStatus::Closed
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IncidentStatus::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "incident status",
                value: s.chars().take(64).collect(),
            })
    }
}

/// The statuses an incident in `from` may move to, in lifecycle order (itself not listed).
pub fn allowed_from(from: IncidentStatus) -> Vec<IncidentStatus> {
    if from.is_closed() {
        return vec![IncidentStatus::InProgress];
    }
    let i = from.index();
    IncidentStatus::ALL
        .iter()
        .copied()
        .filter(|s| {
            let j = s.index();
            j > i || (j + 1 == i && i >= 1)
        })
        .collect()
}

/// A refused status change: `to` is not reachable from `from`; `allowed` is what is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionError {
    pub from: IncidentStatus,
    pub to: IncidentStatus,
    pub allowed: Vec<IncidentStatus>,
}

impl TransitionError {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        "status"
    }
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed = self
            .allowed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        write!(
            f,
            "cannot go from {} to {}; allowed: {allowed}",
            self.from, self.to
        )
    }
}

impl std::error::Error for TransitionError {}

/// Checks a status change (a status to itself always passes).
pub fn check(from: IncidentStatus, to: IncidentStatus) -> Result<(), TransitionError> {
    if from == to {
        return Ok(());
    }
    let allowed = allowed_from(from);
    if allowed.contains(&to) {
        Ok(())
    } else {
        Err(TransitionError { from, to, allowed })
    }
}

/// What `closed_at` becomes after a (checked) move: set when closing, cleared when reopening,
/// kept otherwise.
pub fn closed_at_after(
    from: IncidentStatus,
    to: IncidentStatus,
    current: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match (from.is_closed(), to.is_closed()) {
        (false, true) => Some(now),
        (true, false) => None,
        _ => current,
    }
}

/// The status of a task within an incident. Any task status may move to any other (tasks are
/// a checklist, not a workflow); `completed_at` is set on entering `done` and cleared on
/// leaving it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    InProgress,
    Done,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: &'static [TaskStatus] = &[
        TaskStatus::Open,
        TaskStatus::InProgress,
        TaskStatus::Done,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Done => "done",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// What `completed_at` becomes after moving from `from` to `self`.
    pub fn completed_at_after(
        self,
        from: TaskStatus,
        current: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match (from == TaskStatus::Done, self == TaskStatus::Done) {
            (false, true) => Some(now),
            (true, false) => None,
            _ => current,
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "task status",
                value: s.chars().take(64).collect(),
            })
    }
}

/// Severities of incidents (the same vocabulary as alerts), most severe first.
pub const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "info"];

/// Rank of a severity: 0 for critical, 4 for info, `None` when unknown.
pub fn severity_rank(s: &str) -> Option<usize> {
    SEVERITIES.iter().position(|v| *v == s)
}

pub fn severity(field: &'static str, raw: &str) -> Result<String, FieldError> {
    if severity_rank(raw).is_some() {
        Ok(raw.to_string())
    } else {
        Err(FieldError::new(
            field,
            format!("expected one of {}", SEVERITIES.join(", ")),
        ))
    }
}

pub const MAX_TITLE: usize = 300;
pub const MAX_DESCRIPTION: usize = 20_000;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG: usize = 128;
pub const MAX_COMMENT: usize = 10_000;

/// A title: trimmed, 1 to [`MAX_TITLE`] characters, no control characters.
pub fn title(field: &'static str, raw: &str) -> Result<String, FieldError> {
    crate::validate::name(field, raw, MAX_TITLE)
}

/// Free text (a description): at most `max` characters; blank becomes `None`.
pub fn text(
    field: &'static str,
    raw: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match raw {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) if s.chars().count() > max => Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(s) => Ok(Some(s.to_string())),
    }
}

/// Tags: each trimmed, 1 to [`MAX_TAG`] characters without control characters; at most
/// [`MAX_TAGS`]; duplicates removed (first kept, order kept).
pub fn tags(field: &'static str, raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.len() > MAX_TAGS {
        return Err(FieldError::new(field, format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for t in raw {
        let v = t.trim();
        if v.is_empty() || v.chars().count() > MAX_TAG || v.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                format!("each tag must be 1 to {MAX_TAG} characters without control characters"),
            ));
        }
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    Ok(out)
}

/// A comment body: 1 to [`MAX_COMMENT`] characters, not blank.
pub fn comment_body(field: &'static str, raw: &str) -> Result<String, FieldError> {
    if raw.trim().is_empty() || raw.chars().count() > MAX_COMMENT {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_COMMENT} characters, not blank"),
        ));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentStatus as S;

    /// The lifecycle written out independently of `allowed_from`: (from, to) by wire name.
    const EXPECTED_EDGES: &[(&str, &str)] = &[
        ("open", "in_progress"),
        ("open", "pending_approval"),
        ("open", "contained"),
        ("open", "eradicated"),
        ("open", "recovered"),
        ("open", "closed"),
        ("in_progress", "open"),
        ("in_progress", "pending_approval"),
        ("in_progress", "contained"),
        ("in_progress", "eradicated"),
        ("in_progress", "recovered"),
        ("in_progress", "closed"),
        ("pending_approval", "in_progress"),
        ("pending_approval", "contained"),
        ("pending_approval", "eradicated"),
        ("pending_approval", "recovered"),
        ("pending_approval", "closed"),
        ("contained", "pending_approval"),
        ("contained", "eradicated"),
        ("contained", "recovered"),
        ("contained", "closed"),
        ("eradicated", "contained"),
        ("eradicated", "recovered"),
        ("eradicated", "closed"),
        ("recovered", "eradicated"),
        ("recovered", "closed"),
        ("closed", "in_progress"),
    ];

    fn expected(from: S, to: S) -> bool {
        EXPECTED_EDGES.contains(&(from.as_str(), to.as_str()))
    }

    #[test]
    fn every_status_pair_matches_the_table() {
        let mut allowed = 0;
        for &from in S::ALL {
            for &to in S::ALL {
                let r = check(from, to);
                if from == to {
                    assert_eq!(r, Ok(()));
                    assert!(!allowed_from(from).contains(&to));
                } else if expected(from, to) {
                    allowed += 1;
                    assert_eq!(r, Ok(()), "{from} -> {to}");
                } else {
                    let want: Vec<S> = S::ALL
                        .iter()
                        .copied()
                        .filter(|&x| expected(from, x))
                        .collect();
                    assert_eq!(
                        r,
                        Err(TransitionError {
                            from,
                            to,
                            allowed: want
                        }),
                        "{from} -> {to}"
                    );
                }
            }
        }
        assert_eq!(allowed, EXPECTED_EDGES.len());
    }

    #[test]
    fn close_from_anywhere_and_reopen_only_to_in_progress() {
        for &s in S::ALL {
            assert!(check(s, S::Closed).is_ok(), "{s}");
        }
        assert_eq!(allowed_from(S::Closed), vec![S::InProgress]);
    }

    #[test]
    fn messages_name_the_allowed_statuses() {
        let e = check(S::Closed, S::Open).expect_err("refused");
        assert_eq!(e.field(), "status");
        assert_eq!(
            e.to_string(),
            "cannot go from closed to open; allowed: in_progress"
        );
        let e = check(S::Eradicated, S::Open).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "cannot go from eradicated to open; allowed: contained, recovered, closed"
        );
    }

    #[test]
    fn closed_at_is_set_on_close_and_cleared_on_reopen() {
        let now = Utc::now();
        let earlier = now - chrono::Duration::hours(1);
        assert_eq!(
            closed_at_after(S::Contained, S::Closed, None, now),
            Some(now)
        );
        assert_eq!(
            closed_at_after(S::Closed, S::InProgress, Some(earlier), now),
            None
        );
        assert_eq!(
            closed_at_after(S::Closed, S::Closed, Some(earlier), now),
            Some(earlier)
        );
        assert_eq!(closed_at_after(S::Open, S::Contained, None, now), None);
    }

    #[test]
    fn task_completed_at() {
        let now = Utc::now();
        let then = now - chrono::Duration::hours(2);
        assert_eq!(
            TaskStatus::Done.completed_at_after(TaskStatus::Open, None, now),
            Some(now)
        );
        assert_eq!(
            TaskStatus::Done.completed_at_after(TaskStatus::Done, Some(then), now),
            Some(then)
        );
        assert_eq!(
            TaskStatus::Open.completed_at_after(TaskStatus::Done, Some(then), now),
            None
        );
        assert_eq!(
            TaskStatus::Cancelled.completed_at_after(TaskStatus::Open, None, now),
            None
        );
    }

    #[test]
    fn wire_names_round_trip() {
        for &s in S::ALL {
            let json = serde_json::to_string(&s).expect("json");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(s.as_str().parse::<S>(), Ok(s));
        }
        for &t in TaskStatus::ALL {
            assert_eq!(t.as_str().parse::<TaskStatus>(), Ok(t));
        }
        assert!("Closed".parse::<S>().is_err());
        assert!("done ".parse::<TaskStatus>().is_err());
    }

    #[test]
    fn input_rules_name_the_field() {
        assert_eq!(severity("severity", "high").as_deref(), Ok("high"));
        assert_eq!(
            severity("severity", "urgent").map_err(|e| e.field),
            Err("severity")
        );
        assert_eq!(
            tags("tags", &[" a ".into(), "b".into(), "a".into()]),
            Ok(vec!["a".to_string(), "b".to_string()])
        );
        assert!(tags("tags", &["".into()]).is_err());
        assert!(tags("tags", &vec!["x".to_string(); 51]).is_err());
        assert_eq!(text("description", Some("  "), 10), Ok(None));
        assert!(text("description", Some(&"x".repeat(11)), 10).is_err());
        assert!(comment_body("body", " ").is_err());
        assert!(comment_body("body", &"x".repeat(10_001)).is_err());
        assert!(comment_body("body", &"é".repeat(10_000)).is_ok());
        assert!(title("title", "").is_err());
    }
}
