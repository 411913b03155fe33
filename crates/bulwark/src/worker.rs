//! The job worker: `bulwark worker`, and the worker embedded in `bulwark serve`. It executes
//! playbook runs, runs the scheduler duties and loads the playbooks directory (see
//! `bulwark_engine`).

use crate::config::Config;
use bulwark_core::TenantId;
use bulwark_engine::EngineConfig;
use bulwark_store::Store;
use std::time::Duration;
use tokio::sync::watch;

/// The engine settings of the configuration. `platform_tenant`: known to `serve` (it
/// bootstraps the accounts); a standalone worker falls back to each run's tenant.
pub fn engine_config(
    config: &Config,
    platform_tenant: Option<TenantId>,
    integrations: &bulwark_integrations::Integrations,
) -> EngineConfig {
    EngineConfig {
        catalog: std::sync::Arc::new(integrations.catalog().clone()),
        concurrency: config.worker_concurrency,
        lease: Duration::from_secs(config.worker_lease_secs),
        poll_interval: Duration::from_millis(config.worker_poll_interval_ms),
        http_allow: config.http_allow.clone(),
        playbooks_dir: config.playbooks_dir.clone(),
        platform_tenant,
        ..EngineConfig::default()
    }
}

/// The playbook worker with the integrations' actions, and the integration jobs (enrichment,
/// notifications) beside it.
pub async fn run(
    store: Store,
    config: EngineConfig,
    integrations: std::sync::Arc<bulwark_integrations::Integrations>,
    stop: watch::Receiver<bool>,
) {
    let actions = bulwark_integrations::action::engine_actions(&integrations);
    let jobs = tokio::spawn(bulwark_integrations::run_jobs(
        store.clone(),
        integrations,
        config.node_id.clone(),
        stop.clone(),
    ));
    bulwark_engine::run_worker_with(store, config, actions, stop).await;
    let _ = jobs.await;
}
