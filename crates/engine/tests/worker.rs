//! The worker against a real database (SQLite by default, PostgreSQL with
//! `BULWARK_TEST_DATABASE_URL`): runs to completion, crash resume, approvals, http.request with
//! the destination allow-list, retries, cancellation, and several workers sharing the queue.

use bulwark_core::{AlertAccess, Scope, TenantId};
use bulwark_engine::{ActionContext, ActionRegistry, EngineConfig, run_worker};
use bulwark_playbook::{Advance, Catalog, RunState, Sandbox, StepOutcome};
use bulwark_store::automation::{
    Decider, JOB_PLAYBOOK_RUN, NewRun, NewStep, PlaybookWrite, RunProgress, RunRecord,
};
use bulwark_store::testing::fresh;
use bulwark_store::{ChangeCtx, NewTenant, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

fn ctx() -> ChangeCtx {
    ChangeCtx::system("test")
}

async fn tenant(store: &Store) -> TenantId {
    store
        .create_tenant(
            &ctx(),
            NewTenant {
                slug: "acme".into(),
                name: "Acme".into(),
            },
        )
        .await
        .expect("tenant")
        .id
}

async fn alert(store: &Store, t: TenantId) -> Uuid {
    let payload = json!({"title": "ssh brute force", "source_id": "s-1", "severity": "high"});
    let batch = vec![bulwark_store::ingest::IncomingAlert {
        tenant_id: t,
        alert: bulwark_normalize::normalize(bulwark_normalize::Source::Generic, &payload)
            .expect("normalize"),
        raw: payload.to_string(),
        received_at: chrono::Utc::now(),
        actor: ctx(),
        triggers: Default::default(),
    }];
    store
        .ingest(&batch, chrono::Duration::hours(24))
        .await
        .expect("ingest")[0]
        .alert_id
}

/// Stores a playbook (validated by bulwark-playbook first); returns (id, version).
async fn playbook(store: &Store, t: TenantId, spec: Value) -> (Uuid, i32, String) {
    let pb = bulwark_playbook::parse_json(&spec, &Catalog::builtin()).expect("valid playbook");
    let rec = store
        .create_playbook(
            &ctx(),
            &Scope::AllTenants,
            t,
            PlaybookWrite {
                tenant_id: Some(t),
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
        .expect("create playbook");
    (rec.id, rec.version, rec.name)
}

async fn start_runs(
    store: &Store,
    t: TenantId,
    pb: &(Uuid, i32, String),
    alert_id: Option<Uuid>,
    n: usize,
) -> Vec<Uuid> {
    let runs: Vec<NewRun> = (0..n)
        .map(|i| NewRun {
            tenant_id: t,
            playbook_id: pb.0,
            playbook_name: pb.2.clone(),
            playbook_version: pb.1,
            trigger: if alert_id.is_some() {
                "alert.created".into()
            } else {
                "manual".into()
            },
            alert_id,
            incident_id: None,
            input: json!({ "n": i }),
            requested_by: None,
            priority: 100,
        })
        .collect();
    store.create_runs(&runs).await.expect("create runs")
}

fn config(name: &str, allow: &[&str]) -> EngineConfig {
    EngineConfig {
        node_id: name.into(),
        poll_interval: Duration::from_millis(50),
        http_allow: allow.iter().map(|s| s.to_string()).collect(),
        ..EngineConfig::default()
    }
}

struct Running {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("worker stops")
            .expect("worker task");
    }
}

fn spawn_worker(store: &Store, cfg: EngineConfig) -> Running {
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(run_worker(store.clone(), cfg, rx));
    Running { stop: tx, handle }
}

async fn wait_status(store: &Store, run: Uuid, statuses: &[&str]) -> RunRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = store
            .get_run(&Scope::AllTenants, run)
            .await
            .expect("get run");
        if statuses.contains(&r.status.as_str()) {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {run} still {} (error {:?}), wanted {statuses:?}",
            r.status,
            r.error
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn access(t: TenantId) -> AlertAccess {
    AlertAccess::unrestricted(Scope::Tenants(vec![t]))
}

fn triage_spec(name: &str) -> Value {
    json!({
        "name": name,
        "triggers": [{"on": "alert.created"}],
        "actions": [
            {"ref": "tag", "action": "alert.update",
             "args": {"status": "triaged", "tags": ["auto-triaged"]}},
            {"ref": "note", "action": "alert.comment", "depends_on": ["tag"],
             "args": {"text": "triaged by {{ playbook.name }}: {{ alert.title }}"}},
            {"ref": "done", "action": "set", "depends_on": ["note"],
             "args": {"values": {"comment": "{{ actions.note.result.comment_id }}"}}}
        ],
        "outputs": {"comment": "{{ vars.comment }}"}
    })
}

#[tokio::test]
async fn runs_a_playbook_to_completion() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store).await;
    let a = alert(&store, t).await;
    let pb = playbook(&store, t, triage_spec("triage")).await;
    let run = start_runs(&store, t, &pb, Some(a), 1).await[0];
    let w = spawn_worker(&store, config("w1", &[]));
    let r = wait_status(&store, run, &["succeeded", "failed", "cancelled"]).await;
    w.stop().await;
    assert_eq!(r.status, "succeeded", "error: {:?}", r.error);
    assert!(r.finished_at.is_some());

    let detail = store.get_alert(&access(t), a).await.expect("alert");
    let dv = serde_json::to_value(&detail).expect("json");
    assert_eq!(dv["status"], "triaged", "{dv}");
    assert!(
        dv["tags"]
            .as_array()
            .expect("tags")
            .contains(&json!("auto-triaged"))
    );
    let comments = store
        .list_alert_comments(&access(t), a)
        .await
        .expect("comments");
    assert_eq!(comments.len(), 1);
    let cv = serde_json::to_value(&comments[0]).expect("json");
    assert!(
        cv.to_string()
            .contains("triaged by triage: ssh brute force"),
        "{cv}"
    );
    // Attributed to the playbook in the timeline.
    let acts = store
        .alert_activities(&access(t), a, None, 100)
        .await
        .expect("activities");
    assert!(
        acts.iter()
            .any(|x| x.actor_kind == "playbook" && x.actor_id.as_deref() == Some(&run.to_string())),
        "{acts:?}"
    );

    let steps = store
        .run_steps(&Scope::AllTenants, run)
        .await
        .expect("steps");
    let refs: Vec<&str> = steps.iter().map(|s| s.step_ref.as_str()).collect();
    assert_eq!(refs, ["tag", "note"]);
    for s in &steps {
        assert_eq!(s.status, "succeeded");
        assert_eq!(s.attempt, 1);
        assert!(s.output.is_some());
        assert!(s.duration_ms >= 0);
        assert_eq!(s.worker, "w1");
    }
    assert_eq!(steps[1].input["text"], "triaged by triage: ssh brute force");
    let outputs = r.outputs.expect("outputs");
    assert_eq!(
        outputs["comment"],
        json!(steps[1].output.as_ref().expect("out")["comment_id"])
    );
    let counts = store.job_counts().await.expect("counts");
    assert!(counts.iter().all(|(_, n)| *n == 0), "{counts:?}");
}

/// Worker A claims the run, executes and saves the first step, executes the second step's
/// side effect and "dies" before saving it; its lease lapses; worker B finishes the run.
/// Saved steps never run again; the cut-off one runs twice (at-least-once).
#[tokio::test]
async fn a_crashed_worker_is_resumed_by_another() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store).await;
    let a = alert(&store, t).await;
    let pb_rec = playbook(&store, t, triage_spec("triage")).await;
    let run = start_runs(&store, t, &pb_rec, Some(a), 1).await[0];

    let jobs = store
        .claim_jobs("A", &[JOB_PLAYBOOK_RUN], 10, Duration::from_millis(500))
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 1);
    let spec = store
        .playbook_version_spec(pb_rec.0, pb_rec.1)
        .await
        .expect("spec");
    let pb = bulwark_playbook::parse_json(&spec, &Catalog::builtin()).expect("parse");
    let detail = store.get_alert(&access(t), a).await.expect("alert");
    let trig = json!({"alert": detail, "input": {}, "playbook": {"name": "triage"}});
    let mut state = RunState::new(&pb, run, trig);
    let registry = ActionRegistry::builtin(&EngineConfig::default());
    let actx = |key: &str| ActionContext {
        store: store.clone(),
        tenant_id: t,
        run_id: run,
        playbook_name: "triage".into(),
        alert_id: Some(a),
        incident_id: None,
        idempotency_key: key.into(),
        timeout: Duration::from_secs(10),
        platform_tenant: t,
        alert_writer: None,
    };
    // Step 1: executed and saved.
    let Advance::Steps(steps) = state.advance(&pb, Sandbox::shared(), chrono::Utc::now()) else {
        panic!("expected steps");
    };
    let s = &steps[0];
    let out = registry
        .get(&s.action)
        .expect("action")
        .execute(&actx(&s.idempotency_key), &s.input)
        .await
        .expect("tag");
    let started = chrono::Utc::now();
    state
        .record(
            &s.ref_,
            s.item_index,
            StepOutcome::Succeeded {
                output: out.clone(),
            },
        )
        .expect("record");
    store
        .save_run(
            run,
            "A",
            RunProgress {
                status: state.status.as_str().into(),
                state: serde_json::to_value(&state).expect("state"),
                context: None,
                outputs: None,
                error: None,
                step: Some(NewStep {
                    step_ref: s.ref_.clone(),
                    item_index: None,
                    attempt: 1,
                    action: s.action.clone(),
                    status: "succeeded".into(),
                    input: s.input.clone(),
                    output: Some(out),
                    error: None,
                    started_at: started,
                    finished_at: chrono::Utc::now(),
                }),
            },
        )
        .await
        .expect("save as A");
    // Step 2: side effect happens, then A dies before saving.
    let Advance::Steps(steps) = state.advance(&pb, Sandbox::shared(), chrono::Utc::now()) else {
        panic!("expected steps");
    };
    let s = &steps[0];
    assert_eq!(s.ref_, "note");
    registry
        .get(&s.action)
        .expect("action")
        .execute(&actx(&s.idempotency_key), &s.input)
        .await
        .expect("comment");

    tokio::time::sleep(Duration::from_millis(700)).await;
    let w = spawn_worker(&store, config("B", &[]));
    let r = wait_status(&store, run, &["succeeded", "failed"]).await;
    w.stop().await;
    assert_eq!(r.status, "succeeded", "{:?}", r.error);
    // A can no longer save.
    let err = store
        .save_run(
            run,
            "A",
            RunProgress {
                status: "running".into(),
                state: json!({}),
                context: None,
                outputs: None,
                error: None,
                step: None,
            },
        )
        .await
        .expect_err("A lost the run");
    assert!(matches!(err, bulwark_store::StoreError::State(_)), "{err}");

    let steps = store
        .run_steps(&Scope::AllTenants, run)
        .await
        .expect("steps");
    let by: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s.step_ref.as_str(), s.worker.as_str()))
        .collect();
    assert_eq!(by, [("tag", "A"), ("note", "B")]);
    // The saved step ran once (tags are a set anyway); the cut-off comment ran twice.
    let comments = store.list_alert_comments(&access(t), a).await.expect("c");
    assert_eq!(
        comments.len(),
        2,
        "at-least-once: the cut-off step ran again"
    );
    let acts = store
        .alert_activities(&access(t), a, None, 100)
        .await
        .expect("activities");
    assert_eq!(acts.iter().filter(|x| x.kind == "tags").count(), 1);
    assert_eq!(acts.iter().filter(|x| x.kind == "status").count(), 1);
}

