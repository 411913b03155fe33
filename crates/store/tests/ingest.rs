//! Storing ingested alerts on whichever backend the suite runs on: deduplication by source id
//! and by fingerprint, under concurrency; observables; the audit record.

use bulwark_core::{Scope, TenantId};
use bulwark_normalize::{Source, normalize};
use bulwark_store::ingest::IncomingAlert;
use bulwark_store::testing::fresh;
use bulwark_store::{ChangeCtx, NewTenant, Store};
use serde_json::json;
use std::sync::Arc;

fn ctx() -> ChangeCtx {
    ChangeCtx {
        actor_kind: "api_key",
        actor_id: Some("key-1".into()),
        actor_name: Some("wazuh-prod".into()),
        request_id: None,
    }
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

fn wazuh(id: &str, srcip: &str) -> serde_json::Value {
    json!({
        "id": id,
        "timestamp": "2024-05-11T12:29:19.905+0000",
        "rule": {"level": 10, "description": "sshd: brute force trying to get access to the system.", "id": "5712", "mitre": {"id": ["T1110"]}},
        "agent": {"id": "001", "name": "web-01"},
        "data": {"srcip": srcip, "srcuser": "root"},
        "full_log": format!("Failed password for root from {srcip} port 22 ssh2")
    })
}

fn incoming(t: TenantId, source: Source, payload: serde_json::Value) -> IncomingAlert {
    IncomingAlert {
        tenant_id: t,
        alert: normalize(source, &payload).expect("normalize"),
        raw: payload.to_string(),
        received_at: bulwark_core::time::now(),
        actor: ctx(),
        triggers: Default::default(),
    }
}

const DAY: chrono::Duration = chrono::Duration::hours(24);

#[tokio::test]
async fn a_source_id_is_stored_once_and_counts_duplicates() {
    let db = fresh().await;
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let first = s
        .ingest(
            &[incoming(
                t,
                Source::Wazuh,
                wazuh("1715430559.1", "203.0.113.9"),
            )],
            DAY,
        )
        .await
        .expect("ingest");
    assert!(!first[0].duplicate);
    assert_eq!(first[0].duplicate_count, 0);
    assert_eq!(first[0].severity, "high");
    let again = s
        .ingest(
            &[
                incoming(t, Source::Wazuh, wazuh("1715430559.1", "203.0.113.9")),
                incoming(t, Source::Wazuh, wazuh("1715430559.1", "198.51.100.1")),
            ],
            DAY,
        )
        .await
        .expect("ingest");
    assert!(
        again
            .iter()
            .all(|o| o.duplicate && o.alert_id == first[0].alert_id)
    );
    assert_eq!(again[1].duplicate_count, 2);
    assert_eq!(s.alert_count(t).await.expect("count"), 1);

    // Same source id in another tenant, or from another source, is another alert.
    let other = tenant(s, "globex").await;
    let o = s
        .ingest(
            &[incoming(
                other,
                Source::Wazuh,
                wazuh("1715430559.1", "203.0.113.9"),
            )],
            DAY,
        )
        .await
        .expect("ingest");
    assert!(!o[0].duplicate);
    assert_ne!(o[0].alert_id, first[0].alert_id);

    // Observables: stored once per tenant, linked, private flagged; duplicates add no sightings.
    assert_eq!(
        s.observable_sightings(t, "ipv4", "203.0.113.9")
            .await
            .expect("obs"),
        Some((1, 1))
    );
    assert_eq!(
        s.observable_sightings(t, "ipv4", "198.51.100.1")
            .await
            .expect("obs"),
        None
    );
    // One ingested record per new alert in the audit trail, none for duplicates.
    let events = s
        .list_audit(
            &Scope::single(t),
            &bulwark_store::audit::AuditFilter {
                event_type: Some(bulwark_audit::EventType::AlertIngested),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("audit");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].record["actor"]["name"], "wazuh-prod");
}

#[tokio::test]
async fn sixty_four_concurrent_deliveries_leave_one_alert_and_one_id() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let t = tenant(&s, "acme").await;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.ingest(
                    &[incoming(t, Source::Wazuh, wazuh("race-1", "203.0.113.50"))],
                    DAY,
                )
                .await
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut firsts = 0;
    for task in tasks {
        let out = task
            .await
            .expect("join")
            .expect("no error under concurrency");
        ids.insert(out[0].alert_id);
        if !out[0].duplicate {
            firsts += 1;
        }
    }
    assert_eq!(ids.len(), 1, "every response names the same alert");
    assert_eq!(firsts, 1, "exactly one delivery created it");
    assert_eq!(s.alert_count(t).await.expect("count"), 1);
}

#[tokio::test]
async fn without_a_source_id_the_fingerprint_deduplicates_within_the_window() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let t = tenant(&s, "acme").await;
    let generic = |host: &str| json!({"title": "Suspicious PowerShell", "severity": "high", "hostname": host, "source_ip": "203.0.113.77"});
    let a = s
        .ingest(&[incoming(t, Source::Generic, generic("ws-1"))], DAY)
        .await
        .expect("ingest");
    let b = s
        .ingest(&[incoming(t, Source::Generic, generic("ws-1"))], DAY)
        .await
        .expect("ingest");
    assert!(b[0].duplicate);
    assert_eq!(a[0].alert_id, b[0].alert_id);
    let c = s
        .ingest(&[incoming(t, Source::Generic, generic("ws-2"))], DAY)
        .await
        .expect("ingest");
    assert!(!c[0].duplicate, "another host is another alert");

    // Outside the window: a new alert.
    let mut late = incoming(t, Source::Generic, generic("ws-1"));
    late.received_at = bulwark_core::time::now() + chrono::Duration::hours(25);
    let d = s.ingest(&[late], DAY).await.expect("ingest");
    assert!(!d[0].duplicate);

    // Concurrent deliveries without a source id also collapse to one.
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.ingest(&[incoming(t, Source::Generic, generic("ws-9"))], DAY)
                    .await
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        ids.insert(task.await.expect("join").expect("ingest")[0].alert_id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(s.alert_count(t).await.expect("count"), 4);
}

