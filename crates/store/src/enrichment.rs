//! Automatic enrichment: the per-tenant settings, the lookup cache and the merged reputation.
//!
//! One row of `enrichment_results` per (tenant, kind, value, integration): the last successful
//! lookup (verdict, score, result, `expires_at` = fetched + the tenant's TTL) and the failures
//! since (`attempts`, `error`, `next_attempt_at`). A worker takes a lookup with
//! [`EnrichmentStore::claim_lookup`], which succeeds only when the cached answer expired (or
//! there is none), no backoff is running and no other worker holds it: that row is what makes
//! one lookup out of many alerts sharing an indicator. [`EnrichmentStore::record_lookup`]
//! writes the outcome and, in the same transaction, the observable's merged reputation
//! ([`merge`]) and when it is due again (`enrich_after`).
//!
//! Ingestion claims due observables in its own upsert (`enrich_after` moves to a short lease
//! [`CLAIM_SECS`] ahead) and queues one `enrichment` job per [`JOB_CHUNK`] claimed observables
//! of the batch, in the ingest transaction: nothing is lost between "alert stored" and "lookup
//! queued", and a burst of alerts carrying one indicator queues it once.

use bulwark_core::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// How long a cached answer counts as fresh when the tenant did not choose (a day).
pub const DEFAULT_CACHE_TTL_SECS: i64 = 86_400;
/// The TTL a tenant may choose: a minute to 90 days.
pub const CACHE_TTL_RANGE: std::ops::RangeInclusive<i64> = 60..=90 * 86_400;
/// Entries of a tenant's allow-list.
pub const MAX_ALLOW_LIST: usize = 1000;
/// How long ingestion's claim of a due observable lasts: a later sighting queues it again
/// only after that (its job normally finishes long before).
pub const CLAIM_SECS: i64 = 900;
/// Observables per enrichment job.
pub const JOB_CHUNK: usize = 100;
/// Verdicts from the most to the least severe; the merged verdict is the most severe a source
/// gave.
pub const VERDICT_ORDER: &[&str] = &["malicious", "suspicious", "benign", "unknown"];

/// A tenant's enrichment settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrichmentSettings {
    /// Values never sent to an intel service, besides private and reserved addresses: IPs,
    /// CIDRs (`10.20.0.0/16`), domains (with their subdomains, and URLs and e-mail addresses on
    /// them) or exact values (a hash, a URL).
    pub allow_list: Vec<String>,
    /// How long a lookup's answer is reused (seconds, 60 to 7776000); a sighting after that
    /// looks it up again.
    pub cache_ttl_secs: i64,
}

impl Default for EnrichmentSettings {
    fn default() -> Self {
        Self {
            allow_list: Vec::new(),
            cache_ttl_secs: DEFAULT_CACHE_TTL_SECS,
        }
    }
}

/// Checks the shape of the settings (the integrations crate checks what each entry means);
/// the error names the field.
pub fn check_settings(s: &EnrichmentSettings) -> Result<(), (&'static str, String)> {
    if !CACHE_TTL_RANGE.contains(&s.cache_ttl_secs) {
        return Err((
            "cache_ttl_secs",
            format!(
                "must be {} to {} seconds",
                CACHE_TTL_RANGE.start(),
                CACHE_TTL_RANGE.end()
            ),
        ));
    }
    if s.allow_list.len() > MAX_ALLOW_LIST {
        return Err(("allow_list", format!("at most {MAX_ALLOW_LIST} entries")));
    }
    for (i, e) in s.allow_list.iter().enumerate() {
        if e.is_empty() || e.len() > 2048 || e.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err((
                "allow_list",
                format!("entry {i}: 1 to 2048 characters without spaces"),
            ));
        }
    }
    Ok(())
}

/// One source of a merged reputation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReputationSource {
    pub integration_id: Uuid,
    /// The integration instance's name.
    pub integration: String,
    /// Its type (`virustotal`, ...).
    #[serde(rename = "type")]
    pub type_name: String,
    /// malicious, suspicious, benign or unknown.
    pub verdict: String,
    /// 0 (harmless) to 100.
    pub score: i64,
    pub fetched_at: DateTime<Utc>,
}

/// An observable as the enrichment worker needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnrichTarget {
    pub id: Uuid,
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
    pub kind: String,
    pub value: String,
    pub is_private: bool,
}

