//! The alert triage lifecycle: which status changes are allowed, and what closing an alert
//! must record.
//!
//! Every status change goes through [`check`], so the API, the UI and playbooks all follow the
//! same rules. Closing an alert (resolved or false positive) needs a [`Determination`] and a
//! [`ResolveReason`] that fit each other: metrics on detection quality and rule tuning depend
//! on these being consistent, so a contradictory pair ("malicious" closed as "false positive:
//! bad data") is refused instead of stored. Errors name the field at fault and what would have
//! been accepted, so a client can show the analyst how to fix the request.

use crate::access::UnknownName;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where an alert is in its triage lifecycle.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Not looked at yet.
    New,
    /// Looked at and prioritised; nobody is working on it yet.
    Triaged,
    /// An analyst is investigating.
    InProgress,
    /// Handed to a higher tier or to incident response.
    Escalated,
    /// Closed: the alert was real (or benign but correct), and handled.
    Resolved,
    /// Closed: the alert should not have fired.
    FalsePositive,
}

impl AlertStatus {
    pub const ALL: &'static [AlertStatus] = &[
        AlertStatus::New,
        AlertStatus::Triaged,
        AlertStatus::InProgress,
        AlertStatus::Escalated,
        AlertStatus::Resolved,
        AlertStatus::FalsePositive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::New => "new",
            AlertStatus::Triaged => "triaged",
            AlertStatus::InProgress => "in_progress",
            AlertStatus::Escalated => "escalated",
            AlertStatus::Resolved => "resolved",
            AlertStatus::FalsePositive => "false_positive",
        }
    }

    /// Whether the alert is closed (needs a determination and a resolve reason to get here).
    pub fn is_closed(self) -> bool {
        matches!(self, AlertStatus::Resolved | AlertStatus::FalsePositive)
    }
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertStatus::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown("alert status", s))
    }
}

/// The statuses an alert in `from` may move to (a status to itself is a no-op, not listed).
/// Closed alerts can only be reopened, to `in_progress`.
pub fn allowed_from(from: AlertStatus) -> &'static [AlertStatus] {
    use AlertStatus::*;
    match from {
        New => &[Triaged, InProgress, Escalated, Resolved, FalsePositive],
        Triaged => &[InProgress, Escalated, Resolved, FalsePositive],
        InProgress => &[Triaged, Escalated, Resolved, FalsePositive],
        Escalated => &[InProgress, Resolved, FalsePositive],
        Resolved | FalsePositive => &[InProgress],
    }
}

/// The analyst's verdict on what the alert shows, recorded when closing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Determination {
    Malicious,
    Suspicious,
    Benign,
}

impl Determination {
    pub const ALL: &'static [Determination] = &[
        Determination::Malicious,
        Determination::Suspicious,
        Determination::Benign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Determination::Malicious => "malicious",
            Determination::Suspicious => "suspicious",
            Determination::Benign => "benign",
        }
    }
}

impl fmt::Display for Determination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Determination {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Determination::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown("determination", s))
    }
}

/// Why an alert was closed (a closed vocabulary, so closures can be counted and rules tuned).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveReason {
    /// Real malicious or suspicious activity, handled.
    TruePositive,
    /// The rule fired correctly on activity that turned out to be harmless.
    BenignTruePositive,
    /// The rule is too broad; it should be tuned.
    FalsePositiveRuleTuningNeeded,
    /// The rule fired because of wrong or malformed input data.
    FalsePositiveBadData,
    /// Already covered by another alert.
    Duplicate,
    /// Known, sanctioned activity (maintenance, admin work).
    ExpectedActivity,
    /// A test, exercise or attack simulation.
    TestOrSimulation,
    /// Not enough data to decide.
    InsufficientData,
}

