//! Login, the caller's own account, and analyst administration. Paths follow OpenSOAR's so its
//! clients keep working.

use crate::auth::{Auth, CurrentAnalyst, RequestId, permission_names};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, OptionalJson, PathId};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_core::credentials::generate_password;
use bulwark_core::model::Analyst;
use bulwark_core::{AnalystId, Role, Scope, TenantId, validate};
use bulwark_store::{AnalystPatch, ChangeCtx, NewAnalyst};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct AnalystSummary {
    pub id: AnalystId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub tenant_id: TenantId,
}

impl From<&Analyst> for AnalystSummary {
    fn from(a: &Analyst) -> Self {
        Self {
            id: a.id,
            username: a.username.clone(),
            display_name: a.display_name.clone(),
            role: a.role,
            tenant_id: a.tenant_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub analyst: AnalystSummary,
}

fn token_response(state: &AppState, a: &Analyst, token_version: i64) -> ApiResult<TokenResponse> {
    Ok(TokenResponse {
        access_token: state.tokens.issue(a.id, token_version)?,
        token_type: "bearer",
        expires_in: state.tokens.ttl().as_secs(),
        analyst: a.into(),
    })
}

async fn hash(state: &AppState, password: String) -> ApiResult<String> {
    Ok(state.passwords.hash(password).await?)
}

async fn verify(state: &AppState, password: String, phc: Option<String>) -> ApiResult<bool> {
    Ok(state.passwords.verify(password, phc).await?)
}

const BAD_LOGIN: &str = "invalid username or password";

/// Log in with a username and password; returns a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem),
              (status = 429, description = "Too many failed attempts; see Retry-After", body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let creds = check_login(&state, rid, &req.username, req.password).await?;
    Ok(axum::Json(token_response(
        &state,
        &creds.analyst,
        creds.token_version,
    )?))
}

/// Checks a username and password the way every login does (the API's and the web
/// console's): the per-username throttle, the same argon2 time for unknown users, disabled
/// accounts refused with the same answer, failures and lock-outs audited, a success recorded.
/// Answers the analyst's credentials (their token version included).
pub async fn check_login(
    state: &AppState,
    rid: Option<String>,
    username: &str,
    password: String,
) -> ApiResult<bulwark_core::model::AnalystCredentials> {
    // Throttle by the normalized name whether or not it exists (no username oracle).
    let key: String = username.trim().to_lowercase().chars().take(128).collect();
    if let Err(wait) = state.throttle.check(&key, Instant::now()) {
        return Err(ApiError::TooManyRequests {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let creds = match validate::username("username", username) {
        Ok(u) => state.store.credentials_by_username(&u).await?,
        Err(_) => None,
    };
    // Spend the same argon2 time whether or not the account exists.
    let phc = creds.as_ref().map(|c| c.password_hash.clone());
    let password_ok = verify(state, password, phc).await?;
    let creds = match creds {
        Some(c) if password_ok && c.analyst.is_active => c,
        other => {
            state.throttle.record_failure(&key, Instant::now());
            let locked = state.throttle.check(&key, Instant::now()).is_err();
            record_failed_login(state, other.as_ref().map(|c| &c.analyst), &key, locked, rid).await;
            return Err(ApiError::Unauthorized(BAD_LOGIN));
        }
    };
    state.throttle.record_success(&key);
    let ctx = ChangeCtx {
        actor_kind: "user",
        actor_id: Some(creds.analyst.id.to_string()),
        actor_name: Some(creds.analyst.username.clone()),
        request_id: rid,
    };
    state
        .store
        .record_login(&ctx, creds.analyst.id, bulwark_core::time::now())
        .await?;
    Ok(creds)
}

/// Records a failed login (and, when it starts a lock-out, the lock-out) in the audit trail of
/// the account's tenant, or of the platform tenant for names that match no account. Attempts
/// refused by the throttle are not recorded one by one: they cost an attacker nothing, and
/// recording each would let anyone write to the audit log at will.
async fn record_failed_login(
    state: &AppState,
    analyst: Option<&Analyst>,
    attempted: &str,
    locked: bool,
    rid: Option<String>,
) {
    let tenant = analyst.map_or(state.config.platform_tenant, |a| a.tenant_id);
    let ctx = ChangeCtx {
        actor_kind: "system",
        actor_id: None,
        actor_name: Some("login".into()),
        request_id: rid,
    };
    let target_id = analyst.map_or_else(|| attempted.to_string(), |a| a.id.to_string());
    let mut events = vec![bulwark_audit::EventType::LoginFailed];
    if locked {
        events.push(bulwark_audit::EventType::LoginThrottled);
    }
    for event in events {
        let detail = serde_json::json!({"username": attempted, "known_user": analyst.is_some()});
        let rec = bulwark_store::audit::record(
            &ctx,
            event,
            "login",
            Some(target_id.clone()),
            None,
            Some(detail),
        );
        let result = match rec {
            Ok(r) => state.store.append_event(tenant, r).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record a failed login in the audit trail");
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    #[serde(flatten)]
    pub analyst: Analyst,
    /// Every permission this analyst holds.
    pub permissions: Vec<&'static str>,
    /// `true` for admins, who see every tenant.
    pub all_tenants: bool,
}

/// The logged-in analyst, with permissions.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = Problem)))]
pub async fn me(
    Auth(caller): Auth,
    current: Option<axum::Extension<CurrentAnalyst>>,
) -> ApiResult<axum::Json<MeResponse>> {
    let axum::Extension(CurrentAnalyst(analyst)) =
        current.ok_or(ApiError::Unauthorized("analyst session required"))?;
    Ok(axum::Json(MeResponse {
        all_tenants: caller.scope == Scope::AllTenants,
        permissions: permission_names(caller.permissions),
        analyst: (*analyst).clone(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// Change your own password. Every other session ends; a fresh token is returned.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let id = caller
        .analyst_id()
        .ok_or(ApiError::Unauthorized("analyst session required"))?;
    let creds = state
        .store
        .credentials_by_id(id)
        .await?
        .ok_or(ApiError::Unauthorized("analyst session required"))?;
    if !verify(
        &state,
        req.current_password,
        Some(creds.password_hash.clone()),
    )
    .await?
    {
        return Err(ApiError::field("current_password", "is not correct"));
    }
    validate::password("new_password", &req.new_password)?;
    let new_hash = hash(&state, req.new_password).await?;
    let ctx = ChangeCtx::from_caller(&caller, rid);
    state
        .store
        .set_password(&ctx, &Scope::AllTenants, id, new_hash)
        .await?;
    let fresh = state
        .store
        .credentials_by_id(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(token_response(
        &state,
        &fresh.analyst,
        fresh.token_version,
    )?))
}

/// Analysts visible to the caller.
#[utoipa::path(get, path = "/api/v1/auth/analysts", tag = "analysts", security(("bearer" = [])),
    responses((status = 200, body = [Analyst]), (status = 403, body = Problem)))]
pub async fn list_analysts(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<axum::Json<Vec<Analyst>>> {
    Ok(axum::Json(state.store.list_analysts(&caller.scope).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAnalystRequest {
    pub username: String,
    /// Omit to have a random password generated (returned once).
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub role: Role,
    /// Home tenant; defaults to the caller's.
    pub tenant_id: Option<TenantId>,
    /// Further tenants the analyst may see.
    #[serde(default)]
    pub tenant_ids: Vec<TenantId>,
}

#[derive(Serialize, ToSchema)]
pub struct AnalystCreated {
    pub analyst: Analyst,
    /// Present only when the password was generated; shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<String>,
}

fn check_tenants_visible(scope: &Scope, tenants: &[TenantId]) -> ApiResult<()> {
    match tenants.iter().find(|t| !scope.allows(**t)) {
        Some(t) => Err(ApiError::field("tenant_ids", format!("unknown tenant {t}"))),
        None => Ok(()),
    }
}

/// Create an analyst.
#[utoipa::path(post, path = "/api/v1/auth/analysts", tag = "analysts", security(("bearer" = [])),
    request_body = CreateAnalystRequest,
    responses((status = 201, body = AnalystCreated), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_analyst(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<CreateAnalystRequest>,
) -> ApiResult<(StatusCode, axum::Json<AnalystCreated>)> {
    let username = validate::username("username", &req.username)?;
    let display_name = match &req.display_name {
        Some(d) => validate::name("display_name", d, 128)?,
        None => username.clone(),
    };
    let tenant_id = caller
        .target_tenant(req.tenant_id)
        .ok_or_else(|| ApiError::field("tenant_id", "unknown tenant"))?;
    check_tenants_visible(&caller.scope, &req.tenant_ids)?;
    let (password, generated) = match req.password {
        Some(p) => {
            validate::password("password", &p)?;
            (p, false)
        }
        None => (generate_password(), true),
    };
    let password_hash = hash(&state, password.clone()).await?;
    let analyst = state
        .store
        .create_analyst(
            &ChangeCtx::from_caller(&caller, rid),
            NewAnalyst {
                tenant_id,
                username,
                display_name,
                password_hash,
                role: req.role,
                tenant_ids: req.tenant_ids,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AnalystCreated {
            analyst,
            initial_password: generated.then_some(password),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAnalystRequest {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub display_name: Option<String>,
    /// Replaces the analyst's extra tenants.
    pub tenant_ids: Option<Vec<TenantId>>,
}

/// Change an analyst's role, status, name or tenant access. The last active admin cannot be
/// demoted or disabled (409).
#[utoipa::path(patch, path = "/api/v1/auth/analysts/{id}", tag = "analysts", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Analyst id")), request_body = UpdateAnalystRequest,
    responses((status = 200, body = Analyst), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn update_analyst(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<UpdateAnalystRequest>,
) -> ApiResult<axum::Json<Analyst>> {
    let display_name = req
        .display_name
        .as_deref()
        .map(|d| validate::name("display_name", d, 128))
        .transpose()?;
    if let Some(ts) = &req.tenant_ids {
        check_tenants_visible(&caller.scope, ts)?;
    }
    let analyst = state
        .store
        .update_analyst(
            &ChangeCtx::from_caller(&caller, rid),
            &caller.scope,
            AnalystId(id),
            AnalystPatch {
                role: req.role,
                is_active: req.is_active,
                display_name,
                tenant_ids: req.tenant_ids,
            },
        )
        .await?;
    Ok(axum::Json(analyst))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// Omit (or send no body) to have a random password generated.
    pub new_password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ResetPasswordResponse {
    /// Present only when the password was generated; shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Set a new password for an analyst; their sessions end.
#[utoipa::path(post, path = "/api/v1/auth/analysts/{id}/reset-password", tag = "analysts",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "Analyst id")),
    request_body(content = Option<ResetPasswordRequest>),
    responses((status = 200, body = ResetPasswordResponse), (status = 404, body = Problem)))]
pub async fn reset_password(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    OptionalJson(req): OptionalJson<ResetPasswordRequest>,
) -> ApiResult<axum::Json<ResetPasswordResponse>> {
    let req = req.unwrap_or_default();
    let (password, generated) = match req.new_password {
        Some(p) => {
            validate::password("new_password", &p)?;
            (p, false)
        }
        None => (generate_password(), true),
    };
    // Resolve first so an unknown id is a 404 before any hashing work.
    state
        .store
        .get_analyst(&caller.scope, AnalystId(id))
        .await?;
    let h = hash(&state, password.clone()).await?;
    state
        .store
        .set_password(
            &ChangeCtx::from_caller(&caller, rid),
            &caller.scope,
            AnalystId(id),
            h,
        )
        .await?;
    Ok(axum::Json(ResetPasswordResponse {
        password: generated.then_some(password),
    }))
}
