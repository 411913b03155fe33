//! Observables (IOCs): the list with filters and keyset pagination, one observable with its
//! sightings (the alerts and incidents it appears in), manual additions and analyst changes.
//!
//! Access: observables are tenant data (the caller's scope applies), and they are derived from
//! alerts, so tag-based access applies to them too (`push_observable_access`): in a tenant that
//! restricts alerts by tag, a non-admin caller sees an observable only when it was added by
//! hand or when at least one alert carrying it is visible to them. The alerts and incidents of
//! an observable's sightings are always filtered by the caller's tag rules.
//!
//! The per-tenant `sightings` counter is kept by ingestion and counts every alert carrying the
//! observable (as the alert view shows it); `alerts_total` in the detail counts only the
//! alerts the caller may see.

use crate::alerts::AlertSummary;
use crate::tag_access::{Visibility, push_alert_access};
use bulwark_core::{AlertAccess, TenantId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Database, Encode, QueryBuilder, Type};
use uuid::Uuid;

/// The verdicts an observable may carry (none yet: not assessed).
pub const VERDICTS: &[&str] = &["malicious", "suspicious", "benign", "unknown"];
/// Where an observable came from: extracted from an alert, or added by an analyst.
pub const ORIGINS: &[&str] = &["alert", "manual"];
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_BYTES: usize = 128;
pub const MAX_DESCRIPTION_BYTES: usize = 10_000;

/// The order of the list (both newest/largest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObservableSort {
    #[default]
    LastSeen,
    Sightings,
}

/// How `q` matches values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchMode {
    #[default]
    Contains,
    Prefix,
    Exact,
}

/// Keyset position: the sort key and id of the last item of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservableCursor {
    LastSeen(DateTime<Utc>, Uuid),
    Sightings(i64, Uuid),
}

impl ObservableCursor {
    pub fn of(sort: ObservableSort, o: &Observable) -> Self {
        match sort {
            ObservableSort::LastSeen => ObservableCursor::LastSeen(o.last_seen, o.id),
            ObservableSort::Sightings => ObservableCursor::Sightings(o.sightings, o.id),
        }
    }

    pub fn sort(&self) -> ObservableSort {
        match self {
            ObservableCursor::LastSeen(..) => ObservableSort::LastSeen,
            ObservableCursor::Sightings(..) => ObservableSort::Sightings,
        }
    }

    /// An opaque token: `l<µs since epoch>_<id>` or `s<sightings>_<id>`.
    pub fn encode(&self) -> String {
        match self {
            ObservableCursor::LastSeen(t, id) => {
                format!("l{}_{}", t.timestamp_micros(), id.simple())
            }
            ObservableCursor::Sightings(n, id) => format!("s{n}_{}", id.simple()),
        }
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (head, id) = s.split_once('_')?;
        let id = Uuid::try_parse(id).ok()?;
        let mut chars = head.chars();
        let tag = chars.next()?;
        let n: i64 = chars.as_str().parse().ok()?;
        match tag {
            'l' => Some(ObservableCursor::LastSeen(
                DateTime::from_timestamp_micros(n)?,
                id,
            )),
            's' => Some(ObservableCursor::Sightings(n, id)),
            _ => None,
        }
    }
}

/// Filters of the observable list; every one given must match.
#[derive(Debug, Clone, Default)]
pub struct ObservableFilter {
    pub tenant_id: Option<TenantId>,
    /// One of `bulwark_normalize::IndicatorKind`'s names.
    pub kind: Option<String>,
    /// Text in the value: case-insensitive, except for URLs (whose paths are case-sensitive).
    /// An exact match with `kind` given compares the value as given: pass it canonical
    /// (`bulwark_normalize::normalize_indicator`).
    pub q: Option<String>,
    pub match_mode: MatchMode,
    pub tag: Option<String>,
    pub verdict: Option<String>,
    pub origin: Option<String>,
    /// Last seen at or after.
    pub since: Option<DateTime<Utc>>,
    pub sort: ObservableSort,
    pub after: Option<ObservableCursor>,
    pub limit: u32,
}

