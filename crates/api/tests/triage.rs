//! Changing alerts over HTTP: the lifecycle, claim, bulk actions, soft delete, comments with
//! mentions, the activity timeline and tag-based access. Real store, real router.

mod common;

use common::*;

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> Resp {
    app.call(
        Method::PATCH,
        &format!("/api/v1/alerts/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn get(app: &TestApp, token: &str, path: &str) -> Resp {
    app.call(Method::GET, path, Some(token), None).await
}

fn kinds(r: &Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {}", r.body))
        .iter()
        .map(|a| a["kind"].as_str().expect("kind").to_string())
        .collect()
}

fn generic(title: &str, source_id: &str, tags: &[&str]) -> Value {
    json!({"title": title, "severity": "medium", "source_id": source_id, "tags": tags})
}

#[tokio::test]
async fn the_lifecycle_is_enforced_and_every_change_lands_in_the_timeline() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (ana, token) = app.user("ana", Role::Analyst, acme).await;
    let id = app
        .alert(acme, "generic", generic("Beacon", "l-1", &[]))
        .await;

    // Closing without a determination names the missing field.
    let r = patch(&app, &token, &id, json!({"status": "resolved"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "determination", "{}", r.body);

    // A reason that contradicts the determination is refused with the ones that fit.
    let r = patch(
        &app,
        &token,
        &id,
        json!({"status": "resolved", "determination": "malicious", "resolve_reason": "expected_activity"}),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "resolve_reason");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("true_positive"),
        "{}",
        r.body
    );

    let r = patch(
        &app,
        &token,
        &id,
        json!({"status": "resolved", "determination": "malicious", "resolve_reason": "true_positive",
               "severity": "critical", "add_tags": ["c2"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "resolved");
    assert_eq!(r.body["determination"], "malicious");
    assert_eq!(r.body["severity"], "critical");
    assert_eq!(r.body["tags"], json!(["c2"]));
    assert!(r.body["closed_at"].is_string() && r.body["acknowledged_at"].is_string());

    // Resolved can only be reopened; the error names what is allowed.
    let r = patch(&app, &token, &id, json!({"status": "triaged"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "status");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("allowed: in_progress"),
        "{}",
        r.body
    );
    // Reopening clears the classification and closed_at.
    let r = patch(&app, &token, &id, json!({"status": "in_progress"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["determination"].is_null() && r.body["closed_at"].is_null());

    // A change to the same values writes nothing.
    let r = patch(&app, &token, &id, json!({"severity": "critical"})).await;
    assert_eq!(r.status, StatusCode::OK);

    let r = get(&app, &token, &format!("/api/v1/alerts/{id}/activities")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        kinds(&r),
        vec![
            "created",
            "status",
            "determination",
            "resolve_reason",
            "severity",
            "tags",
            "status",
            "determination",
            "resolve_reason",
        ]
    );
    let status = &r.body["items"][1];
    assert_eq!(status["old_value"], "new");
    assert_eq!(status["new_value"], "resolved");
    assert_eq!(status["actor_name"], "ana");
    assert_eq!(status["actor_id"], ana.id.to_string());

    // Pages follow the cursor.
    let r = get(
        &app,
        &token,
        &format!("/api/v1/alerts/{id}/activities?limit=4"),
    )
    .await;
    assert_eq!(kinds(&r).len(), 4);
    let cursor = r.body["next_cursor"].as_str().expect("cursor").to_string();
    let r = get(
        &app,
        &token,
        &format!("/api/v1/alerts/{id}/activities?limit=4&cursor={cursor}"),
    )
    .await;
    assert_eq!(
        kinds(&r),
        vec!["severity", "tags", "status", "determination"]
    );

    // The audit trail has the resolution and the updates.
    let r = app
        .admin(
            Method::GET,
            "/api/v1/audit/events?target_kind=alert&limit=50",
        )
        .await;
    let events: Vec<String> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            e["record"]["event_type"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    assert!(
        events.iter().any(|e| e == "decision.alert.resolved"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "decision.alert.updated"),
        "{events:?}"
    );
}

#[tokio::test]
async fn bad_patches_name_the_field() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (_, token) = app.user("ana", Role::Analyst, acme).await;
    let id = app
        .alert(acme, "generic", generic("Beacon", "b-1", &[]))
        .await;
    for (body, field) in [
        (json!({}), "body"),
        (json!({"status": "done"}), "status"),
        (json!({"severity": "urgent"}), "severity"),
        (json!({"determination": "malicious"}), "determination"),
        (json!({"tags": ["ok", ""]}), "tags"),
        (json!({"tags": ["a"], "add_tags": ["b"]}), "tags"),
        (json!({"assignee_id": "not-a-uuid"}), "assignee_id"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let r = patch(&app, &token, &id, body.clone()).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], field, "{body}: {}", r.body);
    }
    // NUL characters and unstorable dates are refused before they reach the database.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/comments"),
            Some(&token),
            Some(json!({"body": "a\u{0}b"})),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "body");
    for (query, field) in [
        ("q=a%00b", "q"),
        ("since=-5000-01-01T00:00:00Z", "since"),
        ("until=+10000-01-01T00:00:00Z", "until"),
    ] {
        let r = get(&app, &token, &format!("/api/v1/alerts?{query}")).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], field, "{query}: {}", r.body);
    }
    let r = patch(
        &app,
        &token,
        "0190b6a0-0000-7000-8000-000000000000",
        json!({"severity": "low"}),
    )
    .await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    // Nothing was written by the refused requests.
    let r = get(&app, &token, &format!("/api/v1/alerts/{id}/activities")).await;
    assert_eq!(kinds(&r), vec!["created"]);
}

#[tokio::test]
async fn assignment_and_claims_respect_tenants_and_holders() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (ana, ana_token) = app.user("ana", Role::Analyst, acme).await;
    let (bob, bob_token) = app.user("bob", Role::Analyst, acme).await;
    let (outsider, _) = app.user("gus", Role::Analyst, globex).await;
    let (key, _) = app.key(&["write"], acme).await;
    let id = app
        .alert(acme, "generic", generic("Beacon", "c-1", &[]))
        .await;

    // An analyst who cannot see the tenant cannot be assigned.
    let r = patch(
        &app,
        &ana_token,
        &id,
        json!({"assignee_id": outsider.id.to_string()}),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "assignee_id");

    let claim = |token: String, force: bool| {
        let app = &app;
        let id = id.clone();
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/alerts/{id}/claim?force={force}"),
                Some(&token),
                None,
            )
            .await
        }
    };
    // Two analysts claim at once: exactly one gets it.
    let results = join_all(vec![
        Box::pin(claim(ana_token.clone(), false))
            as std::pin::Pin<Box<dyn std::future::Future<Output = Resp> + Send>>,
        Box::pin(claim(bob_token.clone(), false)),
    ])
    .await;
    let won: Vec<_> = results
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    let lost: Vec<_> = results
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .collect();
    let statuses: Vec<_> = results
        .iter()
        .map(|r| (r.status, r.body.to_string()))
        .collect();
    assert_eq!((won.len(), lost.len()), (1, 1), "{statuses:?}");
    assert_eq!(won[0].body["status"], "in_progress");
    let holder = won[0].body["assignee_id"]
        .as_str()
        .expect("assignee")
        .to_string();
    assert!(holder == ana.id.to_string() || holder == bob.id.to_string());

    // Forcing takes it over; API keys cannot claim.
    let (taker, taker_id) = if holder == ana.id.to_string() {
        (bob_token.clone(), bob.id.to_string())
    } else {
        (ana_token.clone(), ana.id.to_string())
    };
    let r = claim(taker, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["assignee_id"], taker_id);
    let r = app
        .raw(
            Request::builder()
                .method(Method::POST)
                .uri(format!("/api/v1/alerts/{id}/claim"))
                .header("x-api-key", &key)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN);

    // Unassign with null; a closed alert cannot be claimed.
    let r = patch(&app, &ana_token, &id, json!({"assignee_id": null})).await;
    assert!(r.body["assignee_id"].is_null(), "{}", r.body);
    let r = patch(
        &app,
        &ana_token,
        &id,
        json!({"status": "false_positive", "determination": "benign",
               "resolve_reason": "false_positive_rule_tuning_needed"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = claim(ana_token.clone(), false).await;
    assert_problem(&r, StatusCode::CONFLICT);
}

#[tokio::test]
async fn bulk_actions_run_in_one_request_with_a_result_per_alert() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (ana, token) = app.user("ana", Role::Analyst, acme).await;
    let a = app.alert(acme, "generic", generic("A", "k-1", &[])).await;
    let b = app.alert(acme, "generic", generic("B", "k-2", &[])).await;
    let closed = app.alert(acme, "generic", generic("C", "k-3", &[])).await;
    let foreign = app.alert(globex, "generic", generic("G", "k-4", &[])).await;
    let r = patch(
        &app,
        &token,
        &closed,
        json!({"status": "resolved", "determination": "benign", "resolve_reason": "expected_activity"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let r = app
        .call(
            Method::POST,
            "/api/v1/alerts/bulk",
            Some(&token),
            Some(json!({
                "alert_ids": [a, b, closed, foreign],
                "set": {"status": "escalated", "assignee_id": ana.id.to_string(), "add_tags": ["wave-1"]}
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["updated"], 2);
    let outcomes: Vec<&str> = r.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, vec!["updated", "updated", "invalid", "not_found"]);
    assert_eq!(r.body["results"][2]["field"], "status");
    for id in [&a, &b] {
        let r = get(&app, &token, &format!("/api/v1/alerts/{id}")).await;
        assert_eq!(r.body["status"], "escalated");
        assert_eq!(r.body["tags"], json!(["wave-1"]));
    }

    // Link to an incident of the tenant: recorded on both sides.
    let incident = uuid::Uuid::now_v7();
    bulwark_store::testing::exec_raw(
        &app._db.url,
        &format!(
            "INSERT INTO incidents (id, tenant_id, number, title, severity, status, created_at, updated_at) \
             VALUES ({}, {}, 1, 'Wave', 'high', 'open', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            sql_uuid(&app, incident),
            sql_uuid(&app, acme.0)
        ),
    )
    .await
    .expect("incident");
    let r = app
        .call(
            Method::POST,
            "/api/v1/alerts/bulk",
            Some(&token),
            Some(json!({"alert_ids": [a, foreign], "link_incident": incident.to_string()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["results"][0]["outcome"], "updated");
    assert_eq!(r.body["results"][1]["outcome"], "not_found");
    let r = get(&app, &token, &format!("/api/v1/alerts/{a}")).await;
    assert_eq!(r.body["incidents"][0]["id"], incident.to_string());
    let r = get(&app, &token, &format!("/api/v1/alerts/{a}/activities")).await;
    assert!(kinds(&r).contains(&"incident_linked".to_string()));

    for body in [
        json!({"alert_ids": [], "set": {"severity": "low"}}),
        json!({"alert_ids": [a], "set": {"severity": "low"}, "link_incident": incident.to_string()}),
        json!({"alert_ids": [a]}),
    ] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/alerts/bulk",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/alerts/bulk",
            Some(&token),
            Some(json!({"alert_ids": [a], "link_incident": uuid::Uuid::now_v7().to_string()})),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "link_incident");
}

/// A UUID literal for raw SQL on either backend.
fn sql_uuid(app: &TestApp, id: uuid::Uuid) -> String {
    if app._db.url.starts_with("postgres") {
        format!("'{id}'")
    } else {
        format!("X'{}'", id.simple())
    }
}

#[tokio::test]
async fn only_admins_soft_delete_and_the_alert_disappears() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (_, analyst) = app.user("ana", Role::Analyst, acme).await;
    let id = app
        .alert(acme, "generic", generic("Noise", "d-1", &[]))
        .await;
    let path = format!("/api/v1/alerts/{id}");
    let r = app.call(Method::DELETE, &path, Some(&analyst), None).await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = app.admin(Method::DELETE, &path).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_problem(&app.admin(Method::GET, &path).await, StatusCode::NOT_FOUND);
    assert_problem(
        &app.admin(Method::DELETE, &path).await,
        StatusCode::NOT_FOUND,
    );
    let r = app.admin(Method::GET, "/api/v1/alerts").await;
    assert_eq!(r.body["items"], json!([]));
    let r = app
        .admin(Method::GET, "/api/v1/audit/events?target_kind=alert")
        .await;
    assert!(r.body.to_string().contains("alert.deleted"), "{}", r.body);
}

#[tokio::test]
async fn comments_resolve_mentions_within_the_tenant_and_only_authors_edit() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (_, ana) = app.user("ana", Role::Analyst, acme).await;
    let (bob, bob_token) = app.user("bob", Role::Analyst, acme).await;
    app.user("gus", Role::Analyst, globex).await;
    let id = app
        .alert(acme, "generic", generic("Beacon", "m-1", &[]))
        .await;
    let path = format!("/api/v1/alerts/{id}/comments");
    let r = app
        .call(
            Method::POST,
            &path,
            Some(&ana),
            Some(json!({"body": "@bob can you look? not @gus, nor @nobody; mail ana@example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["mentions"], json!([bob.id.to_string()]));
    assert_eq!(r.body["author_name"], "ana");
    let comment = r.body["id"].as_str().expect("id").to_string();

    let edit = format!("{path}/{comment}");
    let r = app
        .call(
            Method::PATCH,
            &edit,
            Some(&bob_token),
            Some(json!({"body": "hijacked"})),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::PATCH,
            &edit,
            Some(&ana),
            Some(json!({"body": "edited, thanks @bob"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["edited_at"].is_string());

    for body in [json!({"body": "   "}), json!({"body": "x".repeat(10_001)})] {
        let r = app.call(Method::POST, &path, Some(&ana), Some(body)).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], "body");
    }
    let r = get(&app, &bob_token, &path).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    assert_eq!(r.body[0]["body"], "edited, thanks @bob");
    let r = get(&app, &ana, &format!("/api/v1/alerts/{id}/activities")).await;
    assert_eq!(kinds(&r), vec!["created", "comment", "comment_edited"]);
}

#[tokio::test]
async fn tag_based_access_is_enforced_in_every_alert_query() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (tier1, t1) = app.user("tier1", Role::Analyst, acme).await;
    let (_, viewer) = app.user("vera", Role::Viewer, acme).await;
    let (_, tenant_admin) = app.user("boss", Role::Admin, acme).await;
    let soc = app
        .alert(acme, "generic", generic("SOC alert", "t-1", &["soc"]))
        .await;
    let hr = app
        .alert(acme, "generic", generic("HR alert", "t-2", &["hr"]))
        .await;
    let untagged = app
        .alert(acme, "generic", generic("Plain", "t-3", &[]))
        .await;
    let setting = format!("/api/v1/tenants/{}/tag-access", acme);

    let r = app
        .call(
            Method::PUT,
            &setting,
            Some(&tenant_admin),
            Some(json!({
                "enabled": true, "untagged": "admin_only", "default_tag": null,
                "rules": [{"subject": format!("user:{}", tier1.id), "tag": "soc"},
                          {"subject": "role:viewer", "tag": "hr"}]
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["rules"].as_array().map(Vec::len), Some(2));

    let titles = |r: &Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.body))
            .iter()
            .map(|a| a["title"].as_str().expect("title").to_string())
            .collect()
    };
    assert_eq!(
        titles(&get(&app, &t1, "/api/v1/alerts").await),
        vec!["SOC alert"]
    );
    assert_eq!(
        titles(&get(&app, &viewer, "/api/v1/alerts").await),
        vec!["HR alert"]
    );
    assert_eq!(
        titles(&get(&app, &tenant_admin, "/api/v1/alerts").await).len(),
        3
    );
    // Single reads, changes, comments, activities and bulk all answer as if it did not exist.
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/alerts/{hr}"), None),
        (Method::GET, format!("/api/v1/alerts/{untagged}"), None),
        (
            Method::PATCH,
            format!("/api/v1/alerts/{hr}"),
            Some(json!({"severity": "low"})),
        ),
        (Method::POST, format!("/api/v1/alerts/{hr}/claim"), None),
        (Method::GET, format!("/api/v1/alerts/{hr}/activities"), None),
        (Method::GET, format!("/api/v1/alerts/{hr}/comments"), None),
        (
            Method::POST,
            format!("/api/v1/alerts/{hr}/comments"),
            Some(json!({"body": "peek"})),
        ),
    ] {
        let r = app.call(method.clone(), &path, Some(&t1), body).await;
        assert_problem(&r, StatusCode::NOT_FOUND);
        assert!(!r.body.to_string().contains("HR alert"), "{method} {path}");
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/alerts/bulk",
            Some(&t1),
            Some(json!({"alert_ids": [soc, hr], "set": {"severity": "low"}})),
        )
        .await;
    assert_eq!(r.body["results"][0]["outcome"], "updated", "{}", r.body);
    assert_eq!(r.body["results"][1]["outcome"], "not_found");
    let r = get(&app, &tenant_admin, &format!("/api/v1/alerts/{hr}")).await;
    assert_eq!(
        r.body["severity"], "medium",
        "the hidden alert was not changed"
    );

    // Tagging an alert out of one's own reach is refused (it would vanish mid-triage).
    let r = patch(&app, &t1, &soc, json!({"tags": ["hr"]})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "tags");
    let r = patch(&app, &t1, &soc, json!({"add_tags": ["hr"]})).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "keeping an allowed tag is fine: {}",
        r.body
    );
    assert_eq!(
        titles(&get(&app, &t1, "/api/v1/alerts").await),
        vec!["SOC alert"]
    );

    // default_tag: untagged alerts count as carrying it.
    let r = app
        .call(
            Method::PUT,
            &setting,
            Some(&tenant_admin),
            Some(json!({
                "enabled": true, "untagged": "default_tag", "default_tag": "hr",
                "rules": [{"subject": "role:viewer", "tag": "hr"}]
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut seen = titles(&get(&app, &viewer, "/api/v1/alerts").await);
    seen.sort();
    assert_eq!(seen, vec!["HR alert", "Plain", "SOC alert"]);

    // A setting this version does not know hides everything from non-admins.
    bulwark_store::testing::exec_raw(
        &app._db.url,
        "UPDATE tag_access_settings SET untagged = 'visible_to_some'",
    )
    .await
    .expect("tamper");
    assert_eq!(
        titles(&get(&app, &viewer, "/api/v1/alerts").await),
        Vec::<String>::new()
    );
    assert_eq!(
        titles(&get(&app, &tenant_admin, "/api/v1/alerts").await).len(),
        3
    );

    // Bad settings are refused, naming the field; analysts cannot change them.
    for (body, field) in [
        (
            json!({"enabled": true, "untagged": "default_tag", "default_tag": null, "rules": []}),
            "default_tag",
        ),
        (
            json!({"enabled": true, "untagged": "visible_to_all", "default_tag": null,
                   "rules": [{"subject": "group:x", "tag": "a"}]}),
            "rules",
        ),
        (
            json!({"enabled": true, "untagged": "sometimes", "default_tag": null, "rules": []}),
            "untagged",
        ),
    ] {
        let r = app
            .call(Method::PUT, &setting, Some(&tenant_admin), Some(body))
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], field, "{}", r.body);
    }
    let r = app.call(Method::GET, &setting, Some(&t1), None).await;
    assert_problem(&r, StatusCode::FORBIDDEN);
}
