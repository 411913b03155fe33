//! The job worker loop. The process model exists now (`bulwark worker`, and an embedded worker
//! in `bulwark serve`); job types arrive with the automation engine. Until then the loop claims
//! nothing: it checks the database periodically and stops on shutdown.

use bulwark_store::Store;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(store: Store, mut stop: watch::Receiver<bool>) {
    tracing::info!("worker running (no job types registered yet)");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => {
                if let Err(e) = store.ping().await {
                    tracing::warn!(error = %e, "worker cannot reach the database");
                }
            }
            _ = stop.changed() => break,
        }
    }
    tracing::info!("worker stopped");
}
