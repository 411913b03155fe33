//! Cron schedules against a real database (SQLite by default, PostgreSQL with
//! `BULWARK_TEST_DATABASE_URL`): a due slot fires exactly once under concurrent schedulers and
//! its run executes; global playbooks run in every tenant; disabled playbooks lose their rows.

use bulwark_core::{Scope, TenantId};
use bulwark_engine::schedule::run_schedules;
use bulwark_engine::{EngineConfig, run_worker};
use bulwark_playbook::Catalog;
use bulwark_store::automation::{PlaybookWrite, RunFilter, RunRecord, ScheduleRecord};
use bulwark_store::testing::fresh;
use bulwark_store::{ChangeCtx, NewTenant, Store};
use chrono::{DateTime, SubsecRound, Timelike, Utc};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::watch;
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

fn every_minute(name: &str) -> Value {
    json!({
        "name": name,
        "triggers": [{"on": "schedule", "cron": "* * * * *"}],
        "actions": [{"ref": "mark", "action": "set", "args": {"values": {"at": "{{ input.scheduled_at }}"}}}],
        "outputs": {"at": "{{ vars.at }}"}
    })
}

async fn playbook(store: &Store, owner: TenantId, tenant: Option<TenantId>, spec: Value) -> Uuid {
    let pb = bulwark_playbook::parse_json(&spec, &Catalog::builtin()).expect("valid playbook");
    store
        .create_playbook(
            &ctx(),
            &Scope::AllTenants,
            owner,
            PlaybookWrite {
                tenant_id: tenant,
                name: pb.name().to_owned(),
                description: None,
                enabled: true,
                priority: 100,
                spec: pb.to_json(),
                source: spec.to_string(),
                source_format: "json",
                origin: "api",
                file_path: None,
            },
        )
        .await
        .expect("create playbook")
        .id
}

/// A whole minute `n` minutes before now.
fn minutes_ago(n: i64) -> DateTime<Utc> {
    let now = Utc::now();
    let m = now
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("a whole minute");
    m - chrono::Duration::minutes(n)
}

async fn schedule_at(store: &Store, pb: Uuid, slot: DateTime<Utc>) {
    store
        .upsert_schedule(&ScheduleRecord {
            playbook_id: pb,
            trigger_index: 0,
            cron: "* * * * *".into(),
            next_fire_at: slot,
            last_fired_at: None,
        })
        .await
        .expect("schedule");
}

async fn runs(store: &Store, pb: Uuid) -> Vec<RunRecord> {
    store
        .list_runs(
            &Scope::AllTenants,
            &RunFilter {
                playbook_id: Some(pb),
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .expect("runs")
}

fn of_slot(runs: &[RunRecord], slot: DateTime<Utc>) -> Vec<RunRecord> {
    let want = serde_json::to_value(slot).expect("json");
    runs.iter()
        .filter(|r| r.input["scheduled_at"] == want)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_due_slot_fires_one_run_under_concurrent_schedulers_and_it_executes() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store, "acme").await;
    let pb = playbook(&store, t, Some(t), every_minute("minutely")).await;
    // Down for three minutes: the slot three minutes ago is still pending.
    let slot = minutes_ago(3);
    schedule_at(&store, pb, slot).await;

    // Two schedulers at once (as when the lease changes hands) ...
    let now = Utc::now().trunc_subsecs(3);
    let (a, b) = tokio::join!(run_schedules(&store, now), run_schedules(&store, now));
    let (a, b) = (a.expect("scheduler a"), b.expect("scheduler b"));
    assert_eq!(a.fired + b.fired, 1, "{a:?} {b:?}");
    let fired = runs(&store, pb).await;
    assert_eq!(fired.len(), 1, "missed slots fire once, by one scheduler");
    assert_eq!(fired[0].trigger, "schedule");
    assert_eq!(fired[0].tenant_id, t);
    let row = &store.list_schedules().await.expect("rows")[0];
    assert!(row.next_fire_at > now, "the next slot is after now");
    assert_eq!(row.last_fired_at, Some(now));

    // ... and two workers whose scheduler duties run too: the run executes, the slot does
    // not fire again.
    let (stop, rx) = watch::channel(false);
    let workers: Vec<_> = ["w1", "w2"]
        .into_iter()
        .map(|n| {
            let cfg = EngineConfig {
                node_id: n.into(),
                poll_interval: Duration::from_millis(50),
                ..EngineConfig::default()
            };
            tokio::spawn(run_worker(store.clone(), cfg, rx.clone()))
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let done = loop {
        let r = store
            .get_run(&Scope::AllTenants, fired[0].id)
            .await
            .expect("run");
        if matches!(r.status.as_str(), "succeeded" | "failed" | "cancelled") {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run still {}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = stop.send(true);
    for w in workers {
        w.await.expect("worker");
    }
    assert_eq!(done.status, "succeeded", "error: {:?}", done.error);
    assert_eq!(
        done.outputs.as_ref().map(|o| o["at"].clone()),
        Some(serde_json::to_value(slot).expect("json"))
    );
    assert_eq!(of_slot(&runs(&store, pb).await, slot).len(), 1);
}

#[tokio::test]
async fn a_global_schedule_runs_once_in_every_tenant() {
    let db = fresh().await;
    let store = db.store.clone();
    let a = tenant(&store, "acme").await;
    let b = tenant(&store, "globex").await;
    let pb = playbook(&store, a, None, every_minute("global-minutely")).await;
    let slot = minutes_ago(1);
    schedule_at(&store, pb, slot).await;
    let report = run_schedules(&store, Utc::now()).await.expect("scheduler");
    assert_eq!((report.fired, report.runs), (1, 2));
    let mut tenants: Vec<TenantId> = runs(&store, pb).await.iter().map(|r| r.tenant_id).collect();
    tenants.sort_by_key(|t| t.0);
    let mut want = vec![a, b];
    want.sort_by_key(|t| t.0);
    assert_eq!(tenants, want);
}

#[tokio::test]
async fn schedules_follow_the_playbooks() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store, "acme").await;
    let pb = playbook(&store, t, Some(t), every_minute("minutely")).await;
    let now = Utc::now();
    // A new schedule trigger gets a row whose first slot is in the future: nothing fires.
    let report = run_schedules(&store, now).await.expect("scheduler");
    assert_eq!(report.fired, 0);
    let rows = store.list_schedules().await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].next_fire_at > now);
    assert!(runs(&store, pb).await.is_empty());
    // A changed cron replaces the row.
    let mut spec = every_minute("minutely");
    spec["triggers"][0]["cron"] = json!("0 3 * * *");
    let parsed = bulwark_playbook::parse_json(&spec, &Catalog::builtin()).expect("valid");
    store
        .update_playbook(
            &ctx(),
            &Scope::AllTenants,
            t,
            pb,
            None,
            PlaybookWrite {
                tenant_id: Some(t),
                name: "minutely".into(),
                description: None,
                enabled: true,
                priority: 100,
                spec: parsed.to_json(),
                source: spec.to_string(),
                source_format: "json",
                origin: "api",
                file_path: None,
            },
        )
        .await
        .expect("update");
    run_schedules(&store, now).await.expect("scheduler");
    let rows = store.list_schedules().await.expect("rows");
    assert_eq!(rows[0].cron, "0 3 * * *");
    assert_eq!(rows[0].next_fire_at.hour(), 3);
    // Disabled: the row goes.
    store
        .set_playbook_enabled(&ctx(), &Scope::AllTenants, t, pb, false)
        .await
        .expect("disable");
    run_schedules(&store, now).await.expect("scheduler");
    assert!(store.list_schedules().await.expect("rows").is_empty());
}
