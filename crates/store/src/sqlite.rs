//! Embedded SQLite backend.
//!
//! WAL mode with `synchronous=FULL`: a commit is on disk before it is acknowledged, so an
//! acknowledged alert survives a power loss, not only a crash of the process (group commit
//! keeps the fsync per transaction affordable). Busy timeout 10 s. Writes go through a
//! one-connection pool and start with
//! `BEGIN IMMEDIATE`: SQLite allows one writer at a time anyway, and taking the write lock up
//! front means a transaction never fails half-way on a lock upgrade. Reads use a separate pool
//! and run concurrently with the writer. A thread of the store's own copies the WAL into the
//! database file while the writer works (`sqlite_checkpoint`, decision 0012).

use crate::sqlite_checkpoint::Checkpointer;
use crate::{Backend, Health, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pub(crate) reader: Pool<Sqlite>,
    pub(crate) writer: Pool<Sqlite>,
    /// Wakes this process's workers when jobs became ready (one process owns the file).
    pub(crate) jobs_ready: std::sync::Arc<tokio::sync::Notify>,
    /// Copies the WAL into the database file beside the writer (none for a database in
    /// memory); taken and stopped by `close`.
    checkpointer: std::sync::Mutex<Option<Checkpointer>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // The writer keeps more pages cached (16 MB: index pages of growing tables; 32 MB left
        // RSS 152.8 MB after 1M alerts, over the 150 MB target, for no measurable gain) and checkpoints
        // the WAL itself at 32 MB instead of 4 MB. The checkpoint thread copies most of it
        // before then; the writer's checkpoint copies the rest and lets the WAL start over.
        // No ping before each acquire (sqlx's default): a local SQLite connection does not go
        // stale, and the ping was a round trip to the connection's thread on every
        // transaction and read (the ingest writer's BEGIN step: 1.45 -> 0.99 ms mean, docs/benchmarks.md).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(
                opts.clone()
                    .pragma("cache_size", "-16384")
                    .pragma("wal_autocheckpoint", "8192"),
            )
            .await?;
        MIGRATOR.run(&writer).await?;
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get().max(4));
        let reader = SqlitePoolOptions::new()
            .max_connections(readers as u32)
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await?;
        let file = opts.get_filename();
        let checkpointer = if file.is_file() {
            Some(Checkpointer::start(file)?)
        } else {
            None
        };
        Ok(Self {
            reader,
            writer,
            jobs_ready: Default::default(),
            checkpointer: std::sync::Mutex::new(checkpointer),
        })
    }

    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Jobs written in `tx` become ready at its commit: nothing to announce to other
    /// processes (the caller wakes this one's workers after the commit).
    pub(crate) async fn announce_jobs(_tx: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }

    /// Nothing to listen to: every writer is in this process.
    pub(crate) fn listen_for_jobs(&self) {}

    /// Writers are serialized by `BEGIN IMMEDIATE`; nothing more to lock.
    pub(crate) async fn lock_admin_set(
        _tx: &mut sqlx::SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn close(&self) {
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut c| c.take());
        if let Some(c) = checkpointer {
            let _ = tokio::task::spawn_blocking(move || c.stop()).await;
        }
        self.reader.close().await;
        self.writer.close().await;
    }
}

crate::foundation::impl_foundation!(SqliteStore, sqlx::Sqlite);
crate::audit::impl_audit!(SqliteStore, sqlx::Sqlite, "");
crate::ingest::impl_ingest!(SqliteStore, sqlx::Sqlite);
crate::ingest_ops::impl_ingest_ops!(SqliteStore, sqlx::Sqlite);
crate::alerts::impl_alerts!(SqliteStore, sqlx::Sqlite);
crate::tag_access::impl_tag_access!(SqliteStore, sqlx::Sqlite);
crate::alert_triage::impl_alert_triage!(SqliteStore, sqlx::Sqlite);
crate::observables::impl_observables!(SqliteStore, sqlx::Sqlite, "");
crate::automation::impl_automation!(SqliteStore, sqlx::Sqlite, "", "");
crate::sessions::impl_sessions!(SqliteStore);
crate::integrations::impl_integrations!(SqliteStore, sqlx::Sqlite);
crate::notifications::impl_notifications!(SqliteStore, sqlx::Sqlite);
crate::enrichment::impl_enrichment!(SqliteStore, sqlx::Sqlite, "");
crate::dashboard::impl_dashboard!(SqliteStore, sqlx::Sqlite);
crate::incidents::impl_incidents!(
    SqliteStore,
    sqlx::Sqlite,
    "",
    "",
    "json_each(alerts.normalized, '$.mitre_techniques') m",
    "json_each(incidents.tags) t WHERE t.value"
);

impl SqliteStore {
    /// Each tag of `alerts.tags`, as `FROM <this> = $tag` or `FROM <this> IN (...)`.
    /// Appended to a SELECT that reads rows about to be changed.
    pub(crate) const ROW_LOCK: &'static str = "";
    pub(crate) const ALERT_TAG_VALUES: &'static str = "json_each(alerts.tags) t WHERE t.value";
    /// `alerts.tenant_id` in a condition that must not choose the index (unary plus: SQLite then plans no index on it).
    pub(crate) const ALERT_TENANT_NO_INDEX: &'static str = "+alerts.tenant_id";
    /// Each tag of `observables.tags`, like `ALERT_TAG_VALUES`.
    pub(crate) const OBSERVABLE_TAG_VALUES: &'static str =
        "json_each(observables.tags) t WHERE t.value";
    /// Position of a substring, case-sensitive, 0 when absent: `instr(haystack, needle)`.
    pub(crate) const STRPOS: &'static str = "instr";
    /// RFC 3339 label of the UTC hour / day holding `alerts.first_seen` (stored as RFC 3339
    /// text in UTC, which SQLite's date functions read).
    pub(crate) const HOUR_BUCKET: &'static str =
        "strftime('%Y-%m-%dT%H:00:00Z', alerts.first_seen)";
    pub(crate) const DAY_BUCKET: &'static str = "strftime('%Y-%m-%dT00:00:00Z', alerts.first_seen)";
    /// Seconds from `{a}` to `{b}` (julianday is precise to well under a millisecond here).
    pub(crate) const SECONDS_BETWEEN: &'static str =
        "((julianday({b}) - julianday({a})) * 86400.0)";
}
