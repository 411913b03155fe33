//! Tenants (MSSP customers).

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, PathId};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_core::model::Tenant;
use bulwark_core::{TenantId, validate};
use bulwark_store::enrichment::EnrichmentSettings;
use bulwark_store::tag_access::TagAccessConfig;
use bulwark_store::{ChangeCtx, NewTenant};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// Customer code: 2-63 of a-z, 0-9 and '-'.
    pub slug: String,
    pub name: String,
}

/// Tenants visible to the caller.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = [Tenant]), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<axum::Json<Vec<Tenant>>> {
    Ok(axum::Json(state.store.list_tenants(&caller.scope).await?))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Tenant>> {
    Ok(axum::Json(
        state.store.get_tenant(&caller.scope, TenantId(id)).await?,
    ))
}

/// Create a tenant (platform admins only).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = [])),
    request_body = CreateTenantRequest,
    responses((status = 201, body = Tenant), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<CreateTenantRequest>,
) -> ApiResult<(StatusCode, axum::Json<Tenant>)> {
    if caller.scope != bulwark_core::Scope::AllTenants {
        return Err(ApiError::Forbidden(
            "only platform administrators can create tenants".into(),
        ));
    }
    let slug = validate::slug("slug", &req.slug)?;
    let name = validate::name("name", &req.name, 200)?;
    let t = state
        .store
        .create_tenant(
            &ChangeCtx::from_caller(&caller, rid),
            NewTenant { slug, name },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(t)))
}

/// The tenant's tag-based access settings and allow-lists.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/tag-access", tag = "tenants", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = TagAccessConfig), (status = 404, body = Problem)))]
pub async fn get_tag_access(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<TagAccessConfig>> {
    Ok(axum::Json(
        state
            .store
            .get_tag_access(&caller.scope, TenantId(id))
            .await?,
    ))
}

/// Replaces the tenant's tag-based access settings and allow-lists. When enabled, a
/// non-admin sees an alert when one of its tags is allowed to them (by user, role or API
/// key); untagged alerts follow `untagged`.
#[utoipa::path(put, path = "/api/v1/tenants/{id}/tag-access", tag = "tenants", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Tenant id")),
    request_body = TagAccessConfig,
    responses((status = 200, body = TagAccessConfig), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_tag_access(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(config): Json<TagAccessConfig>,
) -> ApiResult<axum::Json<TagAccessConfig>> {
    let tenant = TenantId(id);
    state
        .store
        .set_tag_access(
            &ChangeCtx::from_caller(&caller, rid),
            &caller.scope,
            tenant,
            &config,
        )
        .await?;
    Ok(axum::Json(
        state.store.get_tag_access(&caller.scope, tenant).await?,
    ))
}

/// The tenant's automatic-enrichment settings (the defaults until saved).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/enrichment", tag = "tenants", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = EnrichmentSettings), (status = 404, body = Problem)))]
pub async fn get_enrichment(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<EnrichmentSettings>> {
    Ok(axum::Json(
        state
            .store
            .get_enrichment_settings(&caller.scope, TenantId(id))
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrichmentSettingsRequest {
    /// Never sent to intel services (besides private and reserved values): IPs, CIDRs
    /// (`10.20.0.0/16`), domains (`corp.example.org` or `*.corp.example.org`: with their
    /// subdomains, and URLs and e-mail addresses on them) or exact values (a hash, a URL).
    #[serde(default)]
    pub allow_list: Vec<String>,
    /// How long a lookup's answer is reused, in seconds (60 to 7776000; default 86400).
    pub cache_ttl_secs: Option<i64>,
}

/// Replaces the tenant's automatic-enrichment settings. Audited.
#[utoipa::path(put, path = "/api/v1/tenants/{id}/enrichment", tag = "tenants", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Tenant id")),
    request_body = EnrichmentSettingsRequest,
    responses((status = 200, body = EnrichmentSettings), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_enrichment(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<EnrichmentSettingsRequest>,
) -> ApiResult<axum::Json<EnrichmentSettings>> {
    let settings = EnrichmentSettings {
        allow_list: req
            .allow_list
            .into_iter()
            .map(|e| e.trim().to_owned())
            .collect(),
        cache_ttl_secs: req
            .cache_ttl_secs
            .unwrap_or(bulwark_store::enrichment::DEFAULT_CACHE_TTL_SECS),
    };
    bulwark_store::enrichment::check_settings(&settings).map_err(|(f, m)| ApiError::field(f, m))?;
    bulwark_integrations::enrich::parse_allow_list(&settings.allow_list)
        .map_err(|m| ApiError::field("allow_list", m))?;
    let tenant = TenantId(id);
    state
        .store
        .set_enrichment_settings(
            &ChangeCtx::from_caller(&caller, rid),
            &caller.scope,
            tenant,
            &settings,
        )
        .await?;
    Ok(axum::Json(settings))
}
