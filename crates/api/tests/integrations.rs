//! Integrations over HTTP: types, instances (secrets in, never out), validation, health checks
//! against a local fake of the vendor, actions run by hand on an alert's timeline, playbooks
//! using integration actions.

mod common;

use axum::extract::Path;
use axum::routing::get;
use common::*;
use std::sync::Arc;

async fn fake_vt() -> String {
    let app = axum::Router::new().route(
        "/api/v3/ip_addresses/{ip}",
        get(|h: HeaderMap, Path(ip): Path<String>| async move {
            if h.get("x-apikey").and_then(|v| v.to_str().ok()) != Some("vt-secret-key") {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"error": {"code": "WrongCredentialsError", "message": "Wrong API key vt-bad-key-1234"}})),
                );
            }
            (
                StatusCode::OK,
                axum::Json(json!({"data": {"id": ip, "type": "ip_address", "attributes": {
                    "last_analysis_stats": {"harmless": 1, "malicious": 9, "suspicious": 0, "undetected": 3}}}})),
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}/api/v3")
}

async fn app() -> TestApp {
    TestApp::with_config(|c| {
        c.integrations = Arc::new(bulwark_integrations::Integrations::for_tests(&[
            "127.0.0.1",
        ]));
    })
    .await
}

#[tokio::test]
async fn instances_keep_their_secrets_and_validate_every_field() {
    let app = app().await;
    let base = fake_vt().await;
    let types = app.admin(Method::GET, "/api/v1/integrations/types").await;
    let vt = types.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["name"] == "virustotal")
        .expect("virustotal")
        .clone();
    assert_eq!(vt["rate_limit"], json!({"requests": 4, "per_seconds": 60}));
    assert!(
        vt["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["name"] == "api_key" && f["secret"] == true)
    );
    assert!(
        vt["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .any(
                |a| a["name"] == "virustotal.lookup_ip" && a["enriches"] == json!(["ipv4", "ipv6"])
            )
    );

    let create = |body: Value| {
        app.call(
            Method::POST,
            "/api/v1/integrations",
            Some(&app.admin_token),
            Some(body),
        )
    };
    let r = create(json!({"type": "virustotal", "name": "vt", "config": {"base_url": base, "rate_limit_per_minute": 600},
                          "secrets": {"api_key": "vt-secret-key"}, "is_default": true, "enrichment": true}))
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(!r.body.to_string().contains("vt-secret-key"), "{}", r.body);
    assert_eq!(r.body["secrets_set"], json!(["api_key"]));
    let id = r.body["id"].as_str().expect("id").to_string();
    let got = app
        .admin(Method::GET, &format!("/api/v1/integrations/{id}"))
        .await;
    assert!(!got.body.to_string().contains("vt-secret-key"));
    let list = app
        .admin(Method::GET, "/api/v1/integrations?type=virustotal")
        .await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));

    // Each mistake is a 422 naming its field.
    for (body, field) in [
        (json!({"type": "virustotl", "name": "x"}), "type"),
        (json!({"type": "virustotal", "name": "bad name!"}), "name"),
        (
            json!({"type": "virustotal", "name": "x"}),
            "secrets.api_key",
        ),
        (
            json!({"type": "virustotal", "name": "x", "secrets": {"api_key": 5}}),
            "secrets.api_key",
        ),
        (
            json!({"type": "virustotal", "name": "x", "config": {"api_key": "k"}}),
            "config.api_key",
        ),
        (
            json!({"type": "virustotal", "name": "x", "config": {"colour": "red"}, "secrets": {"api_key": "k"}}),
            "config.colour",
        ),
        (
            json!({"type": "virustotal", "name": "x", "config": {"base_url": "ftp://x"}, "secrets": {"api_key": "k"}}),
            "config.base_url",
        ),
        (
            json!({"type": "virustotal", "name": "x", "config": {"base_url": "https://169.254.169.254/latest"}, "secrets": {"api_key": "k"}}),
            "config.base_url",
        ),
        (
            json!({"type": "slack_webhook", "name": "x", "secrets": {"webhook_url": "https://hooks.example.com/x"}, "enrichment": true}),
            "enrichment",
        ),
        (
            json!({"type": "virustotal", "name": "x", "secrets": {"api_key": "k"}, "bogus": 1}),
            "bogus",
        ),
    ] {
        let r = create(body.clone()).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], field, "{body}: {}", r.body);
    }
    let r = create(json!({"type": "virustotal", "name": "vt", "secrets": {"api_key": "k"}})).await;
    assert_problem(&r, StatusCode::CONFLICT);

    // Moving the instance to another address needs the secrets again: stored credentials
    // never follow a base_url change.
    let path = format!("/api/v1/integrations/{id}");
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"config": {"base_url": "https://attacker.example.net/api"}})),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "secrets.api_key");
    // A PATCH that does not touch secrets keeps them.
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"description": "primary"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["secrets_set"], json!(["api_key"]));

    // Health: a real call; result and time stored. A wrong key fails with the vendor's reason.
    let r = app.admin(Method::POST, &format!("{path}/health")).await;
    assert_eq!(r.body["status"], "ok", "{}", r.body);
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"secrets": {"api_key": "vt-bad-key-1234"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.admin(Method::POST, &format!("{path}/health")).await;
    assert_eq!(r.body["status"], "failed");
    let msg = r.body["message"].as_str().expect("message");
    assert!(
        msg.contains("HTTP 401") && msg.contains("Wrong API key"),
        "{msg}"
    );
    assert!(
        !msg.contains("vt-bad-key-1234"),
        "the secret is redacted from the vendor's echo: {msg}"
    );
    let got = app.admin(Method::GET, &path).await;
    assert_eq!(got.body["health"]["status"], "failed");
    assert!(got.body["health"]["checked_at"].is_string());

    let r = app.admin(Method::DELETE, &path).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_problem(&app.admin(Method::GET, &path).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn actions_run_by_hand_land_on_the_alert_timeline() {
    let app = app().await;
    let base = fake_vt().await;
    let r = app
        .call(Method::POST, "/api/v1/integrations", Some(&app.admin_token),
            Some(json!({"type": "virustotal", "name": "vt", "config": {"base_url": base}, "secrets": {"api_key": "vt-secret-key"}})))
        .await;
    let id = r.body["id"].as_str().expect("id").to_string();
    let alert = app
        .alert(
            app.platform,
            "generic",
            json!({"title": "beacon", "source_ip": "203.0.113.9"}),
        )
        .await;
    let (_, analyst) = app.user("ana", Role::Analyst, app.platform).await;
    let exec = |body: Value| {
        app.call(
            Method::POST,
            "/api/v1/actions/execute",
            Some(&analyst),
            Some(body),
        )
    };
    let r = exec(json!({"action": "virustotal.lookup_ip", "integration_id": id, "input": {"ip": "203.0.113.9"}, "alert_id": alert})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "succeeded");
    assert_eq!(r.body["output"]["malicious"], 9);
    let acts = app
        .admin(Method::GET, &format!("/api/v1/alerts/{alert}/activities"))
        .await;
    let act = acts.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["kind"] == "action")
        .cloned()
        .expect("action activity");
    assert_eq!(
        (
            act["old_value"].clone(),
            act["new_value"].clone(),
            act["actor_name"].clone()
        ),
        (
            json!("virustotal.lookup_ip"),
            json!("succeeded"),
            json!("ana")
        )
    );

    for (body, field) in [
        (
            json!({"action": "alert.update", "integration_id": id, "input": {}}),
            "action",
        ),
        (
            json!({"action": "abuseipdb.check_ip", "integration_id": id, "input": {"ip": "1.2.3.4"}}),
            "action",
        ),
        (
            json!({"action": "virustotal.lookup_ip", "integration_id": id, "input": {}}),
            "input.ip",
        ),
        (
            json!({"action": "virustotal.lookup_ip", "integration_id": uuid::Uuid::now_v7(), "input": {"ip": "1.2.3.4"}}),
            "integration_id",
        ),
        (
            json!({"action": "virustotal.lookup_ip", "integration_id": id, "input": {"ip": "1.2.3.4"}, "alert_id": uuid::Uuid::now_v7()}),
            "alert_id",
        ),
    ] {
        let r = exec(body.clone()).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], field, "{body}: {}", r.body);
    }
    let (_, viewer) = app.user("vic", Role::Viewer, app.platform).await;
    let r = app
        .call(Method::POST, "/api/v1/actions/execute", Some(&viewer),
              Some(json!({"action": "virustotal.lookup_ip", "integration_id": id, "input": {"ip": "1.2.3.4"}})))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN);

    // Playbooks validate integration actions and their arguments at load time.
    let pb = |args: Value| {
        json!({"name": "vt-pb", "triggers": [{"on": "manual"}],
        "actions": [{"ref": "vt", "action": "virustotal.lookup_ip", "args": args}]})
    };
    let r = app
        .call(
            Method::POST,
            "/api/v1/playbooks",
            Some(&app.admin_token),
            Some(pb(json!({"address": "1.2.3.4"}))),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(
            Method::POST,
            "/api/v1/playbooks",
            Some(&app.admin_token),
            Some(pb(
                json!({"ip": "{{ alert.source_ip }}", "integration": "vt"}),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}
