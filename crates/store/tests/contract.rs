//! The storage contract: one suite, run against whichever backend
//! `BULWARK_TEST_DATABASE_URL` selects (SQLite when unset). CI runs it on both.

use bulwark_core::{ApiKeyScope, Role, Scope, TenantId};
use bulwark_store::testing::fresh;
use bulwark_store::{AnalystPatch, ChangeCtx, NewAnalyst, NewApiKey, NewTenant, Store, StoreError};
use std::sync::Arc;

fn ctx() -> ChangeCtx {
    ChangeCtx::system("test")
}

async fn tenant(store: &Store, slug: &str) -> TenantId {
    store
        .create_tenant(
            &ctx(),
            NewTenant {
                slug: slug.into(),
                name: slug.to_uppercase(),
            },
        )
        .await
        .expect("create tenant")
        .id
}

async fn analyst(
    store: &Store,
    t: TenantId,
    name: &str,
    role: Role,
) -> bulwark_core::model::Analyst {
    store
        .create_analyst(
            &ctx(),
            NewAnalyst {
                tenant_id: t,
                username: name.into(),
                display_name: name.into(),
                password_hash: "$argon2id$fake".into(),
                role,
                tenant_ids: vec![],
            },
        )
        .await
        .expect("create analyst")
}

fn key(t: TenantId, prefix: &str) -> NewApiKey {
    NewApiKey {
        tenant_id: t,
        name: format!("key {prefix}"),
        prefix: prefix.into(),
        digest: vec![7; 32],
        scopes: vec![ApiKeyScope::WebhooksIngest, ApiKeyScope::Read],
        source: Some("wazuh".into()),
        expires_at: None,
        created_by: None,
        signing_secret: None,
        accept_key_signature: false,
        rate_limit: None,
    }
}

#[tokio::test]
async fn runs_on_the_requested_backend() {
    let db = fresh().await;
    assert_eq!(
        db.store.backend(),
        bulwark_store::testing::requested_backend()
    );
    db.store.ping().await.expect("ping");
}

#[tokio::test]
async fn tenants_are_unique_by_slug_and_scoped() {
    let db = fresh().await;
    let store = &db.store;
    let a = tenant(store, "acme").await;
    let b = tenant(store, "globex").await;
    let dup = store
        .create_tenant(
            &ctx(),
            NewTenant {
                slug: "acme".into(),
                name: "again".into(),
            },
        )
        .await;
    assert!(
        matches!(dup, Err(StoreError::Conflict { field: "slug" })),
        "{dup:?}"
    );

    let all = store.list_tenants(&Scope::AllTenants).await.expect("list");
    assert_eq!(
        all.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(),
        ["acme", "globex"]
    );
    let only_a = store.list_tenants(&Scope::single(a)).await.expect("list");
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].id, a);
    assert!(
        store
            .list_tenants(&Scope::Tenants(vec![]))
            .await
            .expect("list")
            .is_empty()
    );

    assert_eq!(
        store
            .get_tenant(&Scope::single(a), a)
            .await
            .expect("get")
            .slug,
        "acme"
    );
    assert!(matches!(
        store.get_tenant(&Scope::single(a), b).await,
        Err(StoreError::NotFound)
    ));
    let by_slug = store.tenant_by_slug("globex").await.expect("slug");
    assert_eq!(by_slug.map(|t| t.id), Some(b));
    assert!(store.tenant_by_slug("nope").await.expect("slug").is_none());
}

