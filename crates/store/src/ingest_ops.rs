//! What keeps ingestion from being a black box: the dead-letter list (rejected payloads, kept
//! bounded, with the reason, for admins to read and replay) and per-day counters of accepted,
//! duplicate and rejected alerts per tenant and source.
//!
//! Counters are added in batches from memory (see the API's `ingest_stats`), not inside the
//! ingest transaction: one hot counter row per (tenant, source, day) updated by every batch
//! would serialize ingestion across PostgreSQL nodes.

use bulwark_core::TenantId;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A rejected payload to keep.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    pub tenant_id: TenantId,
    pub source: String,
    /// Machine-readable class, e.g. `invalid_json`, `not_an_object`, `unmappable`.
    pub reason: String,
    /// What exactly was wrong, as the sender was told.
    pub detail: String,
    /// The payload (cut at the storage limit when `truncated`).
    pub payload: String,
    /// Size of the payload as received.
    pub payload_bytes: i64,
    pub truncated: bool,
    pub api_key_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub source: String,
    pub reason: String,
    pub detail: String,
    pub payload_bytes: i64,
    /// The stored payload is cut short (it cannot be replayed).
    pub truncated: bool,
    pub api_key_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub replayed_at: Option<DateTime<Utc>>,
    pub replayed_by: Option<String>,
    /// The alert the replay stored (new or the duplicate it matched).
    pub alert_id: Option<Uuid>,
    /// Only when reading one dead letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub tenant_id: Option<TenantId>,
    pub source: Option<String>,
    pub reason: Option<String>,
    /// `Some(false)`: not replayed yet; `Some(true)`: replayed.
    pub replayed: Option<bool>,
    /// Keyset cursor: the id of the last row of the previous page (newest first).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// An amount to add to one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestCount {
    pub tenant_id: TenantId,
    pub source: String,
    pub day: NaiveDate,
    /// `accepted`, `duplicate` or `rejected`.
    pub outcome: &'static str,
    /// Why it was rejected; empty otherwise.
    pub reason: String,
    pub count: i64,
    pub last_at: DateTime<Utc>,
}

/// A counter summed over days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStat {
    pub tenant_id: TenantId,
    pub source: String,
    pub outcome: String,
    pub reason: String,
    pub count: i64,
    pub last_at: DateTime<Utc>,
}

pub(crate) const DEAD_LETTER_COLUMNS: &str = "id, tenant_id, source, reason, detail, payload_bytes, truncated, api_key_id, \
     request_id, received_at, replayed_at, replayed_by, alert_id";

#[derive(sqlx::FromRow)]
pub(crate) struct DeadLetterRow {
    pub(crate) id: Uuid,
    pub(crate) tenant_id: Uuid,
    pub(crate) source: String,
    pub(crate) reason: String,
    pub(crate) detail: String,
    pub(crate) payload_bytes: i64,
    pub(crate) truncated: bool,
    pub(crate) api_key_id: Option<Uuid>,
    pub(crate) request_id: Option<String>,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) replayed_at: Option<DateTime<Utc>>,
    pub(crate) replayed_by: Option<String>,
    pub(crate) alert_id: Option<Uuid>,
}

impl DeadLetterRow {
    pub(crate) fn into_dead_letter(self, payload: Option<String>) -> DeadLetter {
        DeadLetter {
            id: self.id,
            tenant_id: TenantId(self.tenant_id),
            source: self.source,
            reason: self.reason,
            detail: self.detail,
            payload_bytes: self.payload_bytes,
            truncated: self.truncated,
            api_key_id: self.api_key_id,
            request_id: self.request_id,
            received_at: self.received_at,
            replayed_at: self.replayed_at,
            replayed_by: self.replayed_by,
            alert_id: self.alert_id,
            payload,
        }
    }
}