fn approval_spec(name: &str, on_timeout: &str) -> Value {
    json!({
        "name": name,
        "triggers": [{"on": "alert.created"}],
        "actions": [
            {"ref": "ask", "action": "approval",
             "args": {"message": "contain {{ alert.title }}?", "on_timeout": on_timeout}},
            {"ref": "tag", "action": "alert.update", "depends_on": ["ask"],
             "args": {"tags": ["approved"]}}
        ]
    })
}

fn decider() -> Decider {
    Decider {
        analyst_id: Uuid::now_v7(),
        username: "alice".into(),
        role: "analyst".into(),
    }
}

async fn job_count(store: &Store, status: &str) -> i64 {
    store
        .job_counts()
        .await
        .expect("counts")
        .into_iter()
        .find(|(s, _)| s == status)
        .map(|(_, n)| n)
        .unwrap_or(0)
}

#[tokio::test]
async fn approvals_pause_and_resume_runs() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store).await;
    let a = alert(&store, t).await;
    let pb = playbook(&store, t, approval_spec("contain", "fail")).await;
    let w = spawn_worker(&store, config("w1", &[]));

    // Approved → resumes and finishes.
    let run = start_runs(&store, t, &pb, Some(a), 1).await[0];
    wait_status(&store, run, &["paused"]).await;
    assert_eq!(job_count(&store, "parked").await, 1);
    let ap = store
        .approval_for_step(run, "ask", None)
        .await
        .expect("approval")
        .expect("requested");
    assert_eq!(ap.status, "pending");
    assert_eq!(ap.message, "contain ssh brute force?");
    store
        .decide_approval(&ctx(), &Scope::AllTenants, ap.id, &decider(), true, None)
        .await
        .expect("approve");
    let r = wait_status(&store, run, &["succeeded", "failed"]).await;
    assert_eq!(r.status, "succeeded", "{:?}", r.error);
    let steps = store.run_steps(&Scope::AllTenants, run).await.expect("s");
    let last_ask = steps.iter().rfind(|s| s.step_ref == "ask").expect("ask");
    assert_eq!(last_ask.status, "succeeded");
    assert_eq!(
        last_ask.output.as_ref().expect("out")["decided_by"],
        json!(["alice"])
    );
    assert!(steps.iter().any(|s| s.step_ref == "tag"));

    // Rejected → the run fails.
    let run = start_runs(&store, t, &pb, Some(a), 1).await[0];
    wait_status(&store, run, &["paused"]).await;
    let ap = store
        .approval_for_step(run, "ask", None)
        .await
        .expect("approval")
        .expect("requested");
    store
        .decide_approval(&ctx(), &Scope::AllTenants, ap.id, &decider(), false, None)
        .await
        .expect("reject");
    let r = wait_status(&store, run, &["succeeded", "failed"]).await;
    assert_eq!(r.status, "failed");
    let steps = store.run_steps(&Scope::AllTenants, run).await.expect("s");
    assert!(steps.iter().all(|s| s.step_ref != "tag"));
    assert!(
        steps
            .iter()
            .any(|s| s.error.as_deref() == Some("rejected by alice")),
        "{steps:?}"
    );

    // Expired with on_timeout fail → the run fails.
    let run = start_runs(&store, t, &pb, Some(a), 1).await[0];
    wait_status(&store, run, &["paused"]).await;
    let expired = store
        .expire_approvals(chrono::Utc::now() + chrono::Duration::hours(5))
        .await
        .expect("expire");
    assert_eq!(expired.len(), 1);
    let r = wait_status(&store, run, &["succeeded", "failed"]).await;
    assert_eq!(r.status, "failed");
    w.stop().await;
    assert_eq!(job_count(&store, "parked").await, 0);
}

