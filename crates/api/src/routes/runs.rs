//! Playbook runs: start one by hand (or preview it with a dry run), list and read runs with
//! every action attempt, cancel.

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, PathId, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bulwark_core::{AlertAccess, Caller, TenantId};
use bulwark_playbook::{PreviewAction, Sandbox};
use bulwark_store::automation::{NewRun, RunFilter, RunRecord, StepRecord};
use bulwark_store::{ChangeCtx, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const RUN_STATUSES: &[&str] = &[
    "queued",
    "running",
    "waiting",
    "paused",
    "succeeded",
    "failed",
    "cancelled",
];

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRunRequest {
    /// Run on this alert (it must be visible to the caller).
    pub alert_id: Option<Uuid>,
    /// Run on this incident (it must be visible to the caller).
    pub incident_id: Option<Uuid>,
    /// Free input, available to the playbook as `input` (an object).
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    /// For a global playbook run without an alert or incident: the tenant it runs for
    /// (default: the caller's home tenant).
    pub tenant_id: Option<TenantId>,
    /// Resolve and show what would run; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a dry run shows: each action in the order it would run.
#[derive(Serialize, ToSchema)]
pub struct DryRun {
    pub dry_run: bool,
    pub playbook_id: Uuid,
    pub playbook_name: String,
    pub playbook_version: i32,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    pub alert_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub actions: Vec<PreviewAction>,
}

/// The alert, incident and tenant a manual run is for, after the scope checks.
struct Subject {
    tenant: TenantId,
    alert: Value,
    incident: Value,
}

fn same_tenant(found: TenantId, slot: &mut Option<TenantId>, field: &str) -> ApiResult<()> {
    match slot {
        Some(t) if *t != found => Err(ApiError::field(
            field,
            "belongs to another tenant than the playbook or the other record",
        )),
        _ => {
            *slot = Some(found);
            Ok(())
        }
    }
}

/// Loads the alert/incident with the caller's access (404 when not visible, as if it did not
/// exist) and works out the tenant the run belongs to.
async fn subject(
    state: &AppState,
    caller: &Caller,
    playbook_tenant: Option<TenantId>,
    req: &StartRunRequest,
) -> ApiResult<Subject> {
    let access = AlertAccess::of(caller);
    let mut tenant = playbook_tenant;
    if playbook_tenant.is_some() && req.tenant_id.is_some_and(|t| Some(t) != playbook_tenant) {
        return Err(ApiError::field(
            "tenant_id",
            "the playbook belongs to another tenant",
        ));
    }
    let alert = match req.alert_id {
        None => Value::Null,
        Some(id) => {
            let a = state.store.get_alert(&access, id).await?;
            same_tenant(a.summary.tenant_id, &mut tenant, "alert_id")?;
            serde_json::to_value(a).map_err(ApiError::internal)?
        }
    };
    let incident = match req.incident_id {
        None => Value::Null,
        Some(id) => {
            let i = state.store.get_incident(&access, id).await?;
            same_tenant(i.incident.tenant_id, &mut tenant, "incident_id")?;
            serde_json::to_value(i).map_err(ApiError::internal)?
        }
    };
    let tenant = match tenant {
        Some(t) => t,
        None => caller
            .target_tenant(req.tenant_id)
            .ok_or_else(|| ApiError::field("tenant_id", "unknown tenant"))?,
    };
    if !caller.scope.allows(tenant) {
        return Err(ApiError::NotFound);
    }
    Ok(Subject {
        tenant,
        alert,
        incident,
    })
}

/// Start a run of a playbook by hand, on an alert, an incident or free input.
///
/// 202 with the queued run (a worker executes it). With `dry_run: true`: 200 with what each
/// action would do (arguments rendered against the real alert/incident; results of earlier
/// actions are reported as unknown), and nothing is written. 409 when the playbook is
/// disabled (a dry run is allowed); 404 when the playbook, alert or incident is not visible.
#[utoipa::path(post, path = "/api/v1/playbooks/{id}/run", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Playbook id")),
    request_body = StartRunRequest,
    responses((status = 202, body = RunRecord), (status = 200, description = "Dry run", body = DryRun),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn start(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    Json(req): Json<StartRunRequest>,
) -> ApiResult<Response> {
    let input = match req.input.clone() {
        None => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(ApiError::field("input", "must be a JSON object")),
    };
    let pb = state.store.get_playbook(&caller.scope, id).await?;
    let subject = subject(&state, &caller, pb.tenant_id, &req).await?;
    if req.dry_run {
        let compiled =
            bulwark_playbook::parse_json(&pb.spec, crate::routes::playbooks::catalog(&state))
                .map_err(|e| crate::routes::playbooks::invalid_playbook(&e))?;
        let ctx = bulwark_playbook::trigger_context(
            subject.alert,
            subject.incident,
            input,
            (&pb.name, pb.version),
            "dry-run",
            "manual",
        );
        let actions = bulwark_playbook::preview(&compiled, Sandbox::shared(), ctx);
        return Ok(axum::Json(DryRun {
            dry_run: true,
            playbook_id: pb.id,
            playbook_name: pb.name,
            playbook_version: pb.version,
            tenant_id: subject.tenant,
            alert_id: req.alert_id,
            incident_id: req.incident_id,
            actions,
        })
        .into_response());
    }
    if !pb.enabled {
        return Err(ApiError::Conflict(
            "the playbook is disabled; enable it to run it".into(),
        ));
    }
    let ids = state
        .store
        .create_runs(&[NewRun {
            tenant_id: subject.tenant,
            playbook_id: pb.id,
            playbook_name: pb.name.clone(),
            playbook_version: pb.version,
            trigger: "manual".into(),
            alert_id: req.alert_id,
            incident_id: req.incident_id,
            input,
            requested_by: Some(caller.label()),
            priority: pb.priority,
        }])
        .await?;
    let run_id = ids
        .first()
        .copied()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("create_runs returned no id")))?;
    let run = state.store.get_run(&caller.scope, run_id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(run)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// queued, running, waiting, paused, succeeded, failed or cancelled.
    pub status: Option<String>,
    pub playbook_id: Option<Uuid>,
    pub alert_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub tenant_id: Option<TenantId>,
    /// 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct RunPage {
    /// Newest first, without the saved run state (see the run itself).
    pub items: Vec<RunRecord>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// Runs visible to the caller, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "automation", security(("bearer" = [])),
    params(RunQuery),
    responses((status = 200, body = RunPage), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<RunQuery>,
) -> ApiResult<axum::Json<RunPage>> {
    if let Some(s) = &q.status
        && !RUN_STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::field(
            "status",
            format!("expected one of {}", RUN_STATUSES.join(", ")),
        ));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 500"));
    }
    let filter = RunFilter {
        tenant_id: q.tenant_id,
        playbook_id: q.playbook_id,
        alert_id: q.alert_id,
        incident_id: q.incident_id,
        status: q.status,
        before: q.cursor,
        limit,
    };
    let mut items = state.store.list_runs(&caller.scope, &filter).await?;
    for r in &mut items {
        r.state = None;
    }
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|r| r.id))
        .flatten();
    Ok(axum::Json(RunPage { items, next_cursor }))
}

#[derive(Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunRecord,
    /// Every attempt of every action, in order: input, output, error, worker, duration.
    pub steps: Vec<StepRecord>,
}

/// One run with every action attempt.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Run id")),
    responses((status = 200, body = RunDetail), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<RunDetail>> {
    let run = state.store.get_run(&caller.scope, id).await?;
    let steps = state.store.run_steps(&caller.scope, id).await?;
    Ok(axum::Json(RunDetail { run, steps }))
}

/// Cancel a run that has not finished: its job and pending approvals go; a worker holding it
/// stops at its next save. 409 when it has finished.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Run id")),
    responses((status = 200, body = RunRecord), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<axum::Json<RunRecord>> {
    let run = state
        .store
        .cancel_run(&ChangeCtx::from_caller(&caller, rid), &caller.scope, id)
        .await
        .map_err(|e| match e {
            StoreError::State(m) => ApiError::Conflict(m),
            e => e.into(),
        })?;
    Ok(axum::Json(run))
}
