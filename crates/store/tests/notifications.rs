//! Notification rules and deliveries on whichever backend the suite runs on: tenant scoping,
//! deliveries queued with their jobs in the event's transaction (ingest, incidents), the
//! severity filter, SLA warnings once per (rule, incident), attempts, failure and retry.

use bulwark_core::{AlertAccess, Scope, TenantId};
use bulwark_normalize::{Source, normalize};
use bulwark_store::incidents::{Acting, IncidentPatch, NewIncident};
use bulwark_store::ingest::IncomingAlert;
use bulwark_store::integrations::IntegrationWrite;
use bulwark_store::notifications::{AttemptOutcome, DeliveryFilter, RuleWrite};
use bulwark_store::testing::{fresh, tenant};
use bulwark_store::{ChangeCtx, Store, StoreError};
use serde_json::json;
use uuid::Uuid;

fn ctx() -> ChangeCtx {
    ChangeCtx::system("test")
}

async fn channel(store: &Store, t: TenantId, name: &str) -> Uuid {
    let id = Uuid::now_v7();
    store
        .create_integration(
            &ctx(),
            &Scope::AllTenants,
            IntegrationWrite {
                id,
                tenant_id: t,
                type_name: "webhook".into(),
                name: name.into(),
                description: None,
                config: json!({}),
                secrets: None,
                secret_fields: vec![],
                enabled: true,
                is_default: false,
                enrichment: false,
            },
        )
        .await
        .expect("integration");
    id
}

fn rule(t: TenantId, integration: Uuid, name: &str, event: &str) -> RuleWrite {
    RuleWrite {
        id: Uuid::now_v7(),
        tenant_id: t,
        name: name.into(),
        event: event.into(),
        min_severity: None,
        sla_minutes: None,
        warn_minutes: None,
        integration_id: integration,
        title: "{{ event }}".into(),
        template: "x".into(),
        enabled: true,
    }
}

fn wazuh(id: &str, level: u32) -> serde_json::Value {
    json!({
        "id": id,
        "timestamp": "2024-05-11T12:29:19.905+0000",
        "rule": {"level": level, "description": format!("alert {id}"), "id": "5712"},
        "agent": {"id": "001", "name": "web-01"},
        "data": {"srcip": "203.0.113.9"}
    })
}

fn incoming(t: TenantId, payload: serde_json::Value) -> IncomingAlert {
    IncomingAlert {
        tenant_id: t,
        alert: normalize(Source::Wazuh, &payload).expect("normalize"),
        raw: payload.to_string(),
        received_at: bulwark_core::time::now(),
        actor: ctx(),
        triggers: Default::default(),
    }
}

