//! Dashboard statistics over alerts: counts by severity, status, source and tenant, open vs
//! closed, mean time to acknowledge and to resolve, and alerts over time.
//!
//! Three grouped queries, each under the caller's scope and tag rules (`push_alert_access`) and
//! without deleted alerts: one GROUP BY (tenant, source, severity, status) for every count, one
//! GROUP BY time bucket for the series, one with conditional aggregates for MTTA and MTTR. The
//! time buckets are computed per backend (`HOUR_BUCKET` / `DAY_BUCKET`, UTC) and zero-filled
//! here. Definitions are in `docs/dashboard.md`.

use bulwark_core::TenantId;
use bulwark_core::triage::AlertStatus;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The widest range the dashboard covers.
pub const MAX_RANGE_DAYS: i64 = 366;
/// The widest range an hourly series covers.
pub const MAX_HOURLY_RANGE_DAYS: i64 = 14;

const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// Granularity of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn duration(self) -> Duration {
        match self {
            Bucket::Hour => Duration::hours(1),
            Bucket::Day => Duration::days(1),
        }
    }

    /// The start of the bucket holding `t` (UTC).
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.duration()).unwrap_or(t)
    }
}

/// What to count: alerts first seen in `[since, until)`.
#[derive(Debug, Clone)]
pub struct DashboardQuery {
    pub tenant_id: Option<TenantId>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub bucket: Bucket,
}

/// A mean duration and how many alerts it is taken over.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MeanTime {
    /// Mean in seconds; none when there is no sample.
    pub mean_seconds: Option<f64>,
    pub samples: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TenantCount {
    pub tenant_id: TenantId,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// Start of the bucket (UTC).
    pub start: DateTime<Utc>,
    pub count: i64,
    /// The bucket's alerts per severity (all five, zeros included).
    pub by_severity: BTreeMap<String, i64>,
}

/// The dashboard's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DashboardStats {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub bucket: Bucket,
    /// Alerts first seen in the range.
    pub total: i64,
    /// Of those, not closed (new, triaged, in_progress, escalated).
    pub open: i64,
    /// Of those, closed (resolved, false_positive).
    pub closed: i64,
    /// Every severity, zero included.
    pub by_severity: BTreeMap<String, i64>,
    /// Every status, zero included.
    pub by_status: BTreeMap<String, i64>,
    /// Sources with at least one alert.
    pub by_source: BTreeMap<String, i64>,
    /// Tenants with at least one alert, largest first.
    pub by_tenant: Vec<TenantCount>,
    /// Mean time to acknowledge: `acknowledged_at - first_seen`, over alerts acknowledged in
    /// the range.
    pub mtta: MeanTime,
    /// Mean time to resolve: `closed_at - first_seen`, over alerts closed in the range and
    /// still closed.
    pub mttr: MeanTime,
    /// Alerts by first_seen bucket, every bucket from the one holding `since` to the one
    /// holding the end of the range, empty ones as zero.
    pub series: Vec<SeriesPoint>,
}

/// One row of the counts query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CountRow {
    pub tenant_id: Uuid,
    pub source: String,
    pub severity: String,
    pub status: String,
    pub n: i64,
}

/// The MTTA / MTTR row.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub(crate) struct TimesRow {
    pub ack_n: i64,
    pub ack_mean: Option<f64>,
    pub res_n: i64,
    pub res_mean: Option<f64>,
}