#[tokio::test]
async fn analysts_round_trip_with_grants_and_scope() {
    let db = fresh().await;
    let store = &db.store;
    let a = tenant(store, "acme").await;
    let b = tenant(store, "globex").await;
    let c = tenant(store, "initech").await;
    let alice = store
        .create_analyst(
            &ctx(),
            NewAnalyst {
                tenant_id: a,
                username: "alice".into(),
                display_name: "Alice".into(),
                password_hash: "$argon2id$x".into(),
                role: Role::Analyst,
                tenant_ids: vec![b, a, b],
            },
        )
        .await
        .expect("create");
    assert_eq!(
        alice.tenant_ids,
        vec![b],
        "home tenant and duplicates are not grants"
    );
    assert!(alice.is_active);
    let bob = analyst(store, b, "bob", Role::Viewer).await;

    let dup = store
        .create_analyst(
            &ctx(),
            NewAnalyst {
                tenant_id: a,
                username: "alice".into(),
                display_name: "x".into(),
                password_hash: "x".into(),
                role: Role::Viewer,
                tenant_ids: vec![],
            },
        )
        .await;
    assert!(
        matches!(dup, Err(StoreError::Conflict { field: "username" })),
        "{dup:?}"
    );

    let bad_tenant = store
        .create_analyst(
            &ctx(),
            NewAnalyst {
                tenant_id: TenantId::new(),
                username: "ghost".into(),
                display_name: "x".into(),
                password_hash: "x".into(),
                role: Role::Viewer,
                tenant_ids: vec![],
            },
        )
        .await;
    assert!(
        matches!(
            bad_tenant,
            Err(StoreError::Invalid {
                field: "tenant_id",
                ..
            })
        ),
        "{bad_tenant:?}"
    );
    assert_eq!(
        store.count_analysts().await.expect("count"),
        2,
        "nothing half-written"
    );

    let in_a = store.list_analysts(&Scope::single(a)).await.expect("list");
    assert_eq!(
        in_a.iter().map(|x| x.username.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(matches!(
        store.get_analyst(&Scope::single(a), bob.id).await,
        Err(StoreError::NotFound)
    ));

    let patched = store
        .update_analyst(
            &ctx(),
            &Scope::AllTenants,
            alice.id,
            AnalystPatch {
                tenant_ids: Some(vec![c]),
                display_name: Some("Alice L.".into()),
                ..Default::default()
            },
        )
        .await
        .expect("patch");
    assert_eq!(patched.tenant_ids, vec![c]);
    assert_eq!(patched.display_name, "Alice L.");
    assert_eq!(patched.role, Role::Analyst);

    let bad_grant = store
        .update_analyst(
            &ctx(),
            &Scope::AllTenants,
            alice.id,
            AnalystPatch {
                tenant_ids: Some(vec![TenantId::new()]),
                display_name: Some("changed".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(
            bad_grant,
            Err(StoreError::Invalid {
                field: "tenant_ids",
                ..
            })
        ),
        "{bad_grant:?}"
    );
    let after = store
        .get_analyst(&Scope::AllTenants, alice.id)
        .await
        .expect("get");
    assert_eq!(
        after.display_name, "Alice L.",
        "a failed patch changes nothing"
    );
    assert_eq!(after.tenant_ids, vec![c]);

    let creds = store
        .credentials_by_username("alice")
        .await
        .expect("creds")
        .expect("some");
    assert_eq!(creds.analyst.id, alice.id);
    assert_eq!(creds.token_version, 0);
    assert!(
        store
            .credentials_by_username("nobody")
            .await
            .expect("creds")
            .is_none()
    );
}

#[tokio::test]
async fn password_change_and_disable_bump_the_token_version() {
    let db = fresh().await;
    let store = &db.store;
    let a = tenant(store, "acme").await;
    let _admin = analyst(store, a, "root", Role::Admin).await;
    let al = analyst(store, a, "al", Role::Analyst).await;
    store
        .set_password(&ctx(), &Scope::single(a), al.id, "$argon2id$new".into())
        .await
        .expect("set");
    let c = store
        .credentials_by_id(al.id)
        .await
        .expect("c")
        .expect("some");
    assert_eq!(c.token_version, 1);
    assert_eq!(c.password_hash, "$argon2id$new");

    let other = tenant(store, "other").await;
    let r = store
        .set_password(&ctx(), &Scope::single(other), al.id, "x".into())
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "out-of-scope analyst is not found"
    );

    store
        .update_analyst(
            &ctx(),
            &Scope::AllTenants,
            al.id,
            AnalystPatch {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
    let c = store
        .credentials_by_id(al.id)
        .await
        .expect("c")
        .expect("some");
    assert_eq!(c.token_version, 2);
    assert!(!c.analyst.is_active);
    store
        .record_login(&ctx(), al.id, bulwark_core::time::now())
        .await
        .expect("login");
    assert!(
        store
            .get_analyst(&Scope::AllTenants, al.id)
            .await
            .expect("get")
            .last_login_at
            .is_some()
    );
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_or_disabled() {
    let db = fresh().await;
    let store = &db.store;
    let a = tenant(store, "default").await;
    let root = analyst(store, a, "root", Role::Admin).await;
    let demote = AnalystPatch {
        role: Some(Role::Analyst),
        ..Default::default()
    };
    let disable = AnalystPatch {
        is_active: Some(false),
        ..Default::default()
    };
    let r = store
        .update_analyst(&ctx(), &Scope::AllTenants, root.id, demote.clone())
        .await;
    assert!(matches!(r, Err(StoreError::LastAdmin)), "{r:?}");
    let r = store
        .update_analyst(&ctx(), &Scope::AllTenants, root.id, disable.clone())
        .await;
    assert!(matches!(r, Err(StoreError::LastAdmin)), "{r:?}");

    let second = analyst(store, a, "second", Role::Admin).await;
    store
        .update_analyst(&ctx(), &Scope::AllTenants, root.id, demote)
        .await
        .expect("demote ok with 2 admins");
    let r = store
        .update_analyst(&ctx(), &Scope::AllTenants, second.id, disable)
        .await;
    assert!(matches!(r, Err(StoreError::LastAdmin)), "{r:?}");

    // A tenant admin (home tenant other than `default`) is not a platform admin: demoting the
    // only one is fine while a platform admin remains.
    let customer = tenant(store, "customer").await;
    let tadmin = analyst(store, customer, "tadmin", Role::Admin).await;
    let demote = AnalystPatch {
        role: Some(Role::Viewer),
        ..Default::default()
    };
    store
        .update_analyst(&ctx(), &Scope::AllTenants, tadmin.id, demote)
        .await
        .expect("tenant admin demoted");
}

#[tokio::test]
async fn concurrent_demotions_never_leave_zero_admins() {
    let db = fresh().await;
    let store = &db.store;
    let a = tenant(store, "default").await;
    for round in 0..5 {
        let mut ids = Vec::new();
        for i in 0..4 {
            ids.push(
                analyst(store, a, &format!("adm{round}-{i}"), Role::Admin)
                    .await
                    .id,
            );
        }
        // Demote every admin there is, all at once.
        let everyone: Vec<_> = store
            .list_analysts(&Scope::AllTenants)
            .await
            .expect("list")
            .into_iter()
            .filter(|x| x.role == Role::Admin)
            .map(|x| x.id)
            .collect();
        let store = Arc::clone(store);
        let tasks: Vec<_> = everyone
            .into_iter()
            .map(|id| {
                let s = Arc::clone(&store);
                tokio::spawn(async move {
                    s.update_analyst(
                        &ChangeCtx::system("race"),
                        &Scope::AllTenants,
                        id,
                        AnalystPatch {
                            role: Some(Role::Viewer),
                            ..Default::default()
                        },
                    )
                    .await
                })
            })
            .collect();
        let mut refused = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(_) => {}
                Err(StoreError::LastAdmin) => refused += 1,
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(refused, 1, "exactly one demotion is refused");
        let admins = store
            .list_analysts(&Scope::AllTenants)
            .await
            .expect("list")
            .into_iter()
            .filter(|x| x.role == Role::Admin && x.is_active)
            .count();
        assert_eq!(admins, 1);
    }
}

#[tokio::test]
async fn api_keys_are_scoped_found_by_prefix_and_revocable() {
    let db = fresh().await;
    let store = &db.store;
    let a = tenant(store, "acme").await;
    let b = tenant(store, "globex").await;
    let ka = store
        .create_api_key(&ctx(), key(a, "bwk_aaaaaaaa"))
        .await
        .expect("create");
    let kb = store
        .create_api_key(&ctx(), key(b, "bwk_bbbbbbbb"))
        .await
        .expect("create");
    let dup = store.create_api_key(&ctx(), key(a, "bwk_aaaaaaaa")).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict { field: "prefix" })),
        "{dup:?}"
    );

    let listed = store.list_api_keys(&Scope::single(a)).await.expect("list");
    assert_eq!(listed, vec![ka.clone()]);
    assert_eq!(
        store
            .list_api_keys(&Scope::AllTenants)
            .await
            .expect("list")
            .len(),
        2
    );

    let found = store
        .api_key_by_prefix("bwk_aaaaaaaa")
        .await
        .expect("find")
        .expect("some");
    assert_eq!(found.key, ka);
    assert_eq!(found.digest, vec![7; 32]);
    assert_eq!(
        found.key.scopes,
        vec![ApiKeyScope::WebhooksIngest, ApiKeyScope::Read]
    );
    assert!(
        store
            .api_key_by_prefix("bwk_zzzzzzzz")
            .await
            .expect("find")
            .is_none()
    );

    let now = bulwark_core::time::now();
    let r = store
        .revoke_api_key(&ctx(), &Scope::single(a), kb.id, now)
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "another tenant's key is not found"
    );
    let revoked = store
        .revoke_api_key(&ctx(), &Scope::single(a), ka.id, now)
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(now));
    assert!(!revoked.is_usable_at(now));
    let later = now + chrono::Duration::seconds(5);
    let again = store
        .revoke_api_key(&ctx(), &Scope::single(a), ka.id, later)
        .await
        .expect("revoke twice");
    assert_eq!(
        again.revoked_at,
        Some(now),
        "the first revocation time is kept"
    );

    store
        .touch_api_keys(&[(kb.id, later), (ka.id, now)])
        .await
        .expect("touch");
    store
        .touch_api_keys(&[(kb.id, now)])
        .await
        .expect("touch older");
    let kb2 = store
        .api_key_by_prefix("bwk_bbbbbbbb")
        .await
        .expect("find")
        .expect("some");
    assert_eq!(
        kb2.key.last_used_at,
        Some(later),
        "last_used_at never goes backwards"
    );
}

#[tokio::test]
async fn timestamps_round_trip_exactly() {
    let db = fresh().await;
    let store = &db.store;
    let t = store
        .create_tenant(
            &ctx(),
            NewTenant {
                slug: "acme".into(),
                name: "Acme".into(),
            },
        )
        .await
        .expect("create");
    let back = store
        .get_tenant(&Scope::AllTenants, t.id)
        .await
        .expect("get");
    assert_eq!(back, t);
}

/// A deadlock (PostgreSQL aborts one of the two transactions) is a conflict the caller may
/// retry (the API answers 503, not 500); an ordinary constraint violation is not.
#[tokio::test]
async fn deadlocks_are_retryable_conflicts_and_constraint_errors_are_not() {
    use sqlx::Connection;
    let db = fresh().await;
    tenant(&db.store, "acme").await;
    let dup = db
        .store
        .create_tenant(
            &ctx(),
            NewTenant {
                slug: "acme".into(),
                name: "again".into(),
            },
        )
        .await;
    assert!(
        matches!(&dup, Err(e) if !e.is_retryable_conflict()),
        "{dup:?}"
    );
    if db.store.backend() != bulwark_store::Backend::Postgres {
        // SQLite has one writer: two write transactions never hold locks against each other.
        return;
    }
    let mut a = sqlx::PgConnection::connect(&db.url).await.expect("a");
    let mut b = sqlx::PgConnection::connect(&db.url).await.expect("b");
    sqlx::raw_sql(
        "CREATE TABLE deadlock_probe (id int PRIMARY KEY, n int); \
         INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)",
    )
    .execute(&mut a)
    .await
    .expect("table");
    let mut ta = a.begin().await.expect("begin a");
    let mut tb = b.begin().await.expect("begin b");
    let bump = "UPDATE deadlock_probe SET n = n + 1 WHERE id = $1";
    sqlx::query(bump)
        .bind(1)
        .execute(&mut *ta)
        .await
        .expect("a locks 1");
    sqlx::query(bump)
        .bind(2)
        .execute(&mut *tb)
        .await
        .expect("b locks 2");
    let (ra, rb) = tokio::join!(
        sqlx::query(bump).bind(2).execute(&mut *ta),
        sqlx::query(bump).bind(1).execute(&mut *tb)
    );
    let failed: Vec<StoreError> = [ra.err(), rb.err()]
        .into_iter()
        .flatten()
        .map(StoreError::from)
        .collect();
    assert_eq!(failed.len(), 1, "PostgreSQL aborts exactly one: {failed:?}");
    assert!(failed[0].is_retryable_conflict(), "{:?}", failed[0]);
}