impl ResolveReason {
    pub const ALL: &'static [ResolveReason] = &[
        ResolveReason::TruePositive,
        ResolveReason::BenignTruePositive,
        ResolveReason::FalsePositiveRuleTuningNeeded,
        ResolveReason::FalsePositiveBadData,
        ResolveReason::Duplicate,
        ResolveReason::ExpectedActivity,
        ResolveReason::TestOrSimulation,
        ResolveReason::InsufficientData,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResolveReason::TruePositive => "true_positive",
            ResolveReason::BenignTruePositive => "benign_true_positive",
            ResolveReason::FalsePositiveRuleTuningNeeded => "false_positive_rule_tuning_needed",
            ResolveReason::FalsePositiveBadData => "false_positive_bad_data",
            ResolveReason::Duplicate => "duplicate",
            ResolveReason::ExpectedActivity => "expected_activity",
            ResolveReason::TestOrSimulation => "test_or_simulation",
            ResolveReason::InsufficientData => "insufficient_data",
        }
    }

    /// A human label, for the UI.
    pub fn label(self) -> &'static str {
        match self {
            ResolveReason::TruePositive => "True positive",
            ResolveReason::BenignTruePositive => "Benign true positive",
            ResolveReason::FalsePositiveRuleTuningNeeded => "False positive: rule tuning needed",
            ResolveReason::FalsePositiveBadData => "False positive: bad data",
            ResolveReason::Duplicate => "Duplicate",
            ResolveReason::ExpectedActivity => "Expected activity",
            ResolveReason::TestOrSimulation => "Test or simulation",
            ResolveReason::InsufficientData => "Insufficient data",
        }
    }

    /// Whether this reason is consistent with the analyst's determination.
    pub fn fits_determination(self, d: Determination) -> bool {
        use ResolveReason::*;
        match self {
            TruePositive => matches!(d, Determination::Malicious | Determination::Suspicious),
            BenignTruePositive
            | ExpectedActivity
            | TestOrSimulation
            | FalsePositiveRuleTuningNeeded
            | FalsePositiveBadData => d == Determination::Benign,
            Duplicate | InsufficientData => true,
        }
    }

    /// Whether this reason may close an alert into `to` (false for non-closed statuses).
    pub fn fits_status(self, to: AlertStatus) -> bool {
        use ResolveReason::*;
        match self {
            TruePositive | BenignTruePositive | ExpectedActivity | TestOrSimulation => {
                to == AlertStatus::Resolved
            }
            FalsePositiveRuleTuningNeeded | FalsePositiveBadData => {
                to == AlertStatus::FalsePositive
            }
            Duplicate | InsufficientData => to.is_closed(),
        }
    }

    /// Whether this reason may close an alert into `to` with determination `d`.
    pub fn fits(self, d: Determination, to: AlertStatus) -> bool {
        self.fits_determination(d) && self.fits_status(to)
    }
}

impl fmt::Display for ResolveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResolveReason {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResolveReason::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown("resolve reason", s))
    }
}

/// The resolve reasons that may close an alert into `to` with determination `d`, in
/// [`ResolveReason::ALL`] order (empty when `to` is not a closed status).
pub fn reasons_for(to: AlertStatus, d: Determination) -> Vec<ResolveReason> {
    ResolveReason::ALL
        .iter()
        .copied()
        .filter(|r| r.fits(d, to))
        .collect()
}

/// A requested status change, with what the request records alongside it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Transition {
    pub from: AlertStatus,
    pub to: AlertStatus,
    pub determination: Option<Determination>,
    pub resolve_reason: Option<ResolveReason>,
}

/// Why a [`Transition`] was refused. [`TransitionError::field`] names the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// `to` is not reachable from `from`; `allowed` is what is.
    NotAllowed {
        from: AlertStatus,
        to: AlertStatus,
        allowed: Vec<AlertStatus>,
    },
    /// Closing needs a determination.
    DeterminationRequired,
    /// Closing needs a resolve reason; `allowed` lists the ones that fit.
    ReasonRequired { allowed: Vec<ResolveReason> },
    /// The reason contradicts the determination or the closing status.
    ReasonDoesNotFit {
        reason: ResolveReason,
        determination: Determination,
        to: AlertStatus,
    },
    /// A determination or resolve reason was given while not closing; `field` is which one.
    OnlyWhenClosing { field: &'static str },
}

impl TransitionError {
    /// The request field at fault: `"status"`, `"determination"` or `"resolve_reason"`.
    pub fn field(&self) -> &'static str {
        match self {
            TransitionError::NotAllowed { .. } => "status",
            TransitionError::DeterminationRequired => "determination",
            TransitionError::ReasonRequired { .. } | TransitionError::ReasonDoesNotFit { .. } => {
                "resolve_reason"
            }
            TransitionError::OnlyWhenClosing { field } => field,
        }
    }
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionError::NotAllowed { from, to, allowed } => write!(
                f,
                "cannot go from {from} to {to}; allowed: {}",
                join(allowed)
            ),
            TransitionError::DeterminationRequired => f.write_str(
                "determination is required when closing an alert; allowed: malicious, suspicious, benign",
            ),
            TransitionError::ReasonRequired { allowed } => write!(
                f,
                "resolve_reason is required when closing an alert; allowed: {}",
                join(allowed)
            ),
            TransitionError::ReasonDoesNotFit {
                reason,
                determination,
                to,
            } => fmt_does_not_fit(f, *reason, *determination, *to),
            TransitionError::OnlyWhenClosing { field } => write!(
                f,
                "{field} may only be given when closing an alert (status resolved or false_positive)"
            ),
        }
    }
}

