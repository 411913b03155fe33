//! SQLite's ingest transaction, written straight on the handle of the writer's connection.
//!
//! Why not through sqlx like everything else: sqlx's SQLite driver runs each statement on the
//! connection's worker thread and sends every returned row back as a message. With the cores
//! busy serving HTTP, those hand-offs (context switches, futexes, wake-ups of the other
//! thread), not SQLite's own work, were most of the single writer's time (decisions 0009 and
//! 0011). Here the ingest writer's thread takes the writer connection from the pool, locks
//! sqlx's worker away from it (`lock_handle`), and issues BEGIN IMMEDIATE, the key check, every
//! row of the batch (alerts, roll-ups, observables, links, audit chain) and COMMIT itself,
//! through rusqlite: one hand-off per batch instead of a dozen. Only the rare extras (playbook
//! runs, enrichment jobs, notification deliveries) go through sqlx, inside the same
//! transaction. PostgreSQL keeps its sqlx statements (`ingest::impl_ingest_sqlx_writes`).
//!
//! Rows are multi-row statements, not one statement per row: SQLite opens a statement journal
//! for each statement that fires triggers or may hit a conflict, and copies every page the
//! statement changes into it, so one row per statement measured 20-40% slower (`bulwark-bench
//! store-ingest`).
//!
//! Values are written exactly as sqlx encodes them (UUIDs as 16-byte blobs, timestamps as
//! RFC 3339 text with `+00:00`, JSON as text), since sqlx reads the rows and SQL compares the
//! timestamps as text.

use crate::StoreResult;
use crate::audit::{
    AUDIT_HEAD_INIT, AUDIT_HEAD_READ, AUDIT_HEAD_WRITE, AUDIT_LOG_INSERT, chain_records, head_from,
    to_i64,
};
use crate::ingest::{
    ALERT_INSERT_COLUMNS, ALERT_UPSERT_TAIL, AlertsWritten, HOURLY_INSERT, HOURLY_TAGS_INSERT,
    HOURLY_TAGS_UPSERT_TAIL, HOURLY_UPSERT_TAIL, IncomingAlert, IngestOutcome, KeyedHit,
    OBSERVABLE_INSERT_COLUMNS, OBSERVABLE_UPSERT_TAIL, ObservableIds, Sightings, batch_sightings,
    distinct_keys, fold_by_source_id, hourly_counts, ingest_audit_records, kept_alerts,
    keyed_outcomes, observable_links, spread_outcomes,
};
use crate::sqlite::SqliteStore;
use bulwark_audit::NewRecord;
use bulwark_core::{ApiKeyId, TenantId};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{OptionalExtension, params, params_from_iter};
use sqlx::Sqlite;
use std::collections::{BTreeSet, HashSet};
use uuid::Uuid;

/// A timestamp as sqlx writes `DateTime<Utc>` to SQLite.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// The transaction's connection as a rusqlite connection, locked away from sqlx meanwhile.
struct Locked<'t> {
    // Declared first, so dropped first: its statements are finalized before sqlx gets the
    // handle back.
    conn: rusqlite::Connection,
    _lock: sqlx::sqlite::LockedSqliteHandle<'t>,
}

impl<'t> Locked<'t> {
    #[allow(unsafe_code)]
    async fn new(conn: &'t mut sqlx::SqliteConnection) -> StoreResult<Self> {
        let mut lock = conn.lock_handle().await?;
        let raw = lock.as_raw_handle();
        // SAFETY: `raw` is the open connection behind `conn`. `lock` keeps sqlx's worker thread
        // away from it until it is dropped, and `conn`, which does not own the handle (so
        // never closes it), is dropped before `lock` (field order) and finalizes every
        // statement it prepared. Both crates link the same libsqlite3-sys, so the handle
        // means the same thing to both.
        let conn = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }?;
        Ok(Self { conn, _lock: lock })
    }

    fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }
}

/// The stored alert an incoming one became (new or matched).
struct Hit {
    id: Uuid,
    duplicate_count: i64,
    title: String,
    severity: String,
}

fn hit(r: &rusqlite::Row<'_>) -> rusqlite::Result<Hit> {
    Ok(Hit {
        id: r.get(0)?,
        duplicate_count: r.get(1)?,
        title: r.get(2)?,
        severity: r.get(3)?,
    })
}

const RETURNING_HIT: &str = " RETURNING id, duplicate_count, title, severity";

