//! Web console sessions on both backends: stored by digest, touched forward only, purged when
//! past their absolute expiry or idle, deleted at logout.

use bulwark_core::Role;
use bulwark_store::sessions::NewSession;
use bulwark_store::testing::fresh;
use bulwark_store::{ChangeCtx, NewAnalyst, NewTenant};
use chrono::{Duration, Utc};

#[tokio::test]
async fn sessions_are_stored_touched_purged_and_deleted() {
    let db = fresh().await;
    let s = &db.store;
    let ctx = ChangeCtx::system("test");
    let t = s
        .create_tenant(
            &ctx,
            NewTenant {
                slug: "default".into(),
                name: "Default".into(),
            },
        )
        .await
        .expect("tenant");
    let a = s
        .create_analyst(
            &ctx,
            NewAnalyst {
                tenant_id: t.id,
                username: "ann".into(),
                display_name: "Ann".into(),
                password_hash: "x".into(),
                role: Role::Analyst,
                tenant_ids: vec![],
            },
        )
        .await
        .expect("analyst");
    let now = Utc::now();
    let new = |hash: &[u8], created: chrono::DateTime<Utc>, ttl: Duration| NewSession {
        id_hash: hash.to_vec(),
        analyst_id: a.id,
        token_version: 3,
        csrf_token: "csrf".into(),
        created_at: created,
        expires_at: created + ttl,
        user_agent: Some("test".into()),
        client_ip: None,
    };
    s.create_session(&new(b"live", now, Duration::hours(12)))
        .await
        .expect("create");
    s.create_session(&new(
        b"expired",
        now - Duration::hours(13),
        Duration::hours(12),
    ))
    .await
    .expect("create");
    s.create_session(&new(b"idle", now - Duration::hours(2), Duration::hours(12)))
        .await
        .expect("create");
    assert!(
        s.create_session(&new(b"live", now, Duration::hours(1)))
            .await
            .is_err(),
        "one row per id"
    );

    let live = s.session_by_hash(b"live").await.expect("get").expect("row");
    assert_eq!(live.analyst_id, a.id);
    assert_eq!(live.token_version, 3);
    assert_eq!(live.csrf_token, "csrf");

    // Touching moves last_seen_at forward, never back.
    let later = now + Duration::minutes(5);
    s.touch_session(b"live", later).await.expect("touch");
    s.touch_session(b"live", now).await.expect("touch");
    let row = s.session_by_hash(b"live").await.expect("get").expect("row");
    assert!((row.last_seen_at - later).num_milliseconds().abs() < 5);

    // Past the absolute expiry or idle for an hour: gone; the live one stays.
    let purged = s
        .purge_sessions(now, now - Duration::hours(1))
        .await
        .expect("purge");
    assert_eq!(purged, 2);
    assert!(s.session_by_hash(b"expired").await.expect("get").is_none());
    assert!(s.session_by_hash(b"idle").await.expect("get").is_none());
    assert!(s.session_by_hash(b"live").await.expect("get").is_some());

    s.delete_session(b"live").await.expect("delete");
    assert!(s.session_by_hash(b"live").await.expect("get").is_none());
    s.delete_session(b"live")
        .await
        .expect("deleting twice is fine");
}
