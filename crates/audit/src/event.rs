//! The fixed event taxonomy.
//!
//! Every event type has a stable string form `category.object.verb` that is
//! stored inside the record bytes. Parsing an unknown string is an error
//! (fail closed): a record naming an event type this build does not know is
//! reported as undecodable rather than silently mapped to something else.
//!
//! To add an event type, add one line to the `event_types!` invocation below
//! (in the right category). Never rename or remove a string once released:
//! stored records refer to it and their hashes cover it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The category of an event: the first segment of its string form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// A human (or API client) changed the state of a case: alerts,
    /// incidents, comments, playbook definitions.
    Decision,
    /// Something the platform did on its own or on behalf of a playbook:
    /// ingestion, playbook runs, outbound integration calls, notifications.
    Action,
    /// The approval workflow around sensitive playbook actions.
    Approval,
    /// Authentication and identity/credential management.
    Security,
    /// Tenant and platform configuration, bootstrap, audit-log maintenance.
    System,
}

impl Category {
    /// All categories.
    pub const ALL: &'static [Category] = &[
        Category::Decision,
        Category::Action,
        Category::Approval,
        Category::Security,
        Category::System,
    ];

    /// The string form (`"decision"`, `"action"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Decision => "decision",
            Category::Action => "action",
            Category::Approval => "approval",
            Category::Security => "security",
            Category::System => "system",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a known event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit event type")]
pub struct UnknownEventType;

macro_rules! event_types {
    (
        $(
            $cat:ident = $cat_str:literal {
                $( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, )+
            }
        )+
    ) => {
        /// An audit event type. Its string form is `category.object.verb`.
        ///
        /// `#[non_exhaustive]`: new variants are added over time; stored
        /// strings never change.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventType {
            $( $( $(#[doc = $doc])+ $variant, )+ )+
        }

        impl EventType {
            /// Every event type, in taxonomy order.
            pub const ALL: &'static [EventType] = &[ $( $( EventType::$variant, )+ )+ ];

            /// The stable string form, e.g. `"security.login.succeeded"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $( EventType::$variant => concat!($cat_str, ".", $name), )+ )+
                }
            }

            /// The category (the first segment of the string form).
            pub const fn category(self) -> Category {
                match self {
                    $( $( EventType::$variant => Category::$cat, )+ )+
                }
            }

            /// Parses the exact string form; anything else is an error.
            pub fn parse(s: &str) -> Result<Self, UnknownEventType> {
                match s {
                    $( $( concat!($cat_str, ".", $name) => Ok(EventType::$variant), )+ )+
                    _ => Err(UnknownEventType),
                }
            }
        }
    };
}

