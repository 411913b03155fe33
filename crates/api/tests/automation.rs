//! The automation API (playbooks, runs, approvals) through the real router over a real store
//! (SQLite, or PostgreSQL when `BULWARK_TEST_DATABASE_URL` says so), with the real worker
//! executing runs where a test needs them to progress.

mod common;

use bulwark_engine::{EngineConfig, run_worker};
use bulwark_store::automation::RunFilter;
use common::*;
use std::time::Duration;
use tokio::sync::watch;

/// The example of docs/playbooks.md, exactly as written there.
const EXAMPLE: &str = r#"name: ssh-bruteforce-triage
description: Tag and annotate critical SSH brute-force alerts
enabled: true
triggers:
  - on: alert.created
    if: alert.severity in ["critical", "high"] and "ssh" in alert.title | lower
actions:
  - ref: tag
    action: alert.update
    args:
      tags: ["auto-triaged"]
  - ref: note
    action: alert.comment
    depends_on: [tag]
    args:
      text: "triaged by {{ playbook.name }} for {{ alert.source_ip }}"
"#;

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: impl Into<Body>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    app.raw(b.body(body.into()).expect("request")).await
}

async fn post_yaml(app: &TestApp, token: &str, path: &str, yaml: &str) -> Resp {
    send(
        app,
        Method::POST,
        path,
        token,
        "application/yaml",
        yaml.to_string(),
        &[],
    )
    .await
}

/// Creates a playbook from JSON and returns its id.
async fn create_json(app: &TestApp, token: &str, spec: Value) -> String {
    let r = app
        .call(Method::POST, "/api/v1/playbooks", Some(token), Some(spec))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id_of(&r)
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().expect("id").to_string()
}

fn approval_spec(name: &str, extra: Value) -> Value {
    let mut ask = json!({"message": "contain {{ alert.title }}?"});
    if let (Some(a), Value::Object(e)) = (ask.as_object_mut(), extra) {
        a.extend(e);
    }
    json!({
        "name": name,
        "triggers": [{"on": "manual"}],
        "actions": [
            {"ref": "ask", "action": "approval", "args": ask},
            {"ref": "tag", "action": "alert.update", "depends_on": ["ask"],
             "args": {"tags": ["approved"]}}
        ]
    })
}

async fn run_count(app: &TestApp) -> usize {
    app.store
        .list_runs(
            &Scope::AllTenants,
            &RunFilter {
                limit: 500,
                ..RunFilter::default()
            },
        )
        .await
        .expect("runs")
        .len()
}

async fn jobs(app: &TestApp, status: &str) -> i64 {
    app.store
        .job_counts()
        .await
        .expect("job counts")
        .into_iter()
        .find(|(s, _)| s == status)
        .map_or(0, |(_, n)| n)
}

struct Worker {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn start(app: &TestApp) -> Self {
        let (stop, rx) = watch::channel(false);
        let cfg = EngineConfig {
            node_id: "http-test-worker".into(),
            poll_interval: Duration::from_millis(50),
            ..EngineConfig::default()
        };
        let handle = tokio::spawn(run_worker(app.store.clone(), cfg, rx));
        Worker { stop, handle }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("worker stops")
            .expect("worker task");
    }
}