/// Puts the three queries' rows together. `buckets` are (bucket label as the backend wrote it,
/// severity, count); labels that do not parse or fall outside the range are ignored.
pub(crate) fn assemble(
    q: &DashboardQuery,
    counts: Vec<CountRow>,
    buckets: Vec<(String, String, i64)>,
    times: TimesRow,
) -> DashboardStats {
    let zeros: BTreeMap<String, i64> = SEVERITIES.iter().map(|s| (s.to_string(), 0)).collect();
    let mut by_severity: BTreeMap<String, i64> =
        SEVERITIES.iter().map(|s| (s.to_string(), 0)).collect();
    let mut by_status: BTreeMap<String, i64> = AlertStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    let mut by_source: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_tenant: BTreeMap<TenantId, i64> = BTreeMap::new();
    let (mut total, mut closed) = (0, 0);
    for r in counts {
        total += r.n;
        if r.status
            .parse::<AlertStatus>()
            .is_ok_and(AlertStatus::is_closed)
        {
            closed += r.n;
        }
        *by_severity.entry(r.severity).or_default() += r.n;
        *by_status.entry(r.status).or_default() += r.n;
        *by_source.entry(r.source).or_default() += r.n;
        *by_tenant.entry(TenantId(r.tenant_id)).or_default() += r.n;
    }
    let mut by_tenant: Vec<TenantCount> = by_tenant
        .into_iter()
        .map(|(tenant_id, count)| TenantCount { tenant_id, count })
        .collect();
    by_tenant.sort_by(|a, b| b.count.cmp(&a.count).then(a.tenant_id.cmp(&b.tenant_id)));

    let step = q.bucket.duration();
    let first = q.bucket.floor(q.since);
    let last = q
        .until
        .checked_sub_signed(Duration::microseconds(1))
        .map_or(first, |u| q.bucket.floor(u));
    let mut series = Vec::new();
    let mut t = Some(first);
    while let Some(start) = t.filter(|t| *t <= last) {
        series.push(SeriesPoint {
            start,
            count: 0,
            by_severity: zeros.clone(),
        });
        t = start.checked_add_signed(step);
    }
    for (label, severity, n) in buckets {
        let Ok(start) = DateTime::parse_from_rfc3339(&label) else {
            tracing::warn!(%label, "dashboard: unreadable time bucket");
            continue;
        };
        let start = start.with_timezone(&Utc);
        let idx = (start - first).num_seconds() / step.num_seconds();
        if let Some(p) = usize::try_from(idx).ok().and_then(|i| series.get_mut(i))
            && p.start == start
        {
            p.count += n;
            *p.by_severity.entry(severity).or_default() += n;
        }
    }

    let round = |v: Option<f64>| v.map(|s| (s * 1000.0).round() / 1000.0);
    DashboardStats {
        since: q.since,
        until: q.until,
        bucket: q.bucket,
        total,
        open: total - closed,
        closed,
        by_severity,
        by_status,
        by_source,
        by_tenant,
        mtta: MeanTime {
            mean_seconds: round(times.ack_mean),
            samples: times.ack_n,
        },
        mttr: MeanTime {
            mean_seconds: round(times.res_mean),
            samples: times.res_n,
        },
        series,
    }
}

/// Per backend: `$store::HOUR_BUCKET` / `$store::DAY_BUCKET` (an RFC 3339 label of the UTC
/// bucket holding `alerts.first_seen`) and `$store::SECONDS_BETWEEN` (`{a}`, `{b}` replaced by
/// two timestamp columns: seconds from a to b, as a floating-point number).
macro_rules! impl_dashboard {
    ($store:ident, $db:ty) => {
        mod dashboard_impl {
            use super::$store;
            use $crate::dashboard::{assemble, Bucket, CountRow, DashboardQuery, DashboardStats, TimesRow};
            use $crate::tag_access::{push_alert_access, Visibility};
            use $crate::{DashboardStore, StoreResult};
            use bulwark_core::AlertAccess;
            use sqlx::QueryBuilder;

            fn push_common(
                qb: &mut QueryBuilder<$db>,
                access: &AlertAccess,
                vis: &Visibility,
                q: &DashboardQuery,
            ) {
                push_alert_access(qb, access, vis, $store::ALERT_TAG_VALUES);
                if let Some(t) = q.tenant_id {
                    qb.push(" AND alerts.tenant_id = ").push_bind(t.0);
                }
            }

            fn in_range(qb: &mut QueryBuilder<$db>, column: &str, q: &DashboardQuery) {
                qb.push(format_args!("{column} >= ")).push_bind(q.since);
                qb.push(format_args!(" AND {column} < ")).push_bind(q.until);
            }

            #[async_trait::async_trait]
            impl DashboardStore for $store {
                async fn dashboard_stats(
                    &self,
                    access: &AlertAccess,
                    q: &DashboardQuery,
                ) -> StoreResult<DashboardStats> {
                    let vis = self.alert_visibility(access).await?;

                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT alerts.tenant_id, alerts.source, alerts.severity, alerts.status, COUNT(*) AS n \
                         FROM alerts WHERE alerts.deleted_at IS NULL AND ",
                    );
                    in_range(&mut qb, "alerts.first_seen", q);
                    push_common(&mut qb, access, &vis, q);
                    qb.push(" GROUP BY alerts.tenant_id, alerts.source, alerts.severity, alerts.status");
                    let counts: Vec<CountRow> = qb.build_query_as().fetch_all(&self.reader).await?;

                    let bucket = match q.bucket {
                        Bucket::Hour => $store::HOUR_BUCKET,
                        Bucket::Day => $store::DAY_BUCKET,
                    };
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {bucket} AS b, alerts.severity, COUNT(*) AS n FROM alerts WHERE alerts.deleted_at IS NULL AND "
                    ));
                    in_range(&mut qb, "alerts.first_seen", q);
                    push_common(&mut qb, access, &vis, q);
                    qb.push(" GROUP BY 1, 2");
                    let buckets: Vec<(String, String, i64)> = qb.build_query_as().fetch_all(&self.reader).await?;

                    let ack = $store::SECONDS_BETWEEN
                        .replace("{a}", "alerts.first_seen")
                        .replace("{b}", "alerts.acknowledged_at");
                    let res = $store::SECONDS_BETWEEN
                        .replace("{a}", "alerts.first_seen")
                        .replace("{b}", "alerts.closed_at");
                    let closed = "alerts.status IN ('resolved', 'false_positive') AND ";
                    let mut qb = QueryBuilder::<$db>::new("SELECT COUNT(CASE WHEN ");
                    in_range(&mut qb, "alerts.acknowledged_at", q);
                    qb.push(" THEN 1 END) AS ack_n, CAST(AVG(CASE WHEN ");
                    in_range(&mut qb, "alerts.acknowledged_at", q);
                    qb.push(format_args!(" THEN {ack} END) AS DOUBLE PRECISION) AS ack_mean, COUNT(CASE WHEN {closed}"));
                    in_range(&mut qb, "alerts.closed_at", q);
                    qb.push(format_args!(" THEN 1 END) AS res_n, CAST(AVG(CASE WHEN {closed}"));
                    in_range(&mut qb, "alerts.closed_at", q);
                    qb.push(format_args!(
                        " THEN {res} END) AS DOUBLE PRECISION) AS res_mean FROM alerts WHERE alerts.deleted_at IS NULL AND (("
                    ));
                    in_range(&mut qb, "alerts.acknowledged_at", q);
                    qb.push(") OR (");
                    in_range(&mut qb, "alerts.closed_at", q);
                    qb.push("))");
                    push_common(&mut qb, access, &vis, q);
                    let times: TimesRow = qb.build_query_as().fetch_one(&self.reader).await?;

                    Ok(assemble(q, counts, buckets, times))
                }
            }
        }
    };
}

