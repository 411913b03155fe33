//! The automation store on whichever backend the suite runs on: playbook versions and scope,
//! the job queue's leases (claim, heartbeat, release, lapse, dead-letter) under concurrency,
//! approvals and their wake-ups, singleton leases.

use bulwark_core::{Scope, TenantId};
use bulwark_store::automation::{
    Decider, JOB_PLAYBOOK_RUN, JobRelease, NewApproval, NewRun, PlaybookWrite, RunProgress,
    ScheduleFire, ScheduleRecord,
};
use bulwark_store::testing::fresh;
use bulwark_store::{ChangeCtx, NewTenant, Store, StoreError};
use chrono::Duration;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;
use uuid::Uuid;

async fn tenant(store: &Store, slug: &str) -> TenantId {
    store
        .create_tenant(
            &ChangeCtx::system("test"),
            NewTenant {
                slug: slug.into(),
                name: slug.into(),
            },
        )
        .await
        .expect("tenant")
        .id
}

fn write(name: &str, tenant: Option<TenantId>) -> PlaybookWrite {
    PlaybookWrite {
        tenant_id: tenant,
        name: name.into(),
        description: Some("test".into()),
        enabled: true,
        priority: 100,
        spec: json!({"name": name, "triggers": [{"on": "manual"}], "actions": []}),
        source: format!("name: {name}"),
        source_format: "yaml",
        origin: "api",
        file_path: None,
    }
}

fn run_of(t: TenantId, playbook: Uuid) -> NewRun {
    NewRun {
        tenant_id: t,
        playbook_id: playbook,
        playbook_name: "pb".into(),
        playbook_version: 1,
        trigger: "manual".into(),
        alert_id: None,
        incident_id: None,
        input: json!({"n": 1}),
        requested_by: Some("test".into()),
        priority: 100,
    }
}

fn progress(status: &str) -> RunProgress {
    RunProgress {
        status: status.into(),
        state: json!({"saved": true}),
        context: None,
        outputs: None,
        error: None,
        step: None,
    }
}

const LEASE: StdDuration = StdDuration::from_secs(30);