/// Polls the run through the API until it reaches one of `statuses`.
async fn wait_run(app: &TestApp, token: &str, run: &str, statuses: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = app
            .call(
                Method::GET,
                &format!("/api/v1/runs/{run}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["status"]
            .as_str()
            .is_some_and(|s| statuses.contains(&s))
        {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run still {} ({}), wanted {statuses:?}",
            r.body["status"],
            r.body["error"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_run(app: &TestApp, token: &str, playbook: &str, body: Value) -> Resp {
    app.call(
        Method::POST,
        &format!("/api/v1/playbooks/{playbook}/run"),
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn playbooks_load_from_yaml_and_json_and_keep_their_source() {
    let app = TestApp::new().await;
    let a = app.tenant("tenant-a").await;
    let (_, admin) = app.user("a-admin", Role::Admin, a).await;

    let r = post_yaml(&app, &admin, "/api/v1/playbooks", EXAMPLE).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "ssh-bruteforce-triage");
    assert_eq!(r.body["tenant_id"], json!(a));
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["source"], EXAMPLE);
    assert_eq!(r.body["source_format"], "yaml");
    assert_eq!(r.body["versions"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["spec"]["actions"][1]["depends_on"], json!(["tag"]));
    let id = id_of(&r);
    let got = app
        .call(
            Method::GET,
            &format!("/api/v1/playbooks/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["source"], EXAMPLE);
    assert_eq!(got.body["created_by"], "a-admin");

    // The other YAML content types, and JSON.
    for (ct, name) in [
        ("text/yaml", "via-text-yaml"),
        ("application/x-yaml; charset=utf-8", "via-x-yaml"),
    ] {
        let doc = EXAMPLE.replace("ssh-bruteforce-triage", name);
        let r = send(
            &app,
            Method::POST,
            "/api/v1/playbooks",
            &admin,
            ct,
            doc,
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{ct}: {}", r.body);
    }
    let spec = json!({"name": "from-json", "triggers": [{"on": "manual"}],
                      "actions": [{"ref": "c", "action": "alert.comment", "args": {"text": "hi"}}]});
    let r = app
        .call(
            Method::POST,
            "/api/v1/playbooks",
            Some(&admin),
            Some(spec.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["source_format"], "json");
    assert_eq!(
        serde_json::from_str::<Value>(r.body["source"].as_str().expect("source")).expect("json"),
        spec
    );

    let list = app
        .call(Method::GET, "/api/v1/playbooks", Some(&admin), None)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(4));

    // The name is unique.
    let r = post_yaml(&app, &admin, "/api/v1/playbooks", EXAMPLE).await;
    assert_problem(&r, StatusCode::CONFLICT);
    assert_eq!(r.body["field"], "name");
    // Other content types.
    let r = send(
        &app,
        Method::POST,
        "/api/v1/playbooks",
        &admin,
        "text/plain",
        EXAMPLE,
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app
        .raw(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/playbooks")
                .header("authorization", format!("Bearer {admin}"))
                .body(Body::from(EXAMPLE))
                .expect("request"),
        )
        .await;
    assert_problem(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn an_invalid_playbook_never_loads_and_every_error_is_listed_with_its_line() {
    let app = TestApp::new().await;
    let before = app
        .store
        .list_playbooks(&Scope::AllTenants)
        .await
        .expect("list")
        .len();
    let bad = r#"name: Bad Name
triggers:
  - on: alert.created
actions:
  - ref: tag
    action: alert.updat
    args:
      tags: ["x"]
  - ref: note
    action: alert.comment
    depends_on: [nope]
    args:
      text: "{{ alert.title"
"#;
    let r = post_yaml(&app, &app.admin_token, "/api/v1/playbooks", bad).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = r.body["errors"].as_array().expect("errors").clone();
    assert!(errors.len() >= 4, "{errors:?}");
    let at = |field: &str| {
        errors
            .iter()
            .find(|e| e["field"].as_str().is_some_and(|f| f.starts_with(field)))
            .unwrap_or_else(|| panic!("no error at {field}: {errors:?}"))
            .clone()
    };
    assert_eq!(at("name")["line"], 1);
    assert_eq!(at("actions[0].action")["line"], 6);
    assert!(
        at("actions[0].action")["message"]
            .as_str()
            .is_some_and(|m| m.contains("alert.update")),
        "a suggestion: {errors:?}"
    );
    assert_eq!(at("actions[1].depends_on")["line"], 11);
    assert_eq!(at("actions[1].args.text")["line"], 13);
    assert!(r.body["field"].is_string());

    // A JSON document gets the same list, with lines in the submitted text.
    let pretty = serde_json::to_string_pretty(&json!({
        "name": "json-bad", "triggers": [{"on": "manual"}],
        "actions": [{"ref": "c", "action": "alert.coment", "args": {"text": "hi"}}]
    }))
    .expect("json");
    let r = send(
        &app,
        Method::POST,
        "/api/v1/playbooks",
        &app.admin_token,
        "application/json",
        pretty.clone(),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let line = pretty
        .lines()
        .position(|l| l.contains("alert.coment"))
        .expect("line")
        + 1;
    assert_eq!(
        r.body["errors"][0]["field"], "actions[0].action",
        "{}",
        r.body
    );
    assert_eq!(r.body["errors"][0]["line"], line, "{}", r.body);

    // Unknown fields, malformed YAML and JSON, wrong types: 4xx naming the problem.
    let r = post_yaml(
        &app,
        &app.admin_token,
        "/api/v1/playbooks",
        &EXAMPLE.replace("enabled: true", "enabled: true\nowner: me"),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("owner")),
        "{}",
        r.body
    );
    assert_eq!(r.body["errors"][0]["line"], 4);
    let r = post_yaml(
        &app,
        &app.admin_token,
        "/api/v1/playbooks",
        "name: [unclosed\n",
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post_yaml(&app, &app.admin_token, "/api/v1/playbooks", "").await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = send(
        &app,
        Method::POST,
        "/api/v1/playbooks",
        &app.admin_token,
        "application/json",
        "{\"name\":",
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let r = app
        .call(
            Method::POST,
            "/api/v1/playbooks",
            Some(&app.admin_token),
            Some(json!({"name": 5, "triggers": [], "actions": []})),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "name");
    let r = send(
        &app,
        Method::POST,
        "/api/v1/playbooks",
        &app.admin_token,
        "application/yaml",
        vec![0xff_u8, 0xfe, 0x00],
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let huge = format!("{EXAMPLE}# {}\n", "x".repeat(2 * 1024 * 1024));
    let r = post_yaml(&app, &app.admin_token, "/api/v1/playbooks", &huge).await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE);
    let r = post_yaml(
        &app,
        &app.admin_token,
        "/api/v1/playbooks?scope=everywhere",
        EXAMPLE,
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "scope");
    for path in [
        "/api/v1/playbooks/not-a-uuid",
        "/api/v1/runs/123",
        "/api/v1/approvals/x/approve",
    ] {
        let method = if path.ends_with("approve") {
            Method::POST
        } else {
            Method::GET
        };
        let r = app.call(method, path, Some(&app.admin_token), None).await;
        assert_problem(&r, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["field"], "id");
    }
    assert_eq!(
        app.store
            .list_playbooks(&Scope::AllTenants)
            .await
            .expect("list")
            .len(),
        before,
        "nothing was stored"
    );
}

#[tokio::test]
async fn updates_name_the_version_they_change_and_a_stale_one_is_409() {
    let app = TestApp::new().await;
    let r = post_yaml(&app, &app.admin_token, "/api/v1/playbooks", EXAMPLE).await;
    let id = id_of(&r);
    let path = format!("/api/v1/playbooks/{id}");
    let v2 = EXAMPLE.replace("Tag and annotate", "Tag, annotate");
    let put = |url: String, doc: String, headers: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move {
            send(
                app,
                Method::PUT,
                &url,
                &app.admin_token,
                "application/yaml",
                doc,
                &headers,
            )
            .await
        }
    };
    let r = put(path.clone(), v2.clone(), vec![]).await;
    assert_problem(&r, StatusCode::PRECONDITION_REQUIRED);
    let r = put(format!("{path}?version=1"), v2.clone(), vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    assert_eq!(
        r.body["description"],
        "Tag, annotate critical SSH brute-force alerts"
    );
    assert_eq!(r.body["source"], v2);
    // Someone still holding version 1 is refused; the stored version is unchanged.
    let r = put(path.clone(), EXAMPLE.into(), vec![("if-match", "\"1\"")]).await;
    assert_problem(&r, StatusCode::CONFLICT);
    let r = put(path.clone(), EXAMPLE.into(), vec![("if-match", "\"2\"")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 3);
    assert_eq!(r.body["source"], EXAMPLE);
    let versions: Vec<i64> = r.body["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(versions, vec![3, 2, 1]);
    let r = put(path.clone(), EXAMPLE.into(), vec![("if-match", "three")]).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    // An invalid new version is refused like an invalid new playbook.
    let r = put(
        format!("{path}?version=3"),
        EXAMPLE.replace("alert.comment", "alert.coment"),
        vec![],
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["line"], 13);
    let got = app.admin(Method::GET, &path).await;
    assert_eq!(got.body["version"], 3);
    let r = put(
        format!("/api/v1/playbooks/{}?version=1", uuid::Uuid::now_v7()),
        EXAMPLE.into(),
        vec![],
    )
    .await;
    assert_problem(&r, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn enable_disable_and_delete() {
    let app = TestApp::new().await;
    let a = app.tenant("tenant-a").await;
    let (_, admin) = app.user("a-admin", Role::Admin, a).await;
    let id = id_of(&post_yaml(&app, &admin, "/api/v1/playbooks", EXAMPLE).await);
    let alert = app
        .alert(a, "wazuh", wazuh_alert("w-1", "203.0.113.9"))
        .await;

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/playbooks/{id}/disable"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["enabled"], false);
    let r = start_run(&app, &admin, &id, json!({"alert_id": alert})).await;
    assert_problem(&r, StatusCode::CONFLICT);
    assert_eq!(run_count(&app).await, 0);
    // A dry run of a disabled playbook is allowed: it is how one checks it before enabling.
    let r = start_run(
        &app,
        &admin,
        &id,
        json!({"alert_id": alert, "dry_run": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/playbooks/{id}/enable"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.body["enabled"], true);
    let r = start_run(&app, &admin, &id, json!({"alert_id": alert})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let run = id_of(&r);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/playbooks/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/playbooks/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    // Its runs stay.
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/runs/{run}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["playbook_name"], "ssh-bruteforce-triage");
    // The changes are in the tenant's audit chain.
    let r = app
        .call(
            Method::GET,
            "/api/v1/audit/events?limit=100",
            Some(&admin),
            None,
        )
        .await;
    let kinds = r.body.to_string();
    for k in [
        "playbook.created",
        "playbook.disabled",
        "playbook.enabled",
        "playbook.deleted",
    ] {
        assert!(kinds.contains(k), "{k} in {kinds}");
    }
}

#[tokio::test]
async fn global_playbooks_are_made_by_platform_admins_only() {
    let app = TestApp::new().await;
    let a = app.tenant("tenant-a").await;
    let (_, a_admin) = app.user("a-admin", Role::Admin, a).await;
    let r = post_yaml(&app, &a_admin, "/api/v1/playbooks?scope=global", EXAMPLE).await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = post_yaml(
        &app,
        &app.admin_token,
        "/api/v1/playbooks?scope=global",
        EXAMPLE,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body["tenant_id"].is_null());
    let id = id_of(&r);
    // Visible to the tenant, runnable on its alerts, not changeable by it.
    let list = app
        .call(Method::GET, "/api/v1/playbooks", Some(&a_admin), None)
        .await;
    assert_eq!(list.body["items"][0]["id"], json!(id));
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/playbooks/{id}/disable"),
            Some(&a_admin),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        Method::PUT,
        &format!("/api/v1/playbooks/{id}?version=1"),
        &a_admin,
        "application/yaml",
        EXAMPLE,
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let alert = app.alert(a, "generic", json!({"title": "ssh"})).await;
    let r = start_run(&app, &a_admin, &id, json!({"alert_id": alert})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(
        r.body["tenant_id"],
        json!(a),
        "the run belongs to the alert's tenant"
    );
    // A tenant playbook for another tenant is named with tenant_id, in scope only.
    let r = post_yaml(
        &app,
        &app.admin_token,
        &format!("/api/v1/playbooks?tenant_id={a}"),
        &EXAMPLE.replace("ssh-bruteforce-triage", "for-a"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["tenant_id"], json!(a));
    let r = post_yaml(
        &app,
        &a_admin,
        &format!("/api/v1/playbooks?tenant_id={}", app.platform),
        &EXAMPLE.replace("ssh-bruteforce-triage", "sneaky"),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "tenant_id");
}

#[tokio::test]
async fn a_manual_run_queues_a_run_with_its_job() {
    let app = TestApp::new().await;
    let a = app.tenant("tenant-a").await;
    let (_, admin) = app.user("a-admin", Role::Admin, a).await;
    let (_, analyst) = app.user("a-analyst", Role::Analyst, a).await;
    let id = id_of(&post_yaml(&app, &admin, "/api/v1/playbooks", EXAMPLE).await);
    let alert = app
        .alert(a, "wazuh", wazuh_alert("w-1", "203.0.113.9"))
        .await;

    let r = start_run(&app, &analyst, &id, json!({"alert_id": alert})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["status"], "queued");
    assert_eq!(r.body["trigger"], "manual");
    assert_eq!(r.body["alert_id"], json!(alert));
    assert_eq!(r.body["tenant_id"], json!(a));
    assert_eq!(r.body["requested_by"], "a-analyst");
    assert_eq!(r.body["playbook_version"], 1);
    assert_eq!(jobs(&app, "queued").await, 1);
    let first = id_of(&r);
    let r = start_run(&app, &analyst, &id, json!({"input": {"host": "web-01"}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["input"], json!({"host": "web-01"}));
    assert!(r.body["alert_id"].is_null());
    let second = id_of(&r);
    assert_eq!(jobs(&app, "queued").await, 2);

    // Listing, filters and pagination.
    let list = |q: &str| {
        let (app, analyst) = (&app, analyst.clone());
        let url = format!("/api/v1/runs{q}");
        async move { app.call(Method::GET, &url, Some(&analyst), None).await }
    };
    let r = list("").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"][0]["id"], json!(second), "newest first");
    assert!(r.body["items"][0].get("state").is_none());
    assert!(r.body["next_cursor"].is_null());
    let r = list(&format!("?alert_id={alert}")).await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["items"][0]["id"], json!(first));
    let r = list(&format!("?playbook_id={id}&status=queued&limit=1")).await;
    assert_eq!(r.body["items"][0]["id"], json!(second));
    let cursor = r.body["next_cursor"].as_str().expect("cursor").to_string();
    let r = list(&format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(r.body["items"][0]["id"], json!(first));
    let r = list("?status=succeeded").await;
    assert_eq!(r.body["items"], json!([]));
    for (q, field) in [
        ("?status=done", "status"),
        ("?limit=0", "limit"),
        ("?alert_id=x", "alert_id"),
        ("?bogus=1", ""),
    ] {
        let r = list(q).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        if !field.is_empty() {
            assert_eq!(r.body["field"], field, "{q}");
        }
    }

    // Bad run requests.
    for (body, field) in [
        (json!({"input": [1, 2]}), "input"),
        (json!({"alert_id": "nope"}), "alert_id"),
        (json!({"dry_run": "yes"}), "dry_run"),
    ] {
        let r = start_run(&app, &analyst, &id, body).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], field);
    }
    let r = start_run(&app, &analyst, &id, json!({"alert": alert})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = start_run(
        &app,
        &analyst,
        &id,
        json!({"alert_id": uuid::Uuid::now_v7()}),
    )
    .await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    let r = start_run(
        &app,
        &analyst,
        &id,
        json!({"incident_id": uuid::Uuid::now_v7()}),
    )
    .await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    assert_eq!(run_count(&app).await, 2);

    // Cancel: a queued run is cancelled and its job removed; a finished run is 409.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/runs/{first}/cancel"),
            Some(&analyst),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(jobs(&app, "queued").await, 1);
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/runs/{first}/cancel"),
            Some(&analyst),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_shows_the_resolved_arguments() {
    let app = TestApp::new().await;
    let a = app.tenant("tenant-a").await;
    let (_, admin) = app.user("a-admin", Role::Admin, a).await;
    let alert = app
        .alert(a, "wazuh", wazuh_alert("w-1", "203.0.113.9"))
        .await;
    let spec = json!({
        "name": "preview-me",
        "triggers": [{"on": "manual"}],
        "actions": [
            {"ref": "tag", "action": "alert.update", "args": {"tags": ["auto-triaged", "{{ input.label }}"]}},
            {"ref": "note", "action": "alert.comment", "depends_on": ["tag"],
             "args": {"text": "triaged by {{ playbook.name }} for {{ alert.source_ip }}"}},
            {"ref": "echo", "action": "alert.comment", "depends_on": ["note"],
             "args": {"text": "comment {{ actions.note.result.comment_id }}"}},
            {"ref": "low_only", "action": "alert.comment", "run_if": "alert.severity == 'low'",
             "args": {"text": "low"}},
            {"ref": "each", "action": "observable.tag", "for_each": "[alert.source_ip, '198.51.100.1']",
             "args": {"value": "{{ item }}", "tags": ["seen"]}},
            {"ref": "broken", "action": "alert.comment",
             "args": {"text": "{{ range(1000000) | list | length }}"}}
        ]
    });
    let id = create_json(&app, &admin, spec).await;
    let runs_before = run_count(&app).await;
    let jobs_before = app.store.job_counts().await.expect("jobs");
    let r = start_run(
        &app,
        &admin,
        &id,
        json!({"alert_id": alert, "input": {"label": "night-shift"}, "dry_run": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        run_count(&app).await,
        runs_before,
        "a dry run creates no run"
    );
    assert_eq!(app.store.job_counts().await.expect("jobs"), jobs_before);
    assert_eq!(r.body["dry_run"], true);
    assert_eq!(r.body["tenant_id"], json!(a));
    let action = |rf: &str| {
        r.body["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .find(|x| x["ref"] == rf)
            .unwrap_or_else(|| panic!("{rf} in {}", r.body))
            .clone()
    };
    assert_eq!(action("tag")["decision"], "run");
    assert_eq!(
        action("tag")["units"][0]["args"]["tags"],
        json!(["auto-triaged", "night-shift"])
    );
    assert_eq!(
        action("note")["units"][0]["args"]["text"],
        "triaged by preview-me for 203.0.113.9"
    );
    let echo = action("echo");
    assert_eq!(echo["decision"], "run");
    assert!(
        echo["units"][0]["unknown"]["text"]
            .as_str()
            .is_some_and(|m| m.contains("actions.note")),
        "{echo}"
    );
    let low = action("low_only");
    assert_eq!(low["decision"], "skip");
    assert_eq!(low["run_if"]["value"], false);
    let each = action("each");
    assert_eq!(
        each["for_each"]["value"],
        json!(["203.0.113.9", "198.51.100.1"])
    );
    assert_eq!(each["units"][1]["args"]["value"], "198.51.100.1");
    let broken = action("broken");
    assert_eq!(broken["decision"], "error");
    assert!(broken["units"][0]["errors"]["text"].is_string(), "{broken}");
    // The order is the execution order.
    let refs: Vec<&str> = r.body["actions"]
        .as_array()
        .expect("a")
        .iter()
        .filter_map(|x| x["ref"].as_str())
        .collect();
    let pos = |x: &str| refs.iter().position(|r| *r == x).expect("ref");
    assert!(pos("tag") < pos("note") && pos("note") < pos("echo"));
    // Without an alert, alert fields are empty rather than an error.
    let r = start_run(&app, &admin, &id, json!({"dry_run": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(run_count(&app).await, runs_before);
}

#[tokio::test]
async fn a_worker_executes_the_run_and_its_detail_shows_every_attempt() {
    let app = TestApp::new().await;
    let a = app.tenant("tenant-a").await;
    let (_, admin) = app.user("a-admin", Role::Admin, a).await;
    let id = id_of(&post_yaml(&app, &admin, "/api/v1/playbooks", EXAMPLE).await);
    let alert = app
        .alert(a, "wazuh", wazuh_alert("w-1", "203.0.113.9"))
        .await;
    let worker = Worker::start(&app);
    let r = start_run(&app, &admin, &id, json!({"alert_id": alert})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let run = id_of(&r);
    let done = wait_run(&app, &admin, &run, &["succeeded", "failed", "cancelled"]).await;
    worker.stop().await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let steps = done["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{done}");
    assert_eq!(steps[0]["ref"], "tag");
    assert_eq!(steps[0]["input"]["tags"], json!(["auto-triaged"]));
    assert_eq!(steps[1]["ref"], "note");
    assert_eq!(
        steps[1]["input"]["text"],
        "triaged by ssh-bruteforce-triage for 203.0.113.9"
    );
    for s in steps {
        assert_eq!(s["status"], "succeeded");
        assert_eq!(s["attempt"], 1);
        assert_eq!(s["worker"], "http-test-worker");
        assert!(s["duration_ms"].as_i64().is_some_and(|d| d >= 0));
        assert!(s["output"].is_object());
        assert!(s["error"].is_null());
    }
    // The worker did it: the alert is tagged and commented.
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/alerts/{alert}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(
        r.body["tags"].to_string().contains("auto-triaged"),
        "{}",
        r.body
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/runs/{run}/cancel"),
            Some(&admin),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT);
}

#[tokio::test]
async fn approvals_are_listed_and_decided_over_http_and_the_run_goes_on() {
    let app = TestApp::new().await;
    let a = app.tenant("tenant-a").await;
    let (_, admin) = app.user("a-admin", Role::Admin, a).await;
    let (_, alice) = app.user("alice", Role::Analyst, a).await;
    let (_, bob) = app.user("bob", Role::Analyst, a).await;
    let (_, viewer) = app.user("vera", Role::Viewer, a).await;
    let alert = app
        .alert(a, "generic", json!({"title": "ssh brute force"}))
        .await;
    let simple = create_json(&app, &admin, approval_spec("contain", json!({}))).await;
    let two = create_json(
        &app,
        &admin,
        approval_spec("contain-two", json!({"approvers": 2})),
    )
    .await;
    let admins = create_json(
        &app,
        &admin,
        approval_spec("admins-only", json!({"roles": ["admin"]})),
    )
    .await;
    let worker = Worker::start(&app);
    let started = |pb: String| {
        let (app, admin, alert) = (&app, admin.clone(), alert.clone());
        async move {
            let r = start_run(app, &admin, &pb, json!({"alert_id": alert})).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
            let run = id_of(&r);
            wait_run(app, &admin, &run, &["paused"]).await;
            let list = app
                .call(Method::GET, "/api/v1/approvals", Some(&admin), None)
                .await;
            assert_eq!(list.status, StatusCode::OK, "{}", list.body);
            let ap = list.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .find(|x| x["run_id"] == json!(run))
                .unwrap_or_else(|| panic!("approval of {run} in {}", list.body))
                .clone();
            (run, ap)
        }
    };
    let decide = |ap: &Value, verb: &str, token: &str, body: Option<Value>| {
        let url = format!(
            "/api/v1/approvals/{}/{verb}",
            ap["id"].as_str().expect("id")
        );
        let (app, token) = (&app, token.to_string());
        async move { app.call(Method::POST, &url, Some(&token), body).await }
    };

    // Approved → the run finishes.
    let (run, ap) = started(simple.clone()).await;
    assert_eq!(ap["status"], "pending");
    assert_eq!(ap["message"], "contain ssh brute force?");
    assert_eq!(ap["step_ref"], "ask");
    let r = app
        .call(Method::GET, "/api/v1/approvals", Some(&viewer), None)
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = decide(&ap, "approve", &viewer, None).await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = decide(&ap, "approve", &alice, Some(json!({"comment": "go ahead"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "approved");
    assert_eq!(r.body["decisions"][0]["username"], "alice");
    assert_eq!(r.body["decisions"][0]["comment"], "go ahead");
    let done = wait_run(&app, &admin, &run, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        done["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .any(|s| s["ref"] == "tag")
    );
    let r = decide(&ap, "reject", &bob, None).await;
    assert_problem(&r, StatusCode::CONFLICT);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/approvals/{}", ap["id"].as_str().expect("id")),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "approved");
    // The alert's timeline shows the approval with its outcome.
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/alerts/{alert}/activities"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let approvals: Vec<&Value> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "approval" && i["id"] == ap["id"])
        .collect();
    assert_eq!(approvals.len(), 1, "{}", r.body);
    assert_eq!(approvals[0]["new_value"], "approved");
    assert_eq!(approvals[0]["old_value"], "contain ssh brute force?");

    // Rejected → the run fails.
    let (run, ap) = started(simple.clone()).await;
    let r = decide(&ap, "reject", &bob, Some(json!({"comment": "not now"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "rejected");
    let done = wait_run(&app, &admin, &run, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["ref"] != "tag")
    );

    // Two approvers: the same person twice is refused, a second one approves.
    let (run, ap) = started(two).await;
    let r = decide(&ap, "approve", &alice, None).await;
    assert_eq!(r.body["status"], "pending", "{}", r.body);
    let r = decide(&ap, "approve", &alice, None).await;
    assert_problem(&r, StatusCode::CONFLICT);
    let r = decide(&ap, "approve", &bob, None).await;
    assert_eq!(r.body["status"], "approved", "{}", r.body);
    wait_run(&app, &admin, &run, &["succeeded"]).await;

    // A step limited to admins: an analyst may not decide it.
    let (run, ap) = started(admins).await;
    let r = decide(&ap, "approve", &alice, None).await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = decide(
        &ap,
        "approve",
        &admin,
        Some(json!({"comment": "x".repeat(2001)})),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "comment");
    let r = decide(&ap, "approve", &admin, Some(json!({"verdict": "yes"}))).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    // Cancelling the run cancels its pending approval.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/runs/{run}/cancel"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    worker.stop().await;

    let list = |q: &'static str| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.call(
                Method::GET,
                &format!("/api/v1/approvals{q}"),
                Some(&admin),
                None,
            )
            .await
        }
    };
    assert_eq!(list("").await.body["items"], json!([]), "nothing pending");
    assert_eq!(
        list("?status=all").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    assert_eq!(
        list("?status=rejected").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        list("?status=cancelled").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let r = list("?status=maybe").await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "status");
}

#[tokio::test]
async fn another_tenant_cannot_see_run_cancel_or_decide() {
    let app = TestApp::new().await;
    let a = app.tenant("tenant-a").await;
    let b = app.tenant("tenant-b").await;
    let (_, a_admin) = app.user("a-admin", Role::Admin, a).await;
    let (_, b_admin) = app.user("b-admin", Role::Admin, b).await;
    let a_alert = app.alert(a, "generic", json!({"title": "a's alert"})).await;
    let pb = create_json(&app, &a_admin, approval_spec("a-secret", json!({}))).await;
    let b_pb = create_json(&app, &b_admin, approval_spec("b-own", json!({}))).await;
    let worker = Worker::start(&app);
    let r = start_run(&app, &a_admin, &pb, json!({"alert_id": a_alert})).await;
    let run = id_of(&r);
    wait_run(&app, &a_admin, &run, &["paused"]).await;
    worker.stop().await;
    let ap = app
        .store
        .approval_for_step(run.parse().expect("uuid"), "ask", None)
        .await
        .expect("approval")
        .expect("requested")
        .id;

    let b_call = |method: Method, path: String, body: Option<Value>| {
        let (app, token) = (&app, b_admin.clone());
        async move { app.call(method, &path, Some(&token), body).await }
    };
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/playbooks/{pb}"), None),
        (
            Method::POST,
            format!("/api/v1/playbooks/{pb}/run"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/playbooks/{pb}/run"),
            Some(json!({"dry_run": true})),
        ),
        (
            Method::POST,
            format!("/api/v1/playbooks/{pb}/disable"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/playbooks/{pb}"), None),
        (Method::GET, format!("/api/v1/runs/{run}"), None),
        (Method::POST, format!("/api/v1/runs/{run}/cancel"), None),
        (Method::GET, format!("/api/v1/approvals/{ap}"), None),
        (
            Method::POST,
            format!("/api/v1/approvals/{ap}/approve"),
            None,
        ),
        (Method::POST, format!("/api/v1/approvals/{ap}/reject"), None),
        // B's own playbook on A's alert: the alert does not exist for B.
        (
            Method::POST,
            format!("/api/v1/playbooks/{b_pb}/run"),
            Some(json!({"alert_id": a_alert})),
        ),
        (
            Method::POST,
            format!("/api/v1/playbooks/{b_pb}/run"),
            Some(json!({"alert_id": a_alert, "dry_run": true})),
        ),
    ] {
        let r = b_call(method.clone(), path.clone(), body).await;
        assert_problem(&r, StatusCode::NOT_FOUND);
        assert!(
            !r.body.to_string().contains("a-secret"),
            "{method} {path}: {}",
            r.body
        );
    }
    let r = send(
        &app,
        Method::PUT,
        &format!("/api/v1/playbooks/{pb}?version=1"),
        &b_admin,
        "application/json",
        approval_spec("a-secret", json!({})).to_string(),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    for path in [
        "/api/v1/playbooks",
        "/api/v1/runs",
        "/api/v1/approvals?status=all",
    ] {
        let r = b_call(Method::GET, path.into(), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            !r.body.to_string().contains("a-secret"),
            "{path}: {}",
            r.body
        );
    }
    // Nothing of A's changed.
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/runs/{run}"),
            Some(&a_admin),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "paused");
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/approvals/{ap}"),
            Some(&a_admin),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["decisions"], json!([]));
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/playbooks/{pb}"),
            Some(&a_admin),
            None,
        )
        .await;
    assert_eq!(r.body["enabled"], true);
    assert_eq!(run_count(&app).await, 1);
}
