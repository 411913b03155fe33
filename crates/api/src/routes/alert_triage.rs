//! Changing alerts: PATCH, claim, bulk actions, soft delete, comments with @mentions and the
//! activity timeline. The rules live in `bulwark_core::alert_change` and the store; handlers
//! parse, resolve analysts (assignee, mentions) and map results.

use crate::auth::{Auth, RequestId, caller_for_analyst};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, PathId, PathIds, Query};
use crate::state::AppState;
use crate::triggers::Changed;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_core::alert_change::AlertChange;
use bulwark_core::triage::{AlertStatus, Determination, ResolveReason};
use bulwark_core::{AlertAccess, AnalystId, Caller, Principal, Scope, TenantId};
use bulwark_playbook::{TriggerEvent, TriggerKind};
use bulwark_store::ChangeCtx;
use bulwark_store::alert_triage::{Activity, BulkAction, BulkItem, ChangeRequest, Comment};
use bulwark_store::alerts::AlertDetail;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const MAX_BULK: usize = 500;
const MAX_COMMENT: usize = 10_000;
const MAX_MENTIONS: usize = 20;

/// `null` means "set to nothing", absent means "leave alone".
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

/// Fields to change; absent fields are left alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertPatch {
    pub status: Option<AlertStatus>,
    /// critical, high, medium, low or info.
    pub severity: Option<String>,
    /// Required when closing (resolved, false_positive).
    pub determination: Option<Determination>,
    /// Required when closing; must fit the determination and the status.
    pub resolve_reason: Option<ResolveReason>,
    /// An analyst id, or null to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    pub add_tags: Option<Vec<String>>,
    pub remove_tags: Option<Vec<String>>,
}

impl AlertPatch {
    fn into_change(self) -> AlertChange {
        AlertChange {
            status: self.status,
            severity: self.severity,
            determination: self.determination,
            resolve_reason: self.resolve_reason,
            assignee: self.assignee_id,
            tags: self.tags,
            add_tags: self.add_tags.unwrap_or_default(),
            remove_tags: self.remove_tags.unwrap_or_default(),
        }
    }
}

fn ctx(caller: &Caller, rid: RequestId) -> ChangeCtx {
    ChangeCtx::from_caller(caller, rid.0)
}

/// The tenants an analyst can see, for assignment checks. An unknown or disabled analyst sees
/// nothing (the store then refuses the assignment with one message for both, so the answer
/// does not reveal which analysts exist elsewhere).
async fn assignee_scope(state: &AppState, id: Uuid) -> ApiResult<Scope> {
    match state
        .store
        .get_analyst(&Scope::AllTenants, AnalystId(id))
        .await
    {
        Ok(a) if a.is_active => Ok(caller_for_analyst(&a, state.config.platform_tenant).scope),
        Ok(_) | Err(bulwark_store::StoreError::NotFound) => Ok(Scope::Tenants(Vec::new())),
        Err(e) => Err(e.into()),
    }
}

async fn change_request(
    state: &AppState,
    change: AlertChange,
    claim: Option<bool>,
) -> ApiResult<ChangeRequest> {
    let assignee_scope = match change.assignee {
        Some(Some(id)) => Some(assignee_scope(state, id).await?),
        _ => None,
    };
    Ok(ChangeRequest {
        change,
        assignee_scope,
        claim,
    })
}

