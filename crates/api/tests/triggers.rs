//! Playbook triggers through the real API over a real database: alerts posted to the webhook
//! start the playbooks whose conditions match, with their runs and jobs written in the
//! transaction that stores the alert; duplicates start only `on_duplicate` playbooks; a tenant's
//! playbooks never fire for another tenant; disabling stops new runs at once; alert and incident
//! changes made through the API start `alert.updated` / `incident.*` playbooks.

mod common;

use bulwark_store::automation::{PlaybookWrite, RunFilter, RunRecord};
use common::*;
use uuid::Uuid;

fn ssh_triage() -> Value {
    json!({
        "name": "ssh-bruteforce-triage",
        "triggers": [{
            "on": "alert.created",
            "if": "alert.severity in [\"critical\", \"high\"] and \"ssh\" in alert.title | lower"
        }],
        "actions": [{"ref": "tag", "action": "alert.update", "args": {"tags": ["auto-triaged"]}}]
    })
}

/// Stores a playbook of `tenant` (None: global) the way the API does: validated first.
async fn playbook(app: &TestApp, tenant: Option<TenantId>, spec: Value) -> Uuid {
    let pb = bulwark_playbook::parse_json(&spec, &bulwark_playbook::Catalog::builtin())
        .expect("valid playbook");
    app.store
        .create_playbook(
            &ChangeCtx::system("test"),
            &Scope::AllTenants,
            tenant.unwrap_or(app.platform),
            PlaybookWrite {
                tenant_id: tenant,
                name: pb.name().to_owned(),
                description: None,
                enabled: true,
                priority: pb.priority(),
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

async fn runs(app: &TestApp, filter: RunFilter) -> Vec<RunRecord> {
    app.store
        .list_runs(
            &Scope::AllTenants,
            &RunFilter {
                limit: 500,
                ..filter
            },
        )
        .await
        .expect("runs")
}

async fn queued_jobs(app: &TestApp) -> i64 {
    app.store
        .job_counts()
        .await
        .expect("jobs")
        .into_iter()
        .filter(|(s, _)| s == "queued")
        .map(|(_, n)| n)
        .sum()
}

fn generic(title: &str, severity: &str, source_id: Option<&str>) -> String {
    let mut v = json!({"title": title, "severity": severity, "src_ip": "203.0.113.7"});
    if let Some(id) = source_id {
        v["source_id"] = json!(id);
    }
    v.to_string()
}

const HOOK: &str = "/api/v1/webhooks/alerts";

#[tokio::test]
async fn matching_alerts_start_runs_in_the_ingest_transaction() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (key, _) = app.key(&["webhooks:ingest"], acme).await;
    let pb = playbook(&app, Some(acme), ssh_triage()).await;

    // Matches: critical and "SSH" in the title (the condition lower-cases it).
    let r = post_raw(
        &app,
        HOOK,
        &key,
        "application/json",
        generic("SSH brute force", "critical", Some("a-1")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["playbooks_triggered"], 1);
    let alert: Uuid = r.body["alert_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let started = runs(
        &app,
        RunFilter {
            alert_id: Some(alert),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(started.len(), 1);
    let run = &started[0];
    assert_eq!(run.playbook_id, pb);
    assert_eq!(run.tenant_id, acme);
    assert_eq!(run.trigger, "alert.created");
    assert_eq!(run.status, "queued");
    assert_eq!(run.input["duplicate"], false);
    assert_eq!(queued_jobs(&app).await, 1, "the run has its job");

    // Does not match: low severity, or no ssh in the title.
    for body in [
        generic("SSH brute force", "low", Some("a-2")),
        generic("RDP brute force", "critical", Some("a-3")),
    ] {
        let r = post_raw(&app, HOOK, &key, "application/json", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["playbooks_triggered"], 0, "{}", r.body);
    }

    // A duplicate does not start the playbook again.
    let r = post_raw(
        &app,
        HOOK,
        &key,
        "application/json",
        generic("SSH brute force", "critical", Some("a-1")),
    )
    .await;
    assert_eq!(r.body["duplicate"], true);
    assert_eq!(r.body["playbooks_triggered"], 0);
    assert_eq!(runs(&app, RunFilter::default()).await.len(), 1);

    // An NDJSON batch: each matching line starts its own run, reported per line.
    let lines = [
        generic("ssh login burst", "high", Some("b-1")),
        generic("port scan", "high", Some("b-2")),
        generic("SSH key reuse", "critical", None),
    ]
    .join("\n");
    let r = post_raw(&app, HOOK, &key, "application/x-ndjson", lines).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let triggered: Vec<i64> = r.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|l| l["playbooks_triggered"].as_i64().expect("count"))
        .collect();
    assert_eq!(triggered, vec![1, 0, 1]);
    assert_eq!(runs(&app, RunFilter::default()).await.len(), 3);
    assert_eq!(queued_jobs(&app).await, 3);
}

#[tokio::test]
async fn duplicates_start_only_playbooks_that_ask_for_them() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (key, _) = app.key(&["webhooks:ingest"], acme).await;
    let mut spec = ssh_triage();
    spec["name"] = json!("count-repeats");
    spec["triggers"][0]["on_duplicate"] = json!(true);
    spec["triggers"][0]["if"] = json!("true");
    playbook(&app, Some(acme), spec).await;
    let body = generic("anything", "low", Some("d-1"));
    let first = post_raw(&app, HOOK, &key, "application/json", body.clone()).await;
    assert_eq!(first.body["playbooks_triggered"], 1);
    let again = post_raw(&app, HOOK, &key, "application/json", body).await;
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["playbooks_triggered"], 1);
    let all = runs(&app, RunFilter::default()).await;
    assert_eq!(all.len(), 2);
    let dup = all
        .iter()
        .find(|r| r.input["duplicate"] == true)
        .expect("duplicate run");
    assert_eq!(dup.input["duplicate_count"], 1);
}

#[tokio::test]
async fn playbooks_fire_only_for_their_tenant_and_globals_for_all() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (acme_key, _) = app.key(&["webhooks:ingest"], acme).await;
    let (globex_key, _) = app.key(&["webhooks:ingest"], globex).await;
    let own = playbook(&app, Some(acme), ssh_triage()).await;
    let mut global = ssh_triage();
    global["name"] = json!("global-ssh");
    let global = playbook(&app, None, global).await;

    let body = generic("ssh brute force", "critical", Some("t-1"));
    let r = post_raw(&app, HOOK, &acme_key, "application/json", body.clone()).await;
    assert_eq!(
        r.body["playbooks_triggered"], 2,
        "acme's own and the global one"
    );
    let r = post_raw(&app, HOOK, &globex_key, "application/json", body).await;
    assert_eq!(r.body["playbooks_triggered"], 1, "only the global one");
    let globex_runs = runs(
        &app,
        RunFilter {
            tenant_id: Some(globex),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(globex_runs.len(), 1);
    assert_eq!(globex_runs[0].playbook_id, global);
    assert_eq!(
        globex_runs[0].tenant_id, globex,
        "a global playbook runs in the alert's tenant"
    );
    let acme_runs = runs(
        &app,
        RunFilter {
            tenant_id: Some(acme),
            ..Default::default()
        },
    )
    .await;
    let mut ids: Vec<Uuid> = acme_runs.iter().map(|r| r.playbook_id).collect();
    ids.sort();
    let mut want = vec![own, global];
    want.sort();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn disabling_a_playbook_stops_new_runs_at_once() {
    let app = TestApp::new().await;
    let (key, _) = app.key(&["webhooks:ingest"], app.platform).await;
    let pb = playbook(&app, Some(app.platform), ssh_triage()).await;
    let r = post_raw(
        &app,
        HOOK,
        &key,
        "application/json",
        generic("ssh", "high", Some("x-1")),
    )
    .await;
    assert_eq!(r.body["playbooks_triggered"], 1);
    app.store
        .set_playbook_enabled(
            &ChangeCtx::system("test"),
            &Scope::AllTenants,
            app.platform,
            pb,
            false,
        )
        .await
        .expect("disable");
    let r = post_raw(
        &app,
        HOOK,
        &key,
        "application/json",
        generic("ssh", "high", Some("x-2")),
    )
    .await;
    assert_eq!(r.body["playbooks_triggered"], 0, "disabled: no new runs");
    app.store
        .set_playbook_enabled(
            &ChangeCtx::system("test"),
            &Scope::AllTenants,
            app.platform,
            pb,
            true,
        )
        .await
        .expect("enable");
    let r = post_raw(
        &app,
        HOOK,
        &key,
        "application/json",
        generic("ssh", "high", Some("x-3")),
    )
    .await;
    assert_eq!(r.body["playbooks_triggered"], 1);
}

#[tokio::test]
async fn a_condition_that_fails_to_evaluate_never_fails_ingestion() {
    let app = TestApp::new().await;
    let (key, _) = app.key(&["webhooks:ingest"], app.platform).await;
    let mut spec = ssh_triage();
    // "ssh" is not a number: an evaluation error, which validation cannot see.
    spec["triggers"][0]["if"] = json!("alert.title | int > 3");
    playbook(&app, Some(app.platform), spec).await;
    let r = post_raw(
        &app,
        HOOK,
        &key,
        "application/json",
        generic("ssh", "high", Some("e-1")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["playbooks_triggered"], 0);
}

#[tokio::test]
async fn alert_and_incident_changes_start_their_playbooks() {
    let app = TestApp::new().await;
    let t = app.platform;
    playbook(
        &app,
        Some(t),
        json!({
            "name": "on-escalation",
            "triggers": [{"on": "alert.updated", "if": "alert.status == \"escalated\""}],
            "actions": [{"ref": "note", "action": "alert.comment", "args": {"text": "escalated"}}]
        }),
    )
    .await;
    playbook(
        &app,
        Some(t),
        json!({
            "name": "on-critical-incident",
            "triggers": [
                {"on": "incident.created", "if": "incident.severity == \"critical\""},
                {"on": "incident.updated", "if": "incident.status == \"contained\""}
            ],
            "actions": [{"ref": "x", "action": "script", "args": {"source": "40 + 2"}}]
        }),
    )
    .await;
    let alert = app
        .alert(
            t,
            "generic",
            json!({"title": "ssh", "severity": "high", "source_id": "c-1"}),
        )
        .await;
    let alert_id: Uuid = alert.parse().expect("uuid");
    let token = app.admin_token.clone();

    // A change that does not match, then one that does.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/alerts/{alert}"),
            Some(&token),
            Some(json!({"severity": "critical"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        runs(
            &app,
            RunFilter {
                alert_id: Some(alert_id),
                ..Default::default()
            }
        )
        .await
        .is_empty()
    );
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/alerts/{alert}"),
            Some(&token),
            Some(json!({"status": "escalated"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let started = runs(
        &app,
        RunFilter {
            alert_id: Some(alert_id),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].trigger, "alert.updated");
    assert_eq!(started[0].requested_by.as_deref(), Some("admin"));

    // A PATCH that changes nothing starts nothing.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/alerts/{alert}"),
            Some(&token),
            Some(json!({"status": "escalated"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        runs(
            &app,
            RunFilter {
                alert_id: Some(alert_id),
                ..Default::default()
            }
        )
        .await
        .len(),
        1
    );

    let r = app
        .call(
            Method::POST,
            "/api/v1/incidents",
            Some(&token),
            Some(json!({"title": "minor", "severity": "low", "tenant_id": t})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .call(
            Method::POST,
            "/api/v1/incidents",
            Some(&token),
            Some(json!({"title": "major", "severity": "critical", "tenant_id": t})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let incident: Uuid = r.body["id"].as_str().expect("id").parse().expect("uuid");
    let started = runs(
        &app,
        RunFilter {
            incident_id: Some(incident),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].trigger, "incident.created");
    assert_eq!(
        runs(&app, RunFilter::default()).await.len(),
        2,
        "the low one started nothing"
    );

    // The worker runs it; the incident's timeline shows the run and its action attempt.
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(bulwark_engine::run_worker(
        app.store.clone(),
        bulwark_engine::EngineConfig {
            poll_interval: std::time::Duration::from_millis(20),
            ..Default::default()
        },
        rx,
    ));
    let timeline = format!("/api/v1/incidents/{incident}/timeline");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let items = loop {
        let r = app.admin(Method::GET, &timeline).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let items = r.body["items"].as_array().expect("items").clone();
        let run = items.iter().find(|i| i["kind"] == "playbook_run").cloned();
        if run
            .as_ref()
            .is_some_and(|r| r["detail"]["status"] == "succeeded")
        {
            break items;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not finish: {items:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let _ = stop.send(true);
    let _ = worker.await;
    let run = items
        .iter()
        .find(|i| i["kind"] == "playbook_run")
        .expect("run item");
    assert_eq!(run["detail"]["trigger"], "incident.created");
    assert_eq!(run["actor"]["name"], "on-critical-incident");
    let steps: Vec<&Value> = items
        .iter()
        .filter(|i| i["kind"] == "playbook_step")
        .collect();
    assert_eq!(steps.len(), 1, "{items:?}");
    assert_eq!(steps[0]["detail"]["step"], "x (script)");
    assert_eq!(steps[0]["detail"]["status"], "succeeded");
    // The kind filter knows the new kinds.
    let r = app
        .admin(Method::GET, &format!("{timeline}?kind=playbook_step"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"].as_array().expect("items").len(), 1);
}

#[tokio::test]
async fn conditions_see_the_alert_as_it_is_stored() {
    let app = TestApp::new().await;
    let payload = json!({"title": "ssh", "severity": "high", "source_id": "v-1", "src_ip": "203.0.113.9",
        "hostname": "web-1", "user": "root", "tags": ["a"], "rule_name": "r"});
    let n = bulwark_normalize::normalize(bulwark_normalize::Source::Generic, &payload)
        .expect("normalize");
    let view = bulwark_store::ingest::trigger_view(app.platform, &n, chrono::Utc::now());
    let id: Uuid = app
        .alert(app.platform, "generic", payload)
        .await
        .parse()
        .expect("uuid");
    let stored = app
        .store
        .get_alert(
            &bulwark_core::AlertAccess::unrestricted(Scope::AllTenants),
            id,
        )
        .await
        .expect("alert");
    let stored = serde_json::to_value(stored).expect("json");
    for (k, v) in view.as_object().expect("object") {
        if k == "first_seen" || k == "last_seen" {
            assert!(stored[k].is_string(), "{k}");
            continue;
        }
        assert_eq!(&stored[k], v, "field {k} differs from the stored alert");
    }
}

/// The issue's example, posted as YAML through the API, fires for a matching webhook alert on
/// a node that would otherwise check for playbook changes only once an hour, and the real
/// worker tags and annotates the alert.
#[tokio::test]
async fn a_playbook_posted_as_yaml_triages_the_next_matching_alert() {
    let app =
        TestApp::with_config(|c| c.playbook_refresh = std::time::Duration::from_secs(3600)).await;
    let (key, _) = app.key(&["webhooks:ingest"], app.platform).await;
    // The trigger set is loaded (empty) before the playbook exists.
    let r = post_raw(
        &app,
        HOOK,
        &key,
        "application/json",
        generic("ssh", "critical", Some("y-0")),
    )
    .await;
    assert_eq!(r.body["playbooks_triggered"], 0);
    let yaml = r#"name: ssh-bruteforce-triage
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
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/playbooks")
        .header("authorization", format!("Bearer {}", app.admin_token))
        .header("content-type", "application/yaml")
        .body(Body::from(yaml))
        .expect("request");
    let r = app.raw(req).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pb = r.body["id"].as_str().expect("id").to_string();

    let r = post_raw(
        &app,
        HOOK,
        &key,
        "application/json",
        generic("SSH brute force", "critical", Some("y-1")),
    )
    .await;
    assert_eq!(
        r.body["playbooks_triggered"], 1,
        "the change applies on this node at once"
    );
    let alert = r.body["alert_id"].as_str().expect("id").to_string();

    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(bulwark_engine::run_worker(
        app.store.clone(),
        bulwark_engine::EngineConfig {
            poll_interval: std::time::Duration::from_millis(20),
            ..Default::default()
        },
        rx,
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = app
            .admin(Method::GET, &format!("/api/v1/runs?alert_id={alert}"))
            .await;
        if r.body["items"][0]["status"] == "succeeded" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not finish: {}",
            r.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    let _ = worker.await;
    let r = app
        .admin(Method::GET, &format!("/api/v1/alerts/{alert}"))
        .await;
    assert!(
        r.body["tags"]
            .as_array()
            .expect("tags")
            .contains(&json!("auto-triaged")),
        "{}",
        r.body
    );
    let r = app
        .admin(Method::GET, &format!("/api/v1/alerts/{alert}/comments"))
        .await;
    let text = r.body.to_string();
    assert!(
        text.contains("triaged by ssh-bruteforce-triage for 203.0.113.7"),
        "{text}"
    );

    // The alert's timeline shows the run, each action attempt and what the actions changed.
    let r = app
        .admin(Method::GET, &format!("/api/v1/alerts/{alert}/activities"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().expect("items").clone();
    let of = |kind: &str| -> Vec<Value> {
        items
            .iter()
            .filter(|i| i["kind"] == kind)
            .cloned()
            .collect()
    };
    let run = of("playbook_run");
    assert_eq!(run.len(), 1, "{items:?}");
    assert_eq!(run[0]["new_value"], "succeeded");
    assert_eq!(run[0]["old_value"], "alert.created");
    assert_eq!(run[0]["actor_name"], "ssh-bruteforce-triage");
    let steps: Vec<String> = of("playbook_step")
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["old_value"].as_str().unwrap_or(""),
                s["new_value"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            "tag (alert.update) succeeded",
            "note (alert.comment) succeeded"
        ]
    );
    assert!(
        !of("tags").is_empty(),
        "the action's own change is on the timeline: {items:?}"
    );

    // Disabled through the API: the next matching alert starts nothing.
    let r = app
        .admin(Method::POST, &format!("/api/v1/playbooks/{pb}/disable"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = post_raw(
        &app,
        HOOK,
        &key,
        "application/json",
        generic("SSH brute force", "critical", Some("y-2")),
    )
    .await;
    assert_eq!(r.body["playbooks_triggered"], 0);
}
