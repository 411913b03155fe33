//! Notification rules and their deliveries (see `docs/integrations.md`, "Notifications").
//! Rules are read with `integrations:read` and changed with `integrations:manage`; deliveries
//! (which carry event data and errors) are for `integrations:manage` (admins).

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, PathId, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_core::TenantId;
use bulwark_integrations::notify;
use bulwark_store::ChangeCtx;
use bulwark_store::StoreError;
use bulwark_store::notifications::{
    Delivery, DeliveryFilter, EVENTS, EVENTS_WITH_SEVERITY, NotificationRule, RuleWrite,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const MAX_TEMPLATE: usize = 10_000;
const MAX_SLA_MINUTES: i32 = 525_600;

#[derive(Serialize, ToSchema)]
pub struct RuleList {
    pub items: Vec<NotificationRule>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RuleQuery {
    pub tenant_id: Option<TenantId>,
}

/// The caller's tenants' notification rules.
#[utoipa::path(get, path = "/api/v1/notifications/rules", tag = "integrations", security(("bearer" = [])),
    params(RuleQuery), responses((status = 200, body = RuleList), (status = 422, body = Problem)))]
pub async fn list_rules(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<RuleQuery>,
) -> ApiResult<axum::Json<RuleList>> {
    let items = state
        .store
        .list_notification_rules(&caller.scope, q.tenant_id)
        .await?;
    Ok(axum::Json(RuleList { items }))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/notifications/rules/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Rule id")),
    responses((status = 200, body = NotificationRule), (status = 404, body = Problem)))]