#[tokio::test]
async fn playbooks_keep_every_version_and_respect_scope() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let ctx = ChangeCtx::system("test");
    let acme = tenant(&s, "acme").await;
    let globex = tenant(&s, "globex").await;
    let acme_scope = Scope::Tenants(vec![acme]);

    let global = s
        .create_playbook(&ctx, &Scope::AllTenants, acme, write("global-pb", None))
        .await
        .expect("global");
    assert_eq!(global.version, 1);
    // Only a platform administrator writes a playbook for every tenant.
    let refused = s
        .create_playbook(&ctx, &acme_scope, acme, write("mine", None))
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Invalid {
            field: "tenant_id",
            ..
        })
    ));
    let own = s
        .create_playbook(&ctx, &acme_scope, acme, write("acme-pb", Some(acme)))
        .await
        .expect("own");
    let other = s
        .create_playbook(
            &ctx,
            &Scope::AllTenants,
            globex,
            write("globex-pb", Some(globex)),
        )
        .await
        .expect("other");
    // Names are unique.
    let dup = s
        .create_playbook(&ctx, &Scope::AllTenants, acme, write("acme-pb", None))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { field: "name" })));

    let seen: Vec<String> = s
        .list_playbooks(&acme_scope)
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(seen, vec!["acme-pb", "global-pb"]);
    assert!(matches!(
        s.get_playbook(&acme_scope, other.id).await,
        Err(StoreError::NotFound)
    ));
    // A tenant's analyst cannot change a global one.
    let forbidden = s
        .set_playbook_enabled(&ctx, &acme_scope, acme, global.id, false)
        .await;
    assert!(matches!(forbidden, Err(StoreError::Forbidden(_))));

    // Updates make versions; a stale expected version is a conflict, not a lost update.
    let mut w = write("acme-pb", Some(acme));
    w.spec = json!({"name": "acme-pb", "v": 2});
    let v2 = s
        .update_playbook(&ctx, &acme_scope, acme, own.id, Some(1), w.clone())
        .await
        .expect("v2");
    assert_eq!(v2.version, 2);
    let stale = s
        .update_playbook(&ctx, &acme_scope, acme, own.id, Some(1), w)
        .await;
    assert!(matches!(stale, Err(StoreError::State(_))));
    let versions = s
        .playbook_versions(&acme_scope, own.id)
        .await
        .expect("versions");
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(
        s.playbook_version_spec(own.id, 1).await.expect("v1")["actions"],
        json!([])
    );
    assert_eq!(
        s.playbook_version_spec(own.id, 2).await.expect("v2")["v"],
        2
    );

    // Disabling takes it out of the trigger set at once; the marker moves.
    let before = s.playbooks_marker().await.expect("marker");
    s.set_playbook_enabled(&ctx, &acme_scope, acme, own.id, false)
        .await
        .expect("disable");
    assert_ne!(s.playbooks_marker().await.expect("marker"), before);
    let enabled: Vec<Uuid> = s
        .enabled_playbooks()
        .await
        .expect("enabled")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert!(!enabled.contains(&own.id) && enabled.contains(&global.id));

    s.delete_playbook(&ctx, &acme_scope, acme, own.id)
        .await
        .expect("delete");
    assert!(matches!(
        s.get_playbook(&Scope::AllTenants, own.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        s.playbook_by_name("acme-pb")
            .await
            .expect("by name")
            .is_none()
    );
}

#[tokio::test]
async fn a_claimed_job_is_leased_to_one_worker_until_released_or_lapsed() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let t = tenant(&s, "acme").await;
    let pb = s
        .create_playbook(
            &ChangeCtx::system("t"),
            &Scope::AllTenants,
            t,
            write("pb", None),
        )
        .await
        .expect("pb");
    let runs = s.create_runs(&[run_of(t, pb.id)]).await.expect("runs");
    let run = runs[0];
    assert_eq!(
        s.get_run(&Scope::AllTenants, run)
            .await
            .expect("run")
            .status,
        "queued"
    );
    // Another tenant's scope does not see the run.
    let other = tenant(&s, "globex").await;
    assert!(matches!(
        s.get_run(&Scope::Tenants(vec![other]), run).await,
        Err(StoreError::NotFound)
    ));

    let a = s
        .claim_jobs("worker-a", &[JOB_PLAYBOOK_RUN], 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].run_id, Some(run));
    assert_eq!(a[0].attempts, 1);
    let job = a[0].id;
    assert!(
        s.claim_jobs("worker-b", &[JOB_PLAYBOOK_RUN], 10, LEASE)
            .await
            .expect("claim")
            .is_empty(),
        "a leased job is not claimed twice"
    );
    assert!(s.heartbeat(job, "worker-a", LEASE).await.expect("beat"));
    assert!(!s.heartbeat(job, "worker-b", LEASE).await.expect("beat"));
    // Only the holder saves progress.
    assert!(matches!(
        s.save_run(run, "worker-b", progress("running")).await,
        Err(StoreError::State(_))
    ));
    s.save_run(run, "worker-a", progress("running"))
        .await
        .expect("save");

    // Handed back for later: not claimable before its time.
    let later = bulwark_core::time::now() + Duration::hours(1);
    assert!(
        s.release_job(job, "worker-a", JobRelease::At(later))
            .await
            .expect("release")
    );
    assert!(
        s.claim_jobs("worker-b", &[JOB_PLAYBOOK_RUN], 10, LEASE)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        !s.release_job(job, "worker-a", JobRelease::Done)
            .await
            .expect("release"),
        "a released job is no longer the worker's"
    );
}

