//! Incident management: incidents (per-tenant numbers, lifecycle, soft delete), the alerts
//! linked to them, their own timeline (`incident_events`), comments with mentions, tasks,
//! templates, and suggestions of alerts to group.
//!
//! Rules every method keeps:
//! - incidents are tenant-scoped: another tenant's incident (or a deleted one) is `NotFound`;
//! - alerts reached through an incident go through tag access (`push_alert_access`): a caller
//!   cannot link, see or count an alert it cannot see, and timeline rows about such an alert
//!   are left out;
//! - every change is one transaction that also writes an `incident_events` row (who, what,
//!   old → new, when) and an audit record; linking and unlinking also write an
//!   `alert_activities` row on the alert.
//!
//! The SQL is written once in `impl_incidents!` and instantiated per backend (see
//! `sqlite.rs`, `postgres.rs`).

use crate::ChangeCtx;
use crate::alerts::AlertSummary;
use bulwark_core::incident::{IncidentStatus, TaskStatus};
use bulwark_core::{AlertAccess, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who acts: the audit context, what the caller may see, and the platform tenant (whose
/// administrators see every tenant, for checking assignees and mentions).
#[derive(Debug, Clone, Copy)]
pub struct Acting<'a> {
    pub ctx: &'a ChangeCtx,
    pub access: &'a AlertAccess,
    pub platform_tenant: TenantId,
}

/// At most this many alerts per create or link request.
pub const MAX_ALERTS_PER_REQUEST: usize = 1000;
/// Aggregates of an incident (observables, techniques, assets) list at most this many values
/// each, most frequent first.
pub const MAX_AGGREGATE_VALUES: usize = 500;

/// An incident as lists show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// Per-tenant sequence number (`#12`), never reused.
    pub number: i64,
    pub title: String,
    pub description: Option<String>,
    pub severity: String,
    pub status: IncidentStatus,
    pub assignee_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub template_id: Option<Uuid>,
    /// The id (or name) of who created it.
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when closed, cleared when reopened.
    pub closed_at: Option<DateTime<Utc>>,
    /// Linked alerts the caller can see.
    pub alert_count: i64,
}

/// An observable carried by linked alerts, with how many of them carry it, and its reputation.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ObservableCount {
    pub id: Uuid,
    pub kind: String,
    pub value: String,
    pub alert_count: i64,
    /// malicious, suspicious, benign or unknown; none when not assessed.
    pub verdict: Option<String>,
    /// 0 (harmless) to 100; none when not assessed.
    pub reputation_score: Option<i64>,
    /// The intel services behind the reputation, most severe first.
    #[sqlx(json)]
    pub reputation_sources: Vec<crate::enrichment::ReputationSource>,
}

/// A value (technique, host, user, IP) with how many linked alerts show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub alert_count: i64,
}

/// What the linked alerts touched.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct AffectedAssets {
    pub hostnames: Vec<ValueCount>,
    pub usernames: Vec<ValueCount>,
    /// Source and destination IPs.
    pub ips: Vec<ValueCount>,
}

/// One incident in full: its fields, what its (visible) linked alerts add up to, and its tasks.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: Incident,
    pub observables: Vec<ObservableCount>,
    /// MITRE ATT&CK technique ids of the linked alerts.
    pub techniques: Vec<ValueCount>,
    pub assets: AffectedAssets,
    pub tasks: Vec<IncidentTask>,
}

/// A new incident. `None` fields take the template's value, then a default.
#[derive(Debug, Clone, Default)]
pub struct NewIncident {
    pub tenant_id: TenantId,
    /// Required unless a template gives a name to use.
    pub title: Option<String>,
    pub description: Option<String>,
    /// Default: the template's, else the highest of the linked alerts, else `medium`.
    pub severity: Option<String>,
    pub tags: Option<Vec<String>>,
    pub assignee_id: Option<Uuid>,
    pub template_id: Option<Uuid>,
    /// Linked at once; every one must exist in the tenant and be visible to the caller.
    pub alert_ids: Vec<Uuid>,
}

/// A partial update; `None` leaves a field alone, `Some(None)` clears a clearable one.
#[derive(Debug, Clone, Default)]
pub struct IncidentPatch {
    pub status: Option<IncidentStatus>,
    pub severity: Option<String>,
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub assignee_id: Option<Option<Uuid>>,
    pub tags: Option<Vec<String>>,
}

/// Filters of the incident list; every one given must match.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub tenant_id: Option<TenantId>,
    /// Any of these statuses.
    pub status: Vec<String>,
    /// Any of these severities.
    pub severity: Vec<String>,
    pub assignee_id: Option<Uuid>,
    pub tag: Option<String>,
    /// Case-insensitive text in the title or description, or the incident number.
    pub text: Option<String>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
    /// Keyset cursor: the id of the last incident of the previous page (newest first).
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// What happened to one alert of a link request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkOutcome {
    Linked,
    /// It was linked already (nothing changed).
    AlreadyLinked,
    /// No such alert in the incident's tenant, deleted, or not visible to the caller.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LinkResult {
    pub alert_id: Uuid,
    pub result: LinkOutcome,
}

/// Kinds of timeline items. The incident's own events keep the kind they were stored with;
/// `alert_arrived`, `comment` and `alert_activity` come from linked alerts and comments, the last
/// three from automation on the incident (its runs, each action attempt, approvals). (`comment_added` events are stored but
/// not listed: the comment itself is the timeline item.)
pub const TIMELINE_KINDS: &[&str] = &[
    "created",
    "updated",
    "status_changed",
    "deleted",
    "alert_linked",
    "alert_unlinked",
    "task_added",
    "task_updated",
    "task_deleted",
    "comment_edited",
    "alert_arrived",
    "comment",
    "alert_activity",
    "playbook_run",
    "playbook_step",
    "approval",
];

#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    /// Only these kinds (all when empty); see [`TIMELINE_KINDS`].
    pub kinds: Vec<String>,
    /// Keyset cursor: (time, id) of the last item of the previous page.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TimelineActor {
    /// `user`, `api_key` or `system`.
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// One item of an incident's timeline, oldest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineItem {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// One of [`TIMELINE_KINDS`].
    pub kind: String,
    pub actor: Option<TimelineActor>,
    /// The alert the item is about, if any.
    pub alert_id: Option<Uuid>,
    /// Depends on the kind: old/new values, the comment body, the alert's title...
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl TimelineItem {
    /// The cursor that continues after this item.
    pub fn cursor(&self) -> String {
        format_cursor(self.at, self.id)
    }
}

/// `<RFC 3339 time, full precision, Z>~<uuid>`: URL-safe and exact.
pub fn format_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!(
        "{}~{id}",
        at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    )
}

pub fn parse_cursor(raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (at, id) = raw.split_once('~')?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some((at, Uuid::parse_str(id).ok()?))
}

/// A comment on an incident.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentComment {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub tenant_id: TenantId,
    /// `user`, `api_key` or `system`.
    pub author_kind: String,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub body: String,
    /// Analysts mentioned with `@username` who exist and can see the tenant.
    pub mentions: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

/// The result of an edit: comments are edited by their author only.
#[derive(Debug, Clone)]
pub enum CommentEdit {
    Edited(IncidentComment),
    NotAuthor,
}

/// A task of an incident.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentTask {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub status: TaskStatus,
    pub due_at: Option<DateTime<Utc>>,
    /// Order within the incident (1, 2, ...).
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the task became `done`.
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub status: TaskStatus,
    pub due_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub assignee_id: Option<Option<Uuid>>,
    pub status: Option<TaskStatus>,
    pub due_at: Option<Option<DateTime<Utc>>>,
}

/// A task an incident template creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateTask {
    pub title: String,
    pub description: Option<String>,
    /// The task is due this many hours after the incident is created.
    pub due_in_hours: Option<u32>,
}

/// Defaults and tasks for a kind of incident (per tenant; names are unique per tenant).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentTemplate {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: Option<String>,
    pub severity: String,
    pub tags: Vec<String>,
    pub tasks: Vec<TemplateTask>,
    /// Playbooks (names or ids) to start for incidents of this template; stored for the
    /// automation feature, not run yet.
    pub playbooks: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub tenant_id: TenantId,
    pub name: String,
    pub description: Option<String>,
    pub severity: String,
    pub tags: Vec<String>,
    pub tasks: Vec<TemplateTask>,
    pub playbooks: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct TemplatePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub severity: Option<String>,
    pub tags: Option<Vec<String>>,
    pub tasks: Option<Vec<TemplateTask>>,
    pub playbooks: Option<Vec<String>>,
}

/// Which alerts suggestions look at.
#[derive(Debug, Clone)]
pub struct SuggestionFilter {
    pub tenant_id: Option<TenantId>,
    /// Alerts first seen within this long before now.
    pub window: chrono::Duration,
    /// At most this many groups...
    pub max_groups: usize,
    /// ...of at most this many alerts each (the count is still the whole group's).
    pub max_alerts: usize,
}

/// At most this many candidate alerts (the newest) are grouped per request.
pub const MAX_SUGGESTION_CANDIDATES: i64 = 5000;

/// What the alerts of a suggestion share.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
pub struct SharedValue {
    /// An observable kind (`ipv4`, `domain`, `sha256`...) or `hostname`.
    pub kind: String,
    pub value: String,
}

/// A group of open, unlinked alerts that share something: a candidate incident.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub tenant_id: TenantId,
    /// What every alert of the group shares (several values when they group the same alerts).
    pub shared: Vec<SharedValue>,
    /// Alerts in the group (may exceed `alerts.len()`).
    pub alert_count: i64,
    /// The newest alerts of the group.
    pub alerts: Vec<AlertSummary>,
}

/// Groups candidate alerts by shared value: pure, so the rule is testable alone. `pairs` is
/// (tenant, key, alert id); `order` ranks alerts (higher is newer). Returns groups of at least
/// two alerts, largest first (then newest), skipping a group whose alerts all belong to a group
/// already chosen, merging keys that group exactly the same alerts.
pub(crate) fn group_suggestions(
    pairs: Vec<(TenantId, SharedValue, Uuid)>,
    max_groups: usize,
) -> Vec<(TenantId, Vec<SharedValue>, Vec<Uuid>)> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut by_key: BTreeMap<(TenantId, SharedValue), BTreeSet<Uuid>> = BTreeMap::new();
    for (t, k, a) in pairs {
        by_key.entry((t, k)).or_default().insert(a);
    }
    // Same alert set → one group listing every shared key.
    let mut by_set: BTreeMap<(TenantId, Vec<Uuid>), Vec<SharedValue>> = BTreeMap::new();
    for ((t, k), set) in by_key {
        if set.len() < 2 {
            continue;
        }
        // Newest first (UUIDv7 ids are time-ordered).
        let ids: Vec<Uuid> = set.into_iter().rev().collect();
        by_set.entry((t, ids)).or_default().push(k);
    }
    let mut groups: Vec<(TenantId, Vec<SharedValue>, Vec<Uuid>)> = by_set
        .into_iter()
        .map(|((t, ids), mut keys)| {
            keys.sort();
            (t, keys, ids)
        })
        .collect();
    groups.sort_by(|a, b| {
        b.2.len()
            .cmp(&a.2.len())
            .then_with(|| b.2.first().cmp(&a.2.first()))
    });
    let mut chosen: Vec<(TenantId, Vec<SharedValue>, Vec<Uuid>)> = Vec::new();
    let mut chosen_sets: Vec<BTreeSet<Uuid>> = Vec::new();
    for g in groups {
        if chosen.len() >= max_groups {
            break;
        }
        let set: BTreeSet<Uuid> = g.2.iter().copied().collect();
        if chosen_sets.iter().any(|c| set.is_subset(c)) {
            continue;
        }
        chosen_sets.push(set);
        chosen.push(g);
    }
    chosen
}

