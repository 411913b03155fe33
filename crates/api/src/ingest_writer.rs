//! Group commit for ingestion: concurrent webhook requests hand their alerts to one writer
//! task, which stores whatever has gathered in one transaction and answers each request only
//! after that transaction committed. One transaction per alert cannot reach the ingest targets
//! on either backend (see DESIGN.md's measurements); one per gathered batch can.
//!
//! If a gathered batch fails, each request's alerts are retried on their own, so one bad
//! request cannot fail its neighbours.

use bulwark_store::ingest::{IncomingAlert, IngestOutcome};
use bulwark_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Alerts gathered into one transaction at most.
const MAX_BATCH: usize = 4096;
/// Requests waiting for the writer at most (then senders wait: backpressure).
const QUEUE: usize = 4096;

struct Job {
    alerts: Vec<IncomingAlert>,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>, StoreError>>,
}

#[derive(Clone)]
pub struct IngestWriter {
    tx: mpsc::Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ingest writer stopped")]
    Stopped,
}

impl IngestWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store, dedup_window: chrono::Duration) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx, dedup_window));
        Self { tx }
    }

    /// Stores `alerts` (in one transaction with whatever else is waiting) and returns their
    /// outcomes, in order, once committed.
    pub async fn write(
        &self,
        alerts: Vec<IncomingAlert>,
    ) -> Result<Vec<IngestOutcome>, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { alerts, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        Ok(rx.await.map_err(|_| WriteError::Stopped)??)
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, window: chrono::Duration) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut count = jobs[0].alerts.len();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.alerts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        // One vector for the transaction; each request's alerts are a span of it.
        let mut all: Vec<IncomingAlert> = Vec::with_capacity(count);
        let mut spans = Vec::with_capacity(jobs.len());
        for job in jobs {
            spans.push((job.alerts.len(), job.reply));
            all.extend(job.alerts);
        }
        match store.ingest(&all, window).await {
            Ok(outcomes) => {
                let mut rest = outcomes.into_iter();
                for (len, reply) in spans {
                    let mine: Vec<_> = rest.by_ref().take(len).collect();
                    let _ = reply.send(Ok(mine));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, requests = spans.len(), "group commit failed; retrying each request alone");
                let mut start = 0;
                for (len, reply) in spans {
                    let result = store.ingest(&all[start..start + len], window).await;
                    start += len;
                    let _ = reply.send(result);
                }
            }
        }
    }
}
