//! Built-in integrations against local fakes of the vendors' APIs (responses shaped like the
//! vendors' documented ones; nothing leaves 127.0.0.1), instances stored in a real database
//! (SQLite, or PostgreSQL with `BULWARK_TEST_DATABASE_URL`), and a playbook using an
//! integration action through the real worker.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
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
    /// Every address VirusTotal was asked about.
    ips: Mutex<Vec<String>>,
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
    f.ips.lock().expect("lock").push(ip.clone());
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

// ---------------------------------------------------------------------------------------------
// The other built-ins, each against a fake that answers like the vendor's documentation shows.
// Every fake checks the credential the way the vendor does and records what it received.

/// What the other fakes received: "vendor: detail" lines.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Seen {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().expect("lock").push(s.into());
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }
}

type V = State<Arc<Seen>>;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn shodan_host(
    State(s): V,
    Path(ip): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("key").map(String::as_str) != Some("shodan-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "Invalid API key"})),
        )
            .into_response();
    }
    s.push(format!("shodan: {ip}"));
    if ip == "45.33.32.1" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "No information available for that IP."})),
        )
            .into_response();
    }
    Json(json!({
        "ip_str": ip, "ip": 757935780u32, "ports": [22, 80, 443], "hostnames": ["c2.bad.example"],
        "domains": ["bad.example"], "org": "Bad Hosting", "isp": "Bad Hosting", "asn": "AS64500",
        "os": null, "country_name": "Netherlands", "country_code": "NL", "city": "Amsterdam",
        "tags": ["c2", "self-signed"], "vulns": ["CVE-2021-44228", "CVE-2014-0160"],
        "last_update": "2024-05-10T12:00:00.000000",
        "data": [{"port": 443, "transport": "tcp", "product": "nginx", "data": "HTTP/1.1 200 OK"}]
    }))
    .into_response()
}

async fn shodan_info(Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("key").map(String::as_str) != Some("shodan-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "Invalid API key"})),
        )
            .into_response();
    }
    Json(json!({"scan_credits": 100, "usage_limits": {"scan_credits": 100, "query_credits": 100, "monitored_ips": 16},
                "plan": "dev", "https": false, "unlocked": true, "query_credits": 98, "monitored_ips": 0,
                "unlocked_left": 98, "telnet": false}))
    .into_response()
}

async fn greynoise(State(s): V, h: HeaderMap, Path(ip): Path<String>) -> Response {
    s.push(format!("gn: {ip}"));
    if header(&h, "key") != Some("gn-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Authentication required"})),
        )
            .into_response();
    }
    match ip.as_str() {
        "8.8.8.8" => Json(
            json!({"ip": ip, "noise": false, "riot": true, "classification": "benign",
            "name": "Google Public DNS", "link": "https://viz.greynoise.io/riot/8.8.8.8",
            "last_seen": "2024-05-10", "message": "Success"}),
        )
        .into_response(),
        "45.33.32.1" => (
            StatusCode::NOT_FOUND,
            Json(json!({"ip": ip, "noise": false, "riot": false,
            "message": "IP not observed scanning the internet or contained in RIOT data set."})),
        )
            .into_response(),
        _ => Json(
            json!({"ip": ip, "noise": true, "riot": false, "classification": "malicious",
            "name": "unknown", "link": format!("https://viz.greynoise.io/ip/{ip}"),
            "last_seen": "2024-05-10", "message": "Success"}),
        )
        .into_response(),
    }
}

async fn urlhaus(
    State(s): V,
    h: HeaderMap,
    Path(what): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if header(&h, "auth-key") != Some("abuse-ch-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"query_status": "unknown_auth_key"})),
        )
            .into_response();
    }
    s.push(format!("urlhaus {what}: {}", {
        let mut f: Vec<_> = form.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.sort();
        f.join("&")
    }));
    let hit = form.values().any(|v| v.contains("bad"));
    let no = || Json(json!({"query_status": "no_results"})).into_response();
    match what.as_str() {
        "url" if hit => Json(json!({"query_status": "ok", "id": "105821",
            "urlhaus_reference": "https://urlhaus.abuse.ch/url/105821/", "url": form.get("url"),
            "url_status": "online", "host": "bad.example", "date_added": "2024-05-10 12:00:00 UTC",
            "threat": "malware_download", "blacklists": {"spamhaus_dbl": "not listed", "surbl": "not listed"},
            "reporter": "abuse_ch", "larted": "true", "tags": ["elf", "Mozi"], "payloads": []})).into_response(),
        "host" if hit => Json(json!({"query_status": "ok", "urlhaus_reference": "https://urlhaus.abuse.ch/host/bad.example/",
            "host": "bad.example", "firstseen": "2024-05-01 12:00:00 UTC", "url_count": "12",
            "blacklists": {"spamhaus_dbl": "abused_legit_malware", "surbl": "listed"}, "urls": []})).into_response(),
        "payload" if form.get("sha256_hash").is_some_and(|v| v.starts_with("bad")) || form.get("md5_hash").is_some_and(|v| v.starts_with("bad")) => {
            Json(json!({"query_status": "ok", "md5_hash": "x", "sha256_hash": "y", "file_type": "exe",
                "file_size": "65536", "signature": "Heodo", "firstseen": "2024-05-01 12:00:00", "lastseen": null,
                "url_count": "3", "urlhaus_download": "https://urlhaus-api.abuse.ch/v1/download/y/"})).into_response()
        }
        _ => no(),
    }
}

async fn threatfox(State(s): V, h: HeaderMap, Json(b): Json<Value>) -> Response {
    if header(&h, "auth-key") != Some("abuse-ch-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"query_status": "unknown_auth_key"})),
        )
            .into_response();
    }
    s.push(format!("threatfox: {b}"));
    if b["query"] != "search_ioc" {
        return Json(json!({"query_status": "unknown_query"})).into_response();
    }
    if b["search_term"] == "bad.example" {
        Json(json!({"query_status": "ok", "data": [{"id": "41", "ioc": "bad.example", "threat_type": "botnet_cc",
            "threat_type_desc": "Indicator that identifies a botnet command&control server (C&C)",
            "ioc_type": "domain", "malware": "win.dridex", "malware_printable": "Dridex", "malware_alias": null,
            "confidence_level": 90, "first_seen": "2024-05-01 13:36:27 UTC", "last_seen": null,
            "reporter": "abuse_ch", "tags": ["exe"]}]}))
        .into_response()
    } else {
        Json(json!({"query_status": "no_result", "data": "Your search did not yield any results"}))
            .into_response()
    }
}

