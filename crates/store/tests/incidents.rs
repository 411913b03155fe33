//! Incident storage contract for the concurrency-sensitive parts, on whichever backend
//! `BULWARK_TEST_DATABASE_URL` selects (SQLite when unset): per-tenant numbers under
//! concurrent creates, atomic moves, idempotent concurrent links, and one transaction per
//! change (a refused change writes nothing).

use bulwark_core::{AlertAccess, Scope, TenantId};
use bulwark_store::incidents::{Acting, IncidentPatch, LinkOutcome, NewIncident, TimelineFilter};
use bulwark_store::testing::fresh;
use bulwark_store::{ChangeCtx, NewTenant, Store, StoreError};
use uuid::Uuid;

fn ctx() -> ChangeCtx {
    ChangeCtx::system("test")
}

async fn tenant(store: &Store, slug: &str) -> TenantId {
    store
        .create_tenant(
            &ctx(),
            NewTenant {
                slug: slug.into(),
                name: slug.into(),
            },
        )
        .await
        .expect("tenant")
        .id
}

async fn alerts(store: &Store, t: TenantId, n: usize) -> Vec<Uuid> {
    let batch: Vec<_> = (0..n)
        .map(|i| {
            let payload =
                serde_json::json!({"title": format!("alert {i}"), "source_id": format!("s-{i}")});
            bulwark_store::ingest::IncomingAlert {
                tenant_id: t,
                alert: bulwark_normalize::normalize(bulwark_normalize::Source::Generic, &payload)
                    .expect("normalize"),
                raw: payload.to_string(),
                received_at: chrono::Utc::now(),
                actor: ctx(),
                triggers: Default::default(),
            }
        })
        .collect();
    store
        .ingest(&batch, chrono::Duration::hours(24))
        .await
        .expect("ingest")
        .into_iter()
        .map(|o| o.alert_id)
        .collect()
}

fn access() -> AlertAccess {
    AlertAccess::unrestricted(Scope::AllTenants)
}

fn new(t: TenantId, title: &str, alert_ids: Vec<Uuid>) -> NewIncident {
    NewIncident {
        tenant_id: t,
        title: Some(title.into()),
        alert_ids,
        ..NewIncident::default()
    }
}

