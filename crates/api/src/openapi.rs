//! The OpenAPI 3.1 document, generated from the handlers' annotations. A snapshot test
//! (`tests/openapi.rs`) fails when the API changes without the committed document changing.

use crate::error::Problem;
use crate::routes::{
    alert_triage, alerts, api_keys, approvals, audit, auth, dashboard, incident_templates,
    incidents, ingest, integrations, notifications, observables, ops, playbooks, runs, tenants,
    webhooks,
};
use bulwark_core::model::{Analyst, ApiKey, Tenant};
use bulwark_core::{ApiKeyScope, Role};
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{
    ApiKey as ApiKeyScheme, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or bwk_ API key")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKeyScheme::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Bulwark API", description = "Security operations platform: alerts, incidents, automation."),
    paths(
        ops::healthz, ops::readyz, ops::metrics,
        auth::login, auth::me, auth::change_password,
        auth::list_analysts, auth::create_analyst, auth::update_analyst, auth::reset_password,
        api_keys::list, api_keys::create, api_keys::revoke,
        tenants::list, tenants::get, tenants::create,
        audit::events, audit::verify, audit::checkpoint,
        webhooks::ingest_generic, webhooks::ingest_source,
        ingest::stats, ingest::list_dead_letters, ingest::get_dead_letter,
        ingest::discard_dead_letter, ingest::replay_dead_letter,
        alerts::list, alerts::get,
        alert_triage::update, alert_triage::delete, alert_triage::claim, alert_triage::bulk,
        alert_triage::list_comments, alert_triage::add_comment, alert_triage::edit_comment,
        alert_triage::activities,
        tenants::get_tag_access, tenants::put_tag_access, tenants::get_enrichment, tenants::put_enrichment,
        observables::list, observables::get, observables::create, observables::update, observables::enrich,
        dashboard::stats,
        incidents::list, incidents::create, incidents::suggestions, incidents::get,
        incidents::update, incidents::delete, incidents::alerts, incidents::link,
        incidents::unlink, incidents::move_alert, incidents::timeline,
        incidents::list_comments, incidents::add_comment, incidents::edit_comment,
        incidents::list_tasks, incidents::add_task, incidents::update_task, incidents::delete_task,
        incident_templates::list, incident_templates::create, incident_templates::get,
        incident_templates::update, incident_templates::delete,
        playbooks::list, playbooks::create, playbooks::get, playbooks::update, playbooks::delete,
        playbooks::enable, playbooks::disable,
        runs::start, runs::list, runs::get, runs::cancel,
        approvals::list, approvals::get, approvals::approve, approvals::reject,
        integrations::types, integrations::list, integrations::create, integrations::get,
        integrations::update, integrations::delete, integrations::health, integrations::execute,
        notifications::list_rules, notifications::create_rule, notifications::get_rule,
        notifications::update_rule, notifications::delete_rule, notifications::test_rule,
        notifications::list_deliveries, notifications::get_delivery, notifications::retry_delivery,
    ),
    components(schemas(Problem, Analyst, ApiKey, Tenant, Role, ApiKeyScope, bulwark_core::model::RateLimit)),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Login and the caller's own account"),
        (name = "analysts", description = "User administration"),
        (name = "api-keys", description = "Machine credentials"),
        (name = "tenants", description = "MSSP customers"),
        (name = "operations", description = "Health and metrics"),
        (name = "audit", description = "Tamper-evident audit trail"),
        (name = "alerts", description = "The alert queue for triage"),
        (name = "incidents", description = "Incidents: lifecycle, linked alerts, timeline, comments, tasks, templates and suggestions"),
        (name = "ingestion", description = "Alert webhooks, ingestion counters and the dead-letter list"),
        (name = "automation", description = "Playbooks, their runs, and the approvals runs wait for"),
        (name = "integrations", description = "Integration types and instances, health checks, actions run by hand, enrichment and notifications"),
    )
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
