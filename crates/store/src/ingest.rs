//! Storing ingested alerts: deduplication, observables and the audit record, all in one
//! transaction per batch (callers gather concurrent deliveries into one batch: group commit).
//!
//! Deduplication is race-free on both backends:
//! - with a `source_id`, `(tenant, source, source_id)` has a unique index and the write is an
//!   upsert, so concurrent deliveries of one alert resolve to one row, and each caller gets that
//!   row's id;
//! - without one, a fingerprint matches within a window; on PostgreSQL a transaction-scoped
//!   advisory lock on (tenant, fingerprint) serializes the check-then-insert across nodes; on
//!   SQLite the single writer already does.

use bulwark_core::{ApiKeyId, TenantId};
use bulwark_normalize::NormalizedAlert;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// One alert to store.
#[derive(Debug, Clone)]
pub struct IncomingAlert {
    pub tenant_id: TenantId,
    pub alert: NormalizedAlert,
    /// The payload exactly as received.
    pub raw: String,
    pub received_at: DateTime<Utc>,
    /// Who delivered it (the API key), for the audit record. A group commit mixes callers.
    pub actor: crate::ChangeCtx,
    /// The playbooks it starts, matched by the caller before the transaction; their runs and
    /// jobs are written in the transaction that stores the alert.
    pub triggers: AlertTriggers,
}

impl IncomingAlert {
    /// An alert that starts no playbook.
    pub fn new(
        tenant_id: TenantId,
        alert: NormalizedAlert,
        raw: String,
        received_at: DateTime<Utc>,
        actor: crate::ChangeCtx,
    ) -> Self {
        Self {
            tenant_id,
            alert,
            raw,
            received_at,
            actor,
            triggers: AlertTriggers::default(),
        }
    }
}

/// A playbook run an alert starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRun {
    pub playbook_id: Uuid,
    pub playbook_name: String,
    pub playbook_version: i32,
    pub priority: i32,
}

/// Which runs to start: whether the alert is new or a duplicate is only known inside the
/// transaction, so the caller matches both cases (duplicates start only the playbooks that ask
/// for it with `on_duplicate`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertTriggers {
    pub created: Vec<PlannedRun>,
    pub duplicate: Vec<PlannedRun>,
}

impl AlertTriggers {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.duplicate.is_empty()
    }
}

/// The alert as trigger conditions see it at ingestion: the fields of the stored alert's
/// detail (`alerts::AlertDetail`, which is what a run's templates see later) that are known
/// before it is stored. Not known yet: its id, observables and incidents; `status` is `new`.
pub fn trigger_view(
    tenant: TenantId,
    n: &NormalizedAlert,
    received_at: DateTime<Utc>,
) -> serde_json::Value {
    serde_json::json!({
        "tenant_id": tenant.0,
        "source": n.source.as_str(),
        "source_id": n.source_id,
        "title": n.title,
        "severity": n.severity.as_str(),
        "status": "new",
        "determination": null,
        "assignee_id": null,
        "tags": n.tags,
        "rule_name": n.rule_name,
        "hostname": n.hostname,
        "source_ip": n.source_ip.map(|i| i.to_string()),
        "dest_ip": n.dest_ip.map(|i| i.to_string()),
        "duplicate_count": 0,
        "first_seen": received_at,
        "last_seen": received_at,
        "description": n.description,
        "severity_original": n.severity_original,
        "rule_id": n.rule_id,
        "username": n.username,
        "event_time": n.event_time,
        "normalized": n,
    })
}

/// What happened to one incoming alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IngestOutcome {
    pub alert_id: Uuid,
    /// True when it matched an existing alert (which was updated, not duplicated).
    pub duplicate: bool,
    /// How many duplicates the stored alert has absorbed so far.
    pub duplicate_count: i64,
    pub title: String,
    pub severity: String,
    /// Playbook runs this alert started (queued in the same transaction).
    pub playbooks_triggered: u32,
}

/// Advisory-lock key for fingerprint dedup on PostgreSQL: tenant and fingerprint folded to i64.
pub(crate) fn fingerprint_lock_key(tenant: TenantId, fp: &[u8; 32]) -> i64 {
    let mut k = [0u8; 8];
    for (i, b) in tenant.0.as_bytes().iter().chain(fp.iter()).enumerate() {
        k[i % 8] ^= *b;
    }
    i64::from_be_bytes(k)
}

/// Alerts with a source id, grouped by (tenant, source, source id) and the groups sorted by
/// that key (the lock order). Each group lists batch positions in arrival order: the first is
/// stored (or matched), the others are duplicates of it. One statement may not upsert the
/// same key twice, hence the folding.
pub(crate) fn fold_by_source_id(batch: &[IncomingAlert], keyed: &[usize]) -> Vec<Vec<usize>> {
    let mut groups: std::collections::BTreeMap<(Uuid, &'static str, &str), Vec<usize>> =
        Default::default();
    for &i in keyed {
        let a = &batch[i];
        let sid = a.alert.source_id.as_deref().unwrap_or_default();
        groups
            .entry((a.tenant_id.0, a.alert.source.as_str(), sid))
            .or_default()
            .push(i);
    }
    groups.into_values().collect()
}

/// One observable's sightings in a batch: (tenant, kind, value) -> (is private, count). Sorted
/// by key: the lock order on PostgreSQL.
pub(crate) type Sightings<'a> = ((TenantId, &'a str, &'a str), (bool, i64));

/// Stored observables' ids by (tenant, kind, value).
pub(crate) type ObservableIds = std::collections::HashMap<(TenantId, String, String), Uuid>;

/// A row returned by the multi-row alert upsert.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyedHit {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub source: String,
    pub source_id: String,
    pub duplicate_count: i64,
    pub title: String,
    pub severity: String,
}

