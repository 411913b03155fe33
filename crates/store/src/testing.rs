//! Fresh databases for tests.
//!
//! `BULWARK_TEST_DATABASE_URL` picks the backend: unset (or `sqlite:`) gives each test its own
//! SQLite file in a temporary directory; a `postgres://` URL gives each test its own database,
//! created from a template that was migrated once per test process (fast, and no test sees
//! another's rows). If the URL is set but PostgreSQL does not answer, tests fail: a suite that
//! was asked to run on PostgreSQL never silently runs on SQLite instead.

use crate::{Backend, Store, StoreResult};
use sqlx::{Connection, PgConnection};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::OnceCell;

pub const TEST_DB_PREFIX: &str = "bwt_";

/// A test database; the SQLite directory is removed when this is dropped.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: (server URL, database name) to drop when the test ends.
    pg: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, name)) = self.pg.take() else {
            return;
        };
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&base).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

/// The backend the test suite was asked to run on.
pub fn requested_backend() -> Backend {
    match std::env::var("BULWARK_TEST_DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// A URL for a fresh, migrated, empty database on the requested backend, plus the guard that
/// owns it. The store is opened on it.
pub async fn fresh() -> TestDb {
    match std::env::var("BULWARK_TEST_DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => fresh_postgres(&u).await,
        _ => fresh_sqlite().await,
    }
}

async fn fresh_sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bulwark.db").display());
    let store = crate::open(&url).await.expect("open sqlite test store");
    TestDb {
        store,
        url,
        _dir: Some(dir),
        pg: None,
    }
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn with_database(url: &str, db: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_path(&format!("/{db}"));
            u.to_string()
        }
        Err(e) => panic!("BULWARK_TEST_DATABASE_URL is not a URL: {e}"),
    }
}

async fn admin_conn(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("BULWARK_TEST_DATABASE_URL is set but PostgreSQL did not answer: {e}")
    })
}

async fn template(base: &str) -> StoreResult<String> {
    let name = format!("{TEST_DB_PREFIX}tpl_{}", std::process::id());
    let mut admin = admin_conn(base).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut admin)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let store = crate::open(&with_database(base, &name)).await?;
    store.close().await;
    Ok(name)
}

async fn fresh_postgres(base: &str) -> TestDb {
    let tpl = TEMPLATE
        .get_or_try_init(|| template(base))
        .await
        .unwrap_or_else(|e| panic!("creating the PostgreSQL template database failed: {e}"));
    let name = format!(
        "{TEST_DB_PREFIX}{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = admin_conn(base).await;
    // CREATE DATABASE ... TEMPLATE fails while another session is copying the same template;
    // retry briefly.
    let mut attempt = 0;
    loop {
        let sql = format!("CREATE DATABASE {name} TEMPLATE {tpl}");
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
        {
            Ok(_) => break,
            Err(e) if attempt < 50 => {
                attempt += 1;
                tracing::debug!("template busy ({e}), retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("creating test database {name} failed: {e}"),
        }
    }
    let url = with_database(base, &name);
    let store = crate::open(&url).await.expect("open postgres test store");
    TestDb {
        store,
        url,
        _dir: None,
        pg: Some((base.to_string(), name)),
    }
}

/// Runs raw SQL on the test database as its owner (a superuser on the test cluster), bypassing
/// the store: for tests that play an attacker with database access.
pub async fn exec_raw(url: &str, sql: &str) -> Result<u64, sqlx::Error> {
    use sqlx::Executor;
    if url.starts_with("postgres") {
        let mut c = PgConnection::connect(url).await?;
        Ok(c.execute(sqlx::AssertSqlSafe(sql.to_string()))
            .await?
            .rows_affected())
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        Ok(c.execute(sqlx::AssertSqlSafe(sql.to_string()))
            .await?
            .rows_affected())
    }
}

/// Disables the append-only triggers, as a database superuser could.
pub async fn disable_audit_triggers(url: &str) {
    let sql = if url.starts_with("postgres") {
        "ALTER TABLE audit_log DISABLE TRIGGER USER; ALTER TABLE audit_checkpoints DISABLE TRIGGER USER"
    } else {
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; \
         DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete"
    };
    exec_raw(url, sql).await.expect("disable triggers");
}

/// A tenant created by the system actor (`slug` is also its name). Panics on failure: tests only.
pub async fn tenant(store: &Store, slug: &str) -> bulwark_core::TenantId {
    store
        .create_tenant(
            &crate::ChangeCtx::system("test"),
            crate::NewTenant {
                slug: slug.into(),
                name: slug.into(),
            },
        )
        .await
        .expect("tenant")
        .id
}