/// A new alert without a source id; `?1`..`?21` in `ALERT_INSERT_COLUMNS` order.
fn insert_sql() -> String {
    format!(
        "INSERT INTO alerts ({ALERT_INSERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
         ?11, ?12, ?13, ?14, ?15, ?16, ?17, NULL, 0, ?18, ?18, ?19, ?19, ?20, ?21){RETURNING_HIT}"
    )
}

/// Stores one alert without a source id, deduplicated by fingerprint within `window` (the
/// single writer makes the check-then-insert safe). Returns its outcome and, when stored new,
/// its first_seen.
fn write_alert(
    conn: &rusqlite::Connection,
    a: &IncomingAlert,
    fp: &[u8; 32],
    window: chrono::Duration,
) -> rusqlite::Result<(IngestOutcome, Option<DateTime<Utc>>)> {
    let n = &a.alert;
    let now = bulwark_core::time::now();
    let id = Uuid::now_v7();
    // A new alert's first_seen is its id's millisecond (see `alerts::window_ids`).
    let seen = bulwark_core::ids::v7_time(id).unwrap_or(now);
    let existing: Option<Uuid> = conn
        .prepare_cached(
            "SELECT id FROM alerts WHERE tenant_id = ?1 AND fingerprint = ?2 AND source_id IS NULL \
                 AND last_seen >= ?3 ORDER BY last_seen DESC LIMIT 1",
        )?
        .query_row(
            params![a.tenant_id.0, &fp[..], ts(a.received_at - window)],
            |r| r.get(0),
        )
        .optional()?;
    let h = match existing {
        Some(existing) => conn
            .prepare_cached(&format!(
                "UPDATE alerts SET duplicate_count = duplicate_count + 1, last_seen = ?1, \
                 latest_payload = ?2, updated_at = ?1 WHERE id = ?3{RETURNING_HIT}"
            ))?
            .query_row(params![ts(now), a.raw, existing], hit)?,
        None => conn.prepare_cached(&insert_sql())?.query_row(
            params![
                id,
                a.tenant_id.0,
                n.source.as_str(),
                n.source_id,
                &fp[..],
                n.title,
                n.severity.as_str(),
                n.severity_original,
                n.rule_name,
                n.rule_id,
                n.event_time.map(ts),
                n.source_ip.map(|i| i.to_string()),
                n.dest_ip.map(|i| i.to_string()),
                n.hostname,
                n.username,
                json(n)?,
                a.raw,
                ts(seen),
                ts(now),
                n.description,
                json(&n.tags)?,
            ],
            hit,
        )?,
    };
    let inserted = h.id == id;
    Ok((
        IngestOutcome {
            alert_id: h.id,
            duplicate: !inserted,
            duplicate_count: h.duplicate_count,
            title: h.title,
            severity: h.severity,
            playbooks_triggered: 0,
        },
        inserted.then_some(seen),
    ))
}

/// A bound value; text and blobs borrowed from the batch where they can be.
type Param<'a> = ToSqlOutput<'a>;

fn text(s: &str) -> Param<'_> {
    ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
}

fn opt_text(s: Option<&str>) -> Param<'_> {
    s.map_or(ToSqlOutput::Owned(Value::Null), text)
}

fn owned(s: String) -> Param<'static> {
    ToSqlOutput::Owned(Value::Text(s))
}

fn uuid(u: Uuid) -> Param<'static> {
    ToSqlOutput::Owned(Value::Blob(u.as_bytes().to_vec()))
}

fn int(i: i64) -> Param<'static> {
    ToSqlOutput::Owned(Value::Integer(i))
}

/// `INSERT INTO {head} VALUES (?, ...), ...`: `rows` rows of `cols` placeholders.
fn multi_row(head: &str, rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(", "));
    let mut sql = String::with_capacity(head.len() + 20 + rows * (row.len() + 2));
    sql.push_str("INSERT INTO ");
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&row);
    }
    sql
}

