//! Built-in integrations against local fakes of the vendors' APIs (responses shaped like the
//! vendors' documented ones; nothing leaves 127.0.0.1), instances stored in a real database
//! (SQLite, or PostgreSQL with `BULWARK_TEST_DATABASE_URL`), and a playbook using an
//! integration action through the real worker.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bulwark_core::{Scope, TenantId};
use bulwark_integrations::{Integrations, action::engine_actions};
use bulwark_store::integrations::IntegrationWrite;
use bulwark_store::testing::fresh;
use bulwark_store::{ChangeCtx, NewTenant, Store};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

#[derive(Default)]
struct Fake {
    calls: AtomicUsize,
    flaky: AtomicUsize,
    seen: Mutex<Vec<String>>,
}

type S = State<Arc<Fake>>;

fn vt_err(status: StatusCode, code: &str, msg: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": msg}})),
    )
        .into_response()
}

async fn vt_ip(State(f): S, h: HeaderMap, Path(ip): Path<String>) -> Response {
    f.calls.fetch_add(1, Ordering::SeqCst);
    if h.get("x-apikey").and_then(|v| v.to_str().ok()) != Some("vt-secret-key") {
        return vt_err(
            StatusCode::UNAUTHORIZED,
            "WrongCredentialsError",
            "Wrong API key",
        );
    }
    match ip.as_str() {
        "9.9.9.9" => vt_err(StatusCode::NOT_FOUND, "NotFoundError", "not found"),
        "7.7.7.7" => (StatusCode::OK, "<html>proxy error</html>").into_response(),
        "6.6.6.6" if f.flaky.fetch_add(1, Ordering::SeqCst) == 0 => {
            let mut r = vt_err(StatusCode::TOO_MANY_REQUESTS, "QuotaExceededError", "quota");
            r.headers_mut()
                .insert("retry-after", "1".parse().expect("header"));
            r
        }
        "5.5.5.5" => vt_err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "TransientError",
            "try later",
        ),
        _ => {
            let malicious = if ip == "1.1.1.1" { 0 } else { 7 };
            Json(json!({"data": {"id": ip, "type": "ip_address", "attributes": {
                "last_analysis_stats": {"harmless": 60, "malicious": malicious, "suspicious": 1, "undetected": 20, "timeout": 0},
                "reputation": -12, "country": "NL", "as_owner": "Evil Hosting", "tags": []}}}))
            .into_response()
        }
    }
}

async fn abuse_check(h: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if h.get("key").and_then(|v| v.to_str().ok()) != Some("abuse-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors": [{"detail": "Authentication failed. Your API key is either missing, incorrect, or revoked.", "status": 401}]})),
        )
            .into_response();
    }
    let ip = q.get("ipAddress").cloned().unwrap_or_default();
    Json(json!({"data": {"ipAddress": ip, "isPublic": true, "ipVersion": 4, "isWhitelisted": false,
        "abuseConfidenceScore": 100, "countryCode": "CN", "usageType": "Data Center/Web Hosting/Transit",
        "isp": "Example ISP", "domain": "example.cn", "totalReports": 1234, "numDistinctUsers": 80,
        "lastReportedAt": "2024-05-10T12:00:00+00:00"}}))
    .into_response()
}

async fn slack_post(h: HeaderMap, Json(b): Json<Value>) -> Response {
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer xoxb-slack") {
        return Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    if b["channel"] == "#nope" {
        return Json(json!({"ok": false, "error": "channel_not_found"})).into_response();
    }
    Json(json!({"ok": true, "channel": "C024BE91L", "ts": "1401383885.000061", "message": {"text": b["text"]}}))
        .into_response()
}

async fn token(body: String) -> Response {
    if body.contains("client_secret=cs-secret") {
        Json(json!({"access_token": "tok-123", "token_type": "bearer", "expires_in": 1799}))
            .into_response()
    } else {
        (StatusCode::UNAUTHORIZED, Json(json!({"errors": [{"code": 401, "message": "access denied, invalid client credentials"}]}))).into_response()
    }
}

