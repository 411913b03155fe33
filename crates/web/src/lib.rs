//! The analyst console: server-rendered HTML pages served by the `bulwark` binary at `/`, next
//! to the HTTP API under `/api/v1`.
//!
//! **The console is an in-process client of the API.** A page does not query the store with
//! rules of its own: it sends requests to the API router (`bulwark_api::internal_router`)
//! inside the process, authenticated as the logged-in analyst. Every read and every change
//! therefore goes through exactly the guard (permissions), the tenant scope and tag rules,
//! the validation, the audit records and the playbook triggers that API clients get; a page
//! cannot be looser than the API because it has no other way in. See
//! `docs/decisions/0006-web-console-in-process-api.md`.
//!
//! What the console adds is the browser side: server-side sessions in an HttpOnly cookie
//! (`session`), CSRF tokens and same-origin checks on every mutation, strict security headers
//! (`security`), templates (minijinja, compiled into the binary, autoescaped), a small script
//! of its own for live refresh, shortcuts, bulk selection and confirmations (`static/app.js`,
//! no third-party code, no inline scripts), and server-side SVG charts (`charts`).

mod api;
mod charts;
mod error;
mod form;
mod pages;
mod render;
mod security;
mod session;

pub use session::{CookieSecure, WebConfig};

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use bulwark_api::State as AppState;
use std::sync::Arc;

/// The console's state: the API state, the in-process API router and the settings.
pub struct Inner {
    pub(crate) api: AppState,
    /// The API routes behind their guards, for in-process requests.
    pub(crate) internal: Router,
    pub(crate) config: WebConfig,
}

/// Shared by every console handler.
#[derive(Clone)]
pub struct Web(pub(crate) Arc<Inner>);

impl std::ops::Deref for Web {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The console's routes, to be served next to the API (`bulwark_api::router_with`).
pub fn router(api: AppState, config: WebConfig) -> Router<AppState> {
    // Fail at start-up, not on the first page, if a template does not compile.
    render::env();
    let web = Web(Arc::new(Inner {
        internal: bulwark_api::internal_router(api.clone()),
        api,
        config,
    }));
    use pages::{admin, alerts, automation, dashboard, incidents, notifications, observables};
    let protected = Router::new()
        .route("/", get(pages::home))
        .route("/logout", post(session::logout))
        .route("/account", get(admin::account).post(admin::change_password))
        .route("/alerts", get(alerts::queue))
        .route("/alerts/poll", get(alerts::poll))
        .route("/alerts/bulk", post(alerts::bulk))
        .route("/alerts/{id}", get(alerts::detail))
        .route("/alerts/{id}/claim", post(alerts::claim))
        .route("/alerts/{id}/update", post(alerts::update))
        .route("/alerts/{id}/comments", post(alerts::comment))
        .route("/alerts/{id}/incident", post(alerts::incident))
        .route("/alerts/{id}/run", post(alerts::run_playbook))
        .route("/incidents", get(incidents::list).post(incidents::create))
        .route("/incidents/suggestions", get(incidents::suggestions))
        .route(
            "/incidents/templates",
            get(incidents::templates).post(incidents::create_template),
        )
        .route(
            "/incidents/templates/{id}/delete",
            post(incidents::delete_template),
        )
        .route("/incidents/{id}", get(incidents::detail))
        .route("/incidents/{id}/update", post(incidents::update))
        .route("/incidents/{id}/comments", post(incidents::comment))
        .route("/incidents/{id}/tasks", post(incidents::add_task))
        .route("/incidents/{id}/run", post(incidents::run_playbook))
        .route(
            "/incidents/{id}/tasks/{task_id}",
            post(incidents::update_task),
        )
        .route(
            "/incidents/{id}/alerts/{alert_id}/unlink",
            post(incidents::unlink),
        )
        .route(
            "/playbooks",
            get(automation::playbooks).post(automation::create_playbook),
        )
        .route("/playbooks/new", get(automation::new_playbook))
        .route(
            "/playbooks/{id}",
            get(automation::playbook).post(automation::edit_playbook),
        )
        .route("/playbooks/{id}/enabled", post(automation::set_enabled))
        .route("/playbooks/{id}/run", post(automation::run))
        .route("/runs", get(automation::runs))
        .route("/runs/{id}", get(automation::run_detail))
        .route("/runs/{id}/cancel", post(automation::cancel_run))
        .route("/approvals", get(automation::approvals))
        .route("/approvals/{id}/decide", post(automation::decide))
        .route("/observables", get(observables::list))
        .route(
            "/observables/{id}",
            get(observables::detail).post(observables::update),
        )
        .route("/dashboard", get(dashboard::page))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}", post(admin::update_user))
        .route("/admin/users/{id}/reset", post(admin::reset_password))
        .route(
            "/admin/api-keys",
            get(admin::api_keys).post(admin::create_api_key),
        )
        .route("/admin/api-keys/{id}/revoke", post(admin::revoke_api_key))
        .route(
            "/admin/tenants",
            get(admin::tenants).post(admin::create_tenant),
        )
        .route(
            "/admin/tenants/{id}/tag-access",
            get(admin::tag_access).post(admin::save_tag_access),
        )
        .route("/admin/notifications", get(notifications::page))
        .route(
            "/admin/notifications/rules/{id}/enabled",
            post(notifications::set_enabled),
        )
        .route(
            "/admin/notifications/rules/{id}/test",
            post(notifications::test),
        )
        .route(
            "/admin/notifications/deliveries/{id}/retry",
            post(notifications::retry),
        )
        .route_layer(from_fn_with_state(web.clone(), session::require));
    Router::new()
        .route("/login", get(session::login_page).post(session::login))
        .route("/static/{file}", get(render::static_file))
        .merge(protected)
        .layer(from_fn(security::headers))
        .with_state(web)
}
