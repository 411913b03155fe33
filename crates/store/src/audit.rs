//! The audit trail in the store: every state change appends a record to its tenant's hash chain
//! in the same transaction as the change (see `docs/audit.md`). If the append fails, the
//! transaction, and so the change, does not happen.
//!
//! The SQL is instantiated per backend by `impl_audit!`; this module holds the pure parts.

use crate::{ChangeCtx, StoreError, StoreResult};
use bulwark_audit::{Actor, ActorKind, AuditValue, EventType, NewRecord, Summary, Target};
use bulwark_core::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Builds a record for a change. `before`/`after` are small JSON summaries (no secrets).
pub fn record(
    ctx: &ChangeCtx,
    event: EventType,
    target_kind: &str,
    target_id: Option<String>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> StoreResult<NewRecord> {
    let conv = |v: Option<serde_json::Value>| -> StoreResult<Option<AuditValue>> {
        v.map(AuditValue::try_from)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("audit summary: {e}")))
    };
    let mut rec = NewRecord::new(
        actor(ctx),
        event,
        Target {
            kind: target_kind.to_string(),
            id: target_id,
        },
    );
    rec.summary = Summary {
        before: conv(before)?,
        after: conv(after)?,
        detail: None,
    };
    rec.request_id = ctx.request_id.clone();
    Ok(rec)
}

pub fn actor(ctx: &ChangeCtx) -> Actor {
    Actor {
        kind: match ctx.actor_kind {
            "user" => ActorKind::User,
            "api_key" => ActorKind::ApiKey,
            "playbook" => ActorKind::Playbook,
            _ => ActorKind::System,
        },
        id: ctx.actor_id.clone(),
        name: ctx.actor_name.clone(),
    }
}

/// Filters for `GET /api/v1/audit/events`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant_id: Option<TenantId>,
    pub actor_id: Option<String>,
    pub event_type: Option<EventType>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keyset cursor: (tenant, seq) of the last row of the previous page.
    pub after: Option<(TenantId, u64)>,
    pub limit: u32,
}

/// One audit event as the API shows it: decoded from the stored bytes (never from the query
/// columns), with its chain position.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub tenant_id: TenantId,
    pub seq: u64,
    /// Chain hash of this record (hex).
    pub hash: String,
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub record: Vec<u8>,
    pub hash: Vec<u8>,
}

impl AuditRow {
    pub(crate) fn stored(self) -> StoreResult<bulwark_audit::StoredRow> {
        Ok(bulwark_audit::StoredRow {
            tenant_id: self.tenant_id,
            seq: u64::try_from(self.seq)
                .map_err(|_| StoreError::Corrupt("negative audit sequence".into()))?,
            record_bytes: self.record,
            // A hash of the wrong length cannot match; keep it as all-zero so verification
            // reports a hash mismatch at this seq instead of an error.
            hash: bulwark_audit::Hash(self.hash.try_into().unwrap_or([0u8; 32])),
        })
    }

    pub(crate) fn event(self) -> StoreResult<AuditEvent> {
        let tenant_id = TenantId(self.tenant_id);
        let hash = hex::encode(&self.hash);
        let seq = u64::try_from(self.seq).unwrap_or(0);
        // Decoding only validates: canonical bytes re-encode to themselves, so once they decode
        // the stored bytes are the record's JSON.
        let record = bulwark_audit::decode_record(&self.record)
            .ok()
            .and_then(|_| serde_json::from_slice::<serde_json::Value>(&self.record).ok())
            .unwrap_or_else(|| serde_json::json!({"undecodable": true}));
        Ok(AuditEvent {
            tenant_id,
            seq,
            hash,
            record,
        })
    }
}

pub(crate) fn head_from(seq: i64, hash: Vec<u8>) -> StoreResult<bulwark_audit::ChainHead> {
    Ok(bulwark_audit::ChainHead {
        seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt("negative audit head".into()))?,
        hash: bulwark_audit::Hash(
            hash.try_into()
                .map_err(|_| StoreError::Corrupt("audit head hash is not 32 bytes".into()))?,
        ),
    })
}