/// An observable as the list shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Observable {
    pub id: Uuid,
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
    /// ipv4, ipv6, domain, url, email, md5, sha1, sha256, sha512 or cve.
    pub kind: String,
    /// Canonical form (see docs/observables.md).
    pub value: String,
    /// IPs only: not publicly routable.
    pub is_private: bool,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Alerts of the tenant carrying it (one per alert, counted at ingestion; tag rules not
    /// applied).
    pub sightings: i64,
    #[sqlx(json)]
    pub tags: Vec<String>,
    /// `alert` (extracted at ingestion) or `manual` (added by an analyst).
    pub origin: String,
    pub description: Option<String>,
    /// 0 (harmless) to 100 (certainly malicious); none when not assessed.
    pub reputation_score: Option<i64>,
    /// malicious, suspicious, benign or unknown; none when not assessed.
    pub verdict: Option<String>,
    /// When enrichment last filled `enrichment`.
    pub enriched_at: Option<DateTime<Utc>>,
    /// The intel services behind the reputation (automatic enrichment), most severe first.
    #[sqlx(json)]
    pub reputation_sources: Vec<crate::enrichment::ReputationSource>,
    /// Who set verdict and score: `enrichment`, or `analyst` (enrichment then leaves them
    /// alone); none when not assessed.
    pub verdict_origin: Option<String>,
}

pub(crate) const OBSERVABLE_COLUMNS: &str = "observables.id, observables.tenant_id, observables.kind, \
     observables.value, observables.is_private, observables.first_seen, observables.last_seen, \
     observables.sightings, observables.tags, observables.origin, observables.description, \
     observables.reputation_score, observables.verdict, observables.enriched_at, \
     observables.reputation_sources, observables.verdict_origin";

/// An incident an observable appears in (through one of its alerts).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ObservableIncident {
    pub id: Uuid,
    pub number: i64,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// One observable with its enrichment data and its sightings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ObservableDetail {
    #[serde(flatten)]
    pub observable: Observable,
    /// What enrichment found (provider results), as stored.
    #[schema(value_type = Option<Object>)]
    pub enrichment: Option<serde_json::Value>,
    /// Alerts carrying it that the caller may see, newest first, at most `sightings_limit`.
    pub alerts: Vec<AlertSummary>,
    /// All alerts carrying it that the caller may see, counted up to [`SIGHTINGS_COUNT_CAP`].
    pub alerts_total: i64,
    /// True when there are more than [`SIGHTINGS_COUNT_CAP`] such alerts (`alerts_total` is
    /// then the cap, not the count).
    pub alerts_total_capped: bool,
    /// Incidents (not deleted) linking those alerts, newest first, at most `sightings_limit`.
    pub incidents: Vec<ObservableIncident>,
    /// All such incidents while the alerts are under [`SIGHTINGS_COUNT_CAP`]; beyond it, the
    /// incidents listed (with `incidents_total_capped` when the list is full: there may be
    /// more).
    pub incidents_total: i64,
    pub incidents_total_capped: bool,
}

pub(crate) const INCIDENT_COLUMNS: &str =
    "i.id, i.number, i.title, i.severity, i.status, i.created_at, i.closed_at";

/// How far the detail counts an observable's alerts and incidents: an observable seen on
/// 100,000 alerts cost 0.8 s to count exactly, and a number that large only needs to say
/// "more than 1,000".
pub const SIGHTINGS_COUNT_CAP: i64 = 1_000;

/// What the detail includes.
#[derive(Debug, Clone, Copy)]
pub struct SightingOptions {
    /// At most this many alerts and this many incidents.
    pub limit: u32,
    /// Incidents are listed only for callers who may read incidents.
    pub incidents: bool,
}

/// An observable added by hand. `kind` and `value` must already be validated and canonical
/// (`bulwark_normalize::normalize_indicator`).
#[derive(Debug, Clone)]
pub struct NewObservable {
    pub tenant_id: TenantId,
    pub kind: String,
    pub value: String,
    pub is_private: bool,
    pub tags: Vec<String>,
    pub description: Option<String>,
}