/// Alerts with a source id, folded per (tenant, source, source id) as on PostgreSQL: one
/// multi-row upsert per 400 keys (25 values each, under SQLite's 32,766).
fn write_keyed(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    keyed: &[usize],
    outcomes: &mut [Option<IngestOutcome>],
    seen_at: &mut [Option<DateTime<Utc>>],
) -> StoreResult<()> {
    let groups = fold_by_source_id(batch, keyed);
    let now = bulwark_core::time::now();
    let now_text = ts(now);
    for chunk in groups.chunks(400) {
        let mut ids: Vec<(Uuid, DateTime<Utc>)> = Vec::with_capacity(chunk.len());
        let mut values: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * 25);
        for g in chunk {
            let first = &batch[g[0]];
            let n = &first.alert;
            let latest = g.last().map(|i| &batch[*i]).filter(|_| g.len() > 1);
            let id = Uuid::now_v7();
            // first_seen is the id's millisecond (see `alerts::window_ids`).
            let seen = bulwark_core::ids::v7_time(id).unwrap_or(now);
            ids.push((id, seen));
            let seen = ts(seen);
            values.extend([
                uuid(id),
                uuid(first.tenant_id.0),
                text(n.source.as_str()),
                opt_text(n.source_id.as_deref()),
                ToSqlOutput::Borrowed(ValueRef::Blob(&fps[g[0]])),
                text(&n.title),
                text(n.severity.as_str()),
                opt_text(n.severity_original.as_deref()),
                opt_text(n.rule_name.as_deref()),
                opt_text(n.rule_id.as_deref()),
                n.event_time
                    .map_or(ToSqlOutput::Owned(Value::Null), |t| owned(ts(t))),
                n.source_ip
                    .map_or(ToSqlOutput::Owned(Value::Null), |i| owned(i.to_string())),
                n.dest_ip
                    .map_or(ToSqlOutput::Owned(Value::Null), |i| owned(i.to_string())),
                opt_text(n.hostname.as_deref()),
                opt_text(n.username.as_deref()),
                owned(json(n)?),
                text(&first.raw),
                opt_text(latest.map(|a| a.raw.as_str())),
                int(g.len() as i64 - 1),
                owned(seen.clone()),
                owned(seen),
                text(&now_text),
                text(&now_text),
                opt_text(n.description.as_deref()),
                owned(json(&n.tags)?),
            ]);
        }
        let mut sql = multi_row(&format!("alerts ({ALERT_INSERT_COLUMNS})"), chunk.len(), 25);
        sql.push_str(ALERT_UPSERT_TAIL);
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(values.iter()), |r| {
                Ok(KeyedHit {
                    id: r.get(0)?,
                    tenant_id: r.get(1)?,
                    source: r.get(2)?,
                    source_id: r.get(3)?,
                    duplicate_count: r.get(4)?,
                    title: r.get(5)?,
                    severity: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        keyed_outcomes(batch, chunk, &ids, rows, outcomes, seen_at)?;
    }
    Ok(())
}

/// Stores the batch's alerts: those without a source id one by one ([`write_alert`]), the
/// others by multi-row upserts ([`write_keyed`]). Returns their outcomes in batch order, with
/// the first_seen of each alert stored new.
fn write_alerts(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    window: chrono::Duration,
) -> StoreResult<AlertsWritten> {
    let mut outcomes: Vec<Option<IngestOutcome>> = vec![None; batch.len()];
    let mut seen_at: Vec<Option<DateTime<Utc>>> = vec![None; batch.len()];
    let mut keyed = Vec::with_capacity(batch.len());
    for (i, (a, fp)) in batch.iter().zip(fps).enumerate() {
        if a.alert.source_id.is_some() {
            keyed.push(i);
            continue;
        }
        let (o, seen) = write_alert(conn, a, fp, window)?;
        outcomes[i] = Some(o);
        seen_at[i] = seen;
    }
    write_keyed(conn, batch, fps, &keyed, &mut outcomes, &mut seen_at)?;
    Ok((outcomes.into_iter().flatten().collect(), seen_at))
}

/// Adds the new alerts to the dashboard roll-ups (see `ingest::hourly_counts`).
fn add_to_hourly(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    seen_at: &[Option<DateTime<Utc>>],
) -> StoreResult<()> {
    let counts = hourly_counts(batch, seen_at);
    // 9 and 10 values per row: 1,000 rows stay under SQLite's 32,766.
    for chunk in counts.per_source.chunks(1000) {
        let mut values: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * 9);
        for ((hour, tenant, source), sev) in chunk {
            values.extend([int(*hour), uuid(*tenant), text(source)]);
            values.extend(sev.iter().map(|n| int(*n)));
            values.push(int(sev.iter().sum()));
        }
        let mut sql = multi_row(HOURLY_INSERT, chunk.len(), 9);
        sql.push_str(HOURLY_UPSERT_TAIL);
        conn.prepare(&sql)?.execute(params_from_iter(values))?;
    }
    for chunk in counts.per_tag_set.chunks(1000) {
        let mut values: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * 10);
        for ((tenant, hour, source, tags), sev) in chunk {
            values.extend([uuid(*tenant), int(*hour), text(source), owned(json(tags)?)]);
            values.extend(sev.iter().map(|n| int(*n)));
            values.push(int(sev.iter().sum()));
        }
        let mut sql = multi_row(HOURLY_TAGS_INSERT, chunk.len(), 10);
        sql.push_str(HOURLY_TAGS_UPSERT_TAIL);
        conn.prepare(&sql)?.execute(params_from_iter(values))?;
    }
    Ok(())
}