async fn es_search(
    State(s): V,
    h: HeaderMap,
    Path(index): Path<String>,
    Json(b): Json<Value>,
) -> Response {
    if header(&h, "authorization") != Some("ApiKey es-key") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"root_cause": [{"type": "security_exception",
            "reason": "unable to authenticate with provided credentials and anonymous access is not allowed for this request"}],
            "type": "security_exception", "reason": "unable to authenticate with provided credentials and anonymous access is not allowed for this request"},
            "status": 401}))).into_response();
    }
    s.push(format!("es search {index}: {}", b["query"]));
    Json(json!({"took": 3, "timed_out": false, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": 2, "relation": "eq"}, "max_score": 1.0, "hits": [
            {"_index": "logs-1", "_id": "a", "_score": 1.0, "_source": {"source": {"ip": "45.33.32.156"}, "event": {"action": "deny"}}},
            {"_index": "logs-1", "_id": "b", "_score": 1.0, "_source": {"source": {"ip": "45.33.32.156"}, "event": {"action": "allow"}}}]}}))
    .into_response()
}

async fn es_health(h: HeaderMap) -> Response {
    if header(&h, "authorization") != Some("ApiKey es-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"type": "security_exception",
            "reason": "unable to authenticate with provided credentials"}, "status": 401})),
        )
            .into_response();
    }
    Json(
        json!({"cluster_name": "soc", "status": "green", "timed_out": false, "number_of_nodes": 3,
                "number_of_data_nodes": 3, "active_primary_shards": 10, "active_shards": 20}),
    )
    .into_response()
}

async fn kibana_signals(State(s): V, h: HeaderMap, Json(b): Json<Value>) -> Response {
    if header(&h, "kbn-xsrf").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"statusCode": 400, "error": "Bad Request",
            "message": "Request must contain a kbn-xsrf header."})),
        )
            .into_response();
    }
    s.push(format!("kibana signals: {}", b["query"]));
    Json(json!({"took": 1, "timed_out": false, "hits": {"total": {"value": 1, "relation": "eq"}, "hits": [
        {"_id": "sig-1", "_index": ".alerts-security.alerts-default", "_source": {
            "kibana.alert.rule.name": "Suspicious PowerShell", "kibana.alert.workflow_status": "open",
            "kibana.alert.severity": "high", "host": {"name": "ws-1"}}}]}}))
    .into_response()
}

async fn kibana_isolate(
    State(s): V,
    h: HeaderMap,
    Path(cmd): Path<String>,
    Json(b): Json<Value>,
) -> Response {
    if header(&h, "kbn-xsrf").is_none() || header(&h, "authorization") != Some("ApiKey es-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"statusCode": 401, "error": "Unauthorized",
            "message": "[security_exception]: unable to authenticate"})),
        )
            .into_response();
    }
    s.push(format!(
        "kibana {cmd}: {} {}",
        b["endpoint_ids"], b["comment"]
    ));
    Json(json!({"action": "c2d7a8e1", "data": {"id": "a3b9c-action", "agents": b["endpoint_ids"],
        "command": cmd, "agentType": "endpoint", "isExpired": false, "isCompleted": false,
        "wasSuccessful": false, "status": "pending", "createdBy": "bulwark", "comment": b["comment"]}}))
    .into_response()
}

async fn splunk_search(
    State(s): V,
    h: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if header(&h, "authorization") != Some("Bearer splunk-token") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"messages": [{"type": "WARN", "text": "call not properly authenticated"}]}),
            ),
        )
            .into_response();
    }
    s.push(format!(
        "splunk search: {} ({}, {})",
        form.get("search").cloned().unwrap_or_default(),
        form.get("exec_mode").cloned().unwrap_or_default(),
        form.get("output_mode").cloned().unwrap_or_default()
    ));
    Json(json!({"preview": false, "init_offset": 0, "messages": [], "fields": [{"name": "src"}, {"name": "count"}],
        "results": [{"src": "45.33.32.156", "count": "17"}], "highlighted": {}}))
    .into_response()
}

async fn splunk_notable(
    State(s): V,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if header(&h, "authorization") != Some("Bearer splunk-token") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"messages": [{"type": "WARN", "text": "call not properly authenticated"}]}),
            ),
        )
            .into_response();
    }
    s.push(format!(
        "splunk notable [{} {}]: {body}",
        q.get("index").cloned().unwrap_or_default(),
        q.get("sourcetype").cloned().unwrap_or_default()
    ));
    Json(json!({"index": "notable", "bytes": body.len(), "host": "splunk-sh", "source": "bulwark", "sourcetype": "stash"})).into_response()
}

async fn splunk_info(h: HeaderMap) -> Response {
    if header(&h, "authorization") != Some("Bearer splunk-token") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"messages": [{"type": "WARN", "text": "call not properly authenticated"}]}),
            ),
        )
            .into_response();
    }
    Json(json!({"links": {}, "origin": "https://splunk:8089/services/server/info", "updated": "2024-05-10T12:00:00+00:00",
        "generator": {"build": "abc", "version": "9.1.2"},
        "entry": [{"name": "server-info", "content": {"version": "9.1.2", "serverName": "splunk-sh", "os_name": "Linux"}}]}))
    .into_response()
}

async fn mde_token(
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if tenant != "contoso-tenant"
        || form.get("client_secret").map(String::as_str) != Some("mde-secret")
        || form.get("scope").map(String::as_str)
            != Some("https://api.securitycenter.microsoft.com/.default")
    {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            "error_codes": [7000215]}))).into_response();
    }
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": "mde-token"})).into_response()
}

async fn mde_action(
    State(s): V,
    h: HeaderMap,
    Path((machine, action)): Path<(String, String)>,
    Json(b): Json<Value>,
) -> Response {
    if header(&h, "authorization") != Some("Bearer mde-token") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "Unauthorized", "message": "Authorization failed."}})),
        )
            .into_response();
    }
    if machine == "unknown-machine" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "ResourceNotFound",
            "message": "Machine unknown-machine was not found", "target": "d4f1"}})),
        )
            .into_response();
    }
    s.push(format!("mde {action} {machine}: {b}"));
    let ty = match action.as_str() {
        "isolate" => "Isolate",
        "unisolate" => "Unisolate",
        _ => "RunAntiVirusScan",
    };
    (StatusCode::CREATED, Json(json!({
        "@odata.context": "https://api.securitycenter.microsoft.com/api/$metadata#MachineActions/$entity",
        "id": "b89eb834-4578-496c-8be0-03f004061435", "type": ty, "requestor": "bulwark-app",
        "requestorComment": b["Comment"], "status": "Pending", "machineId": machine,
        "computerDnsName": "ws-1.contoso.local", "creationDateTimeUtc": "2024-05-10T12:00:00Z",
        "lastUpdateTimeUtc": "2024-05-10T12:00:00Z", "relatedFileInfo": null}))).into_response()
}

