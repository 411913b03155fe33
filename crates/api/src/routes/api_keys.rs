//! API keys: machine credentials bound to one tenant, with scopes.

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, PathId};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_core::credentials::generate_api_key;
use bulwark_core::model::{ApiKey, RateLimit};
use bulwark_core::{ApiKeyId, ApiKeyScope, TenantId, validate};
use bulwark_store::{ChangeCtx, NewApiKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Webhook sources a key can be bound to (the ingestion endpoints' `{source}`).
pub const WEBHOOK_SOURCES: &[&str] = &[
    "generic",
    "elastic",
    "wazuh",
    "suricata",
    "splunk",
    "sentinel",
    "crowdstrike",
    "guardduty",
    "zeek",
];

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    /// At least one of `webhooks:ingest`, `read`, `write`.
    pub scopes: Vec<ApiKeyScope>,
    /// Defaults to the caller's home tenant.
    pub tenant_id: Option<TenantId>,
    /// Restrict the key to one webhook source.
    pub source: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Alternative to `expires_at`: days from now (1 to 3650).
    pub expires_in_days: Option<u32>,
    /// Give the key a signing secret and require `X-Bulwark-Signature` on every webhook
    /// request (needs the `webhooks:ingest` scope).
    #[serde(default)]
    pub signed: bool,
    /// Accept OpenSOAR's `X-Webhook-Signature: sha256=<HMAC(key, body)>`; signatures become
    /// required (needs the `webhooks:ingest` scope).
    #[serde(default)]
    pub accept_key_signature: bool,
    /// Overrides the server's per-key rate limit.
    pub rate_limit: Option<RateLimit>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// The key itself. Shown this once; only its SHA-256 digest is stored.
    pub key: String,
    /// The signing secret for `X-Bulwark-Signature` (signed keys only). Shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    pub api_key: ApiKey,
}

/// API keys visible to the caller (never the secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses((status = 200, body = [ApiKey]), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<axum::Json<Vec<ApiKey>>> {
    Ok(axum::Json(state.store.list_api_keys(&caller.scope).await?))
}

fn expiry(req: &CreateApiKeyRequest, now: DateTime<Utc>) -> ApiResult<Option<DateTime<Utc>>> {
    match (req.expires_at, req.expires_in_days) {
        (Some(_), Some(_)) => Err(ApiError::field(
            "expires_in_days",
            "give either expires_at or expires_in_days, not both",
        )),
        (Some(at), None) if at <= now => {
            Err(ApiError::field("expires_at", "must be in the future"))
        }
        (Some(at), None) => Ok(Some(at)),
        (None, Some(d)) if !(1..=3650).contains(&d) => {
            Err(ApiError::field("expires_in_days", "must be 1 to 3650"))
        }
        (None, Some(d)) => Ok(Some(now + chrono::Duration::days(i64::from(d)))),
        (None, None) => Ok(None),
    }
}

/// Create an API key. The response holds the key once.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])),
    request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyCreated), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, axum::Json<ApiKeyCreated>)> {
    let name = validate::name("name", &req.name, 100)?;
    if req.scopes.is_empty() {
        return Err(ApiError::field("scopes", "must list at least one scope"));
    }
    let mut scopes = req.scopes.clone();
    scopes.sort_by_key(|s| s.as_str());
    scopes.dedup();
    if let Some(src) = &req.source
        && !WEBHOOK_SOURCES.contains(&src.as_str())
    {
        return Err(ApiError::field(
            "source",
            format!(
                "unknown source; expected one of {}",
                WEBHOOK_SOURCES.join(", ")
            ),
        ));
    }
    if (req.signed || req.accept_key_signature) && !scopes.contains(&ApiKeyScope::WebhooksIngest) {
        let field = if req.signed {
            "signed"
        } else {
            "accept_key_signature"
        };
        return Err(ApiError::field(
            field,
            "signatures apply to webhook deliveries: the key needs the webhooks:ingest scope",
        ));
    }
    if let Some(r) = req.rate_limit {
        if !(1..=100_000).contains(&r.per_second) {
            return Err(ApiError::field(
                "rate_limit.per_second",
                "must be 1 to 100000",
            ));
        }
        if !(1..=1_000_000).contains(&r.burst) {
            return Err(ApiError::field("rate_limit.burst", "must be 1 to 1000000"));
        }
    }
    let now = bulwark_core::time::now();
    let expires_at = expiry(&req, now)?;
    let tenant_id = caller
        .target_tenant(req.tenant_id)
        .ok_or_else(|| ApiError::field("tenant_id", "unknown tenant"))?;
    let generated = generate_api_key();
    let signing_secret = req
        .signed
        .then(bulwark_core::signature::generate_signing_secret);
    let api_key = state
        .store
        .create_api_key(
            &ChangeCtx::from_caller(&caller, rid),
            NewApiKey {
                tenant_id,
                name,
                prefix: generated.prefix,
                digest: generated.digest.to_vec(),
                scopes,
                source: req.source,
                expires_at,
                created_by: caller.analyst_id(),
                signing_secret: signing_secret.clone(),
                accept_key_signature: req.accept_key_signature,
                rate_limit: req.rate_limit,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ApiKeyCreated {
            key: generated.secret,
            signing_secret,
            api_key,
        }),
    ))
}

/// Revoke an API key, effective immediately.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "API key id")),
    responses((status = 200, body = ApiKey), (status = 404, body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<axum::Json<ApiKey>> {
    let key = state
        .store
        .revoke_api_key(
            &ChangeCtx::from_caller(&caller, rid),
            &caller.scope,
            ApiKeyId(id),
            bulwark_core::time::now(),
        )
        .await?;
    Ok(axum::Json(key))
}
