//! Incidents: create (from alerts, from a template), list, read with aggregates, change
//! (lifecycle-checked), soft delete; linked alerts (link, unlink, move); the timeline;
//! comments; tasks; and suggestions of alerts to group into incidents.

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, PathId, Query};
use crate::state::AppState;
use crate::triggers::Changed;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bulwark_core::incident::{self, IncidentStatus, TaskStatus};
use bulwark_core::{AlertAccess, Caller, TenantId};
use bulwark_playbook::TriggerEvent;
use bulwark_store::ChangeCtx;
use bulwark_store::alerts::AlertSummary;
use bulwark_store::incidents::{
    Acting, CommentEdit, IncidentComment, IncidentDetail, IncidentFilter, IncidentPatch,
    IncidentTask, LinkResult, MAX_ALERTS_PER_REQUEST, NewIncident, NewTask, Suggestion,
    SuggestionFilter, TIMELINE_KINDS, TaskPatch, TimelineFilter, TimelineItem, parse_cursor,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub use bulwark_store::incidents::Incident;

/// Two UUID path parameters (`/{id}/.../{other}`); a malformed one is a 400 naming it.
pub struct PathIds(pub Uuid, pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(params) =
            axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::bad_request(None, "missing path parameters"))?;
        let mut ids = Vec::with_capacity(2);
        for (name, raw) in params.iter().take(2) {
            ids.push(
                Uuid::parse_str(raw)
                    .map_err(|_| ApiError::bad_request(Some(name.clone()), "must be a UUID"))?,
            );
        }
        match ids[..] {
            [a, b] => Ok(PathIds(a, b)),
            _ => Err(ApiError::bad_request(None, "missing path parameters")),
        }
    }
}

/// `Some(None)` for an explicit `null`, `Some(Some(v))` for a value; absent stays `None`
/// (with `#[serde(default)]`).
pub(crate) fn nullable<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub(crate) fn acting<'a>(
    state: &AppState,
    ctx: &'a ChangeCtx,
    access: &'a AlertAccess,
) -> Acting<'a> {
    Acting {
        ctx,
        access,
        platform_tenant: state.config.platform_tenant,
    }
}

fn list_of(field: &str, raw: Option<&str>, valid: &[&str]) -> ApiResult<Vec<String>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if valid.contains(&s) {
                Ok(s.to_string())
            } else {
                Err(ApiError::field(
                    field,
                    format!(
                        "unknown value `{}`; expected {}",
                        s.chars().take(32).collect::<String>(),
                        valid.join(", ")
                    ),
                ))
            }
        })
        .collect()
}

fn bounded_text(field: &str, v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        Some(s) if s.len() > 512 => Err(ApiError::field(field, "at most 512 bytes")),
        Some(s) if s.trim().is_empty() => Err(ApiError::field(field, "must not be empty")),
        other => Ok(other),
    }
}

fn limit(raw: Option<u32>, default: u32, max: u32) -> ApiResult<u32> {
    let l = raw.unwrap_or(default);
    if (1..=max).contains(&l) {
        Ok(l)
    } else {
        Err(ApiError::field("limit", format!("must be 1 to {max}")))
    }
}