/// The smallest UUIDv7 of the millisecond `t` falls in: every v7 id made at or after `t`
/// sorts at or after it (byte order, as both backends compare UUIDs).
pub(crate) fn uuid_v7_floor(t: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(t.timestamp_millis())
        .unwrap_or(0)
        .min((1 << 48) - 1);
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70;
    b[8] = 0x80;
    Uuid::from_bytes(b)
}

/// Cuts a long text for an event's old/new values.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 1000;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// LIKE pattern for case-insensitive "contains", wildcards in the text matching themselves.
pub(crate) fn like_pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Advisory-lock key for numbering a tenant's incidents (PostgreSQL).
pub(crate) fn number_lock_key(tenant: TenantId) -> i64 {
    let mut k = *b"bwk_incn";
    for (i, b) in tenant.0.as_bytes().iter().enumerate() {
        k[i % 8] ^= *b;
    }
    i64::from_be_bytes(k)
}

#[derive(sqlx::FromRow)]
pub(crate) struct IncidentRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub number: i64,
    pub title: String,
    pub description: Option<String>,
    pub severity: String,
    pub status: String,
    pub assignee_id: Option<Uuid>,
    pub tags: sqlx::types::Json<Vec<String>>,
    pub template_id: Option<Uuid>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub alert_count: i64,
}

pub(crate) const INCIDENT_COLUMNS: &str = "incidents.id, incidents.tenant_id, incidents.number, incidents.title, \
     incidents.description, incidents.severity, incidents.status, incidents.assignee_id, incidents.tags, \
     incidents.template_id, incidents.created_by, incidents.created_at, incidents.updated_at, incidents.closed_at";

impl IncidentRow {
    pub(crate) fn status(&self) -> crate::StoreResult<IncidentStatus> {
        self.status
            .parse()
            .map_err(|_| crate::StoreError::Corrupt(format!("incident status `{}`", self.status)))
    }

