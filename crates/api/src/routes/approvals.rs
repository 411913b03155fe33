//! Approvals: the human decisions runs wait for. Deciding is for analysts (not API keys) whose
//! role the step allows; a final decision wakes the run.

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{OptionalJson, PathId, Query};
use crate::state::AppState;
use axum::extract::State;
use bulwark_core::{Caller, Principal};
use bulwark_store::ChangeCtx;
use bulwark_store::automation::{ApprovalRecord, Decider};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const STATUSES: &[&str] = &[
    "pending",
    "approved",
    "rejected",
    "expired",
    "cancelled",
    "all",
];
const MAX_COMMENT: usize = 2000;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ApprovalQuery {
    /// pending (default), approved, rejected, expired, cancelled or all.
    pub status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    pub items: Vec<ApprovalRecord>,
}

/// Approvals visible to the caller (pending ones unless `status` says otherwise).
#[utoipa::path(get, path = "/api/v1/approvals", tag = "automation", security(("bearer" = [])),
    params(ApprovalQuery),
    responses((status = 200, body = ApprovalList), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<ApprovalQuery>,
) -> ApiResult<axum::Json<ApprovalList>> {
    let status = q.status.as_deref().unwrap_or("pending");
    if !STATUSES.contains(&status) {
        return Err(ApiError::field(
            "status",
            format!("expected one of {}", STATUSES.join(", ")),
        ));
    }
    let filter = (status != "all").then_some(status);
    Ok(axum::Json(ApprovalList {
        items: state.store.list_approvals(&caller.scope, filter).await?,
    }))
}

/// One approval with its decisions.
#[utoipa::path(get, path = "/api/v1/approvals/{id}", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Approval id")),
    responses((status = 200, body = ApprovalRecord), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<ApprovalRecord>> {
    Ok(axum::Json(
        state.store.get_approval(&caller.scope, id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why (at most 2000 characters); optional. The body itself may be empty.
    pub comment: Option<String>,
}

fn decider(caller: &Caller) -> ApiResult<Decider> {
    match (&caller.principal, caller.role) {
        (Principal::Analyst { id, username }, Some(role)) => Ok(Decider {
            analyst_id: id.0,
            username: username.clone(),
            role: role.as_str().to_owned(),
        }),
        _ => Err(ApiError::Forbidden(
            "approvals are decided by analysts, not API keys".into(),
        )),
    }
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    rid: Option<String>,
    id: uuid::Uuid,
    approve: bool,
    body: Option<DecisionRequest>,
) -> ApiResult<axum::Json<ApprovalRecord>> {
    let comment = body.and_then(|b| b.comment).map(|c| c.trim().to_owned());
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT)
    {
        return Err(ApiError::field(
            "comment",
            format!("at most {MAX_COMMENT} characters"),
        ));
    }
    let comment = comment.filter(|c| !c.is_empty());
    let decider = decider(caller)?;
    Ok(axum::Json(
        state
            .store
            .decide_approval(
                &ChangeCtx::from_caller(caller, rid),
                &caller.scope,
                id,
                &decider,
                approve,
                comment,
            )
            .await?,
    ))
}

/// Approve. 403 when the caller's role may not decide this approval (or the caller is an API
/// key); 409 when it is no longer pending or the caller already decided it.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Approval id")),
    request_body = DecisionRequest,
    responses((status = 200, body = ApprovalRecord), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn approve(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    OptionalJson(body): OptionalJson<DecisionRequest>,
) -> ApiResult<axum::Json<ApprovalRecord>> {
    decide(&state, &caller, rid, id, true, body).await
}

/// Reject (one rejection rejects; the run's step fails). Same errors as approve.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Approval id")),
    request_body = DecisionRequest,
    responses((status = 200, body = ApprovalRecord), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn reject(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    OptionalJson(body): OptionalJson<DecisionRequest>,
) -> ApiResult<axum::Json<ApprovalRecord>> {
    decide(&state, &caller, rid, id, false, body).await
}