/// Changes an alert's status, severity, determination, assignee or tags. Status changes
/// follow the lifecycle; closing needs a determination and a resolve reason that fit.
#[utoipa::path(patch, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id")),
    request_body = AlertPatch,
    responses((status = 200, body = AlertDetail), (status = 404, body = Problem),
        (status = 422, description = "invalid value or lifecycle move (the allowed ones are named)", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    rid: RequestId,
    PathId(id): PathId,
    Json(body): Json<AlertPatch>,
) -> ApiResult<axum::Json<AlertDetail>> {
    let access = AlertAccess::of(&caller);
    let req = change_request(&state, body.into_change(), None).await?;
    let ctx = ctx(&caller, rid);
    let changed = state.store.update_alert(&ctx, &access, id, &req).await?;
    updated(&state, &access, id, changed, &ctx).await
}

/// The alert after a change; a real change starts the playbooks listening for `alert.updated`.
async fn updated(
    state: &AppState,
    access: &AlertAccess,
    id: Uuid,
    changed: bool,
    ctx: &ChangeCtx,
) -> ApiResult<axum::Json<AlertDetail>> {
    let detail = state.store.get_alert(access, id).await?;
    if changed {
        crate::triggers::on_change(
            state,
            TriggerEvent::AlertUpdated,
            Changed::Alert(&detail),
            ctx.actor_name.clone(),
        )
        .await;
    }
    Ok(axum::Json(detail))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ClaimQuery {
    /// Take the alert over from another analyst.
    pub force: Option<bool>,
}

/// Assigns the alert to the calling analyst; a new or triaged alert moves to in_progress.
/// 409 when another analyst holds it (unless `force=true`) or when it is closed.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/claim", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id"), ClaimQuery),
    responses((status = 200, body = AlertDetail), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn claim(
    State(state): State<AppState>,
    Auth(caller): Auth,
    rid: RequestId,
    PathId(id): PathId,
    Query(q): Query<ClaimQuery>,
) -> ApiResult<axum::Json<AlertDetail>> {
    let Principal::Analyst { id: me, .. } = &caller.principal else {
        return Err(ApiError::Forbidden(
            "only analysts can claim alerts; API keys may assign them with PATCH".into(),
        ));
    };
    let access = AlertAccess::of(&caller);
    let change = AlertChange {
        assignee: Some(Some(me.0)),
        ..AlertChange::default()
    };
    let req = ChangeRequest {
        change,
        assignee_scope: Some(caller.scope.clone()),
        claim: Some(q.force.unwrap_or(false)),
    };
    let ctx = ctx(&caller, rid);
    let changed = state.store.update_alert(&ctx, &access, id, &req).await?;
    updated(&state, &access, id, changed, &ctx).await
}

/// One action on many alerts: `set` (the fields of PATCH: resolve, assign, tag, severity,
/// status) or `link_incident`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// 1 to 500 alert ids.
    pub alert_ids: Vec<Uuid>,
    pub set: Option<AlertPatch>,
    /// An incident of the alerts' tenant to link them to.
    pub link_incident: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkResponse {
    /// How many alerts changed.
    pub updated: usize,
    /// One result per requested id, in request order.
    pub results: Vec<BulkItem>,
}

/// Applies one action to up to 500 alerts in one transaction, with a result per alert: an
/// alert that is invisible, missing or refuses the change does not stop the others.
#[utoipa::path(post, path = "/api/v1/alerts/bulk", tag = "alerts", security(("bearer" = [])),
    request_body = BulkRequest,
    responses((status = 200, body = BulkResponse), (status = 422, body = Problem)))]
pub async fn bulk(
    State(state): State<AppState>,
    Auth(caller): Auth,
    rid: RequestId,
    Json(body): Json<BulkRequest>,
) -> ApiResult<axum::Json<BulkResponse>> {
    if body.alert_ids.is_empty() || body.alert_ids.len() > MAX_BULK {
        return Err(ApiError::field(
            "alert_ids",
            format!("give 1 to {MAX_BULK} alert ids"),
        ));
    }
    let action = match (body.set, body.link_incident) {
        (Some(set), None) => {
            BulkAction::Change(change_request(&state, set.into_change(), None).await?)
        }
        (None, Some(incident)) => BulkAction::LinkIncident(incident),
        _ => {
            return Err(ApiError::field(
                "set",
                "give exactly one of set or link_incident",
            ));
        }
    };
    let ctx = ctx(&caller, rid);
    let access = AlertAccess::of(&caller);
    let results = state
        .store
        .bulk_alerts(&ctx, &access, &body.alert_ids, &action)
        .await?;
    let updated: Vec<Uuid> = results
        .iter()
        .filter(|r| r.outcome == "updated")
        .map(|r| r.alert_id)
        .collect();
    if matches!(action, BulkAction::Change(_)) {
        bulk_updated(&state, &access, &updated, &ctx).await;
    }
    let updated = updated.len();
    Ok(axum::Json(BulkResponse { updated, results }))
}

/// Starts the `alert.updated` runs of a bulk change (only when some playbook listens).
async fn bulk_updated(state: &AppState, access: &AlertAccess, ids: &[Uuid], ctx: &ChangeCtx) {
    let listening = match state.triggers.current(&state.store).await {
        Ok(s) => s,
        Err(_) => return,
    };
    for id in ids {
        let Ok(detail) = state.store.get_alert(access, *id).await else {
            continue;
        };
        if !listening.listens(detail.summary.tenant_id, TriggerKind::AlertUpdated) {
            continue;
        }
        crate::triggers::on_change(
            state,
            TriggerEvent::AlertUpdated,
            Changed::Alert(&detail),
            ctx.actor_name.clone(),
        )
        .await;
    }
}

/// Soft-deletes an alert (administrators). It disappears from every list; the record and its
/// timeline stay for the audit trail.
#[utoipa::path(delete, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    rid: RequestId,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_alert(&ctx(&caller, rid), &AlertAccess::of(&caller), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// 1 to 10,000 characters; `@username` mentions an analyst.
    pub body: String,
}

