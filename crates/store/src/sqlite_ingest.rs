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
    distinct_keys, fold_by_fingerprint, fold_by_source_id, group_outcomes, hourly_counts,
    ingest_audit_records, kept_alerts, keyed_outcomes, observable_links, spread_outcomes,
};
use crate::sqlite::SqliteStore;
use bulwark_audit::NewRecord;
use bulwark_core::{ApiKeyId, TenantId};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, params_from_iter};
use sqlx::Sqlite;
use std::collections::{BTreeSet, HashMap, HashSet};
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
        // Statements are cached for the batch (dropped with `conn`): a batch of thousands of
        // alerts runs the same full-size multi-row statement many times, and parsing one of
        // 10,000 placeholders is not free.
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Self { conn, _lock: lock })
    }

    fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }
}

/// The stored alert a group of copies became (new or matched), as `RETURNING` reads it.
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

/// `(?, ...), ...`: `rows` rows of `cols` placeholders, for a `VALUES` list.
fn value_rows(rows: usize, cols: usize) -> String {
    let row = format!("({})", placeholders(cols));
    vec![row; rows].join(", ")
}

/// `INSERT INTO {head} VALUES (?, ...), ...`: `rows` rows of `cols` placeholders.
fn multi_row(head: &str, rows: usize, cols: usize) -> String {
    format!("INSERT INTO {head} VALUES {}", value_rows(rows, cols))
}

/// Multi-row inserts of each group's first alert (400 groups, 25 values each, per statement:
/// under SQLite's 32,766), followed by `tail`; `each` gets every chunk, the id and first_seen
/// offered to each of its groups, and the rows the statement returned (read by `read`).
fn insert_first_copies<G: AsRef<[usize]>, R>(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    groups: &[G],
    tail: &str,
    read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    mut each: impl FnMut(&[G], &[(Uuid, DateTime<Utc>)], Vec<R>) -> StoreResult<()>,
) -> StoreResult<()> {
    let now = bulwark_core::time::now();
    let now_text = ts(now);
    for chunk in groups.chunks(400) {
        let mut ids: Vec<(Uuid, DateTime<Utc>)> = Vec::with_capacity(chunk.len());
        let mut values: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * 25);
        for g in chunk {
            let g = g.as_ref();
            let latest = g.last().map(|i| &batch[*i]).filter(|_| g.len() > 1);
            let id = Uuid::now_v7();
            // first_seen is the id's millisecond (see `alerts::window_ids`).
            let seen = bulwark_core::ids::v7_time(id).unwrap_or(now);
            ids.push((id, seen));
            let seen = ts(seen);
            let first = &batch[g[0]];
            let n = &first.alert;
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
        sql.push_str(tail);
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(values.iter()), &read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        each(chunk, &ids, rows)?;
    }
    Ok(())
}

/// Alerts with a source id, folded per (tenant, source, source id) as on PostgreSQL: one
/// multi-row upsert per 400 keys.
fn write_keyed(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    keyed: &[usize],
    outcomes: &mut [Option<IngestOutcome>],
    seen_at: &mut [Option<DateTime<Utc>>],
) -> StoreResult<()> {
    let groups = fold_by_source_id(batch, keyed);
    insert_first_copies(
        conn,
        batch,
        fps,
        &groups,
        ALERT_UPSERT_TAIL,
        |r| {
            Ok(KeyedHit {
                id: r.get(0)?,
                tenant_id: r.get(1)?,
                source: r.get(2)?,
                source_id: r.get(3)?,
                duplicate_count: r.get(4)?,
                title: r.get(5)?,
                severity: r.get(6)?,
            })
        },
        |chunk, ids, rows| keyed_outcomes(batch, chunk, ids, rows, outcomes, seen_at),
    )
}

/// Groups per matching read (4 values each).
const MATCH_CHUNK: usize = 300;

/// The stored alert each group's fingerprint matches within the window (the newest), by
/// group position: one read per [`MATCH_CHUNK`] groups, each an index lookup on `alerts_fingerprint`.
fn match_fingerprints(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    groups: &[Vec<usize>],
    window: chrono::Duration,
) -> StoreResult<HashMap<usize, Uuid>> {
    let mut matched = HashMap::new();
    for (c, chunk) in groups.chunks(MATCH_CHUNK).enumerate() {
        let mut values: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * 4);
        for (k, g) in chunk.iter().enumerate() {
            let first = &batch[g[0]];
            values.extend([
                int((c * MATCH_CHUNK + k) as i64),
                uuid(first.tenant_id.0),
                ToSqlOutput::Borrowed(ValueRef::Blob(&fps[g[0]])),
                owned(ts(first.received_at - window)),
            ]);
        }
        let rows = value_rows(chunk.len(), 4);
        let sql = format!(
            "WITH w (o, t, f, since) AS (VALUES {rows}) \
             SELECT o, (SELECT a.id FROM alerts a WHERE a.tenant_id = w.t AND a.fingerprint = w.f \
             AND a.source_id IS NULL AND a.last_seen >= w.since ORDER BY a.last_seen DESC LIMIT 1) \
             FROM w"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut found = stmt.query(params_from_iter(values.iter()))?;
        while let Some(r) = found.next()? {
            let at: i64 = r.get(0)?;
            if let Some(id) = r.get::<_, Option<Uuid>>(1)? {
                let at = usize::try_from(at)
                    .map_err(|_| crate::StoreError::Corrupt("bad group position".into()))?;
                matched.insert(at, id);
            }
        }
    }
    Ok(matched)
}