impl std::error::Error for TransitionError {}

fn fmt_does_not_fit(
    f: &mut fmt::Formatter<'_>,
    reason: ResolveReason,
    d: Determination,
    to: AlertStatus,
) -> fmt::Result {
    if reason.fits_determination(d) {
        write!(f, "{reason} does not fit status {to}")?;
    } else {
        write!(f, "{reason} does not fit determination {d}")?;
    }
    write!(f, "; allowed: {}", join(&reasons_for(to, d)))
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown(kind: &'static str, value: &str) -> UnknownName {
    UnknownName {
        kind,
        value: value.chars().take(64).collect(),
    }
}

/// Checks a status change. A status to itself is a no-op and always passes (the determination
/// and reason are not looked at). Otherwise: the target must be in [`allowed_from`]; closing
/// needs a determination and a resolve reason that fit; anything else must carry neither
/// (reopening clears them, which is the caller's job).
pub fn check(t: &Transition) -> Result<(), TransitionError> {
    if t.from == t.to {
        return Ok(());
    }
    check_status(t.from, t.to)?;
    if t.to.is_closed() {
        check_closing(t)
    } else {
        check_not_closing(t)
    }
}

fn check_status(from: AlertStatus, to: AlertStatus) -> Result<(), TransitionError> {
    let allowed = allowed_from(from);
    if allowed.contains(&to) {
        return Ok(());
    }
    Err(TransitionError::NotAllowed {
        from,
        to,
        allowed: allowed.to_vec(),
    })
}

fn check_closing(t: &Transition) -> Result<(), TransitionError> {
    let determination = t
        .determination
        .ok_or(TransitionError::DeterminationRequired)?;
    let reason = t
        .resolve_reason
        .ok_or_else(|| TransitionError::ReasonRequired {
            allowed: reasons_for(t.to, determination),
        })?;
    if reason.fits(determination, t.to) {
        return Ok(());
    }
    Err(TransitionError::ReasonDoesNotFit {
        reason,
        determination,
        to: t.to,
    })
}

fn check_not_closing(t: &Transition) -> Result<(), TransitionError> {
    if t.determination.is_some() {
        return Err(TransitionError::OnlyWhenClosing {
            field: "determination",
        });
    }
    if t.resolve_reason.is_some() {
        return Err(TransitionError::OnlyWhenClosing {
            field: "resolve_reason",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlertStatus as S;
    use Determination as D;
    use ResolveReason as R;

    /// The lifecycle, written out independently of `allowed_from`: (from, to) by wire name.
    const EXPECTED_EDGES: &[(&str, &str)] = &[
        ("new", "triaged"),
        ("new", "in_progress"),
        ("new", "escalated"),
        ("new", "resolved"),
        ("new", "false_positive"),
        ("triaged", "in_progress"),
        ("triaged", "escalated"),
        ("triaged", "resolved"),
        ("triaged", "false_positive"),
        ("in_progress", "triaged"),
        ("in_progress", "escalated"),
        ("in_progress", "resolved"),
        ("in_progress", "false_positive"),
        ("escalated", "in_progress"),
        ("escalated", "resolved"),
        ("escalated", "false_positive"),
        ("resolved", "in_progress"),
        ("false_positive", "in_progress"),
    ];

    fn edge_expected(from: S, to: S) -> bool {
        EXPECTED_EDGES.contains(&(from.as_str(), to.as_str()))
    }

    fn bare(from: S, to: S) -> Transition {
        Transition {
            from,
            to,
            determination: None,
            resolve_reason: None,
        }
    }

    fn closing(to: S, d: D, r: R) -> Transition {
        Transition {
            from: S::InProgress,
            to,
            determination: Some(d),
            resolve_reason: Some(r),
        }
    }

    /// A payload that makes a closing transition valid regardless of target (duplicate fits
    /// every determination and both closed statuses).
    fn valid_payload(from: S, to: S) -> Transition {
        if to.is_closed() && from != to {
            Transition {
                determination: Some(D::Benign),
                resolve_reason: Some(R::Duplicate),
                ..bare(from, to)
            }
        } else {
            bare(from, to)
        }
    }

    #[test]
    fn every_status_pair_matches_the_expected_table() {
        let mut allowed_count = 0;
        for &from in S::ALL {
            for &to in S::ALL {
                let result = check(&valid_payload(from, to));
                if from == to {
                    assert_eq!(result, Ok(()), "{from} -> {to} is a no-op");
                    assert!(!allowed_from(from).contains(&to), "{from} lists itself");
                } else if edge_expected(from, to) {
                    allowed_count += 1;
                    assert_eq!(result, Ok(()), "{from} -> {to} should be allowed");
                    assert!(allowed_from(from).contains(&to));
                } else {
                    let expected: Vec<S> = S::ALL
                        .iter()
                        .copied()
                        .filter(|&x| edge_expected(from, x))
                        .collect();
                    assert_eq!(
                        result,
                        Err(TransitionError::NotAllowed {
                            from,
                            to,
                            allowed: expected
                        }),
                        "{from} -> {to} should be refused"
                    );
                    assert!(!allowed_from(from).contains(&to));
                }
            }
        }
        assert_eq!(allowed_count, EXPECTED_EDGES.len());
        let listed: usize = S::ALL.iter().map(|&s| allowed_from(s).len()).sum();
        assert_eq!(listed, EXPECTED_EDGES.len());
    }

    #[test]
    fn status_is_checked_before_payload() {
        let t = Transition {
            from: S::Resolved,
            to: S::FalsePositive,
            determination: None,
            resolve_reason: None,
        };
        assert_eq!(check(&t).expect_err("refused").field(), "status");
        let t = Transition {
            determination: Some(D::Malicious),
            ..bare(S::Escalated, S::Triaged)
        };
        assert_eq!(check(&t).expect_err("refused").field(), "status");
    }

    #[test]
    fn closing_without_determination_or_reason_is_refused() {
        for &to in &[S::Resolved, S::FalsePositive] {
            assert_eq!(
                check(&bare(S::New, to)),
                Err(TransitionError::DeterminationRequired)
            );
            let reason_only = Transition {
                resolve_reason: Some(R::Duplicate),
                ..bare(S::New, to)
            };
            assert_eq!(
                check(&reason_only),
                Err(TransitionError::DeterminationRequired)
            );
        }
    }

    #[test]
    fn reason_required_lists_the_fitting_reasons() {
        let cases: &[(S, D, &[R])] = &[
            (
                S::Resolved,
                D::Malicious,
                &[R::TruePositive, R::Duplicate, R::InsufficientData],
            ),
            (
                S::Resolved,
                D::Suspicious,
                &[R::TruePositive, R::Duplicate, R::InsufficientData],
            ),
            (
                S::Resolved,
                D::Benign,
                &[
                    R::BenignTruePositive,
                    R::Duplicate,
                    R::ExpectedActivity,
                    R::TestOrSimulation,
                    R::InsufficientData,
                ],
            ),
            (
                S::FalsePositive,
                D::Malicious,
                &[R::Duplicate, R::InsufficientData],
            ),
            (
                S::FalsePositive,
                D::Suspicious,
                &[R::Duplicate, R::InsufficientData],
            ),
            (
                S::FalsePositive,
                D::Benign,
                &[
                    R::FalsePositiveRuleTuningNeeded,
                    R::FalsePositiveBadData,
                    R::Duplicate,
                    R::InsufficientData,
                ],
            ),
        ];
        for &(to, d, expected) in cases {
            let t = Transition {
                determination: Some(d),
                ..bare(S::Triaged, to)
            };
            assert_eq!(
                check(&t),
                Err(TransitionError::ReasonRequired {
                    allowed: expected.to_vec()
                }),
                "{to} / {d}"
            );
            assert_eq!(reasons_for(to, d), expected.to_vec());
        }
        for &d in D::ALL {
            for &to in &[S::New, S::Triaged, S::InProgress, S::Escalated] {
                assert!(reasons_for(to, d).is_empty(), "{to} is not closed");
            }
        }
    }

    /// (reason, determinations it fits, closed statuses it fits), written out independently.
    const EXPECTED_FIT: &[(R, &[D], &[S])] = &[
        (
            R::TruePositive,
            &[D::Malicious, D::Suspicious],
            &[S::Resolved],
        ),
        (R::BenignTruePositive, &[D::Benign], &[S::Resolved]),
        (R::ExpectedActivity, &[D::Benign], &[S::Resolved]),
        (R::TestOrSimulation, &[D::Benign], &[S::Resolved]),
        (
            R::FalsePositiveRuleTuningNeeded,
            &[D::Benign],
            &[S::FalsePositive],
        ),
        (R::FalsePositiveBadData, &[D::Benign], &[S::FalsePositive]),
        (
            R::Duplicate,
            &[D::Malicious, D::Suspicious, D::Benign],
            &[S::Resolved, S::FalsePositive],
        ),
        (
            R::InsufficientData,
            &[D::Malicious, D::Suspicious, D::Benign],
            &[S::Resolved, S::FalsePositive],
        ),
    ];

    #[test]
    fn every_reason_fits_exactly_the_expected_determinations_and_statuses() {
        assert_eq!(EXPECTED_FIT.len(), R::ALL.len());
        for &r in R::ALL {
            let &(_, dets, statuses) = EXPECTED_FIT
                .iter()
                .find(|(x, _, _)| *x == r)
                .expect("reason in table");
            for &d in D::ALL {
                for &to in &[S::Resolved, S::FalsePositive] {
                    let fits = dets.contains(&d) && statuses.contains(&to);
                    let result = check(&closing(to, d, r));
                    if fits {
                        assert_eq!(result, Ok(()), "{r} / {d} / {to} should fit");
                    } else {
                        assert_eq!(
                            result,
                            Err(TransitionError::ReasonDoesNotFit {
                                reason: r,
                                determination: d,
                                to
                            }),
                            "{r} / {d} / {to} should not fit"
                        );
                    }
                    assert_eq!(r.fits(d, to), fits);
                }
            }
        }
    }

    #[test]
    fn determination_or_reason_outside_closing_is_refused_with_its_field() {
        for &(from, to) in &[
            (S::New, S::Triaged),
            (S::Triaged, S::InProgress),
            (S::InProgress, S::Escalated),
            (S::Resolved, S::InProgress),
            (S::FalsePositive, S::InProgress),
        ] {
            let with_d = Transition {
                determination: Some(D::Benign),
                ..bare(from, to)
            };
            let err = check(&with_d).expect_err("determination not allowed");
            assert_eq!(
                err,
                TransitionError::OnlyWhenClosing {
                    field: "determination"
                }
            );
            assert_eq!(err.field(), "determination");

            let with_r = Transition {
                resolve_reason: Some(R::Duplicate),
                ..bare(from, to)
            };
            let err = check(&with_r).expect_err("reason not allowed");
            assert_eq!(
                err,
                TransitionError::OnlyWhenClosing {
                    field: "resolve_reason"
                }
            );
            assert_eq!(err.field(), "resolve_reason");
            assert_eq!(check(&bare(from, to)), Ok(()), "{from} -> {to} bare");
        }
    }

    #[test]
    fn reopen_is_allowed_with_nothing_given() {
        assert_eq!(check(&bare(S::Resolved, S::InProgress)), Ok(()));
        assert_eq!(check(&bare(S::FalsePositive, S::InProgress)), Ok(()));
    }

    #[test]
    fn error_fields() {
        let cases = [
            (
                TransitionError::NotAllowed {
                    from: S::Resolved,
                    to: S::New,
                    allowed: vec![S::InProgress],
                },
                "status",
            ),
            (TransitionError::DeterminationRequired, "determination"),
            (
                TransitionError::ReasonRequired { allowed: vec![] },
                "resolve_reason",
            ),
            (
                TransitionError::ReasonDoesNotFit {
                    reason: R::TruePositive,
                    determination: D::Benign,
                    to: S::Resolved,
                },
                "resolve_reason",
            ),
            (
                TransitionError::OnlyWhenClosing {
                    field: "determination",
                },
                "determination",
            ),
            (
                TransitionError::OnlyWhenClosing {
                    field: "resolve_reason",
                },
                "resolve_reason",
            ),
        ];
        for (err, field) in cases {
            assert_eq!(err.field(), field, "{err}");
        }
    }

    fn message(t: Transition) -> String {
        check(&t).expect_err("refused").to_string()
    }

    #[test]
    fn messages_name_what_is_allowed() {
        assert_eq!(
            message(bare(S::Resolved, S::Triaged)),
            "cannot go from resolved to triaged; allowed: in_progress"
        );
        assert_eq!(
            message(bare(S::Escalated, S::Triaged)),
            "cannot go from escalated to triaged; allowed: in_progress, resolved, false_positive"
        );
        assert_eq!(
            message(bare(S::Triaged, S::New)),
            "cannot go from triaged to new; allowed: in_progress, escalated, resolved, false_positive"
        );
        assert_eq!(
            message(closing(
                S::FalsePositive,
                D::Malicious,
                R::FalsePositiveRuleTuningNeeded
            )),
            "false_positive_rule_tuning_needed does not fit determination malicious; \
             allowed: duplicate, insufficient_data"
        );
        assert_eq!(
            message(closing(S::FalsePositive, D::Benign, R::TruePositive)),
            "true_positive does not fit determination benign; allowed: \
             false_positive_rule_tuning_needed, false_positive_bad_data, duplicate, insufficient_data"
        );
        assert_eq!(
            message(closing(S::Resolved, D::Benign, R::FalsePositiveBadData)),
            "false_positive_bad_data does not fit status resolved; allowed: \
             benign_true_positive, duplicate, expected_activity, test_or_simulation, insufficient_data"
        );
        let required = message(Transition {
            determination: Some(D::Malicious),
            ..bare(S::New, S::Resolved)
        });
        assert!(required.contains("resolve_reason"), "{required}");
        assert!(
            required.ends_with("allowed: true_positive, duplicate, insufficient_data"),
            "{required}"
        );
        assert!(message(bare(S::New, S::Resolved)).contains("determination"));
        let only = message(Transition {
            resolve_reason: Some(R::Duplicate),
            ..bare(S::New, S::Triaged)
        });
        assert!(only.starts_with("resolve_reason "), "{only}");
    }

    #[test]
    fn closed_statuses() {
        let closed: Vec<S> = S::ALL.iter().copied().filter(|s| s.is_closed()).collect();
        assert_eq!(closed, vec![S::Resolved, S::FalsePositive]);
    }

    fn assert_wire<T>(values: &[T], expected: &[&str])
    where
        T: Serialize + for<'de> Deserialize<'de> + FromStr + fmt::Display + PartialEq + fmt::Debug,
        <T as FromStr>::Err: fmt::Debug,
    {
        assert_eq!(values.len(), expected.len());
        for (v, name) in values.iter().zip(expected) {
            let json = serde_json::to_string(v).expect("serialize");
            assert_eq!(json, format!("\"{name}\""));
            let back: T = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(&back, v);
            assert_eq!(v.to_string(), *name);
            assert_eq!(&name.parse::<T>().expect("parse"), v);
        }
    }

    #[test]
    fn wire_names_round_trip() {
        assert_wire(
            S::ALL,
            &[
                "new",
                "triaged",
                "in_progress",
                "escalated",
                "resolved",
                "false_positive",
            ],
        );
        assert_wire(D::ALL, &["malicious", "suspicious", "benign"]);
        assert_wire(
            R::ALL,
            &[
                "true_positive",
                "benign_true_positive",
                "false_positive_rule_tuning_needed",
                "false_positive_bad_data",
                "duplicate",
                "expected_activity",
                "test_or_simulation",
                "insufficient_data",
            ],
        );
    }

    #[test]
    fn unknown_names_are_rejected() {
        for bad in ["", "New", "in-progress", "InProgress", "closed", "open "] {
            let err = bad.parse::<S>().expect_err("unknown status");
            assert_eq!(err.kind, "alert status");
            assert_eq!(err.value, bad);
            assert!(serde_json::from_str::<S>(&format!("\"{bad}\"")).is_err());
        }
        for bad in ["", "Malicious", "unknown", "bad"] {
            let err = bad.parse::<D>().expect_err("unknown determination");
            assert_eq!(err.kind, "determination");
            assert!(serde_json::from_str::<D>(&format!("\"{bad}\"")).is_err());
        }
        for bad in ["", "false_positive", "true-positive", "other"] {
            let err = bad.parse::<R>().expect_err("unknown reason");
            assert_eq!(err.kind, "resolve reason");
            assert!(serde_json::from_str::<R>(&format!("\"{bad}\"")).is_err());
        }
        let long = "x".repeat(500);
        let err = long.parse::<S>().expect_err("unknown status");
        assert_eq!(err.value.len(), 64);
    }

    #[test]
    fn labels() {
        assert_eq!(
            R::FalsePositiveRuleTuningNeeded.label(),
            "False positive: rule tuning needed"
        );
        assert_eq!(R::FalsePositiveBadData.label(), "False positive: bad data");
        assert_eq!(R::TruePositive.label(), "True positive");
        let mut labels: Vec<&str> = R::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), R::ALL.len(), "labels are distinct");
    }
}