async fn mde_machines(h: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if header(&h, "authorization") != Some("Bearer mde-token") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "Unauthorized", "message": "Authorization failed."}})),
        )
            .into_response();
    }
    Json(json!({"@odata.context": "https://api.securitycenter.microsoft.com/api/$metadata#Machines",
        "value": [{"id": "1e5bc9d7e413ddd7902c2932e418702b84d0cc07", "computerDnsName": "ws-1.contoso.local",
                   "healthStatus": "Active", "top": q.get("$top")}]}))
    .into_response()
}

async fn teams_hook(State(s): V, Json(b): Json<Value>) -> Response {
    if b["text"] == "" || b["@type"] != "MessageCard" {
        return (StatusCode::BAD_REQUEST, "Summary or Text is required.").into_response();
    }
    s.push(format!(
        "teams: {} | {} | {}",
        b["title"], b["text"], b["potentialAction"]
    ));
    (StatusCode::OK, "1").into_response()
}

async fn hook(State(s): V, h: HeaderMap, Json(b): Json<Value>) -> Response {
    if header(&h, "x-hook-token") != Some("hook-secret") {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "bad token"}))).into_response();
    }
    s.push(format!(
        "hook [{}]: {b}",
        header(&h, "idempotency-key").unwrap_or("-")
    ));
    (StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response()
}

async fn jira_issue(State(s): V, h: HeaderMap, Json(b): Json<Value>) -> Response {
    use base64::Engine;
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("soc@example.org:jira-token")
    );
    if header(&h, "authorization") != Some(good.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"errorMessages": ["You are not authenticated. Authentication required to perform this operation."], "errors": {}}))).into_response();
    }
    if b["fields"]["project"]["key"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        return (StatusCode::BAD_REQUEST, Json(json!({"errorMessages": [], "errors": {"project": "Specify a valid project ID or key"}}))).into_response();
    }
    s.push(format!(
        "jira: {} {} {}",
        b["fields"]["project"]["key"], b["fields"]["summary"], b["fields"]["labels"]
    ));
    (StatusCode::CREATED, Json(json!({"id": "10000", "key": "SEC-24", "self": "https://yourorg.atlassian.net/rest/api/2/issue/10000"}))).into_response()
}

async fn jira_myself(h: HeaderMap) -> Response {
    use base64::Engine;
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("soc@example.org:jira-token")
    );
    if header(&h, "authorization") != Some(good.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"errorMessages": ["You are not authenticated. Authentication required to perform this operation."], "errors": {}}))).into_response();
    }
    Json(json!({"accountId": "5b10a2844c20165700ede21g", "displayName": "SOC Bot", "active": true}))
        .into_response()
}

async fn pagerduty(State(s): V, Json(b): Json<Value>) -> Response {
    if b["routing_key"].as_str().map(str::len) != Some(32) {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"status": "invalid event", "message": "Event object is invalid",
            "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]}),
            ),
        )
            .into_response();
    }
    s.push(format!(
        "pagerduty: {} {} {}",
        b["dedup_key"], b["payload"]["summary"], b["payload"]["severity"]
    ));
    (
        StatusCode::ACCEPTED,
        Json(
            json!({"status": "success", "message": "Event processed", "dedup_key": b["dedup_key"]}),
        ),
    )
        .into_response()
}

async fn rdap_bootstrap(Path((kind, what)): Path<(String, String)>) -> Response {
    // rdap.org answers with a redirect to the registry's RDAP server.
    let mut r = StatusCode::FOUND.into_response();
    r.headers_mut().insert(
        "location",
        format!("/registry/{kind}/{what}").parse().expect("header"),
    );
    r
}

async fn rdap_registry(Path((kind, what)): Path<(String, String)>) -> Response {
    match (kind.as_str(), what.as_str()) {
        ("domain", "nosuch.example") => (StatusCode::NOT_FOUND, Json(json!({"errorCode": 404, "title": "Not Found"}))).into_response(),
        ("domain", d) => Json(json!({"objectClassName": "domain", "handle": "2336799_DOMAIN_COM-VRSN",
            "ldhName": d.to_uppercase(), "status": ["client delete prohibited", "client transfer prohibited"],
            "events": [{"eventAction": "registration", "eventDate": "1995-08-14T04:00:00Z"},
                       {"eventAction": "expiration", "eventDate": "2025-08-13T04:00:00Z"}],
            "entities": [{"objectClassName": "entity", "handle": "376", "roles": ["registrar"],
                "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Example Registrar, Inc."]]]}],
            "nameservers": [{"objectClassName": "nameserver", "ldhName": "A.IANA-SERVERS.NET"},
                            {"objectClassName": "nameserver", "ldhName": "B.IANA-SERVERS.NET"}]})).into_response(),
        (_, ip) => Json(json!({"objectClassName": "ip network", "handle": "NET-45-33-32-0-1", "startAddress": "45.33.32.0",
            "endAddress": "45.33.63.255", "ipVersion": "v4", "name": "LINODE-US", "type": "DIRECT ALLOCATION",
            "country": "US", "query": ip})).into_response(),
    }
}

async fn start_more_fakes() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/shodan-api/shodan/host/{ip}", get(shodan_host))
        .route("/shodan-api/api-info", get(shodan_info))
        .route("/gn/v3/community/{ip}", get(greynoise))
        .route("/urlhaus/v1/{what}/", post(urlhaus))
        .route("/threatfox/api/v1/", post(threatfox))
        .route("/es/{index}/_search", post(es_search))
        .route("/es/_cluster/health", get(es_health))
        .route(
            "/kibana/api/detection_engine/signals/search",
            post(kibana_signals),
        )
        .route("/kibana/api/endpoint/action/{cmd}", post(kibana_isolate))
        .route("/splunk/services/search/jobs", post(splunk_search))
        .route("/splunk/services/receivers/simple", post(splunk_notable))
        .route("/splunk/services/server/info", get(splunk_info))
        .route("/login/{tenant}/oauth2/v2.0/token", post(mde_token))
        .route("/mde/api/machines/{machine}/{action}", post(mde_action))
        .route("/mde/api/machines", get(mde_machines))
        .route("/teams/hook", post(teams_hook))
        .route("/hook", post(hook))
        .route("/jira/rest/api/2/issue", post(jira_issue))
        .route("/jira/rest/api/2/myself", get(jira_myself))
        .route("/pd/v2/enqueue", post(pagerduty))
        .route("/rdap/{kind}/{what}", get(rdap_bootstrap))
        .route("/registry/{kind}/{what}", get(rdap_registry))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