    pub(crate) fn into_incident(self) -> crate::StoreResult<Incident> {
        let status = self.status()?;
        Ok(Incident {
            id: self.id,
            tenant_id: TenantId(self.tenant_id),
            number: self.number,
            title: self.title,
            description: self.description,
            severity: self.severity,
            status,
            assignee_id: self.assignee_id,
            tags: self.tags.0,
            template_id: self.template_id,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            closed_at: self.closed_at,
            alert_count: self.alert_count,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub status: String,
    pub due_at: Option<DateTime<Utc>>,
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

pub(crate) const TASK_COLUMNS: &str = "id, incident_id, title, description, assignee_id, status, due_at, position, \
     created_at, updated_at, completed_at";

impl TaskRow {
    pub(crate) fn into_task(self) -> crate::StoreResult<IncidentTask> {
        let status = self
            .status
            .parse()
            .map_err(|_| crate::StoreError::Corrupt(format!("task status `{}`", self.status)))?;
        Ok(IncidentTask {
            id: self.id,
            incident_id: self.incident_id,
            title: self.title,
            description: self.description,
            assignee_id: self.assignee_id,
            status,
            due_at: self.due_at,
            position: self.position,
            created_at: self.created_at,
            updated_at: self.updated_at,
            completed_at: self.completed_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CommentRow {
    pub id: Uuid,
    pub incident_id: Option<Uuid>,
    pub tenant_id: Uuid,
    pub author_kind: String,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub body: String,
    pub mentions: sqlx::types::Json<Vec<Uuid>>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

pub(crate) const COMMENT_COLUMNS: &str = "id, incident_id, tenant_id, author_kind, author_id, author_name, body, \
     mentions, created_at, edited_at";

impl CommentRow {
    pub(crate) fn into_comment(self) -> IncidentComment {
        IncidentComment {
            id: self.id,
            incident_id: self.incident_id.unwrap_or_default(),
            tenant_id: TenantId(self.tenant_id),
            author_kind: self.author_kind,
            author_id: self.author_id,
            author_name: self.author_name,
            body: self.body,
            mentions: self.mentions.0,
            created_at: self.created_at,
            edited_at: self.edited_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TemplateRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub severity: String,
    pub tags: sqlx::types::Json<Vec<String>>,
    pub tasks: sqlx::types::Json<Vec<TemplateTask>>,
    pub playbooks: sqlx::types::Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const TEMPLATE_COLUMNS: &str =
    "id, tenant_id, name, description, severity, tags, tasks, playbooks, created_at, updated_at";

impl TemplateRow {
    pub(crate) fn into_template(self) -> IncidentTemplate {
        IncidentTemplate {
            id: self.id,
            tenant_id: TenantId(self.tenant_id),
            name: self.name,
            description: self.description,
            severity: self.severity,
            tags: self.tags.0,
            tasks: self.tasks.0,
            playbooks: self.playbooks.0,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A timeline row as the union query returns it (columns `a`, `b`, `c` depend on the kind).
#[derive(sqlx::FromRow)]
pub(crate) struct TimelineRow {
    pub at: DateTime<Utc>,
    pub id: Uuid,
    pub kind: String,
    pub actor_kind: Option<String>,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub alert_id: Option<Uuid>,
    pub detail: Option<String>,
    pub a: Option<String>,
    pub b: Option<String>,
    pub c: Option<String>,
    pub at2: Option<DateTime<Utc>>,
}

impl TimelineRow {
    pub(crate) fn into_item(self) -> TimelineItem {
        use serde_json::{Value, json};
        let parse = |s: &Option<String>| -> Value {
            s.as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null)
        };
        let actor = self.actor_kind.clone().map(|kind| TimelineActor {
            kind,
            id: self.actor_id.clone(),
            name: self.actor_name.clone(),
        });
        let detail = match self.kind.as_str() {
            "alert_arrived" => json!({"title": self.a, "severity": self.b, "source": self.c}),
            "comment" => json!({
                "comment_id": self.id,
                "body": self.a,
                "mentions": parse(&self.detail),
                "edited_at": self.at2,
            }),
            "alert_activity" => {
                json!({"activity": self.a, "old_value": self.b, "new_value": self.c})
            }
            "playbook_run" => json!({"run_id": self.id, "trigger": self.a, "status": self.b}),
            "playbook_step" => json!({"step": self.a, "status": self.b, "error": self.c}),
            "approval" => json!({"approval_id": self.id, "message": self.a, "status": self.b}),
            _ => {
                let d = parse(&self.detail);
                if d.is_null() { json!({}) } else { d }
            }
        };
        TimelineItem {
            id: self.id,
            at: self.at,
            kind: self.kind,
            actor,
            alert_id: self.alert_id,
            detail,
        }
    }
}

macro_rules! impl_incidents {
    ($store:ident, $db:ty, $for_update:literal, $number_lock:literal, $techniques:literal, $incident_tag_values:literal) => {
        mod incidents_impl {
            use super::$store;
            use $crate::alerts::{AlertSummary, SUMMARY_COLUMNS};
            use $crate::incidents::*;
            use $crate::scope_sql::push_scope;
            use $crate::tag_access::{push_alert_access, Visibility};
            use $crate::{ChangeCtx, IncidentStore, IncidentTemplateStore, StoreError, StoreResult};
            use bulwark_audit::EventType;
            use bulwark_core::incident::{self as lifecycle, IncidentStatus, TaskStatus};
            use bulwark_core::{AlertAccess, Scope, TenantId};
            use chrono::{DateTime, Utc};
            use serde_json::{json, Value};
            use sqlx::types::Json;
            use sqlx::{QueryBuilder, Transaction};
            use uuid::Uuid;

            type Tx = Transaction<'static, $db>;

            fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
                StoreError::Invalid { field, message: message.into() }
            }

            /// Pushes `alerts.id IN (...)`.
            fn push_ids(qb: &mut QueryBuilder<$db>, column: &str, ids: &[Uuid]) {
                qb.push(format_args!(" AND {column} IN ("));
                let mut sep = qb.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                qb.push(")");
            }

            /// Pushes the visible-alert conditions: not deleted, in scope, tag rules.
            fn push_visible(qb: &mut QueryBuilder<$db>, access: &AlertAccess, vis: &Visibility) {
                qb.push(" AND alerts.deleted_at IS NULL");
                push_alert_access(qb, access, vis, $store::ALERT_TAG_VALUES);
            }

            /// The visible linked alerts of an incident, as a FROM clause + WHERE start.
            fn push_linked(qb: &mut QueryBuilder<$db>, incident: Uuid, access: &AlertAccess, vis: &Visibility) {
                qb.push(" FROM incident_alerts ia CROSS JOIN alerts WHERE alerts.id = ia.alert_id AND ia.incident_id = ")
                    .push_bind(incident);
                push_visible(qb, access, vis);
            }

            fn push_alert_count(qb: &mut QueryBuilder<$db>, access: &AlertAccess, vis: &Visibility) {
                qb.push(
                    ", (SELECT COUNT(*) FROM incident_alerts ia CROSS JOIN alerts \
                     WHERE alerts.id = ia.alert_id AND ia.incident_id = incidents.id",
                );
                push_visible(qb, access, vis);
                qb.push(") AS alert_count");
            }

            struct Event {
                kind: &'static str,
                alert_id: Option<Uuid>,
                detail: Value,
            }

            impl Event {
                fn new(kind: &'static str, detail: Value) -> Self {
                    Self { kind, alert_id: None, detail }
                }
                fn about(kind: &'static str, alert_id: Uuid, detail: Value) -> Self {
                    Self { kind, alert_id: Some(alert_id), detail }
                }
            }

            impl $store {
                /// Reads an incident inside a write transaction (locked on PostgreSQL, so
                /// concurrent changes to one incident are serialized).
                async fn locked_incident(tx: &mut Tx, scope: &Scope, id: Uuid) -> StoreResult<IncidentRow> {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {INCIDENT_COLUMNS}, CAST(0 AS BIGINT) AS alert_count FROM incidents \
                         WHERE incidents.deleted_at IS NULL AND incidents.id = "
                    ));
                    qb.push_bind(id);
                    push_scope(&mut qb, "incidents.tenant_id", scope);
                    qb.push($for_update);
                    let row: Option<IncidentRow> = qb.build_query_as().fetch_optional(&mut **tx).await?;
                    row.ok_or(StoreError::NotFound)
                }

                /// Checks an incident exists in the scope (for reads of its parts).
                async fn visible_incident(&self, scope: &Scope, id: Uuid) -> StoreResult<TenantId> {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT incidents.tenant_id FROM incidents WHERE incidents.deleted_at IS NULL AND incidents.id = ",
                    );
                    qb.push_bind(id);
                    push_scope(&mut qb, "incidents.tenant_id", scope);
                    let row: Option<(Uuid,)> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    row.map(|r| TenantId(r.0)).ok_or(StoreError::NotFound)
                }

                async fn write_events(tx: &mut Tx, ctx: &ChangeCtx, tenant: TenantId, incident: Uuid, events: Vec<Event>) -> StoreResult<()> {
                    if events.is_empty() {
                        return Ok(());
                    }
                    let now = bulwark_core::time::now();
                    for chunk in events.chunks(200) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO incident_events (id, tenant_id, incident_id, kind, detail, actor_kind, actor_id, \
                             actor_name, created_at, alert_id) ",
                        );
                        qb.push_values(chunk, |mut b, e| {
                            b.push_bind(Uuid::now_v7())
                                .push_bind(tenant.0)
                                .push_bind(incident)
                                .push_bind(e.kind)
                                .push_bind(Json(e.detail.clone()))
                                .push_bind(ctx.actor_kind)
                                .push_bind(ctx.actor_id.clone())
                                .push_bind(ctx.actor_name.clone())
                                .push_bind(now)
                                .push_bind(e.alert_id);
                        });
                        qb.build().execute(&mut **tx).await?;
                    }
                    Ok(())
                }

                /// `alert_activities` rows: (alert, kind, old value, new value).
                async fn write_activities(
                    tx: &mut Tx,
                    ctx: &ChangeCtx,
                    tenant: TenantId,
                    rows: &[(Uuid, &'static str, Option<String>, Option<String>)],
                ) -> StoreResult<()> {
                    let rows: Vec<_> = rows
                        .iter()
                        .map(|(alert, kind, old, new)| (tenant.0, *alert, *kind, old.clone(), new.clone()))
                        .collect();
                    Self::insert_activities(tx, ctx, &rows, bulwark_core::time::now()).await
                }

                async fn audit(
                    tx: &mut Tx,
                    ctx: &ChangeCtx,
                    tenant: TenantId,
                    event: EventType,
                    (target_kind, target): (&str, Uuid),
                    before: Option<Value>,
                    after: Option<Value>,
                ) -> StoreResult<()> {
                    let rec = $crate::audit::record(ctx, event, target_kind, Some(target.to_string()), before, after)?;
                    Self::append_audit(tx, tenant, rec).await
                }

                async fn touch(tx: &mut Tx, incident: Uuid) -> StoreResult<()> {
                    sqlx::query("UPDATE incidents SET updated_at = $1 WHERE id = $2")
                        .bind(bulwark_core::time::now())
                        .bind(incident)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                }

                async fn check_tenant(tx: &mut Tx, tenant: TenantId) -> StoreResult<()> {
                    let row: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM tenants WHERE id = $1")
                        .bind(tenant.0)
                        .fetch_optional(&mut **tx)
                        .await?;
                    row.map(|_| ()).ok_or_else(|| invalid("tenant_id", "unknown tenant"))
                }

                /// Whether an active analyst may be assigned work in `tenant` (home tenant,
                /// a grant, or a platform administrator).
                async fn check_assignee(tx: &mut Tx, tenant: TenantId, platform: TenantId, field: &'static str, id: Uuid) -> StoreResult<()> {
                    let row: Option<(Uuid,)> = sqlx::query_as(
                        "SELECT a.id FROM analysts a WHERE a.id = $1 AND a.is_active = $2 AND (a.tenant_id = $3 \
                         OR (a.role = 'admin' AND a.tenant_id = $4) \
                         OR EXISTS (SELECT 1 FROM analyst_tenants g WHERE g.analyst_id = a.id AND g.tenant_id = $3))",
                    )
                    .bind(id)
                    .bind(true)
                    .bind(tenant.0)
                    .bind(platform.0)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if row.is_none() {
                        return Err(invalid(field, "no active analyst with this id can see the incident's tenant"));
                    }
                    Ok(())
                }

                /// Ids of the mentioned usernames that exist, are active and can see `tenant`.
                async fn resolve_mentions(tx: &mut Tx, tenant: TenantId, platform: TenantId, usernames: &[String]) -> StoreResult<Vec<Uuid>> {
                    if usernames.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut qb = QueryBuilder::<$db>::new("SELECT a.id, a.username FROM analysts a WHERE a.is_active = ");
                    qb.push_bind(true);
                    qb.push(" AND a.username IN (");
                    let mut sep = qb.separated(", ");
                    for u in usernames.iter().take(100) {
                        sep.push_bind(u.clone());
                    }
                    qb.push(") AND (a.tenant_id = ").push_bind(tenant.0);
                    qb.push(" OR (a.role = 'admin' AND a.tenant_id = ").push_bind(platform.0);
                    qb.push(") OR EXISTS (SELECT 1 FROM analyst_tenants g WHERE g.analyst_id = a.id AND g.tenant_id = ")
                        .push_bind(tenant.0);
                    qb.push("))");
                    let rows: Vec<(Uuid, String)> = qb.build_query_as().fetch_all(&mut **tx).await?;
                    // In order of first mention.
                    Ok(usernames
                        .iter()
                        .filter_map(|u| rows.iter().find(|(_, n)| n == u).map(|(id, _)| *id))
                        .collect())
                }

                /// The alerts among `ids` the caller may link to an incident of `tenant`.
                async fn linkable(
                    tx: &mut Tx,
                    access: &AlertAccess,
                    vis: &Visibility,
                    tenant: TenantId,
                    ids: &[Uuid],
                ) -> StoreResult<Vec<(Uuid, String)>> {
                    let mut out = Vec::with_capacity(ids.len());
                    for chunk in ids.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new("SELECT alerts.id, alerts.severity FROM alerts WHERE alerts.tenant_id = ");
                        qb.push_bind(tenant.0);
                        push_ids(&mut qb, "alerts.id", chunk);
                        push_visible(&mut qb, access, vis);
                        let rows: Vec<(Uuid, String)> = qb.build_query_as().fetch_all(&mut **tx).await?;
                        out.extend(rows);
                    }
                    Ok(out)
                }

                /// Links alerts (already checked) to an incident; returns the newly linked ones.
                pub(crate) async fn insert_links(tx: &mut Tx, ctx: &ChangeCtx, tenant: TenantId, incident: Uuid, ids: &[Uuid]) -> StoreResult<Vec<Uuid>> {
                    let now = bulwark_core::time::now();
                    let by = ctx.actor_id.clone().or_else(|| ctx.actor_name.clone());
                    let mut linked = Vec::with_capacity(ids.len());
                    for chunk in ids.chunks(200) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO incident_alerts (incident_id, alert_id, tenant_id, linked_at, linked_by) ",
                        );
                        qb.push_values(chunk, |mut b, a| {
                            b.push_bind(incident).push_bind(*a).push_bind(tenant.0).push_bind(now).push_bind(by.clone());
                        });
                        qb.push(" ON CONFLICT (incident_id, alert_id) DO NOTHING RETURNING alert_id");
                        let rows: Vec<(Uuid,)> = qb.build_query_as().fetch_all(&mut **tx).await?;
                        linked.extend(rows.into_iter().map(|r| r.0));
                    }
                    let events = linked.iter().map(|a| Event::about("alert_linked", *a, json!({}))).collect();
                    Self::write_events(tx, ctx, tenant, incident, events).await?;
                    let acts: Vec<_> = linked
                        .iter()
                        .map(|a| (*a, "incident_linked", None, Some(incident.to_string())))
                        .collect();
                    Self::write_activities(tx, ctx, tenant, &acts).await?;
                    Ok(linked)
                }

                async fn template_row(tx: &mut Tx, scope: &Scope, id: Uuid) -> StoreResult<Option<TemplateRow>> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {TEMPLATE_COLUMNS} FROM incident_templates WHERE id = "));
                    qb.push_bind(id);
                    push_scope(&mut qb, "tenant_id", scope);
                    Ok(qb.build_query_as().fetch_optional(&mut **tx).await?)
                }

                async fn insert_task(tx: &mut Tx, tenant: TenantId, incident: Uuid, t: &NewTask) -> StoreResult<IncidentTask> {
                    let now = bulwark_core::time::now();
                    let (pos,): (i64,) = sqlx::query_as(
                        "SELECT CAST(COALESCE(MAX(position), 0) + 1 AS BIGINT) FROM incident_tasks WHERE incident_id = $1",
                    )
                    .bind(incident)
                    .fetch_one(&mut **tx)
                    .await?;
                    let completed = (t.status == TaskStatus::Done).then_some(now);
                    let row: TaskRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO incident_tasks (id, tenant_id, incident_id, title, description, assignee_id, status, \
                         due_at, position, created_at, updated_at, completed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING {TASK_COLUMNS}"
                    )))
                    .bind(Uuid::now_v7())
                    .bind(tenant.0)
                    .bind(incident)
                    .bind(&t.title)
                    .bind(t.description.clone())
                    .bind(t.assignee_id)
                    .bind(t.status.as_str())
                    .bind(t.due_at)
                    .bind(pos)
                    .bind(now)
                    .bind(completed)
                    .fetch_one(&mut **tx)
                    .await?;
                    row.into_task()
                }

                async fn create_once(&self, who: &Acting<'_>, new: &NewIncident, vis: &Visibility) -> StoreResult<Uuid> {
                    let ctx = who.ctx;
                    let tenant = new.tenant_id;
                    let mut tx = self.begin_write().await?;
                    Self::check_tenant(&mut tx, tenant).await?;
                    let template = match new.template_id {
                        Some(t) => {
                            let row = Self::template_row(&mut tx, &who.access.scope, t)
                                .await?
                                .filter(|r| r.tenant_id == tenant.0)
                                .ok_or_else(|| invalid("template_id", "no such template in the incident's tenant"))?;
                            Some(row.into_template())
                        }
                        None => None,
                    };
                    let mut alert_ids = new.alert_ids.clone();
                    alert_ids.sort();
                    alert_ids.dedup();
                    let found = Self::linkable(&mut tx, who.access, vis, tenant, &alert_ids).await?;
                    if let Some(missing) = alert_ids.iter().find(|a| !found.iter().any(|(f, _)| f == *a)) {
                        return Err(invalid("alert_ids", format!("alert {missing} does not exist in the incident's tenant or is not visible")));
                    }
                    if let Some(a) = new.assignee_id {
                        Self::check_assignee(&mut tx, tenant, who.platform_tenant, "assignee_id", a).await?;
                    }
                    let title = new
                        .title
                        .clone()
                        .or_else(|| template.as_ref().map(|t| t.name.clone()))
                        .ok_or_else(|| invalid("title", "required (or give a template_id)"))?;
                    let severity = new
                        .severity
                        .clone()
                        .or_else(|| template.as_ref().map(|t| t.severity.clone()))
                        .or_else(|| {
                            found
                                .iter()
                                .filter_map(|(_, s)| lifecycle::severity_rank(s).map(|r| (r, s.clone())))
                                .min()
                                .map(|(_, s)| s)
                        })
                        .unwrap_or_else(|| "medium".to_string());
                    let description = new.description.clone().or_else(|| template.as_ref().and_then(|t| t.description.clone()));
                    let tags = new.tags.clone().or_else(|| template.as_ref().map(|t| t.tags.clone())).unwrap_or_default();

                    if !$number_lock.is_empty() {
                        sqlx::query($number_lock).bind(number_lock_key(tenant)).execute(&mut *tx).await?;
                    }
                    let (number,): (i64,) = sqlx::query_as(
                        "SELECT CAST(COALESCE(MAX(number), 0) + 1 AS BIGINT) FROM incidents WHERE tenant_id = $1",
                    )
                    .bind(tenant.0)
                    .fetch_one(&mut *tx)
                    .await?;
                    let id = Uuid::now_v7();
                    let now = bulwark_core::time::now();
                    let by = ctx.actor_id.clone().or_else(|| ctx.actor_name.clone());
                    sqlx::query(
                        "INSERT INTO incidents (id, tenant_id, number, title, description, severity, status, assignee_id, \
                         tags, template_id, created_by, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
                    )
                    .bind(id)
                    .bind(tenant.0)
                    .bind(number)
                    .bind(&title)
                    .bind(description.clone())
                    .bind(&severity)
                    .bind(IncidentStatus::Open.as_str())
                    .bind(new.assignee_id)
                    .bind(Json(&tags))
                    .bind(template.as_ref().map(|t| t.id))
                    .bind(by)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| $crate::conflict_or(e, "number"))?;
                    Self::write_events(
                        &mut tx,
                        ctx,
                        tenant,
                        id,
                        vec![Event::new(
                            "created",
                            json!({"number": number, "title": title, "severity": severity, "status": "open",
                                   "template_id": template.as_ref().map(|t| t.id)}),
                        )],
                    )
                    .await?;
                    let mut task_count = 0;
                    if let Some(t) = &template {
                        for task in &t.tasks {
                            let nt = NewTask {
                                title: task.title.clone(),
                                description: task.description.clone(),
                                assignee_id: None,
                                status: TaskStatus::Open,
                                due_at: task.due_in_hours.map(|h| now + chrono::Duration::hours(i64::from(h))),
                            };
                            Self::insert_task(&mut tx, tenant, id, &nt).await?;
                            task_count += 1;
                        }
                    }
                    Self::insert_links(&mut tx, ctx, tenant, id, &alert_ids).await?;
                    Self::audit(
                        &mut tx,
                        ctx,
                        tenant,
                        EventType::IncidentCreated,
                        ("incident", id),
                        None,
                        Some(json!({"number": number, "title": title, "severity": severity, "status": "open",
                                    "template_id": template.as_ref().map(|t| t.id.to_string()),
                                    "tasks": task_count, "alert_ids": alert_ids.iter().map(|a| a.to_string()).collect::<Vec<_>>()})),
                    )
                    .await?;
                    let notified = Self::queue_notifications(&mut tx, &[$crate::notifications::NotifyEvent {
                        tenant_id: tenant,
                        event: "incident.created",
                        severity: Some(severity.clone()),
                        subject_id: Some(id.to_string()),
                        context: json!({"incident": {"id": id, "number": number, "title": title, "severity": severity,
                            "status": "open", "description": description, "tags": tags, "assignee_id": new.assignee_id,
                            "alert_ids": alert_ids, "created_at": now, "created_by": ctx.actor_name}}),
                    }]).await?;
                    tx.commit().await?;
                    if notified {
                        self.jobs_ready.notify_one();
                    }
                    Ok(id)
                }

                async fn detail(&self, access: &AlertAccess, vis: &Visibility, row: IncidentRow) -> StoreResult<IncidentDetail> {
                    let id = row.id;
                    let limit = MAX_AGGREGATE_VALUES as i64;
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT o.id, o.kind, o.value, COUNT(*) AS alert_count, o.verdict, o.reputation_score, \
                         o.reputation_sources FROM incident_alerts ia \
                         CROSS JOIN alerts CROSS JOIN alert_observables l CROSS JOIN observables o \
                         WHERE alerts.id = ia.alert_id AND l.alert_id = alerts.id AND o.id = l.observable_id \
                         AND ia.incident_id = ",
                    );
                    qb.push_bind(id);
                    push_visible(&mut qb, access, vis);
                    qb.push(
                        " GROUP BY o.id, o.kind, o.value, o.verdict, o.reputation_score, o.reputation_sources \
                         ORDER BY COUNT(*) DESC, o.kind, o.value LIMIT ",
                    )
                    .push_bind(limit);
                    let observables: Vec<ObservableCount> = qb.build_query_as().fetch_all(&self.reader).await?;

                    let mut qb = QueryBuilder::<$db>::new(concat!(
                        "SELECT m.value AS value, COUNT(*) AS alert_count FROM incident_alerts ia \
                         CROSS JOIN alerts CROSS JOIN ",
                        $techniques,
                        " WHERE alerts.id = ia.alert_id AND ia.incident_id = "
                    ));
                    qb.push_bind(id);
                    push_visible(&mut qb, access, vis);
                    qb.push(" GROUP BY m.value ORDER BY COUNT(*) DESC, m.value LIMIT ").push_bind(limit);
                    let techniques: Vec<ValueCount> = qb.build_query_as().fetch_all(&self.reader).await?;

                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT alerts.hostname, alerts.username, alerts.source_ip, alerts.dest_ip",
                    );
                    push_linked(&mut qb, id, access, vis);
                    let rows: Vec<(Option<String>, Option<String>, Option<String>, Option<String>)> =
                        qb.build_query_as().fetch_all(&self.reader).await?;
                    let alert_count = rows.len() as i64;
                    let mut hosts = std::collections::BTreeMap::<String, i64>::new();
                    let mut users = std::collections::BTreeMap::<String, i64>::new();
                    let mut ips = std::collections::BTreeMap::<String, i64>::new();
                    for (h, u, s, d) in rows {
                        if let Some(h) = h { *hosts.entry(h).or_default() += 1; }
                        if let Some(u) = u { *users.entry(u).or_default() += 1; }
                        let mut seen = Vec::with_capacity(2);
                        for ip in [s, d].into_iter().flatten() {
                            if !seen.contains(&ip) {
                                *ips.entry(ip.clone()).or_default() += 1;
                                seen.push(ip);
                            }
                        }
                    }
                    let top = |m: std::collections::BTreeMap<String, i64>| -> Vec<ValueCount> {
                        let mut v: Vec<ValueCount> = m.into_iter().map(|(value, alert_count)| ValueCount { value, alert_count }).collect();
                        v.sort_by(|a, b| b.alert_count.cmp(&a.alert_count).then_with(|| a.value.cmp(&b.value)));
                        v.truncate(MAX_AGGREGATE_VALUES);
                        v
                    };
                    let assets = AffectedAssets { hostnames: top(hosts), usernames: top(users), ips: top(ips) };
                    let tasks = self.tasks_of(id).await?;
                    let mut incident = row.into_incident()?;
                    incident.alert_count = alert_count;
                    Ok(IncidentDetail { incident, observables, techniques, assets, tasks })
                }

                async fn tasks_of(&self, incident: Uuid) -> StoreResult<Vec<IncidentTask>> {
                    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {TASK_COLUMNS} FROM incident_tasks WHERE incident_id = $1 ORDER BY position, id"
                    )))
                    .bind(incident)
                    .fetch_all(&self.reader)
                    .await?;
                    rows.into_iter().map(TaskRow::into_task).collect()
                }

                async fn incident_row(&self, access: &AlertAccess, vis: &Visibility, id: Uuid) -> StoreResult<IncidentRow> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {INCIDENT_COLUMNS}"));
                    push_alert_count(&mut qb, access, vis);
                    qb.push(" FROM incidents WHERE incidents.deleted_at IS NULL AND incidents.id = ").push_bind(id);
                    push_scope(&mut qb, "incidents.tenant_id", &access.scope);
                    let row: Option<IncidentRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    row.ok_or(StoreError::NotFound)
                }