#[tokio::test]
async fn concurrent_creates_get_distinct_consecutive_numbers() {
    let db = fresh().await;
    let store = db.store.clone();
    let a = tenant(&store, "acme").await;
    let b = tenant(&store, "globex").await;
    let mut handles = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        let t = if i % 3 == 0 { b } else { a };
        handles.push(tokio::spawn(async move {
            let c = ctx();
            let acc = access();
            let who = Acting {
                ctx: &c,
                access: &acc,
                platform_tenant: t,
            };
            store
                .create_incident(&who, new(t, &format!("i{i}"), vec![]))
                .await
                .map(|d| (t, d.incident.number))
        }));
    }
    let mut numbers: Vec<(TenantId, i64)> = Vec::new();
    for h in handles {
        numbers.push(h.await.expect("join").expect("create"));
    }
    for (t, want) in [(a, 16), (b, 8)] {
        let mut n: Vec<i64> = numbers
            .iter()
            .filter(|(x, _)| *x == t)
            .map(|(_, n)| *n)
            .collect();
        n.sort_unstable();
        assert_eq!(n, (1..=want).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_move_is_atomic_even_when_two_race() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store, "acme").await;
    let ids = alerts(&store, t, 1).await;
    let c = ctx();
    let acc = access();
    let who = Acting {
        ctx: &c,
        access: &acc,
        platform_tenant: t,
    };
    let src = store
        .create_incident(&who, new(t, "src", ids.clone()))
        .await
        .expect("src")
        .incident
        .id;
    let dst1 = store
        .create_incident(&who, new(t, "d1", vec![]))
        .await
        .expect("d1")
        .incident
        .id;
    let dst2 = store
        .create_incident(&who, new(t, "d2", vec![]))
        .await
        .expect("d2")
        .incident
        .id;
    let alert = ids[0];
    let (r1, r2) = tokio::join!(
        store.move_alert(&who, src, alert, dst1),
        store.move_alert(&who, src, alert, dst2)
    );
    let ok = [r1.is_ok(), r2.is_ok()];
    assert_eq!(ok.iter().filter(|x| **x).count(), 1, "{r1:?} {r2:?}");
    assert!(
        matches!(r1, Err(StoreError::NotFound)) || matches!(r2, Err(StoreError::NotFound)),
        "the loser finds the alert gone"
    );
    let count = |id: Uuid| {
        let store = store.clone();
        async move {
            store
                .get_incident(&access(), id)
                .await
                .expect("incident")
                .incident
                .alert_count
        }
    };
    assert_eq!(count(src).await, 0);
    assert_eq!(count(dst1).await + count(dst2).await, 1);

    // Moving to an incident that does not exist changes nothing.
    let winner = if r1.is_ok() { dst1 } else { dst2 };
    let r = store.move_alert(&who, winner, alert, Uuid::now_v7()).await;
    assert!(
        matches!(
            r,
            Err(StoreError::Invalid {
                field: "to_incident_id",
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(count(winner).await, 1);
}

#[tokio::test]
async fn concurrent_links_of_one_alert_link_it_once() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store, "acme").await;
    let ids = alerts(&store, t, 3).await;
    let c = ctx();
    let acc = access();
    let who = Acting {
        ctx: &c,
        access: &acc,
        platform_tenant: t,
    };
    let inc = store
        .create_incident(&who, new(t, "x", vec![]))
        .await
        .expect("incident")
        .incident
        .id;
    let (r1, r2) = tokio::join!(
        store.link_alerts(&who, inc, &ids),
        store.link_alerts(&who, inc, &ids)
    );
    let (r1, r2) = (r1.expect("link 1"), r2.expect("link 2"));
    for i in 0..ids.len() {
        let mut outcomes = [r1[i].result, r2[i].result];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(outcomes, [LinkOutcome::AlreadyLinked, LinkOutcome::Linked]);
    }
    let d = store.get_incident(&access(), inc).await.expect("get");
    assert_eq!(d.incident.alert_count, 3);
    let tl = store
        .incident_timeline(
            &access(),
            inc,
            &TimelineFilter {
                kinds: vec!["alert_linked".into()],
                after: None,
                limit: 100,
            },
        )
        .await
        .expect("timeline");
    assert_eq!(tl.len(), 3, "one event per alert actually linked");
}

#[tokio::test]
async fn a_refused_change_writes_nothing() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store, "acme").await;
    let c = ctx();
    let acc = access();
    let who = Acting {
        ctx: &c,
        access: &acc,
        platform_tenant: t,
    };
    let inc = store
        .create_incident(&who, new(t, "x", vec![]))
        .await
        .expect("incident")
        .incident
        .id;
    let head_before = store.audit_head(t).await.expect("head");
    // A valid field with an invalid status: neither is applied.
    let r = store
        .update_incident(
            &who,
            inc,
            IncidentPatch {
                title: Some("changed".into()),
                status: Some(bulwark_core::incident::IncidentStatus::Closed),
                ..IncidentPatch::default()
            },
        )
        .await
        .expect("close");
    assert!(r.incident.closed_at.is_some());
    let head_mid = store.audit_head(t).await.expect("head");
    let r = store
        .update_incident(
            &who,
            inc,
            IncidentPatch {
                title: Some("changed again".into()),
                status: Some(bulwark_core::incident::IncidentStatus::Contained),
                ..IncidentPatch::default()
            },
        )
        .await;
    assert!(
        matches!(
            r,
            Err(StoreError::Invalid {
                field: "status",
                ..
            })
        ),
        "{r:?}"
    );
    let d = store.get_incident(&access(), inc).await.expect("get");
    assert_eq!(d.incident.title, "changed");
    assert_eq!(store.audit_head(t).await.expect("head"), head_mid);
    assert_ne!(head_before, head_mid);

    // Another tenant's scope does not reach it.
    let other = tenant(&store, "globex").await;
    let scoped = AlertAccess::unrestricted(Scope::single(other));
    let r = store.get_incident(&scoped, inc).await;
    assert!(matches!(r, Err(StoreError::NotFound)));
    let who_other = Acting {
        ctx: &c,
        access: &scoped,
        platform_tenant: other,
    };
    let r = store.delete_incident(&who_other, inc).await;
    assert!(matches!(r, Err(StoreError::NotFound)));
}