fn verdict(inst: &bulwark_integrations::Instance, action: &str, out: &Value) -> (i64, String) {
    let def = inst.ty.action(action).expect("action");
    Integrations::reputation(def, &json!({}), out).expect("an enrichment action")
}

#[tokio::test]
async fn shodan_greynoise_urlhaus_threatfox() {
    let e = env().await;
    let (base, seen) = start_more_fakes().await;
    let t = Duration::from_secs(20);

    // Shodan: the key goes in the query; it never shows in a result or an error.
    let shodan = e
        .add(
            "shodan",
            "shodan",
            json!({"base_url": format!("{base}/shodan-api"), "rate_limit_per_minute": 6000}),
            json!({"api_key": "shodan-key"}),
        )
        .await;
    let shodan = e.rt.open(&shodan).expect("open");
    let out =
        e.rt.call(&shodan, "host", &json!({"ip": "45.33.32.156"}), "k", t)
            .await
            .expect("host");
    assert_eq!(out["ports"], json!([22, 80, 443]));
    assert_eq!(out["org"], "Bad Hosting");
    assert_eq!(out["vulns"], json!(["CVE-2021-44228", "CVE-2014-0160"]));
    assert_eq!(
        verdict(&shodan, "host", &out),
        (50, "malicious".to_string())
    );
    let out =
        e.rt.call(&shodan, "host", &json!({"ip": "45.33.32.1"}), "k", t)
            .await
            .expect("404");
    assert_eq!(out, json!({"found": false}));
    assert_eq!(verdict(&shodan, "host", &out).1, "unknown");
    assert!(e.rt.health(&shodan).await.ok);
    let bad = e
        .add(
            "shodan",
            "shodan-bad",
            json!({"base_url": format!("{base}/shodan-api"), "rate_limit_per_minute": 6000}),
            json!({"api_key": "leaked-shodan-key"}),
        )
        .await;
    let h = e.rt.health(&e.rt.open(&bad).expect("open")).await;
    assert!(
        !h.ok && h.message.contains("HTTP 401") && h.message.contains("Invalid API key"),
        "{}",
        h.message
    );
    assert!(!h.message.contains("leaked-shodan-key"), "{}", h.message);

    // GreyNoise: RIOT is benign, noise classified malicious is malicious, unseen is unknown.
    let gn = e
        .add(
            "greynoise",
            "gn",
            json!({"base_url": format!("{base}/gn")}),
            json!({"api_key": "gn-key"}),
        )
        .await;
    let gn = e.rt.open(&gn).expect("open");
    let out =
        e.rt.call(&gn, "lookup_ip", &json!({"ip": "8.8.8.8"}), "k", t)
            .await
            .expect("riot");
    assert_eq!(
        (out["riot"].clone(), out["name"].clone()),
        (json!(true), json!("Google Public DNS"))
    );
    assert_eq!(verdict(&gn, "lookup_ip", &out), (0, "benign".to_string()));
    let out =
        e.rt.call(&gn, "lookup_ip", &json!({"ip": "45.33.32.156"}), "k", t)
            .await
            .expect("noise");
    assert_eq!(
        verdict(&gn, "lookup_ip", &out),
        (90, "malicious".to_string())
    );
    let out =
        e.rt.call(&gn, "lookup_ip", &json!({"ip": "45.33.32.1"}), "k", t)
            .await
            .expect("unseen");
    assert_eq!(out["found"], false);
    assert_eq!(verdict(&gn, "lookup_ip", &out).1, "unknown");
    assert!(e.rt.health(&gn).await.ok);

    // URLhaus: form posts; no_results is "unknown", a hit is malicious.
    let uh = e
        .add(
            "urlhaus",
            "urlhaus",
            json!({"base_url": format!("{base}/urlhaus/v1")}),
            json!({"auth_key": "abuse-ch-key"}),
        )
        .await;
    let uh = e.rt.open(&uh).expect("open");
    let out =
        e.rt.call(
            &uh,
            "lookup_url",
            &json!({"url": "http://bad.example/x.exe"}),
            "k",
            t,
        )
        .await
        .expect("url");
    assert_eq!(
        (out["found"].clone(), out["threat"].clone()),
        (json!(true), json!("malware_download"))
    );
    assert_eq!(
        verdict(&uh, "lookup_url", &out),
        (95, "malicious".to_string())
    );
    let out =
        e.rt.call(
            &uh,
            "lookup_url",
            &json!({"url": "http://fine.example/"}),
            "k",
            t,
        )
        .await
        .expect("url");
    assert_eq!(out["found"], false);
    assert_eq!(verdict(&uh, "lookup_url", &out), (0, "unknown".to_string()));
    let out =
        e.rt.call(&uh, "lookup_host", &json!({"host": "bad.example"}), "k", t)
            .await
            .expect("host");
    assert_eq!(out["url_count"], 12);
    assert_eq!(
        verdict(&uh, "lookup_host", &out),
        (100, "malicious".to_string())
    );
    let sha = format!("bad{}", "0".repeat(61));
    let out =
        e.rt.call(&uh, "lookup_payload", &json!({"hash": sha}), "k", t)
            .await
            .expect("payload");
    assert_eq!(out["signature"], "Heodo");
    assert!(
        seen.all()
            .contains(&format!("urlhaus payload: sha256_hash={sha}")),
        "{:?}",
        seen.all()
    );
    assert!(e.rt.health(&uh).await.ok);

    // ThreatFox: JSON body with the query selector; confidence becomes the score.
    let tf = e
        .add(
            "threatfox",
            "threatfox",
            json!({"base_url": format!("{base}/threatfox/api/v1")}),
            json!({"auth_key": "abuse-ch-key"}),
        )
        .await;
    let tf = e.rt.open(&tf).expect("open");
    let out =
        e.rt.call(&tf, "search_ioc", &json!({"ioc": "bad.example"}), "k", t)
            .await
            .expect("ioc");
    assert_eq!(
        (out["malware"].clone(), out["threat_type"].clone()),
        (json!("Dridex"), json!("botnet_cc"))
    );
    assert_eq!(
        verdict(&tf, "search_ioc", &out),
        (90, "malicious".to_string())
    );
    let out =
        e.rt.call(&tf, "search_ioc", &json!({"ioc": "fine.example"}), "k", t)
            .await
            .expect("none");
    assert_eq!(
        (out["found"].clone(), out["matches"].clone()),
        (json!(false), json!([]))
    );
    assert_eq!(verdict(&tf, "search_ioc", &out).1, "unknown");
    let bad = e
        .add(
            "threatfox",
            "threatfox-bad",
            json!({"base_url": format!("{base}/threatfox/api/v1")}),
            json!({"auth_key": "wrong-key"}),
        )
        .await;
    let h = e.rt.health(&e.rt.open(&bad).expect("open")).await;
    assert!(
        !h.ok && h.message.contains("unknown_auth_key"),
        "{}",
        h.message
    );
}

