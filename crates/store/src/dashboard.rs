//! Dashboard statistics over alerts: counts by severity, status, source and tenant, open vs
//! closed, mean time to acknowledge and to resolve, and alerts over time.
//!
//! The whole UTC hours of a range are read from the hourly roll-up `alert_hourly` (migration
//! 0016: per hour, tenant and source, alerts first seen by severity and by status, and the
//! acknowledgements and closures of the hour with their summed durations), which ingestion
//! (one aggregated upsert per batch) and row triggers (every other change) keep exact in the
//! transaction of each write. The partial hours at the ends of a range are counted exactly
//! from the alerts, with three grouped queries under the caller's scope and tag rules
//! (`push_alert_access`): one GROUP BY (tenant, source, severity, status) for every count, one
//! GROUP BY time bucket for the series, one with conditional sums for MTTA and MTTR.
//!
//! In tenants where tag rules hide some alerts from the caller, a tenant-wide roll-up would
//! count alerts they cannot see: their whole hours come from `alert_hourly_tags` (migration
//! 0021: the same numbers also keyed by the alert's tag set as stored), summed over the tag
//! sets the caller may see by the alert queries' own predicate (`push_alert_access`, the table
//! read under the name `alerts`), the tag sets found by walking the index on (tenant, tags,
//! hour) of migration 0022. Definitions are in `docs/dashboard.md`; why in
//! docs/decisions/0007, 0008 and 0010.

use crate::tag_access::Visibility;
use bulwark_core::triage::AlertStatus;
use bulwark_core::{AlertAccess, TenantId};
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

/// One row of the exact counts query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CountRow {
    pub tenant_id: Uuid,
    pub source: String,
    pub severity: String,
    pub status: String,
    pub n: i64,
}

/// The exact MTTA / MTTR row: counts and summed seconds (summed, not averaged, so the
/// pieces of a range add up).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub(crate) struct TimesRow {
    pub ack_n: i64,
    pub ack_sum: Option<f64>,
    pub res_n: i64,
    pub res_sum: Option<f64>,
}

/// Statuses as the roll-up's `st_*` columns hold them, in column order.
pub(crate) const ROLLUP_STATUSES: [&str; 6] = [
    "new",
    "triaged",
    "in_progress",
    "escalated",
    "resolved",
    "false_positive",
];

/// One row of the roll-up counts query (`alert_hourly` summed per tenant and source).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RollupRow {
    pub tenant_id: Uuid,
    pub source: String,
    pub sev_critical: i64,
    pub sev_high: i64,
    pub sev_medium: i64,
    pub sev_low: i64,
    pub sev_info: i64,
    pub st_new: i64,
    pub st_triaged: i64,
    pub st_in_progress: i64,
    pub st_escalated: i64,
    pub st_resolved: i64,
    pub st_false_positive: i64,
    pub ack_n: i64,
    pub ack_seconds: f64,
    pub res_n: i64,
    pub res_seconds: f64,
}

/// One row of the roll-up series query: a bucket (hours or days since 1970) and its alerts
/// per severity.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RollupBucketRow {
    pub b: i64,
    pub sev_critical: i64,
    pub sev_high: i64,
    pub sev_medium: i64,
    pub sev_low: i64,
    pub sev_info: i64,
}

/// One row of the per-tag-set roll-up query (`alert_hourly_tags`, migration 0021): one
/// tenant's and source's numbers in one series bucket, summed over the tag sets the caller may
/// see. Gives both the counts ([`RollupRow`]) and the series ([`RollupBucketRow`]) from one read.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RollupTagRow {
    pub b: i64,
    #[sqlx(flatten)]
    pub sums: RollupRow,
}

impl RollupTagRow {
    fn bucket(&self) -> RollupBucketRow {
        let r = &self.sums;
        RollupBucketRow {
            b: self.b,
            sev_critical: r.sev_critical,
            sev_high: r.sev_high,
            sev_medium: r.sev_medium,
            sev_low: r.sev_low,
            sev_info: r.sev_info,
        }
    }
}

