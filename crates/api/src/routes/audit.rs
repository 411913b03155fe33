//! The audit trail over HTTP: read events, verify chains, sign checkpoints on demand.

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Query;
use crate::state::AppState;
use axum::extract::State;
use bulwark_core::TenantId;
use bulwark_store::audit::{AuditEvent, AuditFilter, VerifyMode, sign_checkpoints, verify_tenant};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub tenant_id: Option<TenantId>,
    /// Analyst or API key id.
    pub actor_id: Option<String>,
    /// e.g. `security.login.failed`.
    pub event_type: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// 1 to 500 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventsPage {
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn parse_cursor(c: &str) -> Option<(TenantId, u64)> {
    let (t, s) = c.split_once(':')?;
    Some((t.parse().ok()?, s.parse().ok()?))
}

/// Audit events visible to the caller, oldest first within each tenant.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", security(("bearer" = [])),
    params(EventsQuery),
    responses((status = 200, body = EventsPage), (status = 422, body = Problem)))]
pub async fn events(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<EventsQuery>,
) -> ApiResult<axum::Json<EventsPage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 500"));
    }
    let event_type = q
        .event_type
        .as_deref()
        .map(|e| {
            bulwark_audit::EventType::parse(e)
                .map_err(|_| ApiError::field("event_type", "unknown event type"))
        })
        .transpose()?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            parse_cursor(c).ok_or_else(|| ApiError::field("cursor", "not a cursor from this API"))
        })
        .transpose()?;
    let filter = AuditFilter {
        tenant_id: q.tenant_id,
        actor_id: q.actor_id,
        event_type,
        target_kind: q.target_kind,
        target_id: q.target_id,
        since: q.since,
        until: q.until,
        after,
        limit,
    };
    let items = state.store.list_audit(&caller.scope, &filter).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|e| format!("{}:{}", e.tenant_id, e.seq)))
        .flatten();
    Ok(axum::Json(EventsPage { items, next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// `full` (default) or `incremental` (from the newest valid checkpoint).
    pub mode: Option<VerifyMode>,
    pub tenant_id: Option<TenantId>,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyResponse {
    /// True when every chain verified.
    pub ok: bool,
    /// One report per tenant: records checked, first broken seq and why, checkpoints checked.
    #[schema(value_type = Vec<Object>)]
    pub reports: Vec<bulwark_audit::VerifyReport>,
}

/// Verify the audit chains visible to the caller.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    params(VerifyQuery), responses((status = 200, body = VerifyResponse), (status = 404, body = Problem)))]
pub async fn verify(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<VerifyQuery>,
) -> ApiResult<axum::Json<VerifyResponse>> {
    let tenants = match q.tenant_id {
        Some(t) if caller.scope.allows(t) => vec![t],
        Some(_) => return Err(ApiError::NotFound),
        None => state.store.audit_tenants(&caller.scope).await?,
    };
    let keys = state.config.audit.trusted_keys();
    let mut reports = Vec::with_capacity(tenants.len());
    for t in tenants {
        reports.push(
            verify_tenant(
                state.store.as_ref(),
                t,
                &keys,
                q.mode.unwrap_or(VerifyMode::Full),
            )
            .await?,
        );
    }
    Ok(axum::Json(VerifyResponse {
        ok: reports.iter().all(|r| r.is_ok()),
        reports,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointResponse {
    /// Checkpoints written (chains that moved since their last checkpoint).
    pub signed: usize,
    /// The public key that verifies them (hex).
    pub public_key: String,
}

/// Sign a checkpoint of every chain in scope now.
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = CheckpointResponse), (status = 503, body = Problem)))]
pub async fn checkpoint(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<axum::Json<CheckpointResponse>> {
    let signer = state
        .config
        .audit
        .signer
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no audit signing key is configured".into()))?;
    let signed = sign_checkpoints(state.store.as_ref(), signer, &caller.scope).await?;
    Ok(axum::Json(CheckpointResponse {
        signed,
        public_key: signer.public_key_hex(),
    }))
}