/// `?, ?, ...`: `n` placeholders.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The tenants among `tenants` with an enabled enrichment integration.
fn enriching_tenants(
    conn: &rusqlite::Connection,
    tenants: &BTreeSet<TenantId>,
) -> StoreResult<HashSet<TenantId>> {
    if tenants.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "SELECT DISTINCT tenant_id FROM integrations WHERE enrichment = 1 AND enabled = 1 \
         AND tenant_id IN ({})",
        placeholders(tenants.len())
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(tenants.iter().map(|t| t.0)), |r| {
        r.get::<_, Uuid>(0)
    })?;
    Ok(rows
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .map(TenantId)
        .collect())
}

/// Whether any of `tenants` has an enabled `alert.created` notification rule (the rules
/// themselves are read through sqlx, only then).
fn wants_alert_notifications(
    conn: &rusqlite::Connection,
    tenants: &BTreeSet<TenantId>,
) -> StoreResult<bool> {
    if tenants.is_empty() {
        return Ok(false);
    }
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM notification_rules WHERE event = 'alert.created' \
         AND enabled = 1 AND tenant_id IN ({}))",
        placeholders(tenants.len())
    );
    let any: bool = conn
        .prepare(&sql)?
        .query_row(params_from_iter(tenants.iter().map(|t| t.0)), |r| r.get(0))?;
    Ok(any)
}

/// Upserts the batch's observables with their sighting counts (250 per statement, 9 values
/// each); returns their ids and those claimed for enrichment (`enrich_after` became `claim`).
fn upsert_observables(
    conn: &rusqlite::Connection,
    counts: &[Sightings<'_>],
    enriching: &HashSet<TenantId>,
    now: DateTime<Utc>,
    claim: DateTime<Utc>,
) -> StoreResult<(ObservableIds, Vec<Uuid>)> {
    let mut ids = ObservableIds::with_capacity(counts.len());
    let mut to_enrich = Vec::new();
    let (now, claim) = (ts(now), ts(claim));
    for chunk in counts.chunks(250) {
        let mut values: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * 9);
        for ((tenant, kind, value), (private, n)) in chunk {
            let wanted = !*private && enriching.contains(tenant);
            values.extend([
                uuid(Uuid::now_v7()),
                uuid(tenant.0),
                text(kind),
                text(value),
                int(i64::from(*private)),
                text(&now),
                text(&now),
                int(*n),
                opt_text(wanted.then_some(claim.as_str())),
            ]);
        }
        let mut sql = multi_row(
            &format!("observables ({OBSERVABLE_INSERT_COLUMNS})"),
            chunk.len(),
            9,
        );
        sql.push_str(OBSERVABLE_UPSERT_TAIL);
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(values.iter()))?;
        while let Some(r) = rows.next()? {
            let id: Uuid = r.get(0)?;
            let enrich_after: Option<String> = r.get(4)?;
            if enrich_after.as_deref() == Some(claim.as_str()) {
                to_enrich.push(id);
            }
            ids.insert((TenantId(r.get(1)?), r.get(2)?, r.get(3)?), id);
        }
    }
    Ok((ids, to_enrich))
}

/// Links the new alerts to their observables (alert id, observable id), 1,000 per statement.
fn link_observables(conn: &rusqlite::Connection, links: &[(Uuid, Uuid)]) -> StoreResult<()> {
    for chunk in links.chunks(1000) {
        let mut sql = multi_row(
            "alert_observables (alert_id, observable_id)",
            chunk.len(),
            2,
        );
        sql.push_str(" ON CONFLICT DO NOTHING");
        let values = chunk.iter().flat_map(|(a, o)| [uuid(*a), uuid(*o)]);
        conn.prepare(&sql)?.execute(params_from_iter(values))?;
    }
    Ok(())
}