#[tokio::test]
async fn a_lapsed_lease_passes_the_job_on_and_repeated_lapses_dead_letter_it() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let t = tenant(&s, "acme").await;
    let pb = s
        .create_playbook(
            &ChangeCtx::system("t"),
            &Scope::AllTenants,
            t,
            write("pb", None),
        )
        .await
        .expect("pb");
    let run = s.create_runs(&[run_of(t, pb.id)]).await.expect("runs")[0];
    let short = StdDuration::from_millis(1);
    let first = s
        .claim_jobs("worker-a", &[JOB_PLAYBOOK_RUN], 1, short)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    tokio::time::sleep(StdDuration::from_millis(20)).await;
    // worker-a "died": worker-b takes over, and worker-a can no longer save or release.
    let second = s
        .claim_jobs("worker-b", &[JOB_PLAYBOOK_RUN], 1, LEASE)
        .await
        .expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    assert!(matches!(
        s.save_run(run, "worker-a", progress("running")).await,
        Err(StoreError::State(_))
    ));
    assert!(
        !s.release_job(first[0].id, "worker-a", JobRelease::Done)
            .await
            .expect("release")
    );
    // Every later claim lapses too, until the attempts run out: dead-lettered, run failed.
    assert!(
        s.release_job(
            second[0].id,
            "worker-b",
            JobRelease::Failed {
                error: "boom".into(),
                retry_at: bulwark_core::time::now()
            }
        )
        .await
        .expect("release")
    );
    for attempt in 3..=5 {
        let c = s
            .claim_jobs("worker-c", &[JOB_PLAYBOOK_RUN], 1, short)
            .await
            .expect("claim");
        assert_eq!(c.len(), 1, "attempt {attempt}");
        assert_eq!(c[0].attempts, attempt);
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert!(
        s.claim_jobs("worker-c", &[JOB_PLAYBOOK_RUN], 1, LEASE)
            .await
            .expect("claim")
            .is_empty()
    );
    let counts: HashMap<String, i64> = s.job_counts().await.expect("counts").into_iter().collect();
    assert_eq!(counts.get("dead"), Some(&1));
    let r = s.get_run(&Scope::AllTenants, run).await.expect("run");
    assert_eq!(r.status, "failed");
    assert!(r.error.unwrap_or_default().contains("dead-lettered"));
}

#[tokio::test]
async fn concurrent_workers_claim_each_job_exactly_once() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let t = tenant(&s, "acme").await;
    let pb = s
        .create_playbook(
            &ChangeCtx::system("t"),
            &Scope::AllTenants,
            t,
            write("pb", None),
        )
        .await
        .expect("pb");
    let runs: Vec<NewRun> = (0..300).map(|_| run_of(t, pb.id)).collect();
    let ids = s.create_runs(&runs).await.expect("runs");
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                let name = format!("worker-{w}");
                let mut mine = Vec::new();
                loop {
                    let jobs = s
                        .claim_jobs(&name, &[JOB_PLAYBOOK_RUN], 7, LEASE)
                        .await
                        .expect("claim");
                    if jobs.is_empty() {
                        break;
                    }
                    for j in jobs {
                        mine.push(j.run_id.expect("run job"));
                        assert!(
                            s.release_job(j.id, &name, JobRelease::Done)
                                .await
                                .expect("done")
                        );
                    }
                }
                mine
            })
        })
        .collect();
    let mut seen: HashMap<Uuid, u32> = HashMap::new();
    for w in workers {
        for run in w.await.expect("join") {
            *seen.entry(run).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), ids.len());
    assert!(seen.values().all(|&n| n == 1), "a job was claimed twice");
    assert!(s.job_counts().await.expect("counts").is_empty());
}