pub(crate) use impl_dashboard;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn series_are_zero_filled_and_cover_the_range() {
        let q = DashboardQuery {
            tenant_id: None,
            since: at("2026-01-01T10:30:00Z"),
            until: at("2026-01-03T00:00:00Z"),
            bucket: Bucket::Day,
        };
        let t = Uuid::now_v7();
        let row = |sev: &str, status: &str, n| CountRow {
            tenant_id: t,
            source: "wazuh".into(),
            severity: sev.into(),
            status: status.into(),
            n,
        };
        let s = assemble(
            &q,
            vec![row("high", "new", 2), row("low", "resolved", 1)],
            vec![
                ("2026-01-02T00:00:00Z".into(), "high".into(), 2),
                ("2026-01-02T00:00:00Z".into(), "low".into(), 1),
                ("garbage".into(), "high".into(), 9),
                ("2027-01-01T00:00:00Z".into(), "high".into(), 9),
            ],
            TimesRow::default(),
        );
        let points: Vec<_> = s.series.iter().map(|p| (p.start, p.count)).collect();
        assert_eq!(
            points,
            vec![
                (at("2026-01-01T00:00:00Z"), 0),
                (at("2026-01-02T00:00:00Z"), 3)
            ]
        );
        assert_eq!(s.series[1].by_severity["high"], 2);
        assert_eq!(s.series[1].by_severity["low"], 1);
        assert_eq!(s.series[0].by_severity["critical"], 0);
        assert_eq!((s.total, s.open, s.closed), (3, 2, 1));
        assert_eq!(s.by_severity["critical"], 0);
        assert_eq!(s.by_severity["high"], 2);
        assert_eq!(s.by_status["false_positive"], 0);
        assert_eq!(s.by_source["wazuh"], 3);
        assert_eq!(s.by_tenant[0].count, 3);
        assert_eq!(s.mtta.samples, 0);
        assert_eq!(s.mtta.mean_seconds, None);

        let hourly = DashboardQuery {
            bucket: Bucket::Hour,
            since: at("2026-01-01T10:30:00Z"),
            until: at("2026-01-01T12:00:01Z"),
            tenant_id: None,
        };
        let s = assemble(&hourly, vec![], vec![], TimesRow::default());
        let starts: Vec<_> = s.series.iter().map(|p| p.start).collect();
        assert_eq!(
            starts,
            [
                at("2026-01-01T10:00:00Z"),
                at("2026-01-01T11:00:00Z"),
                at("2026-01-01T12:00:00Z")
            ]
        );
    }
}