#[tokio::test]
async fn a_failing_batch_stores_nothing() {
    let db = fresh().await;
    let s = &db.store;
    let t = tenant(s, "acme").await;
    // The last alert names a tenant that does not exist: the whole batch rolls back.
    let mut no_source_id = incoming(t, Source::Generic, json!({"title": "no id", "host": "h1"}));
    no_source_id.alert.source_id = None;
    let batch = [
        no_source_id,
        incoming(t, Source::Wazuh, wazuh("ok-1", "203.0.113.1")),
        incoming(
            TenantId::new(),
            Source::Wazuh,
            wazuh("bad-1", "203.0.113.2"),
        ),
    ];
    assert!(s.ingest(&batch, DAY).await.is_err());
    assert_eq!(s.alert_count(t).await.expect("count"), 0);
    assert_eq!(
        s.observable_sightings(t, "ipv4", "203.0.113.1")
            .await
            .expect("obs"),
        None
    );
    // The writer's connection goes on: the good alerts alone are stored, both new.
    let out = s.ingest(&batch[..2], DAY).await.expect("the next batch");
    assert!(out.iter().all(|o| !o.duplicate));
    assert_eq!(s.alert_count(t).await.expect("count"), 2);
}

#[tokio::test]
async fn copies_without_a_source_id_inside_one_batch_fold_too() {
    let db = fresh().await;
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let g = |host: &str| {
        let mut a = incoming(
            t,
            Source::Generic,
            json!({"title": "Beacon", "severity": "low", "hostname": host, "source_ip": "203.0.113.80"}),
        );
        a.alert.source_id = None;
        a
    };
    let counts = |out: &[bulwark_store::ingest::IngestOutcome]| {
        out.iter()
            .map(|o| (o.duplicate, o.duplicate_count))
            .collect::<Vec<_>>()
    };
    let first = s
        .ingest(&[g("ws-1"), g("ws-2"), g("ws-1"), g("ws-1")], DAY)
        .await
        .expect("ingest");
    assert_eq!(
        counts(&first),
        [(false, 0), (false, 0), (true, 1), (true, 2)]
    );
    assert_eq!(first[0].alert_id, first[2].alert_id);
    assert_eq!(first[0].alert_id, first[3].alert_id);
    assert_ne!(first[0].alert_id, first[1].alert_id);
    // Copies matching alerts stored before count on from there.
    let second = s
        .ingest(&[g("ws-2"), g("ws-1"), g("ws-1")], DAY)
        .await
        .expect("ingest");
    assert_eq!(counts(&second), [(true, 1), (true, 3), (true, 4)]);
    assert_eq!(second[0].alert_id, first[1].alert_id);
    assert_eq!(second[1].alert_id, first[0].alert_id);
    assert_eq!(s.alert_count(t).await.expect("count"), 2);
}

#[tokio::test]
async fn large_batches_without_a_source_id_match_across_statement_chunks() {
    // More groups than one statement of the matching read (300), the insert (400) or the
    // update takes: every alert still finds its own stored copy, in batch order.
    let db = fresh().await;
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let g = |i: u32| {
        let mut a = incoming(
            t,
            Source::Generic,
            json!({"title": "Beacon", "severity": "low", "hostname": format!("ws-{i}"), "source_ip": "203.0.113.81"}),
        );
        a.alert.source_id = None;
        a
    };
    let first: Vec<IncomingAlert> = (0..900).map(g).collect();
    let stored = s.ingest(&first, DAY).await.expect("ingest");
    assert!(
        stored
            .iter()
            .all(|o| !o.duplicate && o.duplicate_count == 0)
    );
    let ids: std::collections::HashSet<_> = stored.iter().map(|o| o.alert_id).collect();
    assert_eq!(ids.len(), 900);
    // The same 900 in reverse order, each twice, and 100 new ones between them.
    let mut second = Vec::new();
    for i in (0..900).rev() {
        second.push(g(i));
        second.push(g(i));
        if i % 9 == 0 {
            second.push(g(1000 + i));
        }
    }
    let out = s.ingest(&second, DAY).await.expect("ingest");
    let mut k = 0;
    for i in (0..900u32).rev() {
        let want = stored[i as usize].alert_id;
        assert_eq!(out[k].alert_id, want, "copy of alert {i}");
        assert_eq!((out[k].duplicate, out[k].duplicate_count), (true, 1));
        assert_eq!(out[k + 1].alert_id, want);
        assert_eq!(
            (out[k + 1].duplicate, out[k + 1].duplicate_count),
            (true, 2)
        );
        k += 2;
        if i % 9 == 0 {
            assert!(!out[k].duplicate, "alert {} is new", 1000 + i);
            assert!(!ids.contains(&out[k].alert_id));
            k += 1;
        }
    }
    assert_eq!(k, out.len());
    assert_eq!(s.alert_count(t).await.expect("count"), 1000);
}

#[tokio::test]
async fn concurrent_batches_in_opposite_orders_do_not_deadlock() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let t = tenant(&s, "acme").await;
    // Ten alerts sharing observables pairwise; batches of them in opposite orders, many times.
    let payloads: Vec<_> = (0..10)
        .map(|i| wazuh(&format!("batch-{i}"), &format!("203.0.113.{}", i / 2)))
        .collect();
    let mut tasks = Vec::new();
    for round in 0..16 {
        let mut order: Vec<_> = payloads.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let batch: Vec<_> = order
                .into_iter()
                .map(|p| incoming(t, Source::Wazuh, p))
                .collect();
            s.ingest(&batch, DAY).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("no deadlock, no error");
    }
    assert_eq!(s.alert_count(t).await.expect("count"), 10);
    // The chain written by batched appends verifies: ten ingested records after the tenant's.
    let report = bulwark_store::audit::verify_tenant(
        s.as_ref(),
        t,
        &[],
        bulwark_store::audit::VerifyMode::Full,
    )
    .await
    .expect("verify");
    assert!(report.is_ok(), "{:?}", report.first_break);
    assert_eq!(report.last_seq, 11);
    // Each address appears in two alerts: two sightings, two links.
    assert_eq!(
        s.observable_sightings(t, "ipv4", "203.0.113.3")
            .await
            .expect("obs"),
        Some((2, 2))
    );
}