/// The SELECT list of the roll-up counts query, matching [`RollupRow`].
pub(crate) const ROLLUP_SUMS: &str = "CAST(SUM(sev_critical) AS BIGINT) AS sev_critical, \
     CAST(SUM(sev_high) AS BIGINT) AS sev_high, CAST(SUM(sev_medium) AS BIGINT) AS sev_medium, \
     CAST(SUM(sev_low) AS BIGINT) AS sev_low, CAST(SUM(sev_info) AS BIGINT) AS sev_info, \
     CAST(SUM(st_new) AS BIGINT) AS st_new, CAST(SUM(st_triaged) AS BIGINT) AS st_triaged, \
     CAST(SUM(st_in_progress) AS BIGINT) AS st_in_progress, CAST(SUM(st_escalated) AS BIGINT) AS st_escalated, \
     CAST(SUM(st_resolved) AS BIGINT) AS st_resolved, CAST(SUM(st_false_positive) AS BIGINT) AS st_false_positive, \
     CAST(SUM(ack_n) AS BIGINT) AS ack_n, CAST(SUM(ack_seconds) AS DOUBLE PRECISION) AS ack_seconds, \
     CAST(SUM(res_n) AS BIGINT) AS res_n, CAST(SUM(res_seconds) AS DOUBLE PRECISION) AS res_seconds";

/// The SELECT list of the roll-up series query's severities, matching [`RollupBucketRow`].
pub(crate) const ROLLUP_SEVERITY_SUMS: &str = "CAST(SUM(sev_critical) AS BIGINT) AS sev_critical, \
     CAST(SUM(sev_high) AS BIGINT) AS sev_high, CAST(SUM(sev_medium) AS BIGINT) AS sev_medium, \
     CAST(SUM(sev_low) AS BIGINT) AS sev_low, CAST(SUM(sev_info) AS BIGINT) AS sev_info";

/// The hour (since 1970-01-01T00:00Z, floored) holding `t`: the roll-up's key.
pub fn hour_index(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(3600)
}

fn hour_start(h: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(h.checked_mul(3600)?, 0)
}

/// How a range is split: whole hours `[first, end)` (by index) read from the roll-up, the rest
/// (`edges`, at most two partial hours) from the alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    pub hours: Option<(i64, i64)>,
    pub edges: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

pub(crate) fn split(since: DateTime<Utc>, until: DateTime<Utc>) -> Split {
    let whole = Split {
        hours: None,
        edges: vec![(since, until)],
    };
    let first = hour_index(since) + i64::from(Bucket::Hour.floor(since) != since);
    let end = hour_index(until);
    if first >= end {
        return whole;
    }
    let (Some(a), Some(b)) = (hour_start(first), hour_start(end)) else {
        return whole;
    };
    let edges = [(since, a), (b, until)]
        .into_iter()
        .filter(|(lo, hi)| lo < hi)
        .collect();
    Split {
        hours: Some((first, end)),
        edges,
    }
}

/// The numbers being added up, from the exact queries and the roll-up alike.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    by_severity: BTreeMap<String, i64>,
    by_status: BTreeMap<String, i64>,
    by_source: BTreeMap<String, i64>,
    by_tenant: BTreeMap<TenantId, i64>,
    series: BTreeMap<DateTime<Utc>, BTreeMap<String, i64>>,
    ack_n: i64,
    ack_sum: f64,
    res_n: i64,
    res_sum: f64,
}

impl Tally {
    pub(crate) fn add_counts(&mut self, rows: Vec<CountRow>) {
        for r in rows {
            *self.by_severity.entry(r.severity).or_default() += r.n;
            *self.by_status.entry(r.status).or_default() += r.n;
            *self.by_source.entry(r.source).or_default() += r.n;
            *self.by_tenant.entry(TenantId(r.tenant_id)).or_default() += r.n;
        }
    }

    /// `buckets` are (bucket label as the backend wrote it, severity, count); labels that do
    /// not parse are ignored.
    pub(crate) fn add_buckets(&mut self, buckets: Vec<(String, String, i64)>) {
        for (label, severity, n) in buckets {
            let Ok(start) = DateTime::parse_from_rfc3339(&label) else {
                tracing::warn!(%label, "dashboard: unreadable time bucket");
                continue;
            };
            *self
                .series
                .entry(start.with_timezone(&Utc))
                .or_default()
                .entry(severity)
                .or_default() += n;
        }
    }

    pub(crate) fn add_times(&mut self, t: TimesRow) {
        self.ack_n += t.ack_n;
        self.ack_sum += t.ack_sum.unwrap_or(0.0);
        self.res_n += t.res_n;
        self.res_sum += t.res_sum.unwrap_or(0.0);
    }

