//! PostgreSQL backend, for many API nodes and workers on one database.

use crate::{Backend, Health, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;

pub struct PgStore {
    pub(crate) reader: Pool<Postgres>,
    pub(crate) writer: Pool<Postgres>,
    /// Wakes this process's workers when jobs became ready, here or on another node
    /// (`LISTEN bulwark_jobs`, started by the first worker that waits).
    pub(crate) jobs_ready: std::sync::Arc<tokio::sync::Notify>,
    listener: std::sync::OnceLock<()>,
}

/// The channel transactions that make jobs ready notify (delivered at their commit).
const JOBS_CHANNEL: &str = "bulwark_jobs";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Advisory-lock key serializing changes to the set of active admins across all nodes.
const ADMIN_SET_LOCK: i64 = 0x6277_6b5f_6164_6d6e; // "bwk_admn"

impl PgStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // Custom plans for every execution of a prepared statement. sqlx prepares each query
        // once per connection; after five executions PostgreSQL may switch to a generic plan,
        // costed for an average parameter value, and keep it when its estimate looks no worse.
        // Where the value matters that plan can be far off: the incidents of an observable seen
        // on 36,793 alerts were collected by reading every sighting (172 expected) instead of
        // walking the tenant's newest incidents, 0.2-0.6 s instead of a few ms, on whichever
        // connection had switched (docs/benchmarks.md, "PostgreSQL console tails at 1M").
        // Planning every time costs well under a millisecond for these reads; write
        // transactions go back to `auto` (`begin_write`).
        let opts = PgConnectOptions::from_str(url)?
            .application_name("bulwark")
            .options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            reader: pool.clone(),
            writer: pool,
            jobs_ready: Default::default(),
            listener: std::sync::OnceLock::new(),
        })
    }

    /// Write transactions go back to PostgreSQL's default plan caching (`auto`): their
    /// statements are keyed writes, and the ingest's multi-row inserts (up to 10,000
    /// parameters) re-planned on every execution under `force_custom_plan` (see `connect`)
    /// cost PostgreSQL ingestion 30-40% (`bulwark-bench store-ingest`, docs/benchmarks.md).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("SET LOCAL plan_cache_mode = auto")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Tells every node's workers, at `tx`'s commit, that jobs became ready.
    pub(crate) async fn announce_jobs(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Starts (once) the task that turns `bulwark_jobs` notifications into wake-ups of this
    /// process's workers. It holds one pooled connection, reconnects after errors and stops
    /// when the pool is closed. Workers also poll, so a notification lost during a reconnect
    /// only delays a job by one poll interval.
    pub(crate) fn listen_for_jobs(&self) {
        if self.listener.set(()).is_err() {
            return;
        }
        let pool = self.writer.clone();
        let ready = self.jobs_ready.clone();
        tokio::spawn(async move {
            loop {
                if pool.is_closed() {
                    return;
                }
                let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for jobs; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(e) = listener.listen(JOBS_CHANNEL).await {
                    tracing::warn!(error = %e, "cannot listen for jobs; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                loop {
                    match listener.recv().await {
                        Ok(_) => ready.notify_one(),
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "job notifications interrupted; reconnecting");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            break;
                        }
                    }
                }
            }
        });
    }

    /// Two admins demoting each other at once must not leave zero admins: serialize the
    /// check-and-update with a transaction-scoped advisory lock.
    pub(crate) async fn lock_admin_set(
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ADMIN_SET_LOCK)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Health for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn close(&self) {
        self.writer.close().await;
    }
}

crate::foundation::impl_foundation!(PgStore, sqlx::Postgres);
crate::audit::impl_audit!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::ingest::impl_ingest!(PgStore, sqlx::Postgres);
crate::ingest::impl_ingest_sqlx_writes!(PgStore, sqlx::Postgres);
crate::ingest_ops::impl_ingest_ops!(PgStore, sqlx::Postgres);
crate::alerts::impl_alerts!(PgStore, sqlx::Postgres);
crate::tag_access::impl_tag_access!(PgStore, sqlx::Postgres);
crate::alert_triage::impl_alert_triage!(PgStore, sqlx::Postgres);
crate::observables::impl_observables!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::automation::impl_automation!(
    PgStore,
    sqlx::Postgres,
    " FOR UPDATE",
    " FOR UPDATE SKIP LOCKED"
);
crate::sessions::impl_sessions!(PgStore);
crate::integrations::impl_integrations!(PgStore, sqlx::Postgres);
crate::notifications::impl_notifications!(PgStore, sqlx::Postgres);
crate::enrichment::impl_enrichment!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::dashboard::impl_dashboard!(PgStore, sqlx::Postgres);
crate::incidents::impl_incidents!(
    PgStore,
    sqlx::Postgres,
    " FOR UPDATE",
    "SELECT pg_advisory_xact_lock($1)",
    "jsonb_array_elements_text(alerts.normalized -> 'mitre_techniques') AS m(value)",
    "jsonb_array_elements_text(incidents.tags) t WHERE t"
);

impl PgStore {
    /// Each tag of `alerts.tags`, as `FROM <this> = $tag` or `FROM <this> IN (...)`.
    /// Appended to a SELECT that reads rows about to be changed.
    pub(crate) const ROW_LOCK: &'static str = " FOR UPDATE";
    pub(crate) const ALERT_TAG_VALUES: &'static str =
        "jsonb_array_elements_text(alerts.tags) t WHERE t";
    /// `alerts.tenant_id` in a condition that must not choose the index (PostgreSQL plans from its statistics).
    pub(crate) const ALERT_TENANT_NO_INDEX: &'static str = "alerts.tenant_id";
    /// Each tag of `observables.tags`, like `ALERT_TAG_VALUES`.
    pub(crate) const OBSERVABLE_TAG_VALUES: &'static str =
        "jsonb_array_elements_text(observables.tags) t WHERE t";
    /// Position of a substring, case-sensitive, 0 when absent: `strpos(haystack, needle)`.
    pub(crate) const STRPOS: &'static str = "strpos";
    /// RFC 3339 label of the UTC hour / day holding `alerts.first_seen`.
    pub(crate) const HOUR_BUCKET: &'static str =
        "to_char(alerts.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')";
    pub(crate) const DAY_BUCKET: &'static str =
        "to_char(alerts.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"00:00:00\"Z\"')";
    /// Seconds from `{a}` to `{b}`.
    pub(crate) const SECONDS_BETWEEN: &'static str = "EXTRACT(EPOCH FROM ({b} - {a}))";
}

#[cfg(test)]
mod tests {
    use super::PgStore;
    use crate::Backend;
    use crate::testing::{fresh, requested_backend};

    /// Every pooled session plans each execution for its own parameters (see `connect`): a
    /// generic plan made for an average observable read 36,793 sightings for a page of 50.
    #[tokio::test]
    async fn sessions_plan_each_execution_for_its_parameters() {
        if requested_backend() != Backend::Postgres {
            return;
        }
        let db = fresh().await;
        let store = PgStore::connect(&db.url).await.expect("connect");
        // Several sessions at once, so more than one pooled connection is asked.
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(store.reader.acquire().await.expect("acquire"));
        }
        for c in &mut conns {
            let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
                .fetch_one(&mut **c)
                .await
                .expect("show");
            assert_eq!(mode, "force_custom_plan");
        }
        drop(conns);
        // Write transactions plan as PostgreSQL does by default (see `begin_write`).
        let mut tx = store.begin_write().await.expect("begin");
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(&mut *tx)
            .await
            .expect("show");
        assert_eq!(mode, "auto");
        tx.rollback().await.expect("rollback");
        store.writer.close().await;
    }
}
