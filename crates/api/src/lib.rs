//! Bulwark's HTTP API: axum routers, authentication and permissions, problem+json errors, the
//! OpenAPI document. Handlers stay thin: they parse, call the store, and shape the answer.

pub mod auth;
pub mod error;
pub mod extract;
pub mod http_metrics;
pub mod ingest_stats;
pub mod ingest_writer;
pub mod key_cache;
pub mod openapi;
pub mod password_pool;
pub mod rate_limit;
pub mod routes;
pub mod state;
pub mod throttle;
pub mod triggers;

use crate::auth::{Access, guard};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use state::{ApiConfig, AppState as State};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API routes behind their guards, without the outer layers (tracing, metrics, request
/// ids): for in-process callers such as the web console, which sends its requests through
/// the very same authentication, permission checks, validation and handlers as any client,
/// and whose own request is already traced and counted.
pub fn internal_router(state: AppState) -> Router {
    guarded_routes(&state)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async {
            ApiError::bad_request(None, "method not allowed for this path").into_response()
        })
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .with_state(state)
}

/// Every route of the table, each wrapped in the guard built from its access rule.
fn guarded_routes(state: &AppState) -> Router<AppState> {
    let mut app: Router<AppState> = Router::new();
    for route in routes::routes() {
        let handler = if route.access == Access::Public {
            route.handler
        } else {
            route
                .handler
                .route_layer(from_fn_with_state((state.clone(), route.access), guard))
        };
        app = app.route(route.path, handler);
    }
    app
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The application router with `extra` routes (the web console) served next to the API,
/// behind the same request-id, tracing, metrics, panic and body-limit layers. `extra` brings
/// its own authentication; its paths must not overlap the API's.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let app = extra.merge(guarded_routes(&state));
    let body_limit = state.config.body_limit;
    let docs: Router<AppState> = utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .url("/api/v1/openapi.json", openapi::document())
        .into();
    app.merge(docs)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async {
            ApiError::bad_request(None, "method not allowed for this path").into_response()
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(from_fn(http_metrics::track))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros))
                .on_failure(())
                .make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