    pub(crate) fn add_rollup(&mut self, rows: Vec<RollupRow>) {
        for r in rows {
            let sev = [
                r.sev_critical,
                r.sev_high,
                r.sev_medium,
                r.sev_low,
                r.sev_info,
            ];
            let st = [
                r.st_new,
                r.st_triaged,
                r.st_in_progress,
                r.st_escalated,
                r.st_resolved,
                r.st_false_positive,
            ];
            let n: i64 = sev.iter().sum();
            for (name, v) in SEVERITIES.iter().zip(sev) {
                *self.by_severity.entry(name.to_string()).or_default() += v;
            }
            for (name, v) in ROLLUP_STATUSES.iter().zip(st) {
                *self.by_status.entry(name.to_string()).or_default() += v;
            }
            // Rows left at zero by deletions or changes count for nothing, and a source or
            // tenant with no alert is not listed.
            if n != 0 {
                *self.by_source.entry(r.source).or_default() += n;
                *self.by_tenant.entry(TenantId(r.tenant_id)).or_default() += n;
            }
            self.ack_n += r.ack_n;
            self.ack_sum += r.ack_seconds;
            self.res_n += r.res_n;
            self.res_sum += r.res_seconds;
        }
    }

    /// Rows of the per-tag-set roll-up; `unit` as for [`Tally::add_rollup_buckets`].
    pub(crate) fn add_rollup_tags(&mut self, rows: Vec<RollupTagRow>, unit: i64) {
        let buckets = rows.iter().map(RollupTagRow::bucket).collect();
        self.add_rollup_buckets(buckets, unit);
        self.add_rollup(rows.into_iter().map(|r| r.sums).collect());
    }

    /// `unit` is the bucket's length in hours (1 or 24): `b` counts those since 1970.
    pub(crate) fn add_rollup_buckets(&mut self, rows: Vec<RollupBucketRow>, unit: i64) {
        for r in rows {
            let Some(start) = r.b.checked_mul(unit).and_then(hour_start) else {
                continue;
            };
            let sev = [
                r.sev_critical,
                r.sev_high,
                r.sev_medium,
                r.sev_low,
                r.sev_info,
            ];
            let point = self.series.entry(start).or_default();
            for (name, v) in SEVERITIES.iter().zip(sev) {
                *point.entry(name.to_string()).or_default() += v;
            }
        }
    }
}

/// Puts the tally together; series buckets outside the range are ignored.
pub(crate) fn assemble(q: &DashboardQuery, t: Tally) -> DashboardStats {
    let zeros: BTreeMap<String, i64> = SEVERITIES.iter().map(|s| (s.to_string(), 0)).collect();
    let mut by_severity = zeros.clone();
    for (k, v) in t.by_severity {
        *by_severity.entry(k).or_default() += v;
    }
    let mut by_status: BTreeMap<String, i64> = AlertStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    let (mut total, mut closed) = (0, 0);
    for (k, v) in t.by_status {
        total += v;
        if k.parse::<AlertStatus>().is_ok_and(AlertStatus::is_closed) {
            closed += v;
        }
        *by_status.entry(k).or_default() += v;
    }
    let by_source: BTreeMap<String, i64> =
        t.by_source.into_iter().filter(|(_, n)| *n != 0).collect();
    let mut by_tenant: Vec<TenantCount> = t
        .by_tenant
        .into_iter()
        .filter(|(_, n)| *n != 0)
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
    let mut at = Some(first);
    while let Some(start) = at.filter(|t| *t <= last) {
        series.push(SeriesPoint {
            start,
            count: 0,
            by_severity: zeros.clone(),
        });
        at = start.checked_add_signed(step);
    }
    for (start, severities) in t.series {
        let idx = (start - first).num_seconds() / step.num_seconds();
        if let Some(p) = usize::try_from(idx).ok().and_then(|i| series.get_mut(i))
            && p.start == start
        {
            for (severity, n) in severities {
                p.count += n;
                *p.by_severity.entry(severity).or_default() += n;
            }
        }
    }

    let mean = |sum: f64, n: i64| (n > 0).then(|| (sum / n as f64 * 1000.0).round() / 1000.0);
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
            mean_seconds: mean(t.ack_sum, t.ack_n),
            samples: t.ack_n,
        },
        mttr: MeanTime {
            mean_seconds: mean(t.res_sum, t.res_n),
            samples: t.res_n,
        },
        series,
    }
}

/// The most distinct tag sets (over all time, in `alert_hourly_tags`) a restricted tenant may
/// have for the dashboard to find them by walking the tag-set index, one seek each; beyond it
/// they are read from the range's roll-up rows, as before migration 0022. A seek took ~20-60 us
/// on PostgreSQL at 1M alerts on a busy machine, so the walk stays within ~15 ms.
pub const TAG_SET_WALK_CAP: i64 = 256;

