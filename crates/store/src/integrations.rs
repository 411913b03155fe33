//! Integration instances (per tenant), their health checks, and actions run by hand.
//!
//! The store never sees a secret in clear: `secrets` is the AEAD ciphertext the integrations
//! crate made (bound to the row's id), and `config` holds only non-secret fields. Changes are
//! audited (`system.settings.changed`, object `integration`) without any secret material: the
//! audit record names which secret fields are set, never their values.

use bulwark_core::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// A stored integration instance. `secrets` is the ciphertext; never serialize it to a client.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: String,
    pub description: Option<String>,
    pub config: Value,
    #[serde(skip)]
    pub secrets: Option<String>,
    pub enabled: bool,
    pub is_default: bool,
    pub enrichment: bool,
    pub health_status: Option<String>,
    pub health_message: Option<String>,
    pub health_checked_at: Option<DateTime<Utc>>,
    pub health_latency_ms: Option<i32>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a create or an update writes (the caller validated and encrypted it).
#[derive(Debug, Clone)]
pub struct IntegrationWrite {
    /// The row id: the ciphertext is bound to it, so the caller picks it before encrypting.
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub type_name: String,
    pub name: String,
    pub description: Option<String>,
    pub config: Value,
    pub secrets: Option<String>,
    /// Names of the secret fields that are set (for the audit record; never values).
    pub secret_fields: Vec<String>,
    pub enabled: bool,
    pub is_default: bool,
    pub enrichment: bool,
}

/// The result of a health check.
#[derive(Debug, Clone)]
pub struct HealthResult {
    pub ok: bool,
    pub message: String,
    pub checked_at: DateTime<Utc>,
    pub latency_ms: i32,
}

