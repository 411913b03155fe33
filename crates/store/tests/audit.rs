//! The audit trail's guarantees, on whichever backend the suite runs on: every change appends
//! a record in the same transaction; the table rejects edits; and with the protection switched
//! off by a superuser, every kind of tampering is detected and located.

use bulwark_audit::{BreakReason, CheckpointSigner, EventType, VerifyingKey};
use bulwark_core::{Role, Scope, TenantId};
use bulwark_store::audit::{AuditFilter, VerifyMode, sign_checkpoints, verify_tenant};
use bulwark_store::testing::{TestDb, disable_audit_triggers, exec_raw, fresh};
use bulwark_store::{AnalystPatch, ChangeCtx, NewAnalyst, NewTenant, StoreError};

fn ctx() -> ChangeCtx {
    ChangeCtx {
        actor_kind: "user",
        actor_id: Some("actor-1".into()),
        actor_name: Some("alice".into()),
        request_id: Some("req-1".into()),
    }
}

/// A tenant with a chain of `n_updates + 2` records.
async fn tenant_with_chain(db: &TestDb, n_updates: usize) -> TenantId {
    let s = &db.store;
    let t = s
        .create_tenant(
            &ctx(),
            NewTenant {
                slug: "acme".into(),
                name: "Acme".into(),
            },
        )
        .await
        .expect("tenant")
        .id;
    let a = s
        .create_analyst(
            &ctx(),
            NewAnalyst {
                tenant_id: t,
                username: "bob".into(),
                display_name: "Bob".into(),
                password_hash: "x".into(),
                role: Role::Analyst,
                tenant_ids: vec![],
            },
        )
        .await
        .expect("analyst");
    for i in 0..n_updates {
        let patch = AnalystPatch {
            display_name: Some(format!("Bob {i}")),
            ..Default::default()
        };
        s.update_analyst(&ctx(), &Scope::AllTenants, a.id, patch)
            .await
            .expect("update");
    }
    t
}

async fn verify(db: &TestDb, t: TenantId, keys: &[VerifyingKey]) -> bulwark_audit::VerifyReport {
    verify_tenant(db.store.as_ref(), t, keys, VerifyMode::Full)
        .await
        .expect("verify")
}

fn uuid_sql(db: &TestDb, t: TenantId) -> String {
    if db.url.starts_with("postgres") {
        format!("'{}'::uuid", t.0)
    } else {
        format!("X'{}'", hex::encode(t.0.as_bytes()))
    }
}

fn bytes_sql(db: &TestDb, b: &[u8]) -> String {
    if db.url.starts_with("postgres") {
        format!("'\\x{}'::bytea", hex::encode(b))
    } else {
        format!("X'{}'", hex::encode(b))
    }
}