/// Whether every tenant the query covers restricts the caller by tag, so that the tenant-wide
/// roll-up has nothing to give (its query would read those tenants' rows only to exclude them:
/// 3-9 ms twice per page for a 400,000-alert tenant's analyst on PostgreSQL).
pub(crate) fn only_restricted(access: &AlertAccess, vis: &Visibility, q: &DashboardQuery) -> bool {
    let restricted = |t: &TenantId| vis.restricted.contains_key(t);
    match (q.tenant_id, access.scope.tenant_filter()) {
        (Some(t), _) => restricted(&t),
        (None, Some(tenants)) => tenants.iter().all(restricted),
        (None, None) => false,
    }
}

/// Which tenants an exact query covers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tenants<'a> {
    All,
    Only(&'a [Uuid]),
    Except(&'a [Uuid]),
}

/// Per backend: `$store::HOUR_BUCKET` / `$store::DAY_BUCKET` (an RFC 3339 label of the UTC
/// bucket holding `alerts.first_seen`) and `$store::SECONDS_BETWEEN` (`{a}`, `{b}` replaced by
/// two timestamp columns: seconds from a to b, as a floating-point number).
///
/// The whole hours of a range are read from the roll-up (`alert_hourly`, migration 0016) for
/// the tenants where the caller sees every alert, and from the per-tag-set roll-up
/// (`alert_hourly_tags`, migration 0021) under the caller's tag rules for the tenants where
/// tag rules hide some alerts from the caller (a tenant-wide roll-up cannot tell which alerts
/// a tag rule hides); the partial hours at its ends are counted exactly from the alerts.
macro_rules! impl_dashboard {
    ($store:ident, $db:ty) => {
        mod dashboard_impl {
            use super::$store;
            use $crate::dashboard::{
                assemble, only_restricted, split, Bucket, CountRow, DashboardQuery, DashboardStats, RollupBucketRow, RollupRow,
                RollupTagRow, Tally, Tenants, TimesRow, ROLLUP_SEVERITY_SUMS, ROLLUP_SUMS, TAG_SET_WALK_CAP,
            };
            use $crate::scope_sql::push_scope;
            use $crate::tag_access::{push_alert_access_on, Visibility};
            use $crate::{DashboardStore, StoreResult};
            use bulwark_core::AlertAccess;
            use chrono::{DateTime, Utc};
            use sqlx::QueryBuilder;
            use uuid::Uuid;

            fn push_tenants(qb: &mut QueryBuilder<$db>, column: &str, tenants: Tenants<'_>) {
                let (op, ids) = match tenants {
                    Tenants::All => return,
                    Tenants::Only(ids) => ("IN", ids),
                    Tenants::Except(ids) => ("NOT IN", ids),
                };
                if ids.is_empty() {
                    if op == "IN" {
                        qb.push(" AND 1 = 0");
                    }
                    return;
                }
                qb.push(format_args!(" AND {column} {op} ("));
                let mut sep = qb.separated(", ");
                for t in ids {
                    sep.push_bind(*t);
                }
                qb.push(")");
            }

            /// Scope, tag rules, the requested tenant and `tenants`, on the table named
            /// `alerts`, with its tenant column written as `tenant` (see `push_alert_access_on`).
            fn push_common(
                qb: &mut QueryBuilder<$db>,
                tenant: &str,
                access: &AlertAccess,
                vis: &Visibility,
                q: &DashboardQuery,
                tenants: Tenants<'_>,
            ) {
                push_alert_access_on(qb, tenant, access, vis, $store::ALERT_TAG_VALUES);
                if let Some(t) = q.tenant_id {
                    qb.push(format_args!(" AND {tenant} = ")).push_bind(t.0);
                }
                push_tenants(qb, tenant, tenants);
            }

            /// The exact queries read at most two hours (the partial hours at a range's ends,
            /// or a range without a whole hour): their time index is always the one to read.
            /// SQLite, which has no statistics, would otherwise take a tenant index for a
            /// caller's tenant list and read every alert of those tenants (5 s for a tenant of
            /// 400,000 alerts).
            const EXACT_TENANT: &str = $store::ALERT_TENANT_NO_INDEX;

            /// A roll-up row's series bucket and its length in hours. Days: hours floored
            /// to a multiple of 24 (also before 1970).
            fn bucket_key(bucket: Bucket) -> (&'static str, i64) {
                match bucket {
                    Bucket::Hour => ("hour", 1),
                    Bucket::Day => ("(hour - ((hour % 24) + 24) % 24) / 24", 24),
                }
            }

            fn in_range(qb: &mut QueryBuilder<$db>, column: &str, lo: DateTime<Utc>, hi: DateTime<Utc>) {
                qb.push(format_args!("{column} >= ")).push_bind(lo);
                qb.push(format_args!(" AND {column} < ")).push_bind(hi);
            }

            impl $store {
                /// The exact numbers over `[lo, hi)` (first seen, acknowledged, closed) for
                /// `tenants`, added to `tally`.
                async fn dashboard_exact(
                    &self,
                    access: &AlertAccess,
                    vis: &Visibility,
                    q: &DashboardQuery,
                    (lo, hi): (DateTime<Utc>, DateTime<Utc>),
                    tenants: Tenants<'_>,
                    tally: &mut Tally,
                ) -> StoreResult<()> {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT alerts.tenant_id, alerts.source, alerts.severity, alerts.status, COUNT(*) AS n \
                         FROM alerts WHERE alerts.deleted_at IS NULL AND ",
                    );
                    in_range(&mut qb, "alerts.first_seen", lo, hi);
                    push_common(&mut qb, EXACT_TENANT, access, vis, q, tenants);
                    qb.push(" GROUP BY alerts.tenant_id, alerts.source, alerts.severity, alerts.status");
                    let counts: Vec<CountRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    tally.add_counts(counts);

                    let bucket = match q.bucket {
                        Bucket::Hour => $store::HOUR_BUCKET,
                        Bucket::Day => $store::DAY_BUCKET,
                    };
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {bucket} AS b, alerts.severity, COUNT(*) AS n FROM alerts WHERE alerts.deleted_at IS NULL AND "
                    ));
                    in_range(&mut qb, "alerts.first_seen", lo, hi);
                    push_common(&mut qb, EXACT_TENANT, access, vis, q, tenants);
                    qb.push(" GROUP BY 1, 2");
                    let buckets: Vec<(String, String, i64)> = qb.build_query_as().fetch_all(&self.reader).await?;
                    tally.add_buckets(buckets);

                    let ack = $store::SECONDS_BETWEEN
                        .replace("{a}", "alerts.first_seen")
                        .replace("{b}", "alerts.acknowledged_at");
                    let res = $store::SECONDS_BETWEEN
                        .replace("{a}", "alerts.first_seen")
                        .replace("{b}", "alerts.closed_at");
                    let closed = "alerts.status IN ('resolved', 'false_positive') AND ";
                    let mut qb = QueryBuilder::<$db>::new("SELECT COUNT(CASE WHEN ");
                    in_range(&mut qb, "alerts.acknowledged_at", lo, hi);
                    qb.push(" THEN 1 END) AS ack_n, CAST(SUM(CASE WHEN ");
                    in_range(&mut qb, "alerts.acknowledged_at", lo, hi);
                    qb.push(format_args!(" THEN {ack} END) AS DOUBLE PRECISION) AS ack_sum, COUNT(CASE WHEN {closed}"));
                    in_range(&mut qb, "alerts.closed_at", lo, hi);
                    qb.push(format_args!(" THEN 1 END) AS res_n, CAST(SUM(CASE WHEN {closed}"));
                    in_range(&mut qb, "alerts.closed_at", lo, hi);
                    qb.push(format_args!(
                        " THEN {res} END) AS DOUBLE PRECISION) AS res_sum FROM alerts WHERE alerts.deleted_at IS NULL AND (("
                    ));
                    in_range(&mut qb, "alerts.acknowledged_at", lo, hi);
                    qb.push(") OR (");
                    in_range(&mut qb, "alerts.closed_at", lo, hi);
                    qb.push("))");
                    push_common(&mut qb, EXACT_TENANT, access, vis, q, tenants);
                    let times: TimesRow = qb.build_query_as().fetch_one(&self.reader).await?;
                    tally.add_times(times);
                    Ok(())
                }

                /// The roll-up's numbers over the hours `[first, end)` (indexes since 1970)
                /// for the caller's tenants except `except`, added to `tally`.
                async fn dashboard_rollup(
                    &self,
                    access: &AlertAccess,
                    q: &DashboardQuery,
                    (first, end): (i64, i64),
                    except: &[Uuid],
                    tally: &mut Tally,
                ) -> StoreResult<()> {
                    let conditions = |qb: &mut QueryBuilder<$db>| {
                        qb.push(" WHERE hour >= ").push_bind(first);
                        qb.push(" AND hour < ").push_bind(end);
                        push_scope(qb, "tenant_id", &access.scope);
                        if let Some(t) = q.tenant_id {
                            qb.push(" AND tenant_id = ").push_bind(t.0);
                        }
                        push_tenants(qb, "tenant_id", Tenants::Except(except));
                    };
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT tenant_id, source, {ROLLUP_SUMS} FROM alert_hourly"
                    ));
                    conditions(&mut qb);
                    qb.push(" GROUP BY tenant_id, source");
                    let rows: Vec<RollupRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    tally.add_rollup(rows);

                    let (key, unit) = bucket_key(q.bucket);
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {key} AS b, {ROLLUP_SEVERITY_SUMS} FROM alert_hourly"
                    ));
                    conditions(&mut qb);
                    qb.push(" GROUP BY 1");
                    let rows: Vec<RollupBucketRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    tally.add_rollup_buckets(rows, unit);
                    Ok(())
                }

                /// The per-tag-set roll-up's numbers over the hours `[first, end)` for the
                /// tenants `restricted` (where tag rules hide some alerts from the caller),
                /// summed over the tag sets the caller may see, added to `tally`. The tag sets
                /// are read under the name `alerts`: they are the alerts' `tenant_id` and `tags`
                /// values, so `push_alert_access` applies the very predicate the alert queries
                /// use, with the backend's same tag expression, once per distinct tag set rather
                /// than once per roll-up row. One read gives both the counts and the series.
                ///
                /// The tag sets come from a walk along `alert_hourly_tags_tag_sets` (migration
                /// 0022): one index seek per distinct tag set the tenant has ever had, after
                /// which only the visible tag sets' rows of the range are read (PostgreSQL, 30
                /// days of a 400,000-alert tenant with ~120 tag sets: 20 seeks and 9,300 rows
                /// instead of 77,600 rows read twice with their jsonb tag sets hashed, ~90-120
                /// -> ~25 ms). A tenant with more than [`TAG_SET_WALK_CAP`] tag sets (free-form
                /// tags) would make the walk long: its range's distinct tag sets are then read
                /// from the rows of the range, as before. Either way every tag set of the range
                /// is judged, so the result is exact.
                async fn dashboard_rollup_tags(
                    &self,
                    access: &AlertAccess,
                    vis: &Visibility,
                    q: &DashboardQuery,
                    (first, end): (i64, i64),
                    restricted: &[Uuid],
                    tally: &mut Tally,
                ) -> StoreResult<()> {
                    let (key, unit) = bucket_key(q.bucket);
                    let cells = |qb: &mut QueryBuilder<$db>, table: &str| {
                        qb.push(format_args!("{table}hour >= ")).push_bind(first);
                        qb.push(format_args!(" AND {table}hour < ")).push_bind(end);
                        if let Some(t) = q.tenant_id {
                            qb.push(format_args!(" AND {table}tenant_id = ")).push_bind(t.0);
                        }
                        push_tenants(qb, &format!("{table}tenant_id"), Tenants::Only(restricted));
                    };
                    // `walk(tenant_id, tags, n)`: per tenant, its tag sets in index order, the
                    // n-th in row n; the row after the last has no tags. With `cap`, a tenant's
                    // walk stops after row cap + 1.
                    let walk = |qb: &mut QueryBuilder<$db>, cap: Option<i64>| {
                        qb.push(
                            "WITH RECURSIVE walk(tenant_id, tags, n) AS (SELECT tenants.id, \
                             (SELECT x.tags FROM alert_hourly_tags x WHERE x.tenant_id = tenants.id \
                             ORDER BY x.tags LIMIT 1), 1 FROM tenants WHERE 1 = 1",
                        );
                        if let Some(t) = q.tenant_id {
                            qb.push(" AND tenants.id = ").push_bind(t.0);
                        }
                        push_tenants(qb, "tenants.id", Tenants::Only(restricted));
                        qb.push(
                            " UNION ALL SELECT walk.tenant_id, (SELECT x.tags FROM alert_hourly_tags x \
                             WHERE x.tenant_id = walk.tenant_id AND x.tags > walk.tags ORDER BY x.tags LIMIT 1), \
                             walk.n + 1 FROM walk WHERE walk.tags IS NOT NULL",
                        );
                        if let Some(cap) = cap {
                            qb.push(" AND walk.n <= ").push_bind(cap);
                        }
                        qb.push(") ");
                    };
                    let mut qb = QueryBuilder::<$db>::new("");
                    walk(&mut qb, Some(TAG_SET_WALK_CAP));
                    qb.push("SELECT CAST(COALESCE(MAX(walk.n), 0) AS BIGINT) FROM walk WHERE walk.tags IS NOT NULL");
                    let longest: i64 = qb.build_query_scalar().fetch_one(&self.reader).await?;

                    let mut qb = QueryBuilder::<$db>::new("");
                    let walked = longest <= TAG_SET_WALK_CAP;
                    if walked {
                        // Not capped: tag sets added since the check are walked too.
                        walk(&mut qb, None);
                    }
                    qb.push(format_args!(
                        "SELECT r.tenant_id AS tenant_id, r.source AS source, {key} AS b, {ROLLUP_SUMS} \
                         FROM alert_hourly_tags AS r WHERE "
                    ));
                    cells(&mut qb, "r.");
                    qb.push(" AND (r.tenant_id, r.tags) IN (SELECT alerts.tenant_id, alerts.tags FROM ");
                    if walked {
                        qb.push(
                            "(SELECT walk.tenant_id AS tenant_id, walk.tags AS tags FROM walk \
                             WHERE walk.tags IS NOT NULL) AS alerts WHERE 1 = 1",
                        );
                    } else {
                        qb.push("(SELECT DISTINCT tenant_id, tags FROM alert_hourly_tags WHERE ");
                        cells(&mut qb, "");
                        qb.push(") AS alerts WHERE 1 = 1");
                    }
                    push_common(&mut qb, "alerts.tenant_id", access, vis, q, Tenants::Only(restricted));
                    qb.push(") GROUP BY r.tenant_id, r.source, 3");
                    let rows: Vec<RollupTagRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    tally.add_rollup_tags(rows, unit);
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl DashboardStore for $store {
                async fn dashboard_stats(
                    &self,
                    access: &AlertAccess,
                    q: &DashboardQuery,
                ) -> StoreResult<DashboardStats> {
                    let vis = self.alert_visibility(access).await?;
                    let restricted: Vec<Uuid> = vis.restricted.keys().map(|t| t.0).collect();
                    let mut tally = Tally::default();
                    let parts = split(q.since, q.until);
                    match parts.hours {
                        Some(hours) => {
                            if !only_restricted(access, &vis, q) {
                                self.dashboard_rollup(access, q, hours, &restricted, &mut tally).await?;
                            }
                            if !restricted.is_empty() {
                                self.dashboard_rollup_tags(access, &vis, q, hours, &restricted, &mut tally)
                                    .await?;
                            }
                            for edge in parts.edges {
                                self.dashboard_exact(access, &vis, q, edge, Tenants::All, &mut tally).await?;
                            }
                        }
                        None => {
                            self.dashboard_exact(access, &vis, q, (q.since, q.until), Tenants::All, &mut tally)
                                .await?;
                        }
                    }
                    Ok(assemble(q, tally))
                }

                async fn rebuild_dashboard_rollup(&self) -> StoreResult<()> {
                    const IS_PG: bool = matches!(<$db as sqlx::Database>::NAME.as_bytes(), b"PostgreSQL");
                    const BACKFILL: &str = if IS_PG {
                        include_str!("sql/alert_hourly_backfill.postgres.sql")
                    } else {
                        include_str!("sql/alert_hourly_backfill.sqlite.sql")
                    };
                    const BACKFILL_TAGS: &str = if IS_PG {
                        include_str!("sql/alert_hourly_tags_backfill.postgres.sql")
                    } else {
                        include_str!("sql/alert_hourly_tags_backfill.sqlite.sql")
                    };
                    let mut tx = self.begin_write().await?;
                    sqlx::query("DELETE FROM alert_hourly").execute(&mut *tx).await?;
                    sqlx::query(BACKFILL).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM alert_hourly_tags").execute(&mut *tx).await?;
                    sqlx::query(BACKFILL_TAGS).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(())
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
        let mut tally = Tally::default();
        tally.add_counts(vec![row("high", "new", 2), row("low", "resolved", 1)]);
        tally.add_buckets(vec![
            ("2026-01-02T00:00:00Z".into(), "high".into(), 2),
            ("2026-01-02T00:00:00Z".into(), "low".into(), 1),
            ("garbage".into(), "high".into(), 9),
            ("2027-01-01T00:00:00Z".into(), "high".into(), 9),
        ]);
        let s = assemble(&q, tally);
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
        let s = assemble(&hourly, Tally::default());
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

    #[test]
    fn the_tenant_wide_rollup_is_skipped_only_when_every_tenant_restricts() {
        use crate::tag_access::Restriction;
        use bulwark_core::Scope;
        let (a, b) = (TenantId(Uuid::now_v7()), TenantId(Uuid::now_v7()));
        let mut vis = Visibility::everything();
        vis.restricted.insert(
            a,
            Restriction {
                tags: vec!["soc".into()],
                untagged: false,
            },
        );
        let access = |scope: Scope| AlertAccess {
            scope,
            bypass_tags: false,
            subjects: vec!["role:analyst".into()],
        };
        let q = |tenant_id: Option<TenantId>| DashboardQuery {
            tenant_id,
            since: at("2026-01-01T00:00:00Z"),
            until: at("2026-01-02T00:00:00Z"),
            bucket: Bucket::Day,
        };
        assert!(only_restricted(&access(Scope::single(a)), &vis, &q(None)));
        assert!(!only_restricted(
            &access(Scope::Tenants(vec![a, b])),
            &vis,
            &q(None)
        ));
        assert!(only_restricted(
            &access(Scope::Tenants(vec![a, b])),
            &vis,
            &q(Some(a))
        ));
        assert!(!only_restricted(
            &access(Scope::Tenants(vec![a, b])),
            &vis,
            &q(Some(b))
        ));
        assert!(!only_restricted(&access(Scope::AllTenants), &vis, &q(None)));
        assert!(only_restricted(
            &access(Scope::AllTenants),
            &vis,
            &q(Some(a))
        ));
        assert!(!only_restricted(
            &access(Scope::single(a)),
            &Visibility::everything(),
            &q(None)
        ));
    }

    #[test]
    fn a_range_splits_into_whole_hours_and_exact_edges() {
        let since = at("2026-01-01T10:30:00Z");
        let until = at("2026-01-01T14:00:00.5Z");
        let h = hour_index(at("2026-01-01T11:00:00Z"));
        assert_eq!(
            split(since, until),
            Split {
                hours: Some((h, h + 3)),
                edges: vec![
                    (since, at("2026-01-01T11:00:00Z")),
                    (at("2026-01-01T14:00:00Z"), until)
                ],
            }
        );
        // Aligned ends: no edge.
        let (a, b) = (at("2026-01-01T10:00:00Z"), at("2026-01-01T12:00:00Z"));
        assert_eq!(split(a, b).edges, vec![]);
        assert_eq!(split(a, b).hours, Some((h - 1, h + 1)));
        // Within one hour, or less than a whole hour: exact only.
        let (a, b) = (at("2026-01-01T10:10:00Z"), at("2026-01-01T11:50:00Z"));
        assert_eq!(
            split(a, b),
            Split {
                hours: None,
                edges: vec![(a, b)]
            }
        );
        // Before 1970 the hours floor too.
        assert_eq!(hour_index(at("1969-12-31T23:30:00Z")), -1);
    }

    #[test]
    fn rollup_rows_add_up_like_exact_rows() {
        let t = Uuid::now_v7();
        let mut tally = Tally::default();
        tally.add_rollup(vec![RollupRow {
            tenant_id: t,
            source: "wazuh".into(),
            sev_critical: 1,
            sev_high: 2,
            sev_medium: 0,
            sev_low: 0,
            sev_info: 0,
            st_new: 1,
            st_triaged: 0,
            st_in_progress: 0,
            st_escalated: 0,
            st_resolved: 2,
            st_false_positive: 0,
            ack_n: 2,
            ack_seconds: 100.0,
            res_n: 1,
            res_seconds: 30.0,
        }]);
        tally.add_rollup_buckets(
            vec![RollupBucketRow {
                b: hour_index(at("2026-01-01T00:00:00Z")) / 24,
                sev_critical: 1,
                sev_high: 2,
                sev_medium: 0,
                sev_low: 0,
                sev_info: 0,
            }],
            24,
        );
        tally.add_times(TimesRow {
            ack_n: 1,
            ack_sum: Some(50.0),
            res_n: 0,
            res_sum: None,
        });
        let q = DashboardQuery {
            tenant_id: None,
            since: at("2026-01-01T00:00:00Z"),
            until: at("2026-01-02T00:00:00Z"),
            bucket: Bucket::Day,
        };
        let s = assemble(&q, tally);
        assert_eq!((s.total, s.open, s.closed), (3, 1, 2));
        assert_eq!(s.by_source["wazuh"], 3);
        assert_eq!(
            s.by_tenant,
            vec![TenantCount {
                tenant_id: TenantId(t),
                count: 3
            }]
        );
        assert_eq!(s.series[0].count, 3);
        assert_eq!(
            s.mtta,
            MeanTime {
                mean_seconds: Some(50.0),
                samples: 3
            }
        );
        assert_eq!(
            s.mttr,
            MeanTime {
                mean_seconds: Some(30.0),
                samples: 1
            }
        );
    }
}