/// The answer to a manual addition.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    Created(Box<Observable>),
    /// The tenant already has this (kind, value); nothing was changed.
    Exists(Uuid),
}

/// A partial update; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ObservablePatch {
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub reputation_score: Option<Option<i64>>,
    pub verdict: Option<Option<String>>,
}

impl ObservablePatch {
    pub fn is_empty(&self) -> bool {
        self.tags.is_none()
            && self.description.is_none()
            && self.reputation_score.is_none()
            && self.verdict.is_none()
    }
}

/// Trims, checks and de-duplicates tags (order kept).
pub fn clean_tags(tags: &[String]) -> Result<Vec<String>, (&'static str, String)> {
    if tags.len() > MAX_TAGS {
        return Err(("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, t) in tags.iter().enumerate() {
        let t = t.trim();
        if t.is_empty() || t.len() > MAX_TAG_BYTES || t.chars().any(char::is_control) {
            return Err((
                "tags",
                format!("tag {i}: must be 1 to {MAX_TAG_BYTES} bytes without control characters"),
            ));
        }
        if !out.iter().any(|x| x == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// Checks a description (`None` is fine).
pub fn check_description(d: Option<&str>) -> Result<(), (&'static str, String)> {
    match d {
        Some(d) if d.len() > MAX_DESCRIPTION_BYTES => Err((
            "description",
            format!("at most {MAX_DESCRIPTION_BYTES} bytes"),
        )),
        // PostgreSQL text cannot hold NUL.
        Some(d) if d.contains('\0') => Err(("description", "must not contain NUL".into())),
        _ => Ok(()),
    }
}

/// Checks a patch; the error names the field.
pub fn validate_patch(p: &ObservablePatch) -> Result<(), (&'static str, String)> {
    if let Some(tags) = &p.tags {
        clean_tags(tags)?;
    }
    if let Some(d) = &p.description {
        check_description(d.as_deref())?;
    }
    if let Some(Some(score)) = p.reputation_score
        && !(0..=100).contains(&score)
    {
        return Err(("reputation_score", "must be 0 to 100".into()));
    }
    if let Some(Some(v)) = &p.verdict
        && !VERDICTS.contains(&v.as_str())
    {
        return Err((
            "verdict",
            format!("expected one of {}", VERDICTS.join(", ")),
        ));
    }
    Ok(())
}

/// Appends the tenant scope and the tag rules for observables (the table must be named
/// `observables`): in a tenant that restricts by tag, an observable is visible when it was
/// added by hand or when one of the alerts carrying it is visible (`push_alert_access`).
pub(crate) fn push_observable_access<DB>(
    qb: &mut QueryBuilder<DB>,
    access: &AlertAccess,
    vis: &Visibility,
    alert_tag_values: &str,
) where
    DB: Database,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> String: Encode<'a, DB> + Type<DB>,
{
    crate::scope_sql::push_scope(qb, "observables.tenant_id", &access.scope);
    if vis.restricted.is_empty() {
        return;
    }
    qb.push(" AND (observables.tenant_id NOT IN (");
    let mut sep = qb.separated(", ");
    for t in vis.restricted.keys() {
        sep.push_bind(t.0);
    }
    qb.push(
        ") OR observables.origin = 'manual' OR EXISTS (SELECT 1 FROM alert_observables vl \
         JOIN alerts ON alerts.id = vl.alert_id WHERE vl.observable_id = observables.id \
         AND alerts.deleted_at IS NULL",
    );
    push_alert_access(qb, access, vis, alert_tag_values);
    qb.push("))");
}

/// `LIKE` pattern for `text`, with the wildcards in it matching themselves (`ESCAPE '\'`).
pub(crate) fn like_pattern(text: &str, prefix_only: bool) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    if prefix_only {
        format!("{escaped}%")
    } else {
        format!("%{escaped}%")
    }
}

/// Per backend: `$store::ALERT_TAG_VALUES`, `$store::OBSERVABLE_TAG_VALUES` and
/// `$store::STRPOS` (the case-sensitive substring position function); `$for_update` locks the
/// row read before a change (PostgreSQL).
macro_rules! impl_observables {
    ($store:ident, $db:ty, $for_update:literal) => {
        mod observables_impl {
            use super::$store;
            use $crate::alerts::{AlertSummary, SUMMARY_COLUMNS};
            use $crate::observables::{
                like_pattern, push_observable_access, validate_patch, CreateOutcome, MatchMode, NewObservable,
                Observable, ObservableCursor, ObservableDetail, ObservableFilter, ObservableIncident,
                ObservablePatch, ObservableSort, SightingOptions, INCIDENT_COLUMNS, OBSERVABLE_COLUMNS, SIGHTINGS_COUNT_CAP,
            };
            use $crate::tag_access::{push_alert_access, Visibility};
            use $crate::{ChangeCtx, ObservableStore, StoreError, StoreResult};
            use bulwark_audit::EventType;
            use bulwark_core::AlertAccess;
            use serde_json::json;
            use sqlx::types::Json;
            use sqlx::QueryBuilder;
            use uuid::Uuid;

            #[derive(sqlx::FromRow)]
            struct DetailRow {
                #[sqlx(flatten)]
                observable: Observable,
                enrichment: Option<Json<serde_json::Value>>,
            }

            /// Appends the `q` condition. Stored values are canonical: lower case for every
            /// kind but URLs (whose paths keep their case) and CVE ids (upper case).
            fn push_text(qb: &mut QueryBuilder<$db>, q: &str, mode: MatchMode, kind: Option<&str>) {
                let insensitive = |qb: &mut QueryBuilder<$db>| {
                    let lower = q.to_lowercase();
                    match mode {
                        MatchMode::Exact => {
                            qb.push("LOWER(observables.value) = ").push_bind(lower);
                        }
                        MatchMode::Prefix | MatchMode::Contains => {
                            qb.push("LOWER(observables.value) LIKE ")
                                .push_bind(like_pattern(&lower, mode == MatchMode::Prefix));
                            qb.push(" ESCAPE '\\'");
                        }
                    }
                };
                let sensitive = |qb: &mut QueryBuilder<$db>| match mode {
                    MatchMode::Exact => {
                        qb.push("observables.value = ").push_bind(q.to_string());
                    }
                    MatchMode::Prefix => {
                        qb.push(format_args!("{}(observables.value, ", $store::STRPOS))
                            .push_bind(q.to_string());
                        qb.push(") = 1");
                    }
                    MatchMode::Contains => {
                        qb.push(format_args!("{}(observables.value, ", $store::STRPOS))
                            .push_bind(q.to_string());
                        qb.push(") > 0");
                    }
                };
                match kind {
                    // With the kind known, an exact value is canonical already (the API
                    // normalizes it): plain equality, which the (tenant, kind, value) index serves.
                    Some(_) if mode == MatchMode::Exact => {
                        qb.push(" AND ");
                        sensitive(qb);
                    }
                    Some("url") => {
                        qb.push(" AND ");
                        sensitive(qb);
                    }
                    Some(_) => {
                        qb.push(" AND ");
                        insensitive(qb);
                    }
                    None => {
                        qb.push(" AND ((observables.kind <> 'url' AND ");
                        insensitive(qb);
                        qb.push(") OR (observables.kind = 'url' AND ");
                        sensitive(qb);
                        qb.push("))");
                    }
                }
            }

            impl $store {
                /// The observable row if the caller may see it.
                async fn visible_observable(
                    &self,
                    access: &AlertAccess,
                    vis: &Visibility,
                    id: Uuid,
                ) -> StoreResult<DetailRow> {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {OBSERVABLE_COLUMNS}, observables.enrichment FROM observables WHERE observables.id = "
                    ));
                    qb.push_bind(id);
                    push_observable_access(&mut qb, access, vis, Self::ALERT_TAG_VALUES);
                    qb.build_query_as()
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or(StoreError::NotFound)
                }
            }

            #[async_trait::async_trait]
            impl ObservableStore for $store {
                async fn list_observables(
                    &self,
                    access: &AlertAccess,
                    f: &ObservableFilter,
                ) -> StoreResult<Vec<Observable>> {
                    let vis = self.alert_visibility(access).await?;
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {OBSERVABLE_COLUMNS} FROM observables WHERE 1 = 1"
                    ));
                    push_observable_access(&mut qb, access, &vis, Self::ALERT_TAG_VALUES);
                    if let Some(t) = f.tenant_id {
                        qb.push(" AND observables.tenant_id = ").push_bind(t.0);
                    }
                    for (column, value) in [
                        ("observables.kind", &f.kind),
                        ("observables.verdict", &f.verdict),
                        ("observables.origin", &f.origin),
                    ] {
                        if let Some(v) = value {
                            qb.push(format_args!(" AND {column} = ")).push_bind(v.clone());
                        }
                    }
                    if let Some(tag) = &f.tag {
                        qb.push(format_args!(" AND EXISTS (SELECT 1 FROM {} = ", Self::OBSERVABLE_TAG_VALUES))
                            .push_bind(tag.clone());
                        qb.push(")");
                    }
                    if let Some(s) = f.since {
                        qb.push(" AND observables.last_seen >= ").push_bind(s);
                    }
                    if let Some(q) = &f.q {
                        push_text(&mut qb, q, f.match_mode, f.kind.as_deref());
                    }
                    match f.after {
                        Some(ObservableCursor::LastSeen(t, id)) => {
                            qb.push(" AND (observables.last_seen < ").push_bind(t);
                            qb.push(" OR (observables.last_seen = ").push_bind(t);
                            qb.push(" AND observables.id < ").push_bind(id);
                            qb.push("))");
                        }
                        Some(ObservableCursor::Sightings(n, id)) => {
                            qb.push(" AND (observables.sightings < ").push_bind(n);
                            qb.push(" OR (observables.sightings = ").push_bind(n);
                            qb.push(" AND observables.id < ").push_bind(id);
                            qb.push("))");
                        }
                        None => {}
                    }
                    qb.push(match f.sort {
                        ObservableSort::LastSeen => " ORDER BY observables.last_seen DESC, observables.id DESC",
                        ObservableSort::Sightings => " ORDER BY observables.sightings DESC, observables.id DESC",
                    });
                    qb.push(" LIMIT ").push_bind(i64::from(f.limit));
                    Ok(qb.build_query_as().fetch_all(&self.reader).await?)
                }

                async fn get_observable(
                    &self,
                    access: &AlertAccess,
                    id: Uuid,
                    opts: SightingOptions,
                ) -> StoreResult<ObservableDetail> {
                    let vis = self.alert_visibility(access).await?;
                    let row = self.visible_observable(access, &vis, id).await?;
                    let limit = i64::from(opts.limit);

                    // The page: newest first along the link index (observable, alert), so only
                    // the page's alerts are read, not every sighting.
                    let sightings = |head: &str, select: &str| {
                        let mut qb = QueryBuilder::<$db>::new(format!(
                            "{head}SELECT {select} FROM alert_observables l JOIN alerts ON alerts.id = l.alert_id \
                             WHERE alerts.deleted_at IS NULL AND l.observable_id = "
                        ));
                        qb.push_bind(id);
                        push_alert_access(&mut qb, access, &vis, Self::ALERT_TAG_VALUES);
                        qb
                    };
                    let mut qb = sightings("", SUMMARY_COLUMNS);
                    qb.push(" ORDER BY l.alert_id DESC LIMIT ").push_bind(limit);
                    let alerts: Vec<AlertSummary> = qb.build_query_as().fetch_all(&self.reader).await?;
                    // The count, up to the cap (one past it tells "more").
                    let (alerts_total, alerts_total_capped) = if (alerts.len() as i64) < limit {
                        (alerts.len() as i64, false)
                    } else {
                        let mut qb = sightings("SELECT COUNT(*) FROM (", "1");
                        qb.push(" LIMIT ").push_bind(SIGHTINGS_COUNT_CAP + 1).push(") n");
                        let n: i64 = qb.build_query_scalar().fetch_one(&self.reader).await?;
                        (n.min(SIGHTINGS_COUNT_CAP), n > SIGHTINGS_COUNT_CAP)
                    };

                    let (incidents, incidents_total, incidents_total_capped) = if !opts.incidents {
                        (Vec::new(), 0, false)
                    } else if !alerts_total_capped {
                        // Few sightings: the incidents linking them, from the sightings.
                        let linked = |head: &str, select: &str| {
                            let mut qb = QueryBuilder::<$db>::new(format!(
                                "{head}SELECT {select} FROM incidents i WHERE i.deleted_at IS NULL AND i.tenant_id = "
                            ));
                            qb.push_bind(row.observable.tenant_id.0);
                            qb.push(
                                " AND i.id IN (SELECT ia.incident_id FROM incident_alerts ia \
                                 JOIN alert_observables l ON l.alert_id = ia.alert_id \
                                 JOIN alerts ON alerts.id = ia.alert_id \
                                 WHERE alerts.deleted_at IS NULL AND l.observable_id = ",
                            );
                            qb.push_bind(id);
                            push_alert_access(&mut qb, access, &vis, Self::ALERT_TAG_VALUES);
                            qb.push(")");
                            qb
                        };
                        let mut qb = linked("", INCIDENT_COLUMNS);
                        qb.push(" ORDER BY i.id DESC LIMIT ").push_bind(limit);
                        let rows: Vec<ObservableIncident> = qb.build_query_as().fetch_all(&self.reader).await?;
                        let total = if (rows.len() as i64) < limit {
                            rows.len() as i64
                        } else {
                            let mut qb = linked("SELECT COUNT(*) FROM (", "1");
                            qb.push(") n");
                            qb.build_query_scalar().fetch_one(&self.reader).await?
                        };
                        (rows, total, false)
                    } else {
                        // More sightings than the cap: collecting their incidents would read
                        // every sighting (1.1 s for one seen on 37,000 alerts). The tenant's
                        // incidents are walked newest first instead, each checked for a
                        // visible alert carrying the observable, up to a page; a full page is
                        // reported as "at least this many".
                        let mut qb = QueryBuilder::<$db>::new(format!(
                            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.deleted_at IS NULL AND i.tenant_id = "
                        ));
                        qb.push_bind(row.observable.tenant_id.0);
                        qb.push(
                            " AND EXISTS (SELECT 1 FROM incident_alerts ia \
                             JOIN alert_observables l ON l.alert_id = ia.alert_id AND l.observable_id = ",
                        );
                        qb.push_bind(id);
                        qb.push(
                            " JOIN alerts ON alerts.id = ia.alert_id \
                             WHERE ia.incident_id = i.id AND alerts.deleted_at IS NULL",
                        );
                        push_alert_access(&mut qb, access, &vis, Self::ALERT_TAG_VALUES);
                        qb.push(") ORDER BY i.id DESC LIMIT ").push_bind(limit);
                        let rows: Vec<ObservableIncident> = qb.build_query_as().fetch_all(&self.reader).await?;
                        let total = rows.len() as i64;
                        (rows, total, total == limit)
                    };

                    Ok(ObservableDetail {
                        observable: row.observable,
                        enrichment: row.enrichment.map(|j| j.0),
                        alerts,
                        alerts_total,
                        alerts_total_capped,
                        incidents,
                        incidents_total,
                        incidents_total_capped,
                    })
                }

                async fn create_observable(
                    &self,
                    ctx: &ChangeCtx,
                    access: &AlertAccess,
                    new: NewObservable,
                ) -> StoreResult<CreateOutcome> {
                    if !access.scope.allows(new.tenant_id) {
                        return Err(StoreError::Invalid {
                            field: "tenant_id",
                            message: "unknown tenant".into(),
                        });
                    }
                    let tags = $crate::observables::clean_tags(&new.tags)
                        .map_err(|(field, message)| StoreError::Invalid { field, message })?;
                    $crate::observables::check_description(new.description.as_deref())
                        .map_err(|(field, message)| StoreError::Invalid { field, message })?;
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    let inserted: Option<Observable> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO observables (id, tenant_id, kind, value, is_private, first_seen, last_seen, \
                         sightings, tags, origin, description) VALUES ($1, $2, $3, $4, $5, $6, $6, 0, $7, 'manual', $8) \
                         ON CONFLICT (tenant_id, kind, value) DO NOTHING RETURNING {}",
                        OBSERVABLE_COLUMNS.replace("observables.", "")
                    )))
                    .bind(Uuid::now_v7())
                    .bind(new.tenant_id.0)
                    .bind(new.kind.clone())
                    .bind(new.value.clone())
                    .bind(new.is_private)
                    .bind(now)
                    .bind(Json(&tags))
                    .bind(new.description.clone())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| $crate::conflict_or(e, "tenant_id"))?;
                    let Some(created) = inserted else {
                        let (existing,): (Uuid,) = sqlx::query_as(
                            "SELECT id FROM observables WHERE tenant_id = $1 AND kind = $2 AND value = $3",
                        )
                        .bind(new.tenant_id.0)
                        .bind(new.kind.clone())
                        .bind(new.value.clone())
                        .fetch_one(&mut *tx)
                        .await?;
                        tx.rollback().await?;
                        return Ok(CreateOutcome::Exists(existing));
                    };
                    let rec = $crate::audit::record(
                        ctx,
                        EventType::ObservableCreated,
                        "observable",
                        Some(created.id.to_string()),
                        None,
                        Some(json!({
                            "kind": created.kind,
                            "value": created.value,
                            "origin": "manual",
                            "tags": created.tags,
                        })),
                    )?;
                    Self::append_audit(&mut tx, new.tenant_id, rec).await?;
                    // A new observable is enriched like one extracted from an alert.
                    let mut queued = false;
                    if !created.is_private
                        && Self::enriching_tenants(&mut tx, &std::iter::once(new.tenant_id).collect())
                            .await?
                            .contains(&new.tenant_id)
                    {
                        sqlx::query("UPDATE observables SET enrich_after = $1 WHERE id = $2")
                            .bind(bulwark_core::time::now() + chrono::Duration::seconds($crate::enrichment::CLAIM_SECS))
                            .bind(created.id)
                            .execute(&mut *tx)
                            .await?;
                        Self::insert_enrichment_jobs(&mut tx, &[created.id], false).await?;
                        queued = true;
                    }
                    tx.commit().await?;
                    if queued {
                        self.jobs_ready.notify_one();
                    }
                    Ok(CreateOutcome::Created(Box::new(created)))
                }

                async fn update_observable(
                    &self,
                    ctx: &ChangeCtx,
                    access: &AlertAccess,
                    id: Uuid,
                    patch: ObservablePatch,
                ) -> StoreResult<Observable> {
                    validate_patch(&patch).map_err(|(field, message)| StoreError::Invalid { field, message })?;
                    let vis = self.alert_visibility(access).await?;
                    let mut tx = self.begin_write().await?;
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {OBSERVABLE_COLUMNS} FROM observables WHERE observables.id = "
                    ));
                    qb.push_bind(id);
                    push_observable_access(&mut qb, access, &vis, Self::ALERT_TAG_VALUES);
                    qb.push($for_update);
                    let before: Observable = qb
                        .build_query_as()
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    if patch.is_empty() {
                        tx.rollback().await?;
                        return Ok(before);
                    }
                    let mut qb = QueryBuilder::<$db>::new("UPDATE observables SET ");
                    let mut sep = qb.separated(", ");
                    let mut old = serde_json::Map::new();
                    let mut new = serde_json::Map::new();
                    if let Some(tags) = &patch.tags {
                        let tags = $crate::observables::clean_tags(tags)
                            .map_err(|(field, message)| StoreError::Invalid { field, message })?;
                        sep.push("tags = ").push_bind_unseparated(Json(tags.clone()));
                        old.insert("tags".into(), json!(before.tags));
                        new.insert("tags".into(), json!(tags));
                    }
                    if let Some(d) = &patch.description {
                        sep.push("description = ").push_bind_unseparated(d.clone());
                        // Descriptions can be long: the record says that it changed, and how long.
                        old.insert("description_bytes".into(), json!(before.description.as_ref().map(String::len)));
                        new.insert("description_bytes".into(), json!(d.as_ref().map(String::len)));
                    }
                    if let Some(s) = patch.reputation_score {
                        sep.push("reputation_score = ").push_bind_unseparated(s);
                        old.insert("reputation_score".into(), json!(before.reputation_score));
                        new.insert("reputation_score".into(), json!(s));
                    }
                    if let Some(v) = &patch.verdict {
                        sep.push("verdict = ").push_bind_unseparated(v.clone());
                        old.insert("verdict".into(), json!(before.verdict));
                        new.insert("verdict".into(), json!(v));
                    }
                    if patch.verdict.is_some() || patch.reputation_score.is_some() {
                        // An analyst's assessment stands: enrichment no longer overwrites it
                        // (until both are cleared).
                        let verdict = patch.verdict.clone().unwrap_or_else(|| before.verdict.clone());
                        let score = patch.reputation_score.unwrap_or(before.reputation_score);
                        let origin = (verdict.is_some() || score.is_some()).then_some("analyst");
                        sep.push("verdict_origin = ").push_bind_unseparated(origin);
                    }
                    qb.push(" WHERE id = ").push_bind(id);
                    qb.push(format_args!(" RETURNING {}", OBSERVABLE_COLUMNS.replace("observables.", "")));
                    let after: Observable = qb.build_query_as().fetch_one(&mut *tx).await?;
                    let rec = $crate::audit::record(
                        ctx,
                        EventType::ObservableUpdated,
                        "observable",
                        Some(id.to_string()),
                        Some(serde_json::Value::Object(old)),
                        Some(serde_json::Value::Object(new)),
                    )?;
                    Self::append_audit(&mut tx, before.tenant_id, rec).await?;
                    tx.commit().await?;
                    Ok(after)
                }
            }
        }
    };
}