/// The outcomes of one multi-row alert upsert: `chunk` its key groups (see
/// [`fold_by_source_id`]), `ids` the id and first_seen each group's first alert was offered,
/// `rows` what the statement returned. Each copy gets the duplicate count it would have seen
/// had the copies come one by one; a group whose offered id came back was stored new.
pub(crate) fn keyed_outcomes(
    batch: &[IncomingAlert],
    chunk: &[Vec<usize>],
    ids: &[(Uuid, DateTime<Utc>)],
    rows: Vec<KeyedHit>,
    outcomes: &mut [Option<IngestOutcome>],
    seen_at: &mut [Option<DateTime<Utc>>],
) -> crate::StoreResult<()> {
    let mut hits: std::collections::HashMap<(Uuid, String, String), KeyedHit> = rows
        .into_iter()
        .map(|h| ((h.tenant_id, h.source.clone(), h.source_id.clone()), h))
        .collect();
    for (g, (id, seen)) in chunk.iter().zip(ids) {
        let first = &batch[g[0]];
        let key = (
            first.tenant_id.0,
            first.alert.source.as_str().to_string(),
            first.alert.source_id.clone().unwrap_or_default(),
        );
        let hit = hits.remove(&key).ok_or_else(|| {
            crate::StoreError::Corrupt("upsert returned no row for an alert".into())
        })?;
        let inserted = hit.id == *id;
        if inserted {
            seen_at[g[0]] = Some(*seen);
        }
        group_outcomes(
            g,
            inserted,
            hit.id,
            hit.duplicate_count,
            &hit.title,
            &hit.severity,
            outcomes,
        );
    }
    Ok(())
}

/// The outcomes of one group of copies of an alert (batch positions in arrival order) that
/// became the stored alert `id` with `duplicate_count` in all: each copy gets the count it
/// would have seen had the copies come one by one, and only the first copy of an alert
/// `inserted` new is not a duplicate.
pub(crate) fn group_outcomes(
    g: &[usize],
    inserted: bool,
    id: Uuid,
    duplicate_count: i64,
    title: &str,
    severity: &str,
    outcomes: &mut [Option<IngestOutcome>],
) {
    let last = g.len().saturating_sub(1);
    for (j, i) in g.iter().enumerate() {
        outcomes[*i] = Some(IngestOutcome {
            alert_id: id,
            duplicate: !(inserted && j == 0),
            duplicate_count: duplicate_count - (last - j) as i64,
            title: title.to_string(),
            severity: severity.to_string(),
            playbooks_triggered: 0,
        });
    }
}

