//! SQLite's write-ahead log is copied into the database file by the store's checkpoint thread,
//! not only by the writer's own checkpoints, and closing the store lets go of the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// A store on a new database file in `dir`, and that file's path.
async fn open_in(dir: &Path) -> (bulwark_store::Store, PathBuf) {
    let db = dir.join("bulwark.db");
    let store = bulwark_store::open(&format!("sqlite://{}", db.display()))
        .await
        .expect("open");
    (store, db)
}

#[tokio::test]
async fn the_wal_reaches_the_database_file_without_a_checkpoint_by_the_writer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, db) = open_in(dir.path()).await;
    // The migrations are a few hundred pages of WAL, far below the writer's automatic
    // checkpoint (8,192 pages): only the checkpoint thread copies them into the file.
    let wal = size(&dir.path().join("bulwark.db-wal"));
    assert!(
        wal > 64 * 1024,
        "the migrations went to the WAL ({wal} bytes)"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while size(&db) < wal / 2 {
        assert!(
            Instant::now() < deadline,
            "database file still {} bytes beside a WAL of {wal} after 10 s",
            size(&db)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The copy holds the schema: a new connection of its own, reading the file alone after
    // the store let go of it, finds the tables.
    store.close().await;
    let conn = rusqlite::Connection::open(&db).expect("reopen");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alerts'",
            [],
            |r| r.get(0),
        )
        .expect("schema");
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn closing_the_store_stops_the_checkpoint_thread_and_releases_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, db) = open_in(dir.path()).await;
    let wal = db.with_file_name("bulwark.db-wal");
    assert!(wal.exists());
    store.close().await;
    // SQLite removes the WAL when the last connection to the file closes: a checkpoint thread
    // still holding its connection would keep it.
    assert!(
        !wal.exists(),
        "a connection to the file is still open after close"
    );
}
