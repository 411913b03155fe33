//! Group commit for ingestion: concurrent webhook requests hand their alerts to one writer
//! task, which stores whatever has gathered in one transaction and answers each request only
//! after that transaction committed. One transaction per alert cannot reach the ingest targets
//! on either backend (see DESIGN.md's measurements); one per gathered batch can.
//!
//! If a gathered batch fails, each request's alerts are retried on their own, so one bad
//! request cannot fail its neighbours.

use bulwark_core::ApiKeyId;
use bulwark_store::ingest::{IncomingAlert, IngestOutcome};
use bulwark_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Alerts gathered into one transaction at most.
const MAX_BATCH: usize = 4096;
/// Requests waiting for the writer at most (then senders wait: backpressure).
const QUEUE: usize = 4096;

struct Job {
    alerts: Vec<IncomingAlert>,
    /// The API key that delivered them: checked for revocation and expiry with the batch.
    key: Option<ApiKeyId>,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>, WriteError>>,
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
    #[error("the API key was revoked or expired")]
    KeyNotUsable,
}

impl IngestWriter {
    /// Starts the writer on a thread of its own with a single-threaded runtime. A transaction
    /// on PostgreSQL is a dozen statements, each a round trip; on the shared runtime every
    /// round trip waited for a worker thread busy with HTTP requests, which made the one
    /// writer (the ingest bound) spend most of its time waiting to be scheduled. On SQLite the
    /// store writes the whole transaction on this thread (`sqlite_ingest`). The thread ends
    /// when the last sender is dropped.
    pub fn start(store: Store, dedup_window: chrono::Duration) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(rt) => {
                let spawned = std::thread::Builder::new()
                    .name("bulwark-ingest".into())
                    .spawn(move || rt.block_on(run(store, rx, dedup_window)));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start the ingest writer thread");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no runtime for the ingest writer thread; it shares the server's");
                tokio::spawn(run(store, rx, dedup_window));
            }
        }
        Self { tx }
    }

    /// Stores `alerts` (in one transaction with whatever else is waiting) and returns their
    /// outcomes, in order, once committed.
    /// `key`: the API key that delivered them; if it was revoked or expired meanwhile,
    /// nothing is stored and the answer is [`WriteError::KeyNotUsable`].
    pub async fn write(
        &self,
        alerts: Vec<IncomingAlert>,
        key: Option<ApiKeyId>,
    ) -> Result<Vec<IngestOutcome>, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { alerts, key, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)?
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
        // One vector for the transaction; each request's alerts are a span of it, with its
        // key beside each alert (checked by the store in the transaction).
        let mut all: Vec<IncomingAlert> = Vec::with_capacity(count);
        let mut keys: Vec<Option<ApiKeyId>> = Vec::with_capacity(count);
        let mut spans = Vec::with_capacity(jobs.len());
        for job in jobs {
            spans.push((job.alerts.len(), job.key, job.reply));
            keys.extend(std::iter::repeat_n(job.key, job.alerts.len()));
            all.extend(job.alerts);
        }
        match store.ingest_delivered(&all, &keys, window).await {
            Ok(outcomes) => {
                let mut rest = outcomes.into_iter();
                for (len, _, reply) in spans {
                    let mine: Vec<_> = rest.by_ref().take(len).collect();
                    let _ = reply.send(answer(mine));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, requests = spans.len(), "group commit failed; retrying each request alone");
                let mut start = 0;
                for (len, key, reply) in spans {
                    let mine = &all[start..start + len];
                    start += len;
                    let result = store
                        .ingest_delivered(mine, &vec![key; len], window)
                        .await
                        .map_err(WriteError::from)
                        .and_then(answer);
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// One request's answer: its alerts' outcomes, or [`WriteError::KeyNotUsable`] when its key
/// was found revoked or expired (then none of them was stored: they share the key).
fn answer(outcomes: Vec<Option<IngestOutcome>>) -> Result<Vec<IngestOutcome>, WriteError> {
    outcomes
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or(WriteError::KeyNotUsable)
}
