//! Tenants, analysts and API keys: the SQL, written once and instantiated for each backend by
//! `impl_foundation!` (invoked in `sqlite.rs` and `postgres.rs`).

use crate::{StoreError, StoreResult, parse_role, parse_scopes};
use bulwark_core::model::{Analyst, AnalystCredentials, ApiKey, ApiKeyCredentials, Tenant};
use bulwark_core::{AnalystId, TenantId};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: TenantId(r.id),
            slug: r.slug,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AnalystRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub is_active: bool,
    pub token_version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl AnalystRow {
    pub(crate) fn into_credentials(self, grants: Vec<TenantId>) -> StoreResult<AnalystCredentials> {
        Ok(AnalystCredentials {
            analyst: Analyst {
                id: AnalystId(self.id),
                username: self.username,
                display_name: self.display_name,
                role: parse_role(&self.role)?,
                tenant_id: TenantId(self.tenant_id),
                tenant_ids: grants,
                is_active: self.is_active,
                created_at: self.created_at,
                updated_at: self.updated_at,
                last_login_at: self.last_login_at,
            },
            password_hash: self.password_hash,
            token_version: self.token_version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AnalystGrantRow {
    #[sqlx(flatten)]
    pub analyst: AnalystRow,
    pub grant_tenant: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    pub analyst_id: Uuid,
    pub tenant_id: Uuid,
}

pub(crate) fn group_grants(rows: Vec<GrantRow>) -> HashMap<Uuid, Vec<TenantId>> {
    let mut map: HashMap<Uuid, Vec<TenantId>> = HashMap::new();
    for r in rows {
        map.entry(r.analyst_id)
            .or_default()
            .push(TenantId(r.tenant_id));
    }
    for v in map.values_mut() {
        v.sort();
    }
    map
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub digest: Vec<u8>,
    pub scopes: String,
    pub source: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub signing_secret: Option<String>,
    pub accept_key_signature: bool,
    pub rate_per_second: Option<i64>,
    pub rate_burst: Option<i64>,
}

impl ApiKeyRow {
    pub(crate) fn into_credentials(self) -> StoreResult<ApiKeyCredentials> {
        Ok(ApiKeyCredentials {
            key: ApiKey {
                id: bulwark_core::ApiKeyId(self.id),
                tenant_id: TenantId(self.tenant_id),
                name: self.name,
                prefix: self.prefix,
                scopes: parse_scopes(&self.scopes)?,
                source: self.source,
                signed: self.signing_secret.is_some(),
                accept_key_signature: self.accept_key_signature,
                rate_limit: match (self.rate_per_second, self.rate_burst) {
                    (Some(r), Some(b)) => Some(bulwark_core::model::RateLimit {
                        per_second: u32::try_from(r)
                            .map_err(|_| StoreError::Corrupt("rate_per_second".into()))?,
                        burst: u32::try_from(b)
                            .map_err(|_| StoreError::Corrupt("rate_burst".into()))?,
                    }),
                    _ => None,
                },
                expires_at: self.expires_at,
                revoked_at: self.revoked_at,
                created_by: self.created_by.map(AnalystId),
                created_at: self.created_at,
                last_used_at: self.last_used_at,
            },
            digest: self.digest,
            signing_secret: self.signing_secret.map(bulwark_core::Secret::new),
        })
    }
}

pub(crate) const ANALYST_COLUMNS: &str = "id, tenant_id, username, display_name, password_hash, role, is_active, token_version, created_at, updated_at, last_login_at";
pub(crate) const API_KEY_COLUMNS: &str = "id, tenant_id, name, prefix, digest, scopes, source, expires_at, revoked_at, created_by, created_at, last_used_at, signing_secret, accept_key_signature, rate_per_second, rate_burst";

/// Checks that every granted tenant exists (a clear 4xx instead of a foreign-key error).
pub(crate) fn missing_tenant_error() -> StoreError {
    StoreError::Invalid {
        field: "tenant_ids",
        message: "refers to a tenant that does not exist".into(),
    }
}

macro_rules! impl_foundation {
    ($store:ident, $db:ty) => {
        mod foundation_impl {
        use super::$store;
        use $crate::foundation::{
            ANALYST_COLUMNS, API_KEY_COLUMNS, AnalystRow, ApiKeyRow, GrantRow, TenantRow,
            group_grants, missing_tenant_error,
        };
        use $crate::scope_sql::push_scope;
        use bulwark_audit::EventType;
        use serde_json::json;
        use $crate::{
            AnalystPatch, AnalystStore, ApiKeyStore, ChangeCtx, NewAnalyst, NewApiKey, NewTenant,
            StoreError, StoreResult, TenantStore, conflict_or, format_scopes,
        };
        use bulwark_core::model::{
            Analyst, AnalystCredentials, ApiKey, ApiKeyCredentials, Tenant,
        };
        use bulwark_core::{AnalystId, ApiKeyId, Role, Scope, TenantId};
        use chrono::{DateTime, Utc};
        use sqlx::{AssertSqlSafe, QueryBuilder};
        use uuid::Uuid;

        impl $store {
            async fn grants_of(
                &self,
                ids: &[Uuid],
            ) -> StoreResult<std::collections::HashMap<Uuid, Vec<TenantId>>> {
                if ids.is_empty() {
                    return Ok(Default::default());
                }
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT analyst_id, tenant_id FROM analyst_tenants WHERE analyst_id IN (",
                );
                let mut sep = qb.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                qb.push(")");
                let rows: Vec<GrantRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                Ok(group_grants(rows))
            }

            async fn analysts_from_rows(&self, rows: Vec<AnalystRow>) -> StoreResult<Vec<Analyst>> {
                let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
                let mut grants = self.grants_of(&ids).await?;
                rows.into_iter()
                    .map(|r| {
                        let g = grants.remove(&r.id).unwrap_or_default();
                        r.into_credentials(g).map(|c| c.analyst)
                    })
                    .collect()
            }

            async fn write_grants(
                tx: &mut sqlx::Transaction<'static, $db>,
                analyst: Uuid,
                home: TenantId,
                tenants: &[TenantId],
            ) -> StoreResult<()> {
                sqlx::query("DELETE FROM analyst_tenants WHERE analyst_id = $1")
                    .bind(analyst)
                    .execute(&mut **tx)
                    .await?;
                let mut seen = std::collections::HashSet::new();
                for t in tenants.iter().filter(|t| **t != home) {
                    if !seen.insert(*t) {
                        continue;
                    }
                    sqlx::query("INSERT INTO analyst_tenants (analyst_id, tenant_id) VALUES ($1, $2)")
                        .bind(analyst)
                        .bind(t.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| match conflict_or(e, "tenant_ids") {
                            StoreError::Invalid { .. } => missing_tenant_error(),
                            other => other,
                        })?;
                }
                Ok(())
            }

            /// One round trip: the analyst row joined with its grants (one row per grant).
            async fn credentials_where(
                &self,
                column: &'static str,
                value: impl for<'q> sqlx::Encode<'q, $db> + sqlx::Type<$db> + Send + 'static,
            ) -> StoreResult<Option<AnalystCredentials>> {
                let cols = ANALYST_COLUMNS
                    .split(", ")
                    .map(|c| format!("a.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "SELECT {cols}, g.tenant_id AS grant_tenant FROM analysts a \
                     LEFT JOIN analyst_tenants g ON g.analyst_id = a.id WHERE a.{column} = $1"
                );
                let rows: Vec<$crate::foundation::AnalystGrantRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(value)
                    .fetch_all(&self.reader)
                    .await?;
                let mut grants: Vec<TenantId> =
                    rows.iter().filter_map(|r| r.grant_tenant).map(TenantId).collect();
                grants.sort();
                match rows.into_iter().next() {
                    Some(r) => r.analyst.into_credentials(grants).map(Some),
                    None => Ok(None),
                }
            }
        }

        #[async_trait::async_trait]
        impl TenantStore for $store {
            async fn create_tenant(&self, ctx: &ChangeCtx, new: NewTenant) -> StoreResult<Tenant> {
                let t = Tenant {
                    id: TenantId::new(),
                    slug: new.slug,
                    name: new.name,
                    created_at: bulwark_core::time::now(),
                };
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(t.id.0)
                    .bind(&t.slug)
                    .bind(&t.name)
                    .bind(t.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, "slug"))?;
                let rec = $crate::audit::record(ctx, EventType::TenantCreated, "tenant", Some(t.id.to_string()),
                    None, Some(json!({"slug": t.slug, "name": t.name})))?;
                Self::append_audit(&mut tx, t.id, rec).await?;
                tx.commit().await?;
                Ok(t)
            }

            async fn list_tenants(&self, scope: &Scope) -> StoreResult<Vec<Tenant>> {
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT id, slug, name, created_at FROM tenants WHERE 1 = 1",
                );
                push_scope(&mut qb, "id", scope);
                qb.push(" ORDER BY slug");
                let rows: Vec<TenantRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                Ok(rows.into_iter().map(Tenant::from).collect())
            }

            async fn get_tenant(&self, scope: &Scope, id: TenantId) -> StoreResult<Tenant> {
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT id, slug, name, created_at FROM tenants WHERE id = ",
                );
                qb.push_bind(id.0);
                push_scope(&mut qb, "id", scope);
                let row: Option<TenantRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                row.map(Tenant::from).ok_or(StoreError::NotFound)
            }

            async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>> {
                let row: Option<TenantRow> = sqlx::query_as(
                    "SELECT id, slug, name, created_at FROM tenants WHERE slug = $1",
                )
                .bind(slug.to_string())
                .fetch_optional(&self.reader)
                .await?;
                Ok(row.map(Tenant::from))
            }
        }

        #[async_trait::async_trait]
        impl AnalystStore for $store {
            async fn create_analyst(&self, ctx: &ChangeCtx, new: NewAnalyst) -> StoreResult<Analyst> {
                let now = bulwark_core::time::now();
                let id = AnalystId::new();
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO analysts (id, tenant_id, username, display_name, password_hash, role, \
                     is_active, token_version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)",
                )
                .bind(id.0)
                .bind(new.tenant_id.0)
                .bind(&new.username)
                .bind(&new.display_name)
                .bind(&new.password_hash)
                .bind(new.role.as_str())
                .bind(true)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| match conflict_or(e, "username") {
                    StoreError::Invalid { .. } => StoreError::Invalid {
                        field: "tenant_id",
                        message: "refers to a tenant that does not exist".into(),
                    },
                    other => other,
                })?;
                Self::write_grants(&mut tx, id.0, new.tenant_id, &new.tenant_ids).await?;
                let rec = $crate::audit::record(ctx, EventType::AnalystCreated, "analyst", Some(id.to_string()), None,
                    Some(json!({"username": new.username, "role": new.role.as_str(), "tenant_ids": new.tenant_ids})))?;
                Self::append_audit(&mut tx, new.tenant_id, rec).await?;
                tx.commit().await?;
                self.get_analyst(&Scope::AllTenants, id).await
            }

            async fn list_analysts(&self, scope: &Scope) -> StoreResult<Vec<Analyst>> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {ANALYST_COLUMNS} FROM analysts WHERE 1 = 1"
                ));
                push_scope(&mut qb, "tenant_id", scope);
                qb.push(" ORDER BY username");
                let rows: Vec<AnalystRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                self.analysts_from_rows(rows).await
            }

            async fn get_analyst(&self, scope: &Scope, id: AnalystId) -> StoreResult<Analyst> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {ANALYST_COLUMNS} FROM analysts WHERE id = "
                ));
                qb.push_bind(id.0);
                push_scope(&mut qb, "tenant_id", scope);
                let row: Option<AnalystRow> = qb.build_query_as().fetch_optional(&self.reader).await?;
                let row = row.ok_or(StoreError::NotFound)?;
                self.analysts_from_rows(vec![row])
                    .await?
                    .pop()
                    .ok_or(StoreError::NotFound)
            }

            async fn update_analyst(
                &self,
                ctx: &ChangeCtx,
                scope: &Scope,
                id: AnalystId,
                patch: AnalystPatch,
            ) -> StoreResult<Analyst> {
                let mut tx = self.begin_write().await?;
                Self::lock_admin_set(&mut tx).await?;
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {ANALYST_COLUMNS} FROM analysts WHERE id = "
                ));
                qb.push_bind(id.0);
                push_scope(&mut qb, "tenant_id", scope);
                let row: Option<AnalystRow> = qb.build_query_as().fetch_optional(&mut *tx).await?;
                let row = row.ok_or(StoreError::NotFound)?;
                let current_role = $crate::parse_role(&row.role)?;
                let new_role = patch.role.unwrap_or(current_role);
                let new_active = patch.is_active.unwrap_or(row.is_active);
                // Only platform admins (home tenant `default`) hold the platform together;
                // the last active one can be neither demoted nor disabled.
                let loses_admin = current_role == Role::Admin
                    && row.is_active
                    && (new_role != Role::Admin || !new_active);
                if loses_admin {
                    let (others, is_platform): (i64, bool) = sqlx::query_as(
                        "SELECT \
                           (SELECT COUNT(*) FROM analysts WHERE role = 'admin' AND is_active = $1 \
                              AND id <> $2 AND tenant_id = (SELECT id FROM tenants WHERE slug = $3)), \
                           EXISTS (SELECT 1 FROM tenants WHERE id = $4 AND slug = $3)",
                    )
                    .bind(true)
                    .bind(id.0)
                    .bind(bulwark_core::model::DEFAULT_TENANT_SLUG)
                    .bind(row.tenant_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if is_platform && others == 0 {
                        return Err(StoreError::LastAdmin);
                    }
                }
                let now = bulwark_core::time::now();
                let new_display_name = patch.display_name.clone().unwrap_or_else(|| row.display_name.clone());
                // Disabling ends every session: bump the token version.
                let bump: i64 = if row.is_active && !new_active { 1 } else { 0 };
                sqlx::query(
                    "UPDATE analysts SET role = $1, is_active = $2, display_name = $3, \
                     token_version = token_version + $4, updated_at = $5 WHERE id = $6",
                )
                .bind(new_role.as_str())
                .bind(new_active)
                .bind(new_display_name.clone())
                .bind(bump)
                .bind(now)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                // Read inside the transaction: the "before" of the audit record is what this
                // transaction replaces.
                let grant_rows: Vec<GrantRow> = sqlx::query_as(
                    "SELECT analyst_id, tenant_id FROM analyst_tenants WHERE analyst_id = $1",
                )
                .bind(row.id)
                .fetch_all(&mut *tx)
                .await?;
                let before_grants = group_grants(grant_rows).remove(&row.id).unwrap_or_default();
                if let Some(tenants) = &patch.tenant_ids {
                    Self::write_grants(&mut tx, id.0, TenantId(row.tenant_id), tenants).await?;
                }
                let rec = $crate::audit::record(ctx, EventType::AnalystUpdated, "analyst", Some(id.to_string()),
                    Some(json!({"role": current_role.as_str(), "is_active": row.is_active,
                                "display_name": row.display_name, "tenant_ids": before_grants})),
                    Some(json!({"role": new_role.as_str(), "is_active": new_active,
                                "display_name": new_display_name, "tenant_ids": patch.tenant_ids.clone().unwrap_or(before_grants.clone())})))?;
                Self::append_audit(&mut tx, TenantId(row.tenant_id), rec).await?;
                tx.commit().await?;
                self.get_analyst(&Scope::AllTenants, id).await
            }

            async fn set_password(
                &self,
                ctx: &ChangeCtx,
                scope: &Scope,
                id: AnalystId,
                password_hash: String,
            ) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let mut qb = QueryBuilder::<$db>::new("UPDATE analysts SET password_hash = ");
                qb.push_bind(password_hash);
                qb.push(", token_version = token_version + 1, updated_at = ");
                qb.push_bind(bulwark_core::time::now());
                qb.push(" WHERE id = ");
                qb.push_bind(id.0);
                push_scope(&mut qb, "tenant_id", scope);
                qb.push(" RETURNING tenant_id");
                let row: Option<(Uuid,)> = qb.build_query_as().fetch_optional(&mut *tx).await?;
                let (tenant,) = row.ok_or(StoreError::NotFound)?;
                // Changing one's own password and an administrator's reset are told apart.
                let own = ctx.actor_id.as_deref() == Some(id.to_string().as_str());
                let event = if own { EventType::PasswordChanged } else { EventType::PasswordReset };
                let rec = $crate::audit::record(ctx, event, "analyst", Some(id.to_string()), None, None)?;
                Self::append_audit(&mut tx, TenantId(tenant), rec).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn credentials_by_username(
                &self,
                username: &str,
            ) -> StoreResult<Option<AnalystCredentials>> {
                self.credentials_where("username", username.to_string()).await
            }

            async fn credentials_by_id(&self, id: AnalystId) -> StoreResult<Option<AnalystCredentials>> {
                self.credentials_where("id", id.0).await
            }

            async fn record_login(&self, ctx: &ChangeCtx, id: AnalystId, at: DateTime<Utc>) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let row: Option<(Uuid,)> = sqlx::query_as(
                    "UPDATE analysts SET last_login_at = $1 WHERE id = $2 RETURNING tenant_id",
                )
                .bind(at)
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
                let (tenant,) = row.ok_or(StoreError::NotFound)?;
                let rec = $crate::audit::record(ctx, EventType::LoginSucceeded, "analyst", Some(id.to_string()), None, None)?;
                Self::append_audit(&mut tx, TenantId(tenant), rec).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn count_analysts(&self) -> StoreResult<i64> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM analysts")
                    .fetch_one(&self.reader)
                    .await?;
                Ok(n)
            }
        }

        #[async_trait::async_trait]
        impl ApiKeyStore for $store {
            async fn create_api_key(&self, ctx: &ChangeCtx, new: NewApiKey) -> StoreResult<ApiKey> {
                let key = ApiKey {
                    id: ApiKeyId::new(),
                    tenant_id: new.tenant_id,
                    name: new.name,
                    prefix: new.prefix,
                    scopes: new.scopes,
                    source: new.source,
                    signed: new.signing_secret.is_some(),
                    accept_key_signature: new.accept_key_signature,
                    rate_limit: new.rate_limit,
                    expires_at: new.expires_at,
                    revoked_at: None,
                    created_by: new.created_by,
                    created_at: bulwark_core::time::now(),
                    last_used_at: None,
                };
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO api_keys (id, tenant_id, name, prefix, digest, scopes, source, \
                     expires_at, created_by, created_at, signing_secret, accept_key_signature, \
                     rate_per_second, rate_burst) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(key.id.0)
                .bind(key.tenant_id.0)
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(new.digest)
                .bind(format_scopes(&key.scopes))
                .bind(&key.source)
                .bind(key.expires_at)
                .bind(key.created_by.map(|a| a.0))
                .bind(key.created_at)
                .bind(new.signing_secret)
                .bind(key.accept_key_signature)
                .bind(key.rate_limit.map(|r| i64::from(r.per_second)))
                .bind(key.rate_limit.map(|r| i64::from(r.burst)))
                .execute(&mut *tx)
                .await
                .map_err(|e| match conflict_or(e, "prefix") {
                    StoreError::Invalid { .. } => StoreError::Invalid {
                        field: "tenant_id",
                        message: "refers to a tenant that does not exist".into(),
                    },
                    other => other,
                })?;
                let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                let rec = $crate::audit::record(ctx, EventType::ApiKeyCreated, "api_key", Some(key.id.to_string()), None,
                    Some(json!({"name": key.name, "prefix": key.prefix, "scopes": scopes, "source": key.source,
                        "signed": key.signed, "accept_key_signature": key.accept_key_signature,
                        "rate_limit": key.rate_limit})))?;
                Self::append_audit(&mut tx, key.tenant_id, rec).await?;
                tx.commit().await?;
                Ok(key)
            }

            async fn list_api_keys(&self, scope: &Scope) -> StoreResult<Vec<ApiKey>> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE 1 = 1"
                ));
                push_scope(&mut qb, "tenant_id", scope);
                qb.push(" ORDER BY id DESC");
                let rows: Vec<ApiKeyRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                rows.into_iter()
                    .map(|r| r.into_credentials().map(|c| c.key))
                    .collect()
            }

            async fn revoke_api_key(
                &self,
                ctx: &ChangeCtx,
                scope: &Scope,
                id: ApiKeyId,
                at: DateTime<Utc>,
            ) -> StoreResult<ApiKey> {
                let mut tx = self.begin_write().await?;
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = "
                ));
                qb.push_bind(id.0);
                push_scope(&mut qb, "tenant_id", scope);
                let row: Option<ApiKeyRow> = qb.build_query_as().fetch_optional(&mut *tx).await?;
                let row = row.ok_or(StoreError::NotFound)?;
                if row.revoked_at.is_some() {
                    // Already revoked: nothing changes, nothing to record.
                    return row.into_credentials().map(|c| c.key);
                }
                let sql = format!("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 RETURNING {API_KEY_COLUMNS}");
                let row: ApiKeyRow = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(at)
                    .bind(id.0)
                    .fetch_one(&mut *tx)
                    .await?;
                let rec = $crate::audit::record(ctx, EventType::ApiKeyRevoked, "api_key", Some(id.to_string()), None,
                    Some(json!({"prefix": row.prefix})))?;
                Self::append_audit(&mut tx, TenantId(row.tenant_id), rec).await?;
                tx.commit().await?;
                row.into_credentials().map(|c| c.key)
            }

            async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKeyCredentials>> {
                let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE prefix = $1");
                let row: Option<ApiKeyRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(prefix.to_string())
                    .fetch_optional(&self.reader)
                    .await?;
                row.map(ApiKeyRow::into_credentials).transpose()
            }

            async fn usable_api_keys(
                &self,
                ids: &[ApiKeyId],
                now: DateTime<Utc>,
            ) -> StoreResult<std::collections::HashSet<ApiKeyId>> {
                let mut usable = std::collections::HashSet::new();
                for chunk in ids.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT id FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ");
                    qb.push_bind(now).push(") AND id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.0);
                    }
                    qb.push(")");
                    let rows: Vec<(uuid::Uuid,)> = qb.build_query_as().fetch_all(&self.reader).await?;
                    usable.extend(rows.into_iter().map(|(id,)| ApiKeyId(id)));
                }
                Ok(usable)
            }

            async fn touch_api_keys(&self, used: &[(ApiKeyId, DateTime<Utc>)]) -> StoreResult<()> {
                if used.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                for (id, at) in used {
                    sqlx::query(
                        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
                         AND (last_used_at IS NULL OR last_used_at < $1)",
                    )
                    .bind(*at)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
        }
    };
}

pub(crate) use impl_foundation;