#[tokio::test]
async fn elastic_splunk_defender() {
    let e = env().await;
    let (base, seen) = start_more_fakes().await;
    let t = Duration::from_secs(20);

    let es = e
        .add(
            "elastic",
            "elastic",
            json!({"base_url": format!("{base}/es"), "kibana_url": format!("{base}/kibana")}),
            json!({"api_key": "es-key"}),
        )
        .await;
    let es = e.rt.open(&es).expect("open");
    let out =
        e.rt.call(
            &es,
            "search",
            &json!({"index": "logs-*", "query": {"term": {"source.ip": "45.33.32.156"}}}),
            "k",
            t,
        )
        .await
        .expect("search");
    assert_eq!(out["total"], 2);
    assert_eq!(out["hits"][0]["event"]["action"], "deny");
    let out =
        e.rt.call(&es, "get_alerts", &json!({}), "k", t)
            .await
            .expect("alerts");
    assert_eq!(
        out["alerts"][0]["kibana.alert.rule.name"],
        "Suspicious PowerShell"
    );
    let out =
        e.rt.call(
            &es,
            "isolate_host",
            &json!({"endpoint_ids": ["ep-1"]}),
            "k",
            t,
        )
        .await
        .expect("isolate");
    assert_eq!(
        (out["action_id"].clone(), out["command"].clone()),
        (json!("a3b9c-action"), json!("isolate"))
    );
    e.rt.call(
        &es,
        "release_host",
        &json!({"endpoint_ids": ["ep-1"]}),
        "k",
        t,
    )
    .await
    .expect("release");
    assert!(e.rt.health(&es).await.ok);
    let all = seen.all();
    assert!(
        all.contains(&"es search logs-*: {\"term\":{\"source.ip\":\"45.33.32.156\"}}".to_string()),
        "{all:?}"
    );
    assert!(
        all.contains(
            &"kibana signals: {\"term\":{\"kibana.alert.workflow_status\":\"open\"}}".to_string()
        ),
        "{all:?}"
    );
    assert!(
        all.contains(&"kibana isolate: [\"ep-1\"] \"Isolated by Bulwark\"".to_string()),
        "{all:?}"
    );
    assert!(
        all.contains(&"kibana unisolate: [\"ep-1\"] \"Released by Bulwark\"".to_string()),
        "{all:?}"
    );
    let bad = e
        .add(
            "elastic",
            "elastic-bad",
            json!({"base_url": format!("{base}/es")}),
            json!({"api_key": "nope-nope"}),
        )
        .await;
    let h = e.rt.health(&e.rt.open(&bad).expect("open")).await;
    assert!(
        !h.ok && h.message.contains("unable to authenticate"),
        "{}",
        h.message
    );

    let sp = e
        .add(
            "splunk",
            "splunk",
            json!({"base_url": format!("{base}/splunk")}),
            json!({"token": "splunk-token"}),
        )
        .await;
    let sp = e.rt.open(&sp).expect("open");
    let out =
        e.rt.call(
            &sp,
            "search",
            &json!({"query": "index=fw src=45.33.32.156 | stats count by src"}),
            "k",
            t,
        )
        .await
        .expect("search");
    assert_eq!(
        (out["count"].clone(), out["results"][0]["count"].clone()),
        (json!(1), json!("17"))
    );
    assert!(
        seen.all().contains(
            &"splunk search: search index=fw src=45.33.32.156 | stats count by src (oneshot, json)"
                .to_string()
        ),
        "{:?}",
        seen.all()
    );
    let out =
        e.rt.call(
            &sp,
            "create_notable",
            &json!({"title": "Bulwark: \"C2\" beacon", "urgency": "high"}),
            "k",
            t,
        )
        .await
        .expect("notable");
    assert_eq!(out["index"], "notable");
    assert!(
        seen.all().iter().any(|l| l
            .starts_with("splunk notable [notable stash]: rule_title=\"Bulwark: 'C2' beacon\"")
            && l.contains("urgency=\"high\"")),
        "{:?}",
        seen.all()
    );
    assert!(e.rt.health(&sp).await.ok);
    let bad = e
        .add(
            "splunk",
            "splunk-bad",
            json!({"base_url": format!("{base}/splunk")}),
            json!({"token": "expired-token"}),
        )
        .await;
    let h = e.rt.health(&e.rt.open(&bad).expect("open")).await;
    assert!(
        !h.ok && h.message.contains("call not properly authenticated"),
        "{}",
        h.message
    );

    // Defender: OAuth2 client credentials against the identity endpoint, then machine actions.
    let mde = e
        .add(
            "defender",
            "mde",
            json!({"base_url": format!("{base}/mde/api"), "token_url": format!("{base}/login"),
                   "tenant_id": "contoso-tenant", "client_id": "app-id"}),
            json!({"client_secret": "mde-secret"}),
        )
        .await;
    let mde = e.rt.open(&mde).expect("open");
    let out =
        e.rt.call(
            &mde,
            "isolate_machine",
            &json!({"machine_id": "m-1"}),
            "k",
            t,
        )
        .await
        .expect("isolate");
    assert_eq!(
        (
            out["type"].clone(),
            out["status"].clone(),
            out["machine_id"].clone()
        ),
        (json!("Isolate"), json!("Pending"), json!("m-1"))
    );
    let out =
        e.rt.call(
            &mde,
            "unisolate_machine",
            &json!({"machine_id": "m-1"}),
            "k",
            t,
        )
        .await
        .expect("release");
    assert_eq!(out["type"], "Unisolate");
    let out =
        e.rt.call(
            &mde,
            "run_av_scan",
            &json!({"machine_id": "m-1", "scan_type": "Full"}),
            "k",
            t,
        )
        .await
        .expect("scan");
    assert_eq!(out["type"], "RunAntiVirusScan");
    assert!(seen.all().contains(&"mde runAntiVirusScan m-1: {\"Comment\":\"Scan requested by Bulwark\",\"ScanType\":\"Full\"}".to_string()), "{:?}", seen.all());
    let err =
        e.rt.call(
            &mde,
            "isolate_machine",
            &json!({"machine_id": "unknown-machine"}),
            "k",
            t,
        )
        .await
        .expect_err("404");
    assert!(
        err.message.contains("HTTP 404") && err.message.contains("was not found") && !err.retryable,
        "{err:?}"
    );
    let err =
        e.rt.call(
            &mde,
            "isolate_machine",
            &json!({"machine_id": "m-1", "isolation_type": "Partial"}),
            "k",
            t,
        )
        .await
        .expect_err("enum");
    assert!(err.message.starts_with("input.isolation_type"), "{err:?}");
    assert!(e.rt.health(&mde).await.ok);
    let bad = e
        .add(
            "defender",
            "mde-bad",
            json!({"base_url": format!("{base}/mde/api"), "token_url": format!("{base}/login"),
                   "tenant_id": "contoso-tenant", "client_id": "app-id"}),
            json!({"client_secret": "stale-secret-value"}),
        )
        .await;
    let h = e.rt.health(&e.rt.open(&bad).expect("open")).await;
    assert!(
        !h.ok && h.message.contains("AADSTS7000215"),
        "{}",
        h.message
    );
    assert!(!h.message.contains("stale-secret-value"), "{}", h.message);
}

