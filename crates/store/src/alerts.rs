//! Reading alerts for triage: the filtered, cursor-paginated queue and one alert in full.
//! Tenant scope is applied in the queries (`push_scope`); deleted alerts are never returned.

use bulwark_core::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Filters of the alert queue; every one given must match.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub tenant_id: Option<TenantId>,
    /// Any of these statuses.
    pub status: Vec<String>,
    /// Any of these severities.
    pub severity: Vec<String>,
    pub source: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub tag: Option<String>,
    pub determination: Option<String>,
    /// First seen at or after.
    pub since: Option<DateTime<Utc>>,
    /// First seen before.
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive text in the title, description or rule name.
    pub text: Option<String>,
    /// An observable value the alert carries (an IP, a domain, a hash ...).
    pub observable: Option<String>,
    pub hostname: Option<String>,
    /// Source or destination IP.
    pub ip: Option<String>,
    /// Newest first by default; oldest first when set.
    pub oldest_first: bool,
    /// Keyset cursor: the id of the last alert of the previous page.
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// An alert as the queue lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AlertSummary {
    pub id: Uuid,
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
    pub source: String,
    pub source_id: Option<String>,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub determination: Option<String>,
    pub assignee_id: Option<Uuid>,
    #[sqlx(json)]
    pub tags: Vec<String>,
    pub rule_name: Option<String>,
    pub hostname: Option<String>,
    pub source_ip: Option<String>,
    pub dest_ip: Option<String>,
    pub duplicate_count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

pub(crate) const SUMMARY_COLUMNS: &str = "alerts.id, alerts.tenant_id, alerts.source, alerts.source_id, alerts.title, \
     alerts.severity, alerts.status, alerts.determination, alerts.assignee_id, alerts.tags, alerts.rule_name, \
     alerts.hostname, alerts.source_ip, alerts.dest_ip, alerts.duplicate_count, alerts.first_seen, alerts.last_seen";

/// An observable as an alert shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AlertObservable {
    pub id: Uuid,
    pub kind: String,
    pub value: String,
    pub is_private: bool,
    /// Sightings across the tenant (one per alert carrying it).
    pub sightings: i64,
}

/// One alert in full.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub summary: AlertSummary,
    pub description: Option<String>,
    pub severity_original: Option<String>,
    pub rule_id: Option<String>,
    pub username: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub resolve_reason: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The whole normalized alert (hashes, techniques, indicators, ...).
    #[schema(value_type = Object)]
    pub normalized: serde_json::Value,
    /// The payload exactly as first received.
    pub raw_payload: String,
    /// The payload of the latest duplicate, if any.
    pub latest_payload: Option<String>,
    pub observables: Vec<AlertObservable>,
    /// Incidents this alert is linked to.
    pub incidents: Vec<crate::alert_triage::LinkedIncident>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct DetailRow {
    #[sqlx(flatten)]
    pub summary: AlertSummary,
    pub description: Option<String>,
    pub severity_original: Option<String>,
    pub rule_id: Option<String>,
    pub username: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub resolve_reason: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub normalized: sqlx::types::Json<serde_json::Value>,
    pub raw_payload: String,
    pub latest_payload: Option<String>,
}