                async fn comment_row(tx: &mut Tx, incident: Uuid, comment: Uuid) -> StoreResult<CommentRow> {
                    let row: Option<CommentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = $1 AND incident_id = $2"
                    )))
                    .bind(comment)
                    .bind(incident)
                    .fetch_optional(&mut **tx)
                    .await?;
                    row.ok_or(StoreError::NotFound)
                }

                async fn task_row(tx: &mut Tx, incident: Uuid, task: Uuid) -> StoreResult<TaskRow> {
                    let row: Option<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {TASK_COLUMNS} FROM incident_tasks WHERE id = $1 AND incident_id = $2{}",
                        $for_update
                    )))
                    .bind(task)
                    .bind(incident)
                    .fetch_optional(&mut **tx)
                    .await?;
                    row.ok_or(StoreError::NotFound)
                }

                /// Candidate alerts for suggestions: open, unlinked, recent, visible.
                fn push_candidates(qb: &mut QueryBuilder<$db>, access: &AlertAccess, vis: &Visibility, f: &SuggestionFilter, since: DateTime<Utc>) {
                    // Alert ids are UUIDv7 made when the alert is first stored: the id bound lets
                    // the (tenant, id) index find the window; first_seen keeps it exact.
                    qb.push(
                        "SELECT alerts.id FROM alerts WHERE alerts.status IN ('new', 'triaged', 'in_progress') \
                         AND alerts.id >= ",
                    )
                    .push_bind(uuid_v7_floor(since));
                    qb.push(" AND alerts.first_seen >= ").push_bind(since);
                    push_visible(qb, access, vis);
                    if let Some(t) = f.tenant_id {
                        qb.push(" AND alerts.tenant_id = ").push_bind(t.0);
                    }
                    qb.push(
                        " AND NOT EXISTS (SELECT 1 FROM incident_alerts ia JOIN incidents i ON i.id = ia.incident_id \
                         WHERE ia.alert_id = alerts.id AND i.deleted_at IS NULL) ORDER BY alerts.id DESC LIMIT ",
                    )
                    .push_bind(MAX_SUGGESTION_CANDIDATES);
                }
            }

            #[async_trait::async_trait]
            impl IncidentStore for $store {
                async fn create_incident(&self, who: &Acting<'_>, new: NewIncident) -> StoreResult<IncidentDetail> {
                    if !who.access.scope.allows(new.tenant_id) {
                        return Err(invalid("tenant_id", "unknown tenant"));
                    }
                    if new.alert_ids.len() > MAX_ALERTS_PER_REQUEST {
                        return Err(invalid("alert_ids", format!("at most {MAX_ALERTS_PER_REQUEST} alerts")));
                    }
                    let vis = self.alert_visibility(who.access).await?;
                    // The number is max + 1 under a per-tenant lock (PostgreSQL) or the single
                    // writer (SQLite); a unique violation all the same is retried.
                    let mut attempt = 0;
                    let id = loop {
                        match self.create_once(who, &new, &vis).await {
                            Err(StoreError::Conflict { field: "number" }) if attempt < 5 => attempt += 1,
                            other => break other?,
                        }
                    };
                    let row = self.incident_row(who.access, &vis, id).await?;
                    self.detail(who.access, &vis, row).await
                }

                async fn list_incidents(&self, access: &AlertAccess, f: &IncidentFilter) -> StoreResult<Vec<Incident>> {
                    let vis = self.alert_visibility(access).await?;
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {INCIDENT_COLUMNS}"));
                    push_alert_count(&mut qb, access, &vis);
                    qb.push(" FROM incidents WHERE incidents.deleted_at IS NULL");
                    push_scope(&mut qb, "incidents.tenant_id", &access.scope);
                    if let Some(t) = f.tenant_id {
                        qb.push(" AND incidents.tenant_id = ").push_bind(t.0);
                    }
                    for (column, values) in [("incidents.status", &f.status), ("incidents.severity", &f.severity)] {
                        if !values.is_empty() {
                            qb.push(format_args!(" AND {column} IN ("));
                            let mut sep = qb.separated(", ");
                            for v in values {
                                sep.push_bind(v.clone());
                            }
                            qb.push(")");
                        }
                    }
                    if let Some(a) = f.assignee_id {
                        qb.push(" AND incidents.assignee_id = ").push_bind(a);
                    }
                    if let Some(tag) = &f.tag {
                        qb.push(concat!(" AND EXISTS (SELECT 1 FROM ", $incident_tag_values, " = ")).push_bind(tag.clone());
                        qb.push(")");
                    }
                    if let Some(s) = f.since {
                        qb.push(" AND incidents.created_at >= ").push_bind(s);
                    }
                    if let Some(u) = f.until {
                        qb.push(" AND incidents.created_at < ").push_bind(u);
                    }
                    if let Some(text) = &f.text {
                        let pattern = like_pattern(text);
                        qb.push(" AND (LOWER(incidents.title) LIKE ").push_bind(pattern.clone());
                        qb.push(" ESCAPE '\\' OR LOWER(COALESCE(incidents.description, '')) LIKE ").push_bind(pattern);
                        qb.push(" ESCAPE '\\'");
                        if let Ok(n) = text.trim().trim_start_matches('#').parse::<i64>() {
                            qb.push(" OR incidents.number = ").push_bind(n);
                        }
                        qb.push(")");
                    }
                    if let Some(after) = f.after {
                        qb.push(" AND incidents.id < ").push_bind(after);
                    }
                    qb.push(" ORDER BY incidents.id DESC LIMIT ").push_bind(i64::from(f.limit));
                    let rows: Vec<IncidentRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    rows.into_iter().map(IncidentRow::into_incident).collect()
                }

                async fn get_incident(&self, access: &AlertAccess, id: Uuid) -> StoreResult<IncidentDetail> {
                    let vis = self.alert_visibility(access).await?;
                    let row = self.incident_row(access, &vis, id).await?;
                    self.detail(access, &vis, row).await
                }

                async fn update_incident(&self, who: &Acting<'_>, id: Uuid, patch: IncidentPatch) -> StoreResult<IncidentDetail> {
                    let ctx = who.ctx;
                    let mut tx = self.begin_write().await?;
                    let cur = Self::locked_incident(&mut tx, &who.access.scope, id).await?;
                    let tenant = TenantId(cur.tenant_id);
                    let from = cur.status()?;
                    let now = bulwark_core::time::now();
                    let mut events = Vec::new();
                    let mut before = serde_json::Map::new();
                    let mut after = serde_json::Map::new();
                    let mut status = from;
                    let mut closed_at = cur.closed_at;
                    let mut notified = false;
                    if let Some(to) = patch.status {
                        lifecycle::check(from, to).map_err(|e| invalid(e.field(), e.to_string()))?;
                        if to != from {
                            status = to;
                            closed_at = lifecycle::closed_at_after(from, to, cur.closed_at, now);
                            events.push(Event::new("status_changed", json!({"old": from, "new": to})));
                            before.insert("status".into(), json!(from));
                            after.insert("status".into(), json!(to));
                        }
                    }
                    let mut changed = |field: &str, old: Value, new: Value, events: &mut Vec<Event>| {
                        if old != new {
                            events.push(Event::new("updated", json!({"field": field, "old": old, "new": new})));
                            before.insert(field.into(), old);
                            after.insert(field.into(), new);
                        }
                    };
                    let severity = patch.severity.clone().unwrap_or_else(|| cur.severity.clone());
                    changed("severity", json!(cur.severity), json!(severity), &mut events);
                    let title = patch.title.clone().unwrap_or_else(|| cur.title.clone());
                    changed("title", json!(excerpt(&cur.title)), json!(excerpt(&title)), &mut events);
                    let description = match &patch.description {
                        Some(d) => d.clone(),
                        None => cur.description.clone(),
                    };
                    changed(
                        "description",
                        json!(cur.description.as_deref().map(excerpt)),
                        json!(description.as_deref().map(excerpt)),
                        &mut events,
                    );
                    let assignee = match patch.assignee_id {
                        Some(a) => a,
                        None => cur.assignee_id,
                    };
                    if assignee != cur.assignee_id
                        && let Some(a) = assignee
                    {
                        Self::check_assignee(&mut tx, tenant, who.platform_tenant, "assignee_id", a).await?;
                    }
                    changed("assignee_id", json!(cur.assignee_id), json!(assignee), &mut events);
                    let tags = patch.tags.clone().unwrap_or_else(|| cur.tags.0.clone());
                    changed("tags", json!(cur.tags.0), json!(tags), &mut events);
                    if !events.is_empty() {
                        sqlx::query(
                            "UPDATE incidents SET status = $1, closed_at = $2, severity = $3, title = $4, description = $5, \
                             assignee_id = $6, tags = $7, updated_at = $8 WHERE id = $9",
                        )
                        .bind(status.as_str())
                        .bind(closed_at)
                        .bind(&severity)
                        .bind(&title)
                        .bind(description)
                        .bind(assignee)
                        .bind(Json(&tags))
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        Self::write_events(&mut tx, ctx, tenant, id, events).await?;
                        let event = if status.is_closed() && !from.is_closed() {
                            EventType::IncidentClosed
                        } else {
                            EventType::IncidentUpdated
                        };
                        let changes = json!({"before": before.clone(), "after": after.clone()});
                        Self::audit(&mut tx, ctx, tenant, event, ("incident", id), Some(Value::Object(before)), Some(Value::Object(after))).await?;
                        notified = Self::queue_notifications(&mut tx, &[$crate::notifications::NotifyEvent {
                            tenant_id: tenant,
                            event: "incident.updated",
                            severity: Some(severity.clone()),
                            subject_id: Some(id.to_string()),
                            context: json!({"incident": {"id": id, "number": cur.number, "title": title, "severity": severity,
                                "status": status.as_str(), "assignee_id": assignee, "tags": tags, "created_at": cur.created_at},
                                "changes": changes, "changed_by": ctx.actor_name}),
                        }]).await?;
                    }
                    tx.commit().await?;
                    if notified {
                        self.jobs_ready.notify_one();
                    }
                    self.get_incident(who.access, id).await
                }

                async fn delete_incident(&self, who: &Acting<'_>, id: Uuid) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    let cur = Self::locked_incident(&mut tx, &who.access.scope, id).await?;
                    let tenant = TenantId(cur.tenant_id);
                    let now = bulwark_core::time::now();
                    sqlx::query("UPDATE incidents SET deleted_at = $1, updated_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    Self::write_events(&mut tx, who.ctx, tenant, id, vec![Event::new("deleted", json!({}))]).await?;
                    Self::audit(
                        &mut tx, who.ctx, tenant, EventType::IncidentUpdated, ("incident", id),
                        Some(json!({"number": cur.number, "title": cur.title, "status": cur.status})),
                        Some(json!({"deleted": true})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn link_alerts(&self, who: &Acting<'_>, id: Uuid, alert_ids: &[Uuid]) -> StoreResult<Vec<LinkResult>> {
                    if alert_ids.len() > MAX_ALERTS_PER_REQUEST {
                        return Err(invalid("alert_ids", format!("at most {MAX_ALERTS_PER_REQUEST} alerts")));
                    }
                    let vis = self.alert_visibility(who.access).await?;
                    let mut tx = self.begin_write().await?;
                    let cur = Self::locked_incident(&mut tx, &who.access.scope, id).await?;
                    let tenant = TenantId(cur.tenant_id);
                    let mut ids = alert_ids.to_vec();
                    ids.sort();
                    ids.dedup();
                    let found: Vec<Uuid> = Self::linkable(&mut tx, who.access, &vis, tenant, &ids).await?.into_iter().map(|r| r.0).collect();
                    let linked = Self::insert_links(&mut tx, who.ctx, tenant, id, &found).await?;
                    if !linked.is_empty() {
                        Self::touch(&mut tx, id).await?;
                        Self::audit(
                            &mut tx, who.ctx, tenant, EventType::IncidentUpdated, ("incident", id), None,
                            Some(json!({"linked_alert_ids": linked.iter().map(|a| a.to_string()).collect::<Vec<_>>()})),
                        )
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(alert_ids
                        .iter()
                        .map(|a| LinkResult {
                            alert_id: *a,
                            result: if linked.contains(a) {
                                LinkOutcome::Linked
                            } else if found.contains(a) {
                                LinkOutcome::AlreadyLinked
                            } else {
                                LinkOutcome::NotFound
                            },
                        })
                        .fold(Vec::<LinkResult>::new(), |mut acc, r| {
                            // A repeated id answers once as linked, then as already linked.
                            let r = if r.result == LinkOutcome::Linked && acc.iter().any(|x| x.alert_id == r.alert_id) {
                                LinkResult { result: LinkOutcome::AlreadyLinked, ..r }
                            } else {
                                r
                            };
                            acc.push(r);
                            acc
                        }))
                }

                async fn unlink_alert(&self, who: &Acting<'_>, id: Uuid, alert_id: Uuid) -> StoreResult<()> {
                    let vis = self.alert_visibility(who.access).await?;
                    let mut tx = self.begin_write().await?;
                    let cur = Self::locked_incident(&mut tx, &who.access.scope, id).await?;
                    let tenant = TenantId(cur.tenant_id);
                    if Self::linkable(&mut tx, who.access, &vis, tenant, &[alert_id]).await?.is_empty() {
                        return Err(StoreError::NotFound);
                    }
                    let done = sqlx::query("DELETE FROM incident_alerts WHERE incident_id = $1 AND alert_id = $2")
                        .bind(id)
                        .bind(alert_id)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Self::write_events(&mut tx, who.ctx, tenant, id, vec![Event::about("alert_unlinked", alert_id, json!({}))]).await?;
                    Self::write_activities(&mut tx, who.ctx, tenant, &[(alert_id, "incident_unlinked", Some(id.to_string()), None)]).await?;
                    Self::touch(&mut tx, id).await?;
                    Self::audit(
                        &mut tx, who.ctx, tenant, EventType::IncidentUpdated, ("incident", id),
                        Some(json!({"linked_alert_id": alert_id.to_string()})), Some(json!({"unlinked_alert_id": alert_id.to_string()})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn move_alert(&self, who: &Acting<'_>, from: Uuid, alert_id: Uuid, to: Uuid) -> StoreResult<()> {
                    if from == to {
                        return Err(invalid("to_incident_id", "is the incident the alert is in"));
                    }
                    let vis = self.alert_visibility(who.access).await?;
                    let mut tx = self.begin_write().await?;
                    // Lock both incidents in id order, so two opposite moves cannot deadlock.
                    let (first, second) = if from < to { (from, to) } else { (to, from) };
                    let a = Self::locked_incident(&mut tx, &who.access.scope, first).await;
                    let b = Self::locked_incident(&mut tx, &who.access.scope, second).await;
                    let (src, dst) = if from < to { (a, b) } else { (b, a) };
                    let src = src?;
                    let dst = dst.map_err(|e| match e {
                        StoreError::NotFound => invalid("to_incident_id", "no such incident"),
                        other => other,
                    })?;
                    if src.tenant_id != dst.tenant_id {
                        return Err(invalid("to_incident_id", "must be an incident of the same tenant"));
                    }
                    let tenant = TenantId(src.tenant_id);
                    if Self::linkable(&mut tx, who.access, &vis, tenant, &[alert_id]).await?.is_empty() {
                        return Err(StoreError::NotFound);
                    }
                    let done = sqlx::query("DELETE FROM incident_alerts WHERE incident_id = $1 AND alert_id = $2")
                        .bind(from)
                        .bind(alert_id)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Self::write_events(&mut tx, who.ctx, tenant, from,
                        vec![Event::about("alert_unlinked", alert_id, json!({"moved_to": to}))]).await?;
                    Self::write_activities(&mut tx, who.ctx, tenant, &[(alert_id, "incident_unlinked", Some(from.to_string()), None)]).await?;
                    let now = bulwark_core::time::now();
                    let by = who.ctx.actor_id.clone().or_else(|| who.ctx.actor_name.clone());
                    let inserted: Option<(Uuid,)> = sqlx::query_as(
                        "INSERT INTO incident_alerts (incident_id, alert_id, tenant_id, linked_at, linked_by) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (incident_id, alert_id) DO NOTHING RETURNING alert_id",
                    )
                    .bind(to)
                    .bind(alert_id)
                    .bind(tenant.0)
                    .bind(now)
                    .bind(by)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if inserted.is_some() {
                        Self::write_events(&mut tx, who.ctx, tenant, to,
                            vec![Event::about("alert_linked", alert_id, json!({"moved_from": from}))]).await?;
                        Self::write_activities(&mut tx, who.ctx, tenant, &[(alert_id, "incident_linked", None, Some(to.to_string()))]).await?;
                    }
                    Self::touch(&mut tx, from).await?;
                    Self::touch(&mut tx, to).await?;
                    let rec = |target: Uuid, before: Value, after: Value| {
                        $crate::audit::record(who.ctx, EventType::IncidentUpdated, "incident", Some(target.to_string()), Some(before), Some(after))
                    };
                    let recs = vec![
                        rec(from, json!({"linked_alert_id": alert_id.to_string()}), json!({"moved_alert_id": alert_id.to_string(), "to": to.to_string()}))?,
                        rec(to, json!({}), json!({"linked_alert_id": alert_id.to_string(), "from": from.to_string()}))?,
                    ];
                    Self::append_audit_many(&mut tx, tenant, recs).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn incident_alerts(&self, access: &AlertAccess, id: Uuid, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<AlertSummary>> {
                    self.visible_incident(&access.scope, id).await?;
                    let vis = self.alert_visibility(access).await?;
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {SUMMARY_COLUMNS}"));
                    push_linked(&mut qb, id, access, &vis);
                    if let Some(a) = after {
                        qb.push(" AND alerts.id < ").push_bind(a);
                    }
                    qb.push(" ORDER BY alerts.id DESC LIMIT ").push_bind(i64::from(limit));
                    Ok(qb.build_query_as().fetch_all(&self.reader).await?)
                }

                async fn incident_timeline(&self, access: &AlertAccess, id: Uuid, f: &TimelineFilter) -> StoreResult<Vec<TimelineItem>> {
                    self.visible_incident(&access.scope, id).await?;
                    let vis = self.alert_visibility(access).await?;
                    let wants = |k: &str| f.kinds.is_empty() || f.kinds.iter().any(|x| x == k);
                    let event_kinds: Vec<&str> = TIMELINE_KINDS
                        .iter()
                        .copied()
                        .filter(|k| {
                            !matches!(
                                *k,
                                "alert_arrived" | "comment" | "alert_activity" | "playbook_run" | "playbook_step" | "approval"
                            ) && wants(k)
                        })
                        .collect();
                    let limit = i64::from(f.limit);
                    let keyset = |qb: &mut QueryBuilder<$db>, at: &str, idc: &str| {
                        if let Some((t, i)) = f.after {
                            qb.push(format_args!(" AND ({at} > ")).push_bind(t);
                            qb.push(format_args!(" OR ({at} = ")).push_bind(t);
                            qb.push(format_args!(" AND {idc} > ")).push_bind(i);
                            qb.push("))");
                        }
                    };
                    let mut qb = QueryBuilder::<$db>::new("SELECT at, id, kind, actor_kind, actor_id, actor_name, alert_id, detail, a, b, c, at2 FROM (");
                    let mut arms = 0;
                    let mut arm = |qb: &mut QueryBuilder<$db>| {
                        if arms > 0 {
                            qb.push(" UNION ALL ");
                        }
                        arms += 1;
                        qb.push("SELECT * FROM (");
                    };
                    if !event_kinds.is_empty() {
                        arm(&mut qb);
                        qb.push(
                            "SELECT e.created_at AS at, e.id AS id, e.kind AS kind, e.actor_kind AS actor_kind, \
                             e.actor_id AS actor_id, e.actor_name AS actor_name, e.alert_id AS alert_id, \
                             CAST(e.detail AS TEXT) AS detail, CAST(NULL AS TEXT) AS a, CAST(NULL AS TEXT) AS b, \
                             CAST(NULL AS TEXT) AS c, CAST(NULL AS timestamptz) AS at2 \
                             FROM incident_events e LEFT JOIN alerts ON alerts.id = e.alert_id WHERE e.incident_id = ",
                        )
                        .push_bind(id);
                        qb.push(" AND e.kind IN (");
                        let mut sep = qb.separated(", ");
                        for k in &event_kinds {
                            sep.push_bind(k.to_string());
                        }
                        qb.push(") AND (e.alert_id IS NULL OR (1 = 1");
                        push_visible(&mut qb, access, &vis);
                        qb.push("))");
                        keyset(&mut qb, "e.created_at", "e.id");
                        qb.push(" ORDER BY e.created_at, e.id LIMIT ").push_bind(limit);
                        qb.push(") t1");
                    }
                    if wants("alert_arrived") {
                        arm(&mut qb);
                        qb.push(
                            "SELECT alerts.first_seen AS at, alerts.id AS id, 'alert_arrived' AS kind, \
                             CAST(NULL AS TEXT) AS actor_kind, CAST(NULL AS TEXT) AS actor_id, CAST(NULL AS TEXT) AS actor_name, \
                             alerts.id AS alert_id, CAST(NULL AS TEXT) AS detail, alerts.title AS a, alerts.severity AS b, \
                             alerts.source AS c, CAST(NULL AS timestamptz) AS at2",
                        );
                        push_linked(&mut qb, id, access, &vis);
                        keyset(&mut qb, "alerts.first_seen", "alerts.id");
                        qb.push(" ORDER BY alerts.first_seen, alerts.id LIMIT ").push_bind(limit);
                        qb.push(") t2");
                    }
                    if wants("comment") {
                        arm(&mut qb);
                        qb.push(
                            "SELECT c.created_at AS at, c.id AS id, 'comment' AS kind, c.author_kind AS actor_kind, \
                             c.author_id AS actor_id, c.author_name AS actor_name, CAST(NULL AS uuid) AS alert_id, \
                             CAST(c.mentions AS TEXT) AS detail, c.body AS a, CAST(NULL AS TEXT) AS b, CAST(NULL AS TEXT) AS c, \
                             c.edited_at AS at2 FROM comments c WHERE c.incident_id = ",
                        )
                        .push_bind(id);
                        keyset(&mut qb, "c.created_at", "c.id");
                        qb.push(" ORDER BY c.created_at, c.id LIMIT ").push_bind(limit);
                        qb.push(") t3");
                    }
                    if wants("alert_activity") {
                        arm(&mut qb);
                        qb.push(
                            "SELECT aa.created_at AS at, aa.id AS id, 'alert_activity' AS kind, aa.actor_kind AS actor_kind, \
                             aa.actor_id AS actor_id, aa.actor_name AS actor_name, aa.alert_id AS alert_id, \
                             CAST(NULL AS TEXT) AS detail, aa.kind AS a, aa.old_value AS b, aa.new_value AS c, \
                             CAST(NULL AS timestamptz) AS at2 \
                             FROM incident_alerts ia CROSS JOIN alerts CROSS JOIN alert_activities aa \
                             WHERE alerts.id = ia.alert_id AND aa.alert_id = ia.alert_id AND ia.incident_id = ",
                        )
                        .push_bind(id);
                        push_visible(&mut qb, access, &vis);
                        // Linking to or unlinking from this incident is the incident's own event.
                        qb.push(" AND NOT (aa.kind IN ('incident_linked', 'incident_unlinked') AND COALESCE(aa.new_value, aa.old_value) = ")
                            .push_bind(id.to_string());
                        qb.push(")");
                        keyset(&mut qb, "aa.created_at", "aa.id");
                        qb.push(" ORDER BY aa.created_at, aa.id LIMIT ").push_bind(limit);
                        qb.push(") t4");
                    }
                    // Automation on the incident: its runs, each action attempt, approvals.
                    let automation: [(&str, &str, &str, &str, &str); 3] = [
                        (
                            "playbook_run",
                            "SELECT r.created_at AS at, r.id AS id, 'playbook_run' AS kind, 'playbook' AS actor_kind, \
                             CAST(NULL AS TEXT) AS actor_id, r.playbook_name AS actor_name, r.alert_id AS alert_id, \
                             CAST(NULL AS TEXT) AS detail, r.trigger AS a, r.status AS b, CAST(NULL AS TEXT) AS c, \
                             CAST(NULL AS timestamptz) AS at2 FROM playbook_runs r WHERE r.incident_id = ",
                            "r.created_at",
                            "r.id",
                            ") t5",
                        ),
                        (
                            "playbook_step",
                            "SELECT s.started_at AS at, s.id AS id, 'playbook_step' AS kind, 'playbook' AS actor_kind, \
                             CAST(NULL AS TEXT) AS actor_id, r.playbook_name AS actor_name, r.alert_id AS alert_id, \
                             CAST(NULL AS TEXT) AS detail, s.ref || ' (' || s.action || ')' AS a, s.status AS b, s.error AS c, \
                             CAST(NULL AS timestamptz) AS at2 FROM run_steps s JOIN playbook_runs r ON r.id = s.run_id \
                             WHERE r.incident_id = ",
                            "s.started_at",
                            "s.id",
                            ") t6",
                        ),
                        (
                            "approval",
                            "SELECT ap.created_at AS at, ap.id AS id, 'approval' AS kind, 'playbook' AS actor_kind, \
                             CAST(NULL AS TEXT) AS actor_id, ap.playbook_name AS actor_name, r.alert_id AS alert_id, \
                             CAST(NULL AS TEXT) AS detail, ap.message AS a, ap.status AS b, CAST(NULL AS TEXT) AS c, \
                             CAST(NULL AS timestamptz) AS at2 FROM approvals ap JOIN playbook_runs r ON r.id = ap.run_id \
                             WHERE r.incident_id = ",
                            "ap.created_at",
                            "ap.id",
                            ") t7",
                        ),
                    ];
                    for (kind, select, at, idc, alias) in automation {
                        if !wants(kind) {
                            continue;
                        }
                        arm(&mut qb);
                        qb.push(select).push_bind(id);
                        keyset(&mut qb, at, idc);
                        qb.push(format_args!(" ORDER BY {at}, {idc} LIMIT ")).push_bind(limit);
                        qb.push(alias);
                    }
                    if arms == 0 {
                        return Ok(Vec::new());
                    }
                    qb.push(") u ORDER BY at, id LIMIT ").push_bind(limit);
                    let rows: Vec<TimelineRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(TimelineRow::into_item).collect())
                }

                async fn suggest_incidents(&self, access: &AlertAccess, f: &SuggestionFilter) -> StoreResult<Vec<Suggestion>> {
                    let vis = self.alert_visibility(access).await?;
                    let since = bulwark_core::time::now() - f.window;
                    // Shared observables and hostnames of the candidates, in one query.
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT alerts.tenant_id, o.kind, o.value, alerts.id FROM alerts \
                         JOIN alert_observables l ON l.alert_id = alerts.id JOIN observables o ON o.id = l.observable_id \
                         WHERE alerts.id IN (",
                    );
                    Self::push_candidates(&mut qb, access, &vis, f, since);
                    qb.push(") UNION ALL SELECT alerts.tenant_id, 'hostname', alerts.hostname, alerts.id FROM alerts WHERE alerts.hostname IS NOT NULL AND alerts.id IN (");
                    Self::push_candidates(&mut qb, access, &vis, f, since);
                    qb.push(")");
                    let rows: Vec<(Uuid, String, String, Uuid)> = qb.build_query_as().fetch_all(&self.reader).await?;
                    let pairs = rows
                        .into_iter()
                        .map(|(t, kind, value, a)| (TenantId(t), SharedValue { kind, value }, a))
                        .collect();
                    let groups = group_suggestions(pairs, f.max_groups);
                    let mut wanted: Vec<Uuid> = groups.iter().flat_map(|g| g.2.iter().take(f.max_alerts).copied()).collect();
                    wanted.sort();
                    wanted.dedup();
                    let mut summaries = std::collections::HashMap::<Uuid, AlertSummary>::new();
                    for chunk in wanted.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new(format!("SELECT {SUMMARY_COLUMNS} FROM alerts WHERE 1 = 1"));
                        push_ids(&mut qb, "alerts.id", chunk);
                        push_visible(&mut qb, access, &vis);
                        let rows: Vec<AlertSummary> = qb.build_query_as().fetch_all(&self.reader).await?;
                        summaries.extend(rows.into_iter().map(|s| (s.id, s)));
                    }
                    Ok(groups
                        .into_iter()
                        .map(|(tenant_id, shared, ids)| Suggestion {
                            tenant_id,
                            shared,
                            alert_count: ids.len() as i64,
                            alerts: ids.iter().take(f.max_alerts).filter_map(|a| summaries.get(a).cloned()).collect(),
                        })
                        .collect())
                }

                async fn add_incident_comment(&self, who: &Acting<'_>, id: Uuid, body: String, mentioned: &[String]) -> StoreResult<IncidentComment> {
                    let mut tx = self.begin_write().await?;
                    let cur = Self::locked_incident(&mut tx, &who.access.scope, id).await?;
                    let tenant = TenantId(cur.tenant_id);
                    let mentions = Self::resolve_mentions(&mut tx, tenant, who.platform_tenant, mentioned).await?;
                    let now = bulwark_core::time::now();
                    let row: CommentRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO comments (id, tenant_id, incident_id, author_kind, author_id, author_name, body, mentions, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COMMENT_COLUMNS}"
                    )))
                    .bind(Uuid::now_v7())
                    .bind(tenant.0)
                    .bind(id)
                    .bind(who.ctx.actor_kind)
                    .bind(who.ctx.actor_id.clone())
                    .bind(who.ctx.actor_name.clone())
                    .bind(&body)
                    .bind(Json(&mentions))
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    Self::write_events(&mut tx, who.ctx, tenant, id, vec![Event::new("comment_added", json!({"comment_id": row.id}))]).await?;
                    Self::touch(&mut tx, id).await?;
                    Self::audit(
                        &mut tx, who.ctx, tenant, EventType::CommentAdded, ("comment", row.id), None,
                        Some(json!({"incident_id": id.to_string(), "length": body.chars().count(),
                                    "mentions": mentions.iter().map(|m| m.to_string()).collect::<Vec<_>>()})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(row.into_comment())
                }

                async fn list_incident_comments(&self, scope: &Scope, id: Uuid, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<IncidentComment>> {
                    self.visible_incident(scope, id).await?;
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {COMMENT_COLUMNS} FROM comments WHERE incident_id = "));
                    qb.push_bind(id);
                    if let Some(a) = after {
                        qb.push(" AND id > ").push_bind(a);
                    }
                    qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                    let rows: Vec<CommentRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(CommentRow::into_comment).collect())
                }

                async fn edit_incident_comment(
                    &self,
                    who: &Acting<'_>,
                    id: Uuid,
                    comment: Uuid,
                    body: String,
                    mentioned: &[String],
                ) -> StoreResult<CommentEdit> {
                    let mut tx = self.begin_write().await?;
                    let cur = Self::locked_incident(&mut tx, &who.access.scope, id).await?;
                    let tenant = TenantId(cur.tenant_id);
                    let old = Self::comment_row(&mut tx, id, comment).await?;
                    let is_author = old.author_kind == who.ctx.actor_kind
                        && old.author_id.is_some()
                        && old.author_id == who.ctx.actor_id;
                    if !is_author {
                        return Ok(CommentEdit::NotAuthor);
                    }
                    let mentions = Self::resolve_mentions(&mut tx, tenant, who.platform_tenant, mentioned).await?;
                    let now = bulwark_core::time::now();
                    let row: CommentRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "UPDATE comments SET body = $1, mentions = $2, edited_at = $3 WHERE id = $4 RETURNING {COMMENT_COLUMNS}"
                    )))
                    .bind(&body)
                    .bind(Json(&mentions))
                    .bind(now)
                    .bind(comment)
                    .fetch_one(&mut *tx)
                    .await?;
                    Self::write_events(&mut tx, who.ctx, tenant, id, vec![Event::new(
                        "comment_edited",
                        json!({"comment_id": comment, "old": excerpt(&old.body), "new": excerpt(&body)}),
                    )])
                    .await?;
                    Self::audit(
                        &mut tx, who.ctx, tenant, EventType::IncidentUpdated, ("comment", comment),
                        Some(json!({"length": old.body.chars().count()})),
                        Some(json!({"incident_id": id.to_string(), "length": body.chars().count(), "edited": true})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(CommentEdit::Edited(row.into_comment()))
                }

                async fn list_incident_tasks(&self, scope: &Scope, id: Uuid) -> StoreResult<Vec<IncidentTask>> {
                    self.visible_incident(scope, id).await?;
                    self.tasks_of(id).await
                }

                async fn add_incident_task(&self, who: &Acting<'_>, id: Uuid, task: NewTask) -> StoreResult<IncidentTask> {
                    let mut tx = self.begin_write().await?;
                    let cur = Self::locked_incident(&mut tx, &who.access.scope, id).await?;
                    let tenant = TenantId(cur.tenant_id);
                    if let Some(a) = task.assignee_id {
                        Self::check_assignee(&mut tx, tenant, who.platform_tenant, "assignee_id", a).await?;
                    }
                    let t = Self::insert_task(&mut tx, tenant, id, &task).await?;
                    Self::write_events(&mut tx, who.ctx, tenant, id, vec![Event::new(
                        "task_added",
                        json!({"task_id": t.id, "title": excerpt(&t.title), "status": t.status}),
                    )])
                    .await?;
                    Self::touch(&mut tx, id).await?;
                    Self::audit(
                        &mut tx, who.ctx, tenant, EventType::IncidentUpdated, ("incident_task", t.id), None,
                        Some(json!({"incident_id": id.to_string(), "title": excerpt(&t.title), "status": t.status.as_str()})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(t)
                }

                async fn update_incident_task(&self, who: &Acting<'_>, id: Uuid, task: Uuid, patch: TaskPatch) -> StoreResult<IncidentTask> {
                    let mut tx = self.begin_write().await?;
                    let cur = Self::locked_incident(&mut tx, &who.access.scope, id).await?;
                    let tenant = TenantId(cur.tenant_id);
                    let old = Self::task_row(&mut tx, id, task).await?.into_task()?;
                    let now = bulwark_core::time::now();
                    let title = patch.title.clone().unwrap_or_else(|| old.title.clone());
                    let description = patch.description.clone().unwrap_or_else(|| old.description.clone());
                    let assignee = patch.assignee_id.unwrap_or(old.assignee_id);
                    if assignee != old.assignee_id
                        && let Some(a) = assignee
                    {
                        Self::check_assignee(&mut tx, tenant, who.platform_tenant, "assignee_id", a).await?;
                    }
                    let status = patch.status.unwrap_or(old.status);
                    let due_at = patch.due_at.unwrap_or(old.due_at);
                    let completed_at = status.completed_at_after(old.status, old.completed_at, now);
                    let mut changes = serde_json::Map::new();
                    let mut before = serde_json::Map::new();
                    for (field, o, n) in [
                        ("title", json!(excerpt(&old.title)), json!(excerpt(&title))),
                        ("description", json!(old.description.as_deref().map(excerpt)), json!(description.as_deref().map(excerpt))),
                        ("assignee_id", json!(old.assignee_id), json!(assignee)),
                        ("status", json!(old.status), json!(status)),
                        ("due_at", json!(old.due_at), json!(due_at)),
                    ] {
                        if o != n {
                            before.insert(field.into(), o.clone());
                            changes.insert(field.into(), json!({"old": o, "new": n}));
                        }
                    }
                    if changes.is_empty() {
                        tx.commit().await?;
                        return Ok(old);
                    }
                    let row: TaskRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "UPDATE incident_tasks SET title = $1, description = $2, assignee_id = $3, status = $4, due_at = $5, \
                         completed_at = $6, updated_at = $7 WHERE id = $8 RETURNING {TASK_COLUMNS}"
                    )))
                    .bind(&title)
                    .bind(description)
                    .bind(assignee)
                    .bind(status.as_str())
                    .bind(due_at)
                    .bind(completed_at)
                    .bind(now)
                    .bind(task)
                    .fetch_one(&mut *tx)
                    .await?;
                    let after: serde_json::Map<String, Value> = changes
                        .iter()
                        .map(|(k, v)| (k.clone(), v["new"].clone()))
                        .collect();
                    Self::write_events(&mut tx, who.ctx, tenant, id, vec![Event::new(
                        "task_updated",
                        json!({"task_id": task, "changes": Value::Object(changes)}),
                    )])
                    .await?;
                    Self::touch(&mut tx, id).await?;
                    Self::audit(
                        &mut tx, who.ctx, tenant, EventType::IncidentUpdated, ("incident_task", task),
                        Some(Value::Object(before)), Some(Value::Object(after)),
                    )
                    .await?;
                    tx.commit().await?;
                    row.into_task()
                }

                async fn delete_incident_task(&self, who: &Acting<'_>, id: Uuid, task: Uuid) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    let cur = Self::locked_incident(&mut tx, &who.access.scope, id).await?;
                    let tenant = TenantId(cur.tenant_id);
                    let old = Self::task_row(&mut tx, id, task).await?;
                    sqlx::query("DELETE FROM incident_tasks WHERE id = $1")
                        .bind(task)
                        .execute(&mut *tx)
                        .await?;
                    Self::write_events(&mut tx, who.ctx, tenant, id, vec![Event::new(
                        "task_deleted",
                        json!({"task_id": task, "title": excerpt(&old.title)}),
                    )])
                    .await?;
                    Self::touch(&mut tx, id).await?;
                    Self::audit(
                        &mut tx, who.ctx, tenant, EventType::IncidentUpdated, ("incident_task", task),
                        Some(json!({"incident_id": id.to_string(), "title": excerpt(&old.title), "status": old.status})),
                        Some(json!({"deleted": true})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl IncidentTemplateStore for $store {
                async fn list_incident_templates(&self, scope: &Scope, tenant: Option<TenantId>) -> StoreResult<Vec<IncidentTemplate>> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {TEMPLATE_COLUMNS} FROM incident_templates WHERE 1 = 1"));
                    push_scope(&mut qb, "tenant_id", scope);
                    if let Some(t) = tenant {
                        qb.push(" AND tenant_id = ").push_bind(t.0);
                    }
                    qb.push(" ORDER BY name, id LIMIT 1000");
                    let rows: Vec<TemplateRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(TemplateRow::into_template).collect())
                }

                async fn get_incident_template(&self, scope: &Scope, id: Uuid) -> StoreResult<IncidentTemplate> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {TEMPLATE_COLUMNS} FROM incident_templates WHERE id = "));
                    qb.push_bind(id);
                    push_scope(&mut qb, "tenant_id", scope);
                    let row: Option<TemplateRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    row.map(TemplateRow::into_template).ok_or(StoreError::NotFound)
                }

                async fn create_incident_template(&self, ctx: &ChangeCtx, scope: &Scope, new: NewTemplate) -> StoreResult<IncidentTemplate> {
                    if !scope.allows(new.tenant_id) {
                        return Err(invalid("tenant_id", "unknown tenant"));
                    }
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    Self::check_tenant(&mut tx, new.tenant_id).await?;
                    let row: TemplateRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO incident_templates (id, tenant_id, name, description, severity, tags, tasks, playbooks, \
                         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {TEMPLATE_COLUMNS}"
                    )))
                    .bind(Uuid::now_v7())
                    .bind(new.tenant_id.0)
                    .bind(&new.name)
                    .bind(new.description.clone())
                    .bind(&new.severity)
                    .bind(Json(&new.tags))
                    .bind(Json(&new.tasks))
                    .bind(Json(&new.playbooks))
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| $crate::conflict_or(e, "name"))?;
                    Self::audit(
                        &mut tx, ctx, new.tenant_id, EventType::SettingsChanged, ("incident_template", row.id), None,
                        Some(json!({"name": new.name, "severity": new.severity, "tasks": new.tasks.len(), "playbooks": new.playbooks})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(row.into_template())
                }

                async fn update_incident_template(&self, ctx: &ChangeCtx, scope: &Scope, id: Uuid, patch: TemplatePatch) -> StoreResult<IncidentTemplate> {
                    let mut tx = self.begin_write().await?;
                    let old = Self::template_row(&mut tx, scope, id).await?.ok_or(StoreError::NotFound)?.into_template();
                    let name = patch.name.clone().unwrap_or_else(|| old.name.clone());
                    let description = patch.description.clone().unwrap_or_else(|| old.description.clone());
                    let severity = patch.severity.clone().unwrap_or_else(|| old.severity.clone());
                    let tags = patch.tags.clone().unwrap_or_else(|| old.tags.clone());
                    let tasks = patch.tasks.clone().unwrap_or_else(|| old.tasks.clone());
                    let playbooks = patch.playbooks.clone().unwrap_or_else(|| old.playbooks.clone());
                    let now = bulwark_core::time::now();
                    let row: TemplateRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "UPDATE incident_templates SET name = $1, description = $2, severity = $3, tags = $4, tasks = $5, \
                         playbooks = $6, updated_at = $7 WHERE id = $8 RETURNING {TEMPLATE_COLUMNS}"
                    )))
                    .bind(&name)
                    .bind(description)
                    .bind(&severity)
                    .bind(Json(&tags))
                    .bind(Json(&tasks))
                    .bind(Json(&playbooks))
                    .bind(now)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| $crate::conflict_or(e, "name"))?;
                    Self::audit(
                        &mut tx, ctx, old.tenant_id, EventType::SettingsChanged, ("incident_template", id),
                        Some(json!({"name": old.name, "severity": old.severity, "tasks": old.tasks.len(), "playbooks": old.playbooks})),
                        Some(json!({"name": name, "severity": severity, "tasks": tasks.len(), "playbooks": playbooks})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(row.into_template())
                }

                async fn delete_incident_template(&self, ctx: &ChangeCtx, scope: &Scope, id: Uuid) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    let old = Self::template_row(&mut tx, scope, id).await?.ok_or(StoreError::NotFound)?;
                    sqlx::query("DELETE FROM incident_templates WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    Self::audit(
                        &mut tx, ctx, TenantId(old.tenant_id), EventType::SettingsChanged, ("incident_template", id),
                        Some(json!({"name": old.name})), Some(json!({"deleted": true})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }
            }
        }
    };
}

pub(crate) use impl_incidents;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, value: &str) -> SharedValue {
        SharedValue {
            kind: kind.into(),
            value: value.into(),
        }
    }

    #[test]
    fn groups_need_two_alerts_and_come_largest_first() {
        let t = TenantId::new();
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let pairs = vec![
            (t, key("ipv4", "203.0.113.9"), ids[0]),
            (t, key("ipv4", "203.0.113.9"), ids[1]),
            (t, key("hostname", "web-01"), ids[1]),
            (t, key("hostname", "web-01"), ids[2]),
            (t, key("hostname", "web-01"), ids[3]),
            (t, key("domain", "lonely.example"), ids[4]),
        ];
        let g = group_suggestions(pairs, 50);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].1, vec![key("hostname", "web-01")]);
        assert_eq!(g[0].2, vec![ids[3], ids[2], ids[1]], "newest first");
        assert_eq!(g[1].2, vec![ids[1], ids[0]]);
    }

    #[test]
    fn same_alerts_merge_keys_and_subsets_are_dropped() {
        let t = TenantId::new();
        let other = TenantId::new();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let pairs = vec![
            (t, key("hostname", "h"), ids[0]),
            (t, key("hostname", "h"), ids[1]),
            (t, key("hostname", "h"), ids[2]),
            (t, key("ipv4", "198.51.100.1"), ids[0]),
            (t, key("ipv4", "198.51.100.1"), ids[1]),
            (t, key("ipv4", "198.51.100.1"), ids[2]),
            (t, key("domain", "d.example"), ids[0]),
            (t, key("domain", "d.example"), ids[1]),
            // Same value in another tenant: never grouped with this tenant's alerts.
            (other, key("hostname", "h"), Uuid::now_v7()),
        ];
        let g = group_suggestions(pairs, 50);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(
            g[0].1,
            vec![key("hostname", "h"), key("ipv4", "198.51.100.1")]
        );
        assert_eq!(g[0].2.len(), 3);
    }

    #[test]
    fn groups_are_bounded() {
        let t = TenantId::new();
        let mut pairs = Vec::new();
        for i in 0..10 {
            for _ in 0..2 {
                pairs.push((t, key("hostname", &format!("h{i}")), Uuid::now_v7()));
            }
        }
        assert_eq!(group_suggestions(pairs, 3).len(), 3);
    }

    #[test]
    fn cursors_round_trip_exactly() {
        let at = Utc::now();
        let id = Uuid::now_v7();
        let c = format_cursor(at, id);
        assert!(!c.contains('+') && !c.contains(' '), "{c}");
        assert_eq!(parse_cursor(&c), Some((at, id)));
        assert_eq!(parse_cursor("nope"), None);
        assert_eq!(parse_cursor("2024-01-01T00:00:00Z~x"), None);
    }

    #[test]
    fn the_v7_floor_bounds_ids_made_later() {
        let t = Utc::now();
        let floor = uuid_v7_floor(t);
        let later = Uuid::now_v7();
        assert!(later >= floor);
        assert!(uuid_v7_floor(t - chrono::Duration::milliseconds(5)) < floor);
        let older = uuid_v7_floor(t + chrono::Duration::seconds(1));
        assert!(later < older);
        assert_eq!(uuid_v7_floor(t).get_version_num(), 7);
    }

    #[test]
    fn excerpts_and_patterns() {
        assert_eq!(excerpt("short"), "short");
        assert_eq!(excerpt(&"x".repeat(2000)).chars().count(), 1001);
        assert_eq!(like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