fn statuses() -> Vec<&'static str> {
    IncidentStatus::ALL.iter().map(|s| s.as_str()).collect()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    /// Comma-separated statuses: open, in_progress, pending_approval, contained, eradicated,
    /// recovered, closed.
    pub status: Option<String>,
    /// Comma-separated severities: critical, high, medium, low, info.
    pub severity: Option<String>,
    pub tenant_id: Option<TenantId>,
    pub assignee_id: Option<Uuid>,
    pub tag: Option<String>,
    /// Text in the title or description (case-insensitive), or the number (`12` or `#12`).
    pub q: Option<String>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
    /// 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct IncidentPage {
    pub items: Vec<Incident>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// Incidents visible to the caller, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", security(("bearer" = [])),
    params(IncidentQuery),
    responses((status = 200, body = IncidentPage), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<axum::Json<IncidentPage>> {
    let limit = limit(q.limit, 50, 500)?;
    if let (Some(s), Some(u)) = (q.since, q.until)
        && s >= u
    {
        return Err(ApiError::field("until", "must be after since"));
    }
    let filter = IncidentFilter {
        tenant_id: q.tenant_id,
        status: list_of("status", q.status.as_deref(), &statuses())?,
        severity: list_of("severity", q.severity.as_deref(), incident::SEVERITIES)?,
        assignee_id: q.assignee_id,
        tag: bounded_text("tag", q.tag)?,
        text: bounded_text("q", q.q)?,
        since: q.since,
        until: q.until,
        after: q.cursor,
        limit,
    };
    let items = state
        .store
        .list_incidents(&AlertAccess::of(&caller), &filter)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|i| i.id))
        .flatten();
    Ok(axum::Json(IncidentPage { items, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIncidentRequest {
    /// 1 to 300 characters; optional with a template (its name is used).
    pub title: Option<String>,
    pub description: Option<String>,
    /// Default: the template's, else the highest of the alerts, else medium.
    pub severity: Option<String>,
    /// Default: the template's.
    pub tags: Option<Vec<String>>,
    pub assignee_id: Option<Uuid>,
    /// Default: the tenant of the first alert, else of the template, else the caller's home.
    pub tenant_id: Option<TenantId>,
    /// Fills defaults and creates the template's tasks.
    pub template_id: Option<Uuid>,
    /// Alerts to link at once (a merge: make an incident of these alerts); at most 1000.
    #[serde(default)]
    pub alert_ids: Vec<Uuid>,
}

/// The tenant a new incident goes to.
async fn incident_tenant(
    state: &AppState,
    caller: &Caller,
    req: &CreateIncidentRequest,
) -> ApiResult<TenantId> {
    if req.tenant_id.is_some() {
        return caller
            .target_tenant(req.tenant_id)
            .ok_or_else(|| ApiError::field("tenant_id", "unknown tenant"));
    }
    if let Some(first) = req.alert_ids.first()
        && let Ok(a) = state
            .store
            .get_alert(&AlertAccess::of(caller), *first)
            .await
    {
        return Ok(a.summary.tenant_id);
    }
    if let Some(t) = req.template_id
        && let Ok(t) = state.store.get_incident_template(&caller.scope, t).await
    {
        return Ok(t.tenant_id);
    }
    Ok(caller.home_tenant)
}

/// Create an incident, optionally from a template and with alerts linked at once.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", security(("bearer" = [])),
    request_body = CreateIncidentRequest,
    responses((status = 201, body = IncidentDetail), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<CreateIncidentRequest>,
) -> ApiResult<(StatusCode, axum::Json<IncidentDetail>)> {
    let title = req
        .title
        .as_deref()
        .map(|t| incident::title("title", t))
        .transpose()?;
    if title.is_none() && req.template_id.is_none() {
        return Err(ApiError::field("title", "required (or give a template_id)"));
    }
    let severity = req
        .severity
        .as_deref()
        .map(|s| incident::severity("severity", s))
        .transpose()?;
    let description = incident::text(
        "description",
        req.description.as_deref(),
        incident::MAX_DESCRIPTION,
    )?;
    let tags = req
        .tags
        .as_deref()
        .map(|t| incident::tags("tags", t))
        .transpose()?;
    if req.alert_ids.len() > MAX_ALERTS_PER_REQUEST {
        return Err(ApiError::field(
            "alert_ids",
            format!("at most {MAX_ALERTS_PER_REQUEST} alerts"),
        ));
    }
    let tenant_id = incident_tenant(&state, &caller, &req).await?;
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    let detail = state
        .store
        .create_incident(
            &acting(&state, &ctx, &access),
            NewIncident {
                tenant_id,
                title,
                description,
                severity,
                tags,
                assignee_id: req.assignee_id,
                template_id: req.template_id,
                alert_ids: req.alert_ids,
            },
        )
        .await?;
    crate::triggers::on_change(
        &state,
        TriggerEvent::IncidentCreated,
        Changed::Incident(&detail),
        ctx.actor_name.clone(),
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(detail)))
}

/// One incident: its fields, the observables, MITRE techniques and affected assets of its
/// linked alerts (those the caller can see), and its tasks.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id")),
    responses((status = 200, body = IncidentDetail), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<IncidentDetail>> {
    Ok(axum::Json(
        state
            .store
            .get_incident(&AlertAccess::of(&caller), id)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchIncidentRequest {
    /// A lifecycle move (see docs/incidents.md); refused moves are a 422 naming `status`
    /// and listing the allowed statuses.
    pub status: Option<IncidentStatus>,
    pub severity: Option<String>,
    pub title: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `null` unassigns.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    pub tags: Option<Vec<String>>,
}

/// Change an incident's status, severity, title, description, assignee or tags.
#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id")),
    request_body = PatchIncidentRequest,
    responses((status = 200, body = IncidentDetail), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<PatchIncidentRequest>,
) -> ApiResult<axum::Json<IncidentDetail>> {
    let patch = IncidentPatch {
        status: req.status,
        severity: req
            .severity
            .as_deref()
            .map(|s| incident::severity("severity", s))
            .transpose()?,
        title: req
            .title
            .as_deref()
            .map(|t| incident::title("title", t))
            .transpose()?,
        description: match req.description {
            Some(d) => Some(incident::text(
                "description",
                d.as_deref(),
                incident::MAX_DESCRIPTION,
            )?),
            None => None,
        },
        assignee_id: req.assignee_id,
        tags: req
            .tags
            .as_deref()
            .map(|t| incident::tags("tags", t))
            .transpose()?,
    };
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    let detail = state
        .store
        .update_incident(&acting(&state, &ctx, &access), id, patch)
        .await?;
    crate::triggers::on_change(
        &state,
        TriggerEvent::IncidentUpdated,
        Changed::Incident(&detail),
        ctx.actor_name.clone(),
    )
    .await;
    Ok(axum::Json(detail))
}

/// Delete an incident (soft: it disappears from every read; the audit trail keeps it).
#[utoipa::path(delete, path = "/api/v1/incidents/{id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    state
        .store
        .delete_incident(&acting(&state, &ctx, &access), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SuggestionQuery {
    pub tenant_id: Option<TenantId>,
    /// Alerts first seen within this many hours (1 to 720, default 24).
    pub window_hours: Option<u32>,
    /// At most this many groups (1 to 50, default 50).
    pub limit: Option<u32>,
}

/// Groups of open alerts not linked to any incident that share an observable or a hostname,
/// largest first: candidates for an incident (`POST /api/v1/incidents` with their ids).
#[utoipa::path(get, path = "/api/v1/incidents/suggestions", tag = "incidents", security(("bearer" = [])),
    params(SuggestionQuery),
    responses((status = 200, body = [Suggestion]), (status = 422, body = Problem)))]
pub async fn suggestions(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<SuggestionQuery>,
) -> ApiResult<axum::Json<Vec<Suggestion>>> {
    let hours = q.window_hours.unwrap_or(24);
    if !(1..=720).contains(&hours) {
        return Err(ApiError::field(
            "window_hours",
            "must be 1 to 720 (30 days)",
        ));
    }
    let max_groups = limit(q.limit, 50, 50)? as usize;
    let filter = SuggestionFilter {
        tenant_id: q.tenant_id,
        window: chrono::Duration::hours(i64::from(hours)),
        max_groups,
        max_alerts: 100,
    };
    Ok(axum::Json(
        state
            .store
            .suggest_incidents(&AlertAccess::of(&caller), &filter)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkAlertsRequest {
    /// 1 to 1000 alert ids of the incident's tenant.
    pub alert_ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct LinkAlertsResponse {
    /// One result per requested id, in request order.
    pub results: Vec<LinkResult>,
}

/// Link alerts to an incident. Linking an already linked alert changes nothing; an alert that
/// does not exist in the incident's tenant or that the caller cannot see is `not_found`.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/alerts", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id")),
    request_body = LinkAlertsRequest,
    responses((status = 200, body = LinkAlertsResponse), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn link(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<LinkAlertsRequest>,
) -> ApiResult<axum::Json<LinkAlertsResponse>> {
    if req.alert_ids.is_empty() || req.alert_ids.len() > MAX_ALERTS_PER_REQUEST {
        return Err(ApiError::field(
            "alert_ids",
            format!("must list 1 to {MAX_ALERTS_PER_REQUEST} alert ids"),
        ));
    }
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    let results = state
        .store
        .link_alerts(&acting(&state, &ctx, &access), id, &req.alert_ids)
        .await?;
    Ok(axum::Json(LinkAlertsResponse { results }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1 to 500 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertSummary>,
    pub next_cursor: Option<Uuid>,
}

/// The alerts linked to an incident that the caller can see, newest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/alerts", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id"), PageQuery),
    responses((status = 200, body = AlertPage), (status = 404, body = Problem)))]
pub async fn alerts(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<AlertPage>> {
    let limit = limit(q.limit, 100, 500)?;
    let items = state
        .store
        .incident_alerts(&AlertAccess::of(&caller), id, q.cursor, limit)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|a| a.id))
        .flatten();
    Ok(axum::Json(AlertPage { items, next_cursor }))
}

/// Unlink an alert from an incident.
#[utoipa::path(delete, path = "/api/v1/incidents/{id}/alerts/{alert_id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id"), ("alert_id" = Uuid, Path, description = "Alert id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn unlink(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathIds(id, alert_id): PathIds,
) -> ApiResult<StatusCode> {
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    state
        .store
        .unlink_alert(&acting(&state, &ctx, &access), id, alert_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveAlertRequest {
    /// An incident of the same tenant.
    pub to_incident_id: Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct MoveAlertResponse {
    pub alert_id: Uuid,
    pub from_incident_id: Uuid,
    pub to_incident_id: Uuid,
}

/// Move an alert from this incident to another, in one transaction.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/alerts/{alert_id}/move", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident the alert is in"), ("alert_id" = Uuid, Path, description = "Alert id")),
    request_body = MoveAlertRequest,
    responses((status = 200, body = MoveAlertResponse), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn move_alert(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathIds(id, alert_id): PathIds,
    Json(req): Json<MoveAlertRequest>,
) -> ApiResult<axum::Json<MoveAlertResponse>> {
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    state
        .store
        .move_alert(
            &acting(&state, &ctx, &access),
            id,
            alert_id,
            req.to_incident_id,
        )
        .await?;
    Ok(axum::Json(MoveAlertResponse {
        alert_id,
        from_incident_id: id,
        to_incident_id: req.to_incident_id,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    /// Comma-separated kinds: created, updated, status_changed, deleted, alert_linked,
    /// alert_unlinked, task_added, task_updated, task_deleted, comment_edited, alert_arrived,
    /// comment, alert_activity. All when absent.
    pub kind: Option<String>,
    /// 1 to 500 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TimelinePage {
    pub items: Vec<TimelineItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The incident's timeline, oldest first: its own events, the arrival of each linked alert,
/// comments, and the activity of linked alerts (only alerts the caller can see).
#[utoipa::path(get, path = "/api/v1/incidents/{id}/timeline", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id"), TimelineQuery),
    responses((status = 200, body = TimelinePage), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn timeline(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    Query(q): Query<TimelineQuery>,
) -> ApiResult<axum::Json<TimelinePage>> {
    let limit = limit(q.limit, 100, 500)?;
    let kinds = list_of("kind", q.kind.as_deref(), TIMELINE_KINDS)?;
    let after =
        match q.cursor.as_deref() {
            None => None,
            Some(c) => Some(parse_cursor(c).ok_or_else(|| {
                ApiError::field("cursor", "not a cursor returned by this endpoint")
            })?),
        };
    let items = state
        .store
        .incident_timeline(
            &AlertAccess::of(&caller),
            id,
            &TimelineFilter {
                kinds,
                after,
                limit,
            },
        )
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(TimelineItem::cursor))
        .flatten();
    Ok(axum::Json(TimelinePage { items, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// 1 to 10000 characters; `@username` mentions analysts.
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct CommentPage {
    pub items: Vec<IncidentComment>,
    pub next_cursor: Option<Uuid>,
}

/// Comments on an incident, oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/comments", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id"), PageQuery),
    responses((status = 200, body = CommentPage), (status = 404, body = Problem)))]
pub async fn list_comments(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<CommentPage>> {
    let limit = limit(q.limit, 100, 500)?;
    let items = state
        .store
        .list_incident_comments(&caller.scope, id, q.cursor, limit)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|c| c.id))
        .flatten();
    Ok(axum::Json(CommentPage { items, next_cursor }))
}

/// Comment on an incident. Mentioned analysts who can see the tenant are recorded.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/comments", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id")),
    request_body = CommentRequest,
    responses((status = 201, body = IncidentComment), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add_comment(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<CommentRequest>,
) -> ApiResult<(StatusCode, axum::Json<IncidentComment>)> {
    let body = incident::comment_body("body", &req.body)?;
    let mentioned = bulwark_core::mentions::mentioned_usernames(&body);
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    let c = state
        .store
        .add_incident_comment(&acting(&state, &ctx, &access), id, body, &mentioned)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(c)))
}

/// Edit your own comment (sets `edited_at`); others' comments are refused with 403.
#[utoipa::path(patch, path = "/api/v1/incidents/{id}/comments/{comment_id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id"), ("comment_id" = Uuid, Path, description = "Comment id")),
    request_body = CommentRequest,
    responses((status = 200, body = IncidentComment), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn edit_comment(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathIds(id, comment_id): PathIds,
    Json(req): Json<CommentRequest>,
) -> ApiResult<axum::Json<IncidentComment>> {
    let body = incident::comment_body("body", &req.body)?;
    let mentioned = bulwark_core::mentions::mentioned_usernames(&body);
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    match state
        .store
        .edit_incident_comment(
            &acting(&state, &ctx, &access),
            id,
            comment_id,
            body,
            &mentioned,
        )
        .await?
    {
        CommentEdit::Edited(c) => Ok(axum::Json(c)),
        CommentEdit::NotAuthor => Err(ApiError::Forbidden(
            "only the author can edit a comment".into(),
        )),
    }
}

/// The incident's tasks, in order.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/tasks", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id")),
    responses((status = 200, body = [IncidentTask]), (status = 404, body = Problem)))]
pub async fn list_tasks(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Vec<IncidentTask>>> {
    Ok(axum::Json(
        state.store.list_incident_tasks(&caller.scope, id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// 1 to 300 characters.
    pub title: String,
    pub description: Option<String>,
    pub assignee_id: Option<Uuid>,
    /// Default open.
    pub status: Option<TaskStatus>,
    pub due_at: Option<DateTime<Utc>>,
}

/// Add a task to an incident.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/tasks", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id")),
    request_body = CreateTaskRequest,
    responses((status = 201, body = IncidentTask), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add_task(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<CreateTaskRequest>,
) -> ApiResult<(StatusCode, axum::Json<IncidentTask>)> {
    let task = NewTask {
        title: incident::title("title", &req.title)?,
        description: incident::text(
            "description",
            req.description.as_deref(),
            incident::MAX_DESCRIPTION,
        )?,
        assignee_id: req.assignee_id,
        status: req.status.unwrap_or(TaskStatus::Open),
        due_at: req.due_at,
    };
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    let t = state
        .store
        .add_incident_task(&acting(&state, &ctx, &access), id, task)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(t)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTaskRequest {
    pub title: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `null` unassigns.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    /// Any status may follow any other; `done` sets `completed_at`, leaving it clears it.
    pub status: Option<TaskStatus>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Option<Option<DateTime<Utc>>>,
}

/// Change a task.
#[utoipa::path(patch, path = "/api/v1/incidents/{id}/tasks/{task_id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id"), ("task_id" = Uuid, Path, description = "Task id")),
    request_body = PatchTaskRequest,
    responses((status = 200, body = IncidentTask), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_task(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathIds(id, task_id): PathIds,
    Json(req): Json<PatchTaskRequest>,
) -> ApiResult<axum::Json<IncidentTask>> {
    let patch = TaskPatch {
        title: req
            .title
            .as_deref()
            .map(|t| incident::title("title", t))
            .transpose()?,
        description: match req.description {
            Some(d) => Some(incident::text(
                "description",
                d.as_deref(),
                incident::MAX_DESCRIPTION,
            )?),
            None => None,
        },
        assignee_id: req.assignee_id,
        status: req.status,
        due_at: req.due_at,
    };
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    Ok(axum::Json(
        state
            .store
            .update_incident_task(&acting(&state, &ctx, &access), id, task_id, patch)
            .await?,
    ))
}

/// Delete a task.
#[utoipa::path(delete, path = "/api/v1/incidents/{id}/tasks/{task_id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Incident id"), ("task_id" = Uuid, Path, description = "Task id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_task(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathIds(id, task_id): PathIds,
) -> ApiResult<StatusCode> {
    let ctx = ChangeCtx::from_caller(&caller, rid);
    let access = AlertAccess::of(&caller);
    state
        .store
        .delete_incident_task(&acting(&state, &ctx, &access), id, task_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