#[tokio::test]
async fn teams_webhook_jira_pagerduty_rdap_dns() {
    let e = env().await;
    let (base, seen) = start_more_fakes().await;
    let t = Duration::from_secs(20);

    // Teams answers "1" as text: a success without a JSON body.
    let teams = e
        .add(
            "teams",
            "teams",
            json!({}),
            json!({"webhook_url": format!("{base}/teams/hook")}),
        )
        .await;
    let teams = e.rt.open(&teams).expect("open");
    e.rt.call(
        &teams,
        "notify",
        &json!({"title": "Alert", "text": "C2 beacon", "link": "https://bulwark/a/1"}),
        "k",
        t,
    )
    .await
    .expect("teams");
    let line = seen
        .all()
        .into_iter()
        .find(|l| l.starts_with("teams:"))
        .expect("teams got it");
    assert!(
        line.contains("\"Alert\" | \"C2 beacon\"") && line.contains("https://bulwark/a/1"),
        "{line}"
    );
    let err =
        e.rt.call(&teams, "notify", &json!({"text": ""}), "k", t)
            .await
            .expect_err("400");
    assert!(
        err.message.contains("HTTP 400") && err.message.contains("Text is required"),
        "{err:?}"
    );
    // The webhook URL is the credential: never in an error.
    assert!(!err.message.contains("/teams/hook"), "{err:?}");

    // Generic webhook: the idempotency key and the optional header go along.
    let hook = e
        .add(
            "webhook",
            "hook",
            json!({"header_name": "X-Hook-Token"}),
            json!({"url": format!("{base}/hook"), "header_value": "hook-secret"}),
        )
        .await;
    let hook = e.rt.open(&hook).expect("open");
    let out =
        e.rt.call(
            &hook,
            "send",
            &json!({"payload": {"a": [1, 2]}}),
            "delivery-1",
            t,
        )
        .await
        .expect("send");
    assert_eq!(out["accepted"], true);
    e.rt.call(
        &hook,
        "notify",
        &json!({"title": "T", "text": "x", "event": {"kind": "alert.created"}}),
        "delivery-2",
        t,
    )
    .await
    .expect("notify");
    let all = seen.all();
    assert!(
        all.contains(&"hook [delivery-1]: {\"a\":[1,2]}".to_string()),
        "{all:?}"
    );
    assert!(all.contains(&"hook [delivery-2]: {\"event\":{\"kind\":\"alert.created\"},\"text\":\"x\",\"title\":\"T\"}".to_string()), "{all:?}");
    let bad = e
        .add(
            "webhook",
            "hook-bad",
            json!({"header_name": "X-Hook-Token"}),
            json!({"url": format!("{base}/hook"), "header_value": "wrong-hook-secret"}),
        )
        .await;
    let err =
        e.rt.call(
            &e.rt.open(&bad).expect("open"),
            "notify",
            &json!({"text": "x"}),
            "k",
            t,
        )
        .await
        .expect_err("403");
    assert!(
        err.message.contains("HTTP 403") && err.message.contains("bad token") && !err.retryable,
        "{err:?}"
    );
    assert!(!err.message.contains("wrong-hook-secret"));

    // Jira: basic auth with the API token; a missing project is Jira's own message.
    let jira = e
        .add("jira", "jira", json!({"base_url": format!("{base}/jira"), "email": "soc@example.org", "project_key": "SEC"}),
             json!({"api_token": "jira-token"}))
        .await;
    let jira = e.rt.open(&jira).expect("open");
    let out =
        e.rt.call(
            &jira,
            "create_issue",
            &json!({"summary": "Phishing wave", "labels": ["bulwark"]}),
            "k",
            t,
        )
        .await
        .expect("issue");
    assert_eq!(out["key"], "SEC-24");
    assert_eq!(out["url"], format!("{base}/jira/browse/SEC-24"));
    assert!(
        seen.all()
            .contains(&"jira: \"SEC\" \"Phishing wave\" [\"bulwark\"]".to_string()),
        "{:?}",
        seen.all()
    );
    assert!(e.rt.health(&jira).await.ok);
    let no_project = e
        .add(
            "jira",
            "jira-np",
            json!({"base_url": format!("{base}/jira"), "email": "soc@example.org"}),
            json!({"api_token": "jira-token"}),
        )
        .await;
    let err =
        e.rt.call(
            &e.rt.open(&no_project).expect("open"),
            "create_issue",
            &json!({"summary": "x"}),
            "k",
            t,
        )
        .await
        .expect_err("400");
    assert!(err.message.contains("HTTP 400"), "{err:?}");
    let bad = e
        .add(
            "jira",
            "jira-bad",
            json!({"base_url": format!("{base}/jira"), "email": "soc@example.org"}),
            json!({"api_token": "revoked-token"}),
        )
        .await;
    let h = e.rt.health(&e.rt.open(&bad).expect("open")).await;
    assert!(
        !h.ok && h.message.contains("You are not authenticated"),
        "{}",
        h.message
    );

    // PagerDuty: the idempotency key is the dedup key (a retried step does not page twice).
    let key32 = "0123456789abcdef0123456789abcdef";
    let pd = e
        .add(
            "pagerduty",
            "pd",
            json!({"base_url": format!("{base}/pd")}),
            json!({"routing_key": key32}),
        )
        .await;
    let pd = e.rt.open(&pd).expect("open");
    let out =
        e.rt.call(
            &pd,
            "trigger",
            &json!({"summary": "Ransomware on ws-1", "severity": "critical"}),
            "run-1:page",
            t,
        )
        .await
        .expect("trigger");
    assert_eq!(
        (out["status"].clone(), out["dedup_key"].clone()),
        (json!("success"), json!("run-1:page"))
    );
    let out =
        e.rt.call(
            &pd,
            "notify",
            &json!({"title": "Incident #4", "text": "opened"}),
            "delivery-9",
            t,
        )
        .await
        .expect("notify");
    assert_eq!(out["dedup_key"], "delivery-9");
    assert!(
        seen.all()
            .contains(&"pagerduty: \"delivery-9\" \"Incident #4: opened\" \"error\"".to_string()),
        "{:?}",
        seen.all()
    );
    let bad = e
        .add(
            "pagerduty",
            "pd-bad",
            json!({"base_url": format!("{base}/pd")}),
            json!({"routing_key": "short-key"}),
        )
        .await;
    let err =
        e.rt.call(
            &e.rt.open(&bad).expect("open"),
            "trigger",
            &json!({"summary": "x"}),
            "k",
            t,
        )
        .await
        .expect_err("400");
    assert!(
        err.message.contains("HTTP 400") && err.message.contains("routing_key"),
        "{err:?}"
    );

    // RDAP: the bootstrap redirects to the registry; the redirect is followed (and checked).
    let rdap = e
        .add(
            "rdap",
            "rdap",
            json!({"base_url": format!("{base}/rdap")}),
            json!({}),
        )
        .await;
    let rdap = e.rt.open(&rdap).expect("open");
    let out =
        e.rt.call(&rdap, "domain", &json!({"domain": "example.com"}), "k", t)
            .await
            .expect("domain");
    assert_eq!(out["name"], "EXAMPLE.COM");
    assert_eq!(out["registrar"], "Example Registrar, Inc.");
    assert_eq!(
        out["nameservers"],
        json!(["A.IANA-SERVERS.NET", "B.IANA-SERVERS.NET"])
    );
    let out =
        e.rt.call(
            &rdap,
            "domain",
            &json!({"domain": "nosuch.example"}),
            "k",
            t,
        )
        .await
        .expect("404");
    assert_eq!(out, json!({"found": false}));
    let out =
        e.rt.call(&rdap, "ip", &json!({"ip": "45.33.32.156"}), "k", t)
            .await
            .expect("ip");
    assert_eq!(
        (out["name"].clone(), out["country"].clone()),
        (json!("LINODE-US"), json!("US"))
    );
    assert!(e.rt.health(&rdap).await.ok);

    // DNS through the system resolver, on a name every system resolves locally.
    let dns = e.add("dns", "dns", json!({}), json!({})).await;
    let dns = e.rt.open(&dns).expect("open");
    let out =
        e.rt.call(&dns, "resolve", &json!({"name": "localhost"}), "k", t)
            .await
            .expect("resolve");
    assert_eq!(out["found"], true, "{out}");
    let addrs: Vec<&str> = out["addresses"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        addrs.iter().any(|a| *a == "127.0.0.1" || *a == "::1"),
        "{addrs:?}"
    );
    let err =
        e.rt.call(&dns, "resolve", &json!({"name": "http://x/y"}), "k", t)
            .await
            .expect_err("not a name");
    assert!(err.message.starts_with("input.name"), "{err:?}");
    assert!(e.rt.health(&dns).await.ok);
}