/// An action run by hand (`POST /api/v1/actions/execute`).
#[derive(Debug, Clone)]
pub struct NewActionExecution {
    pub tenant_id: TenantId,
    pub alert_id: Option<Uuid>,
    pub integration_id: Option<Uuid>,
    pub action: String,
    pub ok: bool,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct IntegrationRow {
    id: Uuid,
    tenant_id: Uuid,
    #[sqlx(rename = "type")]
    type_name: String,
    name: String,
    description: Option<String>,
    config: sqlx::types::Json<Value>,
    secrets: Option<String>,
    enabled: bool,
    is_default: bool,
    enrichment: bool,
    health_status: Option<String>,
    health_message: Option<String>,
    health_checked_at: Option<DateTime<Utc>>,
    health_latency_ms: Option<i32>,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl IntegrationRow {
    pub(crate) fn into_record(self) -> IntegrationRecord {
        IntegrationRecord {
            id: self.id,
            tenant_id: TenantId(self.tenant_id),
            type_name: self.type_name,
            name: self.name,
            description: self.description,
            config: self.config.0,
            secrets: self.secrets,
            enabled: self.enabled,
            is_default: self.is_default,
            enrichment: self.enrichment,
            health_status: self.health_status,
            health_message: self.health_message,
            health_checked_at: self.health_checked_at,
            health_latency_ms: self.health_latency_ms,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub(crate) const INTEGRATION_COLUMNS: &str = "id, tenant_id, type, name, description, config, secrets, enabled, \
     is_default, enrichment, health_status, health_message, health_checked_at, health_latency_ms, created_by, \
     created_at, updated_at";

pub(crate) fn audit_view(w: &IntegrationWrite) -> Value {
    serde_json::json!({
        "type": w.type_name,
        "name": w.name,
        "config": w.config,
        "secret_fields_set": w.secret_fields,
        "enabled": w.enabled,
        "is_default": w.is_default,
        "enrichment": w.enrichment,
    })
}

macro_rules! impl_integrations {
    ($store:ident, $db:ty) => {
        mod integrations_impl {
            use super::$store;
            use $crate::integrations::{
                HealthResult, INTEGRATION_COLUMNS, IntegrationRecord, IntegrationRow, IntegrationWrite,
                NewActionExecution, audit_view,
            };
            use $crate::scope_sql::push_scope;
            use $crate::{ChangeCtx, IntegrationStore, StoreError, StoreResult, conflict_or};
            use bulwark_audit::EventType;
            use bulwark_core::{Scope, TenantId};
            use serde_json::json;
            use sqlx::types::Json;
            use sqlx::{AssertSqlSafe, QueryBuilder, Transaction};
            use uuid::Uuid;

            type Tx = Transaction<'static, $db>;

            impl $store {
                async fn integration_row(tx: &mut Tx, scope: &Scope, id: Uuid) -> StoreResult<IntegrationRecord> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = "));
                    qb.push_bind(id);
                    push_scope(&mut qb, "tenant_id", scope);
                    qb.push(Self::ROW_LOCK);
                    let row: Option<IntegrationRow> = qb.build_query_as().fetch_optional(&mut **tx).await?;
                    row.map(IntegrationRow::into_record).ok_or(StoreError::NotFound)
                }

                /// At most one default per (tenant, type): setting one clears the others.
                async fn clear_default(tx: &mut Tx, w: &IntegrationWrite) -> StoreResult<()> {
                    if w.is_default {
                        sqlx::query("UPDATE integrations SET is_default = $1 WHERE tenant_id = $2 AND type = $3 AND id <> $4")
                            .bind(false)
                            .bind(w.tenant_id.0)
                            .bind(&w.type_name)
                            .bind(w.id)
                            .execute(&mut **tx)
                            .await?;
                    }
                    Ok(())
                }

                async fn integration_audit(tx: &mut Tx, ctx: &ChangeCtx, tenant: TenantId, id: Uuid,
                    before: Option<serde_json::Value>, after: Option<serde_json::Value>) -> StoreResult<()> {
                    let rec = $crate::audit::record(ctx, EventType::SettingsChanged, "integration", Some(id.to_string()), before, after)?;
                    Self::append_audit(tx, tenant, rec).await
                }
            }

            fn before_view(r: &IntegrationRecord) -> serde_json::Value {
                json!({"type": r.type_name, "name": r.name, "config": r.config, "secrets_set": r.secrets.is_some(),
                       "enabled": r.enabled, "is_default": r.is_default, "enrichment": r.enrichment})
            }

            #[async_trait::async_trait]
            impl IntegrationStore for $store {
                async fn list_integrations(&self, scope: &Scope, tenant: Option<TenantId>) -> StoreResult<Vec<IntegrationRecord>> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE 1 = 1"));
                    push_scope(&mut qb, "tenant_id", scope);
                    if let Some(t) = tenant {
                        qb.push(" AND tenant_id = ").push_bind(t.0);
                    }
                    qb.push(" ORDER BY type, name LIMIT 1000");
                    let rows: Vec<IntegrationRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(rows.into_iter().map(IntegrationRow::into_record).collect())
                }

                async fn get_integration(&self, scope: &Scope, id: Uuid) -> StoreResult<IntegrationRecord> {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = "));
                    qb.push_bind(id);
                    push_scope(&mut qb, "tenant_id", scope);
                    let row: Option<IntegrationRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    row.map(IntegrationRow::into_record).ok_or(StoreError::NotFound)
                }

                async fn integrations_of_type(&self, tenant: TenantId, type_name: &str) -> StoreResult<Vec<IntegrationRecord>> {
                    let rows: Vec<IntegrationRow> = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1 AND type = $2 ORDER BY name"
                    )))
                    .bind(tenant.0)
                    .bind(type_name)
                    .fetch_all(&self.reader)
                    .await?;
                    Ok(rows.into_iter().map(IntegrationRow::into_record).collect())
                }

                async fn enrichment_integrations(&self, tenant: TenantId) -> StoreResult<Vec<IntegrationRecord>> {
                    let rows: Vec<IntegrationRow> = sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1 AND enrichment = $2 AND enabled = $2 ORDER BY name"
                    )))
                    .bind(tenant.0)
                    .bind(true)
                    .fetch_all(&self.reader)
                    .await?;
                    Ok(rows.into_iter().map(IntegrationRow::into_record).collect())
                }