#[tokio::test]
async fn copies_inside_one_batch_fold_into_one_alert_in_arrival_order() {
    let db = fresh().await;
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let batch = [
        incoming(t, Source::Wazuh, wazuh("fold-1", "203.0.113.1")),
        incoming(t, Source::Wazuh, wazuh("fold-2", "203.0.113.2")),
        incoming(t, Source::Wazuh, wazuh("fold-1", "203.0.113.3")),
        incoming(t, Source::Generic, json!({"title": "no id", "host": "h1"})),
        incoming(t, Source::Wazuh, wazuh("fold-1", "203.0.113.4")),
    ];
    let out = s.ingest(&batch, DAY).await.expect("ingest");
    let fold: Vec<_> = [0, 2, 4].iter().map(|i| &out[*i]).collect();
    assert!(fold.iter().all(|o| o.alert_id == fold[0].alert_id));
    assert_eq!(
        fold.iter()
            .map(|o| (o.duplicate, o.duplicate_count))
            .collect::<Vec<_>>(),
        vec![(false, 0), (true, 1), (true, 2)]
    );
    assert!(!out[1].duplicate && !out[3].duplicate);
    assert_ne!(out[1].alert_id, out[0].alert_id);
    assert_eq!(s.alert_count(t).await.expect("count"), 3);
    // Only the stored copy's indicators are sighted; duplicates add none.
    assert_eq!(
        s.observable_sightings(t, "ipv4", "203.0.113.1")
            .await
            .expect("obs"),
        Some((1, 1))
    );
    assert_eq!(
        s.observable_sightings(t, "ipv4", "203.0.113.3")
            .await
            .expect("obs"),
        None
    );
    let later = s
        .ingest(
            &[incoming(t, Source::Wazuh, wazuh("fold-1", "203.0.113.1"))],
            DAY,
        )
        .await
        .expect("ingest");
    assert_eq!((later[0].duplicate, later[0].duplicate_count), (true, 3));
    assert_eq!(later[0].alert_id, fold[0].alert_id);
}

/// The queue reads a time window as an id range: that needs every new alert's first_seen to be
/// its id's millisecond, on both insert paths (by source id and by fingerprint).
#[tokio::test]
async fn first_seen_is_the_millisecond_of_the_alert_id() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let t = tenant(&s, "acme").await;
    let mut batch: Vec<IncomingAlert> = (0..20)
        .map(|i| incoming(t, Source::Wazuh, wazuh(&format!("w-{i}"), "203.0.113.9")))
        .collect();
    batch.push(incoming(
        t,
        Source::Generic,
        json!({"title": "No source id", "severity": "low", "hostname": "ws-3"}),
    ));
    let out = s.ingest(&batch, DAY).await.expect("ingest");
    let access = bulwark_core::AlertAccess::unrestricted(Scope::AllTenants);
    for o in &out {
        let alert = s.get_alert(&access, o.alert_id).await.expect("alert");
        assert_eq!(
            Some(alert.summary.first_seen),
            bulwark_core::ids::v7_time(o.alert_id),
            "{}",
            o.alert_id
        );
    }
}

/// `get_alerts` (what workers read for a claim of runs) gives each alert as `get_alert` does,
/// observables included, and only within the scope.
#[tokio::test]
async fn several_alerts_read_at_once_match_one_by_one_reads() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let acme = tenant(&s, "acme").await;
    let other = tenant(&s, "other").await;
    let out = s
        .ingest(
            &[
                incoming(acme, Source::Wazuh, wazuh("m-1", "203.0.113.9")),
                incoming(acme, Source::Wazuh, wazuh("m-2", "198.51.100.7")),
                incoming(other, Source::Wazuh, wazuh("m-3", "203.0.113.9")),
            ],
            DAY,
        )
        .await
        .expect("ingest");
    let ids: Vec<_> = out.iter().map(|o| o.alert_id).collect();
    let everyone = bulwark_core::AlertAccess::unrestricted(Scope::AllTenants);
    let all = s.get_alerts(&everyone, &ids).await.expect("alerts");
    assert_eq!(all.len(), 3);
    for a in &all {
        let one = s.get_alert(&everyone, a.summary.id).await.expect("alert");
        assert_eq!(
            serde_json::to_value(a).expect("json"),
            serde_json::to_value(&one).expect("json")
        );
        assert!(!a.observables.is_empty(), "observables are read too");
    }
    let acme_only = bulwark_core::AlertAccess::unrestricted(Scope::Tenants(vec![acme]));
    let mine = s.get_alerts(&acme_only, &ids).await.expect("alerts");
    let mut got: Vec<_> = mine.iter().map(|a| a.summary.id).collect();
    got.sort();
    let mut want = ids[..2].to_vec();
    want.sort();
    assert_eq!(got, want, "another tenant's alert is left out");
    assert!(
        s.get_alerts(&acme_only, &[])
            .await
            .expect("none")
            .is_empty()
    );
}

async fn enrichment_integration(store: &Store, t: TenantId, name: &str) -> uuid::Uuid {
    store
        .create_integration(
            &ctx(),
            &Scope::AllTenants,
            bulwark_store::integrations::IntegrationWrite {
                id: uuid::Uuid::now_v7(),
                tenant_id: t,
                type_name: "virustotal".into(),
                name: name.into(),
                description: None,
                config: json!({}),
                secrets: None,
                secret_fields: vec![],
                enabled: true,
                is_default: false,
                enrichment: true,
            },
        )
        .await
        .expect("integration")
        .id
}

/// The enrichment jobs queued so far (claimed, so a second call sees only new ones).
async fn enrichment_jobs(store: &Store) -> Vec<serde_json::Value> {
    store
        .claim_jobs(
            "test",
            &[bulwark_store::automation::JOB_ENRICHMENT],
            100,
            std::time::Duration::from_secs(600),
        )
        .await
        .expect("claim")
        .into_iter()
        .map(|j| j.payload)
        .collect()
}