#[tokio::test]
async fn approvals_need_distinct_approvers_wake_the_run_and_expire() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let ctx = ChangeCtx::system("t");
    let t = tenant(&s, "acme").await;
    let pb = s
        .create_playbook(&ctx, &Scope::AllTenants, t, write("pb", None))
        .await
        .expect("pb");
    let runs = s
        .create_runs(&[run_of(t, pb.id), run_of(t, pb.id), run_of(t, pb.id)])
        .await
        .expect("runs");
    let ask = |run: Uuid, required: i32, expires_in: Duration| NewApproval {
        tenant_id: t,
        run_id: run,
        step_ref: "approve".into(),
        item_index: None,
        playbook_name: "pb".into(),
        message: "Isolate ws-1?".into(),
        alert_id: None,
        incident_id: None,
        approvers_required: required,
        roles: vec![],
        on_timeout: "fail".into(),
        expires_at: bulwark_core::time::now() + expires_in,
    };
    let analyst = |name: &str| Decider {
        analyst_id: Uuid::now_v7(),
        username: name.into(),
        role: "analyst".into(),
    };
    let scope = Scope::Tenants(vec![t]);

    // Two approvers required; the worker parks the run on it.
    let a = s
        .request_approval(ask(runs[0], 2, Duration::hours(4)))
        .await
        .expect("ask");
    let again = s
        .request_approval(ask(runs[0], 2, Duration::hours(4)))
        .await
        .expect("ask again");
    assert_eq!(a.id, again.id, "a resumed run asks once");
    let jobs = s
        .claim_jobs("w", &[JOB_PLAYBOOK_RUN], 3, LEASE)
        .await
        .expect("claim");
    let job_of: HashMap<Uuid, Uuid> = jobs
        .iter()
        .map(|j| (j.run_id.expect("run"), j.id))
        .collect();
    assert!(
        s.release_job(job_of[&runs[0]], "w", JobRelease::Parked { approval: a.id })
            .await
            .expect("park")
    );
    let viewer = Decider {
        role: "viewer".into(),
        ..analyst("vic")
    };
    assert!(matches!(
        s.decide_approval(&ctx, &scope, a.id, &viewer, true, None)
            .await,
        Err(StoreError::Forbidden(_))
    ));
    let alice = analyst("alice");
    let one = s
        .decide_approval(&ctx, &scope, a.id, &alice, true, Some("ok".into()))
        .await
        .expect("first");
    assert_eq!(one.status, "pending");
    assert!(matches!(
        s.decide_approval(&ctx, &scope, a.id, &alice, true, None)
            .await,
        Err(StoreError::State(_))
    ));
    assert!(
        s.claim_jobs("w", &[JOB_PLAYBOOK_RUN], 3, LEASE)
            .await
            .expect("claim")
            .iter()
            .all(|j| j.run_id != Some(runs[0])),
        "still parked"
    );
    let two = s
        .decide_approval(&ctx, &scope, a.id, &analyst("bob"), true, None)
        .await
        .expect("second");
    assert_eq!(two.status, "approved");
    assert_eq!(two.decisions.len(), 2);
    let woken = s
        .claim_jobs("w2", &[JOB_PLAYBOOK_RUN], 3, LEASE)
        .await
        .expect("claim");
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].run_id, Some(runs[0]));

    // Decided before the worker parks (a race): the job is queued, not parked for ever.
    let b = s
        .request_approval(ask(runs[1], 1, Duration::hours(4)))
        .await
        .expect("ask");
    let rejected = s
        .decide_approval(&ctx, &scope, b.id, &alice, false, Some("no".into()))
        .await
        .expect("reject");
    assert_eq!(rejected.status, "rejected");
    assert!(
        s.release_job(job_of[&runs[1]], "w", JobRelease::Parked { approval: b.id })
            .await
            .expect("park")
    );
    let counts: HashMap<String, i64> = s.job_counts().await.expect("counts").into_iter().collect();
    assert_eq!(counts.get("parked"), None);

    // Expiry: past its time, the approval expires and the run's job is queued again.
    let c = s
        .request_approval(ask(runs[2], 1, Duration::milliseconds(1)))
        .await
        .expect("ask");
    assert!(
        s.release_job(job_of[&runs[2]], "w", JobRelease::Parked { approval: c.id })
            .await
            .expect("park")
    );
    tokio::time::sleep(StdDuration::from_millis(10)).await;
    assert!(matches!(
        s.decide_approval(&ctx, &scope, c.id, &alice, true, None)
            .await,
        Err(StoreError::State(_))
    ));
    let expired = s
        .expire_approvals(bulwark_core::time::now())
        .await
        .expect("expire");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].status, "expired");
    let pending = s
        .list_approvals(&scope, Some("pending"))
        .await
        .expect("list");
    assert!(pending.is_empty());
    let other = tenant(&s, "globex").await;
    assert!(matches!(
        s.get_approval(&Scope::Tenants(vec![other]), a.id).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn cancelling_a_run_removes_its_job_and_pending_approvals() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let ctx = ChangeCtx::system("t");
    let t = tenant(&s, "acme").await;
    let pb = s
        .create_playbook(&ctx, &Scope::AllTenants, t, write("pb", None))
        .await
        .expect("pb");
    let run = s.create_runs(&[run_of(t, pb.id)]).await.expect("runs")[0];
    let job = s
        .claim_jobs("w", &[JOB_PLAYBOOK_RUN], 1, LEASE)
        .await
        .expect("claim")[0]
        .id;
    let scope = Scope::Tenants(vec![t]);
    let cancelled = s.cancel_run(&ctx, &scope, run).await.expect("cancel");
    assert_eq!(cancelled.status, "cancelled");
    assert!(cancelled.finished_at.is_some());
    // The worker that held it learns at its next save and cannot bring it back.
    assert!(matches!(
        s.save_run(run, "w", progress("running")).await,
        Err(StoreError::State(_))
    ));
    assert!(
        !s.release_job(job, "w", JobRelease::Done)
            .await
            .expect("release")
    );
    assert!(matches!(
        s.cancel_run(&ctx, &scope, run).await,
        Err(StoreError::State(_))
    ));
}

#[tokio::test]
async fn a_singleton_lease_has_one_holder_at_a_time() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let ttl = StdDuration::from_millis(200);
    assert!(s.try_lease("scheduler", "node-a", ttl).await.expect("a"));
    assert!(!s.try_lease("scheduler", "node-b", ttl).await.expect("b"));
    assert!(
        s.try_lease("scheduler", "node-a", ttl)
            .await
            .expect("renew")
    );
    tokio::time::sleep(StdDuration::from_millis(250)).await;
    assert!(
        s.try_lease("scheduler", "node-b", ttl)
            .await
            .expect("b after expiry")
    );
    assert!(
        !s.try_lease("scheduler", "node-a", ttl)
            .await
            .expect("a again")
    );
}

