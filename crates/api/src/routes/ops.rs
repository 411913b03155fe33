//! Liveness, readiness and metrics.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = HealthStatus)))]
pub async fn healthz() -> axum::Json<HealthStatus> {
    axum::Json(HealthStatus { status: "ok" })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = HealthStatus), (status = 503, body = crate::error::Problem)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<axum::Json<HealthStatus>> {
    match state.store.ping().await {
        Ok(()) => Ok(axum::Json(HealthStatus { status: "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::Unavailable(
                "the database is not reachable".into(),
            ))
        }
    }
}

/// Prometheus metrics (labelled by route template, never by raw path).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    // Failed notification deliveries (all tenants): silent failures are what this is for.
    match state.store.failed_delivery_count().await {
        Ok(n) => {
            if !body.is_empty() && !body.ends_with('\n') {
                body.push('\n');
            }
            body.push_str(&format!(
                "# HELP bulwark_notification_deliveries_failed Notification deliveries that failed after their last attempt.\n\
                 # TYPE bulwark_notification_deliveries_failed gauge\n\
                 bulwark_notification_deliveries_failed {n}\n"
            ));
        }
        Err(e) => tracing::warn!(error = %e, "cannot count failed notification deliveries"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
