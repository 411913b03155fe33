//! The job worker: `bulwark worker`, and the worker embedded in `bulwark serve`. It executes
//! playbook runs (see `bulwark_engine`).

use bulwark_store::Store;
use tokio::sync::watch;

pub async fn run(store: Store, stop: watch::Receiver<bool>) {
    let config = bulwark_engine::EngineConfig::default();
    bulwark_engine::run_worker(store, config, stop).await;
}
