//! Authentication (who is calling) and authorization (may they call this route).
//!
//! Credentials: `Authorization: Bearer <JWT>` for analysts; `X-API-Key: bwk_...` or
//! `Authorization: Bearer bwk_...` for API keys. Every request re-reads the analyst or key row,
//! so disabling a user, changing a password (token version) or revoking a key takes effect on
//! the very next request, on every node.
//!
//! Abuse limits live here too: a client address whose failed-authentication budget is spent is
//! refused before any credential is checked, and a valid key's requests are charged to that
//! key's token bucket (see `rate_limit`).

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use bulwark_core::credentials::{api_key_matches, api_key_prefix};
use bulwark_core::{
    AnalystId, ApiKeyScope, Caller, Permission, PermissionSet, Principal, Role, Scope, TenantId,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const ISSUER: &str = "bulwark";
pub(crate) const INVALID: &str = "missing, invalid or expired credentials";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Token version: must equal the analyst's current one.
    pub tv: i64,
}

pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl TokenIssuer {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "iat"]);
        validation.leeway = 30;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, analyst: AnalystId, token_version: i64) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: analyst.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            tv: token_version,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// Who a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed (login, health, docs).
    Public,
    /// Any authenticated analyst (not API keys), e.g. `/auth/me`.
    AnyAnalyst,
    /// Callers holding this permission.
    Perm(Permission),
}

enum Presented<'a> {
    Jwt(&'a str),
    ApiKey(&'a str),
}

fn presented(headers: &HeaderMap) -> Option<Presented<'_>> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(Presented::ApiKey(k.trim()));
    }
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    if token.starts_with(bulwark_core::credentials::API_KEY_MARKER) {
        Some(Presented::ApiKey(token))
    } else {
        Some(Presented::Jwt(token))
    }
}

/// The caller an analyst acts as. Admins homed in the platform tenant see every tenant;
/// everyone else (tenant admins included) sees their home tenant and granted ones.
pub fn caller_for_analyst(a: &bulwark_core::model::Analyst, platform_tenant: TenantId) -> Caller {
    Caller {
        principal: Principal::Analyst {
            id: a.id,
            username: a.username.clone(),
        },
        role: Some(a.role),
        permissions: a.role.permissions(),
        scope: if a.role == Role::Admin && a.tenant_id == platform_tenant {
            Scope::AllTenants
        } else {
            Scope::Tenants(a.visible_tenants())
        },
        home_tenant: a.tenant_id,
        source_binding: None,
    }
}

/// The analyst behind the request, as loaded by the guard (saves handlers a second query).
#[derive(Clone)]
pub struct CurrentAnalyst(pub std::sync::Arc<bulwark_core::model::Analyst>);

/// The API key behind the request, for handlers that check request signatures.
pub struct KeyContext {
    pub creds: bulwark_core::model::ApiKeyCredentials,
    /// The key as presented (OpenSOAR's `X-Webhook-Signature` is keyed with it).
    pub presented: bulwark_core::Secret<String>,
}

/// The client address the limits are keyed by (absent for in-process requests).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

pub struct Authenticated {
    pub caller: Caller,
    pub analyst: Option<CurrentAnalyst>,
    pub key: Option<std::sync::Arc<KeyContext>>,
}

/// The TCP peer, or with `trust_forwarded_for` the last `X-Forwarded-For` entry (the one the
/// trusted proxy appended; earlier entries are whatever the client claimed).
pub fn client_ip(req: &Request, trust_forwarded_for: bool) -> Option<std::net::IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|s| s.trim().parse().ok())
    {
        return Some(ip);
    }
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Resolves the caller (and, for analysts, the analyst record) from the request headers;
/// `Unauthorized` when absent or invalid.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Authenticated, ApiError> {
    authenticate_with(state, headers, false).await
}