pub(crate) fn to_i64(seq: u64) -> StoreResult<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt("audit sequence overflow".into()))
}

/// Chains `recs` after `head` for `tenant`: the rows to insert and the new head.
pub(crate) fn chain_records(
    tenant: TenantId,
    mut head: bulwark_audit::ChainHead,
    recs: Vec<bulwark_audit::NewRecord>,
) -> StoreResult<(Vec<bulwark_audit::Appended>, bulwark_audit::ChainHead)> {
    let mut rows = Vec::with_capacity(recs.len());
    for rec in recs {
        let appended = bulwark_audit::append(tenant.0, &head, rec)
            .map_err(|e| StoreError::Corrupt(format!("audit append: {e}")))?;
        head = appended.head;
        rows.push(appended);
    }
    Ok((rows, head))
}

/// Creates a tenant's chain head at genesis when it has none (bind: tenant, genesis hash).
pub(crate) const AUDIT_HEAD_INIT: &str = "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) \
     ON CONFLICT (tenant_id) DO NOTHING";
/// Reads a tenant's chain head (PostgreSQL appends ` FOR UPDATE`).
pub(crate) const AUDIT_HEAD_READ: &str = "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1";
/// Moves a tenant's chain head (bind: seq, hash, tenant).
pub(crate) const AUDIT_HEAD_WRITE: &str =
    "UPDATE audit_heads SET seq = $1, hash = $2 WHERE tenant_id = $3";
/// `audit_log`'s columns in bind order (10 per row).
pub(crate) const AUDIT_LOG_INSERT: &str = "audit_log (tenant_id, seq, ts, event_type, actor_kind, actor_id, \
     target_kind, target_id, record, hash)";

