//! Incident templates (per tenant): default severity, tags and description, the tasks to
//! create, and the playbooks to start (stored for the automation feature).

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, PathId, Query};
use crate::routes::incidents::nullable;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_core::TenantId;
use bulwark_core::incident;
use bulwark_store::ChangeCtx;
use bulwark_store::incidents::{IncidentTemplate, NewTemplate, TemplatePatch, TemplateTask};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

const MAX_TASKS: usize = 100;
const MAX_PLAYBOOKS: usize = 50;

fn tasks(raw: Vec<TemplateTask>) -> ApiResult<Vec<TemplateTask>> {
    if raw.len() > MAX_TASKS {
        return Err(ApiError::field(
            "tasks",
            format!("at most {MAX_TASKS} tasks"),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let title = incident::title("title", &t.title)
                .map_err(|e| ApiError::field(format!("tasks[{i}].title"), e.message))?;
            let description = incident::text(
                "description",
                t.description.as_deref(),
                incident::MAX_DESCRIPTION,
            )
            .map_err(|e| ApiError::field(format!("tasks[{i}].description"), e.message))?;
            if let Some(h) = t.due_in_hours
                && !(1..=8760).contains(&h)
            {
                return Err(ApiError::field(
                    format!("tasks[{i}].due_in_hours"),
                    "must be 1 to 8760 (a year)",
                ));
            }
            Ok(TemplateTask {
                title,
                description,
                due_in_hours: t.due_in_hours,
            })
        })
        .collect()
}

fn playbooks(raw: Vec<String>) -> ApiResult<Vec<String>> {
    if raw.len() > MAX_PLAYBOOKS {
        return Err(ApiError::field(
            "playbooks",
            format!("at most {MAX_PLAYBOOKS} playbooks"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for p in raw {
        let v = bulwark_core::validate::name("playbooks", &p, 200)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    pub tenant_id: Option<TenantId>,
}

/// Incident templates visible to the caller, by name.
#[utoipa::path(get, path = "/api/v1/incident-templates", tag = "incidents", security(("bearer" = [])),
    params(TemplateQuery),
    responses((status = 200, body = [IncidentTemplate])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<TemplateQuery>,
) -> ApiResult<axum::Json<Vec<IncidentTemplate>>> {
    Ok(axum::Json(
        state
            .store
            .list_incident_templates(&caller.scope, q.tenant_id)
            .await?,
    ))
}

/// One incident template.
#[utoipa::path(get, path = "/api/v1/incident-templates/{id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Template id")),
    responses((status = 200, body = IncidentTemplate), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<IncidentTemplate>> {
    Ok(axum::Json(
        state.store.get_incident_template(&caller.scope, id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplateRequest {
    /// 1 to 200 characters, unique in the tenant.
    pub name: String,
    /// The default description of incidents made from it.
    pub description: Option<String>,
    /// Default severity (critical, high, medium, low, info).
    pub severity: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub tasks: Vec<TemplateTask>,
    /// Playbook names or ids (started by the automation feature).
    #[serde(default)]
    pub playbooks: Vec<String>,
    /// Defaults to the caller's home tenant.
    pub tenant_id: Option<TenantId>,
}

/// Create an incident template (409 when the name exists in the tenant).
#[utoipa::path(post, path = "/api/v1/incident-templates", tag = "incidents", security(("bearer" = [])),
    request_body = CreateTemplateRequest,
    responses((status = 201, body = IncidentTemplate), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<CreateTemplateRequest>,
) -> ApiResult<(StatusCode, axum::Json<IncidentTemplate>)> {
    let tenant_id = caller
        .target_tenant(req.tenant_id)
        .ok_or_else(|| ApiError::field("tenant_id", "unknown tenant"))?;
    let new = NewTemplate {
        tenant_id,
        name: bulwark_core::validate::name("name", &req.name, 200)?,
        description: incident::text(
            "description",
            req.description.as_deref(),
            incident::MAX_DESCRIPTION,
        )?,
        severity: incident::severity("severity", &req.severity)?,
        tags: incident::tags("tags", &req.tags)?,
        tasks: tasks(req.tasks)?,
        playbooks: playbooks(req.playbooks)?,
    };
    let t = state
        .store
        .create_incident_template(&ChangeCtx::from_caller(&caller, rid), &caller.scope, new)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(t)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTemplateRequest {
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub severity: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Replaces the whole list.
    pub tasks: Option<Vec<TemplateTask>>,
    /// Replaces the whole list.
    pub playbooks: Option<Vec<String>>,
}

/// Change an incident template (incidents already made from it keep what they got).
#[utoipa::path(patch, path = "/api/v1/incident-templates/{id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Template id")),
    request_body = PatchTemplateRequest,
    responses((status = 200, body = IncidentTemplate), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<PatchTemplateRequest>,
) -> ApiResult<axum::Json<IncidentTemplate>> {
    let patch = TemplatePatch {
        name: req
            .name
            .as_deref()
            .map(|n| bulwark_core::validate::name("name", n, 200))
            .transpose()?,
        description: match req.description {
            Some(d) => Some(incident::text(
                "description",
                d.as_deref(),
                incident::MAX_DESCRIPTION,
            )?),
            None => None,
        },
        severity: req
            .severity
            .as_deref()
            .map(|s| incident::severity("severity", s))
            .transpose()?,
        tags: req
            .tags
            .as_deref()
            .map(|t| incident::tags("tags", t))
            .transpose()?,
        tasks: req.tasks.map(tasks).transpose()?,
        playbooks: req.playbooks.map(playbooks).transpose()?,
    };
    Ok(axum::Json(
        state
            .store
            .update_incident_template(
                &ChangeCtx::from_caller(&caller, rid),
                &caller.scope,
                id,
                patch,
            )
            .await?,
    ))
}

/// Delete an incident template (incidents made from it are not changed).
#[utoipa::path(delete, path = "/api/v1/incident-templates/{id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Template id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_incident_template(&ChangeCtx::from_caller(&caller, rid), &caller.scope, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