/// Checks the text and resolves `@mentions` to analysts who can see `tenant` (others are
/// ignored: mentioning someone cannot leak the alert to them).
async fn comment_text(
    state: &AppState,
    body: &CommentBody,
    tenant: TenantId,
) -> ApiResult<Vec<Uuid>> {
    let text = body.body.trim();
    if text.is_empty() || body.body.chars().count() > MAX_COMMENT {
        return Err(ApiError::field(
            "body",
            format!("must be 1 to {MAX_COMMENT} characters"),
        ));
    }
    let mut ids = Vec::new();
    for name in bulwark_core::mentions::mentioned_usernames(text)
        .into_iter()
        .take(MAX_MENTIONS)
    {
        if let Some(c) = state.store.credentials_by_username(&name).await?
            && c.analyst.is_active
            && caller_for_analyst(&c.analyst, state.config.platform_tenant)
                .scope
                .allows(tenant)
        {
            ids.push(c.analyst.id.0);
        }
    }
    Ok(ids)
}

/// Adds a comment; `@username` mentions are resolved to analysts of the alert's tenant.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/comments", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id")),
    request_body = CommentBody,
    responses((status = 201, body = Comment), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add_comment(
    State(state): State<AppState>,
    Auth(caller): Auth,
    rid: RequestId,
    PathId(id): PathId,
    Json(body): Json<CommentBody>,
) -> ApiResult<(StatusCode, axum::Json<Comment>)> {
    let access = AlertAccess::of(&caller);
    let tenant = state.store.get_alert(&access, id).await?.summary.tenant_id;
    let mentions = comment_text(&state, &body, tenant).await?;
    let comment = state
        .store
        .add_alert_comment(&ctx(&caller, rid), &access, id, body.body.trim(), &mentions)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(comment)))
}

/// The alert's comments, oldest first.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/comments", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id")),
    responses((status = 200, body = Vec<Comment>), (status = 404, body = Problem)))]
pub async fn list_comments(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Vec<Comment>>> {
    Ok(axum::Json(
        state
            .store
            .list_alert_comments(&AlertAccess::of(&caller), id)
            .await?,
    ))
}

/// Edits a comment; only its author may.
#[utoipa::path(patch, path = "/api/v1/alerts/{id}/comments/{comment_id}", tag = "alerts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id"), ("comment_id" = Uuid, Path, description = "Comment id")),
    request_body = CommentBody,
    responses((status = 200, body = Comment), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn edit_comment(
    State(state): State<AppState>,
    Auth(caller): Auth,
    rid: RequestId,
    PathIds(id, comment_id): PathIds,
    Json(body): Json<CommentBody>,
) -> ApiResult<axum::Json<Comment>> {
    let access = AlertAccess::of(&caller);
    let tenant = state.store.get_alert(&access, id).await?.summary.tenant_id;
    let mentions = comment_text(&state, &body, tenant).await?;
    Ok(axum::Json(
        state
            .store
            .edit_alert_comment(
                &ctx(&caller, rid),
                &access,
                id,
                comment_id,
                body.body.trim(),
                &mentions,
            )
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    /// 1 to 500 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct ActivityPage {
    pub items: Vec<Activity>,
    pub next_cursor: Option<Uuid>,
}

/// Everything that happened to the alert, oldest first: who changed what from what to what.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/activities", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id"), ActivityQuery),
    responses((status = 200, body = ActivityPage), (status = 404, body = Problem)))]
pub async fn activities(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    Query(q): Query<ActivityQuery>,
) -> ApiResult<axum::Json<ActivityPage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 500"));
    }
    let items = state
        .store
        .alert_activities(&AlertAccess::of(&caller), id, q.cursor, limit)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|a| a.id))
        .flatten();
    Ok(axum::Json(ActivityPage { items, next_cursor }))
}