fn minute(m: i64) -> chrono::DateTime<chrono::Utc> {
    // 1_800_000_000 is a whole minute (UTC).
    chrono::DateTime::from_timestamp(1_800_000_000 + m * 60, 0).expect("a valid instant")
}

#[tokio::test]
async fn schedules_are_upserted_deleted_and_go_with_their_playbook() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let ctx = ChangeCtx::system("test");
    let t = tenant(&s, "acme").await;
    let pb = s
        .create_playbook(&ctx, &Scope::AllTenants, t, write("sched", Some(t)))
        .await
        .expect("playbook");
    let mut row = ScheduleRecord {
        playbook_id: pb.id,
        trigger_index: 0,
        cron: "* * * * *".into(),
        next_fire_at: minute(1),
        last_fired_at: None,
    };
    s.upsert_schedule(&row).await.expect("insert");
    s.upsert_schedule(&ScheduleRecord {
        trigger_index: 1,
        cron: "0 * * * *".into(),
        next_fire_at: minute(60),
        ..row.clone()
    })
    .await
    .expect("second trigger");
    row.cron = "*/5 * * * *".into();
    row.next_fire_at = minute(5);
    s.upsert_schedule(&row).await.expect("replace");
    let rows = s.list_schedules().await.expect("list");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], row);
    s.delete_schedule(pb.id, 1).await.expect("delete");
    assert_eq!(s.list_schedules().await.expect("list"), vec![row]);
    // A schedule of a playbook that does not exist is refused.
    let orphan = ScheduleRecord {
        playbook_id: Uuid::now_v7(),
        trigger_index: 0,
        cron: "* * * * *".into(),
        next_fire_at: minute(1),
        last_fired_at: None,
    };
    assert!(s.upsert_schedule(&orphan).await.is_err());
    s.delete_playbook(&ctx, &Scope::AllTenants, t, pb.id)
        .await
        .expect("delete playbook");
    assert!(s.list_schedules().await.expect("list").is_empty());
}