/// `cached_keys`: an API key may come from the [`crate::key_cache::KeyCache`] (the ingest
/// route only: its writer re-checks every key just before storing).
pub async fn authenticate_with(
    state: &AppState,
    headers: &HeaderMap,
    cached_keys: bool,
) -> Result<Authenticated, ApiError> {
    match presented(headers).ok_or(ApiError::Unauthorized(INVALID))? {
        Presented::Jwt(token) => {
            let claims = state
                .tokens
                .verify(token)
                .ok_or(ApiError::Unauthorized(INVALID))?;
            let id: AnalystId = claims
                .sub
                .parse()
                .map_err(|_| ApiError::Unauthorized(INVALID))?;
            let creds = state
                .store
                .credentials_by_id(id)
                .await?
                .ok_or(ApiError::Unauthorized(INVALID))?;
            if !creds.analyst.is_active || creds.token_version != claims.tv {
                return Err(ApiError::Unauthorized(INVALID));
            }
            let caller = caller_for_analyst(&creds.analyst, state.config.platform_tenant);
            Ok(Authenticated {
                caller,
                analyst: Some(CurrentAnalyst(std::sync::Arc::new(creds.analyst))),
                key: None,
            })
        }
        Presented::ApiKey(key) => {
            let prefix = api_key_prefix(key).ok_or(ApiError::Unauthorized(INVALID))?;
            let clock = std::time::Instant::now();
            let creds = match cached_keys
                .then(|| state.key_cache.get(prefix, clock))
                .flatten()
            {
                Some(c) => c,
                None => {
                    let c = std::sync::Arc::new(
                        state
                            .store
                            .api_key_by_prefix(prefix)
                            .await?
                            .ok_or(ApiError::Unauthorized(INVALID))?,
                    );
                    if cached_keys {
                        state.key_cache.insert(prefix, c.clone(), clock);
                    }
                    c
                }
            };
            let creds = bulwark_core::model::ApiKeyCredentials::clone(&creds);
            let now = bulwark_core::time::now();
            if !api_key_matches(key, &creds.digest) || !creds.key.is_usable_at(now) {
                return Err(ApiError::Unauthorized(INVALID));
            }
            state.key_usage.record(creds.key.id, now);
            Ok(Authenticated {
                caller: Caller {
                    principal: Principal::ApiKey {
                        id: creds.key.id,
                        name: creds.key.name.clone(),
                    },
                    role: None,
                    permissions: ApiKeyScope::set_permissions(&creds.key.scopes),
                    scope: Scope::single(creds.key.tenant_id),
                    home_tenant: creds.key.tenant_id,
                    source_binding: creds.key.source.clone(),
                },
                analyst: None,
                key: Some(std::sync::Arc::new(KeyContext {
                    creds,
                    presented: bulwark_core::Secret::new(key.to_string()),
                })),
            })
        }
    }
}

/// Checks a resolved caller against a route's access rule.
pub fn authorize(caller: &Caller, access: Access) -> Result<(), ApiError> {
    match access {
        Access::Public => Ok(()),
        Access::AnyAnalyst => match caller.principal {
            Principal::Analyst { .. } => Ok(()),
            Principal::ApiKey { .. } => Err(ApiError::Forbidden(
                "this endpoint is for analyst sessions, not API keys".into(),
            )),
        },
        Access::Perm(p) if caller.can(p) => Ok(()),
        Access::Perm(p) => Err(ApiError::Forbidden(format!("requires permission {p}"))),
    }
}

/// Route middleware: authenticates, authorizes, and hands the [`Caller`] to the handler.
pub async fn guard(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if access != Access::Public {
        let limits = state.config.limits;
        let ip = client_ip(&req, limits.trust_forwarded_for);
        let ip_policy = limits.auth_failure_policy();
        let now = std::time::Instant::now();
        if let Some(ip) = ip
            && let Err(wait) = state.auth_failures.check(ip, ip_policy, now)
        {
            metrics::counter!("bulwark_auth_refused_total", "reason" => "ip_failure_limit")
                .increment(1);
            return Err(ApiError::TooManyRequests {
                retry_after_secs: crate::rate_limit::retry_after_secs(wait),
            });
        }
        let ingest = access == Access::Perm(Permission::WebhooksIngest);
        let auth = match authenticate_with(&state, req.headers(), ingest).await {
            Ok(a) => a,
            Err(e) => {
                if matches!(e, ApiError::Unauthorized(_)) {
                    record_auth_failure(&state, ip);
                }
                return Err(e);
            }
        };
        authorize(&auth.caller, access)?;
        if let Some(key) = &auth.key {
            let limit = key.creds.key.rate_limit.unwrap_or(limits.key_rate);
            let policy = crate::rate_limit::BucketPolicy::per_second(limit.per_second, limit.burst);
            if let Err(wait) = state.key_buckets.take(key.creds.key.id, policy, now) {
                metrics::counter!("bulwark_auth_refused_total", "reason" => "key_rate_limit")
                    .increment(1);
                if let Some(source) = crate::routes::webhooks::source_of_path(req.uri().path()) {
                    state.ingest_stats.record(
                        auth.caller.home_tenant,
                        source,
                        crate::ingest_stats::Outcome::Rejected(
                            crate::ingest_stats::Reject::RateLimited,
                        ),
                        1,
                    );
                }
                return Err(ApiError::TooManyRequests {
                    retry_after_secs: crate::rate_limit::retry_after_secs(wait),
                });
            }
        }
        let ext = req.extensions_mut();
        ext.insert(auth.caller);
        ext.insert(ClientIp(ip));
        if let Some(a) = auth.analyst {
            ext.insert(a);
        }
        if let Some(k) = auth.key {
            ext.insert(k);
        }
    }
    Ok(next.run(req).await)
}

/// Charges a failed authentication to the client address.
pub fn record_auth_failure(state: &AppState, ip: Option<std::net::IpAddr>) {
    metrics::counter!("bulwark_auth_failures_total").increment(1);
    if let Some(ip) = ip {
        let policy = state.config.limits.auth_failure_policy();
        let _ = state
            .auth_failures
            .take(ip, policy, std::time::Instant::now());
    }
}

/// The authenticated caller, for handlers behind [`guard`].
pub struct Auth(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(Auth)
            .ok_or(ApiError::Unauthorized(INVALID))
    }
}

/// The request id set by the request-id layer, for audit records and logs.
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        ))
    }
}

/// Permissions as strings, for `/auth/me`.
pub fn permission_names(set: PermissionSet) -> Vec<&'static str> {
    set.iter().map(|p| p.as_str()).collect()
}
