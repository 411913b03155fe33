//! Group commit of the alert writes that playbook actions make (`alert.update`,
//! `alert.comment`). Each was its own audited transaction; on SQLite every commit waits for the
//! one writer and an fsync, so a triage playbook with two writing actions was capped near half
//! the disk's commit rate (~250 runs/s here) whatever the worker's concurrency. Writes that
//! arrive while a batch commits go together in the next transaction
//! ([`bulwark_store::AlertTriageStore::alert_writes`], each in a savepoint), and every action
//! still returns only after its write committed.

use bulwark_core::AlertAccess;
use bulwark_store::alert_triage::{AlertWrite, AlertWritten, ChangeRequest, Comment};
use bulwark_store::{ChangeCtx, Store, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Writes gathered into one transaction at most.
const BATCH: usize = 128;

type Pending = (AlertWrite, oneshot::Sender<StoreResult<AlertWritten>>);

/// A worker's alert writer: cheap to clone, one background task per writer.
#[derive(Clone)]
pub struct AlertWriter {
    tx: mpsc::Sender<Pending>,
}

impl AlertWriter {
    /// Starts the writer's task (on the current tokio runtime); it ends with the last clone.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(BATCH * 4);
        tokio::spawn(write_loop(store, rx));
        Self { tx }
    }

    async fn write(&self, w: AlertWrite) -> StoreResult<AlertWritten> {
        let (reply, rx) = oneshot::channel();
        let stopped = || StoreError::State("the alert writer stopped".into());
        self.tx.send((w, reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// [`bulwark_store::AlertTriageStore::update_alert`], committed with other runs' writes.
    pub async fn change(
        &self,
        ctx: ChangeCtx,
        access: AlertAccess,
        id: Uuid,
        req: ChangeRequest,
    ) -> StoreResult<bool> {
        match self
            .write(AlertWrite::Change {
                ctx,
                access,
                id,
                req,
            })
            .await?
        {
            AlertWritten::Changed(c) => Ok(c),
            AlertWritten::Commented(_) => Err(StoreError::State("unexpected write result".into())),
        }
    }

    /// [`bulwark_store::AlertTriageStore::add_alert_comment`] (no mentions), committed with
    /// other runs' writes.
    pub async fn comment(
        &self,
        ctx: ChangeCtx,
        access: AlertAccess,
        id: Uuid,
        body: String,
    ) -> StoreResult<Comment> {
        match self
            .write(AlertWrite::Comment {
                ctx,
                access,
                id,
                body,
            })
            .await?
        {
            AlertWritten::Commented(c) => Ok(c),
            AlertWritten::Changed(_) => Err(StoreError::State("unexpected write result".into())),
        }
    }
}

/// Whatever has gathered goes in one transaction; if that transaction fails as a whole, each
/// write is tried alone, so one cannot fail the others.
async fn write_loop(store: Store, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let batch = crate::gathered(first, &mut rx, BATCH);
        let (writes, replies): (Vec<AlertWrite>, Vec<_>) = batch.into_iter().unzip();
        match store.alert_writes(&writes).await {
            Ok(results) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = writes.len(), "batched alert writes failed; writing one by one");
                for (w, reply) in writes.into_iter().zip(replies) {
                    let result = match store.alert_writes(std::slice::from_ref(&w)).await {
                        Ok(mut r) => r
                            .pop()
                            .unwrap_or_else(|| Err(StoreError::State("no write result".into()))),
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(result);
                }
            }
        }
    }
}