pub(crate) use impl_observables;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        let t = bulwark_core::time::now();
        for c in [
            ObservableCursor::LastSeen(t, id),
            ObservableCursor::Sightings(42, id),
        ] {
            assert_eq!(ObservableCursor::decode(&c.encode()), Some(c));
        }
        for bad in [
            "",
            "x",
            "l12",
            "l_abc",
            "q1_0190b2c4d5e67f00a1b2c3d4e5f60718",
            "s1_nope",
            "lnan_0190b2c4d5e67f00a1b2c3d4e5f60718",
        ] {
            assert_eq!(ObservableCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn patches_are_checked_field_by_field() {
        let ok = ObservablePatch {
            tags: Some(vec![" a ".into(), "a".into(), "b".into()]),
            description: Some(None),
            reputation_score: Some(Some(100)),
            verdict: Some(Some("benign".into())),
        };
        assert!(validate_patch(&ok).is_ok());
        assert_eq!(
            clean_tags(&[" a ".into(), "a".into(), "b".into()]).ok(),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        let field = |p: ObservablePatch| validate_patch(&p).err().map(|e| e.0);
        assert_eq!(
            field(ObservablePatch {
                reputation_score: Some(Some(101)),
                ..Default::default()
            }),
            Some("reputation_score")
        );
        assert_eq!(
            field(ObservablePatch {
                verdict: Some(Some("evil".into())),
                ..Default::default()
            }),
            Some("verdict")
        );
        assert_eq!(
            field(ObservablePatch {
                tags: Some(vec![" ".into()]),
                ..Default::default()
            }),
            Some("tags")
        );
        assert_eq!(
            field(ObservablePatch {
                description: Some(Some("x".repeat(MAX_DESCRIPTION_BYTES + 1))),
                ..Default::default()
            }),
            Some("description")
        );
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\", false), "%a\\%b\\_c\\\\%");
        assert_eq!(like_pattern("10.0.", true), "10.0.%");
    }
}
