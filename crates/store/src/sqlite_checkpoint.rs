//! Copies SQLite's write-ahead log into the database file on a thread of its own.
//!
//! SQLite checkpoints on the connection that commits, once the WAL holds `wal_autocheckpoint`
//! pages: the one writer (the ingest bound) then stopped for the whole copy, thousands of page
//! writes and an fsync of the database file, every few seconds under load, and those stops
//! were the tail of single-alert ingestion's latency (docs/benchmarks.md, decision 0012).
//! This thread runs PASSIVE checkpoints while the WAL grows; WAL mode lets a checkpoint copy
//! pages while the writer appends, so the copy and its fsyncs overlap the writer's work.
//!
//! The writer's own automatic checkpoint is kept: under sustained writes it is what lets the
//! WAL start again from its beginning (a checkpoint must have copied every frame when a
//! transaction begins), and it now finds most frames already copied.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Between checkpoints while the WAL grows: at ~70 MB of WAL a second (NDJSON ingestion) a
/// pass copies a few MB, well before the writer's own threshold (32 MB).
const BUSY: Duration = Duration::from_millis(50);
/// Between looks at an idle WAL.
const IDLE: Duration = Duration::from_millis(250);

/// The checkpoint thread of one database file. Dropping it (or [`Checkpointer::stop`]) ends
/// the thread after the pass it may be in.
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection of its own to `path` and starts the thread.
    pub(crate) fn start(path: &Path) -> crate::StoreResult<Self> {
        let conn = open(path)?;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bulwark-ckpt".into())
            .spawn(move || run(&conn, &stopped))
            .map_err(sqlx::Error::Io)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Ends the thread and waits for it (its connection closed, the file no longer held).
    pub(crate) fn stop(mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel wakes the thread, which returns; not joined here (a drop may
        // be on an async runtime's thread).
        self.stop.take();
    }
}

fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // FULL: the WAL is synced before pages are copied out of it and the database file after,
    // as the writer's own checkpoints do. The cache is not used by a checkpoint.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA cache_size = -256;")?;
    Ok(conn)
}

fn run(conn: &rusqlite::Connection, stopped: &mpsc::Receiver<()>) {
    let mut wait = IDLE;
    let mut last = None;
    loop {
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        wait = match checkpoint(conn) {
            Ok(state) => {
                let growing = state.wal_frames > 0 && last != Some(state);
                last = Some(state);
                if growing { BUSY } else { IDLE }
            }
            Err(e) => {
                tracing::warn!(error = %e, "background checkpoint failed");
                IDLE
            }
        };
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct WalState {
    /// Frames in the WAL (0 after it started again from its beginning).
    wal_frames: i64,
    /// Of those, frames copied into the database file.
    copied: i64,
}

/// One PASSIVE checkpoint: copies what no reader still needs, never waits for a lock (a
/// checkpoint already running elsewhere makes it return at once).
fn checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<WalState> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(WalState {
            wal_frames: r.get(1)?,
            copied: r.get(2)?,
        })
    })
}
