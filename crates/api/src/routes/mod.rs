//! The route table: every route with its method, path template and access rule, in one list.
//! The router is built from it (each handler wrapped in the auth guard), and the tests walk it
//! to prove that every route denies what it should. A route cannot be added without stating
//! who may call it.

pub mod alert_triage;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod incident_templates;
pub mod incidents;
pub mod ingest;
pub mod observables;
pub mod ops;
pub mod tenants;
pub mod webhooks;

use crate::auth::Access;
use crate::state::AppState;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use bulwark_core::Permission as P;

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: MethodRouter<AppState>,
}

fn r(method: Method, path: &'static str, access: Access, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

pub fn routes() -> Vec<Route> {
    use Access::{AnyAnalyst, Perm, Public};
    vec![
        r(Method::GET, "/healthz", Public, get(ops::healthz)),
        r(Method::GET, "/readyz", Public, get(ops::readyz)),
        r(Method::GET, "/metrics", Public, get(ops::metrics)),
        r(
            Method::POST,
            "/api/v1/auth/login",
            Public,
            post(auth::login),
        ),
        r(Method::GET, "/api/v1/auth/me", AnyAnalyst, get(auth::me)),
        r(
            Method::POST,
            "/api/v1/auth/change-password",
            AnyAnalyst,
            post(auth::change_password),
        ),
        r(
            Method::GET,
            "/api/v1/auth/analysts",
            Perm(P::AnalystsManage),
            get(auth::list_analysts),
        ),
        r(
            Method::POST,
            "/api/v1/auth/analysts",
            Perm(P::AnalystsManage),
            post(auth::create_analyst),
        ),
        r(
            Method::PATCH,
            "/api/v1/auth/analysts/{id}",
            Perm(P::AnalystsManage),
            patch(auth::update_analyst),
        ),
        r(
            Method::POST,
            "/api/v1/auth/analysts/{id}/reset-password",
            Perm(P::AnalystsManage),
            post(auth::reset_password),
        ),
        r(
            Method::GET,
            "/api/v1/api-keys",
            Perm(P::ApiKeysManage),
            get(api_keys::list),
        ),
        r(
            Method::POST,
            "/api/v1/api-keys",
            Perm(P::ApiKeysManage),
            post(api_keys::create),
        ),
        r(
            Method::DELETE,
            "/api/v1/api-keys/{id}",
            Perm(P::ApiKeysManage),
            delete(api_keys::revoke),
        ),
        r(
            Method::GET,
            "/api/v1/tenants",
            Perm(P::TenantsManage),
            get(tenants::list),
        ),
        r(
            Method::POST,
            "/api/v1/tenants",
            Perm(P::TenantsManage),
            post(tenants::create),
        ),
        r(
            Method::GET,
            "/api/v1/tenants/{id}",
            Perm(P::TenantsManage),
            get(tenants::get),
        ),
        r(
            Method::GET,
            "/api/v1/audit/events",
            Perm(P::AuditRead),
            get(audit::events),
        ),
        r(
            Method::GET,
            "/api/v1/audit/verify",
            Perm(P::AuditRead),
            get(audit::verify),
        ),
        r(
            Method::POST,
            "/api/v1/audit/checkpoints",
            Perm(P::SettingsManage),
            post(audit::checkpoint),
        ),
        r(
            Method::POST,
            "/api/v1/webhooks/alerts",
            Perm(P::WebhooksIngest),
            post(webhooks::ingest_generic),
        ),
        r(
            Method::POST,
            "/api/v1/webhooks/alerts/{source}",
            Perm(P::WebhooksIngest),
            post(webhooks::ingest_source),
        ),
        r(
            Method::GET,
            "/api/v1/alerts",
            Perm(P::AlertsRead),
            get(alerts::list),
        ),
        r(
            Method::GET,
            "/api/v1/alerts/{id}",
            Perm(P::AlertsRead),
            get(alerts::get),
        ),
        r(
            Method::PATCH,
            "/api/v1/alerts/{id}",
            Perm(P::AlertsUpdate),
            patch(alert_triage::update),
        ),
        r(
            Method::DELETE,
            "/api/v1/alerts/{id}",
            Perm(P::AlertsDelete),
            delete(alert_triage::delete),
        ),
        r(
            Method::POST,
            "/api/v1/alerts/{id}/claim",
            Perm(P::AlertsUpdate),
            post(alert_triage::claim),
        ),
        r(
            Method::POST,
            "/api/v1/alerts/bulk",
            Perm(P::AlertsUpdate),
            post(alert_triage::bulk),
        ),
        r(
            Method::GET,
            "/api/v1/alerts/{id}/comments",
            Perm(P::AlertsRead),
            get(alert_triage::list_comments),
        ),
        r(
            Method::POST,
            "/api/v1/alerts/{id}/comments",
            Perm(P::AlertsUpdate),
            post(alert_triage::add_comment),
        ),
        r(
            Method::PATCH,
            "/api/v1/alerts/{id}/comments/{comment_id}",
            Perm(P::AlertsUpdate),
            patch(alert_triage::edit_comment),
        ),
        r(
            Method::GET,
            "/api/v1/alerts/{id}/activities",
            Perm(P::AlertsRead),
            get(alert_triage::activities),
        ),
        r(
            Method::GET,
            "/api/v1/tenants/{id}/tag-access",
            Perm(P::SettingsManage),
            get(tenants::get_tag_access),
        ),
        r(
            Method::PUT,
            "/api/v1/tenants/{id}/tag-access",
            Perm(P::SettingsManage),
            put(tenants::put_tag_access),
        ),
        r(
            Method::GET,
            "/api/v1/observables",
            Perm(P::ObservablesRead),
            get(observables::list),
        ),
        r(
            Method::POST,
            "/api/v1/observables",
            Perm(P::ObservablesManage),
            post(observables::create),
        ),
        r(
            Method::GET,
            "/api/v1/observables/{id}",
            Perm(P::ObservablesRead),
            get(observables::get),
        ),
        r(
            Method::PATCH,
            "/api/v1/observables/{id}",
            Perm(P::ObservablesManage),
            patch(observables::update),
        ),
        r(
            Method::GET,
            "/api/v1/dashboard/stats",
            Perm(P::AlertsRead),
            get(dashboard::stats),
        ),
        r(
            Method::GET,
            "/api/v1/ingest/stats",
            Perm(P::AlertsRead),
            get(ingest::stats),
        ),
        r(
            Method::GET,
            "/api/v1/ingest/dead-letters",
            Perm(P::IngestManage),
            get(ingest::list_dead_letters),
        ),
        r(
            Method::GET,
            "/api/v1/ingest/dead-letters/{id}",
            Perm(P::IngestManage),
            get(ingest::get_dead_letter),
        ),
        r(
            Method::DELETE,
            "/api/v1/ingest/dead-letters/{id}",
            Perm(P::IngestManage),
            delete(ingest::discard_dead_letter),
        ),
        r(
            Method::POST,
            "/api/v1/ingest/dead-letters/{id}/replay",
            Perm(P::IngestManage),
            post(ingest::replay_dead_letter),
        ),
        r(
            Method::GET,
            "/api/v1/incidents",
            Perm(P::IncidentsRead),
            get(incidents::list),
        ),
        r(
            Method::POST,
            "/api/v1/incidents",
            Perm(P::IncidentsCreate),
            post(incidents::create),
        ),
        r(
            Method::GET,
            "/api/v1/incidents/suggestions",
            Perm(P::IncidentsRead),
            get(incidents::suggestions),
        ),
        r(
            Method::GET,
            "/api/v1/incidents/{id}",
            Perm(P::IncidentsRead),
            get(incidents::get),
        ),
        r(
            Method::PATCH,
            "/api/v1/incidents/{id}",
            Perm(P::IncidentsUpdate),
            patch(incidents::update),
        ),
        r(
            Method::DELETE,
            "/api/v1/incidents/{id}",
            Perm(P::IncidentsDelete),
            delete(incidents::delete),
        ),
        r(
            Method::GET,
            "/api/v1/incidents/{id}/alerts",
            Perm(P::IncidentsRead),
            get(incidents::alerts),
        ),
        r(
            Method::POST,
            "/api/v1/incidents/{id}/alerts",
            Perm(P::IncidentsUpdate),
            post(incidents::link),
        ),
        r(
            Method::DELETE,
            "/api/v1/incidents/{id}/alerts/{alert_id}",
            Perm(P::IncidentsUpdate),
            delete(incidents::unlink),
        ),
        r(
            Method::POST,
            "/api/v1/incidents/{id}/alerts/{alert_id}/move",
            Perm(P::IncidentsUpdate),
            post(incidents::move_alert),
        ),
        r(
            Method::GET,
            "/api/v1/incidents/{id}/timeline",
            Perm(P::IncidentsRead),
            get(incidents::timeline),
        ),
        r(
            Method::GET,
            "/api/v1/incidents/{id}/comments",
            Perm(P::IncidentsRead),
            get(incidents::list_comments),
        ),
        r(
            Method::POST,
            "/api/v1/incidents/{id}/comments",
            Perm(P::IncidentsUpdate),
            post(incidents::add_comment),
        ),
        r(
            Method::PATCH,
            "/api/v1/incidents/{id}/comments/{comment_id}",
            Perm(P::IncidentsUpdate),
            patch(incidents::edit_comment),
        ),
        r(
            Method::GET,
            "/api/v1/incidents/{id}/tasks",
            Perm(P::IncidentsRead),
            get(incidents::list_tasks),
        ),
        r(
            Method::POST,
            "/api/v1/incidents/{id}/tasks",
            Perm(P::IncidentsUpdate),
            post(incidents::add_task),
        ),
        r(
            Method::PATCH,
            "/api/v1/incidents/{id}/tasks/{task_id}",
            Perm(P::IncidentsUpdate),
            patch(incidents::update_task),
        ),
        r(
            Method::DELETE,
            "/api/v1/incidents/{id}/tasks/{task_id}",
            Perm(P::IncidentsUpdate),
            delete(incidents::delete_task),
        ),
        r(
            Method::GET,
            "/api/v1/incident-templates",
            Perm(P::IncidentsRead),
            get(incident_templates::list),
        ),
        r(
            Method::POST,
            "/api/v1/incident-templates",
            Perm(P::SettingsManage),
            post(incident_templates::create),
        ),
        r(
            Method::GET,
            "/api/v1/incident-templates/{id}",
            Perm(P::IncidentsRead),
            get(incident_templates::get),
        ),
        r(
            Method::PATCH,
            "/api/v1/incident-templates/{id}",
            Perm(P::SettingsManage),
            patch(incident_templates::update),
        ),
        r(
            Method::DELETE,
            "/api/v1/incident-templates/{id}",
            Perm(P::SettingsManage),
            delete(incident_templates::delete),
        ),
    ]
}

/// The table without handlers, for tests and docs.
pub fn route_table() -> Vec<(Method, &'static str, Access)> {
    routes()
        .into_iter()
        .map(|r| (r.method, r.path, r.access))
        .collect()
}