/// Appends `recs` to `tenant`'s audit chain: the same rows as `audit::append_audit_many`
/// (the single writer holds the chain's head).
fn append_audit_many(
    conn: &rusqlite::Connection,
    tenant: TenantId,
    recs: Vec<NewRecord>,
) -> StoreResult<()> {
    if recs.is_empty() {
        return Ok(());
    }
    let genesis = bulwark_audit::genesis_hash(tenant.0);
    conn.prepare_cached(AUDIT_HEAD_INIT)?
        .execute(params![tenant.0, &genesis.0[..]])?;
    let (seq, hash): (i64, Vec<u8>) = conn
        .prepare_cached(AUDIT_HEAD_READ)?
        .query_row(params![tenant.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (rows, head) = chain_records(tenant, head_from(seq, hash)?, recs)?;
    for chunk in rows.chunks(500) {
        let mut values: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * 10);
        for a in chunk {
            let r = &a.record;
            values.extend([
                uuid(tenant.0),
                int(to_i64(a.head.seq)?),
                owned(ts(r.ts.as_datetime())),
                text(r.event_type.as_str()),
                owned(r.actor.kind.to_string()),
                opt_text(r.actor.id.as_deref()),
                text(&r.target.kind),
                opt_text(r.target.id.as_deref()),
                ToSqlOutput::Borrowed(ValueRef::Blob(&a.record_bytes)),
                ToSqlOutput::Borrowed(ValueRef::Blob(&a.hash.0)),
            ]);
        }
        let sql = multi_row(AUDIT_LOG_INSERT, chunk.len(), 10);
        conn.prepare(&sql)?.execute(params_from_iter(values))?;
    }
    conn.prepare_cached(AUDIT_HEAD_WRITE)?.execute(params![
        to_i64(head.seq)?,
        &head.hash.0[..],
        tenant.0
    ])?;
    Ok(())
}

/// The usable keys among those that delivered the batch (not revoked, not expired).
fn usable_keys(
    conn: &rusqlite::Connection,
    keys: &[Option<ApiKeyId>],
) -> StoreResult<HashSet<ApiKeyId>> {
    let ids = distinct_keys(keys);
    let mut usable = HashSet::with_capacity(ids.len());
    let now = ts(bulwark_core::time::now());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) \
             AND id IN ({})",
            placeholders(chunk.len())
        );
        let values = std::iter::once(owned(now.clone())).chain(chunk.iter().map(|k| uuid(k.0)));
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), |r| r.get::<_, Uuid>(0))?;
        for id in rows {
            usable.insert(ApiKeyId(id?));
        }
    }
    Ok(usable)
}

/// Checks the delivering keys, then writes the alerts they may still deliver; returns what
/// was written, the usable keys, and the kept alerts when not all of the batch was.
fn write_checked(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    keys: &[Option<ApiKeyId>],
    window: chrono::Duration,
    audit: bool,
) -> StoreResult<(Written, HashSet<ApiKeyId>, Option<Vec<IncomingAlert>>)> {
    let usable = usable_keys(conn, keys)?;
    let kept = kept_alerts(batch, keys, &usable);
    let written = match &kept {
        None => write_batch(conn, batch, fps, window, audit)?,
        Some(kept) => {
            let fps: Vec<[u8; 32]> = kept
                .iter()
                .map(|a| bulwark_normalize::fingerprint(&a.alert))
                .collect();
            write_batch(conn, kept, &fps, window, audit)?
        }
    };
    Ok((written, usable, kept))
}

/// What the rows written on the writer's thread leave for sqlx to do.
struct Written {
    outcomes: Vec<IngestOutcome>,
    /// Observables claimed for enrichment (sorted).
    to_enrich: Vec<Uuid>,
    /// A tenant of the batch has `alert.created` notification rules.
    notify: bool,
}

/// Everything of an ingest transaction but what only sqlx writes (playbook runs, enrichment
/// jobs, notification deliveries, which most batches do not need), in one go on the
/// transaction's connection.
fn write_batch(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    window: chrono::Duration,
    audit: bool,
) -> StoreResult<Written> {
    let (outcomes, seen_at) = write_alerts(conn, batch, fps, window)?;
    add_to_hourly(conn, batch, &seen_at)?;
    let new: Vec<(&IncomingAlert, &IngestOutcome)> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| !o.duplicate)
        .collect();
    let counts = batch_sightings(&new);
    let enriching = enriching_tenants(conn, &counts.iter().map(|((t, _, _), _)| *t).collect())?;
    let now = bulwark_core::time::now();
    let claim = now + chrono::Duration::seconds(crate::enrichment::CLAIM_SECS);
    let (obs_ids, mut to_enrich) = upsert_observables(conn, &counts, &enriching, now, claim)?;
    to_enrich.sort();
    let notify = wants_alert_notifications(conn, &new.iter().map(|(a, _)| a.tenant_id).collect())?;
    link_observables(conn, &observable_links(&new, &obs_ids))?;
    if audit {
        for (tenant, recs) in ingest_audit_records(&new)? {
            append_audit_many(conn, tenant, recs)?;
        }
    }
    drop(new);
    Ok(Written {
        outcomes,
        to_enrich,
        notify,
    })
}