/// Alerts without a source id, grouped by (tenant, source, fingerprint), the groups sorted by
/// that key (the lock order). Each group lists batch positions in arrival order: the first is
/// stored (or matched within the window), the others are duplicates of it.
pub(crate) fn fold_by_fingerprint(
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    unkeyed: &[usize],
) -> Vec<Vec<usize>> {
    let mut groups: std::collections::BTreeMap<(Uuid, &'static str, [u8; 32]), Vec<usize>> =
        Default::default();
    for &i in unkeyed {
        let a = &batch[i];
        groups
            .entry((a.tenant_id.0, a.alert.source.as_str(), fps[i]))
            .or_default()
            .push(i);
    }
    groups.into_values().collect()
}

/// The columns every alert insert sets, in bind order.
pub(crate) const ALERT_INSERT_COLUMNS: &str = "id, tenant_id, source, source_id, fingerprint, title, \
     severity, severity_original, rule_name, rule_id, event_time, source_ip, dest_ip, hostname, username, \
     normalized, raw_payload, latest_payload, duplicate_count, first_seen, last_seen, created_at, updated_at, \
     description, tags";

/// Follows the multi-row alert insert (both backends): a key already stored absorbs all of the
/// batch's copies as duplicates; returns what [`KeyedHit`] reads.
pub(crate) const ALERT_UPSERT_TAIL: &str = " ON CONFLICT (tenant_id, source, source_id) WHERE source_id IS NOT NULL \
     DO UPDATE SET duplicate_count = alerts.duplicate_count + excluded.duplicate_count + 1, \
     last_seen = excluded.last_seen, \
     latest_payload = COALESCE(excluded.latest_payload, excluded.raw_payload), \
     updated_at = excluded.updated_at \
     RETURNING id, tenant_id, source, source_id, duplicate_count, title, severity";

/// The columns of the multi-row observable insert, in bind order (9 per row).
pub(crate) const OBSERVABLE_INSERT_COLUMNS: &str =
    "id, tenant_id, kind, value, is_private, first_seen, last_seen, sightings, enrich_after";

/// Follows the multi-row observable insert (both backends): sightings added, `enrich_after`
/// claimed when it is offered and the stored one is unset or due.
pub(crate) const OBSERVABLE_UPSERT_TAIL: &str = " ON CONFLICT (tenant_id, kind, value) DO UPDATE SET \
     last_seen = excluded.last_seen, \
     sightings = observables.sightings + excluded.sightings, \
     enrich_after = CASE WHEN excluded.enrich_after IS NOT NULL AND (observables.enrich_after IS NULL \
     OR observables.enrich_after <= excluded.last_seen) THEN excluded.enrich_after \
     ELSE observables.enrich_after END \
     RETURNING id, tenant_id, kind, value, enrich_after";

/// The distinct API keys among `keys` (see [`crate::IngestStore::ingest_delivered`]).
pub(crate) fn distinct_keys(keys: &[Option<ApiKeyId>]) -> Vec<ApiKeyId> {
    let mut ids: Vec<ApiKeyId> = keys.iter().flatten().copied().collect();
    ids.sort_by_key(|k| k.0);
    ids.dedup();
    ids
}

/// Whether `batch[i]` may be stored: it came with no key (`keys` may be empty) or with one
/// found usable.
fn delivered_by_usable(
    keys: &[Option<ApiKeyId>],
    usable: &std::collections::HashSet<ApiKeyId>,
    i: usize,
) -> bool {
    keys.get(i)
        .copied()
        .flatten()
        .is_none_or(|k| usable.contains(&k))
}

/// The alerts of `batch` to store after the key check, or `None` when that is all of them
/// (the common case: nothing is copied).
pub(crate) fn kept_alerts(
    batch: &[IncomingAlert],
    keys: &[Option<ApiKeyId>],
    usable: &std::collections::HashSet<ApiKeyId>,
) -> Option<Vec<IncomingAlert>> {
    if (0..batch.len()).all(|i| delivered_by_usable(keys, usable, i)) {
        return None;
    }
    Some(
        batch
            .iter()
            .enumerate()
            .filter(|(i, _)| delivered_by_usable(keys, usable, *i))
            .map(|(_, a)| a.clone())
            .collect(),
    )
}

/// The outcomes of the kept alerts (in order) spread back over the whole batch: `None` for
/// an alert whose key was not usable.
pub(crate) fn spread_outcomes(
    len: usize,
    keys: &[Option<ApiKeyId>],
    usable: &std::collections::HashSet<ApiKeyId>,
    outcomes: Vec<IngestOutcome>,
) -> Vec<Option<IngestOutcome>> {
    let mut kept = outcomes.into_iter();
    (0..len)
        .map(|i| {
            if delivered_by_usable(keys, usable, i) {
                kept.next()
            } else {
                None
            }
        })
        .collect()
}

/// `alert_hourly`'s columns in bind order, and the upsert that adds a batch's counts.
pub(crate) const HOURLY_INSERT: &str = "alert_hourly (hour, tenant_id, source, sev_critical, sev_high, \
     sev_medium, sev_low, sev_info, st_new)";
pub(crate) const HOURLY_UPSERT_TAIL: &str = " ON CONFLICT (hour, tenant_id, source) DO UPDATE SET \
     sev_critical = alert_hourly.sev_critical + excluded.sev_critical, \
     sev_high = alert_hourly.sev_high + excluded.sev_high, \
     sev_medium = alert_hourly.sev_medium + excluded.sev_medium, \
     sev_low = alert_hourly.sev_low + excluded.sev_low, \
     sev_info = alert_hourly.sev_info + excluded.sev_info, \
     st_new = alert_hourly.st_new + excluded.st_new";

/// `alert_hourly_tags`'s columns in bind order, and the upsert that adds a batch's counts.
pub(crate) const HOURLY_TAGS_INSERT: &str = "alert_hourly_tags (tenant_id, hour, source, tags, sev_critical, \
     sev_high, sev_medium, sev_low, sev_info, st_new)";
pub(crate) const HOURLY_TAGS_UPSERT_TAIL: &str = " ON CONFLICT (tenant_id, hour, source, tags) DO UPDATE SET \
     sev_critical = alert_hourly_tags.sev_critical + excluded.sev_critical, \
     sev_high = alert_hourly_tags.sev_high + excluded.sev_high, \
     sev_medium = alert_hourly_tags.sev_medium + excluded.sev_medium, \
     sev_low = alert_hourly_tags.sev_low + excluded.sev_low, \
     sev_info = alert_hourly_tags.sev_info + excluded.sev_info, \
     st_new = alert_hourly_tags.st_new + excluded.st_new";

/// A batch's new alerts counted for the dashboard roll-ups, by severity (critical first), each
/// list sorted by key (the lock order on PostgreSQL).
pub(crate) struct HourlyCounts<'a> {
    /// Per (hour of first_seen, tenant, source): `alert_hourly`.
    pub per_source: Vec<(SourceHour, [i64; 5])>,
    /// Per (tenant, hour, source, tag set): `alert_hourly_tags` (migration 0021). The tags
    /// are bound as the alert row stores them (JSON text), so the tag rules read both alike.
    pub per_tag_set: Vec<(TagSetHour<'a>, [i64; 5])>,
}

/// An `alert_hourly` key: (hour index, tenant, source).
pub(crate) type SourceHour = (i64, Uuid, &'static str);
/// An `alert_hourly_tags` key: (tenant, hour index, source, tags).
pub(crate) type TagSetHour<'a> = (Uuid, i64, &'static str, &'a [String]);

/// Outcomes in batch order, and the first_seen of each alert stored new.
pub(crate) type AlertsWritten = (Vec<IngestOutcome>, Vec<Option<DateTime<Utc>>>);

/// Counts the alerts of `batch` stored new (`seen_at` holds their first_seen). Duplicates
/// change none of the roll-ups' numbers; later changes are applied by triggers.
pub(crate) fn hourly_counts<'a>(
    batch: &'a [IncomingAlert],
    seen_at: &[Option<DateTime<Utc>>],
) -> HourlyCounts<'a> {
    use bulwark_normalize::Severity;
    let mut per_source: std::collections::BTreeMap<SourceHour, [i64; 5]> = Default::default();
    let mut per_tag_set: std::collections::BTreeMap<TagSetHour<'a>, [i64; 5]> = Default::default();
    for (a, seen) in batch.iter().zip(seen_at) {
        let Some(seen) = seen else { continue };
        let sev = match a.alert.severity {
            Severity::Critical => 0,
            Severity::High => 1,
            Severity::Medium => 2,
            Severity::Low => 3,
            Severity::Info => 4,
        };
        let hour = crate::dashboard::hour_index(*seen);
        let source = a.alert.source.as_str();
        per_source.entry((hour, a.tenant_id.0, source)).or_default()[sev] += 1;
        per_tag_set
            .entry((a.tenant_id.0, hour, source, a.alert.tags.as_slice()))
            .or_default()[sev] += 1;
    }
    HourlyCounts {
        per_source: per_source.into_iter().collect(),
        per_tag_set: per_tag_set.into_iter().collect(),
    }
}