// ---------------------------------------------------------------------------------------------
// Automatic enrichment through the real job loop.

fn wazuh_alert(
    t: TenantId,
    id: &str,
    srcip: &str,
    dstip: &str,
) -> bulwark_store::ingest::IncomingAlert {
    let payload = json!({
        "id": id, "timestamp": "2024-05-11T12:29:19.905+0000",
        "rule": {"level": 10, "description": "sshd: brute force", "id": "5712"},
        "agent": {"id": "001", "name": "web-01"},
        "data": {"srcip": srcip, "dstip": dstip, "srcuser": "root"},
        "full_log": format!("Failed password for root from {srcip} port 22 ssh2")
    });
    bulwark_store::ingest::IncomingAlert::new(
        t,
        bulwark_normalize::normalize(bulwark_normalize::Source::Wazuh, &payload)
            .expect("normalize"),
        payload.to_string(),
        chrono::Utc::now(),
        ChangeCtx::system("test"),
    )
}

async fn observable_of(
    store: &Store,
    t: TenantId,
    value: &str,
) -> Option<bulwark_store::observables::Observable> {
    store
        .list_observables(
            &bulwark_core::AlertAccess::unrestricted(Scope::AllTenants),
            &bulwark_store::observables::ObservableFilter {
                tenant_id: Some(t),
                q: Some(value.into()),
                match_mode: bulwark_store::observables::MatchMode::Exact,
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .expect("list")
        .into_iter()
        .find(|o| o.value == value)
}

/// Waits until `done` holds for the observable (the job loop runs meanwhile).
async fn wait_for(
    store: &Store,
    t: TenantId,
    value: &str,
    done: impl Fn(&bulwark_store::observables::Observable) -> bool,
) -> bulwark_store::observables::Observable {
    for _ in 0..200 {
        if let Some(o) = observable_of(store, t, value).await
            && done(&o)
        {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{value} was not enriched in time: {:?}",
        observable_of(store, t, value).await
    );
}

#[tokio::test]
async fn observables_are_enriched_once_merged_and_never_sent_when_private_or_allow_listed() {
    use bulwark_integrations::run_jobs;
    let e = env().await;
    let (base, seen) = start_more_fakes().await;
    e.add(
        "virustotal",
        "vt",
        json!({"base_url": format!("{}/api/v3", e.base), "rate_limit_per_minute": 6000}),
        json!({"api_key": "vt-secret-key"}),
    )
    .await;
    e.add(
        "greynoise",
        "gn",
        json!({"base_url": format!("{base}/gn")}),
        json!({"api_key": "gn-key"}),
    )
    .await;
    e.store
        .set_enrichment_settings(
            &ChangeCtx::system("test"),
            &Scope::AllTenants,
            e.tenant,
            &bulwark_store::enrichment::EnrichmentSettings {
                allow_list: vec!["45.33.33.0/24".into()],
                cache_ttl_secs: 3600,
            },
        )
        .await
        .expect("settings");

    // 40 alerts in 4 concurrent batches share one public address; each also carries a private
    // or an allow-listed one.
    let mut handles = Vec::new();
    for b in 0..4 {
        let (store, t) = (e.store.clone(), e.tenant);
        handles.push(tokio::spawn(async move {
            let batch: Vec<_> = (0..10)
                .map(|i| {
                    let other = if i % 2 == 0 { "10.0.0.5" } else { "45.33.33.7" };
                    wazuh_alert(t, &format!("b{b}-{i}"), "45.33.32.156", other)
                })
                .collect();
            store
                .ingest(&batch, chrono::Duration::hours(1))
                .await
                .expect("ingest");
        }));
    }
    for h in handles {
        h.await.expect("join");
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(run_jobs(
        e.store.clone(),
        e.rt.clone(),
        "node-1".into(),
        stop,
    ));

    let o = wait_for(&e.store, e.tenant, "45.33.32.156", |o| {
        o.reputation_sources.len() == 2
    })
    .await;
    assert_eq!(o.verdict.as_deref(), Some("malicious"));
    assert_eq!(
        o.reputation_score,
        Some(90),
        "the highest score among the malicious sources"
    );
    assert_eq!(o.verdict_origin.as_deref(), Some("enrichment"));
    let names: Vec<_> = o
        .reputation_sources
        .iter()
        .map(|s| (s.integration.as_str(), s.score))
        .collect();
    assert_eq!(names, [("gn", 90), ("vt", 73)]);
    let vt_calls = |ip: &str| {
        e.fake
            .ips
            .lock()
            .expect("lock")
            .iter()
            .filter(|x| *x == ip)
            .count()
    };
    assert_eq!(
        vt_calls("45.33.32.156"),
        1,
        "40 alerts, one lookup per service"
    );
    assert_eq!(
        seen.all()
            .iter()
            .filter(|l| *l == "gn: 45.33.32.156")
            .count(),
        1
    );
    // Private and allow-listed values never left.
    for never in ["10.0.0.5", "45.33.33.7"] {
        assert_eq!(vt_calls(never), 0, "{never}");
        assert!(!seen.all().iter().any(|l| l.contains(never)), "{never}");
        let o = observable_of(&e.store, e.tenant, never)
            .await
            .expect("observable");
        assert!(
            o.verdict.is_none() && o.reputation_sources.is_empty(),
            "{o:?}"
        );
    }

    // The alert shows its observables' reputation.
    let alerts = e
        .store
        .list_alerts(
            &bulwark_core::AlertAccess::unrestricted(Scope::AllTenants),
            &bulwark_store::alerts::AlertFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .expect("alerts");
    let detail = e
        .store
        .get_alert(
            &bulwark_core::AlertAccess::unrestricted(Scope::AllTenants),
            alerts[0].id,
        )
        .await
        .expect("alert");
    let public = detail
        .observables
        .iter()
        .find(|x| x.value == "45.33.32.156")
        .expect("public");
    assert_eq!(public.verdict.as_deref(), Some("malicious"));
    assert_eq!(public.reputation_sources.len(), 2);

    // Seen again while the answer is fresh: no new lookup.
    e.store
        .ingest(
            &[wazuh_alert(e.tenant, "again", "45.33.32.156", "10.0.0.5")],
            chrono::Duration::hours(1),
        )
        .await
        .expect("ingest");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(vt_calls("45.33.32.156"), 1);

    // A manual request looks it up again, fresh answer or not.
    e.store
        .queue_enrichment(&ChangeCtx::system("test"), e.tenant, &[o.id], true)
        .await
        .expect("queue");
    for _ in 0..100 {
        if vt_calls("45.33.32.156") == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(vt_calls("45.33.32.156"), 2);

    // A failing vendor: its failure is recorded with the reason and backs off; the other
    // source still gives the verdict, and the loop goes on.
    e.store
        .ingest(
            &[wazuh_alert(e.tenant, "failing", "5.5.5.5", "10.0.0.5")],
            chrono::Duration::hours(1),
        )
        .await
        .expect("ingest");
    let o = wait_for(&e.store, e.tenant, "5.5.5.5", |o| o.enriched_at.is_some()).await;
    let detail = e
        .store
        .get_observable(
            &bulwark_core::AlertAccess::unrestricted(Scope::AllTenants),
            o.id,
            bulwark_store::observables::SightingOptions {
                limit: 5,
                incidents: false,
            },
        )
        .await
        .expect("detail");
    let enrichment = detail.enrichment.expect("enrichment");
    let vt_row = enrichment["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["integration"] == "vt")
        .cloned();
    let vt_row = match vt_row {
        Some(r) if r["status"] == "failed" => r,
        _ => {
            // The GreyNoise answer may land first: wait for VirusTotal's failure.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let d = e
                .store
                .get_observable(
                    &bulwark_core::AlertAccess::unrestricted(Scope::AllTenants),
                    o.id,
                    bulwark_store::observables::SightingOptions {
                        limit: 5,
                        incidents: false,
                    },
                )
                .await
                .expect("detail");
            d.enrichment.expect("enrichment")["results"]
                .as_array()
                .expect("results")
                .iter()
                .find(|r| r["integration"] == "vt")
                .cloned()
                .expect("vt row")
        }
    };
    assert_eq!(vt_row["status"], "failed", "{vt_row}");
    assert_eq!(vt_row["attempts"], 1);
    assert!(
        vt_row["error"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 500") && m.contains("try later")),
        "{vt_row}"
    );
    assert!(vt_row["next_attempt_at"].is_string());
    assert!(!enrichment.to_string().contains("vt-secret-key"));
    assert_eq!(detail.observable.verdict.as_deref(), Some("malicious"));
    assert_eq!(detail.observable.reputation_sources.len(), 1);

    let _ = stop_tx.send(true);
    let _ = worker.await;
}
