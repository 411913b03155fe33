//! Integrations: the types this node knows, the tenant's configured instances (secrets in,
//! never out), health checks, and actions run by hand. See `docs/integrations.md`.

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, PathId, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_core::{AlertAccess, TenantId};
use bulwark_integrations::types::{FieldType, IntegrationType};
use bulwark_store::ChangeCtx;
use bulwark_store::integrations::{IntegrationRecord, IntegrationWrite, NewActionExecution};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// One configuration field of a type.
#[derive(Serialize, ToSchema)]
pub struct FieldView {
    pub name: String,
    /// Stored encrypted; write-only.
    pub secret: bool,
    pub required: bool,
    /// string, url, integer, bool or string_list.
    #[serde(rename = "type")]
    pub ty: String,
    pub description: String,
    #[schema(value_type = Option<Object>)]
    pub default: Option<Value>,
}

/// One input of an action.
#[derive(Serialize, ToSchema)]
pub struct InputView {
    pub name: String,
    /// The argument type, as in the playbook catalog.
    #[schema(value_type = Object)]
    #[serde(rename = "type")]
    pub ty: Value,
    pub required: bool,
    pub description: String,
    #[schema(value_type = Option<Object>)]
    pub default: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct ActionView {
    /// The engine action name (`virustotal.lookup_ip`).
    pub name: String,
    pub description: String,
    /// Changes something outside Bulwark.
    pub side_effects: bool,
    pub inputs: Vec<InputView>,
    /// Observable kinds automatic enrichment uses this action for.
    pub enriches: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TypeView {
    pub name: String,
    pub title: String,
    pub description: String,
    /// intel, siem, edr, messaging, ticketing or utility.
    pub category: String,
    /// Usable as a notification channel.
    pub channel: bool,
    /// Shipped with Bulwark (else loaded from the operator's directory).
    pub builtin: bool,
    /// header, query, bearer, basic, oauth2; none for types that carry the credential in a URL.
    pub auth: Option<String>,
    /// Requests per period allowed per instance (the vendor's limit).
    pub rate_limit: Option<RateLimitView>,
    pub has_health_check: bool,
    pub fields: Vec<FieldView>,
    pub actions: Vec<ActionView>,
}

#[derive(Serialize, ToSchema)]
pub struct RateLimitView {
    pub requests: u32,
    pub per_seconds: u64,
}

fn field_type(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "string",
        FieldType::Url => "url",
        FieldType::Integer => "integer",
        FieldType::Bool => "bool",
        FieldType::StringList => "string_list",
    }
}

fn type_view(t: &IntegrationType) -> TypeView {
    TypeView {
        name: t.name.clone(),
        title: t.title.clone(),
        description: t.description.clone(),
        category: t.category.clone(),
        channel: t.channel,
        builtin: t.builtin,
        auth: t.auth.as_ref().map(|a| a.kind().to_owned()),
        rate_limit: t.rate_limit.map(|r| RateLimitView {
            requests: r.requests,
            per_seconds: r.per.as_secs(),
        }),
        has_health_check: t.health.is_some()
            || matches!(t.kind, bulwark_integrations::types::Kind::Native(_)),
        fields: t
            .fields
            .iter()
            .map(|f| FieldView {
                name: f.name.clone(),
                secret: f.secret,
                required: f.required,
                ty: field_type(f.ty).into(),
                description: f.description.clone(),
                default: f.default.clone(),
            })
            .collect(),
        actions: t
            .actions
            .iter()
            .map(|a| ActionView {
                name: format!("{}.{}", t.name, a.name),
                description: a.description.clone(),
                side_effects: a.side_effects,
                inputs: a
                    .inputs
                    .iter()
                    .map(|i| InputView {
                        name: i.name.clone(),
                        ty: serde_json::to_value(&i.ty).unwrap_or(Value::Null),
                        required: i.required,
                        description: i.description.clone(),
                        default: i.default.clone(),
                    })
                    .collect(),
                enriches: a
                    .enrich
                    .as_ref()
                    .map(|e| e.kinds.clone())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct TypeList {
    pub items: Vec<TypeView>,
}

/// The integration types this node knows (built in and the operator's), with their
/// configuration fields and actions.
#[utoipa::path(get, path = "/api/v1/integrations/types", tag = "integrations", security(("bearer" = [])),
    responses((status = 200, body = TypeList)))]
pub async fn types(State(state): State<AppState>, Auth(_): Auth) -> axum::Json<TypeList> {
    axum::Json(TypeList {
        items: state
            .config
            .integrations
            .types()
            .map(|t| type_view(t))
            .collect(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct HealthView {
    /// `ok` or `failed`; none before the first check.
    pub status: Option<String>,
    /// The service's answer (a failure names the service's reason).
    pub message: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    pub latency_ms: Option<i32>,
}

/// An instance as the API shows it: secrets are never returned, only which are set.
#[derive(Serialize, ToSchema)]
pub struct IntegrationView {
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: String,
    pub description: Option<String>,
    /// The non-secret fields.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Names of the secret fields that hold a value.
    pub secrets_set: Vec<String>,
    /// False when the stored secrets cannot be decrypted with this node's keys (see
    /// docs/integrations.md, key rotation).
    pub secrets_readable: bool,
    pub enabled: bool,
    /// Used by actions that name no instance.
    pub is_default: bool,
    /// Used by automatic enrichment.
    pub enrichment: bool,
    pub health: HealthView,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(state: &AppState, r: IntegrationRecord) -> IntegrationView {
    let (secrets_set, readable) = match state.config.integrations.open_secrets(&r) {
        Ok(m) => (m.keys().cloned().collect(), true),
        Err(_) => (Vec::new(), false),
    };
    IntegrationView {
        id: r.id,
        tenant_id: r.tenant_id,
        type_name: r.type_name,
        name: r.name,
        description: r.description,
        config: r.config,
        secrets_set,
        secrets_readable: readable,
        enabled: r.enabled,
        is_default: r.is_default,
        enrichment: r.enrichment,
        health: HealthView {
            status: r.health_status,
            message: r.health_message,
            checked_at: r.health_checked_at,
            latency_ms: r.health_latency_ms,
        },
        created_by: r.created_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub tenant_id: Option<TenantId>,
    /// Only this type.
    #[serde(rename = "type")]
    pub type_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IntegrationList {
    pub items: Vec<IntegrationView>,
}

/// The caller's tenants' integration instances.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = IntegrationList), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<IntegrationList>> {
    let items = state
        .store
        .list_integrations(&caller.scope, q.tenant_id)
        .await?
        .into_iter()
        .filter(|r| q.type_name.as_ref().is_none_or(|t| &r.type_name == t))
        .map(|r| view(&state, r))
        .collect();
    Ok(axum::Json(IntegrationList { items }))
}

/// One instance.
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Integration id")),
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<IntegrationView>> {
    let r = state.store.get_integration(&caller.scope, id).await?;
    Ok(axum::Json(view(&state, r)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// An integration type (`GET /api/v1/integrations/types`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Unique in the tenant; playbooks pick an instance by it (`integration: ...`).
    pub name: String,
    pub description: Option<String>,
    /// The non-secret fields.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// The secret fields (write-only).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub secrets: Map<String, Value>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub is_default: bool,
    /// Use this instance for automatic enrichment of new observables.
    #[serde(default)]
    pub enrichment: bool,
    /// Default: the caller's home tenant.
    pub tenant_id: Option<TenantId>,
}

fn yes() -> bool {
    true
}

fn check_name(name: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.is_empty()
        || n.len() > 100
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::field(
            "name",
            "1-100 characters of letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(n.to_owned())
}

fn check_description(d: Option<String>) -> ApiResult<Option<String>> {
    match d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()) {
        Some(d) if d.len() > 2000 || d.contains('\0') => {
            Err(ApiError::field("description", "at most 2000 characters"))
        }
        other => Ok(other),
    }
}

/// Checks config and secrets against the type; `config` without secrets, `secrets` only
/// secret fields, values typed, required ones present.
async fn check_fields(
    state: &AppState,
    ty: &IntegrationType,
    config: &Map<String, Value>,
    secrets: &Map<String, Value>,
) -> ApiResult<()> {
    for (k, v) in config {
        match ty.field(k) {
            None => {
                return Err(ApiError::field(
                    format!("config.{k}"),
                    format!("unknown field of {}", ty.name),
                ));
            }
            Some(f) if f.secret => {
                return Err(ApiError::field(
                    format!("config.{k}"),
                    "a secret field: give it under `secrets`",
                ));
            }
            Some(f) => {
                f.ty.check(v)
                    .map_err(|m| ApiError::field(format!("config.{k}"), m))?
            }
        }
    }
    for (k, v) in secrets {
        match ty.field(k) {
            Some(f) if f.secret => {
                f.ty.check(v)
                    .map_err(|m| ApiError::field(format!("secrets.{k}"), m))?
            }
            Some(_) => {
                return Err(ApiError::field(
                    format!("secrets.{k}"),
                    "not a secret field: give it under `config`",
                ));
            }
            None => {
                return Err(ApiError::field(
                    format!("secrets.{k}"),
                    format!("unknown field of {}", ty.name),
                ));
            }
        }
    }
    for f in ty
        .fields
        .iter()
        .filter(|f| f.required && f.default.is_none())
    {
        let present = if f.secret {
            secrets.contains_key(&f.name)
        } else {
            config.contains_key(&f.name)
        };
        if !present {
            let place = if f.secret { "secrets" } else { "config" };
            return Err(ApiError::field(format!("{place}.{}", f.name), "required"));
        }
    }
    // A base_url that can never be reached (the metadata service, a private address the
    // operator did not allow) is refused now rather than at the first call.
    for f in ty
        .fields
        .iter()
        .filter(|f| f.ty == FieldType::Url && !f.secret)
    {
        if let Some(u) = config.get(&f.name).and_then(Value::as_str)
            && let Ok(url) = reqwest_url(u)
            && let Err(e) = state.config.integrations.policy().check(&url).await
            && !e.retryable
        {
            return Err(ApiError::field(format!("config.{}", f.name), e.message));
        }
    }
    Ok(())
}

fn reqwest_url(u: &str) -> Result<bulwark_integrations::outbound::Url, ()> {
    bulwark_integrations::outbound::Url::parse(u).map_err(|_| ())
}

fn non_null(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter().filter(|(_, v)| !v.is_null()).collect()
}

fn known_type(state: &AppState, name: &str) -> ApiResult<std::sync::Arc<IntegrationType>> {
    state.config.integrations.get_type(name).ok_or_else(|| {
        ApiError::field(
            "type",
            "unknown integration type (see GET /api/v1/integrations/types)",
        )
    })
}

fn check_enrichment(ty: &IntegrationType, on: bool) -> ApiResult<()> {
    if on && !ty.actions.iter().any(|a| a.enrich.is_some()) {
        return Err(ApiError::field(
            "enrichment",
            format!("{} has no enrichment action", ty.name),
        ));
    }
    Ok(())
}

/// Configure an integration for a tenant. Secret fields go under `secrets` and are stored
/// encrypted; they are never returned.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", security(("bearer" = [])),
    request_body = CreateRequest,
    responses((status = 201, body = IntegrationView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<CreateRequest>,
) -> ApiResult<(StatusCode, axum::Json<IntegrationView>)> {
    let ty = known_type(&state, &req.type_name)?;
    let name = check_name(&req.name)?;
    let description = check_description(req.description)?;
    let config = non_null(req.config);
    let secrets = non_null(req.secrets);
    check_fields(&state, &ty, &config, &secrets).await?;
    check_enrichment(&ty, req.enrichment)?;
    let tenant_id = caller
        .target_tenant(req.tenant_id)
        .ok_or_else(|| ApiError::field("tenant_id", "unknown tenant"))?;
    let id = Uuid::now_v7();
    let write = IntegrationWrite {
        id,
        tenant_id,
        type_name: ty.name.clone(),
        name,
        description,
        config: Value::Object(config),
        secrets: state.config.integrations.seal(id, &secrets),
        secret_fields: secrets.keys().cloned().collect(),
        enabled: req.enabled,
        is_default: req.is_default,
        enrichment: req.enrichment,
    };
    let rec = state
        .store
        .create_integration(&ChangeCtx::from_caller(&caller, rid), &caller.scope, write)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, rec))))
}

/// Present and null → `Some(None)`; absent → `None`.
fn nullable<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Merged into the config: a field set to null returns to its default.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Map<String, Value>>,
    /// Merged into the secrets: a field set to null is removed. Changing `base_url` requires
    /// giving every secret again (a new destination must not receive the stored credentials).
    #[schema(value_type = Option<Object>)]
    pub secrets: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
    pub is_default: Option<bool>,
    pub enrichment: Option<bool>,
}

/// Change an instance. Fields left out stay as they are.
#[utoipa::path(patch, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Integration id")), request_body = UpdateRequest,
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<UpdateRequest>,
) -> ApiResult<axum::Json<IntegrationView>> {
    let cur = state.store.get_integration(&caller.scope, id).await?;
    let ty = known_type(&state, &cur.type_name)?;
    let rt = &state.config.integrations;
    let mut config = cur.config.as_object().cloned().unwrap_or_default();
    let old_base = config.get("base_url").cloned();
    if let Some(c) = req.config {
        for (k, v) in c {
            if v.is_null() {
                config.remove(&k);
            } else {
                config.insert(k, v);
            }
        }
    }
    let mut secrets = rt
        .open_secrets(&cur)
        .map_err(|e| ApiError::field("secrets", format!("{e}; give every secret again")))
        .or_else(|e| {
            if req.secrets.is_some() {
                Ok(Map::new())
            } else {
                Err(e)
            }
        })?;
    let given: Vec<String> = req
        .secrets
        .as_ref()
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(s) = req.secrets {
        for (k, v) in s {
            if v.is_null() {
                secrets.remove(&k);
            } else {
                secrets.insert(k, v);
            }
        }
    }
    let base_changed = config.get("base_url").cloned() != old_base;
    if base_changed
        && let Some(missing) = ty
            .secret_fields()
            .find(|f| secrets.contains_key(&f.name) && !given.contains(&f.name))
    {
        return Err(ApiError::field(
            format!("secrets.{}", missing.name),
            "base_url changed: give every secret again (stored credentials never go to a new destination)",
        ));
    }
    check_fields(&state, &ty, &config, &secrets).await?;
    let enrichment = req.enrichment.unwrap_or(cur.enrichment);
    check_enrichment(&ty, enrichment)?;
    let write = IntegrationWrite {
        id,
        tenant_id: cur.tenant_id,
        type_name: cur.type_name.clone(),
        name: match req.name {
            Some(n) => check_name(&n)?,
            None => cur.name.clone(),
        },
        description: match req.description {
            Some(d) => check_description(d)?,
            None => cur.description.clone(),
        },
        config: Value::Object(config),
        secrets: rt.seal(id, &secrets),
        secret_fields: secrets.keys().cloned().collect(),
        enabled: req.enabled.unwrap_or(cur.enabled),
        is_default: req.is_default.unwrap_or(cur.is_default),
        enrichment,
    };
    let rec = state
        .store
        .update_integration(&ChangeCtx::from_caller(&caller, rid), &caller.scope, write)
        .await?;
    Ok(axum::Json(view(&state, rec)))
}

/// Remove an instance (playbooks naming it fail from then on).
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Integration id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_integration(&ChangeCtx::from_caller(&caller, rid), &caller.scope, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    pub ok: bool,
    /// `ok` or `failed`.
    pub status: String,
    /// On failure, the service's reason (e.g. "HTTP 401 from www.virustotal.com: Wrong API key").
    pub message: String,
    pub checked_at: DateTime<Utc>,
    pub latency_ms: i32,
}

/// Check an instance with a real call to the service; the result and its time are stored.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/health", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Integration id")),
    responses((status = 200, body = HealthResponse), (status = 404, body = Problem)))]
pub async fn health(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<HealthResponse>> {
    let rec = state.store.get_integration(&caller.scope, id).await?;
    let rt = &state.config.integrations;
    let result = match rt.open(&rec) {
        Ok(inst) => rt.health(&inst).await,
        Err(e) => bulwark_store::integrations::HealthResult {
            ok: false,
            message: e.message,
            checked_at: Utc::now(),
            latency_ms: 0,
        },
    };
    state.store.record_integration_health(id, &result).await?;
    Ok(axum::Json(HealthResponse {
        ok: result.ok,
        status: if result.ok { "ok" } else { "failed" }.into(),
        message: result.message,
        checked_at: result.checked_at,
        latency_ms: result.latency_ms,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// An integration action, e.g. `virustotal.lookup_ip`.
    pub action: String,
    /// The instance to use (of the action's type).
    pub integration_id: Uuid,
    /// The action's inputs.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Value,
    /// Record the execution on this alert's timeline (it must be in the integration's tenant).
    pub alert_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct ExecuteResponse {
    pub execution_id: Uuid,
    /// `succeeded` or `failed`.
    pub status: String,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Run an integration action by hand. The execution is recorded (and on the alert's timeline
/// when `alert_id` is given); a failing action answers 200 with `status: failed` and the
/// service's reason.
#[utoipa::path(post, path = "/api/v1/actions/execute", tag = "integrations", security(("bearer" = [])),
    request_body = ExecuteRequest,
    responses((status = 200, body = ExecuteResponse), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn execute(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<ExecuteRequest>,
) -> ApiResult<axum::Json<ExecuteResponse>> {
    let rt = state.config.integrations.clone();
    let Some((ty, def)) = rt.action(&req.action) else {
        return Err(ApiError::field(
            "action",
            "not an integration action (see GET /api/v1/integrations/types)",
        ));
    };
    let rec = state
        .store
        .get_integration(&caller.scope, req.integration_id)
        .await
        .map_err(|e| match e {
            bulwark_store::StoreError::NotFound => {
                ApiError::field("integration_id", "no such integration")
            }
            other => other.into(),
        })?;
    if rec.type_name != ty.name {
        return Err(ApiError::field(
            "action",
            format!(
                "integration `{}` is a {}, not a {}",
                rec.name, rec.type_name, ty.name
            ),
        ));
    }
    if let Some(alert) = req.alert_id {
        let a = state
            .store
            .get_alert(&AlertAccess::of(&caller), alert)
            .await
            .map_err(|e| match e {
                bulwark_store::StoreError::NotFound => ApiError::field("alert_id", "no such alert"),
                other => other.into(),
            })?;
        if a.summary.tenant_id != rec.tenant_id {
            return Err(ApiError::field(
                "alert_id",
                "the alert is not in the integration's tenant",
            ));
        }
    }
    if !rec.enabled {
        return Err(ApiError::field(
            "integration_id",
            "the integration is disabled",
        ));
    }
    // Bad input is the caller's mistake: a 422 naming the input, not a recorded failure.
    bulwark_integrations::Integrations::check_input(def, &req.input).map_err(|e| {
        ApiError::field(
            e.message.split(':').next().unwrap_or("input"),
            e.message.clone(),
        )
    })?;
    let started = Utc::now();
    let outcome = match rt.open(&rec) {
        Ok(inst) => {
            let key = format!("manual:{}", Uuid::now_v7());
            rt.call(&inst, &def.name, &req.input, &key, Duration::from_secs(60))
                .await
        }
        Err(e) => Err(e),
    };
    let finished = Utc::now();
    let (ok, output, error) = match outcome {
        Ok(v) => (true, Some(v), None),
        Err(e) => (false, None, Some(e.message)),
    };
    let execution_id = state
        .store
        .record_action_execution(
            &ChangeCtx::from_caller(&caller, rid),
            &NewActionExecution {
                tenant_id: rec.tenant_id,
                alert_id: req.alert_id,
                integration_id: Some(rec.id),
                action: req.action.clone(),
                ok,
                input: req.input.clone(),
                output: output.clone(),
                error: error.clone(),
                started_at: started,
                finished_at: finished,
            },
        )
        .await?;
    Ok(axum::Json(ExecuteResponse {
        execution_id,
        status: if ok { "succeeded" } else { "failed" }.into(),
        output,
        error,
        duration_ms: (finished - started).num_milliseconds(),
    }))
}
