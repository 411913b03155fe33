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
    /// malicious, suspicious, benign or unknown; none when not assessed.
    pub verdict: Option<String>,
    /// 0 (harmless) to 100; none when not assessed.
    pub reputation_score: Option<i64>,
    /// The intel services behind the reputation, most severe first.
    #[sqlx(json)]
    pub reputation_sources: Vec<crate::enrichment::ReputationSource>,
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

/// Separates the fields in PostgreSQL's search expression, so a match never spans two fields.
pub(crate) const SEARCH_SEPARATOR: char = '\u{1f}';

/// The expression PostgreSQL's trigram index covers (migration 0009); the query must repeat it
/// exactly for the index to be used.
pub(crate) const PG_SEARCH_EXPR: &str = "lower(alerts.title || E'\\x1f' || COALESCE(alerts.description, '') \
     || E'\\x1f' || COALESCE(alerts.rule_name, ''))";

/// How the queue finds the alerts of a filter that has an index but does not give the queue
/// order (text, tag, address, observable, a time window in the past).
///
/// PostgreSQL decides itself, from its statistics. SQLite has none (Bulwark never runs
/// ANALYZE), so the store asks first: a bounded count over the filter's index. Below the
/// bound, the matching ids come from that index alone and the page is read from them in id
/// order (`alerts.id IN (...)`). At or above it, matching alerts are common enough that
/// reading the queue in order and testing each alert fills a page sooner.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Collect the matching ids from the filter's index.
    Index,
    /// Read the queue in order and test each alert.
    Walk,
}

/// How a time window is read (see `window_ids`).
pub(crate) enum Window {
    /// Few alerts on its far side: plain conditions.
    Plain,
    /// No alert at all in it.
    Empty,
    /// Bounded by its lowest and highest alert id.
    Ids(Uuid, Uuid),
}

/// On SQLite, filters matching fewer alerts than this are read through their index.
pub(crate) const INDEX_BELOW: i64 = 20_000;

/// Where a text search switches from the trigram index to the walk, for a table of `alerts`.
///
/// Reading `m` candidates through the index costs about `m` lookups (~2 µs each: the trigram
/// row, then the alert); walking the queue for a page of 50 reads about `50 * alerts / m`
/// alerts (~2.5 µs each, LIKE over three fields). They cost the same at
/// `m = sqrt(62.5 * alerts)`: 7,900 candidates at a million alerts, where either way is
/// ~16 ms. A fixed bound is wrong for every size but one: at a million alerts a bound of
/// 5,000 sent a 0.5% word (5,000 candidates) to a 25 ms walk instead of an 11 ms index read.
pub(crate) fn text_index_below(alerts: i64) -> i64 {
    ((62.5 * alerts.max(0) as f64).sqrt() as i64).clamp(1_000, 50_000)
}
/// A time window whose far side (newer alerts, when newest first) holds at least this many
/// alerts is bounded by id first (see `window_ids`).
pub(crate) const WINDOW_SKIP_FROM: i64 = 5_000;
/// How far a window's id bounds reach beyond it (see `window_ids`).
pub(crate) const WINDOW_SLACK: chrono::Duration = chrono::Duration::minutes(1);

/// The trigrams of `text` as an FTS5 query that all must match. The index keeps no positions
/// (`detail = none`, a third of the write cost of a positional trigram index), so it finds a
/// superset of the alerts containing `text`; the caller rechecks with LIKE. At most 32
/// trigrams are asked for: more narrow little and cost a lookup each.
pub(crate) fn fts_trigrams(text: &str) -> String {
    let chars: Vec<char> = text.to_lowercase().chars().collect();
    let mut terms: Vec<String> = Vec::new();
    for w in chars.windows(3) {
        let t: String = w.iter().collect();
        let quoted = format!("\"{}\"", t.replace('"', "\"\""));
        if !terms.contains(&quoted) {
            terms.push(quoted);
        }
        if terms.len() == 32 {
            break;
        }
    }
    terms.join(" AND ")
}

