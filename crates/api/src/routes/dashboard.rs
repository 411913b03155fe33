//! Dashboard statistics over the alerts the caller may see. See `docs/dashboard.md`.

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Query;
use crate::state::AppState;
use axum::extract::State;
use bulwark_core::{AlertAccess, TenantId};
use bulwark_store::dashboard::{
    Bucket, DashboardQuery, DashboardStats, MAX_HOURLY_RANGE_DAYS, MAX_RANGE_DAYS,
};
use chrono::{DateTime, Datelike, Duration, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Start of the range (default: 7 days before `until`).
    pub since: Option<DateTime<Utc>>,
    /// End of the range, exclusive (default: now). At most 366 days after `since`.
    pub until: Option<DateTime<Utc>>,
    pub tenant_id: Option<TenantId>,
    /// Series granularity: `day` (default) or `hour` (ranges up to 14 days).
    pub bucket: Option<String>,
}

/// Timestamps outside years 1 to 9999 are refused: both databases store the range, and
/// PostgreSQL's is narrower than chrono's.
pub(crate) fn check_time(field: &str, t: Option<DateTime<Utc>>) -> ApiResult<()> {
    match t {
        Some(t) if !(1..=9999).contains(&t.year()) => {
            Err(ApiError::field(field, "must be within the years 1 to 9999"))
        }
        _ => Ok(()),
    }
}

/// Parses and checks the range; errors name the field.
fn range(q: &StatsQuery, now: DateTime<Utc>) -> ApiResult<(DateTime<Utc>, DateTime<Utc>, Bucket)> {
    check_time("since", q.since)?;
    check_time("until", q.until)?;
    let until = q.until.unwrap_or(now);
    let since = match q.since {
        Some(s) => s,
        None => until
            .checked_sub_signed(Duration::days(7))
            .ok_or_else(|| ApiError::field("until", "must be within the years 1 to 9999"))?,
    };
    if since >= until {
        let field = if q.until.is_some() { "until" } else { "since" };
        return Err(ApiError::field(field, "the range must end after it starts"));
    }
    if until - since > Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::field(
            "since",
            format!("the range may cover at most {MAX_RANGE_DAYS} days"),
        ));
    }
    let bucket = match q.bucket.as_deref() {
        None | Some("day") => Bucket::Day,
        Some("hour") => Bucket::Hour,
        Some(_) => return Err(ApiError::field("bucket", "expected hour or day")),
    };
    if bucket == Bucket::Hour && until - since > Duration::days(MAX_HOURLY_RANGE_DAYS) {
        return Err(ApiError::field(
            "bucket",
            format!("hour buckets cover at most {MAX_HOURLY_RANGE_DAYS} days; use day"),
        ));
    }
    Ok((since, until, bucket))
}

/// Alert counts by severity, status, source and tenant, open vs closed, mean time to
/// acknowledge and to resolve, and alerts over time, for alerts first seen in `[since, until)`
/// (MTTA/MTTR: alerts acknowledged / closed in it). Only alerts the caller may see count.
#[utoipa::path(get, path = "/api/v1/dashboard/stats", tag = "dashboard", security(("bearer" = [])),
    params(StatsQuery),
    responses((status = 200, body = DashboardStats), (status = 422, body = Problem)))]
pub async fn stats(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<StatsQuery>,
) -> ApiResult<axum::Json<DashboardStats>> {
    let (since, until, bucket) = range(&q, bulwark_core::time::now())?;
    let query = DashboardQuery {
        tenant_id: q.tenant_id,
        since,
        until,
        bucket,
    };
    Ok(axum::Json(
        state
            .store
            .dashboard_stats(&AlertAccess::of(&caller), &query)
            .await?,
    ))
}