/// A batch's new alerts with their outcomes.
pub(crate) type NewAlerts<'a> = [(&'a IncomingAlert, &'a IngestOutcome)];

/// Sightings per observable in a batch: one per new alert carrying it, sorted by (tenant,
/// kind, value), the lock order on PostgreSQL.
pub(crate) fn batch_sightings<'a>(new: &NewAlerts<'a>) -> Vec<Sightings<'a>> {
    let mut counts: std::collections::BTreeMap<(TenantId, &'a str, &'a str), (bool, i64)> =
        Default::default();
    for (a, _) in new {
        for ind in &a.alert.indicators {
            counts
                .entry((a.tenant_id, ind.kind.as_str(), ind.value.as_str()))
                .or_insert((ind.private, 0))
                .1 += 1;
        }
    }
    counts.into_iter().collect()
}

/// (alert id, observable id) for every indicator of the new alerts.
pub(crate) fn observable_links(new: &NewAlerts<'_>, ids: &ObservableIds) -> Vec<(Uuid, Uuid)> {
    let mut links = Vec::new();
    for (a, o) in new {
        for ind in &a.alert.indicators {
            let key = (
                a.tenant_id,
                ind.kind.as_str().to_string(),
                ind.value.clone(),
            );
            if let Some(id) = ids.get(&key) {
                links.push((o.alert_id, *id));
            }
        }
    }
    links
}

/// The audit records of the new alerts, per tenant (one chain append per tenant per batch).
pub(crate) fn ingest_audit_records(
    new: &NewAlerts<'_>,
) -> crate::StoreResult<std::collections::BTreeMap<TenantId, Vec<bulwark_audit::NewRecord>>> {
    let mut per_tenant: std::collections::BTreeMap<TenantId, Vec<bulwark_audit::NewRecord>> =
        Default::default();
    for (a, o) in new {
        let n = &a.alert;
        let rec = crate::audit::record(
            &a.actor,
            bulwark_audit::EventType::AlertIngested,
            "alert",
            Some(o.alert_id.to_string()),
            None,
            Some(serde_json::json!({
                "source": n.source.as_str(),
                "source_id": n.source_id,
                "title": n.title,
                "severity": n.severity.as_str(),
            })),
        )?;
        per_tenant.entry(a.tenant_id).or_default().push(rec);
    }
    Ok(per_tenant)
}