/// Tag filters and tag rules use the backend's `ALERT_TAG_VALUES` expression.
macro_rules! impl_alerts {
    ($store:ident, $db:ty) => {
        mod alerts_impl {
            use super::$store;
            use $crate::alerts::{AlertDetail, AlertFilter, AlertObservable, AlertSummary, DetailRow, SUMMARY_COLUMNS};
            use $crate::alerts::{
                fts_trigrams, text_index_below, Access, Window, INDEX_BELOW, PG_SEARCH_EXPR, SEARCH_SEPARATOR,
                WINDOW_SKIP_FROM, WINDOW_SLACK,
            };
            use bulwark_core::ids::{v7_highest, v7_lowest};
            use $crate::scope_sql::push_scope;
            use $crate::tag_access::push_alert_access;
            use $crate::{AlertStore, StoreError, StoreResult};
            use bulwark_core::AlertAccess;
            use chrono::{DateTime, Utc};
            use sqlx::{AssertSqlSafe, QueryBuilder};
            use uuid::Uuid;

            const IS_PG: bool = matches!(<$db as sqlx::Database>::NAME.as_bytes(), b"PostgreSQL");

            impl $store {
                /// SQLite: `Index` when fewer than `below` rows of `probe` (one parameter, the
                /// filter value) exist, else `Walk`. The count stops at `below`, so a common
                /// value costs no more than that many index entries.
                async fn access_for(&self, probe: &str, value: String, below: i64) -> StoreResult<Access> {
                    let sql = format!("SELECT COUNT(*) FROM ({probe} LIMIT $2) n");
                    let (found,): (i64,) = sqlx::query_as(AssertSqlSafe(sql))
                        .bind(value)
                        .bind(below)
                        .fetch_one(&self.reader)
                        .await?;
                    Ok(if found < below { Access::Index } else { Access::Walk })
                }

                /// How to read a time window `[since, until)` (either end may be open). A window
                /// far from where the queue starts reading (the newest alert, or the oldest with
                /// `oldest_first`) is bounded by id, so the queue starts reading at the window
                /// instead of skipping every alert after (or before) it. No query finds the
                /// bounds: an alert's `first_seen` is its UUIDv7's millisecond (the store sets it
                /// so on insert), so the window's alerts lie between the lowest id of `since`'s
                /// millisecond and the highest of `until`'s (an open end is the lowest or highest
                /// id there is). `WINDOW_SLACK` widens that for alerts stored before first_seen
                /// was taken from the id (then a few milliseconds apart); the first_seen
                /// conditions keep the result exact either way.
                async fn window_ids(
                    &self,
                    since: Option<DateTime<Utc>>,
                    until: Option<DateTime<Utc>>,
                    oldest_first: bool,
                ) -> StoreResult<Window> {
                    if let (Some(s), Some(u)) = (since, until)
                        && s >= u
                    {
                        return Ok(Window::Empty);
                    }
                    // The side the queue starts reading from; an open end there means the
                    // window starts where the queue does.
                    let (far_side, bound) = match (oldest_first, since, until) {
                        (true, Some(s), _) => ("SELECT 1 FROM alerts a WHERE a.first_seen < $1", s),
                        (false, _, Some(u)) => ("SELECT 1 FROM alerts a WHERE a.first_seen >= $1", u),
                        _ => return Ok(Window::Plain),
                    };
                    let sql = format!("SELECT COUNT(*) FROM ({far_side} LIMIT $2) n");
                    let (skipped,): (i64,) = sqlx::query_as(AssertSqlSafe(sql))
                        .bind(bound)
                        .bind(WINDOW_SKIP_FROM)
                        .fetch_one(&self.reader)
                        .await?;
                    if skipped < WINDOW_SKIP_FROM {
                        return Ok(Window::Plain);
                    }
                    let lo = since.map_or(Uuid::nil(), |s| v7_lowest(s.checked_sub_signed(WINDOW_SLACK).unwrap_or(s)));
                    let hi = until.map_or(Uuid::max(), |u| v7_highest(u.checked_add_signed(WINDOW_SLACK).unwrap_or(u)));
                    Ok(Window::Ids(lo, hi))
                }
            }

            #[async_trait::async_trait]
            impl AlertStore for $store {
                async fn list_alerts(&self, access: &AlertAccess, f: &AlertFilter) -> StoreResult<Vec<AlertSummary>> {
                    let vis = self.alert_visibility(access).await?;
                    // Decisions that need a look at the data first (see `Access`).
                    let text_access = match &f.text {
                        // The trigram index needs 3 characters.
                        Some(t) if !IS_PG && t.chars().count() >= 3 => {
                            // The highest search rowid counts the alerts ever stored, in
                            // one index step.
                            let (total,): (Option<i64>,) = sqlx::query_as("SELECT MAX(rowid) FROM alert_search")
                                .fetch_one(&self.reader)
                                .await?;
                            Some(
                                self.access_for(
                                    "SELECT 1 FROM alert_search_fts WHERE alert_search_fts MATCH $1",
                                    fts_trigrams(t),
                                    text_index_below(total.unwrap_or(0)),
                                )
                                .await?,
                            )
                        }
                        _ => None,
                    };
                    let tag_access = match &f.tag {
                        Some(t) if !IS_PG => Some(
                            self.access_for("SELECT 1 FROM alert_tags WHERE tag = $1", t.clone(), INDEX_BELOW)
                                .await?,
                        ),
                        _ => None,
                    };
                    let ip_access = match &f.ip {
                        Some(ip) if !IS_PG => Some(
                            self.access_for(
                                "SELECT 1 FROM alerts a WHERE a.source_ip = $1 \
                                 UNION ALL SELECT 1 FROM alerts a WHERE a.dest_ip = $1",
                                ip.clone(),
                                INDEX_BELOW,
                            )
                            .await?,
                        ),
                        _ => None,
                    };
                    // The observables carrying the value (in the caller's scope), then their
                    // alerts: with the ids as constants, PostgreSQL's statistics on the links
                    // tell a value on a few alerts from one on tens of thousands.
                    let mut observable_ids: Vec<Uuid> = Vec::new();
                    let mut observable_access = Access::Index;
                    if let Some(v) = &f.observable {
                        let mut q = QueryBuilder::<$db>::new("SELECT o.id FROM observables o WHERE o.value = ");
                        q.push_bind(v.clone());
                        push_scope(&mut q, "o.tenant_id", &access.scope);
                        if let Some(t) = f.tenant_id {
                            q.push(" AND o.tenant_id = ").push_bind(t.0);
                        }
                        observable_ids = q.build_query_scalar().fetch_all(&self.reader).await?;
                        if observable_ids.is_empty() {
                            return Ok(Vec::new());
                        }
                        if !IS_PG {
                            let mut q = QueryBuilder::<$db>::new(
                                "SELECT COUNT(*) FROM (SELECT 1 FROM alert_observables l WHERE l.observable_id IN (",
                            );
                            let mut sep = q.separated(", ");
                            for id in &observable_ids {
                                sep.push_bind(*id);
                            }
                            q.push(") LIMIT ").push_bind(INDEX_BELOW).push(") n");
                            let found: i64 = q.build_query_scalar().fetch_one(&self.reader).await?;
                            if found >= INDEX_BELOW {
                                observable_access = Access::Walk;
                            }
                        }
                    }
                    let window = match (f.since, f.until) {
                        (None, None) => None,
                        (since, until) => match self.window_ids(since, until, f.oldest_first).await? {
                            Window::Empty => return Ok(Vec::new()),
                            Window::Ids(lo, hi) => Some((lo, hi)),
                            Window::Plain => None,
                        },
                    };

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
                        if ip_access == Some(Access::Index) {
                            // The ids from the two address indexes alone.
                            qb.push(" AND alerts.id IN (SELECT a.id FROM alerts a WHERE a.source_ip = ")
                                .push_bind(ip.clone());
                            qb.push(" UNION ALL SELECT a.id FROM alerts a WHERE a.dest_ip = ")
                                .push_bind(ip.clone());
                            qb.push(")");
                        } else {
                            // SQLite: `+` keeps the address indexes out of a walk.
                            let p = if IS_PG { "" } else { "+" };
                            qb.push(format_args!(" AND ({p}alerts.source_ip = ")).push_bind(ip.clone());
                            qb.push(format_args!(" OR {p}alerts.dest_ip = ")).push_bind(ip.clone());
                            qb.push(")");
                        }
                    }
                    if let Some(tag) = &f.tag {
                        if IS_PG {
                            // The GIN index on tags (migration 0009).
                            qb.push(" AND alerts.tags @> ").push_bind(sqlx::types::Json([tag.clone()]));
                        } else if tag_access == Some(Access::Index) {
                            qb.push(" AND alerts.id IN (SELECT t.alert_id FROM alert_tags t WHERE t.tag = ")
                                .push_bind(tag.clone());
                            qb.push(")");
                        } else {
                            qb.push(format_args!(" AND EXISTS (SELECT 1 FROM {} = ", Self::ALERT_TAG_VALUES))
                                .push_bind(tag.clone());
                            qb.push(")");
                        }
                    }
                    // With a window's id range, SQLite must read by id, not by first_seen (`+`).
                    let time_column = if window.is_some() && !IS_PG { "+alerts.first_seen" } else { "alerts.first_seen" };
                    if let Some(s) = f.since {
                        qb.push(format_args!(" AND {time_column} >= ")).push_bind(s);
                    }
                    if let Some(u) = f.until {
                        qb.push(format_args!(" AND {time_column} < ")).push_bind(u);
                    }
                    if let Some((lo, hi)) = window {
                        qb.push(" AND alerts.id >= ").push_bind(lo);
                        qb.push(" AND alerts.id <= ").push_bind(hi);
                    }
                    if let Some(text) = &f.text {
                        // LIKE wildcards in the search text match themselves.
                        let pattern = format!(
                            "%{}%",
                            text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                        );
                        if IS_PG && !text.contains(SEARCH_SEPARATOR) {
                            // The trigram index over the three fields (migration 0009).
                            qb.push(format_args!(" AND {PG_SEARCH_EXPR} LIKE ")).push_bind(pattern);
                            qb.push(" ESCAPE '\\'");
                        } else if text_access == Some(Access::Index) {
                            // SQLite's trigram index finds the candidates; LIKE keeps the alerts
                            // that really contain the text.
                            qb.push(
                                " AND alerts.id IN (SELECT s.alert_id FROM alert_search s WHERE s.rowid IN \
                                 (SELECT rowid FROM alert_search_fts WHERE alert_search_fts MATCH ",
                            )
                            .push_bind(fts_trigrams(text));
                            qb.push("))");
                            qb.push(" AND (LOWER(alerts.title) LIKE ").push_bind(pattern.clone());
                            qb.push(" ESCAPE '\\' OR LOWER(COALESCE(alerts.description, '')) LIKE ").push_bind(pattern.clone());
                            qb.push(" ESCAPE '\\' OR LOWER(COALESCE(alerts.rule_name, '')) LIKE ").push_bind(pattern.clone());
                            qb.push(" ESCAPE '\\')");
                        } else {
                            qb.push(" AND (LOWER(alerts.title) LIKE ").push_bind(pattern.clone());
                            qb.push(" ESCAPE '\\' OR LOWER(COALESCE(alerts.description, '')) LIKE ").push_bind(pattern.clone());
                            qb.push(" ESCAPE '\\' OR LOWER(COALESCE(alerts.rule_name, '')) LIKE ").push_bind(pattern);
                            qb.push(" ESCAPE '\\')");
                        }
                    }
                    if !observable_ids.is_empty() {
                        if observable_access == Access::Walk {
                            qb.push(
                                " AND EXISTS (SELECT 1 FROM alert_observables l \
                                 WHERE l.alert_id = alerts.id AND l.observable_id IN (",
                            );
                        } else {
                            qb.push(" AND alerts.id IN (SELECT l.alert_id FROM alert_observables l WHERE l.observable_id IN (");
                        }
                        let mut sep = qb.separated(", ");
                        for id in &observable_ids {
                            sep.push_bind(*id);
                        }
                        qb.push("))");
                    }
                    let (cmp, order) = if f.oldest_first { (">", "ASC") } else { ("<", "DESC") };
                    if let Some(after) = f.after {
                        qb.push(format_args!(" AND alerts.id {cmp} ")).push_bind(after);
                    }
                    qb.push(format_args!(" ORDER BY alerts.id {order} LIMIT "))
                        .push_bind(i64::from(f.limit));
                    // PostgreSQL: plan every page for its own values, never a cached generic
                    // plan: how selective a filter is decides the plan (reading the queue in
                    // order for a common word, the trigram index and a sort for a rare one).
                    Ok(qb.build_query_as().persistent(!IS_PG).fetch_all(&self.reader).await?)
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
                        "SELECT o.id, o.kind, o.value, o.is_private, o.sightings, o.verdict, o.reputation_score, o.reputation_sources \
                         FROM alert_observables l \
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

                async fn get_alerts(&self, access: &AlertAccess, ids: &[Uuid]) -> StoreResult<Vec<AlertDetail>> {
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let vis = self.alert_visibility(access).await?;
                    let mut out: Vec<AlertDetail> = Vec::with_capacity(ids.len());
                    for chunk in ids.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new(format!(
                            "SELECT {SUMMARY_COLUMNS}, alerts.description, alerts.severity_original, alerts.rule_id, \
                             alerts.username, alerts.event_time, alerts.resolve_reason, alerts.acknowledged_at, \
                             alerts.closed_at, alerts.normalized, alerts.raw_payload, alerts.latest_payload \
                             FROM alerts WHERE alerts.deleted_at IS NULL AND alerts.id IN ("
                        ));
                        let mut sep = qb.separated(", ");
                        for id in chunk {
                            sep.push_bind(*id);
                        }
                        qb.push(")");
                        push_alert_access(&mut qb, access, &vis, Self::ALERT_TAG_VALUES);
                        let rows: Vec<DetailRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                        if rows.is_empty() {
                            continue;
                        }
                        let mut qb = QueryBuilder::<$db>::new(
                            "SELECT l.alert_id, o.id, o.kind, o.value, o.is_private, o.sightings, o.verdict, o.reputation_score, \
                             o.reputation_sources FROM alert_observables l \
                             JOIN observables o ON o.id = l.observable_id WHERE l.alert_id IN (",
                        );
                        let mut sep = qb.separated(", ");
                        for r in &rows {
                            sep.push_bind(r.summary.id);
                        }
                        qb.push(") ORDER BY o.kind, o.value");
                        #[derive(sqlx::FromRow)]
                        struct ObservableOf {
                            alert_id: Uuid,
                            #[sqlx(flatten)]
                            observable: AlertObservable,
                        }
                        let observables: Vec<ObservableOf> = qb.build_query_as().fetch_all(&self.reader).await?;
                        let mut qb = QueryBuilder::<$db>::new(
                            "SELECT l.alert_id, i.id, i.number, i.title, i.status, i.severity FROM incident_alerts l \
                             JOIN incidents i ON i.id = l.incident_id WHERE i.deleted_at IS NULL AND l.alert_id IN (",
                        );
                        let mut sep = qb.separated(", ");
                        for r in &rows {
                            sep.push_bind(r.summary.id);
                        }
                        qb.push(") ORDER BY i.id");
                        let incidents: Vec<(Uuid, Uuid, i64, String, String, String)> =
                            qb.build_query_as().fetch_all(&self.reader).await?;
                        let mut by_alert: std::collections::HashMap<Uuid, (Vec<AlertObservable>, Vec<crate::alert_triage::LinkedIncident>)> =
                            std::collections::HashMap::new();
                        for o in observables {
                            by_alert.entry(o.alert_id).or_default().0.push(o.observable);
                        }
                        for (alert, id, number, title, status, severity) in incidents {
                            by_alert.entry(alert).or_default().1.push(crate::alert_triage::LinkedIncident {
                                id,
                                number,
                                title,
                                status,
                                severity,
                            });
                        }
                        for row in rows {
                            let (observables, incidents) = by_alert.remove(&row.summary.id).unwrap_or_default();
                            out.push(AlertDetail {
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
                            });
                        }
                    }
                    Ok(out)
                }
            }
        }
    };
}

pub(crate) use impl_alerts;

#[cfg(test)]
mod tests {
    use super::text_index_below;

    #[test]
    fn text_search_switches_to_the_walk_where_both_cost_the_same() {
        // At a million alerts: ~7,900 candidates.
        assert_eq!(text_index_below(1_000_000), 7_905);
        // Small tables still read a rare word through the index; huge ones stop at 50,000.
        assert_eq!(text_index_below(0), 1_000);
        assert_eq!(text_index_below(-5), 1_000);
        assert_eq!(text_index_below(1_000_000_000), 50_000);
        assert!(text_index_below(100_000) < text_index_below(1_000_000));
    }
}
