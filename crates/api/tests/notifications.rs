//! Notifications over HTTP, through the real parts: rules made with the API, alerts posted
//! to the webhook endpoint, deliveries queued in the ingest transaction, the real integrations
//! job loop, the `webhook` channel calling a local fake over HTTP; failures retried, recorded
//! and visible; permissions, tenant isolation and validation.

mod common;

use axum::extract::State as AxState;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const URL_TOKEN: &str = "s3cret-url-token-77";
const HEADER_SECRET: &str = "hdr-secret-4242";

#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    fail: bool,
}

async fn fake_channel(fail: bool) -> (String, Fake) {
    let fake = Fake {
        fail,
        ..Fake::default()
    };
    let app = axum::Router::new()
        .route(
            "/hook/{token}",
            axum::routing::post(
                |AxState(f): AxState<Fake>, h: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                    if let Ok(mut c) = f.calls.lock() {
                        c.push((h, body));
                    }
                    if f.fail {
                        // A careless upstream echoing the credentials in its error text.
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(json!({"error": format!("upstream down (token {URL_TOKEN}, auth Bearer {HEADER_SECRET})")})),
                        )
                    } else {
                        (StatusCode::OK, axum::Json(json!({"ok": true})))
                    }
                },
            ),
        )
        .with_state(fake.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (format!("http://{addr}/hook/{URL_TOKEN}"), fake)
}

impl Fake {
    fn count(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or(0)
    }
    fn bodies(&self) -> Vec<Value> {
        self.calls
            .lock()
            .map(|c| c.iter().map(|(_, b)| b.clone()).collect())
            .unwrap_or_default()
    }
}

async fn app() -> TestApp {
    TestApp::with_config(|c| {
        c.integrations = Arc::new(bulwark_integrations::Integrations::for_tests(&[
            "127.0.0.1",
        ]));
    })
    .await
}

/// The integrations job loop (as in `bulwark serve`), until the returned sender is dropped.
fn start_worker(app: &TestApp) -> tokio::sync::watch::Sender<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(bulwark_integrations::run_jobs(
        app.store.clone(),
        app.state.config.integrations.clone(),
        "test-node".into(),
        rx,
    ));
    tx
}