/// The statements of an ingest batch that write many rows, as multi-row statements through
/// sqlx (PostgreSQL: one round trip each). SQLite has its own (`sqlite_ingest`).
macro_rules! impl_ingest_sqlx_writes {
    ($store:ident, $db:ty) => {
        mod ingest_writes_impl {
            use super::$store;
            use $crate::ingest::{
                ALERT_INSERT_COLUMNS, IncomingAlert, IngestOutcome, KeyedHit,
                fingerprint_lock_key, fold_by_source_id,
            };
            use $crate::StoreResult;
            use bulwark_core::TenantId;
            use sqlx::types::Json;
            use uuid::Uuid;

            #[derive(sqlx::FromRow)]
            struct Hit {
                id: Uuid,
                duplicate_count: i64,
                title: String,
                severity: String,
            }


            /// The multi-row insert of each group's first alert (`ALERT_INSERT_COLUMNS`), its
            /// duplicate count the group's other copies and its latest payload the last copy;
            /// returns the statement so far and the id and first_seen offered to each group.
            /// `stamped`: created_at and updated_at, or the first_seen when `None`.
            fn insert_first_copies<G: AsRef<[usize]>>(
                batch: &[IncomingAlert],
                fps: &[[u8; 32]],
                chunk: &[G],
                now: chrono::DateTime<chrono::Utc>,
                stamped: Option<chrono::DateTime<chrono::Utc>>,
            ) -> (sqlx::QueryBuilder<$db>, Vec<(Uuid, chrono::DateTime<chrono::Utc>)>) {
                let mut ids: Vec<(Uuid, chrono::DateTime<chrono::Utc>)> = Vec::with_capacity(chunk.len());
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO alerts ({ALERT_INSERT_COLUMNS}) "
                ));
                qb.push_values(chunk, |mut b, g| {
                    let g = g.as_ref();
                    let first = &batch[g[0]];
                    let n = &first.alert;
                    let last = g.last().map(|i| &batch[*i]).filter(|_| g.len() > 1);
                    let id = Uuid::now_v7();
                    // first_seen is the id's millisecond: a time window of the queue is then
                    // an id range (`alerts::window_ids`).
                    let seen = bulwark_core::ids::v7_time(id).unwrap_or(now);
                    ids.push((id, seen));
                    let stamp = stamped.unwrap_or(seen);
                    b.push_bind(id)
                        .push_bind(first.tenant_id.0)
                        .push_bind(n.source.as_str())
                        .push_bind(n.source_id.clone())
                        .push_bind(fps[g[0]].to_vec())
                        .push_bind(n.title.clone())
                        .push_bind(n.severity.as_str())
                        .push_bind(n.severity_original.clone())
                        .push_bind(n.rule_name.clone())
                        .push_bind(n.rule_id.clone())
                        .push_bind(n.event_time)
                        .push_bind(n.source_ip.map(|i| i.to_string()))
                        .push_bind(n.dest_ip.map(|i| i.to_string()))
                        .push_bind(n.hostname.clone())
                        .push_bind(n.username.clone())
                        .push_bind(Json(n.clone()))
                        .push_bind(first.raw.clone())
                        .push_bind(last.map(|a| a.raw.clone()))
                        .push_bind(g.len() as i64 - 1)
                        .push_bind(seen)
                        .push_bind(seen)
                        .push_bind(stamp)
                        .push_bind(stamp)
                        .push_bind(n.description.clone())
                        .push_bind(Json(n.tags.clone()));
                });
                (qb, ids)
            }

            impl $store {
                /// The alerts without a source id, folded per (tenant, source, fingerprint):
                /// each group is matched to an alert stored within the window, or inserted.
                /// Four statements for the whole batch, not three per alert: the advisory
                /// locks of every group, the matching read, one multi-row update of the
                /// matched alerts, and multi-row inserts of the others.
                async fn write_by_fingerprint(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    batch: &[IncomingAlert],
                    fps: &[[u8; 32]],
                    groups: &[Vec<usize>],
                    window: chrono::Duration,
                    outcomes: &mut [Option<IngestOutcome>],
                    seen_at: &mut [Option<chrono::DateTime<chrono::Utc>>],
                ) -> StoreResult<()> {
                    if groups.is_empty() {
                        return Ok(());
                    }
                    // The check-then-insert of a fingerprint is serialized across nodes by a
                    // transaction-scoped advisory lock. All of the batch's locks are taken
                    // first, in ascending key order (unnest keeps the array's order), before
                    // any row lock: two batches cannot wait on each other in a cycle.
                    let mut keys: Vec<i64> = groups
                        .iter()
                        .map(|g| fingerprint_lock_key(batch[g[0]].tenant_id, &fps[g[0]]))
                        .collect();
                    keys.sort_unstable();
                    keys.dedup();
                    sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS k")
                        .bind(&keys)
                        .execute(&mut **tx)
                        .await?;
                    // The newest alert of each group's fingerprint within the window.
                    let tenants: Vec<Uuid> = groups.iter().map(|g| batch[g[0]].tenant_id.0).collect();
                    let prints: Vec<Vec<u8>> = groups.iter().map(|g| fps[g[0]].to_vec()).collect();
                    let since: Vec<chrono::DateTime<chrono::Utc>> =
                        groups.iter().map(|g| batch[g[0]].received_at - window).collect();
                    let matched: Vec<(i64, Uuid)> = sqlx::query_as(
                        "SELECT DISTINCT ON (w.o) w.o, a.id \
                         FROM unnest($1::uuid[], $2::bytea[], $3::timestamptz[]) WITH ORDINALITY AS w(t, f, since, o) \
                         JOIN alerts a ON a.tenant_id = w.t AND a.fingerprint = w.f AND a.source_id IS NULL \
                         AND a.last_seen >= w.since \
                         ORDER BY w.o, a.last_seen DESC",
                    )
                    .bind(&tenants)
                    .bind(&prints)
                    .bind(&since)
                    .fetch_all(&mut **tx)
                    .await?;
                    let mut existing: std::collections::HashMap<usize, Uuid> = std::collections::HashMap::new();
                    for (o, id) in matched {
                        let at = usize::try_from(o - 1)
                            .map_err(|_| $crate::StoreError::Corrupt("bad ordinal".into()))?;
                        existing.insert(at, id);
                    }
                    let now = bulwark_core::time::now();
                    // Matched: every copy is a duplicate; the last one is the latest payload.
                    let dup_groups: Vec<(usize, Uuid)> =
                        (0..groups.len()).filter_map(|k| existing.get(&k).map(|id| (k, *id))).collect();
                    if !dup_groups.is_empty() {
                        let ids: Vec<Uuid> = dup_groups.iter().map(|(_, id)| *id).collect();
                        let counts: Vec<i64> = dup_groups.iter().map(|(k, _)| groups[*k].len() as i64).collect();
                        let latest: Vec<&str> = dup_groups
                            .iter()
                            .map(|(k, _)| groups[*k].last().map_or("", |i| batch[*i].raw.as_str()))
                            .collect();
                        let rows: Vec<Hit> = sqlx::query_as(
                            "UPDATE alerts a SET duplicate_count = a.duplicate_count + u.n, last_seen = $4, \
                             latest_payload = u.latest, updated_at = $4 \
                             FROM unnest($1::uuid[], $2::int8[], $3::text[]) AS u(id, n, latest) WHERE a.id = u.id \
                             RETURNING a.id, a.duplicate_count, a.title, a.severity",
                        )
                        .bind(&ids)
                        .bind(&counts)
                        .bind(&latest)
                        .bind(now)
                        .fetch_all(&mut **tx)
                        .await?;
                        let hits: std::collections::HashMap<Uuid, Hit> = rows.into_iter().map(|h| (h.id, h)).collect();
                        for (k, id) in &dup_groups {
                            let h = hits.get(id).ok_or_else(|| {
                                $crate::StoreError::Corrupt("update returned no row for an alert".into())
                            })?;
                            $crate::ingest::group_outcomes(&groups[*k], false, h.id, h.duplicate_count, &h.title, &h.severity, outcomes);
                        }
                    }
                    // Not matched: the first copy is stored, the others count as its duplicates.
                    let new_groups: Vec<&Vec<usize>> =
                        (0..groups.len()).filter(|k| !existing.contains_key(k)).map(|k| &groups[k]).collect();
                    for chunk in new_groups.chunks(400) {
                        let (mut qb, ids) = insert_first_copies(batch, fps, chunk, now, None);
                        qb.push(" RETURNING id, duplicate_count, title, severity");
                        let rows: Vec<Hit> = qb.build_query_as().fetch_all(&mut **tx).await?;
                        let hits: std::collections::HashMap<Uuid, Hit> = rows.into_iter().map(|h| (h.id, h)).collect();
                        for (g, (id, seen)) in chunk.iter().zip(&ids) {
                            let h = hits.get(id).ok_or_else(|| {
                                $crate::StoreError::Corrupt("insert returned no row for an alert".into())
                            })?;
                            seen_at[g[0]] = Some(*seen);
                            $crate::ingest::group_outcomes(g, true, h.id, h.duplicate_count, &h.title, &h.severity, outcomes);
                        }
                    }
                    Ok(())
                }
            }

            impl $store {
                /// Stores the batch's alerts (deduplicated) and returns their outcomes in batch
                /// order, with the first_seen of each alert stored new (for the roll-up).
                pub(crate) async fn write_alerts(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    batch: &[IncomingAlert],
                    fps: &[[u8; 32]],
                    window: chrono::Duration,
                ) -> StoreResult<(Vec<IngestOutcome>, Vec<Option<chrono::DateTime<chrono::Utc>>>)> {
                    // Alerts without a source id first (their locks come first), folded per
                    // fingerprint; then alerts with one, folded per key and written by
                    // multi-row upserts.
                    let (by_fp, keyed): (Vec<usize>, Vec<usize>) =
                        (0..batch.len()).partition(|i| batch[*i].alert.source_id.is_none());
                    let fp_groups = $crate::ingest::fold_by_fingerprint(batch, fps, &by_fp);
                    let groups = fold_by_source_id(batch, &keyed);
                    let mut outcomes: Vec<Option<IngestOutcome>> = vec![None; batch.len()];
                    // first_seen of each alert stored new (for the dashboard roll-up).
                    let mut seen_at: Vec<Option<chrono::DateTime<chrono::Utc>>> = vec![None; batch.len()];
                    Self::write_by_fingerprint(tx, batch, fps, &fp_groups, window, &mut outcomes, &mut seen_at).await?;
                    let now = bulwark_core::time::now();
                    for chunk in groups.chunks(400) {
                        let (mut qb, ids) = insert_first_copies(batch, fps, chunk, now, Some(now));
                        // A key already stored absorbs all of this batch's copies as duplicates.
                        qb.push($crate::ingest::ALERT_UPSERT_TAIL);
                        let rows: Vec<KeyedHit> = qb.build_query_as().fetch_all(&mut **tx).await?;
                        $crate::ingest::keyed_outcomes(batch, chunk, &ids, rows, &mut outcomes, &mut seen_at)?;
                    }
                    Ok((outcomes.into_iter().flatten().collect(), seen_at))
                }

                /// Upserts the batch's observables with their sighting counts; returns their ids
                /// and those claimed for enrichment.
                pub(crate) async fn upsert_observables(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    counts: &[$crate::ingest::Sightings<'_>],
                    enriching: &std::collections::HashSet<TenantId>,
                    now: chrono::DateTime<chrono::Utc>,
                    claim: chrono::DateTime<chrono::Utc>,
                ) -> StoreResult<($crate::ingest::ObservableIds, Vec<Uuid>)> {
                    let mut obs_ids = $crate::ingest::ObservableIds::with_capacity(counts.len());
                    let mut to_enrich: Vec<Uuid> = Vec::new();
                    // 9 parameters per row; keys are unique within a statement (as PostgreSQL's
                    // ON CONFLICT DO UPDATE requires).
                    for chunk in counts.chunks(250) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                            "INSERT INTO observables ({}) ",
                            $crate::ingest::OBSERVABLE_INSERT_COLUMNS
                        ));
                        qb.push_values(chunk, |mut b, ((tenant, kind, value), (private, n))| {
                            let wanted = !*private && enriching.contains(tenant);
                            b.push_bind(Uuid::now_v7())
                                .push_bind(tenant.0)
                                .push_bind(*kind)
                                .push_bind(*value)
                                .push_bind(*private)
                                .push_bind(now)
                                .push_bind(now)
                                .push_bind(*n)
                                .push_bind(wanted.then_some(claim));
                        });
                        qb.push($crate::ingest::OBSERVABLE_UPSERT_TAIL);
                        let rows: Vec<(Uuid, Uuid, String, String, Option<chrono::DateTime<chrono::Utc>>)> =
                            qb.build_query_as().fetch_all(&mut **tx).await?;
                        for (id, tenant, kind, value, enrich_after) in rows {
                            if enrich_after == Some(claim) {
                                to_enrich.push(id);
                            }
                            obs_ids.insert((TenantId(tenant), kind, value), id);
                        }
                    }
                    Ok((obs_ids, to_enrich))
                }

                /// Links the new alerts to their observables.
                pub(crate) async fn link_observables(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    links: &[(Uuid, Uuid)],
                ) -> StoreResult<()> {
                    for chunk in links.chunks(1000) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO alert_observables (alert_id, observable_id) ",
                        );
                        qb.push_values(chunk, |mut b, (alert, obs)| {
                            b.push_bind(*alert).push_bind(*obs);
                        });
                        qb.push(" ON CONFLICT DO NOTHING");
                        qb.build().execute(&mut **tx).await?;
                    }

                    Ok(())
                }

                /// The dashboard roll-ups of the batch's new alerts (see `hourly_counts`):
                /// `alert_hourly` first, as the triggers take them.
                async fn add_to_hourly(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    batch: &[IncomingAlert],
                    seen_at: &[Option<chrono::DateTime<chrono::Utc>>],
                ) -> StoreResult<()> {
                    let counts = $crate::ingest::hourly_counts(batch, seen_at);
                    for chunk in counts.per_source.chunks(1000) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                            "INSERT INTO {} ",
                            $crate::ingest::HOURLY_INSERT
                        ));
                        qb.push_values(chunk, |mut b, ((hour, tenant, source), sev)| {
                            b.push_bind(*hour).push_bind(*tenant).push_bind(*source);
                            for n in sev {
                                b.push_bind(*n);
                            }
                            b.push_bind(sev.iter().sum::<i64>());
                        });
                        qb.push($crate::ingest::HOURLY_UPSERT_TAIL);
                        qb.build().execute(&mut **tx).await?;
                    }
                    for chunk in counts.per_tag_set.chunks(1000) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                            "INSERT INTO {} ",
                            $crate::ingest::HOURLY_TAGS_INSERT
                        ));
                        qb.push_values(chunk, |mut b, ((tenant, hour, source, tags), sev)| {
                            b.push_bind(*tenant)
                                .push_bind(*hour)
                                .push_bind(*source)
                                .push_bind(Json(*tags));
                            for n in sev {
                                b.push_bind(*n);
                            }
                            b.push_bind(sev.iter().sum::<i64>());
                        });
                        qb.push($crate::ingest::HOURLY_TAGS_UPSERT_TAIL);
                        qb.build().execute(&mut **tx).await?;
                    }
                    Ok(())
                }

                /// One ingest transaction. Locks are taken in one global order (alerts by
                /// dedup key, the roll-ups, observables by (tenant, kind, value), then audit
                /// heads by tenant), so concurrent batches on several nodes cannot deadlock.
                pub(crate) async fn ingest_batch(
                    &self,
                    batch: &[IncomingAlert],
                    keys: &[Option<bulwark_core::ApiKeyId>],
                    window: chrono::Duration,
                    audit: bool,
                ) -> StoreResult<Vec<Option<IngestOutcome>>> {
                    // The delivering keys, just before the transaction (one indexed read).
                    let ids = $crate::ingest::distinct_keys(keys);
                    let usable = if ids.is_empty() {
                        Default::default()
                    } else {
                        $crate::ApiKeyStore::usable_api_keys(self, &ids, bulwark_core::time::now()).await?
                    };
                    let kept = $crate::ingest::kept_alerts(batch, keys, &usable);
                    let outcomes = self.ingest_kept(kept.as_deref().unwrap_or(batch), window, audit).await?;
                    Ok($crate::ingest::spread_outcomes(batch.len(), keys, &usable, outcomes))
                }

                async fn ingest_kept(
                    &self,
                    batch: &[IncomingAlert],
                    window: chrono::Duration,
                    audit: bool,
                ) -> StoreResult<Vec<IngestOutcome>> {
                    // Every alert stores its fingerprint; compute it once.
                    let fps: Vec<[u8; 32]> =
                        batch.iter().map(|a| bulwark_normalize::fingerprint(&a.alert)).collect();
                    let mut tx = self.begin_write().await?;
                    let (mut outcomes, seen_at) = Self::write_alerts(&mut tx, batch, &fps, window).await?;
                    Self::add_to_hourly(&mut tx, batch, &seen_at).await?;
                    let mut queued = Self::queue_triggered_runs(&mut tx, batch, &mut outcomes).await?;
                    let new: Vec<(&IncomingAlert, &IngestOutcome)> =
                        batch.iter().zip(&outcomes).filter(|(_, o)| !o.duplicate).collect();
                    let counts = $crate::ingest::batch_sightings(&new);
                    // Automatic enrichment: in tenants with an enrichment integration, a public
                    // observable that is new or due again (`enrich_after` passed) is claimed by
                    // the upsert (its `enrich_after` becomes `claim`) and queued below, once,
                    // however many alerts of the batch (or of concurrent batches) carry it.
                    let enriching = if counts.is_empty() {
                        Default::default()
                    } else {
                        let tenants = counts.iter().map(|((t, _, _), _)| *t).collect();
                        Self::enriching_tenants(&mut tx, &tenants).await?
                    };
                    let now = bulwark_core::time::now();
                    let claim = now + chrono::Duration::seconds($crate::enrichment::CLAIM_SECS);
                    let (obs_ids, mut to_enrich) =
                        Self::upsert_observables(&mut tx, &counts, &enriching, now, claim).await?;
                    if !to_enrich.is_empty() {
                        to_enrich.sort();
                        Self::insert_enrichment_jobs(&mut tx, &to_enrich, false).await?;
                        queued = true;
                    }
                    if !new.is_empty() {
                        queued |= Self::queue_alert_created_notifications(&mut tx, &new).await?;
                    }
                    let links = $crate::ingest::observable_links(&new, &obs_ids);
                    Self::link_observables(&mut tx, &links).await?;
                    if audit {
                        for (tenant, recs) in $crate::ingest::ingest_audit_records(&new)? {
                            Self::append_audit_many(&mut tx, tenant, recs).await?;
                        }
                    }
                    tx.commit().await?;
                    if queued {
                        self.jobs_ready.notify_one();
                    }
                    Ok(outcomes)
                }
            }
        }
    };
}