async fn contain(
    State(f): S,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    Json(b): Json<Value>,
) -> Response {
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer tok-123") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors": [{"code": 401, "message": "access denied"}]})),
        )
            .into_response();
    }
    f.seen.lock().expect("lock").push(format!(
        "{}:{}",
        q.get("action_name").cloned().unwrap_or_default(),
        b["ids"]
    ));
    Json(json!({"meta": {"query_time": 0.1}, "resources": [{"id": b["ids"][0], "path": ""}], "errors": []})).into_response()
}

async fn misp_search(h: HeaderMap, Json(b): Json<Value>) -> Response {
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some("misp-key") {
        return (StatusCode::FORBIDDEN, Json(json!({"name": "Authentication failed.", "message": "Authentication failed.", "url": "/attributes/restSearch"}))).into_response();
    }
    let hit = b["value"] == "evil.example.com";
    let attrs = if hit {
        json!([{"id": "1", "event_id": "42", "type": "domain", "category": "Network activity", "value": "evil.example.com", "to_ids": true, "Event": {"info": "APT C2"}}])
    } else {
        json!([])
    };
    Json(json!({"response": {"Attribute": attrs}})).into_response()
}

async fn start_fake() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/api/v3/ip_addresses/{ip}", get(vt_ip))
        .route("/api/v2/check", get(abuse_check))
        .route("/api/chat.postMessage", post(slack_post))
        .route("/oauth2/token", post(token))
        .route("/devices/entities/devices-actions/v2", post(contain))
        .route("/attributes/restSearch", post(misp_search))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), fake)
}

struct Env {
    store: Store,
    tenant: TenantId,
    rt: Arc<Integrations>,
    base: String,
    fake: Arc<Fake>,
    _db: bulwark_store::testing::TestDb,
}

async fn env() -> Env {
    let db = fresh().await;
    let store = db.store.clone();
    let tenant = store
        .create_tenant(
            &ChangeCtx::system("test"),
            NewTenant {
                slug: "acme".into(),
                name: "Acme".into(),
            },
        )
        .await
        .expect("tenant")
        .id;
    let (base, fake) = start_fake().await;
    Env {
        store,
        tenant,
        rt: Arc::new(Integrations::for_tests(&["127.0.0.1"])),
        base,
        fake,
        _db: db,
    }
}

impl Env {
    async fn add(
        &self,
        ty: &str,
        name: &str,
        config: Value,
        secrets: Value,
    ) -> bulwark_store::integrations::IntegrationRecord {
        let id = Uuid::now_v7();
        let secrets: Map<String, Value> = secrets.as_object().cloned().unwrap_or_default();
        self.store
            .create_integration(
                &ChangeCtx::system("test"),
                &Scope::AllTenants,
                IntegrationWrite {
                    id,
                    tenant_id: self.tenant,
                    type_name: ty.into(),
                    name: name.into(),
                    description: None,
                    config,
                    secrets: self.rt.seal(id, &secrets),
                    secret_fields: secrets.keys().cloned().collect(),
                    enabled: true,
                    is_default: false,
                    enrichment: true,
                },
            )
            .await
            .expect("create integration")
    }
}