/// One lookup: an observable by one integration's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupKey {
    pub tenant_id: TenantId,
    pub kind: String,
    pub value: String,
    pub integration_id: Uuid,
    /// The instance's name and type, and the action used (for the record).
    pub integration: String,
    pub type_name: String,
    pub action: String,
}

/// How a lookup ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupOutcome {
    /// The service answered: cached for `ttl_secs`.
    Found {
        verdict: String,
        score: i64,
        result: Value,
        ttl_secs: i64,
    },
    /// The service failed: the reason is recorded, the previous answer kept, and the next
    /// attempt is due after [`retry_delay`] (longer when retrying cannot help).
    Failed { error: String, retryable: bool },
}

/// A lookup as stored (the observable's `enrichment.results`).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct LookupRecord {
    pub integration_id: Uuid,
    pub integration: String,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub type_name: String,
    pub action: String,
    /// `pending`, `ok` or `failed` (the last attempt).
    pub status: String,
    pub verdict: Option<String>,
    pub score: Option<i64>,
    #[sqlx(json(nullable))]
    pub result: Option<Value>,
    pub fetched_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub locked_until: Option<DateTime<Utc>>,
}

/// The reputation the lookups of one observable add up to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Merged {
    /// The most severe verdict a source gave; `None` while no lookup succeeded.
    pub verdict: Option<String>,
    /// The highest score among the sources giving that verdict.
    pub score: Option<i64>,
    /// Every source that answered, most severe first.
    pub sources: Vec<ReputationSource>,
}

fn rank(verdict: &str) -> usize {
    VERDICT_ORDER
        .iter()
        .position(|v| *v == verdict)
        .unwrap_or(VERDICT_ORDER.len() - 1)
}

/// Merges lookups: each source's last successful answer counts (an expired one too, until it
/// is refreshed; a failed refresh keeps it). The verdict is the most severe any source gave
/// (one intel service knowing an address as a C2 server outweighs others not knowing it); the
/// score is the highest among the sources that gave that verdict.
pub fn merge(lookups: &[LookupRecord]) -> Merged {
    let mut sources: Vec<ReputationSource> = lookups
        .iter()
        .filter_map(|l| {
            Some(ReputationSource {
                integration_id: l.integration_id,
                integration: l.integration.clone(),
                type_name: l.type_name.clone(),
                verdict: l.verdict.clone()?,
                score: l.score.unwrap_or(0),
                fetched_at: l.fetched_at?,
            })
        })
        .collect();
    sources.sort_by(|a, b| {
        rank(&a.verdict)
            .cmp(&rank(&b.verdict))
            .then(b.score.cmp(&a.score))
            .then(a.integration.cmp(&b.integration))
    });
    let verdict = sources.first().map(|s| s.verdict.clone());
    let score = sources.first().map(|s| s.score);
    Merged {
        verdict,
        score,
        sources,
    }
}

/// When an observable is due for enrichment again, from its lookups: the earliest expiry of a
/// fresh answer, the earliest retry of a failure, the end of a lookup in progress.
pub fn due_again(lookups: &[LookupRecord], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    lookups
        .iter()
        .filter_map(|l| {
            if l.locked_until.is_some_and(|t| t > now) {
                return l.locked_until;
            }
            match l.status.as_str() {
                "failed" => l.next_attempt_at.or(l.expires_at),
                _ => l.expires_at,
            }
        })
        .min()
}

/// The exponential backoff of a failing lookup: a minute doubling per attempt, at most six
/// hours; a failure that retrying cannot fix (a rejected key, garbage) waits at least an hour.
pub fn retry_delay(attempts: i32, retryable: bool) -> chrono::Duration {
    let n = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    let secs = (60i64 << n).min(6 * 3600);
    chrono::Duration::seconds(if retryable { secs } else { secs.max(3600) })
}