/// Tag filters and tag rules use the backend's `ALERT_TAG_VALUES` expression.
macro_rules! impl_alerts {
    ($store:ident, $db:ty) => {
        mod alerts_impl {
            use super::$store;
            use $crate::alerts::{AlertDetail, AlertFilter, AlertObservable, AlertSummary, DetailRow, SUMMARY_COLUMNS};
            use $crate::tag_access::push_alert_access;
            use $crate::{AlertStore, StoreError, StoreResult};
            use bulwark_core::AlertAccess;
            use sqlx::QueryBuilder;
            use uuid::Uuid;

            #[async_trait::async_trait]
            impl AlertStore for $store {
                async fn list_alerts(&self, access: &AlertAccess, f: &AlertFilter) -> StoreResult<Vec<AlertSummary>> {
                    let vis = self.alert_visibility(access).await?;
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {SUMMARY_COLUMNS} FROM alerts WHERE alerts.deleted_at IS NULL"
                    ));
                    push_alert_access(&mut qb, access, &vis, Self::ALERT_TAG_VALUES);
                    if let Some(t) = f.tenant_id {
                        qb.push(" AND alerts.tenant_id = ").push_bind(t.0);
                    }
                    for (column, values) in [("alerts.status", &f.status), ("alerts.severity", &f.severity)] {
                        if !values.is_empty() {
                            qb.push(format_args!(" AND {column} IN ("));
                            let mut sep = qb.separated(", ");
                            for v in values {
                                sep.push_bind(v.clone());
                            }
                            qb.push(")");
                        }
                    }
                    for (column, value) in [
                        ("alerts.source", &f.source),
                        ("alerts.determination", &f.determination),
                        ("alerts.hostname", &f.hostname),
                    ] {
                        if let Some(v) = value {
                            qb.push(format_args!(" AND {column} = ")).push_bind(v.clone());
                        }
                    }
                    if let Some(a) = f.assignee_id {
                        qb.push(" AND alerts.assignee_id = ").push_bind(a);
                    }
                    if let Some(ip) = &f.ip {
                        qb.push(" AND (alerts.source_ip = ").push_bind(ip.clone());
                        qb.push(" OR alerts.dest_ip = ").push_bind(ip.clone());
                        qb.push(")");
                    }
                    if let Some(tag) = &f.tag {
                        qb.push(format_args!(" AND EXISTS (SELECT 1 FROM {} = ", Self::ALERT_TAG_VALUES))
                            .push_bind(tag.clone());
                        qb.push(")");
                    }
                    if let Some(s) = f.since {
                        qb.push(" AND alerts.first_seen >= ").push_bind(s);
                    }
                    if let Some(u) = f.until {
                        qb.push(" AND alerts.first_seen < ").push_bind(u);
                    }
                    if let Some(text) = &f.text {
                        // LIKE wildcards in the search text match themselves.
                        let pattern = format!(
                            "%{}%",
                            text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                        );
                        qb.push(" AND (LOWER(alerts.title) LIKE ").push_bind(pattern.clone());
                        qb.push(" ESCAPE '\\' OR LOWER(COALESCE(alerts.description, '')) LIKE ").push_bind(pattern.clone());
                        qb.push(" ESCAPE '\\' OR LOWER(COALESCE(alerts.rule_name, '')) LIKE ").push_bind(pattern);
                        qb.push(" ESCAPE '\\')");
                    }
                    if let Some(v) = &f.observable {
                        qb.push(
                            " AND alerts.id IN (SELECT l.alert_id FROM alert_observables l \
                             JOIN observables o ON o.id = l.observable_id \
                             WHERE o.tenant_id = alerts.tenant_id AND o.value = ",
                        )
                        .push_bind(v.clone());
                        qb.push(")");
                    }
                    let (cmp, order) = if f.oldest_first { (">", "ASC") } else { ("<", "DESC") };
                    if let Some(after) = f.after {
                        qb.push(format_args!(" AND alerts.id {cmp} ")).push_bind(after);
                    }
                    qb.push(format_args!(" ORDER BY alerts.id {order} LIMIT "))
                        .push_bind(i64::from(f.limit));
                    Ok(qb.build_query_as().fetch_all(&self.reader).await?)
                }

                async fn get_alert(&self, access: &AlertAccess, id: Uuid) -> StoreResult<AlertDetail> {
                    let vis = self.alert_visibility(access).await?;
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {SUMMARY_COLUMNS}, alerts.description, alerts.severity_original, alerts.rule_id, \
                         alerts.username, alerts.event_time, alerts.resolve_reason, alerts.acknowledged_at, \
                         alerts.closed_at, alerts.normalized, alerts.raw_payload, alerts.latest_payload \
                         FROM alerts WHERE alerts.deleted_at IS NULL AND alerts.id = "
                    ));
                    qb.push_bind(id);
                    push_alert_access(&mut qb, access, &vis, Self::ALERT_TAG_VALUES);
                    let row: DetailRow = qb
                        .build_query_as()
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let observables: Vec<AlertObservable> = sqlx::query_as(
                        "SELECT o.id, o.kind, o.value, o.is_private, o.sightings FROM alert_observables l \
                         JOIN observables o ON o.id = l.observable_id WHERE l.alert_id = $1 ORDER BY o.kind, o.value",
                    )
                    .bind(id)
                    .fetch_all(&self.reader)
                    .await?;
                    let incidents = sqlx::query_as(
                        "SELECT i.id, i.number, i.title, i.status, i.severity FROM incident_alerts l \
                         JOIN incidents i ON i.id = l.incident_id WHERE l.alert_id = $1 AND i.deleted_at IS NULL \
                         ORDER BY i.id",
                    )
                    .bind(id)
                    .fetch_all(&self.reader)
                    .await?;
                    Ok(AlertDetail {
                        summary: row.summary,
                        description: row.description,
                        severity_original: row.severity_original,
                        rule_id: row.rule_id,
                        username: row.username,
                        event_time: row.event_time,
                        resolve_reason: row.resolve_reason,
                        acknowledged_at: row.acknowledged_at,
                        closed_at: row.closed_at,
                        normalized: row.normalized.0,
                        raw_payload: row.raw_payload,
                        latest_payload: row.latest_payload,
                        observables,
                        incidents,
                    })
                }
            }
        }
    };
}

pub(crate) use impl_alerts;