pub(crate) use impl_ingest_sqlx_writes;

macro_rules! impl_ingest {
    ($store:ident, $db:ty) => {
        mod ingest_impl {
            use super::$store;
            use $crate::ingest::{IncomingAlert, IngestOutcome, NewAlerts};
            use $crate::{IngestStore, StoreResult};
            use bulwark_core::TenantId;

            impl $store {
                /// The runs the batch's alerts start, with their jobs, in the ingest
                /// transaction: an alert is never stored without the runs it triggers.
                pub(crate) async fn queue_triggered_runs(
                    tx: &mut <$db as sqlx::Database>::Connection,
                    batch: &[IncomingAlert],
                    outcomes: &mut [IngestOutcome],
                ) -> StoreResult<bool> {
                    let mut runs = Vec::new();
                    for (a, o) in batch.iter().zip(outcomes.iter_mut()) {
                        let planned = if o.duplicate { &a.triggers.duplicate } else { &a.triggers.created };
                        o.playbooks_triggered = planned.len() as u32;
                        for p in planned {
                            runs.push($crate::automation::NewRun {
                                tenant_id: a.tenant_id,
                                playbook_id: p.playbook_id,
                                playbook_name: p.playbook_name.clone(),
                                playbook_version: p.playbook_version,
                                trigger: "alert.created".into(),
                                alert_id: Some(o.alert_id),
                                incident_id: None,
                                input: serde_json::json!({
                                    "duplicate": o.duplicate,
                                    "duplicate_count": o.duplicate_count,
                                }),
                                requested_by: None,
                                priority: p.priority,
                            });
                        }
                    }
                    if !runs.is_empty() {
                        Self::insert_runs(tx, &runs).await?;
                    }
                    Ok(!runs.is_empty())
                }

                /// Notifications of new alerts (see `notifications`), in the ingest
                /// transaction: one read of the batch's tenants' enabled `alert.created`
                /// rules; an alert's context is built only when a rule wants it. `true` when
                /// a delivery was queued.
                pub(crate) async fn queue_alert_created_notifications(
                    tx: &mut <$db as sqlx::Database>::Connection,
                    new: &NewAlerts<'_>,
                ) -> StoreResult<bool> {
                    let mut tenants: Vec<TenantId> = new.iter().map(|(a, _)| a.tenant_id).collect();
                    tenants.sort();
                    tenants.dedup();
                    let rules = Self::notification_rules_for(tx, "alert.created", &tenants).await?;
                    let mut any = false;
                    for (a, o) in new.iter().filter(|_| !rules.is_empty()) {
                        let wanted: Vec<_> = rules
                            .iter()
                            .filter(|r| r.tenant_id == a.tenant_id
                                && $crate::notifications::severity_passes(r.min_severity.as_deref(), Some(a.alert.severity.as_str())))
                            .collect();
                        if wanted.is_empty() {
                            continue;
                        }
                        let mut view = $crate::ingest::trigger_view(a.tenant_id, &a.alert, a.received_at);
                        if let Some(m) = view.as_object_mut() {
                            m.insert("id".into(), serde_json::json!(o.alert_id));
                        }
                        let e = $crate::notifications::NotifyEvent {
                            tenant_id: a.tenant_id,
                            event: "alert.created",
                            severity: Some(a.alert.severity.as_str().to_string()),
                            subject_id: Some(o.alert_id.to_string()),
                            context: serde_json::json!({"alert": view}),
                        };
                        for r in wanted {
                            any |= Self::insert_delivery(tx, r, &e, None, false).await?.is_some();
                        }
                    }
                    Ok(any)
                }

                /// The same transaction as [`IngestStore::ingest`] minus the audit records,
                /// only for measuring what the audit trail costs (`bulwark-bench`).
                #[cfg(feature = "bench")]
                pub async fn ingest_without_audit(
                    &self,
                    batch: &[IncomingAlert],
                    window: chrono::Duration,
                ) -> StoreResult<Vec<IngestOutcome>> {
                    let outcomes = self.ingest_batch(batch, &[], window, false).await?;
                    Ok(outcomes.into_iter().flatten().collect())
                }
            }

            #[async_trait::async_trait]
            impl IngestStore for $store {
                async fn ingest(
                    &self,
                    batch: &[IncomingAlert],
                    window: chrono::Duration,
                ) -> StoreResult<Vec<IngestOutcome>> {
                    // Without keys every alert is kept: one outcome each.
                    let outcomes = self.ingest_batch(batch, &[], window, true).await?;
                    Ok(outcomes.into_iter().flatten().collect())
                }

                async fn ingest_delivered(
                    &self,
                    batch: &[IncomingAlert],
                    keys: &[Option<bulwark_core::ApiKeyId>],
                    window: chrono::Duration,
                ) -> StoreResult<Vec<Option<IngestOutcome>>> {
                    self.ingest_batch(batch, keys, window, true).await
                }

                async fn alert_count(&self, tenant: TenantId) -> StoreResult<i64> {
                    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM alerts WHERE tenant_id = $1")
                        .bind(tenant.0)
                        .fetch_one(&self.reader)
                        .await?;
                    Ok(n)
                }

                async fn observable_sightings(
                    &self,
                    tenant: TenantId,
                    kind: &str,
                    value: &str,
                ) -> StoreResult<Option<(i64, i64)>> {
                    let row: Option<(i64, i64)> = sqlx::query_as(
                        "SELECT o.sightings, (SELECT COUNT(*) FROM alert_observables l WHERE l.observable_id = o.id) \
                         FROM observables o WHERE o.tenant_id = $1 AND o.kind = $2 AND o.value = $3",
                    )
                    .bind(tenant.0)
                    .bind(kind.to_string())
                    .bind(value.to_string())
                    .fetch_optional(&self.reader)
                    .await?;
                    Ok(row)
                }
            }
        }
    };
}

pub(crate) use impl_ingest;