#[tokio::test]
async fn an_expired_escalating_approval_escalates_the_alert_and_goes_on() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store).await;
    let a = alert(&store, t).await;
    let pb = playbook(&store, t, approval_spec("contain", "escalate")).await;
    let w = spawn_worker(&store, config("w1", &[]));
    let run = start_runs(&store, t, &pb, Some(a), 1).await[0];
    wait_status(&store, run, &["paused"]).await;
    store
        .expire_approvals(chrono::Utc::now() + chrono::Duration::hours(5))
        .await
        .expect("expire");
    let r = wait_status(&store, run, &["succeeded", "failed"]).await;
    w.stop().await;
    assert_eq!(r.status, "succeeded", "{:?}", r.error);
    let dv = serde_json::to_value(store.get_alert(&access(t), a).await.expect("a")).expect("j");
    assert_eq!(dv["status"], "escalated");
}

#[tokio::test]
async fn cancelling_a_paused_run_is_final() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store).await;
    let a = alert(&store, t).await;
    let pb = playbook(&store, t, approval_spec("contain", "fail")).await;
    let w = spawn_worker(&store, config("w1", &[]));
    let run = start_runs(&store, t, &pb, Some(a), 1).await[0];
    wait_status(&store, run, &["paused"]).await;
    let ap = store
        .approval_for_step(run, "ask", None)
        .await
        .expect("approval")
        .expect("requested");
    store
        .cancel_run(&ctx(), &Scope::AllTenants, run)
        .await
        .expect("cancel");
    // A late decision cannot wake it.
    let _ = store
        .decide_approval(&ctx(), &Scope::AllTenants, ap.id, &decider(), true, None)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.stop().await;
    let r = store.get_run(&Scope::AllTenants, run).await.expect("run");
    assert_eq!(r.status, "cancelled");
    let steps = store.run_steps(&Scope::AllTenants, run).await.expect("s");
    assert!(steps.iter().all(|s| s.step_ref != "tag"));
    assert!(
        store
            .job_counts()
            .await
            .expect("c")
            .iter()
            .all(|(_, n)| *n == 0)
    );
}