event_types! {
    Decision = "decision" {
        /// An alert's status, severity, assignee, tags or similar changed.
        AlertUpdated = "alert.updated",
        /// An alert was resolved (closed with a resolution).
        AlertResolved = "alert.resolved",
        /// An alert was deleted.
        AlertDeleted = "alert.deleted",
        /// An incident was opened.
        IncidentCreated = "incident.created",
        /// An incident's fields or linked alerts changed.
        IncidentUpdated = "incident.updated",
        /// An incident was closed.
        IncidentClosed = "incident.closed",
        /// A comment was added to an alert or incident.
        CommentAdded = "comment.added",
        /// An observable's tags, description or reputation (score, verdict) changed.
        ObservableUpdated = "observable.updated",
        /// A playbook definition was created.
        PlaybookCreated = "playbook.created",
        /// A playbook definition was changed.
        PlaybookUpdated = "playbook.updated",
        /// A playbook definition was deleted.
        PlaybookDeleted = "playbook.deleted",
        /// A playbook was enabled.
        PlaybookEnabled = "playbook.enabled",
        /// A playbook was disabled.
        PlaybookDisabled = "playbook.disabled",
    }
    Action = "action" {
        /// A new alert was ingested. Duplicates folded into an existing alert
        /// are not recorded individually (see docs/audit.md).
        AlertIngested = "alert.ingested",
        /// An observable (IOC) was created.
        ObservableCreated = "observable.created",
        /// A playbook run started.
        PlaybookRunStarted = "playbook.run_started",
        /// A playbook executed one action step.
        PlaybookActionExecuted = "playbook.action_executed",
        /// An outbound call to an external integration was made.
        IntegrationCalled = "integration.called",
        /// A notification was sent.
        NotificationSent = "notification.sent",
        /// A notification could not be delivered after its last attempt.
        NotificationFailed = "notification.failed",
        /// A rejected payload from the dead-letter list was ingested again.
        DeadLetterReplayed = "dead_letter.replayed",
        /// A rejected payload was deleted from the dead-letter list.
        DeadLetterDiscarded = "dead_letter.discarded",
    }
    Approval = "approval" {
        /// Approval for a sensitive action was requested.
        ApprovalRequested = "approval.requested",
        /// A request was approved.
        ApprovalApproved = "approval.approved",
        /// A request was rejected.
        ApprovalRejected = "approval.rejected",
        /// A request expired without a decision.
        ApprovalExpired = "approval.expired",
    }
    Security = "security" {
        /// A login succeeded.
        LoginSucceeded = "login.succeeded",
        /// A login failed (bad credentials, inactive account).
        LoginFailed = "login.failed",
        /// A login attempt was refused by rate limiting.
        LoginThrottled = "login.throttled",
        /// A user changed their own password.
        PasswordChanged = "password.changed",
        /// A password was reset by an administrator or a reset flow.
        PasswordReset = "password.reset",
        /// An analyst account was created.
        AnalystCreated = "analyst.created",
        /// An analyst's role, active flag or tenant memberships changed.
        AnalystUpdated = "analyst.updated",
        /// An API key was created.
        ApiKeyCreated = "api_key.created",
        /// An API key was revoked.
        ApiKeyRevoked = "api_key.revoked",
    }
    System = "system" {
        /// A tenant was created.
        TenantCreated = "tenant.created",
        /// A tenant's name or flags changed.
        TenantUpdated = "tenant.updated",
        /// Platform or tenant settings changed.
        SettingsChanged = "settings.changed",
        /// First-run bootstrap (initial administrator) completed.
        BootstrapCompleted = "bootstrap.completed",
        /// An audit checkpoint was signed for this tenant's chain.
        CheckpointSigned = "checkpoint.signed",
        /// The checkpoint signing key was rotated.
        KeyRotated = "key.rotated",
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::parse(s)
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        EventType::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn strings_are_well_formed_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for &e in EventType::ALL {
            let s = e.as_str();
            assert!(seen.insert(s), "duplicate {s}");
            let parts: Vec<&str> = s.split('.').collect();
            assert_eq!(parts.len(), 3, "{s} is not category.object.verb");
            for p in &parts {
                assert!(!p.is_empty() && p.bytes().all(|c| c.is_ascii_lowercase() || c == b'_'));
            }
            assert_eq!(parts[0], e.category().as_str());
            assert_eq!(EventType::parse(s), Ok(e));
            assert_eq!(s.parse::<EventType>(), Ok(e));
        }
        for c in Category::ALL {
            assert!(EventType::ALL.iter().any(|e| e.category() == *c));
        }
    }

    #[test]
    fn unknown_strings_fail_closed() {
        for s in [
            "",
            "login.succeeded",
            "security.login",
            "Security.login.succeeded",
            "security.login.succeeded ",
            "security.login.succeeded\0",
            "security.token.rejected",
            "action.alert.deduplicated",
        ] {
            assert_eq!(EventType::parse(s), Err(UnknownEventType), "{s:?}");
        }
        assert!(serde_json::from_str::<EventType>("\"system.nope.nope\"").is_err());
        assert_eq!(
            serde_json::from_str::<EventType>("\"approval.approval.expired\"").ok(),
            Some(EventType::ApprovalExpired)
        );
    }
}