/// A write transaction begun on the writer's connection by hand (not by sqlx), so that
/// BEGIN, the rows and COMMIT all run on the calling thread. If it is dropped while still
/// open (an error that a ROLLBACK could not undo, or a cancelled future), the connection is
/// closed instead of going back to the pool, which rolls the transaction back: no later user
/// of the pool can find a transaction left open.
struct RawTx {
    conn: sqlx::pool::PoolConnection<Sqlite>,
    open: bool,
}

impl Drop for RawTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

impl SqliteStore {
    /// One ingest transaction. The rows every batch writes go through rusqlite on this
    /// thread in one hold of the connection ([`write_batch`]), between a BEGIN and a COMMIT
    /// issued there too; each sqlx statement would be a hand-off to the connection's worker
    /// thread and back, and with the cores busy serving HTTP those hand-offs, not SQLite,
    /// were most of the writer's time (docs/benchmarks.md). Only the rare extras (playbook
    /// runs, enrichment jobs, notification deliveries) go through sqlx, inside the same
    /// transaction.
    pub(crate) async fn ingest_batch(
        &self,
        batch: &[IncomingAlert],
        keys: &[Option<ApiKeyId>],
        window: chrono::Duration,
        audit: bool,
    ) -> StoreResult<Vec<Option<IngestOutcome>>> {
        let fps: Vec<[u8; 32]> = batch
            .iter()
            .map(|a| bulwark_normalize::fingerprint(&a.alert))
            .collect();
        let mut tx = RawTx {
            conn: self.writer.acquire().await?,
            open: false,
        };
        let (written, usable, kept) = {
            let locked = Locked::new(&mut tx.conn).await?;
            let conn = locked.conn();
            conn.execute_batch("BEGIN IMMEDIATE")?;
            tx.open = true;
            let (written, usable, kept) =
                match write_checked(conn, batch, &fps, keys, window, audit) {
                    Ok(w) => w,
                    Err(e) => {
                        if conn.execute_batch("ROLLBACK").is_ok() {
                            tx.open = false;
                        }
                        return Err(e);
                    }
                };
            let stored = kept.as_deref().unwrap_or(batch);
            let triggers = stored.iter().any(|a| !a.triggers.is_empty());
            if !triggers && written.to_enrich.is_empty() && !written.notify {
                conn.execute_batch("COMMIT")?;
                tx.open = false;
            }
            (written, usable, kept)
        };
        let stored = kept.as_deref().unwrap_or(batch);
        let Written {
            mut outcomes,
            to_enrich,
            notify,
        } = written;
        if tx.open {
            let extras = self
                .write_extras(&mut tx.conn, stored, &mut outcomes, &to_enrich, notify)
                .await;
            if let Err(e) = extras {
                if sqlx::raw_sql("ROLLBACK")
                    .execute(&mut *tx.conn)
                    .await
                    .is_ok()
                {
                    tx.open = false;
                }
                return Err(e);
            }
            sqlx::raw_sql("COMMIT").execute(&mut *tx.conn).await?;
            tx.open = false;
            self.jobs_ready.notify_one();
        }
        Ok(spread_outcomes(batch.len(), keys, &usable, outcomes))
    }

    /// What only sqlx writes, inside the open ingest transaction: the runs the alerts start,
    /// the enrichment jobs of the observables claimed, the notification deliveries.
    async fn write_extras(
        &self,
        conn: &mut sqlx::SqliteConnection,
        batch: &[IncomingAlert],
        outcomes: &mut [IngestOutcome],
        to_enrich: &[Uuid],
        notify: bool,
    ) -> StoreResult<()> {
        Self::queue_triggered_runs(conn, batch, outcomes).await?;
        Self::insert_enrichment_jobs(conn, to_enrich, false).await?;
        if notify {
            let new: Vec<(&IncomingAlert, &IngestOutcome)> = batch
                .iter()
                .zip(outcomes.iter())
                .filter(|(_, o)| !o.duplicate)
                .collect();
            Self::queue_alert_created_notifications(conn, &new).await?;
        }
        Ok(())
    }
}