/// Alerts without a source id, folded per (tenant, source, fingerprint) as on PostgreSQL: each
/// group is matched to an alert stored within the window, or inserted. A few statements per
/// batch, not two per alert: each single-row insert fired the search index's trigger in a
/// statement of its own, and FTS5 writes its pending postings out at every statement's
/// savepoint, so those inserts were ~55% of the writer's time on NDJSON batches
/// (docs/benchmarks.md). The single writer makes the check-then-insert safe.
fn write_by_fingerprint(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    unkeyed: &[usize],
    window: chrono::Duration,
    outcomes: &mut [Option<IngestOutcome>],
    seen_at: &mut [Option<DateTime<Utc>>],
) -> StoreResult<()> {
    let groups = fold_by_fingerprint(batch, fps, unkeyed);
    if groups.is_empty() {
        return Ok(());
    }
    let matched = match_fingerprints(conn, batch, fps, &groups, window)?;
    // Matched: every copy is a duplicate; the last one is the latest payload.
    let dups: Vec<(&Vec<usize>, Uuid)> = groups
        .iter()
        .enumerate()
        .filter_map(|(k, g)| matched.get(&k).map(|id| (g, *id)))
        .collect();
    let now = ts(bulwark_core::time::now());
    for chunk in dups.chunks(1000) {
        let mut values: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * 3 + 2);
        for (g, id) in chunk {
            let latest = g.last().map_or("", |i| batch[*i].raw.as_str());
            values.extend([uuid(*id), int(g.len() as i64), text(latest)]);
        }
        values.extend([text(&now), text(&now)]);
        let rows = value_rows(chunk.len(), 3);
        let sql = format!(
            "WITH u (id, n, latest) AS (VALUES {rows}) \
             UPDATE alerts SET duplicate_count = alerts.duplicate_count + u.n, last_seen = ?, \
             latest_payload = u.latest, updated_at = ? FROM u WHERE alerts.id = u.id{RETURNING_HIT}"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let hits: HashMap<Uuid, Hit> = stmt
            .query_map(params_from_iter(values.iter()), hit)?
            .map(|h| h.map(|h| (h.id, h)))
            .collect::<rusqlite::Result<_>>()?;
        for (g, id) in chunk {
            let h = hits.get(id).ok_or_else(|| {
                crate::StoreError::Corrupt("update returned no row for an alert".into())
            })?;
            group_outcomes(
                g,
                false,
                h.id,
                h.duplicate_count,
                &h.title,
                &h.severity,
                outcomes,
            );
        }
    }
    // Not matched: the first copy is stored, the others count as its duplicates.
    let new: Vec<&Vec<usize>> = groups
        .iter()
        .enumerate()
        .filter(|(k, _)| !matched.contains_key(k))
        .map(|(_, g)| g)
        .collect();
    insert_first_copies(
        conn,
        batch,
        fps,
        &new,
        RETURNING_HIT,
        hit,
        |chunk, ids, rows| {
            let hits: HashMap<Uuid, Hit> = rows.into_iter().map(|h| (h.id, h)).collect();
            for (g, (id, seen)) in chunk.iter().zip(ids) {
                let h = hits.get(id).ok_or_else(|| {
                    crate::StoreError::Corrupt("insert returned no row for an alert".into())
                })?;
                seen_at[g[0]] = Some(*seen);
                group_outcomes(
                    g,
                    true,
                    h.id,
                    h.duplicate_count,
                    &h.title,
                    &h.severity,
                    outcomes,
                );
            }
            Ok(())
        },
    )
}

/// Stores the batch's alerts: those without a source id by fingerprint
/// ([`write_by_fingerprint`]), the others by multi-row upserts ([`write_keyed`]). Returns
/// their outcomes in batch order, with the first_seen of each alert stored new.
fn write_alerts(
    conn: &rusqlite::Connection,
    batch: &[IncomingAlert],
    fps: &[[u8; 32]],
    window: chrono::Duration,
) -> StoreResult<AlertsWritten> {
    let mut outcomes: Vec<Option<IngestOutcome>> = vec![None; batch.len()];
    let mut seen_at: Vec<Option<DateTime<Utc>>> = vec![None; batch.len()];
    let (unkeyed, keyed): (Vec<usize>, Vec<usize>) =
        (0..batch.len()).partition(|i| batch[*i].alert.source_id.is_none());
    write_by_fingerprint(
        conn,
        batch,
        fps,
        &unkeyed,
        window,
        &mut outcomes,
        &mut seen_at,
    )?;
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
        conn.prepare_cached(&sql)?
            .execute(params_from_iter(values))?;
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
        conn.prepare_cached(&sql)?
            .execute(params_from_iter(values))?;
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
    let mut stmt = conn.prepare_cached(&sql)?;
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
        let mut stmt = conn.prepare_cached(&sql)?;
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
        conn.prepare_cached(&sql)?
            .execute(params_from_iter(values))?;
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
        conn.prepare_cached(&sql)?
            .execute(params_from_iter(values))?;
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
        let mut stmt = conn.prepare_cached(&sql)?;
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