#[tokio::test]
async fn a_schedule_slot_fires_once_even_when_schedulers_race() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let ctx = ChangeCtx::system("test");
    let t = tenant(&s, "acme").await;
    let pb = s
        .create_playbook(&ctx, &Scope::AllTenants, t, write("sched", Some(t)))
        .await
        .expect("playbook");
    s.upsert_schedule(&ScheduleRecord {
        playbook_id: pb.id,
        trigger_index: 0,
        cron: "* * * * *".into(),
        next_fire_at: minute(0),
        last_fired_at: None,
    })
    .await
    .expect("schedule");
    let fire = ScheduleFire {
        playbook_id: pb.id,
        trigger_index: 0,
        expected: minute(0),
        next: minute(1),
        fired_at: minute(0) + Duration::seconds(3),
        runs: vec![NewRun {
            trigger: "schedule".into(),
            ..run_of(t, pb.id)
        }],
    };
    let attempts = (0..6).map(|_| {
        let s = Arc::clone(&s);
        let fire = fire.clone();
        tokio::spawn(async move { s.fire_schedule(&fire).await })
    });
    let mut fired = 0;
    for a in attempts {
        if let Some(ids) = a.await.expect("task").expect("fire") {
            assert_eq!(ids.len(), 1);
            fired += 1;
        }
    }
    assert_eq!(fired, 1, "exactly one scheduler fires the slot");
    let runs = s
        .list_runs(
            &Scope::AllTenants,
            &bulwark_store::automation::RunFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, "schedule");
    let rows = s.list_schedules().await.expect("list");
    assert_eq!(rows[0].next_fire_at, minute(1));
    assert_eq!(rows[0].last_fired_at, Some(fire.fired_at));
    // The job of the run was written with it.
    let jobs = s
        .claim_jobs("w", &[JOB_PLAYBOOK_RUN], 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 1);
    // A slot that is not the row's current one fires nothing.
    assert!(s.fire_schedule(&fire).await.expect("stale").is_none());
}

#[tokio::test]
async fn batched_saves_write_only_the_runs_the_worker_holds_and_finish_jobs() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let t = tenant(&s, "acme").await;
    let pb = s
        .create_playbook(
            &ChangeCtx::system("t"),
            &Scope::AllTenants,
            t,
            write("pb", None),
        )
        .await
        .expect("pb");
    let runs = s
        .create_runs(&[run_of(t, pb.id), run_of(t, pb.id), run_of(t, pb.id)])
        .await
        .expect("runs");
    let claimed = s
        .claim_jobs("w", &[JOB_PLAYBOOK_RUN], 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    // The second run is cancelled meanwhile: its job is gone, the worker no longer holds it.
    s.cancel_run(&ChangeCtx::system("t"), &Scope::AllTenants, runs[1])
        .await
        .expect("cancel");
    let step = |r: &str| bulwark_store::automation::NewStep {
        step_ref: r.into(),
        item_index: None,
        attempt: 1,
        action: "script".into(),
        status: "succeeded".into(),
        input: json!({"n": 1}),
        output: Some(json!(2)),
        error: None,
        started_at: bulwark_core::time::now(),
        finished_at: bulwark_core::time::now(),
    };
    let save = |run: Uuid, status: &str, done: bool| bulwark_store::automation::RunSave {
        run_id: run,
        progress: RunProgress {
            step: Some(step("a")),
            ..progress(status)
        },
        done,
    };
    let held = s
        .save_runs(
            "w",
            &[
                save(runs[0], "running", false),
                save(runs[1], "running", false),
                save(runs[2], "succeeded", true),
            ],
        )
        .await
        .expect("save");
    assert_eq!(held, vec![true, false, true]);
    let steps = |run: Uuid| {
        let s = Arc::clone(&s);
        async move {
            s.run_steps(&Scope::AllTenants, run)
                .await
                .expect("steps")
                .len()
        }
    };
    assert_eq!(steps(runs[0]).await, 1);
    assert_eq!(
        steps(runs[1]).await,
        0,
        "nothing written for a run the worker lost"
    );
    assert_eq!(steps(runs[2]).await, 1);
    let status = |run: Uuid| {
        let s = Arc::clone(&s);
        async move {
            s.get_run(&Scope::AllTenants, run)
                .await
                .expect("run")
                .status
        }
    };
    assert_eq!(status(runs[0]).await, "running");
    assert_eq!(
        status(runs[1]).await,
        "cancelled",
        "the cancel is not overwritten"
    );
    assert_eq!(status(runs[2]).await, "succeeded");
    // The finished run's job is gone with its save; the running one's is still held.
    let left: i64 = s
        .job_counts()
        .await
        .expect("jobs")
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(left, 1);
    assert!(
        s.heartbeat(
            claimed
                .iter()
                .find(|j| j.run_id == Some(runs[0]))
                .expect("job")
                .id,
            "w",
            LEASE
        )
        .await
        .expect("beat")
    );
}