#[tokio::test]
async fn virustotal_lookups_errors_retries_and_secrets() {
    let e = env().await;
    let rec = e
        .add(
            "virustotal",
            "vt",
            json!({"base_url": format!("{}/api/v3", e.base), "rate_limit_per_minute": 6000}),
            json!({"api_key": "vt-secret-key"}),
        )
        .await;
    // The secret is stored encrypted.
    assert!(
        !rec.secrets
            .clone()
            .unwrap_or_default()
            .contains("vt-secret-key")
    );
    let inst = e.rt.open(&rec).expect("open");
    assert!(!format!("{inst:?}").contains("vt-secret-key"));
    let t = Duration::from_secs(20);

    let out =
        e.rt.call(&inst, "lookup_ip", &json!({"ip": "203.0.113.9"}), "k", t)
            .await
            .expect("lookup");
    assert_eq!(out["malicious"], 7);
    assert_eq!(out["as_owner"], "Evil Hosting");
    let def = inst.ty.action("lookup_ip").expect("action");
    let (score, verdict) = Integrations::reputation(def, &json!({}), &out).expect("reputation");
    assert_eq!((score, verdict.as_str()), (73, "malicious"));

    // Unknown to VirusTotal: not an error, no verdict.
    let out =
        e.rt.call(&inst, "lookup_ip", &json!({"ip": "9.9.9.9"}), "k", t)
            .await
            .expect("404");
    assert_eq!(out, json!({"found": false}));
    assert_eq!(
        Integrations::reputation(def, &json!({}), &out)
            .expect("rep")
            .1,
        "unknown"
    );

    // 429 with Retry-After: retried within the call.
    let out =
        e.rt.call(&inst, "lookup_ip", &json!({"ip": "6.6.6.6"}), "k", t)
            .await
            .expect("retried");
    assert_eq!(out["malicious"], 7);

    // Garbage: a recorded error, not a crash.
    let err =
        e.rt.call(&inst, "lookup_ip", &json!({"ip": "7.7.7.7"}), "k", t)
            .await
            .expect_err("garbage");
    assert!(
        err.message.contains("not JSON") && !err.retryable,
        "{err:?}"
    );

    // Bad input names the input.
    let err =
        e.rt.call(&inst, "lookup_ip", &json!({"addr": "1.2.3.4"}), "k", t)
            .await
            .expect_err("input");
    assert!(err.message.starts_with("input.addr"), "{err:?}");

    // A wrong key fails the health check with the vendor's reason, and no secret appears.
    let bad = e
        .add(
            "virustotal",
            "vt-bad",
            json!({"base_url": format!("{}/api/v3", e.base), "rate_limit_per_minute": 6000}),
            json!({"api_key": "wrong-key-0000"}),
        )
        .await;
    let bad = e.rt.open(&bad).expect("open");
    let h = e.rt.health(&bad).await;
    assert!(!h.ok);
    assert!(
        h.message.contains("HTTP 401") && h.message.contains("Wrong API key"),
        "{}",
        h.message
    );
    assert!(!h.message.contains("wrong-key-0000"));
    assert!(e.rt.health(&inst).await.ok);

    // 5xx: retried, then the circuit opens and calls fail fast.
    let err =
        e.rt.call(&inst, "lookup_ip", &json!({"ip": "5.5.5.5"}), "k", t)
            .await
            .expect_err("5xx");
    assert!(
        err.retryable && err.message.contains("HTTP 500") && err.message.contains("try later"),
        "{err:?}"
    );
    let err =
        e.rt.call(&inst, "lookup_ip", &json!({"ip": "5.5.5.5"}), "k", t)
            .await
            .expect_err("5xx");
    assert!(err.retryable, "{err:?}");
    let before = e.fake.calls.load(Ordering::SeqCst);
    let err =
        e.rt.call(&inst, "lookup_ip", &json!({"ip": "1.2.3.4"}), "k", t)
            .await
            .expect_err("open");
    assert!(err.message.contains("circuit open"), "{err:?}");
    assert_eq!(
        e.fake.calls.load(Ordering::SeqCst),
        before,
        "no call while open"
    );
}

