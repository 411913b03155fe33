//! Notification rules and durable deliveries.
//!
//! A **rule** (per tenant) names an event kind ([`EVENTS`]), a filter (minimum severity; for
//! SLA warnings the SLA and how long before it to warn), a channel integration instance and
//! two templates (title and text, rendered by the integrations worker in the playbooks'
//! sandboxed minijinja).
//!
//! **Durability.** A delivery row and its `notification` job are written *in the transaction
//! of the event that causes them*: the ingest batch that stores a new alert, the transaction
//! that creates or changes an incident, requests an approval or records a failed run. So an
//! acknowledged event never lacks its notification, and a rolled-back one never sends any.
//! Ingestion pays one indexed read of the enabled `alert.created` rules of the batch's tenants
//! per batch; contexts are built only when a rule exists. SLA warnings come from the scanner
//! duty ([`NotificationStore::queue_sla_notifications`]), idempotent per (rule, incident)
//! through `dedup_key`.
//!
//! **Delivery.** The worker renders the templates against the delivery's stored context,
//! records the rendered text, calls the channel's `notify` action and records the attempt:
//! `sent`, `retrying` (with `next_attempt_at`) or, after [`DELIVERY_ATTEMPTS`] attempts or a
//! failure retrying cannot fix, `failed` with the (redacted) error, audited as
//! `notification.failed`. Failed deliveries are listed for admins and can be retried.

use bulwark_core::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// The event kinds a rule may listen to.
pub const EVENTS: &[&str] = &[
    "alert.created",
    "incident.created",
    "incident.updated",
    "approval.requested",
    "run.failed",
    "sla.breach_soon",
];

/// Event kinds whose subject has a severity (`min_severity` applies).
pub const EVENTS_WITH_SEVERITY: &[&str] = &[
    "alert.created",
    "incident.created",
    "incident.updated",
    "sla.breach_soon",
];

/// Attempts of one delivery before it is `failed`.
pub const DELIVERY_ATTEMPTS: i32 = 5;