fn queued_ids(jobs: &[serde_json::Value]) -> Vec<String> {
    let mut ids: Vec<String> = jobs
        .iter()
        .flat_map(|j| j["observables"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

async fn observable(
    store: &Store,
    t: TenantId,
    value: &str,
) -> bulwark_store::observables::Observable {
    let page = store
        .list_observables(
            &bulwark_core::AlertAccess::unrestricted(Scope::AllTenants),
            &bulwark_store::observables::ObservableFilter {
                tenant_id: Some(t),
                q: Some(value.into()),
                match_mode: bulwark_store::observables::MatchMode::Exact,
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    page.into_iter()
        .find(|o| o.value == value)
        .expect("observable")
}

#[tokio::test]
async fn new_public_observables_are_queued_for_enrichment_once_per_batch() {
    let db = fresh().await;
    let s = &db.store;
    let quiet = tenant(s, "quiet").await;
    let t = tenant(s, "acme").await;
    enrichment_integration(s, t, "vt").await;

    // A tenant without an enrichment integration queues nothing.
    s.ingest(
        &[incoming(quiet, Source::Wazuh, wazuh("q-1", "45.33.32.156"))],
        DAY,
    )
    .await
    .expect("ingest");
    assert!(enrichment_jobs(s).await.is_empty());

    // 50 alerts in one batch sharing a public and a private address: one job, with the public
    // observable only.
    let batch: Vec<_> = (0..50)
        .map(|i| incoming(t, Source::Wazuh, wazuh(&format!("a-{i}"), "45.33.32.156")))
        .collect();
    s.ingest(&batch, DAY).await.expect("ingest");
    let jobs = enrichment_jobs(s).await;
    let public = observable(s, t, "45.33.32.156").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(queued_ids(&jobs), [public.id.to_string()]);
    assert_eq!(jobs[0]["force"], false);

    // Concurrent batches carrying it again (and a new one): the new one is queued once, the
    // claimed one not again.
    let mut handles = Vec::new();
    for n in 0..8 {
        let s: Store = s.clone();
        handles.push(tokio::spawn(async move {
            let batch: Vec<_> = (0..5)
                .map(|i| {
                    incoming(
                        t,
                        Source::Wazuh,
                        wazuh(
                            &format!("c-{n}-{i}"),
                            if i % 2 == 0 {
                                "45.33.32.156"
                            } else {
                                "198.51.7.7"
                            },
                        ),
                    )
                })
                .collect();
            s.ingest(&batch, DAY).await.expect("ingest");
        }));
    }
    for h in handles {
        h.await.expect("join");
    }
    let second = observable(s, t, "198.51.7.7").await;
    let jobs = enrichment_jobs(s).await;
    assert_eq!(queued_ids(&jobs), [second.id.to_string()], "{jobs:?}");
}

#[tokio::test]
async fn lookups_are_claimed_once_cached_merged_and_retried_with_backoff() {
    use bulwark_store::enrichment::{LookupKey, LookupOutcome};
    let db = fresh().await;
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let vt = enrichment_integration(s, t, "vt").await;
    let gn = enrichment_integration(s, t, "gn").await;
    s.ingest(
        &[incoming(t, Source::Wazuh, wazuh("1", "45.33.32.156"))],
        DAY,
    )
    .await
    .expect("ingest");
    enrichment_jobs(s).await;
    let key = |id: uuid::Uuid, name: &str| LookupKey {
        tenant_id: t,
        kind: "ipv4".into(),
        value: "45.33.32.156".into(),
        integration_id: id,
        integration: name.into(),
        type_name: "virustotal".into(),
        action: "lookup_ip".into(),
    };
    let lease = std::time::Duration::from_secs(60);
    let k = key(vt, "vt");
    assert!(s.claim_lookup(&k, lease, false).await.expect("claim"));
    assert!(
        !s.claim_lookup(&k, lease, false).await.expect("held"),
        "one lookup at a time"
    );
    s.record_lookup(
        &k,
        LookupOutcome::Found {
            verdict: "malicious".into(),
            score: 73,
            result: json!({"malicious": 7}),
            ttl_secs: 3600,
        },
    )
    .await
    .expect("record");
    let o = observable(s, t, "45.33.32.156").await;
    assert_eq!(
        (o.verdict.as_deref(), o.reputation_score),
        (Some("malicious"), Some(73))
    );
    assert_eq!(o.verdict_origin.as_deref(), Some("enrichment"));
    assert_eq!(o.reputation_sources.len(), 1);
    assert_eq!(o.reputation_sources[0].integration, "vt");
    assert!(o.enriched_at.is_some());
    // Fresh: not looked up again, unless forced (a manual request).
    assert!(!s.claim_lookup(&k, lease, false).await.expect("fresh"));
    assert!(s.claim_lookup(&k, lease, true).await.expect("forced"));

    // A failing refresh keeps the answer and backs off.
    let retry = s
        .record_lookup(
            &k,
            LookupOutcome::Failed {
                error: "HTTP 503 from vt".into(),
                retryable: true,
            },
        )
        .await
        .expect("record")
        .expect("retry time");
    assert!(
        retry > chrono::Utc::now() + chrono::Duration::seconds(50),
        "{retry}"
    );
    let o = observable(s, t, "45.33.32.156").await;
    assert_eq!(o.verdict.as_deref(), Some("malicious"));
    let g = key(gn, "gn");
    assert!(s.claim_lookup(&g, lease, false).await.expect("claim"));
    let retry = s
        .record_lookup(
            &g,
            LookupOutcome::Failed {
                error: "HTTP 401: bad key".into(),
                retryable: false,
            },
        )
        .await
        .expect("record")
        .expect("retry time");
    assert!(
        retry > chrono::Utc::now() + chrono::Duration::minutes(59),
        "not retryable: an hour at least"
    );
    assert!(!s.claim_lookup(&g, lease, false).await.expect("backoff"));
    let detail = s
        .get_observable(
            &bulwark_core::AlertAccess::unrestricted(Scope::AllTenants),
            o.id,
            bulwark_store::observables::SightingOptions {
                limit: 10,
                incidents: false,
            },
        )
        .await
        .expect("detail");
    let results = detail.enrichment.expect("enrichment")["results"].clone();
    let gn_row = results
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["integration"] == "gn")
        .expect("gn");
    assert_eq!(
        (gn_row["status"].clone(), gn_row["attempts"].clone()),
        (json!("failed"), json!(1))
    );
    assert_eq!(gn_row["error"], "HTTP 401: bad key");

    // An analyst's verdict stands against later lookups; the sources still show.
    s.update_observable(
        &ctx(),
        &bulwark_core::AlertAccess::unrestricted(Scope::AllTenants),
        o.id,
        bulwark_store::observables::ObservablePatch {
            verdict: Some(Some("benign".into())),
            ..Default::default()
        },
    )
    .await
    .expect("patch");
    assert!(s.claim_lookup(&k, lease, true).await.expect("forced"));
    s.record_lookup(
        &k,
        LookupOutcome::Found {
            verdict: "malicious".into(),
            score: 90,
            result: json!({}),
            ttl_secs: 0,
        },
    )
    .await
    .expect("record");
    let o = observable(s, t, "45.33.32.156").await;
    assert_eq!(
        (o.verdict.as_deref(), o.verdict_origin.as_deref()),
        (Some("benign"), Some("analyst"))
    );
    assert_eq!(o.reputation_sources[0].score, 90);

    // The answer expired (TTL 0): the next sighting queues the observable again.
    s.ingest(
        &[incoming(t, Source::Wazuh, wazuh("2", "45.33.32.156"))],
        DAY,
    )
    .await
    .expect("ingest");
    assert_eq!(queued_ids(&enrichment_jobs(s).await), [o.id.to_string()]);
}

// ---------------------------------------------------------------------------------------------
// The dashboard's hourly roll-up (migration 0016) against exact counts

mod rollup {
    use super::*;
    use bulwark_core::AlertAccess;
    use bulwark_core::alert_change::AlertChange;
    use bulwark_core::triage::AlertStatus;
    use bulwark_store::Backend;
    use bulwark_store::alert_triage::ChangeRequest;
    use bulwark_store::dashboard::{Bucket, DashboardQuery, DashboardStats};
    use bulwark_store::testing::{exec_raw, requested_backend};
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use sqlx::Connection;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    fn pg() -> bool {
        requested_backend() == Backend::Postgres
    }

    fn admin() -> AlertAccess {
        AlertAccess {
            scope: Scope::AllTenants,
            bypass_tags: true,
            subjects: vec![],
        }
    }

    fn base() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .single()
            .expect("date")
    }

    fn id_lit(u: Uuid) -> String {
        if pg() {
            format!("'{u}'")
        } else {
            format!("X'{}'", u.simple())
        }
    }

    /// A timestamp as both backends store it (SQLite: RFC 3339 text, as sqlx writes it).
    fn ts(t: DateTime<Utc>) -> String {
        format!("'{}'", t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
    }

    #[derive(Debug, sqlx::FromRow)]
    struct Row {
        tenant_id: Uuid,
        source: String,
        severity: String,
        status: String,
        first_seen: DateTime<Utc>,
        acknowledged_at: Option<DateTime<Utc>>,
        closed_at: Option<DateTime<Utc>>,
        tags: sqlx::types::Json<Vec<String>>,
    }

    /// The alerts (not deleted) as stored, read past the store.
    async fn rows(url: &str) -> Vec<Row> {
        const SQL: &str = "SELECT tenant_id, source, severity, status, first_seen, acknowledged_at, closed_at, tags \
                           FROM alerts WHERE deleted_at IS NULL";
        if pg() {
            let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query_as(SQL).fetch_all(&mut c).await.expect("rows")
        } else {
            let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
            sqlx::query_as(SQL).fetch_all(&mut c).await.expect("rows")
        }
    }

    /// What the dashboard must say, computed from the rows by its definitions.
    fn expected(rows: &[Row], q: &DashboardQuery) -> DashboardStats {
        let inr = |t: DateTime<Utc>| t >= q.since && t < q.until;
        let mut by_severity: BTreeMap<String, i64> = ["critical", "high", "medium", "low", "info"]
            .iter()
            .map(|s| (s.to_string(), 0))
            .collect();
        let mut by_status: BTreeMap<String, i64> = AlertStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        let mut by_source: BTreeMap<String, i64> = BTreeMap::new();
        let mut by_tenant: BTreeMap<Uuid, i64> = BTreeMap::new();
        let mut series: BTreeMap<DateTime<Utc>, i64> = BTreeMap::new();
        let (mut total, mut closed) = (0, 0);
        let (mut ack_n, mut ack_s, mut res_n, mut res_s) = (0i64, 0f64, 0i64, 0f64);
        for r in rows {
            if inr(r.first_seen) {
                total += 1;
                *by_severity.entry(r.severity.clone()).or_default() += 1;
                *by_status.entry(r.status.clone()).or_default() += 1;
                *by_source.entry(r.source.clone()).or_default() += 1;
                *by_tenant.entry(r.tenant_id).or_default() += 1;
                *series.entry(q.bucket.floor(r.first_seen)).or_default() += 1;
                if matches!(r.status.as_str(), "resolved" | "false_positive") {
                    closed += 1;
                }
            }
            if let Some(a) = r.acknowledged_at.filter(|a| inr(*a)) {
                ack_n += 1;
                ack_s += (a - r.first_seen).num_microseconds().expect("µs") as f64 / 1e6;
            }
            if let Some(c) = r.closed_at.filter(|c| inr(*c))
                && matches!(r.status.as_str(), "resolved" | "false_positive")
            {
                res_n += 1;
                res_s += (c - r.first_seen).num_microseconds().expect("µs") as f64 / 1e6;
            }
        }
        let mean = |s: f64, n: i64| (n > 0).then(|| s / n as f64);
        let mut by_tenant: Vec<_> = by_tenant.into_iter().collect();
        by_tenant.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        DashboardStats {
            since: q.since,
            until: q.until,
            bucket: q.bucket,
            total,
            open: total - closed,
            closed,
            by_severity,
            by_status,
            by_source,
            by_tenant: by_tenant
                .into_iter()
                .map(|(t, count)| bulwark_store::dashboard::TenantCount {
                    tenant_id: TenantId(t),
                    count,
                })
                .collect(),
            mtta: bulwark_store::dashboard::MeanTime {
                mean_seconds: mean(ack_s, ack_n),
                samples: ack_n,
            },
            mttr: bulwark_store::dashboard::MeanTime {
                mean_seconds: mean(res_s, res_n),
                samples: res_n,
            },
            // Only the non-empty points are compared (below).
            series: series
                .into_iter()
                .map(|(start, count)| bulwark_store::dashboard::SeriesPoint {
                    start,
                    count,
                    by_severity: BTreeMap::new(),
                })
                .collect(),
        }
    }

    fn assert_same(got: &DashboardStats, want: &DashboardStats, what: &str) {
        assert_eq!(
            (got.total, got.open, got.closed),
            (want.total, want.open, want.closed),
            "{what}: totals"
        );
        assert_eq!(got.by_severity, want.by_severity, "{what}: by_severity");
        assert_eq!(got.by_status, want.by_status, "{what}: by_status");
        assert_eq!(got.by_source, want.by_source, "{what}: by_source");
        assert_eq!(got.by_tenant, want.by_tenant, "{what}: by_tenant");
        let points: Vec<_> = got
            .series
            .iter()
            .filter(|p| p.count != 0)
            .map(|p| (p.start, p.count))
            .collect();
        let want_points: Vec<_> = want.series.iter().map(|p| (p.start, p.count)).collect();
        assert_eq!(points, want_points, "{what}: series");
        for p in &got.series {
            assert_eq!(
                p.by_severity.values().sum::<i64>(),
                p.count,
                "{what}: point {}",
                p.start
            );
        }
        for (g, w, name) in [
            (&got.mtta, &want.mtta, "mtta"),
            (&got.mttr, &want.mttr, "mttr"),
        ] {
            assert_eq!(g.samples, w.samples, "{what}: {name} samples");
            match (g.mean_seconds, w.mean_seconds) {
                (None, None) => {}
                (Some(a), Some(b)) => assert!((a - b).abs() < 0.002, "{what}: {name} {a} vs {b}"),
                other => panic!("{what}: {name} {other:?}"),
            }
        }
    }

    fn queries(t: Option<TenantId>) -> Vec<(String, DashboardQuery)> {
        let b = base();
        let h = |n: i64| Duration::hours(n);
        let m = |n: i64| Duration::minutes(n);
        let mut out = Vec::new();
        for (name, since, until, bucket) in [
            ("aligned, 3 days, daily", b - h(24), b + h(48), Bucket::Day),
            ("aligned, 2 days, hourly", b, b + h(48), Bucket::Hour),
            (
                "unaligned ends, hourly",
                b + m(30),
                b + h(40) + m(15),
                Bucket::Hour,
            ),
            (
                "unaligned ends, daily",
                b + m(1) + Duration::milliseconds(500),
                b + h(30) + m(59),
                Bucket::Day,
            ),
            (
                "inside one hour",
                b + h(5) + m(10),
                b + h(5) + m(50),
                Bucket::Hour,
            ),
            (
                "under two hours, no whole hour",
                b + h(5) + m(10),
                b + h(6) + m(50),
                Bucket::Hour,
            ),
            ("wide", b - h(24 * 30), b + h(24 * 30), Bucket::Day),
            (
                "up to now",
                b - h(24 * 30),
                bulwark_core::time::now() + m(5),
                Bucket::Day,
            ),
            (
                // The current hour whole: alerts just ingested come from the roll-ups.
                "up to the next whole hour",
                b - h(24 * 30),
                Bucket::Hour.floor(bulwark_core::time::now()) + h(1),
                Bucket::Day,
            ),
        ] {
            out.push((
                name.to_string(),
                DashboardQuery {
                    tenant_id: t,
                    since,
                    until,
                    bucket,
                },
            ));
        }
        out
    }

    /// The restricted tenant's `untagged` setting in a round of checks; `Unknown` is a value
    /// the code does not know, written past the store (fails closed).
    #[derive(Debug, Clone, Copy)]
    enum Policy {
        VisibleToAll,
        AdminOnly,
        /// Untagged alerts carry the default tag `dflt`, which the analyst may see.
        DefaultAllowed,
        /// Untagged alerts carry the default tag `nobody`, which the analyst may not see.
        DefaultDenied,
        Unknown,
    }

    const POLICIES: [Policy; 5] = [
        Policy::VisibleToAll,
        Policy::AdminOnly,
        Policy::DefaultAllowed,
        Policy::DefaultDenied,
        Policy::Unknown,
    ];

    /// Tags an analyst of the restricted tenant is allowed.
    const ALLOWED: [&str; 2] = ["soc", "dflt"];

    /// Whether the analyst sees an alert of the restricted tenant with `tags`, by the rules
    /// of docs/triage.md (written out here, not taken from the store).
    fn visible(p: Policy, tags: &[String]) -> bool {
        match p {
            Policy::Unknown => false,
            _ if !tags.is_empty() => tags.iter().any(|t| ALLOWED.contains(&t.as_str())),
            Policy::VisibleToAll | Policy::DefaultAllowed => true,
            Policy::AdminOnly | Policy::DefaultDenied => false,
        }
    }

    /// Sets the restricted tenant's tag rules for `p`.
    async fn restrict(s: &Store, url: &str, t: TenantId, p: Policy) {
        use bulwark_store::tag_access::{TagAccessConfig, TagRule, Untagged};
        let (untagged, default_tag) = match p {
            Policy::VisibleToAll | Policy::Unknown => (Untagged::VisibleToAll, None),
            Policy::AdminOnly => (Untagged::AdminOnly, None),
            Policy::DefaultAllowed => (Untagged::DefaultTag, Some("dflt".to_string())),
            Policy::DefaultDenied => (Untagged::DefaultTag, Some("nobody".to_string())),
        };
        let rules = ALLOWED
            .iter()
            .map(|tag| TagRule {
                subject: "role:analyst".into(),
                tag: tag.to_string(),
            })
            .collect();
        s.set_tag_access(
            &ChangeCtx::system("test"),
            &Scope::AllTenants,
            t,
            &TagAccessConfig {
                enabled: true,
                untagged,
                default_tag,
                rules,
            },
        )
        .await
        .expect("tag access");
        if let Policy::Unknown = p {
            sql(
                url,
                &format!(
                    "UPDATE tag_access_settings SET untagged = 'visible_to_some' WHERE tenant_id = {}",
                    id_lit(t.0)
                ),
            )
            .await;
        }
    }

    fn analyst(tenants: &[TenantId]) -> AlertAccess {
        AlertAccess {
            scope: Scope::Tenants(tenants.to_vec()),
            bypass_tags: false,
            subjects: vec!["role:analyst".into()],
        }
    }

    /// Every query for every tenant filter, as an admin (the tenant-wide roll-up) and, for each
    /// `untagged` policy of the first tenant, as its tag-restricted analyst (the per-tag-set
    /// roll-up), against the numbers computed from the rows.
    async fn check(s: &Store, url: &str, tenants: &[TenantId], stage: &str) {
        let rows = rows(url).await;
        let restricted = tenants[0];
        let copy = |r: &Row| Row {
            tenant_id: r.tenant_id,
            source: r.source.clone(),
            severity: r.severity.clone(),
            status: r.status.clone(),
            first_seen: r.first_seen,
            acknowledged_at: r.acknowledged_at,
            closed_at: r.closed_at,
            tags: r.tags.clone(),
        };
        let filters: Vec<Option<TenantId>> = std::iter::once(None)
            .chain(tenants.iter().copied().map(Some))
            .collect();
        for &t in &filters {
            for (name, q) in queries(t) {
                let got = s.dashboard_stats(&admin(), &q).await.expect("stats");
                let subset: Vec<Row> = rows
                    .iter()
                    .filter(|r| t.is_none_or(|t| r.tenant_id == t.0))
                    .map(copy)
                    .collect();
                assert_same(
                    &got,
                    &expected(&subset, &q),
                    &format!("{stage}, {name}, tenant {t:?}"),
                );
            }
        }
        for p in POLICIES {
            restrict(s, url, restricted, p).await;
            for &t in &filters {
                for (name, q) in queries(t) {
                    let got = s
                        .dashboard_stats(&analyst(tenants), &q)
                        .await
                        .expect("stats");
                    let subset: Vec<Row> = rows
                        .iter()
                        .filter(|r| t.is_none_or(|t| r.tenant_id == t.0))
                        .filter(|r| r.tenant_id != restricted.0 || visible(p, &r.tags))
                        .map(copy)
                        .collect();
                    assert_same(
                        &got,
                        &expected(&subset, &q),
                        &format!("{stage}, {name}, tenant {t:?}, analyst under {p:?}"),
                    );
                }
            }
        }
    }

    /// Tag sets the alerts are ingested with: untagged, allowed, hidden, mixed, the default
    /// tag, and the same set in another order.
    const TAG_SETS: [&[&str]; 7] = [
        &[],
        &["soc"],
        &["secret"],
        &["secret", "soc"],
        &["dflt"],
        &["other", "secret"],
        &["soc", "secret"],
    ];

    fn generic(n: usize, severity: &str) -> serde_json::Value {
        json!({"title": format!("alert {n}"), "severity": severity, "source_id": format!("g-{n}"),
               "tags": TAG_SETS[n % TAG_SETS.len()]})
    }

    async fn sql(url: &str, q: &str) {
        exec_raw(url, q)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
    }

    /// The restricted analyst's whole hours find the tenant's tag sets by walking the tag-set
    /// index while the tenant has at most `TAG_SET_WALK_CAP` of them, and from the range's
    /// roll-up rows beyond: exact on both sides of the cap, for every `untagged` policy.
    #[tokio::test]
    async fn the_rollup_per_tag_set_is_exact_on_both_sides_of_the_walk_cap() {
        use bulwark_store::dashboard::TAG_SET_WALK_CAP;
        let db = fresh().await;
        let s = &db.store;
        let tenants = [tenant(s, "acme").await, tenant(s, "globex").await];
        let cap = usize::try_from(TAG_SET_WALK_CAP).expect("cap");
        // Distinct tag sets per alert (one in ten untagged): allowed, hidden, mixed.
        let payload = |n: usize| {
            let tags: Vec<String> = match n % 10 {
                0 => vec![],
                1 | 4 | 7 => vec!["soc".into(), format!("t{n}")],
                2 | 5 => vec![format!("t{n}")],
                _ => vec![format!("t{n}"), "zz".into()],
            };
            let severity = ["critical", "high", "low"][n % 3];
            json!({"title": format!("tagged {n}"), "severity": severity,
                   "source_id": format!("ts-{n}"), "tags": tags})
        };
        let ingest = |range: std::ops::Range<usize>| {
            range
                .map(|n| incoming(tenants[0], Source::Generic, payload(n)))
                .collect::<Vec<_>>()
        };
        // The other tenant's alerts are not restricted.
        let other: Vec<IncomingAlert> = (0..5)
            .map(|n| incoming(tenants[1], Source::Generic, generic(n, "high")))
            .collect();
        s.ingest(&other, DAY).await.expect("ingest other");
        // Under the cap: the walk.
        let below = cap - 40;
        s.ingest(&ingest(0..below), DAY).await.expect("ingest");
        check(s, &db.url, &tenants, "tag sets under the walk cap").await;
        // Over it: the range's rows.
        s.ingest(&ingest(below..cap + 60), DAY)
            .await
            .expect("ingest more");
        check(s, &db.url, &tenants, "tag sets over the walk cap").await;
    }

    #[tokio::test]
    async fn the_rollup_matches_exact_counts_through_ingest_triage_and_deletes() {
        let db = fresh().await;
        let s = &db.store;
        let tenants = [tenant(s, "acme").await, tenant(s, "globex").await];
        let severities = ["critical", "high", "medium", "low", "info"];
        // 60 alerts over two tenants and two sources, some copies in the same batch and in a
        // later one (duplicates must not count).
        let mut batch = Vec::new();
        for n in 0..60 {
            let t = tenants[n % 2];
            if n % 3 == 0 {
                batch.push(incoming(
                    t,
                    Source::Wazuh,
                    wazuh(&format!("w-{n}"), "203.0.113.9"),
                ));
            } else {
                batch.push(incoming(t, Source::Generic, generic(n, severities[n % 5])));
            }
        }
        batch.push(incoming(tenants[1], Source::Generic, generic(1, "info")));
        let out = s.ingest(&batch, DAY).await.expect("ingest");
        assert!(out[60].duplicate);
        let again: Vec<IncomingAlert> = (0..10)
            .map(|n| {
                incoming(
                    tenants[(n * 3 + 1) % 2],
                    Source::Generic,
                    generic(n * 3 + 1, "low"),
                )
            })
            .collect();
        let dup = s.ingest(&again, DAY).await.expect("ingest duplicates");
        assert!(dup.iter().all(|o| o.duplicate));
        let ids: Vec<Uuid> = out[..60].iter().map(|o| o.alert_id).collect();
        check(s, &db.url, &tenants, "after ingest").await;

        // Spread over four days (sub-second first_seen included); the triggers move the counts.
        for (i, id) in ids.iter().enumerate() {
            let at = base() - Duration::hours(24)
                + Duration::minutes(97 * i as i64)
                + Duration::microseconds(123_457 * (i as i64 % 3));
            sql(
                &db.url,
                &format!(
                    "UPDATE alerts SET first_seen = {} WHERE id = {}",
                    ts(at),
                    id_lit(*id)
                ),
            )
            .await;
        }
        check(s, &db.url, &tenants, "after moving first_seen").await;

        // Triage through the store: acknowledge (triaged), change severity.
        let ctx = ChangeCtx::system("test");
        for id in ids.iter().step_by(4) {
            let req = ChangeRequest {
                change: AlertChange {
                    status: Some(AlertStatus::Triaged),
                    ..Default::default()
                },
                assignee_scope: None,
                claim: None,
            };
            s.update_alert(&ctx, &admin(), *id, &req)
                .await
                .expect("triage");
        }
        for id in ids.iter().skip(1).step_by(5) {
            let req = ChangeRequest {
                change: AlertChange {
                    severity: Some("critical".into()),
                    ..Default::default()
                },
                assignee_scope: None,
                claim: None,
            };
            s.update_alert(&ctx, &admin(), *id, &req)
                .await
                .expect("severity");
        }
        // Acknowledged and closed at chosen times, some reopened, as direct updates.
        for (i, id) in ids.iter().enumerate().skip(2).step_by(3) {
            let ack = base() + Duration::minutes(41 * i as i64);
            let closed = ack + Duration::minutes(20 + i as i64);
            let status = if i % 2 == 0 {
                "resolved"
            } else {
                "false_positive"
            };
            sql(
                &db.url,
                &format!(
                    "UPDATE alerts SET status = '{status}', acknowledged_at = {}, closed_at = {} WHERE id = {}",
                    ts(ack),
                    ts(closed),
                    id_lit(*id)
                ),
            )
            .await;
        }
        for id in ids.iter().skip(2).step_by(9) {
            sql(
                &db.url,
                &format!(
                    "UPDATE alerts SET status = 'in_progress' WHERE id = {}",
                    id_lit(*id)
                ),
            )
            .await;
        }
        check(s, &db.url, &tenants, "after triage").await;

        // Tag edits: replaced, added to, removed from (through the store, as an admin), and
        // set past the store; untagged alerts get tags and tagged ones lose them.
        for (i, id) in ids.iter().enumerate().step_by(2) {
            let change = match i % 8 {
                0 => AlertChange {
                    tags: Some(vec!["soc".into()]),
                    ..Default::default()
                },
                2 => AlertChange {
                    add_tags: vec!["secret".into()],
                    ..Default::default()
                },
                4 => AlertChange {
                    tags: Some(vec![]),
                    ..Default::default()
                },
                _ => AlertChange {
                    remove_tags: vec!["soc".into(), "dflt".into()],
                    add_tags: vec!["zeta".into()],
                    ..Default::default()
                },
            };
            let req = ChangeRequest {
                change,
                assignee_scope: None,
                claim: None,
            };
            s.update_alert(&ctx, &admin(), *id, &req)
                .await
                .expect("tags");
        }
        for id in ids.iter().skip(1).step_by(6) {
            sql(
                &db.url,
                &format!(
                    "UPDATE alerts SET tags = '[\"dflt\",\"secret\"]', status = 'escalated' WHERE id = {}",
                    id_lit(*id)
                ),
            )
            .await;
        }
        check(s, &db.url, &tenants, "after tag edits").await;

        // Deletes: soft through the store, and a row removed outright.
        for id in ids.iter().skip(3).step_by(7) {
            s.delete_alert(&ctx, &admin(), *id).await.expect("delete");
        }
        let gone = ids[59];
        sql(
            &db.url,
            &format!(
                "DELETE FROM alert_observables WHERE alert_id = {}",
                id_lit(gone)
            ),
        )
        .await;
        sql(
            &db.url,
            &format!(
                "DELETE FROM alert_activities WHERE alert_id = {}",
                id_lit(gone)
            ),
        )
        .await;
        sql(
            &db.url,
            &format!("DELETE FROM alerts WHERE id = {}", id_lit(gone)),
        )
        .await;
        // A soft-deleted alert brought back.
        sql(
            &db.url,
            &format!(
                "UPDATE alerts SET deleted_at = NULL WHERE id = {}",
                id_lit(ids[3])
            ),
        )
        .await;
        check(s, &db.url, &tenants, "after deletes").await;

        // And a rebuild from scratch gives the same numbers.
        s.rebuild_dashboard_rollup().await.expect("rebuild");
        check(s, &db.url, &tenants, "after a rebuild").await;

        // The restricted analyst's whole hours do come from the per-tag-set roll-up, over the
        // tag sets they may see only: a row planted in it for a visible set counts, one for a
        // hidden set does not.
        restrict(s, &db.url, tenants[0], Policy::AdminOnly).await;
        let q = DashboardQuery {
            tenant_id: Some(tenants[0]),
            since: base(),
            until: base() + Duration::hours(48),
            bucket: Bucket::Hour,
        };
        let before = s
            .dashboard_stats(&analyst(&tenants), &q)
            .await
            .expect("stats");
        let hour = bulwark_store::dashboard::hour_index(base() + Duration::hours(3));
        for tags in ["[\"secret\"]", "[]", "[\"other\",\"soc\"]"] {
            sql(
                &db.url,
                &format!(
                    "INSERT INTO alert_hourly_tags (tenant_id, hour, source, tags, sev_info, st_new) \
                     VALUES ({}, {hour}, 'planted', '{tags}', 1000, 1000)",
                    id_lit(tenants[0].0)
                ),
            )
            .await;
        }
        let after = s
            .dashboard_stats(&analyst(&tenants), &q)
            .await
            .expect("stats");
        assert_eq!(after.total, before.total + 1000, "{after:?}");
        assert_eq!(after.by_source.get("planted"), Some(&1000));
    }
}

fn ingest_key(
    t: TenantId,
    prefix: &str,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> bulwark_store::NewApiKey {
    bulwark_store::NewApiKey {
        tenant_id: t,
        name: format!("key {prefix}"),
        prefix: prefix.into(),
        digest: vec![7; 32],
        scopes: vec![bulwark_core::ApiKeyScope::WebhooksIngest],
        source: None,
        expires_at,
        created_by: None,
        signing_secret: None,
        accept_key_signature: false,
        rate_limit: None,
    }
}

/// The ingest writer hands the store each alert's key; alerts of a key revoked or expired
/// since its request was authenticated are not stored, their neighbours are.
#[tokio::test]
async fn alerts_of_an_unusable_key_are_left_out_of_the_batch() {
    let db = fresh().await;
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let good = s
        .create_api_key(&ctx(), ingest_key(t, "bwk_good0001", None))
        .await
        .expect("key");
    let revoked = s
        .create_api_key(&ctx(), ingest_key(t, "bwk_revk0001", None))
        .await
        .expect("key");
    let past = bulwark_core::time::now() - chrono::Duration::seconds(1);
    let expired = s
        .create_api_key(&ctx(), ingest_key(t, "bwk_expd0001", Some(past)))
        .await
        .expect("key");
    s.revoke_api_key(
        &ctx(),
        &Scope::AllTenants,
        revoked.id,
        bulwark_core::time::now(),
    )
    .await
    .expect("revoke");
    let batch = [
        incoming(t, Source::Wazuh, wazuh("k.1", "203.0.113.1")),
        incoming(t, Source::Wazuh, wazuh("k.2", "203.0.113.2")),
        incoming(t, Source::Wazuh, wazuh("k.3", "203.0.113.3")),
        incoming(t, Source::Wazuh, wazuh("k.4", "203.0.113.4")),
        incoming(t, Source::Wazuh, wazuh("k.5", "203.0.113.5")),
    ];
    let keys = [
        Some(good.id),
        Some(revoked.id),
        None,
        Some(expired.id),
        Some(good.id),
    ];
    let out = s
        .ingest_delivered(&batch, &keys, DAY)
        .await
        .expect("ingest");
    let stored: Vec<bool> = out.iter().map(Option::is_some).collect();
    assert_eq!(stored, [true, false, true, false, true]);
    assert_eq!(s.alert_count(t).await.expect("count"), 3);
    // The kept alerts' outcomes are their own, in order.
    let again = s
        .ingest_delivered(&batch[4..], &keys[4..], DAY)
        .await
        .expect("again");
    let first = out[4].as_ref().expect("kept");
    let dup = again[0].as_ref().expect("kept");
    assert_eq!(dup.alert_id, first.alert_id);
    assert!(dup.duplicate);
    // A batch of only unusable keys stores nothing and fails nothing.
    let none = s
        .ingest_delivered(&batch[1..2], &keys[1..2], DAY)
        .await
        .expect("none");
    assert_eq!(none, [None]);
    assert_eq!(s.alert_count(t).await.expect("count"), 3);
}
