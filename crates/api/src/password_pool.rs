//! Password hashing off the async runtime, on a fixed set of threads.
//!
//! argon2id is deliberately expensive in CPU and memory (19 MiB per hash). Running it through
//! `spawn_blocking` spreads it over many threads, and the allocator then keeps each thread's
//! 19 MiB after a burst of logins (measured: over 1 GB resident after a login benchmark). Here a
//! few threads, one per core, each own a reusable work area, so memory stays flat, and at most
//! one hash per core runs at once, so a login flood cannot starve the rest of the API of CPU.
//! Waiting jobs are bounded: past `MAX_QUEUED` the caller gets `Busy` (answered as 503).

use bulwark_core::credentials::{
    HashError, HashMemory, dummy_password_hash_in, hash_password_in, verify_password_in,
};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

const MAX_QUEUED: usize = 256;

enum Job {
    Hash(String, oneshot::Sender<Result<String, HashError>>),
    /// `None` as the hash: verify against a dummy hash (same cost, always false).
    Verify(String, Option<String>, oneshot::Sender<bool>),
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("too many password operations are waiting")]
    Busy,
    #[error("the password pool stopped")]
    Stopped,
}

pub struct PasswordPool {
    tx: Mutex<mpsc::Sender<(Job, OwnedSemaphorePermit)>>,
    admission: Arc<Semaphore>,
}

impl PasswordPool {
    pub fn new(threads: usize) -> Self {
        let (tx, rx) = mpsc::channel::<(Job, OwnedSemaphorePermit)>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("bulwark-argon2-{i}"))
                .spawn(move || {
                    let mut mem = HashMemory::new();
                    loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((job, _permit)) = next else { return };
                        match job {
                            Job::Hash(p, reply) => {
                                let _ = reply.send(hash_password_in(&mut mem, &p));
                            }
                            Job::Verify(p, phc, reply) => {
                                let ok = match phc {
                                    Some(h) => verify_password_in(&mut mem, &p, &h),
                                    None => {
                                        let dummy = dummy_password_hash_in(&mut mem);
                                        let _ = verify_password_in(&mut mem, &p, dummy);
                                        false
                                    }
                                };
                                let _ = reply.send(ok);
                            }
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self {
            tx: Mutex::new(tx),
            admission: Arc::new(Semaphore::new(MAX_QUEUED)),
        }
    }

    /// One thread per available core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    fn submit(&self, job: Job) -> Result<(), PoolError> {
        let permit = Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| PoolError::Busy)?;
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((job, permit))
            .map_err(|_| PoolError::Stopped)
    }

    pub async fn hash(&self, password: String) -> Result<String, PoolError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Hash(password, tx))?;
        rx.await
            .map_err(|_| PoolError::Stopped)?
            .map_err(|_| PoolError::Stopped)
    }

    /// Verifies `password` against `phc`; with `None`, spends the same time and returns false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, PoolError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Verify(password, phc, tx))?;
        rx.await.map_err(|_| PoolError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies() {
        let pool = PasswordPool::new(2);
        let h = pool
            .hash("a long enough password".into())
            .await
            .expect("hash");
        assert!(
            pool.verify("a long enough password".into(), Some(h.clone()))
                .await
                .expect("v")
        );
        assert!(!pool.verify("wrong".into(), Some(h)).await.expect("v"));
        assert!(!pool.verify("anything".into(), None).await.expect("v"));
    }
}