macro_rules! impl_audit {
    ($store:ident, $db:ty, $for_update:literal) => {
        mod audit_impl {
            use super::$store;
            use $crate::audit::{AuditEvent, AuditFilter, AuditRow, head_from, to_i64};
            use $crate::scope_sql::push_scope;
            use $crate::{AuditStore, StoreError, StoreResult};
            use bulwark_audit::{ChainHead, NewRecord, SignedCheckpoint, StoredRow};
            use bulwark_core::{Scope, TenantId};
            use sqlx::{QueryBuilder, Transaction};

            impl $store {
                /// Appends `rec` to `tenant`'s chain inside `tx`. The head row is locked
                /// (PostgreSQL: `FOR UPDATE`; SQLite: the writer already holds the lock), so
                /// concurrent appends to one tenant serialize and sequence numbers stay
                /// gap-free.
                pub(crate) async fn append_audit(
                    tx: &mut Transaction<'static, $db>,
                    tenant: TenantId,
                    rec: NewRecord,
                ) -> StoreResult<()> {
                    Self::append_audit_many(tx, tenant, vec![rec]).await
                }

                /// Appends several records to one tenant's chain: the head is read and written
                /// once, the records go in with multi-row inserts (the ingest hot path).
                pub(crate) async fn append_audit_many(
                    tx: &mut Transaction<'static, $db>,
                    tenant: TenantId,
                    recs: Vec<NewRecord>,
                ) -> StoreResult<()> {
                    if recs.is_empty() {
                        return Ok(());
                    }
                    let genesis = bulwark_audit::genesis_hash(tenant.0);
                    sqlx::query($crate::audit::AUDIT_HEAD_INIT)
                    .bind(tenant.0)
                    .bind(genesis.0.to_vec())
                    .execute(&mut **tx)
                    .await?;
                    let (seq, hash): (i64, Vec<u8>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "{}{}",
                        $crate::audit::AUDIT_HEAD_READ,
                        $for_update
                    )))
                    .bind(tenant.0)
                    .fetch_one(&mut **tx)
                    .await?;
                    let (rows, head) = $crate::audit::chain_records(tenant, head_from(seq, hash)?, recs)?;
                    // 10 parameters per row; 500 rows stay far below both backends' limits.
                    for chunk in rows.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new(format!(
                            "INSERT INTO {} ",
                            $crate::audit::AUDIT_LOG_INSERT
                        ));
                        let mut err = None;
                        qb.push_values(chunk, |mut b, a| {
                            let r = &a.record;
                            let seq = match to_i64(a.head.seq) {
                                Ok(s) => s,
                                Err(e) => {
                                    err = Some(e);
                                    0
                                }
                            };
                            b.push_bind(tenant.0)
                                .push_bind(seq)
                                .push_bind(r.ts.as_datetime())
                                .push_bind(r.event_type.as_str())
                                .push_bind(r.actor.kind.to_string())
                                .push_bind(r.actor.id.clone())
                                .push_bind(r.target.kind.clone())
                                .push_bind(r.target.id.clone())
                                .push_bind(a.record_bytes.clone())
                                .push_bind(a.hash.0.to_vec());
                        });
                        if let Some(e) = err {
                            return Err(e);
                        }
                        qb.build().execute(&mut **tx).await?;
                    }
                    sqlx::query($crate::audit::AUDIT_HEAD_WRITE)
                        .bind(to_i64(head.seq)?)
                        .bind(head.hash.0.to_vec())
                        .bind(tenant.0)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl AuditStore for $store {
                async fn append_event(&self, tenant: TenantId, rec: NewRecord) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    Self::append_audit(&mut tx, tenant, rec).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn list_audit(
                    &self,
                    scope: &Scope,
                    f: &AuditFilter,
                ) -> StoreResult<Vec<AuditEvent>> {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT tenant_id, seq, record, hash FROM audit_log WHERE 1 = 1",
                    );
                    push_scope(&mut qb, "tenant_id", scope);
                    if let Some(t) = f.tenant_id {
                        qb.push(" AND tenant_id = ").push_bind(t.0);
                    }
                    if let Some(a) = &f.actor_id {
                        qb.push(" AND actor_id = ").push_bind(a.clone());
                    }
                    if let Some(e) = f.event_type {
                        qb.push(" AND event_type = ").push_bind(e.as_str());
                    }
                    if let Some(k) = &f.target_kind {
                        qb.push(" AND target_kind = ").push_bind(k.clone());
                    }
                    if let Some(i) = &f.target_id {
                        qb.push(" AND target_id = ").push_bind(i.clone());
                    }
                    if let Some(s) = f.since {
                        qb.push(" AND ts >= ").push_bind(s);
                    }
                    if let Some(u) = f.until {
                        qb.push(" AND ts < ").push_bind(u);
                    }
                    if let Some((t, seq)) = f.after {
                        qb.push(" AND (tenant_id > ").push_bind(t.0);
                        qb.push(" OR (tenant_id = ").push_bind(t.0);
                        qb.push(" AND seq > ").push_bind(to_i64(seq)?);
                        qb.push("))");
                    }
                    qb.push(" ORDER BY tenant_id, seq LIMIT ").push_bind(i64::from(f.limit));
                    let rows: Vec<AuditRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    rows.into_iter().map(AuditRow::event).collect()
                }

                async fn audit_head(&self, tenant: TenantId) -> StoreResult<Option<ChainHead>> {
                    let row: Option<(i64, Vec<u8>)> =
                        sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
                            .bind(tenant.0)
                            .fetch_optional(&self.reader)
                            .await?;
                    row.map(|(s, h)| head_from(s, h)).transpose()
                }

                async fn audit_rows(
                    &self,
                    tenant: TenantId,
                    after_seq: u64,
                    limit: u32,
                ) -> StoreResult<Vec<StoredRow>> {
                    let rows: Vec<AuditRow> = sqlx::query_as(
                        "SELECT tenant_id, seq, record, hash FROM audit_log \
                         WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    )
                    .bind(tenant.0)
                    .bind(to_i64(after_seq)?)
                    .bind(i64::from(limit))
                    .fetch_all(&self.reader)
                    .await?;
                    rows.into_iter().map(AuditRow::stored).collect()
                }

                async fn audit_tenants(&self, scope: &Scope) -> StoreResult<Vec<TenantId>> {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT tenant_id FROM audit_heads WHERE 1 = 1",
                    );
                    push_scope(&mut qb, "tenant_id", scope);
                    qb.push(" ORDER BY tenant_id");
                    let rows: Vec<(uuid::Uuid,)> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(|(t,)| TenantId(t)).collect())
                }

                async fn insert_checkpoint(&self, cp: &SignedCheckpoint) -> StoreResult<bool> {
                    let signed = serde_json::to_string(cp)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    let done = sqlx::query(
                        "INSERT INTO audit_checkpoints (tenant_id, seq, signed) VALUES ($1, $2, $3) \
                         ON CONFLICT (tenant_id, seq) DO NOTHING",
                    )
                    .bind(cp.checkpoint.tenant_id)
                    .bind(to_i64(cp.checkpoint.seq)?)
                    .bind(signed)
                    .execute(&self.writer)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn checkpoints(&self, tenant: TenantId) -> StoreResult<Vec<SignedCheckpoint>> {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "SELECT signed FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq",
                    )
                    .bind(tenant.0)
                    .fetch_all(&self.reader)
                    .await?;
                    rows.into_iter()
                        .map(|(s,)| {
                            serde_json::from_str(&s).map_err(|e| {
                                StoreError::Corrupt(format!("stored checkpoint: {e}"))
                            })
                        })
                        .collect()
                }
            }
        }
    };
}