pub async fn get_rule(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<NotificationRule>> {
    Ok(axum::Json(
        state.store.get_notification_rule(&caller.scope, id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    /// Unique in the tenant.
    pub name: String,
    /// `alert.created`, `incident.created`, `incident.updated`, `approval.requested`,
    /// `run.failed` or `sla.breach_soon`.
    pub event: String,
    /// Only alerts/incidents at least this severe (`critical`, `high`, `medium`, `low`, `info`).
    pub min_severity: Option<String>,
    /// `sla.breach_soon` only (required there): the incident SLA in minutes from its opening.
    pub sla_minutes: Option<i32>,
    /// `sla.breach_soon` only: warn this many minutes before the deadline (default 0).
    pub warn_minutes: Option<i32>,
    /// A channel integration instance of the tenant (a type with `channel: true`).
    pub integration_id: Uuid,
    /// Title template (minijinja); a default per event when left out.
    pub title: Option<String>,
    /// Text template (minijinja); a default per event when left out.
    pub template: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Default: the caller's home tenant.
    pub tenant_id: Option<TenantId>,
}

fn yes() -> bool {
    true
}

/// Present and null → `Some(None)`; absent → `None`.
fn nullable<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRule {
    pub name: Option<String>,
    pub event: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub min_severity: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub sla_minutes: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub warn_minutes: Option<Option<i32>>,
    pub integration_id: Option<Uuid>,
    pub title: Option<String>,
    pub template: Option<String>,
    pub enabled: Option<bool>,
}

/// The default title and text of an event's messages.
pub fn default_templates(event: &str) -> (&'static str, &'static str) {
    match event {
        "alert.created" => (
            "[{{ alert.severity | upper }}] {{ alert.title }}",
            "New {{ alert.severity }} alert from {{ alert.source }}{% if alert.hostname %} on {{ alert.hostname }}{% endif %}: {{ alert.title }}{% if alert.source_ip %} (source {{ alert.source_ip }}){% endif %}",
        ),
        "incident.created" => (
            "Incident #{{ incident.number }} opened: {{ incident.title }}",
            "A {{ incident.severity }} incident was opened: #{{ incident.number }} {{ incident.title }}",
        ),
        "incident.updated" => (
            "Incident #{{ incident.number }} changed: {{ incident.title }}",
            "Incident #{{ incident.number }} ({{ incident.severity }}, {{ incident.status }}) changed: {% for k, v in changes.after | items %}{{ k }} → {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}",
        ),
        "approval.requested" => (
            "Approval needed: {{ approval.playbook_name }}",
            "Playbook {{ approval.playbook_name }} waits for an approval: {{ approval.message }}",
        ),
        "run.failed" => (
            "Playbook run failed: {{ run.playbook_name }}",
            "Run {{ run.id }} of {{ run.playbook_name }} failed: {{ run.error }}",
        ),
        "sla.breach_soon" => (
            "SLA: incident #{{ incident.number }} {% if sla.breached %}breached{% else %}due in {{ sla.minutes_left }} min{% endif %}",
            "Incident #{{ incident.number }} {{ incident.title }} ({{ incident.severity }}, {{ incident.status }}) has an SLA of {{ sla.minutes }} minutes; deadline {{ sla.deadline }}.",
        ),
        _ => ("Bulwark", "{{ event }}"),
    }
}

fn check_name(name: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(ApiError::field(
            "name",
            "1-100 characters, no control characters",
        ));
    }
    Ok(n.to_owned())
}

fn check_template(field: &'static str, t: &str, event: &str) -> ApiResult<()> {
    if t.len() > MAX_TEMPLATE || t.contains('\0') {
        return Err(ApiError::field(
            field,
            format!("at most {MAX_TEMPLATE} bytes"),
        ));
    }
    notify::check_template(t)
        .map_err(|e| ApiError::field(field, format!("template does not compile: {e}")))?;
    // A trial render over an example of the event catches unknown filters, includes (there is
    // no loader) and templates that run out of fuel.
    bulwark_integrations::template::render_text(t, &notify::sample_context(event))
        .map_err(|e| ApiError::field(field, format!("template does not render: {e}")))?;
    Ok(())
}

/// Checks a whole rule (after a create or a merged patch).
async fn check_rule(
    state: &AppState,
    caller: &bulwark_core::Caller,
    w: &RuleWrite,
) -> ApiResult<()> {
    if !EVENTS.contains(&w.event.as_str()) {
        return Err(ApiError::field(
            "event",
            format!("unknown event (expected one of {})", EVENTS.join(", ")),
        ));
    }
    if let Some(s) = &w.min_severity {
        if bulwark_core::incident::severity_rank(s).is_none() {
            return Err(ApiError::field(
                "min_severity",
                "expected one of critical, high, medium, low, info",
            ));
        }
        if !EVENTS_WITH_SEVERITY.contains(&w.event.as_str()) {
            return Err(ApiError::field(
                "min_severity",
                format!("{} events have no severity", w.event),
            ));
        }
    }
    if w.event == "sla.breach_soon" {
        match w.sla_minutes {
            Some(m) if (1..=MAX_SLA_MINUTES).contains(&m) => {}
            Some(_) => {
                return Err(ApiError::field(
                    "sla_minutes",
                    format!("1 to {MAX_SLA_MINUTES}"),
                ));
            }
            None => {
                return Err(ApiError::field(
                    "sla_minutes",
                    "required for sla.breach_soon",
                ));
            }
        }
        if let (Some(warn), Some(sla)) = (w.warn_minutes, w.sla_minutes)
            && !(0..=sla).contains(&warn)
        {
            return Err(ApiError::field("warn_minutes", "0 to sla_minutes"));
        }
    } else {
        if w.sla_minutes.is_some() {
            return Err(ApiError::field("sla_minutes", "only for sla.breach_soon"));
        }
        if w.warn_minutes.is_some() {
            return Err(ApiError::field("warn_minutes", "only for sla.breach_soon"));
        }
    }
    check_template("title", &w.title, &w.event)?;
    check_template("template", &w.template, &w.event)?;
    let rec = state
        .store
        .get_integration(&caller.scope, w.integration_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::field("integration_id", "no such integration"),
            other => other.into(),
        })?;
    if rec.tenant_id != w.tenant_id {
        return Err(ApiError::field(
            "integration_id",
            "the integration is not in the rule's tenant",
        ));
    }
    let channel = state
        .config
        .integrations
        .get_type(&rec.type_name)
        .is_some_and(|t| t.channel && t.action("notify").is_some());
    if !channel {
        return Err(ApiError::field(
            "integration_id",
            format!(
                "integration `{}` ({}) is not a notification channel",
                rec.name, rec.type_name
            ),
        ));
    }
    Ok(())
}

/// Create a rule: on `event` (filtered by `min_severity`), send the rendered `title` and
/// `template` through the channel `integration_id`.
#[utoipa::path(post, path = "/api/v1/notifications/rules", tag = "integrations", security(("bearer" = [])),
    request_body = CreateRule,
    responses((status = 201, body = NotificationRule), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_rule(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<CreateRule>,
) -> ApiResult<(StatusCode, axum::Json<NotificationRule>)> {
    let name = check_name(&req.name)?;
    let tenant_id = caller
        .target_tenant(req.tenant_id)
        .ok_or_else(|| ApiError::field("tenant_id", "unknown tenant"))?;
    let (dt, dm) = default_templates(&req.event);
    let w = RuleWrite {
        id: Uuid::now_v7(),
        tenant_id,
        name,
        event: req.event.clone(),
        min_severity: req.min_severity,
        sla_minutes: req.sla_minutes,
        warn_minutes: req.warn_minutes,
        integration_id: req.integration_id,
        title: req.title.unwrap_or_else(|| dt.to_owned()),
        template: req.template.unwrap_or_else(|| dm.to_owned()),
        enabled: req.enabled,
    };
    check_rule(&state, &caller, &w).await?;
    let rule = state
        .store
        .create_notification_rule(&ChangeCtx::from_caller(&caller, rid), &caller.scope, w)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(rule)))
}

/// Change a rule; fields left out stay as they are (null clears an optional one).
#[utoipa::path(patch, path = "/api/v1/notifications/rules/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Rule id")), request_body = UpdateRule,
    responses((status = 200, body = NotificationRule), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_rule(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<UpdateRule>,
) -> ApiResult<axum::Json<NotificationRule>> {
    let cur = state.store.get_notification_rule(&caller.scope, id).await?;
    let name = match &req.name {
        Some(n) => check_name(n)?,
        None => cur.name.clone(),
    };
    let w = RuleWrite {
        id,
        tenant_id: cur.tenant_id,
        name,
        event: req.event.unwrap_or(cur.event),
        min_severity: req.min_severity.unwrap_or(cur.min_severity),
        sla_minutes: req.sla_minutes.unwrap_or(cur.sla_minutes),
        warn_minutes: req.warn_minutes.unwrap_or(cur.warn_minutes),
        integration_id: req.integration_id.unwrap_or(cur.integration_id),
        title: req.title.unwrap_or(cur.title),
        template: req.template.unwrap_or(cur.template),
        enabled: req.enabled.unwrap_or(cur.enabled),
    };
    check_rule(&state, &caller, &w).await?;
    let rule = state
        .store
        .update_notification_rule(&ChangeCtx::from_caller(&caller, rid), &caller.scope, w)
        .await?;
    Ok(axum::Json(rule))
}

/// Delete a rule (its deliveries stay, with the rule's name).
#[utoipa::path(delete, path = "/api/v1/notifications/rules/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Rule id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_notification_rule(&ChangeCtx::from_caller(&caller, rid), &caller.scope, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test message now, rendered over an example of the rule's event. Answers the
/// recorded delivery: `status` is `sent`, or `failed` with the channel's reason.
#[utoipa::path(post, path = "/api/v1/notifications/rules/{id}/test", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Rule id")),
    responses((status = 200, body = Delivery), (status = 404, body = Problem)))]
