//! Ingestion visibility: per-source counters (`GET /api/v1/ingest/stats`) and the dead-letter
//! list of rejected payloads, which admins can read, replay (after fixing the mapping or the
//! sender) and discard.

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{PathId, Query};
use crate::ingest_stats::Outcome;
use crate::routes::webhooks::{AlertAccepted, split_document};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_core::TenantId;
use bulwark_normalize::Source;
use bulwark_store::ChangeCtx;
use bulwark_store::ingest::IncomingAlert;
use bulwark_store::ingest_ops::{DeadLetter, DeadLetterFilter};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Days to cover, today included (1 to 90, default 1: today, UTC).
    pub days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SourceStats {
    pub tenant_id: TenantId,
    pub source: String,
    pub accepted: i64,
    pub duplicates: i64,
    pub rejected: i64,
    /// Rejections by reason (`invalid_json`, `unmappable`, `bad_signature`, ...).
    pub rejected_by_reason: BTreeMap<String, i64>,
    /// When this source last delivered anything (accepted or not).
    pub last_received_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct IngestStatsResponse {
    /// First day counted (UTC).
    pub since: chrono::NaiveDate,
    pub sources: Vec<SourceStats>,
}

/// Accepted, duplicate and rejected alerts per tenant and source.
#[utoipa::path(get, path = "/api/v1/ingest/stats", tag = "ingestion", security(("bearer" = [])),
    params(StatsQuery),
    responses((status = 200, body = IngestStatsResponse), (status = 422, body = Problem)))]
pub async fn stats(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<StatsQuery>,
) -> ApiResult<axum::Json<IngestStatsResponse>> {
    let days = q.days.unwrap_or(1);
    if !(1..=90).contains(&days) {
        return Err(ApiError::field("days", "must be 1 to 90"));
    }
    // Counts still in this node's memory go to the database first, so a client that just
    // posted sees its alerts counted.
    state.ingest_stats.flush(&state.store).await;
    let since = bulwark_core::time::now().date_naive() - chrono::Days::new(u64::from(days - 1));
    let rows = state.store.ingest_stats(&caller.scope, since).await?;
    let mut sources: Vec<SourceStats> = Vec::new();
    for r in rows {
        // Rows come ordered by tenant and source: one entry per run of rows.
        if sources
            .last()
            .is_none_or(|s| s.tenant_id != r.tenant_id || s.source != r.source)
        {
            sources.push(SourceStats {
                tenant_id: r.tenant_id,
                source: r.source.clone(),
                accepted: 0,
                duplicates: 0,
                rejected: 0,
                rejected_by_reason: BTreeMap::new(),
                last_received_at: r.last_at,
            });
        }
        let Some(entry) = sources.last_mut() else {
            continue;
        };
        entry.last_received_at = entry.last_received_at.max(r.last_at);
        match r.outcome.as_str() {
            "accepted" => entry.accepted += r.count,
            "duplicate" => entry.duplicates += r.count,
            _ => {
                entry.rejected += r.count;
                *entry.rejected_by_reason.entry(r.reason).or_default() += r.count;
            }
        }
    }
    Ok(axum::Json(IngestStatsResponse { since, sources }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    pub tenant_id: Option<TenantId>,
    pub source: Option<String>,
    /// e.g. `invalid_json`, `unmappable`, `not_an_object`, `too_deep`.
    pub reason: Option<String>,
    /// `false`: not replayed yet; `true`: replayed.
    pub replayed: Option<bool>,
    /// 1 to 500 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<uuid::Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetter>,
    pub next_cursor: Option<uuid::Uuid>,
}

/// Rejected payloads, newest first (without the payloads; read one to see it).
#[utoipa::path(get, path = "/api/v1/ingest/dead-letters", tag = "ingestion", security(("bearer" = [])),
    params(DeadLetterQuery),
    responses((status = 200, body = DeadLetterPage), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<DeadLetterQuery>,
) -> ApiResult<axum::Json<DeadLetterPage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 500"));
    }
    let filter = DeadLetterFilter {
        tenant_id: q.tenant_id,
        source: q.source,
        reason: q.reason,
        replayed: q.replayed,
        before: q.cursor,
        limit,
    };
    let items = state
        .store
        .list_dead_letters(&caller.scope, &filter)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|d| d.id))
        .flatten();
    Ok(axum::Json(DeadLetterPage { items, next_cursor }))
}