                async fn create_integration(&self, ctx: &ChangeCtx, scope: &Scope, w: IntegrationWrite) -> StoreResult<IntegrationRecord> {
                    if !scope.allows(w.tenant_id) {
                        return Err(StoreError::Invalid { field: "tenant_id", message: "unknown tenant".into() });
                    }
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    Self::clear_default(&mut tx, &w).await?;
                    sqlx::query(
                        "INSERT INTO integrations (id, tenant_id, type, name, description, config, secrets, enabled, is_default, \
                         enrichment, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
                    )
                    .bind(w.id)
                    .bind(w.tenant_id.0)
                    .bind(&w.type_name)
                    .bind(&w.name)
                    .bind(&w.description)
                    .bind(Json(&w.config))
                    .bind(&w.secrets)
                    .bind(w.enabled)
                    .bind(w.is_default)
                    .bind(w.enrichment)
                    .bind(ctx.actor_name.clone())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, "name"))?;
                    Self::integration_audit(&mut tx, ctx, w.tenant_id, w.id, None, Some(audit_view(&w))).await?;
                    let rec = Self::integration_row(&mut tx, &Scope::AllTenants, w.id).await?;
                    tx.commit().await?;
                    Ok(rec)
                }

                async fn update_integration(&self, ctx: &ChangeCtx, scope: &Scope, w: IntegrationWrite) -> StoreResult<IntegrationRecord> {
                    let mut tx = self.begin_write().await?;
                    let old = Self::integration_row(&mut tx, scope, w.id).await?;
                    if old.tenant_id != w.tenant_id || old.type_name != w.type_name {
                        return Err(StoreError::Invalid { field: "type", message: "cannot change".into() });
                    }
                    Self::clear_default(&mut tx, &w).await?;
                    sqlx::query(
                        "UPDATE integrations SET name = $1, description = $2, config = $3, secrets = $4, enabled = $5, \
                         is_default = $6, enrichment = $7, updated_at = $8 WHERE id = $9",
                    )
                    .bind(&w.name)
                    .bind(&w.description)
                    .bind(Json(&w.config))
                    .bind(&w.secrets)
                    .bind(w.enabled)
                    .bind(w.is_default)
                    .bind(w.enrichment)
                    .bind(bulwark_core::time::now())
                    .bind(w.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, "name"))?;
                    Self::integration_audit(&mut tx, ctx, w.tenant_id, w.id, Some(before_view(&old)), Some(audit_view(&w))).await?;
                    let rec = Self::integration_row(&mut tx, &Scope::AllTenants, w.id).await?;
                    tx.commit().await?;
                    Ok(rec)
                }

                async fn delete_integration(&self, ctx: &ChangeCtx, scope: &Scope, id: Uuid) -> StoreResult<()> {
                    let mut tx = self.begin_write().await?;
                    let old = Self::integration_row(&mut tx, scope, id).await?;
                    sqlx::query("DELETE FROM integrations WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    // Its cached enrichment answers go with it (observables keep their merged
                    // reputation until their next lookup).
                    sqlx::query("DELETE FROM enrichment_results WHERE integration_id = $1").bind(id).execute(&mut *tx).await?;
                    Self::integration_audit(&mut tx, ctx, old.tenant_id, id, Some(before_view(&old)), None).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn record_integration_health(&self, id: Uuid, h: &HealthResult) -> StoreResult<()> {
                    sqlx::query(
                        "UPDATE integrations SET health_status = $1, health_message = $2, health_checked_at = $3, \
                         health_latency_ms = $4 WHERE id = $5",
                    )
                    .bind(if h.ok { "ok" } else { "failed" })
                    .bind(&h.message)
                    .bind(h.checked_at)
                    .bind(h.latency_ms)
                    .bind(id)
                    .execute(&self.writer)
                    .await?;
                    Ok(())
                }

                async fn integration_secrets(&self) -> StoreResult<Vec<(Uuid, String)>> {
                    Ok(sqlx::query_as("SELECT id, secrets FROM integrations WHERE secrets IS NOT NULL ORDER BY id")
                        .fetch_all(&self.reader)
                        .await?)
                }

                async fn replace_integration_secret(&self, id: Uuid, old: &str, new: &str) -> StoreResult<bool> {
                    let done = sqlx::query("UPDATE integrations SET secrets = $1 WHERE id = $2 AND secrets = $3")
                        .bind(new)
                        .bind(id)
                        .bind(old)
                        .execute(&self.writer)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn record_action_execution(&self, ctx: &ChangeCtx, e: &NewActionExecution) -> StoreResult<Uuid> {
                    let id = Uuid::now_v7();
                    let mut tx = self.begin_write().await?;
                    let ms = (e.finished_at - e.started_at).num_milliseconds().clamp(0, i64::from(i32::MAX)) as i32;
                    sqlx::query(
                        "INSERT INTO action_executions (id, tenant_id, alert_id, integration_id, action, status, input, output, \
                         error, actor_kind, actor_id, actor_name, started_at, finished_at, duration_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    )
                    .bind(id)
                    .bind(e.tenant_id.0)
                    .bind(e.alert_id)
                    .bind(e.integration_id)
                    .bind(&e.action)
                    .bind(if e.ok { "succeeded" } else { "failed" })
                    .bind(Json(&e.input))
                    .bind(e.output.as_ref().map(Json))
                    .bind(&e.error)
                    .bind(ctx.actor_kind)
                    .bind(ctx.actor_id.clone())
                    .bind(ctx.actor_name.clone())
                    .bind(e.started_at)
                    .bind(e.finished_at)
                    .bind(ms)
                    .execute(&mut *tx)
                    .await?;
                    let status = if e.ok { "succeeded" } else { "failed" };
                    if let Some(alert) = e.alert_id {
                        Self::insert_activities(&mut tx, ctx,
                            &[(e.tenant_id.0, alert, "action", Some(e.action.clone()), Some(status.to_string()))],
                            e.finished_at).await?;
                    }
                    let rec = $crate::audit::record(ctx, EventType::IntegrationCalled, "action_execution", Some(id.to_string()), None,
                        Some(json!({"action": e.action, "integration_id": e.integration_id, "alert_id": e.alert_id,
                                    "status": status, "error": e.error})))?;
                    Self::append_audit(&mut tx, e.tenant_id, rec).await?;
                    tx.commit().await?;
                    Ok(id)
                }
            }
        }
    };
}

pub(crate) use impl_integrations;