async fn deliveries(store: &Store, scope: &Scope) -> Vec<bulwark_store::notifications::Delivery> {
    store
        .list_notification_deliveries(
            scope,
            &DeliveryFilter {
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .expect("deliveries")
}

#[tokio::test]
async fn rules_are_scoped_to_their_tenant_and_need_its_channel() {
    let db = fresh().await;
    let s = &db.store;
    let a = tenant(s, "a").await;
    let b = tenant(s, "b").await;
    let ch_a = channel(s, a, "hook").await;
    let ch_b = channel(s, b, "hook").await;
    let only_a = Scope::Tenants(vec![a]);
    let only_b = Scope::Tenants(vec![b]);
    let r = s
        .create_notification_rule(&ctx(), &only_a, rule(a, ch_a, "r1", "alert.created"))
        .await
        .expect("create");
    assert_eq!(r.tenant_id, a);
    assert!(r.enabled);
    // Another tenant's channel, another tenant's scope, a taken name: refused.
    let err = s
        .create_notification_rule(&ctx(), &only_a, rule(a, ch_b, "r2", "alert.created"))
        .await;
    assert!(
        matches!(
            err,
            Err(StoreError::Invalid {
                field: "integration_id",
                ..
            })
        ),
        "{err:?}"
    );
    let err = s
        .create_notification_rule(&ctx(), &only_b, rule(a, ch_a, "r3", "alert.created"))
        .await;
    assert!(
        matches!(
            err,
            Err(StoreError::Invalid {
                field: "tenant_id",
                ..
            })
        ),
        "{err:?}"
    );
    let err = s
        .create_notification_rule(&ctx(), &only_a, rule(a, ch_a, "r1", "alert.created"))
        .await;
    assert!(
        matches!(err, Err(StoreError::Conflict { field: "name" })),
        "{err:?}"
    );

    assert_eq!(
        s.list_notification_rules(&only_a, None)
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(
        s.list_notification_rules(&only_b, None)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(matches!(
        s.get_notification_rule(&only_b, r.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_notification_rule(&ctx(), &only_b, r.id).await,
        Err(StoreError::NotFound)
    ));
    let mut w = rule(a, ch_a, "renamed", "incident.created");
    w.id = r.id;
    w.enabled = false;
    assert!(matches!(
        s.update_notification_rule(&ctx(), &only_b, w.clone()).await,
        Err(StoreError::NotFound)
    ));
    let u = s
        .update_notification_rule(&ctx(), &only_a, w)
        .await
        .expect("update");
    assert_eq!(
        (u.name.as_str(), u.event.as_str(), u.enabled),
        ("renamed", "incident.created", false)
    );
    s.delete_notification_rule(&ctx(), &only_a, r.id)
        .await
        .expect("delete");
    assert!(
        s.list_notification_rules(&only_a, None)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn new_alerts_queue_deliveries_and_jobs_in_the_ingest_transaction() {
    let db = fresh().await;
    let s = &db.store;
    let a = tenant(s, "a").await;
    let b = tenant(s, "b").await;
    let ch = channel(s, a, "hook").await;
    let mut high = rule(a, ch, "high", "alert.created");
    high.min_severity = Some("high".into());
    s.create_notification_rule(&ctx(), &Scope::AllTenants, high)
        .await
        .expect("rule");
    let mut off = rule(a, ch, "off", "alert.created");
    off.enabled = false;
    s.create_notification_rule(&ctx(), &Scope::AllTenants, off)
        .await
        .expect("rule");
    let window = chrono::Duration::hours(24);
    // One batch: a critical and a low alert in tenant a, a critical one in tenant b (no rule).
    let out = s
        .ingest(
            &[
                incoming(a, wazuh("c1", 12)),
                incoming(a, wazuh("l1", 3)),
                incoming(b, wazuh("c2", 12)),
            ],
            window,
        )
        .await
        .expect("ingest");
    let ds = deliveries(s, &Scope::AllTenants).await;
    assert_eq!(ds.len(), 1, "{ds:?}");
    let d = &ds[0];
    assert_eq!(d.tenant_id, a);
    assert_eq!(d.event, "alert.created");
    assert_eq!(d.status, "queued");
    assert_eq!(
        d.subject_id.as_deref(),
        Some(out[0].alert_id.to_string().as_str())
    );
    assert_eq!(d.context["alert"]["title"], "alert c1");
    assert_eq!(d.context["alert"]["id"], json!(out[0].alert_id));
    assert_eq!(d.context["rule"]["name"], "high");
    // Its job is there, naming it.
    let jobs = s
        .claim_jobs(
            "w",
            &["notification"],
            10,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].payload["delivery"], json!(d.id));
    assert_eq!(jobs[0].tenant_id, Some(a));
    // A duplicate is not a new alert: nothing more.
    s.ingest(&[incoming(a, wazuh("c1", 12))], window)
        .await
        .expect("ingest");
    assert_eq!(deliveries(s, &Scope::AllTenants).await.len(), 1);
    // Tenant b sees none of it.
    assert!(deliveries(s, &Scope::Tenants(vec![b])).await.is_empty());
    assert!(matches!(
        s.get_notification_delivery(&Scope::Tenants(vec![b]), d.id)
            .await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn incidents_notify_on_create_and_change_and_sla_warnings_come_once() {
    let db = fresh().await;
    let s = &db.store;
    let a = tenant(s, "a").await;
    let ch = channel(s, a, "hook").await;
    for (name, event) in [("c", "incident.created"), ("u", "incident.updated")] {
        s.create_notification_rule(&ctx(), &Scope::AllTenants, rule(a, ch, name, event))
            .await
            .expect("rule");
    }
    let mut sla = rule(a, ch, "sla", "sla.breach_soon");
    sla.sla_minutes = Some(60);
    sla.warn_minutes = Some(15);
    sla.min_severity = Some("high".into());
    s.create_notification_rule(&ctx(), &Scope::AllTenants, sla)
        .await
        .expect("rule");
    let access = AlertAccess {
        scope: Scope::AllTenants,
        bypass_tags: true,
        subjects: vec![],
    };
    let c = ctx();
    let who = Acting {
        ctx: &c,
        access: &access,
        platform_tenant: a,
    };
    let new = |title: &str, severity: &str| NewIncident {
        tenant_id: a,
        title: Some(title.into()),
        severity: Some(severity.into()),
        ..Default::default()
    };
    let hot = s
        .create_incident(&who, new("hot", "critical"))
        .await
        .expect("incident");
    let mild = s
        .create_incident(&who, new("mild", "low"))
        .await
        .expect("incident");
    s.update_incident(
        &who,
        hot.incident.id,
        IncidentPatch {
            title: Some("hotter".into()),
            ..Default::default()
        },
    )
    .await
    .expect("update");
    // An update that changes nothing notifies nothing.
    s.update_incident(&who, mild.incident.id, IncidentPatch::default())
        .await
        .expect("update");
    let ds = deliveries(s, &Scope::AllTenants).await;
    let created: Vec<_> = ds
        .iter()
        .filter(|d| d.event == "incident.created")
        .collect();
    let updated: Vec<_> = ds
        .iter()
        .filter(|d| d.event == "incident.updated")
        .collect();
    assert_eq!(created.len(), 2);
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].context["incident"]["title"], "hotter");
    assert_eq!(updated[0].context["changes"]["after"]["title"], "hotter");

    // Not yet at the warning point (45 minutes after opening).
    let now = bulwark_core::time::now();
    assert_eq!(s.queue_sla_notifications(now).await.expect("scan"), 0);
    // Past it: the critical incident warns (the low one is filtered), once.
    let later = now + chrono::Duration::minutes(50);
    assert_eq!(s.queue_sla_notifications(later).await.expect("scan"), 1);
    assert_eq!(s.queue_sla_notifications(later).await.expect("scan"), 0);
    let warn: Vec<_> = deliveries(s, &Scope::AllTenants)
        .await
        .into_iter()
        .filter(|d| d.event == "sla.breach_soon")
        .collect();
    assert_eq!(warn.len(), 1);
    assert_eq!(warn[0].subject_id, Some(hot.incident.id.to_string()));
    assert_eq!(warn[0].context["sla"]["breached"], false);
    assert!(
        warn[0].context["sla"]["minutes_left"]
            .as_i64()
            .is_some_and(|m| m <= 15)
    );
}

#[tokio::test]
async fn attempts_are_recorded_and_a_failed_delivery_can_be_retried() {
    let db = fresh().await;
    let s = &db.store;
    let a = tenant(s, "a").await;
    let ch = channel(s, a, "hook").await;
    let r = s
        .create_notification_rule(
            &ctx(),
            &Scope::AllTenants,
            rule(a, ch, "r", "alert.created"),
        )
        .await
        .expect("rule");
    s.ingest(&[incoming(a, wazuh("x", 12))], chrono::Duration::hours(24))
        .await
        .expect("ingest");
    let d = deliveries(s, &Scope::AllTenants).await.remove(0);
    let soon = bulwark_core::time::now() + chrono::Duration::seconds(30);
    let got = s
        .record_delivery_attempt(
            d.id,
            &AttemptOutcome::Failed {
                title: Some("t".into()),
                message: Some("m".into()),
                error: "HTTP 500 from 127.0.0.1".into(),
                retry_at: Some(soon),
            },
        )
        .await
        .expect("attempt");
    assert_eq!((got.status.as_str(), got.attempts), ("retrying", 1));
    assert!(got.next_attempt_at.is_some());
    assert_eq!(got.message.as_deref(), Some("m"));
    assert_eq!(s.failed_delivery_count().await.expect("count"), 0);
    let got = s
        .record_delivery_attempt(
            d.id,
            &AttemptOutcome::Failed {
                title: None,
                message: None,
                error: "HTTP 500 from 127.0.0.1".into(),
                retry_at: None,
            },
        )
        .await
        .expect("attempt");
    assert_eq!((got.status.as_str(), got.attempts), ("failed", 2));
    assert_eq!(got.message.as_deref(), Some("m"), "kept");
    assert_eq!(got.last_error.as_deref(), Some("HTTP 500 from 127.0.0.1"));
    assert_eq!(s.failed_delivery_count().await.expect("count"), 1);
    let failed = s
        .list_notification_deliveries(
            &Scope::Tenants(vec![a]),
            &DeliveryFilter {
                status: Some("failed".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(failed.len(), 1);

    // Retried: queued again with fresh attempts and a new job; twice is refused.
    let again = s
        .retry_delivery(&ctx(), &Scope::Tenants(vec![a]), d.id)
        .await
        .expect("retry");
    assert_eq!((again.status.as_str(), again.attempts), ("queued", 0));
    assert!(matches!(
        s.retry_delivery(&ctx(), &Scope::Tenants(vec![a]), d.id)
            .await,
        Err(StoreError::State(_))
    ));
    let jobs = s
        .claim_jobs(
            "w",
            &["notification"],
            10,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 2, "the first job and the retry's");
    let sent = s
        .record_delivery_attempt(
            d.id,
            &AttemptOutcome::Sent {
                title: "t".into(),
                message: "m".into(),
            },
        )
        .await
        .expect("sent");
    assert_eq!(sent.status, "sent");
    assert!(sent.sent_at.is_some() && sent.last_error.is_none());
    assert_eq!(s.failed_delivery_count().await.expect("count"), 0);

    // A test delivery has one attempt and no job; deleting the rule keeps the deliveries.
    let t = s
        .create_test_delivery(&Scope::Tenants(vec![a]), r.id, json!({"test": true}))
        .await
        .expect("test delivery");
    assert!(t.is_test);
    assert_eq!(t.max_attempts, 1);
    s.delete_notification_rule(&ctx(), &Scope::AllTenants, r.id)
        .await
        .expect("delete");
    let left = deliveries(s, &Scope::AllTenants).await;
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|d| d.rule_id.is_none() && d.rule_name == "r")
    );
}

#[tokio::test]
async fn a_dead_lettered_delivery_job_leaves_a_failed_delivery_not_a_silent_one() {
    let db = fresh().await;
    let s = &db.store;
    let a = tenant(s, "a").await;
    let ch = channel(s, a, "hook").await;
    s.create_notification_rule(
        &ctx(),
        &Scope::AllTenants,
        rule(a, ch, "r", "alert.created"),
    )
    .await
    .expect("rule");
    s.ingest(&[incoming(a, wazuh("x", 12))], chrono::Duration::hours(24))
        .await
        .expect("ingest");
    // The handler itself keeps failing (say the database answers errors) until the job dies.
    let mut rounds = 0;
    loop {
        let jobs = s
            .claim_jobs(
                "w",
                &["notification"],
                1,
                std::time::Duration::from_secs(60),
            )
            .await
            .expect("claim");
        let Some(job) = jobs.into_iter().next() else {
            break;
        };
        rounds += 1;
        assert!(rounds <= 100, "the job never died");
        s.release_job(
            job.id,
            "w",
            bulwark_store::automation::JobRelease::Failed {
                error: "store unavailable".into(),
                retry_at: bulwark_core::time::now() - chrono::Duration::seconds(1),
            },
        )
        .await
        .expect("release");
    }
    let d = deliveries(s, &Scope::AllTenants).await.remove(0);
    assert_eq!(d.status, "failed");
    assert!(
        d.last_error
            .as_deref()
            .is_some_and(|e| e.contains("dead-lettered") && e.contains("store unavailable")),
        "{:?}",
        d.last_error
    );
    assert_eq!(s.failed_delivery_count().await.expect("count"), 1);
}

#[tokio::test]
async fn approvals_and_failed_runs_notify_in_their_transactions() {
    use bulwark_store::automation::{NewApproval, NewRun, PlaybookWrite, RunProgress, RunSave};
    let db = fresh().await;
    let s = &db.store;
    let a = tenant(s, "a").await;
    let ch = channel(s, a, "hook").await;
    for (name, event) in [("ap", "approval.requested"), ("rf", "run.failed")] {
        s.create_notification_rule(&ctx(), &Scope::AllTenants, rule(a, ch, name, event))
            .await
            .expect("rule");
    }
    let pb = s
        .create_playbook(
            &ctx(),
            &Scope::AllTenants,
            a,
            PlaybookWrite {
                tenant_id: Some(a),
                name: "contain".into(),
                description: None,
                enabled: true,
                priority: 100,
                spec: json!({"name": "contain", "triggers": [{"on": "manual"}], "actions": []}),
                source: "name: contain".into(),
                source_format: "yaml",
                origin: "api",
                file_path: None,
            },
        )
        .await
        .expect("playbook");
    let run = |n: i64| NewRun {
        tenant_id: a,
        playbook_id: pb.id,
        playbook_name: "contain".into(),
        playbook_version: 1,
        trigger: "manual".into(),
        alert_id: None,
        incident_id: None,
        input: json!({"n": n}),
        requested_by: None,
        priority: 100,
    };
    let runs = s
        .create_runs(&[run(1), run(2), run(3)])
        .await
        .expect("runs");
    let ap = s
        .request_approval(NewApproval {
            tenant_id: a,
            run_id: runs[0],
            step_ref: "isolate".into(),
            item_index: None,
            playbook_name: "contain".into(),
            message: "Isolate ws-1?".into(),
            alert_id: None,
            incident_id: None,
            approvers_required: 1,
            roles: vec![],
            on_timeout: "fail".into(),
            expires_at: bulwark_core::time::now() + chrono::Duration::hours(1),
        })
        .await
        .expect("approval");
    let failed = |error: &str| RunProgress {
        status: "failed".into(),
        state: json!({}),
        context: None,
        outputs: None,
        error: Some(error.into()),
        step: None,
    };
    // One run fails through save_run, one through a batch of saves (with a succeeding one).
    let jobs = s
        .claim_jobs(
            "w",
            &["playbook_run"],
            10,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 3);
    s.save_run(runs[1], "w", failed("edr down"))
        .await
        .expect("save");
    s.save_runs(
        "w",
        &[
            RunSave {
                run_id: runs[2],
                progress: failed("bad input"),
                done: true,
            },
            RunSave {
                run_id: runs[0],
                progress: RunProgress {
                    status: "running".into(),
                    ..failed("")
                },
                done: false,
            },
        ],
    )
    .await
    .expect("save batch");
    let ds = deliveries(s, &Scope::AllTenants).await;
    let approvals: Vec<_> = ds
        .iter()
        .filter(|d| d.event == "approval.requested")
        .collect();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].subject_id, Some(ap.id.to_string()));
    assert_eq!(approvals[0].context["approval"]["message"], "Isolate ws-1?");
    let mut errors: Vec<String> = ds
        .iter()
        .filter(|d| d.event == "run.failed")
        .map(|d| {
            assert_eq!(d.context["run"]["playbook_name"], "contain");
            d.context["run"]["error"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    errors.sort();
    assert_eq!(errors, ["bad input", "edr down"]);
}
