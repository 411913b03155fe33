//! Playbook actions' alert writes committed together (`alert_writes`), on whichever backend
//! `BULWARK_TEST_DATABASE_URL` selects: each write gets its own result, a refused write leaves
//! nothing behind (no change, no timeline entry, no audit record) and does not undo the others.

use bulwark_core::alert_change::AlertChange;
use bulwark_core::{AlertAccess, Scope, TenantId};
use bulwark_store::alert_triage::{AlertWrite, AlertWritten, ChangeRequest};
use bulwark_store::testing::{fresh, tenant};
use bulwark_store::{ChangeCtx, Store, StoreError};
use uuid::Uuid;

fn ctx() -> ChangeCtx {
    ChangeCtx::system("test")
}

async fn alert(store: &Store, t: TenantId, sid: &str) -> Uuid {
    let payload = serde_json::json!({"title": format!("alert {sid}"), "source_id": sid});
    let a = bulwark_store::ingest::IncomingAlert::new(
        t,
        bulwark_normalize::normalize(bulwark_normalize::Source::Generic, &payload)
            .expect("normalize"),
        payload.to_string(),
        chrono::Utc::now(),
        ctx(),
    );
    store
        .ingest(&[a], chrono::Duration::hours(24))
        .await
        .expect("ingest")[0]
        .alert_id
}

fn scoped(t: TenantId) -> AlertAccess {
    AlertAccess::unrestricted(Scope::single(t))
}

fn tag(t: TenantId, id: Uuid, tag: &str) -> AlertWrite {
    AlertWrite::Change {
        ctx: ctx(),
        access: scoped(t),
        id,
        req: ChangeRequest {
            change: AlertChange {
                add_tags: vec![tag.into()],
                ..AlertChange::default()
            },
            ..ChangeRequest::default()
        },
    }
}

fn comment(t: TenantId, id: Uuid, body: &str) -> AlertWrite {
    AlertWrite::Comment {
        ctx: ctx(),
        access: scoped(t),
        id,
        body: body.into(),
    }
}

#[tokio::test]
async fn writes_committed_together_keep_their_own_results() {
    let db = fresh().await;
    let store = db.store.clone();
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let a = alert(&store, acme, "a").await;
    let b = alert(&store, acme, "b").await;
    let g = alert(&store, globex, "g").await;
    let head = |t| {
        let store = store.clone();
        async move {
            store
                .audit_head(t)
                .await
                .expect("head")
                .map_or(0, |h| h.seq)
        }
    };
    let (acme_before, globex_before) = (head(acme).await, head(globex).await);
    let bad_severity = AlertWrite::Change {
        ctx: ctx(),
        access: scoped(acme),
        id: b,
        req: ChangeRequest {
            change: AlertChange {
                severity: Some("apocalyptic".into()),
                add_tags: vec!["never".into()],
                ..AlertChange::default()
            },
            ..ChangeRequest::default()
        },
    };
    let writes = vec![
        tag(acme, a, "triaged"),
        bad_severity,
        comment(acme, a, "first"),
        // Acme's scope does not reach Globex's alert.
        comment(acme, g, "leak"),
        tag(acme, b, "second"),
        // The same alert twice in one batch: both apply, in order.
        tag(acme, a, "again"),
        // Nothing to change: unchanged, nothing written.
        tag(acme, a, "triaged"),
    ];
    let out = store.alert_writes(&writes).await.expect("transaction");
    assert_eq!(out.len(), writes.len());
    assert!(
        matches!(out[0], Ok(AlertWritten::Changed(true))),
        "{:?}",
        out[0]
    );
    assert!(
        matches!(
            out[1],
            Err(StoreError::Invalid {
                field: "severity",
                ..
            })
        ),
        "{:?}",
        out[1]
    );
    let Ok(AlertWritten::Commented(c)) = &out[2] else {
        panic!("comment: {:?}", out[2]);
    };
    assert_eq!(c.body, "first");
    assert!(matches!(out[3], Err(StoreError::NotFound)), "{:?}", out[3]);
    assert!(
        matches!(out[4], Ok(AlertWritten::Changed(true))),
        "{:?}",
        out[4]
    );
    assert!(
        matches!(out[5], Ok(AlertWritten::Changed(true))),
        "{:?}",
        out[5]
    );
    assert!(
        matches!(out[6], Ok(AlertWritten::Changed(false))),
        "{:?}",
        out[6]
    );

    let all = AlertAccess::unrestricted(Scope::AllTenants);
    let da = store.get_alert(&all, a).await.expect("a");
    assert!(da.summary.tags.contains(&"triaged".to_string()));
    assert!(da.summary.tags.contains(&"again".to_string()));
    let db_ = store.get_alert(&all, b).await.expect("b");
    assert_eq!(
        db_.summary.tags,
        vec!["second".to_string()],
        "the refused change left nothing"
    );
    assert_ne!(db_.summary.severity, "apocalyptic");
    assert!(
        store
            .list_alert_comments(&all, g)
            .await
            .expect("g")
            .is_empty()
    );
    assert_eq!(
        store.list_alert_comments(&all, a).await.expect("a").len(),
        1
    );
    // One audit record per write that changed something (3 changes, 1 comment), none for the
    // refused, out-of-scope or empty ones.
    assert_eq!(head(acme).await, acme_before + 4);
    assert_eq!(head(globex).await, globex_before);
    // And the timeline of b has its tag change only.
    let acts = store
        .alert_activities(&all, b, None, 100)
        .await
        .expect("activities");
    assert!(acts.iter().all(|x| x.kind != "severity"), "{acts:?}");
}