macro_rules! impl_ingest_ops {
    ($store:ident, $db:ty) => {
        mod ingest_ops_impl {
            use super::$store;
            use $crate::ingest_ops::{
                DEAD_LETTER_COLUMNS, DeadLetter, DeadLetterFilter, DeadLetterRow, IngestCount,
                IngestStat, NewDeadLetter,
            };
            use $crate::scope_sql::push_scope;
            use $crate::{ChangeCtx, IngestOpsStore, StoreError, StoreResult};
            use bulwark_audit::EventType;
            use bulwark_core::{Scope, TenantId};
            use chrono::{DateTime, NaiveDate, Utc};
            use serde_json::json;
            use sqlx::QueryBuilder;
            use uuid::Uuid;

            impl $store {
                async fn dead_letter_row(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    scope: &Scope,
                    id: Uuid,
                ) -> StoreResult<DeadLetterRow> {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = "
                    ));
                    qb.push_bind(id);
                    push_scope(&mut qb, "tenant_id", scope);
                    let row: Option<DeadLetterRow> = qb.build_query_as().fetch_optional(&mut **tx).await?;
                    row.ok_or(StoreError::NotFound)
                }
            }

            #[async_trait::async_trait]
            impl IngestOpsStore for $store {
                async fn add_dead_letters(
                    &self,
                    letters: &[NewDeadLetter],
                    keep_per_tenant: u32,
                ) -> StoreResult<Vec<Uuid>> {
                    if letters.is_empty() {
                        return Ok(Vec::new());
                    }
                    let ids: Vec<Uuid> = letters.iter().map(|_| Uuid::now_v7()).collect();
                    let mut tx = self.begin_write().await?;
                    for (chunk, idc) in letters.chunks(200).zip(ids.chunks(200)) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO dead_letters (id, tenant_id, source, reason, detail, payload, \
                             payload_bytes, truncated, api_key_id, request_id, received_at) ",
                        );
                        qb.push_values(chunk.iter().zip(idc), |mut b, (l, id)| {
                            b.push_bind(*id)
                                .push_bind(l.tenant_id.0)
                                .push_bind(l.source.clone())
                                .push_bind(l.reason.clone())
                                .push_bind(l.detail.clone())
                                .push_bind(l.payload.clone())
                                .push_bind(l.payload_bytes)
                                .push_bind(l.truncated)
                                .push_bind(l.api_key_id)
                                .push_bind(l.request_id.clone())
                                .push_bind(l.received_at);
                        });
                        qb.build().execute(&mut *tx).await?;
                    }
                    let mut tenants: Vec<TenantId> = letters.iter().map(|l| l.tenant_id).collect();
                    tenants.sort();
                    tenants.dedup();
                    let keep = i64::from(keep_per_tenant.max(1));
                    for t in tenants {
                        // Keep the newest `keep` (ids are time-ordered UUIDv7).
                        sqlx::query(
                            "DELETE FROM dead_letters WHERE tenant_id = $1 AND id < \
                             (SELECT id FROM dead_letters WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                        )
                        .bind(t.0)
                        .bind(keep - 1)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(ids)
                }

                async fn list_dead_letters(
                    &self,
                    scope: &Scope,
                    f: &DeadLetterFilter,
                ) -> StoreResult<Vec<DeadLetter>> {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE 1 = 1"
                    ));
                    push_scope(&mut qb, "tenant_id", scope);
                    if let Some(t) = f.tenant_id {
                        qb.push(" AND tenant_id = ").push_bind(t.0);
                    }
                    if let Some(s) = &f.source {
                        qb.push(" AND source = ").push_bind(s.clone());
                    }
                    if let Some(r) = &f.reason {
                        qb.push(" AND reason = ").push_bind(r.clone());
                    }
                    match f.replayed {
                        Some(true) => {
                            qb.push(" AND replayed_at IS NOT NULL");
                        }
                        Some(false) => {
                            qb.push(" AND replayed_at IS NULL");
                        }
                        None => {}
                    }
                    if let Some(b) = f.before {
                        qb.push(" AND id < ").push_bind(b);
                    }
                    qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(f.limit));
                    let rows: Vec<DeadLetterRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(|r| r.into_dead_letter(None)).collect())
                }

                async fn get_dead_letter(&self, scope: &Scope, id: Uuid) -> StoreResult<DeadLetter> {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {DEAD_LETTER_COLUMNS}, payload FROM dead_letters WHERE id = "
                    ));
                    qb.push_bind(id);
                    push_scope(&mut qb, "tenant_id", scope);
                    #[derive(sqlx::FromRow)]
                    struct WithPayload {
                        #[sqlx(flatten)]
                        row: DeadLetterRow,
                        payload: String,
                    }
                    let row: Option<WithPayload> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    let r = row.ok_or(StoreError::NotFound)?;
                    Ok(r.row.into_dead_letter(Some(r.payload)))
                }

                async fn mark_dead_letter_replayed(
                    &self,
                    ctx: &ChangeCtx,
                    scope: &Scope,
                    id: Uuid,
                    alert_id: Uuid,
                ) -> StoreResult<DeadLetter> {
                    let mut tx = self.begin_write().await?;
                    let row = Self::dead_letter_row(&mut tx, scope, id).await?;
                    let tenant = TenantId(row.tenant_id);
                    let now = bulwark_core::time::now();
                    let by = ctx.actor_name.clone().or_else(|| ctx.actor_id.clone());
                    sqlx::query("UPDATE dead_letters SET replayed_at = $1, replayed_by = $2, alert_id = $3 WHERE id = $4")
                        .bind(now)
                        .bind(by.clone())
                        .bind(alert_id)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    let rec = $crate::audit::record(ctx, EventType::DeadLetterReplayed, "dead_letter", Some(id.to_string()),
                        None, Some(json!({"source": row.source, "reason": row.reason, "alert_id": alert_id})))?;
                    Self::append_audit(&mut tx, tenant, rec).await?;
                    tx.commit().await?;
                    let mut letter = row.into_dead_letter(None);
                    letter.replayed_at = Some(now);
                    letter.replayed_by = by;
                    letter.alert_id = Some(alert_id);
                    Ok(letter)
                }

                async fn discard_dead_letter(&self, ctx: &ChangeCtx, scope: &Scope, id: Uuid) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    let row = Self::dead_letter_row(&mut tx, scope, id).await?;
                    sqlx::query("DELETE FROM dead_letters WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    let rec = $crate::audit::record(ctx, EventType::DeadLetterDiscarded, "dead_letter", Some(id.to_string()),
                        Some(json!({"source": row.source, "reason": row.reason, "payload_bytes": row.payload_bytes})), None)?;
                    Self::append_audit(&mut tx, TenantId(row.tenant_id), rec).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn add_ingest_counts(&self, counts: &[IngestCount]) -> StoreResult<()> {
                    if counts.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.begin_write().await?;
                    // Keys must be unique within one statement (PostgreSQL's ON CONFLICT).
                    let mut merged: std::collections::BTreeMap<(TenantId, &str, NaiveDate, &str, &str), (i64, DateTime<Utc>)> =
                        Default::default();
                    for c in counts {
                        let e = merged
                            .entry((c.tenant_id, c.source.as_str(), c.day, c.outcome, c.reason.as_str()))
                            .or_insert((0, c.last_at));
                        e.0 += c.count;
                        e.1 = e.1.max(c.last_at);
                    }
                    let merged: Vec<_> = merged.into_iter().collect();
                    for chunk in merged.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO ingest_counters (tenant_id, source, day, outcome, reason, count, last_at) ",
                        );
                        qb.push_values(chunk, |mut b, ((t, source, day, outcome, reason), (n, at))| {
                            b.push_bind(t.0)
                                .push_bind(source.to_string())
                                .push_bind(*day)
                                .push_bind(*outcome)
                                .push_bind(reason.to_string())
                                .push_bind(*n)
                                .push_bind(*at);
                        });
                        qb.push(
                            " ON CONFLICT (tenant_id, source, day, outcome, reason) DO UPDATE SET \
                             count = ingest_counters.count + excluded.count, \
                             last_at = CASE WHEN excluded.last_at > ingest_counters.last_at \
                             THEN excluded.last_at ELSE ingest_counters.last_at END",
                        );
                        qb.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn ingest_stats(&self, scope: &Scope, since: NaiveDate) -> StoreResult<Vec<IngestStat>> {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT tenant_id, source, outcome, reason, CAST(SUM(count) AS BIGINT) AS count, MAX(last_at) AS last_at \
                         FROM ingest_counters WHERE day >= ",
                    );
                    qb.push_bind(since);
                    push_scope(&mut qb, "tenant_id", scope);
                    qb.push(" GROUP BY tenant_id, source, outcome, reason ORDER BY tenant_id, source, outcome, reason");
                    let rows: Vec<(Uuid, String, String, String, i64, DateTime<Utc>)> =
                        qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows
                        .into_iter()
                        .map(|(t, source, outcome, reason, count, last_at)| IngestStat {
                            tenant_id: TenantId(t),
                            source,
                            outcome,
                            reason,
                            count,
                            last_at,
                        })
                        .collect())
                }
            }
        }
    };
}

pub(crate) use impl_ingest_ops;