/// How far back the SLA scanner looks for incidents that crossed their warning point (a
/// scanner down longer than this misses those warnings).
pub const SLA_LOOKBACK_HOURS: i64 = 24;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotificationRule {
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    pub name: String,
    /// One of `alert.created`, `incident.created`, `incident.updated`, `approval.requested`,
    /// `run.failed`, `sla.breach_soon`.
    pub event: String,
    /// Only subjects at least this severe (alerts, incidents, SLA warnings).
    pub min_severity: Option<String>,
    /// `sla.breach_soon`: the incident's SLA (minutes after it was opened).
    pub sla_minutes: Option<i32>,
    /// `sla.breach_soon`: warn this many minutes before the SLA is breached.
    pub warn_minutes: Option<i32>,
    /// The channel integration instance (Slack, Teams, e-mail, webhook, PagerDuty ...).
    pub integration_id: Uuid,
    /// Title template (minijinja).
    pub title: String,
    /// Text template (minijinja).
    pub template: String,
    pub enabled: bool,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a create or an update writes (validated by the caller).
#[derive(Debug, Clone)]
pub struct RuleWrite {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub name: String,
    pub event: String,
    pub min_severity: Option<String>,
    pub sla_minutes: Option<i32>,
    pub warn_minutes: Option<i32>,
    pub integration_id: Uuid,
    pub title: String,
    pub template: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// None when the rule was deleted since.
    pub rule_id: Option<Uuid>,
    pub rule_name: String,
    pub integration_id: Uuid,
    pub event: String,
    /// The alert, incident, approval or run the event is about.
    pub subject_id: Option<String>,
    /// What the templates see.
    #[schema(value_type = Object)]
    pub context: Value,
    /// The rendered title and text (after the first attempt).
    pub title: Option<String>,
    pub message: Option<String>,
    /// `queued`, `retrying`, `sent` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// The last attempt's error (secrets redacted).
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Sent by `POST /notifications/rules/{id}/test`.
    pub is_test: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub tenant: Option<TenantId>,
    pub status: Option<String>,
    pub rule_id: Option<Uuid>,
    /// Older than this delivery (cursor).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// An event that may cause notifications.
#[derive(Debug, Clone)]
pub struct NotifyEvent {
    pub tenant_id: TenantId,
    pub event: &'static str,
    /// The subject's severity, for `min_severity`.
    pub severity: Option<String>,
    pub subject_id: Option<String>,
    /// What the templates see (besides `event` and `rule`).
    pub context: Value,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    Sent {
        title: String,
        message: String,
    },
    /// `retry_at`: try again then; `None`: this was the last attempt (the delivery fails).
    Failed {
        title: Option<String>,
        message: Option<String>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Whether `severity` passes `min_severity` (`critical` is the most severe). An unknown
/// severity does not pass a filter.
pub fn severity_passes(min: Option<&str>, severity: Option<&str>) -> bool {
    let rank = bulwark_core::incident::severity_rank;
    match min {
        None => true,
        Some(m) => match (rank(m), severity.and_then(rank)) {
            (Some(m), Some(s)) => s <= m,
            _ => false,
        },
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RuleRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    event: String,
    min_severity: Option<String>,
    sla_minutes: Option<i32>,
    warn_minutes: Option<i32>,
    integration_id: Uuid,
    title: String,
    template: String,
    enabled: bool,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl RuleRow {
    pub(crate) fn into_record(self) -> NotificationRule {
        NotificationRule {
            id: self.id,
            tenant_id: TenantId(self.tenant_id),
            name: self.name,
            event: self.event,
            min_severity: self.min_severity,
            sla_minutes: self.sla_minutes,
            warn_minutes: self.warn_minutes,
            integration_id: self.integration_id,
            title: self.title,
            template: self.template,
            enabled: self.enabled,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub(crate) const RULE_COLUMNS: &str = "id, tenant_id, name, event, min_severity, sla_minutes, warn_minutes, \
     integration_id, title, template, enabled, created_by, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: Uuid,
    tenant_id: Uuid,
    rule_id: Option<Uuid>,
    rule_name: String,
    integration_id: Uuid,
    event: String,
    subject_id: Option<String>,
    context: sqlx::types::Json<Value>,
    title: Option<String>,
    message: Option<String>,
    status: String,
    attempts: i32,
    max_attempts: i32,
    last_error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    is_test: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl DeliveryRow {
    pub(crate) fn into_record(self) -> Delivery {
        Delivery {
            id: self.id,
            tenant_id: TenantId(self.tenant_id),
            rule_id: self.rule_id,
            rule_name: self.rule_name,
            integration_id: self.integration_id,
            event: self.event,
            subject_id: self.subject_id,
            context: self.context.0,
            title: self.title,
            message: self.message,
            status: self.status,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            sent_at: self.sent_at,
            is_test: self.is_test,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub(crate) const DELIVERY_COLUMNS: &str = "id, tenant_id, rule_id, rule_name, integration_id, event, subject_id, \
     context, title, message, status, attempts, max_attempts, last_error, next_attempt_at, sent_at, is_test, \
     created_at, updated_at";

pub(crate) fn rule_audit_view(r: &RuleWrite) -> Value {
    serde_json::json!({
        "name": r.name,
        "event": r.event,
        "min_severity": r.min_severity,
        "sla_minutes": r.sla_minutes,
        "warn_minutes": r.warn_minutes,
        "integration_id": r.integration_id,
        "enabled": r.enabled,
    })
}

macro_rules! impl_notifications {
    ($store:ident, $db:ty) => {
        mod notifications_impl {
            use super::$store;
            use $crate::notifications::{
                AttemptOutcome, DELIVERY_ATTEMPTS, DELIVERY_COLUMNS, Delivery, DeliveryFilter, DeliveryRow,
                NotificationRule, NotifyEvent, RULE_COLUMNS, RuleRow, RuleWrite, SLA_LOOKBACK_HOURS, rule_audit_view,
                severity_passes,
            };
            use $crate::automation::JOB_NOTIFICATION;
            use $crate::scope_sql::push_scope;
            use $crate::{ChangeCtx, NotificationStore, StoreError, StoreResult, conflict_or};
            use bulwark_audit::EventType;
            use bulwark_core::{Scope, TenantId};
            use chrono::{DateTime, Utc};
            use serde_json::json;
            use sqlx::types::Json;
            use sqlx::{AssertSqlSafe, QueryBuilder, Transaction};
            use uuid::Uuid;

            type Tx = Transaction<'static, $db>;
            type Conn = <$db as sqlx::Database>::Connection;

            impl $store {
                /// The enabled rules of `event` in `tenants` (one indexed read).
                pub(crate) async fn notification_rules_for(
                    tx: &mut Conn,
                    event: &str,
                    tenants: &[TenantId],
                ) -> StoreResult<Vec<NotificationRule>> {
                    if tenants.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {RULE_COLUMNS} FROM notification_rules WHERE event = "));
                    qb.push_bind(event.to_string()).push(" AND enabled = ").push_bind(true).push(" AND tenant_id IN (");
                    let mut sep = qb.separated(", ");
                    for t in tenants {
                        sep.push_bind(t.0);
                    }
                    qb.push(") ORDER BY tenant_id, name");
                    let rows: Vec<RuleRow> = qb.build_query_as().fetch_all(&mut *tx).await?;
                    Ok(rows.into_iter().map(RuleRow::into_record).collect())
                }

                /// Writes one delivery and its job per (event, matching rule) in `tx`; `true`
                /// when something was queued (the caller wakes the workers after the commit).
                pub(crate) async fn queue_notifications(tx: &mut Tx, events: &[NotifyEvent]) -> StoreResult<bool> {
                    let mut queued = false;
                    let mut kinds: Vec<&'static str> = events.iter().map(|e| e.event).collect();
                    kinds.sort();
                    kinds.dedup();
                    for kind in kinds {
                        let mut tenants: Vec<TenantId> = events.iter().filter(|e| e.event == kind).map(|e| e.tenant_id).collect();
                        tenants.sort();
                        tenants.dedup();
                        let rules = Self::notification_rules_for(tx, kind, &tenants).await?;
                        if rules.is_empty() {
                            continue;
                        }
                        for e in events.iter().filter(|e| e.event == kind) {
                            for r in rules.iter().filter(|r| r.tenant_id == e.tenant_id) {
                                if !severity_passes(r.min_severity.as_deref(), e.severity.as_deref()) {
                                    continue;
                                }
                                queued |= Self::insert_delivery(tx, r, e, None, false).await?.is_some();
                            }
                        }
                    }
                    Ok(queued)
                }

                /// One delivery (and, unless it is a test sent at once, its job). `None` when
                /// `dedup_key` was queued for this rule before.
                pub(crate) async fn insert_delivery(
                    tx: &mut Conn,
                    r: &NotificationRule,
                    e: &NotifyEvent,
                    dedup_key: Option<String>,
                    test: bool,
                ) -> StoreResult<Option<Uuid>> {
                    let now = bulwark_core::time::now();
                    let id = Uuid::now_v7();
                    let mut context = json!({
                        "event": e.event,
                        "rule": {"id": r.id, "name": r.name},
                        "tenant_id": e.tenant_id.0,
                        "occurred_at": now,
                    });
                    if let (Some(c), Some(extra)) = (context.as_object_mut(), e.context.as_object()) {
                        for (k, v) in extra {
                            c.insert(k.clone(), v.clone());
                        }
                    }
                    let inserted: Option<(Uuid,)> = sqlx::query_as(
                        "INSERT INTO notification_deliveries (id, tenant_id, rule_id, rule_name, integration_id, event, subject_id, \
                         dedup_key, context, status, attempts, max_attempts, is_test, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', 0, $10, $11, $12, $12) \
                         ON CONFLICT (rule_id, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING RETURNING id",
                    )
                    .bind(id)
                    .bind(e.tenant_id.0)
                    .bind(r.id)
                    .bind(&r.name)
                    .bind(r.integration_id)
                    .bind(e.event)
                    .bind(e.subject_id.clone())
                    .bind(dedup_key)
                    .bind(Json(&context))
                    .bind(if test { 1 } else { DELIVERY_ATTEMPTS })
                    .bind(test)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if inserted.is_none() {
                        return Ok(None);
                    }
                    if !test {
                        Self::insert_notification_job(tx, e.tenant_id, id, now).await?;
                    }
                    Ok(Some(id))
                }

                async fn insert_notification_job(tx: &mut Conn, tenant: TenantId, delivery: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
                    let now = bulwark_core::time::now();
                    sqlx::query(
                        "INSERT INTO jobs (id, kind, tenant_id, run_id, payload, priority, status, run_at, attempts, \
                         max_attempts, created_at, updated_at) VALUES ($1, $2, $3, NULL, $4, 50, 'queued', $5, 0, $6, $7, $7)",
                    )
                    .bind(Uuid::now_v7())
                    .bind(JOB_NOTIFICATION)
                    .bind(tenant.0)
                    .bind(Json(json!({"delivery": delivery})))
                    .bind(at)
                    // Lease lapses count as claims too: room for them besides the delivery's
                    // own attempts (the delivery decides when it has failed).
                    .bind(DELIVERY_ATTEMPTS * 4)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    Self::announce_jobs(tx).await?;
                    Ok(())
                }

                /// A delivery whose job was dead-lettered (the worker died on it every time, or
                /// the store kept failing) is `failed`, visibly and audited, not left queued.
                pub(crate) async fn abandon_delivery(tx: &mut Tx, payload: &serde_json::Value, why: &str) -> StoreResult<()> {
                    let Some(id) = payload.get("delivery").and_then(|v| v.as_str()).and_then(|s| s.parse::<Uuid>().ok()) else {
                        return Ok(());
                    };
                    let now = bulwark_core::time::now();
                    let row: Option<(Uuid, String, String)> = sqlx::query_as(
                        "UPDATE notification_deliveries SET status = 'failed', last_error = $1, next_attempt_at = NULL, updated_at = $2 \
                         WHERE id = $3 AND status IN ('queued', 'retrying') RETURNING tenant_id, rule_name, event",
                    )
                    .bind(why)
                    .bind(now)
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if let Some((tenant, rule, event)) = row {
                        let rec = $crate::audit::record(
                            &ChangeCtx::system("notifications"), EventType::NotificationFailed, "notification_delivery",
                            Some(id.to_string()), None, Some(json!({"rule": rule, "event": event, "error": why})),
                        )?;
                        Self::append_audit(tx, TenantId(tenant), rec).await?;
                    }
                    Ok(())
                }

                /// Events for runs that just failed: `(run id, error)`.
                pub(crate) async fn run_failed_events(tx: &mut Tx, runs: &[(Uuid, Option<String>)]) -> StoreResult<Vec<NotifyEvent>> {
                    let mut out = Vec::new();
                    for (run, error) in runs {
                        let row: Option<(Uuid, Uuid, String, Option<Uuid>, Option<Uuid>, String)> = sqlx::query_as(
                            "SELECT id, tenant_id, playbook_name, alert_id, incident_id, trigger FROM playbook_runs WHERE id = $1",
                        )
                        .bind(*run)
                        .fetch_optional(&mut **tx)
                        .await?;
                        if let Some((id, tenant, playbook, alert, incident, trigger)) = row {
                            out.push(NotifyEvent {
                                tenant_id: TenantId(tenant),
                                event: "run.failed",
                                severity: None,
                                subject_id: Some(id.to_string()),
                                context: json!({"run": {"id": id, "playbook_name": playbook, "trigger": trigger,
                                    "alert_id": alert, "incident_id": incident, "error": error}}),
                            });
                        }
                    }
                    Ok(out)
                }

                async fn rule_row(tx: &mut Tx, scope: &Scope, id: Uuid) -> StoreResult<NotificationRule> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {RULE_COLUMNS} FROM notification_rules WHERE id = "));
                    qb.push_bind(id);
                    push_scope(&mut qb, "tenant_id", scope);
                    qb.push(Self::ROW_LOCK);
                    let row: Option<RuleRow> = qb.build_query_as().fetch_optional(&mut **tx).await?;
                    row.map(RuleRow::into_record).ok_or(StoreError::NotFound)
                }

                /// The channel must be an instance of the rule's tenant.
                async fn check_channel(tx: &mut Tx, w: &RuleWrite) -> StoreResult<()> {
                    let found: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM integrations WHERE id = $1 AND tenant_id = $2")
                        .bind(w.integration_id)
                        .bind(w.tenant_id.0)
                        .fetch_optional(&mut **tx)
                        .await?;
                    if found.is_none() {
                        return Err(StoreError::Invalid { field: "integration_id", message: "no such integration in the rule's tenant".into() });
                    }
                    Ok(())
                }

                async fn rule_audit(tx: &mut Tx, ctx: &ChangeCtx, tenant: TenantId, id: Uuid,
                    before: Option<serde_json::Value>, after: Option<serde_json::Value>) -> StoreResult<()> {
                    let rec = $crate::audit::record(ctx, EventType::SettingsChanged, "notification_rule", Some(id.to_string()), before, after)?;
                    Self::append_audit(tx, tenant, rec).await
                }

                async fn delivery_row(&self, scope: &Scope, id: Uuid) -> StoreResult<Delivery> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {DELIVERY_COLUMNS} FROM notification_deliveries WHERE id = "));
                    qb.push_bind(id);
                    push_scope(&mut qb, "tenant_id", scope);
                    let row: Option<DeliveryRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    row.map(DeliveryRow::into_record).ok_or(StoreError::NotFound)
                }
            }

            fn rule_before(r: &NotificationRule) -> serde_json::Value {
                json!({"name": r.name, "event": r.event, "min_severity": r.min_severity, "sla_minutes": r.sla_minutes,
                       "warn_minutes": r.warn_minutes, "integration_id": r.integration_id, "enabled": r.enabled})
            }

            #[async_trait::async_trait]
            impl NotificationStore for $store {
                async fn list_notification_rules(&self, scope: &Scope, tenant: Option<TenantId>) -> StoreResult<Vec<NotificationRule>> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {RULE_COLUMNS} FROM notification_rules WHERE 1 = 1"));
                    push_scope(&mut qb, "tenant_id", scope);
                    if let Some(t) = tenant {
                        qb.push(" AND tenant_id = ").push_bind(t.0);
                    }
                    qb.push(" ORDER BY name LIMIT 1000");
                    let rows: Vec<RuleRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(RuleRow::into_record).collect())
                }

                async fn get_notification_rule(&self, scope: &Scope, id: Uuid) -> StoreResult<NotificationRule> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {RULE_COLUMNS} FROM notification_rules WHERE id = "));
                    qb.push_bind(id);
                    push_scope(&mut qb, "tenant_id", scope);
                    let row: Option<RuleRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    row.map(RuleRow::into_record).ok_or(StoreError::NotFound)
                }

                async fn create_notification_rule(&self, ctx: &ChangeCtx, scope: &Scope, w: RuleWrite) -> StoreResult<NotificationRule> {
                    if !scope.allows(w.tenant_id) {
                        return Err(StoreError::Invalid { field: "tenant_id", message: "unknown tenant".into() });
                    }
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    Self::check_channel(&mut tx, &w).await?;
                    sqlx::query(
                        "INSERT INTO notification_rules (id, tenant_id, name, event, min_severity, sla_minutes, warn_minutes, \
                         integration_id, title, template, enabled, created_by, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
                    )
                    .bind(w.id)
                    .bind(w.tenant_id.0)
                    .bind(&w.name)
                    .bind(&w.event)
                    .bind(w.min_severity.clone())
                    .bind(w.sla_minutes)
                    .bind(w.warn_minutes)
                    .bind(w.integration_id)
                    .bind(&w.title)
                    .bind(&w.template)
                    .bind(w.enabled)
                    .bind(ctx.actor_name.clone())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, "name"))?;
                    Self::rule_audit(&mut tx, ctx, w.tenant_id, w.id, None, Some(rule_audit_view(&w))).await?;
                    tx.commit().await?;
                    self.get_notification_rule(scope, w.id).await
                }

                async fn update_notification_rule(&self, ctx: &ChangeCtx, scope: &Scope, w: RuleWrite) -> StoreResult<NotificationRule> {
                    let mut tx = self.begin_write().await?;
                    let cur = Self::rule_row(&mut tx, scope, w.id).await?;
                    if cur.tenant_id != w.tenant_id {
                        return Err(StoreError::Invalid { field: "tenant_id", message: "a rule cannot move to another tenant".into() });
                    }
                    Self::check_channel(&mut tx, &w).await?;
                    let now = bulwark_core::time::now();
                    sqlx::query(
                        "UPDATE notification_rules SET name = $1, event = $2, min_severity = $3, sla_minutes = $4, warn_minutes = $5, \
                         integration_id = $6, title = $7, template = $8, enabled = $9, updated_at = $10 WHERE id = $11",
                    )
                    .bind(&w.name)
                    .bind(&w.event)
                    .bind(w.min_severity.clone())
                    .bind(w.sla_minutes)
                    .bind(w.warn_minutes)
                    .bind(w.integration_id)
                    .bind(&w.title)
                    .bind(&w.template)
                    .bind(w.enabled)
                    .bind(now)
                    .bind(w.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, "name"))?;
                    Self::rule_audit(&mut tx, ctx, w.tenant_id, w.id, Some(rule_before(&cur)), Some(rule_audit_view(&w))).await?;
                    tx.commit().await?;
                    self.get_notification_rule(scope, w.id).await
                }

                async fn delete_notification_rule(&self, ctx: &ChangeCtx, scope: &Scope, id: Uuid) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    let cur = Self::rule_row(&mut tx, scope, id).await?;
                    // Deliveries stay (with the rule's name) as the record of what was sent.
                    sqlx::query("UPDATE notification_deliveries SET rule_id = NULL WHERE rule_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM notification_rules WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    Self::rule_audit(&mut tx, ctx, cur.tenant_id, id, Some(rule_before(&cur)), None).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn notification_rule_of(&self, id: Uuid) -> StoreResult<Option<NotificationRule>> {
                    let row: Option<RuleRow> = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT {RULE_COLUMNS} FROM notification_rules WHERE id = $1"
                    )))
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?;
                    Ok(row.map(RuleRow::into_record))
                }

                async fn list_notification_deliveries(&self, scope: &Scope, f: &DeliveryFilter) -> StoreResult<Vec<Delivery>> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {DELIVERY_COLUMNS} FROM notification_deliveries WHERE 1 = 1"));
                    push_scope(&mut qb, "tenant_id", scope);
                    if let Some(t) = f.tenant {
                        qb.push(" AND tenant_id = ").push_bind(t.0);
                    }
                    if let Some(s) = &f.status {
                        qb.push(" AND status = ").push_bind(s.clone());
                    }
                    if let Some(r) = f.rule_id {
                        qb.push(" AND rule_id = ").push_bind(r);
                    }
                    if let Some(b) = f.before {
                        qb.push(" AND id < ").push_bind(b);
                    }
                    qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(f.limit.clamp(1, 500)));
                    let rows: Vec<DeliveryRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(DeliveryRow::into_record).collect())
                }

                async fn get_notification_delivery(&self, scope: &Scope, id: Uuid) -> StoreResult<Delivery> {
                    self.delivery_row(scope, id).await
                }

                async fn delivery_for_worker(&self, id: Uuid) -> StoreResult<Option<Delivery>> {
                    let row: Option<DeliveryRow> = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries WHERE id = $1"
                    )))
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?;
                    Ok(row.map(DeliveryRow::into_record))
                }

                async fn record_delivery_attempt(&self, id: Uuid, outcome: &AttemptOutcome) -> StoreResult<Delivery> {
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    let (status, title, message, error, next, sent) = match outcome {
                        AttemptOutcome::Sent { title, message } => ("sent", Some(title.clone()), Some(message.clone()), None, None, Some(now)),
                        AttemptOutcome::Failed { title, message, error, retry_at } => (
                            if retry_at.is_some() { "retrying" } else { "failed" },
                            title.clone(),
                            message.clone(),
                            Some(error.chars().take(2000).collect::<String>()),
                            *retry_at,
                            None,
                        ),
                    };
                    let row: Option<DeliveryRow> = sqlx::query_as(AssertSqlSafe(format!(
                        "UPDATE notification_deliveries SET status = $1, title = COALESCE($2, title), message = COALESCE($3, message), \
                         last_error = $4, next_attempt_at = $5, sent_at = $6, attempts = attempts + 1, updated_at = $7 \
                         WHERE id = $8 RETURNING {DELIVERY_COLUMNS}"
                    )))
                    .bind(status)
                    .bind(title)
                    .bind(message)
                    .bind(error.clone())
                    .bind(next)
                    .bind(sent)
                    .bind(now)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let d = row.map(DeliveryRow::into_record).ok_or(StoreError::NotFound)?;
                    if d.status == "sent" || d.status == "failed" {
                        let kind = if d.status == "sent" { EventType::NotificationSent } else { EventType::NotificationFailed };
                        let rec = $crate::audit::record(
                            &ChangeCtx::system("notifications"), kind, "notification_delivery", Some(d.id.to_string()), None,
                            Some(json!({"rule": d.rule_name, "event": d.event, "integration_id": d.integration_id,
                                        "attempts": d.attempts, "error": error, "test": d.is_test})),
                        )?;
                        Self::append_audit(&mut tx, d.tenant_id, rec).await?;
                    }
                    tx.commit().await?;
                    Ok(d)
                }

                async fn create_test_delivery(&self, scope: &Scope, rule_id: Uuid, context: serde_json::Value) -> StoreResult<Delivery> {
                    let mut tx = self.begin_write().await?;
                    let r = Self::rule_row(&mut tx, scope, rule_id).await?;
                    let e = NotifyEvent {
                        tenant_id: r.tenant_id,
                        event: "test",
                        severity: None,
                        subject_id: None,
                        context,
                    };
                    let id = Self::insert_delivery(&mut tx, &r, &e, None, true).await?.ok_or(StoreError::NotFound)?;
                    tx.commit().await?;
                    self.delivery_row(scope, id).await
                }

                async fn retry_delivery(&self, ctx: &ChangeCtx, scope: &Scope, id: Uuid) -> StoreResult<Delivery> {
                    let d = self.delivery_row(scope, id).await?;
                    if d.status != "failed" {
                        return Err(StoreError::State(format!("only a failed delivery can be retried (this one is {})", d.status)));
                    }
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    let changed = sqlx::query(
                        "UPDATE notification_deliveries SET status = 'queued', attempts = 0, max_attempts = $1, \
                         next_attempt_at = NULL, updated_at = $2 WHERE id = $3 AND status = 'failed'",
                    )
                    .bind(DELIVERY_ATTEMPTS)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    if changed.rows_affected() != 1 {
                        return Err(StoreError::State("the delivery changed meanwhile".into()));
                    }
                    Self::insert_notification_job(&mut tx, d.tenant_id, id, now).await?;
                    let rec = $crate::audit::record(ctx, EventType::SettingsChanged, "notification_delivery", Some(id.to_string()),
                        Some(json!({"status": "failed"})), Some(json!({"status": "queued", "retry": true})))?;
                    Self::append_audit(&mut tx, d.tenant_id, rec).await?;
                    tx.commit().await?;
                    self.jobs_ready.notify_one();
                    self.delivery_row(scope, id).await
                }

                async fn queue_sla_notifications(&self, now: DateTime<Utc>) -> StoreResult<u64> {
                    let rules: Vec<RuleRow> = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT {RULE_COLUMNS} FROM notification_rules WHERE event = $1 AND enabled = $2"
                    )))
                    .bind("sla.breach_soon")
                    .bind(true)
                    .fetch_all(&self.reader)
                    .await?;
                    let mut queued = 0u64;
                    for r in rules.into_iter().map(RuleRow::into_record) {
                        let Some(sla) = r.sla_minutes.filter(|m| *m > 0) else { continue };
                        let warn = r.warn_minutes.unwrap_or(0).clamp(0, sla);
                        let sla_d = chrono::Duration::minutes(i64::from(sla));
                        // Warned once the warning point passed, for incidents whose deadline is
                        // after the rule was made and whose warning point is recent.
                        let cutoff = now - chrono::Duration::minutes(i64::from(sla - warn));
                        let floor = (r.created_at - sla_d).max(cutoff - chrono::Duration::hours(SLA_LOOKBACK_HOURS));
                        let rows: Vec<(Uuid, i64, String, String, String, Option<Uuid>, DateTime<Utc>)> = sqlx::query_as(
                            "SELECT id, CAST(number AS BIGINT), title, severity, status, assignee_id, created_at FROM incidents \
                             WHERE tenant_id = $1 AND status <> 'closed' AND deleted_at IS NULL AND created_at <= $2 AND created_at >= $3 \
                             ORDER BY created_at LIMIT 500",
                        )
                        .bind(r.tenant_id.0)
                        .bind(cutoff)
                        .bind(floor)
                        .fetch_all(&self.reader)
                        .await?;
                        let rows: Vec<_> = rows.into_iter().filter(|row| severity_passes(r.min_severity.as_deref(), Some(&row.3))).collect();
                        if rows.is_empty() {
                            continue;
                        }
                        let mut tx = self.begin_write().await?;
                        for (id, number, title, severity, status, assignee, created_at) in rows {
                            let deadline = created_at + sla_d;
                            let e = NotifyEvent {
                                tenant_id: r.tenant_id,
                                event: "sla.breach_soon",
                                severity: Some(severity.clone()),
                                subject_id: Some(id.to_string()),
                                context: json!({
                                    "incident": {"id": id, "number": number, "title": title, "severity": severity,
                                                 "status": status, "assignee_id": assignee, "created_at": created_at},
                                    "sla": {"minutes": sla, "deadline": deadline,
                                            "minutes_left": (deadline - now).num_minutes(), "breached": deadline <= now},
                                }),
                            };
                            if Self::insert_delivery(&mut tx, &r, &e, Some(format!("sla:{id}")), false).await?.is_some() {
                                queued += 1;
                            }
                        }
                        tx.commit().await?;
                    }
                    if queued > 0 {
                        self.jobs_ready.notify_one();
                    }
                    Ok(queued)
                }

                async fn failed_delivery_count(&self) -> StoreResult<i64> {
                    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM notification_deliveries WHERE status = 'failed'")
                        .fetch_one(&self.reader)
                        .await?;
                    Ok(n)
                }
            }
        }
    };
}
pub(crate) use impl_notifications;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_filter() {
        assert!(severity_passes(None, None));
        assert!(severity_passes(Some("high"), Some("critical")));
        assert!(severity_passes(Some("high"), Some("high")));
        assert!(!severity_passes(Some("high"), Some("medium")));
        assert!(!severity_passes(Some("high"), None));
        assert!(!severity_passes(Some("high"), Some("bogus")));
    }
}