pub async fn test_rule(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Delivery>> {
    let rule = state.store.get_notification_rule(&caller.scope, id).await?;
    let d = notify::send_test(
        &state.store,
        &state.config.integrations,
        &caller.scope,
        id,
        &rule.event,
    )
    .await?;
    Ok(axum::Json(d))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    pub tenant_id: Option<TenantId>,
    /// `queued`, `retrying`, `sent` or `failed`.
    pub status: Option<String>,
    pub rule_id: Option<Uuid>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1-500, default 100.
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<Delivery>,
    pub next_cursor: Option<Uuid>,
}

/// Deliveries, newest first; `?status=failed` lists the ones that could not be sent, with
/// the channel's reason (secrets redacted).
#[utoipa::path(get, path = "/api/v1/notifications/deliveries", tag = "integrations", security(("bearer" = [])),
    params(DeliveryQuery), responses((status = 200, body = DeliveryList), (status = 422, body = Problem)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<axum::Json<DeliveryList>> {
    if let Some(s) = &q.status
        && !["queued", "retrying", "sent", "failed"].contains(&s.as_str())
    {
        return Err(ApiError::field(
            "status",
            "expected queued, retrying, sent or failed",
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "1 to 500"));
    }
    let items = state
        .store
        .list_notification_deliveries(
            &caller.scope,
            &DeliveryFilter {
                tenant: q.tenant_id,
                status: q.status,
                rule_id: q.rule_id,
                before: q.cursor,
                limit,
            },
        )
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|d| d.id))
        .flatten();
    Ok(axum::Json(DeliveryList { items, next_cursor }))
}

/// One delivery.
#[utoipa::path(get, path = "/api/v1/notifications/deliveries/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses((status = 200, body = Delivery), (status = 404, body = Problem)))]
pub async fn get_delivery(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Delivery>> {
    Ok(axum::Json(
        state
            .store
            .get_notification_delivery(&caller.scope, id)
            .await?,
    ))
}

/// Queue a failed delivery again with fresh attempts (409 unless it failed).
#[utoipa::path(post, path = "/api/v1/notifications/deliveries/{id}/retry", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses((status = 202, body = Delivery), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<(StatusCode, axum::Json<Delivery>)> {
    let d = state
        .store
        .retry_delivery(&ChangeCtx::from_caller(&caller, rid), &caller.scope, id)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(d)))
}
