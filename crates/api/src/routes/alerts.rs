//! The alert queue: list with filters and cursor pagination, and one alert in full.

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{PathId, Query, storable_time};
use crate::state::AppState;
use axum::extract::State;
use bulwark_core::triage::{AlertStatus, Determination};
use bulwark_core::{AlertAccess, TenantId};
use bulwark_store::alerts::{AlertDetail, AlertFilter, AlertSummary};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "info"];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Comma-separated statuses: new, triaged, in_progress, escalated, resolved, false_positive.
    pub status: Option<String>,
    /// Comma-separated severities: critical, high, medium, low, info.
    pub severity: Option<String>,
    pub source: Option<String>,
    pub tenant_id: Option<TenantId>,
    pub assignee_id: Option<uuid::Uuid>,
    pub tag: Option<String>,
    /// malicious, suspicious or benign.
    pub determination: Option<String>,
    /// First seen at or after.
    pub since: Option<DateTime<Utc>>,
    /// First seen before.
    pub until: Option<DateTime<Utc>>,
    /// Text in the title, description or rule name (case-insensitive).
    pub q: Option<String>,
    /// An observable value (IP, domain, hash, ...) the alert carries.
    pub observable: Option<String>,
    pub hostname: Option<String>,
    /// Source or destination IP.
    pub ip: Option<String>,
    /// `newest` (default) or `oldest`.
    pub sort: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<uuid::Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<uuid::Uuid>,
}

/// Splits a comma-separated list and checks every item against `valid`.
fn list_of(
    field: &str,
    raw: Option<&str>,
    valid: &dyn Fn(&str) -> bool,
    expected: &str,
) -> ApiResult<Vec<String>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if valid(s) {
                Ok(s.to_string())
            } else {
                Err(ApiError::field(
                    field,
                    format!(
                        "unknown value `{}`; expected {expected}",
                        s.chars().take(32).collect::<String>()
                    ),
                ))
            }
        })
        .collect()
}

fn bounded_text(field: &str, v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        Some(s) if s.len() > 512 => Err(ApiError::field(field, "at most 512 bytes")),
        Some(s) if s.trim().is_empty() => Err(ApiError::field(field, "must not be empty")),
        other => Ok(other),
    }
}

/// The alert queue: alerts visible to the caller matching every filter given.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", security(("bearer" = [])),
    params(AlertQuery),
    responses((status = 200, body = AlertPage), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<AlertQuery>,
) -> ApiResult<axum::Json<AlertPage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 500"));
    }
    let statuses = AlertStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let status = list_of(
        "status",
        q.status.as_deref(),
        &|s| s.parse::<AlertStatus>().is_ok(),
        &statuses,
    )?;
    let severity = list_of(
        "severity",
        q.severity.as_deref(),
        &|s| SEVERITIES.contains(&s),
        &SEVERITIES.join(", "),
    )?;
    if let Some(d) = &q.determination
        && d.parse::<Determination>().is_err()
    {
        return Err(ApiError::field(
            "determination",
            "expected malicious, suspicious or benign",
        ));
    }
    let oldest_first = match q.sort.as_deref() {
        None | Some("newest") => false,
        Some("oldest") => true,
        Some(_) => return Err(ApiError::field("sort", "expected newest or oldest")),
    };
    storable_time("since", q.since)?;
    storable_time("until", q.until)?;
    if let (Some(s), Some(u)) = (q.since, q.until)
        && s >= u
    {
        return Err(ApiError::field("until", "must be after since"));
    }
    let filter = AlertFilter {
        tenant_id: q.tenant_id,
        status,
        severity,
        source: bounded_text("source", q.source)?,
        assignee_id: q.assignee_id,
        tag: bounded_text("tag", q.tag)?,
        determination: q.determination,
        since: q.since,
        until: q.until,
        text: bounded_text("q", q.q)?,
        observable: bounded_text("observable", q.observable)?,
        hostname: bounded_text("hostname", q.hostname)?,
        ip: bounded_text("ip", q.ip)?,
        oldest_first,
        after: q.cursor,
        limit,
    };
    let items = state
        .store
        .list_alerts(&AlertAccess::of(&caller), &filter)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|a| a.id))
        .flatten();
    Ok(axum::Json(AlertPage { items, next_cursor }))
}

/// One alert: normalized fields, the raw payload as received, the latest duplicate's payload,
/// and its observables.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Alert id")),
    responses((status = 200, body = AlertDetail), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<AlertDetail>> {
    Ok(axum::Json(
        state.store.get_alert(&AlertAccess::of(&caller), id).await?,
    ))
}