/// One rejected payload, with the payload.
#[utoipa::path(get, path = "/api/v1/ingest/dead-letters/{id}", tag = "ingestion", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Dead letter id")),
    responses((status = 200, body = DeadLetter), (status = 404, body = Problem)))]
pub async fn get_dead_letter(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<DeadLetter>> {
    Ok(axum::Json(
        state.store.get_dead_letter(&caller.scope, id).await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ReplayResult {
    pub dead_letter: DeadLetter,
    /// One per alert in the payload (usually one).
    pub alerts: Vec<AlertAccepted>,
}

/// Ingest a rejected payload again, for its tenant and source, as the calling admin. Fails
/// (422, with the reason) if it is still rejected; a payload can be replayed once.
#[utoipa::path(post, path = "/api/v1/ingest/dead-letters/{id}/replay", tag = "ingestion", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Dead letter id")),
    responses((status = 200, body = ReplayResult), (status = 404, body = Problem),
              (status = 409, description = "Already replayed", body = Problem),
              (status = 422, description = "Still rejected, or cut short when stored", body = Problem)))]
pub async fn replay_dead_letter(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<axum::Json<ReplayResult>> {
    let letter = state.store.get_dead_letter(&caller.scope, id).await?;
    if let Some(alert) = letter.alert_id {
        return Err(ApiError::Conflict(format!(
            "already replayed (alert {alert})"
        )));
    }
    if letter.truncated {
        return Err(ApiError::field(
            "payload",
            "the payload was cut short when stored and cannot be replayed",
        ));
    }
    let source: Source = letter.source.parse().map_err(|_| {
        ApiError::internal(anyhow::anyhow!("stored dead letter has unknown source"))
    })?;
    let payload = letter.payload.clone().unwrap_or_default();
    let (_, items) = split_document(source, payload.as_bytes())
        .map_err(|(_, e)| ApiError::field("payload", e))?;
    let actor = ChangeCtx::from_caller(&caller, rid);
    let received_at = bulwark_core::time::now();
    let triggers = state.triggers.current(&state.store).await?;
    let mut alerts = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let alert = item.result.map_err(|(_, e)| {
            let field = if i == 0 {
                "payload".to_string()
            } else {
                format!("payload[{i}]")
            };
            ApiError::field(field, e)
        })?;
        alerts.push(IncomingAlert {
            tenant_id: letter.tenant_id,
            triggers: triggers.for_new_alert(letter.tenant_id, &alert, received_at),
            alert,
            raw: item.raw,
            received_at,
            actor: actor.clone(),
        });
    }
    let outcomes = state
        .ingest
        .write(alerts, None)
        .await
        .map_err(crate::routes::webhooks::write_error)?;
    let first = outcomes
        .first()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no outcome")))?
        .alert_id;
    let src = source.as_str();
    for o in &outcomes {
        let counted = if o.duplicate {
            Outcome::Duplicate
        } else {
            Outcome::Accepted
        };
        state.ingest_stats.record(letter.tenant_id, src, counted, 1);
    }
    let dead_letter = state
        .store
        .mark_dead_letter_replayed(&actor, &caller.scope, id, first)
        .await?;
    Ok(axum::Json(ReplayResult {
        dead_letter,
        alerts: outcomes.into_iter().map(AlertAccepted::from).collect(),
    }))
}

/// Delete a rejected payload.
#[utoipa::path(delete, path = "/api/v1/ingest/dead-letters/{id}", tag = "ingestion", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Dead letter id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem)))]
pub async fn discard_dead_letter(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state
        .store
        .discard_dead_letter(&ChangeCtx::from_caller(&caller, rid), &caller.scope, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