macro_rules! impl_enrichment {
    ($store:ident, $db:ty, $for_update:literal) => {
        mod enrichment_impl {
            use super::$store;
            use $crate::automation::JOB_ENRICHMENT;
            use $crate::enrichment::{
                check_settings, due_again, merge, retry_delay, EnrichTarget, EnrichmentSettings, LookupKey,
                LookupOutcome, LookupRecord, JOB_CHUNK,
            };
            use $crate::{ChangeCtx, EnrichmentStore, StoreError, StoreResult};
            use bulwark_audit::EventType;
            use bulwark_core::{Scope, TenantId};
            use chrono::{DateTime, Utc};
            use serde_json::json;
            use sqlx::types::Json;
            use sqlx::{QueryBuilder, Transaction};
            use uuid::Uuid;

            type Tx = Transaction<'static, $db>;
            type Conn = <$db as sqlx::Database>::Connection;

            const LOOKUP_COLUMNS: &str = "integration_id, integration, type, action, status, verdict, score, result, \
                 fetched_at, expires_at, error, attempts, next_attempt_at, locked_until";

            impl $store {
                /// Queues enrichment jobs for `ids` (one per chunk) in `tx`; `force` looks up
                /// fresh answers again (a manual request).
                pub(crate) async fn insert_enrichment_jobs(tx: &mut Conn, ids: &[Uuid], force: bool) -> StoreResult<Vec<Uuid>> {
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let now = bulwark_core::time::now();
                    let chunks: Vec<&[Uuid]> = ids.chunks(JOB_CHUNK).collect();
                    let job_ids: Vec<Uuid> = chunks.iter().map(|_| Uuid::now_v7()).collect();
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO jobs (id, kind, tenant_id, run_id, payload, priority, status, run_at, attempts, \
                         max_attempts, created_at, updated_at) ",
                    );
                    qb.push_values(chunks.iter().zip(&job_ids), |mut b, (chunk, id)| {
                        b.push_bind(*id)
                            .push_bind(JOB_ENRICHMENT)
                            .push_bind(None::<Uuid>)
                            .push_bind(None::<Uuid>)
                            .push_bind(Json(json!({"observables": chunk, "force": force})))
                            // Manual requests before the automatic backlog.
                            .push_bind(if force { 50 } else { 150 })
                            .push_bind("queued")
                            .push_bind(now)
                            .push_bind(0)
                            .push_bind(5)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    qb.build().execute(&mut *tx).await?;
                    Self::announce_jobs(tx).await?;
                    Ok(job_ids)
                }

                /// The tenants among `tenants` that have an enabled enrichment integration.
                pub(crate) async fn enriching_tenants(
                    tx: &mut Tx,
                    tenants: &std::collections::BTreeSet<TenantId>,
                ) -> StoreResult<std::collections::HashSet<TenantId>> {
                    if tenants.is_empty() {
                        return Ok(Default::default());
                    }
                    let mut qb = QueryBuilder::<$db>::new("SELECT DISTINCT tenant_id FROM integrations WHERE enrichment = ");
                    qb.push_bind(true).push(" AND enabled = ").push_bind(true).push(" AND tenant_id IN (");
                    let mut sep = qb.separated(", ");
                    for t in tenants {
                        sep.push_bind(t.0);
                    }
                    qb.push(")");
                    let rows: Vec<(Uuid,)> = qb.build_query_as().fetch_all(&mut **tx).await?;
                    Ok(rows.into_iter().map(|(t,)| TenantId(t)).collect())
                }

                async fn settings_row(&self, tenant: TenantId) -> StoreResult<EnrichmentSettings> {
                    let row: Option<(Json<Vec<String>>, i64)> = sqlx::query_as(
                        "SELECT allow_list, cache_ttl_secs FROM enrichment_settings WHERE tenant_id = $1",
                    )
                    .bind(tenant.0)
                    .fetch_optional(&self.reader)
                    .await?;
                    Ok(match row {
                        Some((allow, ttl)) => EnrichmentSettings { allow_list: allow.0, cache_ttl_secs: ttl },
                        None => EnrichmentSettings::default(),
                    })
                }

                /// Recomputes the observable's reputation from its lookups (inside `tx`, with
                /// the observable row locked).
                async fn refresh_observable(tx: &mut Tx, tenant: TenantId, kind: &str, value: &str) -> StoreResult<()> {
                    let now = bulwark_core::time::now();
                    let lookups: Vec<LookupRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {LOOKUP_COLUMNS} FROM enrichment_results WHERE tenant_id = $1 AND kind = $2 AND value = $3 \
                         ORDER BY integration"
                    )))
                    .bind(tenant.0)
                    .bind(kind)
                    .bind(value)
                    .fetch_all(&mut **tx)
                    .await?;
                    let merged = merge(&lookups);
                    let enrichment = json!({
                        "verdict": merged.verdict,
                        "score": merged.score,
                        "sources": merged.sources,
                        "results": lookups,
                    });
                    let enriched_at = lookups.iter().filter_map(|l| l.fetched_at).max();
                    // Without an answer yet, verdict and score stay as they are.
                    let has = merged.verdict.is_some();
                    sqlx::query(
                        "UPDATE observables SET reputation_sources = $1, enrichment = $2, enriched_at = $3, enrich_after = $4, \
                         verdict = CASE WHEN verdict_origin = 'analyst' OR NOT $5 THEN verdict ELSE $6 END, \
                         reputation_score = CASE WHEN verdict_origin = 'analyst' OR NOT $5 THEN reputation_score ELSE $7 END, \
                         verdict_origin = CASE WHEN verdict_origin = 'analyst' OR NOT $5 THEN verdict_origin ELSE 'enrichment' END \
                         WHERE tenant_id = $8 AND kind = $9 AND value = $10",
                    )
                    .bind(Json(&merged.sources))
                    .bind(Json(&enrichment))
                    .bind(enriched_at)
                    .bind(due_again(&lookups, now))
                    .bind(has)
                    .bind(merged.verdict.clone())
                    .bind(merged.score)
                    .bind(tenant.0)
                    .bind(kind)
                    .bind(value)
                    .execute(&mut **tx)
                    .await?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl EnrichmentStore for $store {
                async fn get_enrichment_settings(&self, scope: &Scope, tenant: TenantId) -> StoreResult<EnrichmentSettings> {
                    if !scope.allows(tenant) {
                        return Err(StoreError::NotFound);
                    }
                    self.settings_row(tenant).await
                }

                async fn set_enrichment_settings(
                    &self,
                    ctx: &ChangeCtx,
                    scope: &Scope,
                    tenant: TenantId,
                    settings: &EnrichmentSettings,
                ) -> StoreResult<()> {
                    if !scope.allows(tenant) {
                        return Err(StoreError::NotFound);
                    }
                    check_settings(settings).map_err(|(field, message)| StoreError::Invalid { field, message })?;
                    let before = self.settings_row(tenant).await?;
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "INSERT INTO enrichment_settings (tenant_id, allow_list, cache_ttl_secs, updated_by, updated_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET allow_list = excluded.allow_list, \
                         cache_ttl_secs = excluded.cache_ttl_secs, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                    )
                    .bind(tenant.0)
                    .bind(Json(&settings.allow_list))
                    .bind(settings.cache_ttl_secs)
                    .bind(ctx.actor_name.clone())
                    .bind(bulwark_core::time::now())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| $crate::conflict_or(e, "tenant_id"))?;
                    let rec = $crate::audit::record(
                        ctx,
                        EventType::SettingsChanged,
                        "enrichment_settings",
                        Some(tenant.to_string()),
                        Some(json!({"allow_list_entries": before.allow_list.len(), "cache_ttl_secs": before.cache_ttl_secs})),
                        Some(json!({"allow_list_entries": settings.allow_list.len(), "cache_ttl_secs": settings.cache_ttl_secs})),
                    )?;
                    Self::append_audit(&mut tx, tenant, rec).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn enrichment_settings_of(&self, tenant: TenantId) -> StoreResult<EnrichmentSettings> {
                    self.settings_row(tenant).await
                }

                async fn enrichment_targets(&self, ids: &[Uuid]) -> StoreResult<Vec<EnrichTarget>> {
                    let mut out = Vec::with_capacity(ids.len());
                    for chunk in ids.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "SELECT id, tenant_id, kind, value, is_private FROM observables WHERE id IN (",
                        );
                        let mut sep = qb.separated(", ");
                        for id in chunk {
                            sep.push_bind(*id);
                        }
                        qb.push(") ORDER BY id");
                        out.extend(qb.build_query_as::<EnrichTarget>().fetch_all(&self.reader).await?);
                    }
                    Ok(out)
                }

                async fn claim_lookup(&self, key: &LookupKey, lease: std::time::Duration, force: bool) -> StoreResult<bool> {
                    let now = bulwark_core::time::now();
                    let until = now + $crate::automation::chrono_duration(lease);
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO enrichment_results (tenant_id, kind, value, integration_id, integration, type, action, \
                         status, attempts, locked_until, updated_at) VALUES (",
                    );
                    let mut sep = qb.separated(", ");
                    sep.push_bind(key.tenant_id.0)
                        .push_bind(key.kind.clone())
                        .push_bind(key.value.clone())
                        .push_bind(key.integration_id)
                        .push_bind(key.integration.clone())
                        .push_bind(key.type_name.clone())
                        .push_bind(key.action.clone())
                        .push_bind("pending")
                        .push_bind(0)
                        .push_bind(until)
                        .push_bind(now);
                    qb.push(
                        ") ON CONFLICT (tenant_id, kind, value, integration_id) DO UPDATE SET locked_until = excluded.locked_until, \
                         integration = excluded.integration, type = excluded.type, action = excluded.action, \
                         updated_at = excluded.updated_at WHERE (enrichment_results.locked_until IS NULL OR enrichment_results.locked_until < ",
                    );
                    qb.push_bind(now).push(")");
                    if !force {
                        qb.push(" AND (enrichment_results.expires_at IS NULL OR enrichment_results.expires_at <= ");
                        qb.push_bind(now).push(")");
                        qb.push(" AND (enrichment_results.next_attempt_at IS NULL OR enrichment_results.next_attempt_at <= ");
                        qb.push_bind(now).push(")");
                    }
                    let done = qb.build().execute(&self.writer).await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn record_lookup(&self, key: &LookupKey, outcome: LookupOutcome) -> StoreResult<Option<DateTime<Utc>>> {
                    let now = bulwark_core::time::now();
                    let mut retry_at = None;
                    let mut tx = self.begin_write().await?;
                    // The observable row first: concurrent lookups of one observable (by
                    // several integrations) then merge one after the other.
                    let obs: Option<(Uuid,)> = sqlx::query_as(concat!(
                        "SELECT id FROM observables WHERE tenant_id = $1 AND kind = $2 AND value = $3",
                        $for_update
                    ))
                    .bind(key.tenant_id.0)
                    .bind(&key.kind)
                    .bind(&key.value)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let base = "INSERT INTO enrichment_results (tenant_id, kind, value, integration_id, integration, type, action, \
                                status, verdict, score, result, fetched_at, expires_at, error, attempts, next_attempt_at, \
                                locked_until, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, NULL, $17) \
                                ON CONFLICT (tenant_id, kind, value, integration_id) DO UPDATE SET integration = excluded.integration, \
                                type = excluded.type, action = excluded.action, status = excluded.status, locked_until = NULL, \
                                updated_at = excluded.updated_at, ";
                    match outcome {
                        LookupOutcome::Found { verdict, score, result, ttl_secs } => {
                            sqlx::query(sqlx::AssertSqlSafe(format!(
                                "{base} verdict = excluded.verdict, score = excluded.score, result = excluded.result, \
                                 fetched_at = excluded.fetched_at, expires_at = excluded.expires_at, error = NULL, attempts = 0, \
                                 next_attempt_at = NULL"
                            )))
                            .bind(key.tenant_id.0)
                            .bind(&key.kind)
                            .bind(&key.value)
                            .bind(key.integration_id)
                            .bind(&key.integration)
                            .bind(&key.type_name)
                            .bind(&key.action)
                            .bind("ok")
                            .bind(verdict)
                            .bind(score)
                            .bind(Json(result))
                            .bind(now)
                            .bind(now + chrono::Duration::seconds(ttl_secs))
                            .bind(None::<String>)
                            .bind(0)
                            .bind(None::<DateTime<Utc>>)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                        LookupOutcome::Failed { error, retryable } => {
                            let error: String = error.chars().take(1000).collect();
                            let (attempts,): (i32,) = sqlx::query_as(
                                "SELECT COALESCE(MAX(attempts), 0) FROM enrichment_results WHERE tenant_id = $1 AND kind = $2 \
                                 AND value = $3 AND integration_id = $4",
                            )
                            .bind(key.tenant_id.0)
                            .bind(&key.kind)
                            .bind(&key.value)
                            .bind(key.integration_id)
                            .fetch_one(&mut *tx)
                            .await?;
                            let at = now + retry_delay(attempts + 1, retryable);
                            retry_at = Some(at);
                            sqlx::query(sqlx::AssertSqlSafe(format!(
                                "{base} error = excluded.error, attempts = excluded.attempts, \
                                 next_attempt_at = excluded.next_attempt_at"
                            )))
                            .bind(key.tenant_id.0)
                            .bind(&key.kind)
                            .bind(&key.value)
                            .bind(key.integration_id)
                            .bind(&key.integration)
                            .bind(&key.type_name)
                            .bind(&key.action)
                            .bind("failed")
                            .bind(None::<String>)
                            .bind(None::<i64>)
                            .bind(None::<Json<serde_json::Value>>)
                            .bind(None::<DateTime<Utc>>)
                            .bind(None::<DateTime<Utc>>)
                            .bind(error)
                            .bind(attempts + 1)
                            .bind(at)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    if obs.is_some() {
                        Self::refresh_observable(&mut tx, key.tenant_id, &key.kind, &key.value).await?;
                    }
                    tx.commit().await?;
                    Ok(retry_at)
                }

                async fn queue_enrichment(&self, ctx: &ChangeCtx, tenant: TenantId, ids: &[Uuid], force: bool) -> StoreResult<Vec<Uuid>> {
                    let mut tx = self.begin_write().await?;
                    let jobs = Self::insert_enrichment_jobs(&mut tx, ids, force).await?;
                    if ctx.actor_kind != "system" {
                        let rec = $crate::audit::record(
                            ctx,
                            EventType::IntegrationCalled,
                            "observable",
                            ids.first().map(|i| i.to_string()),
                            None,
                            Some(json!({"requested": "enrichment", "observables": ids.len(), "force": force})),
                        )?;
                        Self::append_audit(&mut tx, tenant, rec).await?;
                    }
                    tx.commit().await?;
                    self.jobs_ready.notify_one();
                    Ok(jobs)
                }
            }
        }
    };
}

pub(crate) use impl_enrichment;

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str, verdict: Option<&str>, score: i64) -> LookupRecord {
        LookupRecord {
            integration_id: Uuid::now_v7(),
            integration: name.into(),
            type_name: name.into(),
            action: "lookup".into(),
            status: if verdict.is_some() { "ok" } else { "failed" }.into(),
            verdict: verdict.map(str::to_owned),
            score: Some(score),
            result: None,
            fetched_at: verdict.map(|_| bulwark_core::time::now()),
            expires_at: None,
            error: None,
            attempts: 0,
            next_attempt_at: None,
            locked_until: None,
        }
    }

    #[test]
    fn the_most_severe_verdict_wins_with_its_highest_score() {
        let m = merge(&[
            lookup("greynoise", Some("benign"), 0),
            lookup("virustotal", Some("suspicious"), 20),
            lookup("threatfox", Some("suspicious"), 50),
            lookup("broken", None, 0),
            lookup("shodan", Some("unknown"), 0),
        ]);
        assert_eq!(m.verdict.as_deref(), Some("suspicious"));
        assert_eq!(m.score, Some(50));
        let names: Vec<_> = m.sources.iter().map(|s| s.integration.as_str()).collect();
        assert_eq!(names, ["threatfox", "virustotal", "greynoise", "shodan"]);
        assert_eq!(merge(&[lookup("broken", None, 0)]), Merged::default());
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        assert_eq!(retry_delay(1, true).num_seconds(), 60);
        assert_eq!(retry_delay(3, true).num_seconds(), 240);
        assert_eq!(retry_delay(40, true).num_seconds(), 6 * 3600);
        assert_eq!(retry_delay(1, false).num_seconds(), 3600);
    }

    #[test]
    fn settings_are_checked() {
        assert!(check_settings(&EnrichmentSettings::default()).is_ok());
        let bad = EnrichmentSettings {
            cache_ttl_secs: 5,
            ..Default::default()
        };
        assert_eq!(
            check_settings(&bad).err().map(|e| e.0),
            Some("cache_ttl_secs")
        );
        let bad = EnrichmentSettings {
            allow_list: vec!["a b".into()],
            ..Default::default()
        };
        assert_eq!(check_settings(&bad).err().map(|e| e.0), Some("allow_list"));
    }
}