#[tokio::test]
async fn abuseipdb_slack_crowdstrike_misp() {
    let e = env().await;
    let t = Duration::from_secs(20);
    let abuse = e
        .add(
            "abuseipdb",
            "abuse",
            json!({"base_url": format!("{}/api/v2", e.base)}),
            json!({"api_key": "abuse-key"}),
        )
        .await;
    let abuse = e.rt.open(&abuse).expect("open");
    let out =
        e.rt.call(&abuse, "check_ip", &json!({"ip": "118.25.6.39"}), "k", t)
            .await
            .expect("check");
    assert_eq!(out["abuse_confidence"], 100);
    assert_eq!(out["ip"], "118.25.6.39");
    let def = abuse.ty.action("check_ip").expect("def");
    assert_eq!(
        Integrations::reputation(def, &json!({}), &out)
            .expect("rep")
            .1,
        "malicious"
    );
    let bad = e
        .add(
            "abuseipdb",
            "abuse-bad",
            json!({"base_url": format!("{}/api/v2", e.base)}),
            json!({"api_key": "nope-nope"}),
        )
        .await;
    let h = e.rt.health(&e.rt.open(&bad).expect("open")).await;
    assert!(h.message.contains("Authentication failed"), "{}", h.message);

    // Slack answers 200 with ok:false: that is a failure with Slack's reason.
    let slack = e
        .add(
            "slack",
            "slack",
            json!({"base_url": format!("{}/api", e.base)}),
            json!({"bot_token": "xoxb-slack"}),
        )
        .await;
    let slack = e.rt.open(&slack).expect("open");
    let out =
        e.rt.call(
            &slack,
            "post_message",
            &json!({"channel": "#soc", "text": "hi"}),
            "k",
            t,
        )
        .await
        .expect("post");
    assert_eq!(out["ts"], "1401383885.000061");
    let err =
        e.rt.call(
            &slack,
            "post_message",
            &json!({"channel": "#nope", "text": "hi"}),
            "k",
            t,
        )
        .await
        .expect_err("channel");
    assert!(err.message.ends_with("channel_not_found"), "{err:?}");

    // OAuth2 client credentials (CrowdStrike): token fetched, then the call.
    let cs = e
        .add(
            "crowdstrike",
            "falcon",
            json!({"base_url": e.base, "client_id": "cid"}),
            json!({"client_secret": "cs-secret"}),
        )
        .await;
    let cs = e.rt.open(&cs).expect("open");
    let out =
        e.rt.call(
            &cs,
            "contain_host",
            &json!({"device_ids": ["dev-1"]}),
            "k",
            t,
        )
        .await
        .expect("contain");
    assert_eq!(out["resources"][0]["id"], "dev-1");
    assert_eq!(
        e.fake.seen.lock().expect("lock").as_slice(),
        ["contain:[\"dev-1\"]"]
    );
    let cs_bad = e
        .add(
            "crowdstrike",
            "falcon-bad",
            json!({"base_url": e.base, "client_id": "cid"}),
            json!({"client_secret": "wrong"}),
        )
        .await;
    let err =
        e.rt.call(
            &e.rt.open(&cs_bad).expect("open"),
            "contain_host",
            &json!({"device_ids": ["d"]}),
            "k",
            t,
        )
        .await
        .expect_err("token");
    assert!(
        err.message.contains("invalid client credentials"),
        "{err:?}"
    );

    // MISP on a "private" address: allowed only because the operator allow-listed it.
    let misp = e
        .add(
            "misp",
            "misp",
            json!({"base_url": e.base}),
            json!({"api_key": "misp-key"}),
        )
        .await;
    let misp = e.rt.open(&misp).expect("open");
    let out =
        e.rt.call(
            &misp,
            "search_attributes",
            &json!({"value": "evil.example.com"}),
            "k",
            t,
        )
        .await
        .expect("misp");
    assert_eq!(
        (out["count"].clone(), out["to_ids"].clone()),
        (json!(1), json!(1))
    );
    let strict = Integrations::for_tests(&[]);
    let err = strict
        .call(
            &strict.open(&misp_record(&e, &strict).await).expect("open"),
            "search_attributes",
            &json!({"value": "x"}),
            "k",
            t,
        )
        .await
        .expect_err("refused");
    assert!(err.message.contains("loopback address: refused"), "{err:?}");
}