#[tokio::test]
async fn a_disabled_playbook_cancels_its_queued_runs() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store).await;
    let a = alert(&store, t).await;
    let pb = playbook(&store, t, triage_spec("triage")).await;
    let run = start_runs(&store, t, &pb, Some(a), 1).await[0];
    store
        .set_playbook_enabled(&ctx(), &Scope::AllTenants, t, pb.0, false)
        .await
        .expect("disable");
    let w = spawn_worker(&store, config("w1", &[]));
    let r = wait_status(&store, run, &["cancelled", "succeeded", "failed"]).await;
    w.stop().await;
    assert_eq!(r.status, "cancelled");
    assert_eq!(r.error.as_deref(), Some("playbook disabled"));
}

/// A local HTTP server: `/ok` answers JSON; `/flaky` answers 503 twice, then 200.
async fn http_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new()
        .route(
            "/ok",
            axum::routing::post(|axum::Json(v): axum::Json<Value>| async move {
                axum::Json(json!({"echo": v, "ok": true}))
            }),
        )
        .route(
            "/flaky",
            axum::routing::get(move || {
                let h = h.clone();
                async move {
                    if h.fetch_add(1, Ordering::SeqCst) < 2 {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy").into_response_parts()
                    } else {
                        (axum::http::StatusCode::OK, "fine").into_response_parts()
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

trait IntoParts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl IntoParts for (axum::http::StatusCode, &'static str) {
    fn into_response_parts(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

fn http_spec(name: &str, url: &str, method: &str) -> Value {
    json!({
        "name": name,
        "triggers": [{"on": "manual"}],
        "actions": [
            {"ref": "call", "action": "http.request",
             "args": {"method": method, "url": url, "body": {"run": "{{ input.n }}"}},
             "retry": {"max_attempts": 3, "backoff": "fixed", "delay": "1s"}}
        ],
        "outputs": {"status": "{{ actions.call.result.status }}"}
    })
}

#[tokio::test]
async fn http_request_respects_the_allow_list() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store).await;
    let (addr, _) = http_server().await;
    let pb = playbook(
        &store,
        t,
        http_spec("call", &format!("http://{addr}/ok"), "POST"),
    )
    .await;

    // Allowed: works.
    let run = start_runs(&store, t, &pb, None, 1).await[0];
    let w = spawn_worker(&store, config("w1", &["127.0.0.1/32"]));
    let r = wait_status(&store, run, &["succeeded", "failed"]).await;
    w.stop().await;
    assert_eq!(r.status, "succeeded", "{:?}", r.error);
    let steps = store.run_steps(&Scope::AllTenants, run).await.expect("s");
    let out = steps[0].output.as_ref().expect("output");
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"]["ok"], true);
    assert_eq!(out["body"]["echo"]["run"], json!(0));

    // Not allowed: a non-retryable error naming the address (one attempt only).
    let run = start_runs(&store, t, &pb, None, 1).await[0];
    let w = spawn_worker(&store, config("w2", &[]));
    let r = wait_status(&store, run, &["succeeded", "failed"]).await;
    w.stop().await;
    assert_eq!(r.status, "failed");
    let steps = store.run_steps(&Scope::AllTenants, run).await.expect("s");
    assert_eq!(steps.len(), 1, "{steps:?}");
    let err = steps[0].error.as_deref().expect("error");
    assert!(
        err.contains("127.0.0.1") && err.contains("blocked"),
        "{err}"
    );
}

#[tokio::test]
async fn a_retryable_failure_is_retried() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store).await;
    let (addr, hits) = http_server().await;
    let pb = playbook(
        &store,
        t,
        http_spec("flaky", &format!("http://{addr}/flaky"), "GET"),
    )
    .await;
    let run = start_runs(&store, t, &pb, None, 1).await[0];
    let w = spawn_worker(&store, config("w1", &["127.0.0.1"]));
    let r = wait_status(&store, run, &["succeeded", "failed"]).await;
    w.stop().await;
    assert_eq!(r.status, "succeeded", "{:?}", r.error);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let steps = store.run_steps(&Scope::AllTenants, run).await.expect("s");
    let seen: Vec<(i32, &str)> = steps
        .iter()
        .map(|s| (s.attempt, s.status.as_str()))
        .collect();
    assert_eq!(seen, [(1, "failed"), (2, "failed"), (3, "succeeded")]);
    assert!(steps[0].error.as_deref().expect("e").contains("503"));
    assert_eq!(steps[2].output.as_ref().expect("o")["body"], "fine");
}

#[tokio::test]
async fn three_workers_share_the_queue_without_running_anything_twice() {
    let db = fresh().await;
    let store = db.store.clone();
    let t = tenant(&store).await;
    let spec = json!({
        "name": "compute",
        "triggers": [{"on": "manual"}],
        "actions": [
            {"ref": "one", "action": "script", "args": {"source": "input.n + 1", "input": {"n": "{{ input.n }}"}}},
            {"ref": "two", "action": "script", "depends_on": ["one"],
             "args": {"source": "input * 2", "input": "{{ actions.one.result }}"}}
        ],
        "outputs": {"result": "{{ actions.two.result }}"}
    });
    let pb = playbook(&store, t, spec).await;
    let n = 2000;
    let runs = start_runs(&store, t, &pb, None, n).await;
    let workers: Vec<Running> = (0..3)
        .map(|i| spawn_worker(&store, config(&format!("w{i}"), &[])))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let left: i64 = store
            .job_counts()
            .await
            .expect("counts")
            .iter()
            .map(|(_, n)| n)
            .sum();
        if left == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{left} jobs left");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for w in workers {
        w.stop().await;
    }
    let mut per_worker = std::collections::HashMap::new();
    for run in runs {
        let r = store.get_run(&Scope::AllTenants, run).await.expect("run");
        assert_eq!(r.status, "succeeded", "{run}: {:?}", r.error);
        let steps = store.run_steps(&Scope::AllTenants, run).await.expect("s");
        let refs: Vec<&str> = steps.iter().map(|s| s.step_ref.as_str()).collect();
        assert_eq!(refs, ["one", "two"], "run {run} executed steps {refs:?}");
        for s in &steps {
            *per_worker.entry(s.worker.clone()).or_insert(0) += 1;
        }
    }
    assert_eq!(per_worker.values().sum::<i32>(), 2 * n as i32);
    eprintln!("steps per worker: {per_worker:?}");
}