#[tokio::test]
async fn a_runs_context_is_saved_once_and_read_back_into_its_state() {
    let db = fresh().await;
    let s = Arc::clone(&db.store);
    let t = tenant(&s, "acme").await;
    let pb = s
        .create_playbook(
            &ChangeCtx::system("t"),
            &Scope::AllTenants,
            t,
            write("pb", None),
        )
        .await
        .expect("pb");
    let runs = s
        .create_runs(&[run_of(t, pb.id), run_of(t, pb.id)])
        .await
        .expect("runs");
    // The worker reads what it drives in one go, with the playbook's enabled flag.
    let mut to_drive = s.runs_to_drive(&runs).await.expect("runs to drive");
    to_drive.sort_by_key(|(r, _)| r.id);
    assert_eq!(
        to_drive.iter().map(|(r, e)| (r.id, *e)).collect::<Vec<_>>(),
        vec![(runs[0], true), (runs[1], true)]
    );
    s.claim_jobs("w", &[JOB_PLAYBOOK_RUN], 10, LEASE)
        .await
        .expect("claim");
    let context = json!({"alert": {"title": "ssh brute force"}, "input": null});
    let save = |run: Uuid, state: serde_json::Value, context: Option<serde_json::Value>| {
        bulwark_store::automation::RunSave {
            run_id: run,
            progress: RunProgress {
                state,
                context,
                ..progress("running")
            },
            done: false,
        }
    };
    // First save: the context apart, the state without it (batched path).
    s.save_runs(
        "w",
        &[
            save(runs[0], json!({"step": 1}), Some(context.clone())),
            save(runs[1], json!({"step": 1, "trigger": {"own": true}}), None),
        ],
    )
    .await
    .expect("first save");
    // Later saves leave it out and keep it (batched and single paths).
    s.save_runs("w", &[save(runs[0], json!({"step": 2}), None)])
        .await
        .expect("second save");
    s.save_run(
        runs[0],
        "w",
        RunProgress {
            state: json!({"step": 3}),
            ..progress("running")
        },
    )
    .await
    .expect("third save");
    let state = |run: Uuid| {
        let s = Arc::clone(&s);
        async move {
            s.get_run(&Scope::AllTenants, run)
                .await
                .expect("run")
                .state
                .expect("state")
        }
    };
    assert_eq!(state(runs[0]).await, json!({"step": 3, "trigger": context}));
    // A state that carries its own trigger (saved before the context column) keeps it.
    assert_eq!(
        state(runs[1]).await,
        json!({"step": 1, "trigger": {"own": true}})
    );
    // A disabled playbook shows in what the worker reads.
    s.set_playbook_enabled(&ChangeCtx::system("t"), &Scope::AllTenants, t, pb.id, false)
        .await
        .expect("disable");
    let to_drive = s.runs_to_drive(&runs[..1]).await.expect("runs to drive");
    assert!(!to_drive[0].1, "the playbook is disabled");
}