async fn misp_record(e: &Env, rt: &Integrations) -> bulwark_store::integrations::IntegrationRecord {
    let id = Uuid::now_v7();
    let secrets: Map<String, Value> = json!({"api_key": "misp-key"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    e.store
        .create_integration(
            &ChangeCtx::system("test"),
            &Scope::AllTenants,
            IntegrationWrite {
                id,
                tenant_id: e.tenant,
                type_name: "misp".into(),
                name: "misp-strict".into(),
                description: None,
                config: json!({"base_url": e.base}),
                secrets: rt.seal(id, &secrets),
                secret_fields: vec!["api_key".into()],
                enabled: true,
                is_default: false,
                enrichment: false,
            },
        )
        .await
        .expect("create")
}

#[tokio::test]
async fn a_playbook_runs_an_integration_action_through_the_worker() {
    use bulwark_store::automation::{NewRun, PlaybookWrite};
    let e = env().await;
    e.add(
        "virustotal",
        "vt",
        json!({"base_url": format!("{}/api/v3", e.base), "rate_limit_per_minute": 6000}),
        json!({"api_key": "vt-secret-key"}),
    )
    .await;
    let spec = json!({"name": "vt-check", "triggers": [{"on": "manual"}], "actions": [
        {"ref": "vt", "action": "virustotal.lookup_ip", "args": {"ip": "{{ input.ip }}", "integration": "vt"}},
        {"ref": "bad", "action": "virustotal.lookup_ip", "args": {"ip": "7.7.7.7"}, "on_error": "continue"}]});
    let pb =
        bulwark_playbook::parse_json(&spec, e.rt.catalog()).expect("validates against the catalog");
    // An unknown input is refused at load time.
    let bad = json!({"name": "x", "triggers": [{"on": "manual"}], "actions": [
        {"ref": "vt", "action": "virustotal.lookup_ip", "args": {"address": "1.2.3.4"}}]});
    assert!(bulwark_playbook::parse_json(&bad, e.rt.catalog()).is_err());
    let rec = e
        .store
        .create_playbook(
            &ChangeCtx::system("test"),
            &Scope::AllTenants,
            e.tenant,
            PlaybookWrite {
                tenant_id: Some(e.tenant),
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
        .expect("playbook");
    let run = e
        .store
        .create_runs(&[NewRun {
            tenant_id: e.tenant,
            playbook_id: rec.id,
            playbook_name: rec.name.clone(),
            playbook_version: rec.version,
            trigger: "manual".into(),
            alert_id: None,
            incident_id: None,
            input: json!({"ip": "203.0.113.9"}),
            requested_by: None,
            priority: 100,
        }])
        .await
        .expect("run")[0];
    let config = bulwark_engine::EngineConfig {
        catalog: Arc::new(e.rt.catalog().clone()),
        poll_interval: Duration::from_millis(20),
        ..Default::default()
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(bulwark_engine::run_worker_with(
        e.store.clone(),
        config,
        engine_actions(&e.rt),
        stop,
    ));
    let mut done = None;
    for _ in 0..300 {
        let r = e.store.get_run(&Scope::AllTenants, run).await.expect("run");
        if ["succeeded", "failed"].contains(&r.status.as_str()) {
            done = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let _ = worker.await;
    let r = done.expect("the run finished");
    assert_eq!(r.status, "succeeded", "{:?}", r.error);
    let steps = e
        .store
        .run_steps(&Scope::AllTenants, run)
        .await
        .expect("steps");
    let vt = steps.iter().find(|s| s.step_ref == "vt").expect("vt step");
    assert_eq!(vt.output.as_ref().expect("output")["malicious"], 7);
    let bad = steps
        .iter()
        .find(|s| s.step_ref == "bad")
        .expect("bad step");
    assert!(
        bad.error.as_deref().is_some_and(|m| m.contains("not JSON")),
        "{bad:?}"
    );
    assert!(
        steps
            .iter()
            .all(|s| !s.input.to_string().contains("vt-secret-key"))
    );
}