#[tokio::test]
async fn every_change_appends_a_gap_free_record_in_its_tenant() {
    let db = fresh().await;
    let t = tenant_with_chain(&db, 3).await;
    let events = db
        .store
        .list_audit(
            &Scope::AllTenants,
            &AuditFilter {
                tenant_id: Some(t),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e.record["event_type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "system.tenant.created",
            "security.analyst.created",
            "security.analyst.updated",
            "security.analyst.updated",
            "security.analyst.updated"
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let upd = &events[2].record;
    assert_eq!(upd["actor"]["name"], "alice");
    assert_eq!(upd["request_id"], "req-1");
    assert_eq!(upd["summary"]["before"]["display_name"], "Bob");
    assert_eq!(upd["summary"]["after"]["display_name"], "Bob 0");
    assert!(
        !upd.to_string().contains("password"),
        "no secrets in the trail"
    );

    let filtered = db
        .store
        .list_audit(
            &Scope::AllTenants,
            &AuditFilter {
                event_type: Some(EventType::AnalystCreated),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(filtered.len(), 1);
    let other = TenantId::new();
    let none = db
        .store
        .list_audit(
            &Scope::single(other),
            &AuditFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert!(none.is_empty(), "scoped to the caller's tenants");
    assert!(verify(&db, t, &[]).await.is_ok());
}

#[tokio::test]
async fn the_log_rejects_updates_and_deletes() {
    let db = fresh().await;
    let t = tenant_with_chain(&db, 1).await;
    let tid = uuid_sql(&db, t);
    for sql in [
        format!("UPDATE audit_log SET actor_id = 'x' WHERE tenant_id = {tid}"),
        format!("DELETE FROM audit_log WHERE tenant_id = {tid} AND seq = 2"),
    ] {
        let r = exec_raw(&db.url, &sql).await;
        assert!(r.is_err(), "{sql} must be refused");
        assert!(
            r.err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("append-only")
        );
    }
    if db.url.starts_with("postgres") {
        assert!(
            exec_raw(&db.url, "TRUNCATE audit_log").await.is_err(),
            "TRUNCATE refused"
        );
    }
    assert!(verify(&db, t, &[]).await.is_ok());
}

#[tokio::test]
async fn a_change_whose_audit_record_cannot_be_written_does_not_happen() {
    let db = fresh().await;
    let sql = if db.url.starts_with("postgres") {
        "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$; \
         CREATE TRIGGER fail_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION fail_audit()"
    } else {
        "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    };
    exec_raw(&db.url, sql).await.expect("sabotage");
    let r = db
        .store
        .create_tenant(
            &ctx(),
            NewTenant {
                slug: "acme".into(),
                name: "Acme".into(),
            },
        )
        .await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    assert!(
        db.store
            .tenant_by_slug("acme")
            .await
            .expect("lookup")
            .is_none(),
        "no tenant without its record"
    );
}

#[tokio::test]
async fn a_changed_byte_is_detected_at_its_seq() {
    let db = fresh().await;
    let t = tenant_with_chain(&db, 4).await;
    disable_audit_triggers(&db.url).await;
    let row = db.store.audit_rows(t, 2, 1).await.expect("rows").remove(0);
    assert_eq!(row.seq, 3);
    let mut bytes = row.record_bytes.clone();
    let i = bytes
        .iter()
        .position(|b| *b == b'B')
        .expect("a 'B' in the record");
    bytes[i] = b'C';
    let sql = format!(
        "UPDATE audit_log SET record = {} WHERE tenant_id = {} AND seq = 3",
        bytes_sql(&db, &bytes),
        uuid_sql(&db, t)
    );
    assert_eq!(exec_raw(&db.url, &sql).await.expect("tamper"), 1);
    let r = verify(&db, t, &[]).await;
    let b = r.first_break.expect("detected");
    assert_eq!(b.seq, 3);
    assert!(
        matches!(b.reason, BreakReason::HashMismatch { .. }),
        "{:?}",
        b.reason
    );
}

#[tokio::test]
async fn a_deleted_record_is_detected_at_its_seq() {
    let db = fresh().await;
    let t = tenant_with_chain(&db, 4).await;
    disable_audit_triggers(&db.url).await;
    let sql = format!(
        "DELETE FROM audit_log WHERE tenant_id = {} AND seq = 4",
        uuid_sql(&db, t)
    );
    assert_eq!(exec_raw(&db.url, &sql).await.expect("tamper"), 1);
    let b = verify(&db, t, &[]).await.first_break.expect("detected");
    assert_eq!(b.seq, 4);
    assert!(
        matches!(b.reason, BreakReason::Gap { .. }),
        "{:?}",
        b.reason
    );
}

#[tokio::test]
async fn swapped_records_are_detected_at_the_first_one() {
    let db = fresh().await;
    let t = tenant_with_chain(&db, 4).await;
    disable_audit_triggers(&db.url).await;
    let tid = uuid_sql(&db, t);
    for sql in [
        format!("UPDATE audit_log SET seq = -1 WHERE tenant_id = {tid} AND seq = 3"),
        format!("UPDATE audit_log SET seq = 3 WHERE tenant_id = {tid} AND seq = 4"),
        format!("UPDATE audit_log SET seq = 4 WHERE tenant_id = {tid} AND seq = -1"),
    ] {
        exec_raw(&db.url, &sql).await.expect("tamper");
    }
    let b = verify(&db, t, &[]).await.first_break.expect("detected");
    assert_eq!(b.seq, 3, "{:?}", b.reason);
}

#[tokio::test]
async fn a_rewritten_chain_with_consistent_hashes_is_caught_by_the_signed_checkpoint() {
    let db = fresh().await;
    let t = tenant_with_chain(&db, 4).await;
    let signer = CheckpointSigner::generate().expect("key");
    assert_eq!(
        sign_checkpoints(db.store.as_ref(), &signer, &Scope::AllTenants)
            .await
            .expect("sign"),
        1
    );
    let keys = [signer.verifying_key()];
    assert!(verify(&db, t, &keys).await.is_ok());

    // The attacker rewrites record 2 and recomputes every later hash and the head: the chain
    // is self-consistent, but it no longer matches what the key outside the database signed.
    disable_audit_triggers(&db.url).await;
    let rows = db.store.audit_rows(t, 0, 100).await.expect("rows");
    let mut builder = bulwark_audit::ChainBuilder::new(t.0, None);
    let mut rewritten = Vec::new();
    for row in &rows {
        let rec = bulwark_audit::decode_record(&row.record_bytes).expect("decode");
        let mut new =
            bulwark_audit::NewRecord::new(rec.actor.clone(), rec.event_type, rec.target.clone());
        new.ts = rec.ts;
        new.summary = rec.summary.clone();
        new.request_id = rec.request_id.clone();
        if row.seq == 2 {
            new.actor.name = Some("mallory".into());
        }
        rewritten.push(builder.append(new).expect("append"));
    }
    let tid = uuid_sql(&db, t);
    for a in &rewritten {
        let sql = format!(
            "UPDATE audit_log SET record = {}, hash = {} WHERE tenant_id = {tid} AND seq = {}",
            bytes_sql(&db, &a.record_bytes),
            bytes_sql(&db, &a.hash.0),
            a.head.seq
        );
        exec_raw(&db.url, &sql).await.expect("rewrite");
    }
    let head = builder.head();
    let sql = format!(
        "UPDATE audit_heads SET hash = {} WHERE tenant_id = {tid}",
        bytes_sql(&db, &head.hash.0)
    );
    exec_raw(&db.url, &sql).await.expect("rewrite head");

    // The rewritten links are internally consistent: that is why checkpoints exist.
    let mut links = bulwark_audit::Verifier::new(t.0, None);
    for row in db.store.audit_rows(t, 0, 100).await.expect("rows") {
        links.feed(&row).expect("consistent links");
    }
    let r = verify(&db, t, &keys).await;
    let b = r.first_break.expect("detected by the checkpoint");
    assert!(
        matches!(b.reason, BreakReason::CheckpointMismatch { .. }),
        "{:?}",
        b.reason
    );
    assert!(b.seq <= 6, "located at or before the checkpoint: {}", b.seq);

    // A checkpoint forged with another key does not help the attacker.
    let forger = CheckpointSigner::generate().expect("key");
    let forged = forger.sign(t.0, &head, bulwark_audit::AuditTime::now());
    exec_raw(
        &db.url,
        &format!("DELETE FROM audit_checkpoints WHERE tenant_id = {tid}"),
    )
    .await
    .expect("delete cps");
    db.store
        .insert_checkpoint(&forged)
        .await
        .expect("insert forged");
    let r = verify(&db, t, &keys).await;
    assert!(
        r.first_break.is_some(),
        "a checkpoint by an unknown key fails verification"
    );
}

#[tokio::test]
async fn incremental_verification_starts_at_the_last_valid_checkpoint() {
    let db = fresh().await;
    let t = tenant_with_chain(&db, 2).await;
    let signer = CheckpointSigner::generate().expect("key");
    sign_checkpoints(db.store.as_ref(), &signer, &Scope::AllTenants)
        .await
        .expect("sign");
    let a = db
        .store
        .list_analysts(&Scope::AllTenants)
        .await
        .expect("list")
        .remove(0);
    db.store
        .update_analyst(
            &ctx(),
            &Scope::AllTenants,
            a.id,
            AnalystPatch {
                display_name: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    let keys = [signer.verifying_key()];
    let r = verify_tenant(db.store.as_ref(), t, &keys, VerifyMode::Incremental)
        .await
        .expect("verify");
    assert!(r.is_ok(), "{:?}", r.first_break);
    assert_eq!(r.records_checked, 1, "only records after the checkpoint");
    assert_eq!(r.last_seq, 5);
}