pub(crate) use impl_audit;

/// How much of a chain to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    /// From genesis, every record and every checkpoint.
    Full,
    /// From the newest checkpoint whose signature verifies with a trusted key.
    Incremental,
}

const VERIFY_PAGE: u32 = 5_000;

/// Verifies one tenant's chain as stored: records, checkpoints (signatures checked against
/// `keys`, which must include every key that ever signed), and the stored head. Reports the
/// first broken sequence number and why.
pub async fn verify_tenant(
    store: &(dyn crate::Database + '_),
    tenant: TenantId,
    keys: &[bulwark_audit::VerifyingKey],
    mode: VerifyMode,
) -> StoreResult<bulwark_audit::VerifyReport> {
    let checkpoints = store.checkpoints(tenant).await?;
    let start = match mode {
        VerifyMode::Full => None,
        VerifyMode::Incremental => checkpoints
            .iter()
            .rev()
            .find(|cp| {
                keys.iter()
                    .any(|k| bulwark_audit::verify_checkpoint(cp, k).is_ok())
            })
            .map(|cp| bulwark_audit::ChainHead {
                seq: cp.checkpoint.seq,
                hash: cp.checkpoint.head_hash,
            }),
    };
    let mut verifier =
        bulwark_audit::Verifier::with_checkpoints(tenant.0, start, keys, checkpoints.iter())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut after = start.map_or(0, |s| s.seq);
    loop {
        let rows = store.audit_rows(tenant, after, VERIFY_PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let mut broken = false;
        for row in &rows {
            if verifier.feed(row).is_err() {
                broken = true;
                break;
            }
        }
        if broken || rows.len() < VERIFY_PAGE as usize {
            break;
        }
    }
    let head = store
        .audit_head(tenant)
        .await?
        .unwrap_or_else(|| bulwark_audit::ChainHead::genesis(tenant.0));
    Ok(verifier.finish_with_head(&head))
}

/// Signs the current head of every chain in `scope` that moved since its last checkpoint.
/// Returns how many checkpoints were written.
pub async fn sign_checkpoints(
    store: &(dyn crate::Database + '_),
    signer: &bulwark_audit::CheckpointSigner,
    scope: &bulwark_core::Scope,
) -> StoreResult<usize> {
    let mut written = 0;
    for tenant in store.audit_tenants(scope).await? {
        let Some(head) = store.audit_head(tenant).await? else {
            continue;
        };
        let last = store
            .checkpoints(tenant)
            .await?
            .last()
            .map(|c| c.checkpoint.seq);
        if head.seq == 0 || last == Some(head.seq) {
            continue;
        }
        let cp = signer.sign(tenant.0, &head, bulwark_audit::AuditTime::now());
        if store.insert_checkpoint(&cp).await? {
            written += 1;
        }
    }
    Ok(written)
}