async fn webhook_integration(app: &TestApp, tenant: TenantId, url: &str, name: &str) -> String {
    let r = app
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&app.admin_token),
            Some(json!({"type": "webhook", "name": name, "tenant_id": tenant,
                        "config": {"header_name": "Authorization"},
                        "secrets": {"url": url, "header_value": format!("Bearer {HEADER_SECRET}")}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().expect("id").to_string()
}

async fn create_rule(app: &TestApp, token: &str, body: Value) -> Resp {
    app.call(
        Method::POST,
        "/api/v1/notifications/rules",
        Some(token),
        Some(body),
    )
    .await
}

fn wazuh(id: &str, level: u32, host: &str) -> String {
    json!({
        "id": id,
        "timestamp": "2024-05-11T12:29:19.905+0000",
        "rule": {"level": level, "description": format!("sshd: brute force {id}"), "id": "5712"},
        "agent": {"id": "001", "name": host},
        "data": {"srcip": "203.0.113.9"}
    })
    .to_string()
}

/// Polls until `f` is true (at most `secs`).
async fn wait_until(secs: u64, mut f: impl AsyncFnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_high_severity_alert_is_sent_to_the_channel_rendered() {
    let app = app().await;
    let acme = app.tenant("acme").await;
    let (url, fake) = fake_channel(false).await;
    let integration = webhook_integration(&app, acme, &url, "soc-hook").await;
    let r = create_rule(
        &app,
        &app.admin_token,
        json!({"name": "high alerts", "event": "alert.created", "min_severity": "high",
               "integration_id": integration, "tenant_id": acme,
               "title": "[{{ alert.severity | upper }}] {{ alert.title }}",
               "template": "host={{ alert.hostname }} ip={{ alert.source_ip }} id={{ alert.id }}"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["tenant_id"], json!(acme));
    let _worker = start_worker(&app);

    let (key, _) = app.key(&["webhooks:ingest"], acme).await;
    let path = "/api/v1/webhooks/alerts/wazuh";
    let low = post_raw(
        &app,
        path,
        &key,
        "application/json",
        wazuh("a-low", 3, "lab-01"),
    )
    .await;
    assert_eq!(low.status, StatusCode::CREATED, "{}", low.body);
    assert_ne!(low.body["severity"], "critical");
    let high = post_raw(
        &app,
        path,
        &key,
        "application/json",
        wazuh("a-high", 12, "web-01"),
    )
    .await;
    assert_eq!(high.status, StatusCode::CREATED, "{}", high.body);
    assert_eq!(high.body["severity"], "critical");
    let alert_id = high.body["alert_id"].as_str().expect("id").to_string();

    assert!(
        wait_until(15, async || fake.count() >= 1).await,
        "the channel got nothing"
    );
    // Give a wrongly queued low-severity delivery the time to arrive too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies = fake.bodies();
    assert_eq!(bodies.len(), 1, "only the high alert notifies: {bodies:?}");
    assert_eq!(bodies[0]["title"], "[CRITICAL] sshd: brute force a-high");
    assert_eq!(
        bodies[0]["text"],
        format!("host=web-01 ip=203.0.113.9 id={alert_id}")
    );
    assert_eq!(bodies[0]["event"]["event"], "alert.created");
    let headers = fake.calls.lock().expect("lock")[0].0.clone();
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {HEADER_SECRET}").as_str())
    );
    assert!(headers.get("idempotency-key").is_some());

    // The delivery is recorded as sent, with the rendered message.
    let d = app
        .admin(Method::GET, "/api/v1/notifications/deliveries?status=sent")
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let items = d.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", d.body);
    assert_eq!(items[0]["status"], "sent");
    assert_eq!(items[0]["attempts"], 1);
    assert_eq!(items[0]["subject_id"], alert_id);
    assert_eq!(items[0]["title"], "[CRITICAL] sshd: brute force a-high");
    assert!(items[0]["sent_at"].is_string());

    // A test message goes out at once and is recorded like any other.
    let rule_id = r.body["id"].as_str().expect("id");
    let t = app
        .admin(
            Method::POST,
            &format!("/api/v1/notifications/rules/{rule_id}/test"),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.body["status"], "sent", "{}", t.body);
    assert_eq!(t.body["is_test"], true);
    assert_eq!(fake.count(), 2);

    let m = app.call(Method::GET, "/metrics", None, None).await;
    assert!(
        m.body
            .as_str()
            .is_some_and(|b| b.contains("bulwark_notification_deliveries_failed 0")),
        "{}",
        m.body
    );
}

#[tokio::test]
async fn a_failing_channel_is_retried_then_shown_as_failed_without_secrets() {
    let app = app().await;
    let acme = app.tenant("acme").await;
    let (url, fake) = fake_channel(true).await;
    let integration = webhook_integration(&app, acme, &url, "broken-hook").await;
    let r = create_rule(
        &app,
        &app.admin_token,
        json!({"name": "all alerts", "event": "alert.created", "integration_id": integration, "tenant_id": acme}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The default templates are used.
    assert!(
        r.body["title"]
            .as_str()
            .is_some_and(|t| t.contains("alert.title"))
    );
    let _worker = start_worker(&app);
    let (key, _) = app.key(&["webhooks:ingest"], acme).await;
    let posted = post_raw(
        &app,
        "/api/v1/webhooks/alerts/wazuh",
        &key,
        "application/json",
        wazuh("f-1", 12, "db-01"),
    )
    .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);

    let failed = async || {
        app.admin(
            Method::GET,
            "/api/v1/notifications/deliveries?status=failed",
        )
        .await
        .body["items"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    };
    assert!(wait_until(60, failed).await, "the delivery never failed");
    let d = app
        .admin(
            Method::GET,
            "/api/v1/notifications/deliveries?status=failed",
        )
        .await;
    let item = &d.body["items"][0];
    assert_eq!(item["status"], "failed");
    assert_eq!(item["attempts"], 5, "{item}");
    assert!(item["next_attempt_at"].is_null());
    let error = item["last_error"].as_str().expect("error");
    assert!(!error.is_empty());
    let shown = d.body.to_string();
    assert!(!shown.contains(URL_TOKEN), "{shown}");
    assert!(!shown.contains(HEADER_SECRET), "{shown}");
    // Retried: each attempt reached the fake (3 calls each) until the circuit opened.
    assert!(fake.count() >= 2, "{}", fake.count());
    // The rendered message is kept although it was never delivered.
    assert!(
        item["message"]
            .as_str()
            .is_some_and(|m| m.contains("db-01"))
    );

    // Visible on /metrics and in the audit trail.
    let m = app.call(Method::GET, "/metrics", None, None).await;
    assert!(
        m.body
            .as_str()
            .is_some_and(|b| b.contains("bulwark_notification_deliveries_failed 1")),
        "{}",
        m.body
    );
    let audit = app
        .admin(
            Method::GET,
            &format!(
                "/api/v1/audit/events?event_type=action.notification.failed&tenant_id={}",
                acme.0
            ),
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    assert!(
        audit.body.to_string().contains("notification.failed"),
        "{}",
        audit.body
    );
    assert!(!audit.body.to_string().contains(HEADER_SECRET));

    // An admin can queue it again; only a failed delivery can be retried.
    let id = item["id"].as_str().expect("id");
    let again = app
        .admin(
            Method::POST,
            &format!("/api/v1/notifications/deliveries/{id}/retry"),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(again.body["status"], "queued");
    assert_eq!(again.body["attempts"], 0);
    let twice = app
        .admin(
            Method::POST,
            &format!("/api/v1/notifications/deliveries/{id}/retry"),
        )
        .await;
    if twice.status != StatusCode::ACCEPTED {
        assert_problem(&twice, StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn viewers_cannot_manage_rules_and_tenants_see_only_their_own() {
    let app = app().await;
    let acme = app.tenant("acme").await;
    let other = app.tenant("other").await;
    let (url, _fake) = fake_channel(false).await;
    let acme_hook = webhook_integration(&app, acme, &url, "acme-hook").await;
    let other_hook = webhook_integration(&app, other, &url, "other-hook").await;
    let r = create_rule(
        &app,
        &app.admin_token,
        json!({"name": "acme rule", "event": "incident.created", "integration_id": acme_hook, "tenant_id": acme}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rule = r.body["id"].as_str().expect("id").to_string();

    // A viewer reads rules but cannot create, change, test or delete them, nor see deliveries.
    let (_, viewer) = app.user("vera", Role::Viewer, acme).await;
    let list = app
        .call(
            Method::GET,
            "/api/v1/notifications/rules",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    let denied = create_rule(
        &app,
        &viewer,
        json!({"name": "mine", "event": "alert.created", "integration_id": acme_hook}),
    )
    .await;
    assert_problem(&denied, StatusCode::FORBIDDEN);
    for (method, path) in [
        (Method::PATCH, format!("/api/v1/notifications/rules/{rule}")),
        (
            Method::DELETE,
            format!("/api/v1/notifications/rules/{rule}"),
        ),
        (
            Method::POST,
            format!("/api/v1/notifications/rules/{rule}/test"),
        ),
        (Method::GET, "/api/v1/notifications/deliveries".to_string()),
    ] {
        let body = body_for(&method);
        let r = app.call(method, &path, Some(&viewer), body).await;
        assert_problem(&r, StatusCode::FORBIDDEN);
    }
    let (_, analyst) = app.user("ana", Role::Analyst, acme).await;
    let denied = create_rule(
        &app,
        &analyst,
        json!({"name": "mine", "event": "alert.created", "integration_id": acme_hook}),
    )
    .await;
    assert_problem(&denied, StatusCode::FORBIDDEN);

    // The other tenant's admin sees nothing of acme's and cannot use acme's channel.
    let (_, other_admin) = app.user("olga", Role::Admin, other).await;
    let list = app
        .call(
            Method::GET,
            "/api/v1/notifications/rules",
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(list.body["items"], json!([]));
    for (method, path) in [
        (Method::GET, format!("/api/v1/notifications/rules/{rule}")),
        (Method::PATCH, format!("/api/v1/notifications/rules/{rule}")),
        (
            Method::DELETE,
            format!("/api/v1/notifications/rules/{rule}"),
        ),
        (
            Method::POST,
            format!("/api/v1/notifications/rules/{rule}/test"),
        ),
    ] {
        let body = body_for(&method);
        let r = app.call(method, &path, Some(&other_admin), body).await;
        assert_problem(&r, StatusCode::NOT_FOUND);
    }
    let stolen = create_rule(
        &app,
        &other_admin,
        json!({"name": "steal", "event": "alert.created", "integration_id": acme_hook}),
    )
    .await;
    assert_problem(&stolen, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(stolen.body["field"], "integration_id");
    let own = create_rule(
        &app,
        &other_admin,
        json!({"name": "own", "event": "incident.created", "integration_id": other_hook}),
    )
    .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    assert_eq!(own.body["tenant_id"], json!(other));

    // An incident in acme queues a delivery in acme only; the other admin cannot see it.
    let inc = app
        .call(
            Method::POST,
            "/api/v1/incidents",
            Some(&app.admin_token),
            Some(json!({"title": "Ransomware on file server", "severity": "critical", "tenant_id": acme})),
        )
        .await;
    assert_eq!(inc.status, StatusCode::CREATED, "{}", inc.body);
    let mine = app
        .admin(
            Method::GET,
            &format!("/api/v1/notifications/deliveries?tenant_id={}", acme.0),
        )
        .await;
    let items = mine.body["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1, "{}", mine.body);
    assert_eq!(items[0]["event"], "incident.created");
    assert_eq!(
        items[0]["context"]["incident"]["title"],
        "Ransomware on file server"
    );
    let delivery = items[0]["id"].as_str().expect("id").to_string();
    let theirs = app
        .call(
            Method::GET,
            "/api/v1/notifications/deliveries",
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(theirs.body["items"], json!([]), "{}", theirs.body);
    for (method, path) in [
        (
            Method::GET,
            format!("/api/v1/notifications/deliveries/{delivery}"),
        ),
        (
            Method::POST,
            format!("/api/v1/notifications/deliveries/{delivery}/retry"),
        ),
    ] {
        let r = app.call(method, &path, Some(&other_admin), None).await;
        assert_problem(&r, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn invalid_rules_are_rejected_naming_the_field() {
    let app = app().await;
    let (url, _fake) = fake_channel(false).await;
    let hook = webhook_integration(&app, app.platform, &url, "hook").await;
    let vt = app
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&app.admin_token),
            Some(json!({"type": "virustotal", "name": "vt", "secrets": {"api_key": "k-123456"}})),
        )
        .await;
    assert_eq!(vt.status, StatusCode::CREATED, "{}", vt.body);
    let vt = vt.body["id"].as_str().expect("id").to_string();
    let ok = |extra: Value| {
        let mut b = json!({"name": "r", "event": "alert.created", "integration_id": hook});
        if let (Some(m), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                m.insert(k.clone(), v.clone());
            }
        }
        b
    };
    for (body, field) in [
        (ok(json!({"event": "alert.exploded"})), "event"),
        (ok(json!({"template": "{{ alert.title "})), "template"),
        (ok(json!({"template": "{% for x in %}"})), "template"),
        (
            ok(json!({"title": "{{ alert.title | no_such_filter }}"})),
            "title",
        ),
        (
            ok(json!({"template": "{% include 'secrets.txt' %}"})),
            "template",
        ),
        (ok(json!({"min_severity": "apocalyptic"})), "min_severity"),
        (
            ok(json!({"event": "run.failed", "min_severity": "high"})),
            "min_severity",
        ),
        (ok(json!({"event": "sla.breach_soon"})), "sla_minutes"),
        (
            ok(json!({"event": "sla.breach_soon", "sla_minutes": 0})),
            "sla_minutes",
        ),
        (
            ok(json!({"event": "sla.breach_soon", "sla_minutes": 60, "warn_minutes": 90})),
            "warn_minutes",
        ),
        (ok(json!({"sla_minutes": 60})), "sla_minutes"),
        (ok(json!({"integration_id": vt})), "integration_id"),
        (
            ok(json!({"integration_id": uuid::Uuid::now_v7()})),
            "integration_id",
        ),
        (ok(json!({"name": "  "})), "name"),
    ] {
        let r = create_rule(&app, &app.admin_token, body.clone()).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], field, "{body} → {}", r.body);
    }
    // Not JSON, a wrong type, an unknown field: problems, never a 500.
    for body in [
        json!({"name": 5, "event": "alert.created", "integration_id": hook}),
        json!({"name": "r", "event": "alert.created", "integration_id": "nope"}),
        json!({"name": "r", "event": "alert.created", "integration_id": hook, "colour": "red"}),
    ] {
        let r = create_rule(&app, &app.admin_token, body).await;
        assert!(r.status.is_client_error(), "{}", r.body);
    }
    let r = app
        .admin(Method::GET, "/api/v1/notifications/deliveries?status=lost")
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "status");

    // A valid rule, then a PATCH with a broken template names the field and changes nothing.
    let r = create_rule(
        &app,
        &app.admin_token,
        ok(json!({"name": "good", "min_severity": "high"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id");
    let p = app
        .call(
            Method::PATCH,
            &format!("/api/v1/notifications/rules/{id}"),
            Some(&app.admin_token),
            Some(json!({"template": "{{ oops "})),
        )
        .await;
    assert_problem(&p, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p.body["field"], "template");
    let p = app
        .call(
            Method::PATCH,
            &format!("/api/v1/notifications/rules/{id}"),
            Some(&app.admin_token),
            Some(json!({"min_severity": null, "enabled": false})),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(p.body["min_severity"], Value::Null);
    assert_eq!(p.body["enabled"], false);
    let dup = create_rule(&app, &app.admin_token, ok(json!({"name": "good"}))).await;
    assert!(dup.status.is_client_error(), "{}", dup.body);
    let del = app
        .admin(Method::DELETE, &format!("/api/v1/notifications/rules/{id}"))
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let gone = app
        .admin(Method::GET, &format!("/api/v1/notifications/rules/{id}"))
        .await;
    assert_problem(&gone, StatusCode::NOT_FOUND);
}
