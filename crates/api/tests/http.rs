//! The HTTP API in-process: the real router over a real store (SQLite, or PostgreSQL when
//! `BULWARK_TEST_DATABASE_URL` says so).

mod common;

use common::*;

#[tokio::test]
async fn every_route_denies_without_credentials_and_without_permission() {
    let app = TestApp::new().await;
    let mut tokens = vec![];
    for role in Role::ALL {
        let (_, t) = app
            .user(&format!("u-{}", role.as_str()), *role, app.platform)
            .await;
        tokens.push((*role, t));
    }
    let (ingest_key, _) = app.key(&["webhooks:ingest"], app.platform).await;
    let mut checked = 0;
    for (method, path, access) in route_table() {
        let url = concrete(path);
        let anon = app
            .call(method.clone(), &url, None, body_for(&method))
            .await;
        if access == Access::Public {
            assert_ne!(
                anon.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} is public"
            );
            continue;
        }
        assert_problem(&anon, StatusCode::UNAUTHORIZED);
        assert!(
            anon.headers.contains_key("www-authenticate"),
            "{method} {path}"
        );
        let bad = app
            .call(method.clone(), &url, Some("not-a-token"), body_for(&method))
            .await;
        assert_problem(&bad, StatusCode::UNAUTHORIZED);

        // An ingest-only key reaches the webhook routes and nothing else.
        let k = app
            .call(method.clone(), &url, Some(&ingest_key), body_for(&method))
            .await;
        if access == Access::Perm(bulwark_core::Permission::WebhooksIngest) {
            assert!(
                k.status != StatusCode::UNAUTHORIZED && k.status != StatusCode::FORBIDDEN,
                "{path}: {}",
                k.status
            );
        } else {
            assert_problem(&k, StatusCode::FORBIDDEN);
        }

        for (role, token) in &tokens {
            let allowed = match access {
                Access::Perm(p) => role.permissions().contains(p),
                Access::AnyAnalyst => true,
                Access::Public => true,
            };
            let r = app
                .call(method.clone(), &url, Some(token), body_for(&method))
                .await;
            if allowed {
                assert!(
                    r.status != StatusCode::UNAUTHORIZED && r.status != StatusCode::FORBIDDEN,
                    "{role} should reach {method} {path}, got {} {}",
                    r.status,
                    r.body
                );
            } else {
                assert_problem(&r, StatusCode::FORBIDDEN);
            }
        }
        checked += 1;
    }
    assert!(checked >= 12, "the walk covered {checked} protected routes");
}

#[tokio::test]
async fn another_tenants_records_answer_404_on_every_route_with_an_id() {
    let app = TestApp::new().await;
    let a = app.tenant("tenant-a").await;
    let b = app.tenant("tenant-b").await;
    // A tenant admin: full permissions, but only in tenant A.
    let (_, a_admin) = app.user("a-admin", Role::Admin, a).await;
    let (b_user, _) = app.user("b-secret-user", Role::Analyst, b).await;
    let (_, b_key) = app.key(&["read"], b).await;
    let (a_user, _) = app.user("a-user", Role::Analyst, a).await;
    let (_, a_key) = app.key(&["read"], a).await;
    let valid = json!({"title": "replayable", "source_id": "dl-1"}).to_string();
    let a_letter = app.dead_letter(a, "{broken").await;
    let a_replayable = app.dead_letter(a, &valid).await;
    let b_letter = app.dead_letter(b, &valid).await;
    let a_alert = app.alert(a, "generic", json!({"title": "a's alert"})).await;
    let b_alert = app
        .alert(b, "generic", json!({"title": "b-secret-user's alert"}))
        .await;
    let a_doomed = app.alert(a, "generic", json!({"title": "a's noise"})).await;
    let observable = |tenant: TenantId| {
        let body = json!({"kind": "domain", "value": "b-secret-user.example.com",
                          "description": "b-secret-user", "tenant_id": tenant});
        let app = &app;
        async move {
            let r = app
                .call(
                    Method::POST,
                    "/api/v1/observables",
                    Some(&app.admin_token),
                    Some(body),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().expect("id").to_string()
        }
    };
    let a_observable = observable(a).await;
    let b_observable = observable(b).await;

    // Incidents and their parts, in both tenants. Tenant A's are made by its admin (the
    // author of the comment it edits); each destructive route gets a record of its own.
    let mk_incident = |tenant: TenantId, token: String, alerts: Vec<String>| {
        let app = &app;
        async move {
            let r = app
                .call(
                    Method::POST,
                    "/api/v1/incidents",
                    Some(&token),
                    Some(json!({"title": "b-secret-user's incident", "tenant_id": tenant, "alert_ids": alerts})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().expect("id").to_string()
        }
    };
    let post_id = |path: String, token: String, body: Value| {
        let app = &app;
        async move {
            let r = app
                .call(Method::POST, &path, Some(&token), Some(body))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.body);
            r.body["id"].as_str().expect("id").to_string()
        }
    };
    let platform = app.admin_token.clone();
    let a_unlink = app
        .alert(
            a,
            "generic",
            json!({"title": "a unlink", "source_id": "a-u"}),
        )
        .await;
    let a_move = app
        .alert(a, "generic", json!({"title": "a move", "source_id": "a-m"}))
        .await;
    let a_inc = mk_incident(a, a_admin.clone(), vec![a_unlink.clone(), a_move.clone()]).await;
    let a_inc2 = mk_incident(a, a_admin.clone(), vec![]).await;
    let a_inc_del = mk_incident(a, a_admin.clone(), vec![]).await;
    let b_inc = mk_incident(b, platform.clone(), vec![b_alert.clone()]).await;
    let tasks = |i: &str| format!("/api/v1/incidents/{i}/tasks");
    let comments = |i: &str| format!("/api/v1/incidents/{i}/comments");
    let a_task = post_id(tasks(&a_inc), a_admin.clone(), json!({"title": "t"})).await;
    let a_task_del = post_id(tasks(&a_inc), a_admin.clone(), json!({"title": "t2"})).await;
    let b_task = post_id(
        tasks(&b_inc),
        platform.clone(),
        json!({"title": "b-secret-user"}),
    )
    .await;
    let a_comment = post_id(comments(&a_inc), a_admin.clone(), json!({"body": "mine"})).await;
    let b_comment = post_id(
        comments(&b_inc),
        platform.clone(),
        json!({"body": "b-secret-user"}),
    )
    .await;
    let alert_comments = |alert: &str| format!("/api/v1/alerts/{alert}/comments");
    let a_alert_comment = post_id(
        alert_comments(&a_alert),
        a_admin.clone(),
        json!({"body": "note"}),
    )
    .await;
    let b_alert_comment = post_id(
        alert_comments(&b_alert),
        platform.clone(),
        json!({"body": "b-secret-user"}),
    )
    .await;
    let tpl = |tenant: TenantId, name: &str| json!({"name": name, "severity": "low", "tenant_id": tenant});
    let a_tpl = post_id(
        "/api/v1/incident-templates".into(),
        a_admin.clone(),
        tpl(a, "a"),
    )
    .await;
    let a_tpl_del = post_id(
        "/api/v1/incident-templates".into(),
        a_admin.clone(),
        tpl(a, "a2"),
    )
    .await;
    let b_tpl = post_id(
        "/api/v1/incident-templates".into(),
        platform.clone(),
        tpl(b, "b-secret-user"),
    )
    .await;

    // Automation: playbooks (B's named so a leak would show), runs, and approvals requested
    // as the worker would (a run parked on an `approval` step).
    let playbook_spec = |name: &str| {
        json!({"name": name, "triggers": [{"on": "manual"}],
               "actions": [{"ref": "ask", "action": "approval", "args": {"message": "b-secret-user?"}}]})
    };
    let a_pb = post_id(
        "/api/v1/playbooks".into(),
        a_admin.clone(),
        playbook_spec("a-pb"),
    )
    .await;
    let a_pb_run = post_id(
        "/api/v1/playbooks".into(),
        a_admin.clone(),
        playbook_spec("a-pb-run"),
    )
    .await;
    let a_pb_del = post_id(
        "/api/v1/playbooks".into(),
        a_admin.clone(),
        playbook_spec("a-pb-del"),
    )
    .await;
    let b_pb = post_id(
        format!("/api/v1/playbooks?tenant_id={b}"),
        platform.clone(),
        playbook_spec("b-secret-user"),
    )
    .await;
    let run_with_approval = |tenant: TenantId, playbook: String| {
        let app = &app;
        async move {
            use bulwark_store::automation::{NewApproval, NewRun};
            let pb = app
                .store
                .get_playbook(&Scope::AllTenants, playbook.parse().expect("uuid"))
                .await
                .expect("playbook");
            let run = app
                .store
                .create_runs(&[NewRun {
                    tenant_id: tenant,
                    playbook_id: pb.id,
                    playbook_name: pb.name.clone(),
                    playbook_version: pb.version,
                    trigger: "manual".into(),
                    alert_id: None,
                    incident_id: None,
                    input: json!({}),
                    requested_by: None,
                    priority: 100,
                }])
                .await
                .expect("run")[0];
            let approval = app
                .store
                .request_approval(NewApproval {
                    tenant_id: tenant,
                    run_id: run,
                    step_ref: "ask".into(),
                    item_index: None,
                    playbook_name: pb.name,
                    message: "b-secret-user?".into(),
                    alert_id: None,
                    incident_id: None,
                    approvers_required: 1,
                    roles: vec![],
                    on_timeout: "fail".into(),
                    expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
                })
                .await
                .expect("approval");
            (run.to_string(), approval.id.to_string())
        }
    };
    let (a_run, _) = run_with_approval(a, a_pb.clone()).await;
    let (_, a_approve) = run_with_approval(a, a_pb.clone()).await;
    let (_, a_reject) = run_with_approval(a, a_pb.clone()).await;
    let (b_run, b_approval) = run_with_approval(b, b_pb.clone()).await;

    // Integrations (B's named and keyed so a leak would show).
    let integration = |tenant: TenantId, name: &str, token: String| {
        let body = json!({"type": "webhook", "name": name, "tenant_id": tenant,
                          "secrets": {"url": "https://hooks.example.com/b-secret-user"}});
        let app = &app;
        async move {
            let r = app
                .call(
                    Method::POST,
                    "/api/v1/integrations",
                    Some(&token),
                    Some(body),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().expect("id").to_string()
        }
    };
    let a_int = integration(a, "a-hook", a_admin.clone()).await;
    // An intel integration, so tenant A's observables can be enriched by hand.
    let r = app
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&a_admin),
            Some(
                json!({"type": "virustotal", "name": "a-vt", "enrichment": true,
                        "secrets": {"api_key": "a-vt-key"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let a_int_del = integration(a, "a-hook-del", a_admin.clone()).await;
    let b_int = integration(b, "b-secret-user", platform.clone()).await;

    // Notification rules (on a's and b's channels) and deliveries (a failed one of a's to retry).
    let rule = |tenant: TenantId, name: &str, channel: String| {
        let body = json!({"name": name, "event": "incident.created", "integration_id": channel, "tenant_id": tenant});
        let app = &app;
        let token = platform.clone();
        async move {
            let r = app
                .call(
                    Method::POST,
                    "/api/v1/notifications/rules",
                    Some(&token),
                    Some(body),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().expect("id").to_string()
        }
    };
    let a_rule = rule(a, "a-rule", a_int.clone()).await;
    let a_rule_del = rule(a, "a-rule-del", a_int.clone()).await;
    let b_rule = rule(b, "b-secret-user", b_int.clone()).await;
    let delivery = |rule: String, failed: bool| {
        let app = &app;
        async move {
            let d = app
                .store
                .create_test_delivery(
                    &Scope::AllTenants,
                    rule.parse().expect("uuid"),
                    json!({"note": "b-secret-user"}),
                )
                .await
                .expect("delivery");
            if failed {
                app.store
                    .record_delivery_attempt(
                        d.id,
                        &bulwark_store::notifications::AttemptOutcome::Failed {
                            title: None,
                            message: None,
                            error: "HTTP 500".into(),
                            retry_at: None,
                        },
                    )
                    .await
                    .expect("attempt");
            }
            d.id.to_string()
        }
    };
    let a_delivery = delivery(a_rule.clone(), true).await;
    let b_delivery = delivery(b_rule.clone(), true).await;

    // Every path parameter of a route, for the victim (tenant B) or the caller's own tenant.
    let fixtures = |method: &Method,
                    path: &str,
                    victim: bool|
     -> Option<Vec<(&'static str, String)>> {
        let analyst = if victim {
            b_user.id.to_string()
        } else {
            a_user.id.to_string()
        };
        let key = if victim { b_key.clone() } else { a_key.clone() };
        let tenant = if victim { b.to_string() } else { a.to_string() };
        let pick =
            |b_val: &String, a_val: &String| if victim { b_val.clone() } else { a_val.clone() };
        let id = |v: String| Some(vec![("{id}", v)]);
        match path {
            "/api/v1/auth/analysts/{id}" | "/api/v1/auth/analysts/{id}/reset-password" => {
                id(analyst)
            }
            "/api/v1/api-keys/{id}" => id(key),
            "/api/v1/tenants/{id}"
            | "/api/v1/tenants/{id}/tag-access"
            | "/api/v1/tenants/{id}/enrichment" => id(tenant),
            "/api/v1/ingest/dead-letters/{id}" if victim => id(b_letter.clone()),
            "/api/v1/ingest/dead-letters/{id}" => id(a_letter.clone()),
            "/api/v1/ingest/dead-letters/{id}/replay" if victim => id(b_letter.clone()),
            "/api/v1/ingest/dead-letters/{id}/replay" => id(a_replayable.clone()),
            "/api/v1/alerts/{id}" if *method == Method::DELETE => id(pick(&b_alert, &a_doomed)),
            "/api/v1/alerts/{id}"
            | "/api/v1/alerts/{id}/claim"
            | "/api/v1/alerts/{id}/comments"
            | "/api/v1/alerts/{id}/activities" => id(pick(&b_alert, &a_alert)),
            "/api/v1/alerts/{id}/comments/{comment_id}" => Some(vec![
                ("{id}", pick(&b_alert, &a_alert)),
                ("{comment_id}", pick(&b_alert_comment, &a_alert_comment)),
            ]),
            "/api/v1/observables/{id}" | "/api/v1/observables/{id}/enrich" => {
                id(pick(&b_observable, &a_observable))
            }
            "/api/v1/incidents/{id}" if *method == Method::DELETE => id(pick(&b_inc, &a_inc_del)),
            "/api/v1/incidents/{id}"
            | "/api/v1/incidents/{id}/alerts"
            | "/api/v1/incidents/{id}/timeline"
            | "/api/v1/incidents/{id}/comments"
            | "/api/v1/incidents/{id}/tasks" => id(pick(&b_inc, &a_inc)),
            "/api/v1/incidents/{id}/alerts/{alert_id}" => Some(vec![
                ("{id}", pick(&b_inc, &a_inc)),
                ("{alert_id}", pick(&b_alert, &a_unlink)),
            ]),
            "/api/v1/incidents/{id}/alerts/{alert_id}/move" => Some(vec![
                ("{id}", pick(&b_inc, &a_inc)),
                ("{alert_id}", pick(&b_alert, &a_move)),
            ]),
            "/api/v1/incidents/{id}/comments/{comment_id}" => Some(vec![
                ("{id}", pick(&b_inc, &a_inc)),
                ("{comment_id}", pick(&b_comment, &a_comment)),
            ]),
            "/api/v1/incidents/{id}/tasks/{task_id}" if *method == Method::DELETE => Some(vec![
                ("{id}", pick(&b_inc, &a_inc)),
                ("{task_id}", pick(&b_task, &a_task_del)),
            ]),
            "/api/v1/incidents/{id}/tasks/{task_id}" => Some(vec![
                ("{id}", pick(&b_inc, &a_inc)),
                ("{task_id}", pick(&b_task, &a_task)),
            ]),
            "/api/v1/incident-templates/{id}" if *method == Method::DELETE => {
                id(pick(&b_tpl, &a_tpl_del))
            }
            "/api/v1/incident-templates/{id}" => id(pick(&b_tpl, &a_tpl)),
            // PUT names the version it changes.
            "/api/v1/playbooks/{id}" if *method == Method::PUT => {
                id(format!("{}?version=1", pick(&b_pb, &a_pb)))
            }
            "/api/v1/playbooks/{id}" if *method == Method::DELETE => id(pick(&b_pb, &a_pb_del)),
            "/api/v1/playbooks/{id}/run" => id(pick(&b_pb, &a_pb_run)),
            "/api/v1/playbooks/{id}"
            | "/api/v1/playbooks/{id}/enable"
            | "/api/v1/playbooks/{id}/disable" => id(pick(&b_pb, &a_pb)),
            "/api/v1/runs/{id}" | "/api/v1/runs/{id}/cancel" => id(pick(&b_run, &a_run)),
            "/api/v1/approvals/{id}/reject" => id(pick(&b_approval, &a_reject)),
            "/api/v1/approvals/{id}" | "/api/v1/approvals/{id}/approve" => {
                id(pick(&b_approval, &a_approve))
            }
            "/api/v1/integrations/{id}" if *method == Method::DELETE => {
                id(pick(&b_int, &a_int_del))
            }
            "/api/v1/integrations/{id}" | "/api/v1/integrations/{id}/health" => {
                id(pick(&b_int, &a_int))
            }
            "/api/v1/notifications/rules/{id}" if *method == Method::DELETE => {
                id(pick(&b_rule, &a_rule_del))
            }
            "/api/v1/notifications/rules/{id}" | "/api/v1/notifications/rules/{id}/test" => {
                id(pick(&b_rule, &a_rule))
            }
            "/api/v1/notifications/deliveries/{id}"
            | "/api/v1/notifications/deliveries/{id}/retry" => id(pick(&b_delivery, &a_delivery)),
            _ => None,
        }
    };
    let fill = |path: &str, params: Vec<(&'static str, String)>| {
        params
            .into_iter()
            .fold(path.to_string(), |p, (name, v)| p.replace(name, &v))
    };
    let mut covered = 0;
    for (method, path, _) in route_table() {
        if !path.contains("{id}") {
            continue;
        }
        let victim = fixtures(&method, path, true)
            .unwrap_or_else(|| panic!("add a cross-tenant fixture for {method} {path}"));
        let body = match (method.as_str(), path) {
            (_, "/api/v1/auth/analysts/{id}") => {
                Some(json!({"display_name": "pwned", "role": "admin"}))
            }
            (_, "/api/v1/auth/analysts/{id}/reset-password") => {
                Some(json!({"new_password": "attacker-chosen-pw"}))
            }
            (_, "/api/v1/tenants/{id}/tag-access") => Some(json!({
                "enabled": true, "untagged": "visible_to_all", "default_tag": null, "rules": []
            })),
            (_, "/api/v1/tenants/{id}/enrichment") => Some(json!({
                "allow_list": ["10.0.0.0/8"], "cache_ttl_secs": 3600
            })),
            ("PATCH", "/api/v1/alerts/{id}") => Some(json!({"severity": "low"})),
            ("PATCH", "/api/v1/observables/{id}") => {
                Some(json!({"verdict": "benign", "description": "pwned"}))
            }
            ("POST", "/api/v1/alerts/{id}/comments")
            | (_, "/api/v1/alerts/{id}/comments/{comment_id}") => {
                Some(json!({"body": "b-secret-user was here"}))
            }
            ("PATCH", "/api/v1/incidents/{id}") => {
                Some(json!({"title": "pwned", "status": "closed"}))
            }
            ("POST", "/api/v1/incidents/{id}/alerts") => Some(json!({"alert_ids": [a_alert]})),
            (_, "/api/v1/incidents/{id}/alerts/{alert_id}/move") => {
                Some(json!({"to_incident_id": a_inc2}))
            }
            ("POST", "/api/v1/incidents/{id}/comments")
            | (_, "/api/v1/incidents/{id}/comments/{comment_id}") => Some(json!({"body": "pwned"})),
            ("POST", "/api/v1/incidents/{id}/tasks") => Some(json!({"title": "pwned"})),
            ("PATCH", "/api/v1/incidents/{id}/tasks/{task_id}") => Some(json!({"status": "done"})),
            ("PATCH", "/api/v1/incident-templates/{id}") => Some(json!({"description": "pwned"})),
            ("PUT", "/api/v1/playbooks/{id}") => Some(playbook_spec("a-pb")),
            (_, "/api/v1/playbooks/{id}/run") => Some(json!({})),
            ("PATCH", "/api/v1/integrations/{id}") => Some(json!({"enabled": false})),
            ("PATCH", "/api/v1/notifications/rules/{id}") => Some(json!({"enabled": false})),
            _ => None,
        };
        let url = fill(path, victim);
        let r = app
            .call(method.clone(), &url, Some(&a_admin), body.clone())
            .await;
        assert_problem(&r, StatusCode::NOT_FOUND);
        assert!(
            !r.body.to_string().contains("b-secret-user"),
            "no data leaks: {}",
            r.body
        );

        // The same call on the tenant admin's own tenant works, so the 404 above is scoping.
        let own = fill(path, fixtures(&method, path, false).expect("fixture"));
        let r = app.call(method.clone(), &own, Some(&a_admin), body).await;
        assert!(
            r.status.is_success(),
            "{method} {own}: {} {}",
            r.status,
            r.body
        );
        covered += 1;
    }
    assert_eq!(covered, 61);
    // Nothing of tenant B's incident changed.
    // Nothing of tenant B's automation or integrations changed.
    let b_int_after = app
        .store
        .get_integration(&Scope::AllTenants, b_int.parse().expect("uuid"))
        .await
        .expect("b's integration");
    assert!(b_int_after.enabled && b_int_after.health_status.is_none());
    let b_pb_after = app
        .store
        .get_playbook(&Scope::AllTenants, b_pb.parse().expect("uuid"))
        .await
        .expect("b's playbook");
    assert!(b_pb_after.enabled && b_pb_after.version == 1);
    let b_run_after = app
        .store
        .get_run(&Scope::AllTenants, b_run.parse().expect("uuid"))
        .await
        .expect("b's run");
    assert_eq!(b_run_after.status, "queued");
    let b_ap_after = app
        .store
        .get_approval(&Scope::AllTenants, b_approval.parse().expect("uuid"))
        .await
        .expect("b's approval");
    assert_eq!(b_ap_after.status, "pending");
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/incidents/{b_inc}"),
            Some(&platform),
            None,
        )
        .await;
    assert_eq!(r.body["title"], "b-secret-user's incident");
    assert_eq!(r.body["status"], "open");
    assert_eq!(r.body["alert_count"], 1);
    assert_eq!(r.body["tasks"][0]["status"], "open");
    let r = app
        .call(Method::GET, &comments(&b_inc), Some(&platform), None)
        .await;
    assert_eq!(r.body["items"][0]["body"], "b-secret-user");
    assert!(r.body["items"][0]["edited_at"].is_null());
    assert!(
        app.store
            .get_dead_letter(&Scope::AllTenants, b_letter.parse().expect("uuid"))
            .await
            .expect("b's dead letter")
            .replayed_at
            .is_none(),
        "tenant B's dead letter was not replayed"
    );

    // Nothing of tenant B changed.
    let b_obs = app
        .call(
            Method::GET,
            &format!("/api/v1/observables/{b_observable}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(b_obs.body["description"], "b-secret-user");
    let b_enrichment = app
        .store
        .get_enrichment_settings(&Scope::AllTenants, b)
        .await
        .expect("b's enrichment settings");
    assert!(
        b_enrichment.allow_list.is_empty(),
        "tenant B's settings did not change"
    );
    assert!(b_obs.body["verdict"].is_null(), "{}", b_obs.body);
    let b_after = app
        .store
        .get_analyst(&Scope::AllTenants, b_user.id)
        .await
        .expect("b user");
    assert_eq!(b_after.display_name, "b-secret-user");
    assert_eq!(b_after.role, Role::Analyst);
    // Lists only show the caller's tenant.
    let list = app
        .call(Method::GET, "/api/v1/auth/analysts", Some(&a_admin), None)
        .await;
    let names: Vec<_> = list
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x["username"].clone())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.as_str().is_some_and(|n| n.starts_with("a-"))),
        "{names:?}"
    );
    let keys = app
        .call(Method::GET, "/api/v1/api-keys", Some(&a_admin), None)
        .await;
    assert!(
        keys.body
            .as_array()
            .expect("array")
            .iter()
            .all(|k| k["tenant_id"] == json!(a))
    );
    // A tenant admin cannot create tenants, nor grant or target tenants outside their scope.
    let r = app
        .call(
            Method::POST,
            "/api/v1/tenants",
            Some(&a_admin),
            Some(json!({"slug": "evil", "name": "x"})),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/analysts",
            Some(&a_admin),
            Some(json!({"username": "sneaky", "role": "analyst", "tenant_ids": [b]})),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "tenant_ids");
    let r = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            Some(&a_admin),
            Some(json!({"name": "x", "scopes": ["read"], "tenant_id": b})),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "tenant_id");
}

#[tokio::test]
async fn login_issues_a_token_and_does_not_reveal_usernames() {
    let app = TestApp::new().await;
    let ok = app.login("ADMIN", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["token_type"], "bearer");
    assert_eq!(ok.body["expires_in"], 8 * 3600);
    assert_eq!(ok.body["analyst"]["username"], "admin");
    assert_eq!(ok.body["analyst"]["role"], "admin");
    assert_eq!(ok.body["analyst"]["tenant_id"], json!(app.platform));
    let token = ok.body["access_token"].as_str().expect("token");
    let me = app
        .call(Method::GET, "/api/v1/auth/me", Some(token), None)
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "admin");
    assert_eq!(me.body["all_tenants"], true);
    assert!(me.body["last_login_at"].is_string());
    assert!(
        me.body["permissions"]
            .as_array()
            .expect("perms")
            .contains(&json!("tenants:manage"))
    );
    assert!(me.body.get("password_hash").is_none());

    let wrong = app.login("admin", "nope-nope-nope").await;
    let unknown = app.login("ghost", "nope-nope-nope").await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body, unknown.body,
        "same answer for a wrong password and an unknown user"
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_with_retry_after() {
    let app = TestApp::new().await;
    for _ in 0..5 {
        let r = app.login("admin", "guess-guess-guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused while locked out.
    let r = app.login("admin", PASSWORD).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=30).contains(&retry), "{retry}");
    // Unknown usernames are throttled the same way.
    for _ in 0..5 {
        app.login("ghost", "guess-guess-guess").await;
    }
    let r = app.login("ghost", "guess-guess-guess").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn tokens_die_when_the_user_is_disabled_or_the_password_changes() {
    let app = TestApp::new().await;
    let (al, token) = app.user("al", Role::Analyst, app.platform).await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", Some(&token), None)
            .await
            .status,
        StatusCode::OK
    );

    // Own password change: old token dies, the returned one works.
    let r = app
        .call(Method::POST, "/api/v1/auth/change-password", Some(&token),
              Some(json!({"current_password": "wrong-wrong-wrong", "new_password": "a brand new password"})))
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "current_password");
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/change-password",
            Some(&token),
            Some(json!({"current_password": PASSWORD, "new_password": "short"})),
        )
        .await;
    assert_eq!(r.body["field"], "new_password");
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/change-password",
            Some(&token),
            Some(json!({"current_password": PASSWORD, "new_password": "a brand new password"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fresh_token = r.body["access_token"].as_str().expect("token").to_string();
    assert_problem(
        &app.call(Method::GET, "/api/v1/auth/me", Some(&token), None)
            .await,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", Some(&fresh_token), None)
            .await
            .status,
        StatusCode::OK
    );
    let login = app.login("al", "a brand new password").await;
    assert_eq!(login.status, StatusCode::OK);

    // Admin reset: sessions end, the generated password works.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/auth/analysts/{}/reset-password", al.id),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let generated = r.body["password"].as_str().expect("generated").to_string();
    assert_problem(
        &app.call(Method::GET, "/api/v1/auth/me", Some(&fresh_token), None)
            .await,
        StatusCode::UNAUTHORIZED,
    );
    let login = app.login("al", &generated).await;
    assert_eq!(login.status, StatusCode::OK);
    let token = login.body["access_token"]
        .as_str()
        .expect("token")
        .to_string();

    // Disable: the token dies at once and login is refused with the usual answer.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/auth/analysts/{}", al.id),
            Some(&app.admin_token),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["is_active"], false);
    assert_problem(
        &app.call(Method::GET, "/api/v1/auth/me", Some(&token), None)
            .await,
        StatusCode::UNAUTHORIZED,
    );
    let login = app.login("al", &generated).await;
    assert_problem(&login, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_and_tampered_tokens_are_rejected() {
    let app = TestApp::new().await;
    let other = bulwark_api::auth::TokenIssuer::new(
        b"another-secret-another-secret-!!",
        std::time::Duration::from_secs(60),
    );
    let forged = other.issue(app.admin.id, 0).expect("token");
    assert_problem(
        &app.call(Method::GET, "/api/v1/auth/me", Some(&forged), None)
            .await,
        StatusCode::UNAUTHORIZED,
    );
    let mut tampered = app.admin_token.clone();
    tampered.insert(tampered.len() / 2, 'x');
    assert_problem(
        &app.call(Method::GET, "/api/v1/auth/me", Some(&tampered), None)
            .await,
        StatusCode::UNAUTHORIZED,
    );
    let alg_none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        app.admin_token.split('.').nth(1).expect("payload")
    );
    assert_problem(
        &app.call(Method::GET, "/api/v1/auth/me", Some(&alg_none), None)
            .await,
        StatusCode::UNAUTHORIZED,
    );
}

#[tokio::test]
async fn api_keys_authenticate_until_revoked_and_store_only_a_digest() {
    let app = TestApp::new().await;
    let (key, id) = app.key(&["write"], app.platform).await;
    assert!(key.starts_with("bwk_") && key.len() >= 4 + 8 + 1 + 43);
    // X-API-Key and Bearer both work; a write key is not an analyst and cannot administer.
    let req = Request::builder()
        .uri("/api/v1/auth/me")
        .header("x-api-key", &key)
        .body(Body::empty())
        .expect("req");
    assert_problem(&app.raw(req).await, StatusCode::FORBIDDEN);
    let r = app
        .call(Method::GET, "/api/v1/tenants", Some(&key), None)
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let mut wrong = key.clone();
    wrong.replace_range(key.len() - 3.., "AAA");
    let r = app
        .call(Method::GET, "/api/v1/auth/me", Some(&wrong), None)
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);

    let listed = app
        .call(
            Method::GET,
            "/api/v1/api-keys",
            Some(&app.admin_token),
            None,
        )
        .await;
    let text = listed.body.to_string();
    assert!(text.contains(&key[..12]), "prefix listed");
    assert!(!text.contains(&key[13..]), "secret never listed");
    let stored = app
        .store
        .api_key_by_prefix(&key[..12])
        .await
        .expect("lookup")
        .expect("some");
    assert_eq!(
        stored.digest,
        bulwark_core::credentials::api_key_digest(&key).to_vec()
    );

    // last_used_at is recorded in memory and flushed in a batch.
    assert!(stored.key.last_used_at.is_none());
    app.state.key_usage.flush(&app.store).await;
    let stored = app
        .store
        .api_key_by_prefix(&key[..12])
        .await
        .expect("lookup")
        .expect("some");
    assert!(stored.key.last_used_at.is_some());

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["revoked_at"].is_string());
    let r = app
        .call(Method::GET, "/api/v1/tenants", Some(&key), None)
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_key_expiry_and_validation() {
    let app = TestApp::new().await;
    let t = Some(app.admin_token.as_str());
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    for (body, field) in [
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": ["admin"]}), "scopes[0]"),
        (json!({"name": "", "scopes": ["read"]}), "name"),
        (
            json!({"name": "x", "scopes": ["read"], "source": "splunkish"}),
            "source",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": past}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "expires_in_days": 0}),
            "expires_in_days",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "tenant_id": "not-a-uuid"}),
            "tenant_id",
        ),
    ] {
        let r = app
            .call(Method::POST, "/api/v1/api-keys", t, Some(body.clone()))
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], field, "{body}");
    }
    // A key that expired stops working.
    let k = bulwark_core::credentials::generate_api_key();
    app.store
        .create_api_key(
            &ChangeCtx::system("test"),
            bulwark_store::NewApiKey {
                tenant_id: app.platform,
                name: "old".into(),
                prefix: k.prefix.clone(),
                digest: k.digest.to_vec(),
                scopes: vec![ApiKeyScope::Read],
                source: None,
                expires_at: Some(bulwark_core::time::now() - chrono::Duration::seconds(1)),
                created_by: None,
                signing_secret: None,
                accept_key_signature: false,
                rate_limit: None,
            },
        )
        .await
        .expect("key");
    let r = app
        .call(Method::GET, "/api/v1/tenants", Some(&k.secret), None)
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn analysts_are_created_with_roles_and_tenant_access() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let t = Some(app.admin_token.as_str());
    let r = app
        .call(Method::POST, "/api/v1/auth/analysts", t,
              Some(json!({"username": "Carol", "role": "viewer", "tenant_id": acme, "tenant_ids": [app.platform]})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["analyst"]["username"], "carol");
    assert_eq!(r.body["analyst"]["tenant_ids"], json!([app.platform]));
    let pw = r.body["initial_password"]
        .as_str()
        .expect("generated password")
        .to_string();
    let login = app.login("carol", &pw).await;
    assert_eq!(login.status, StatusCode::OK);
    let dup = app
        .call(
            Method::POST,
            "/api/v1/auth/analysts",
            t,
            Some(json!({"username": "carol", "role": "viewer"})),
        )
        .await;
    assert_problem(&dup, StatusCode::CONFLICT);
    assert_eq!(dup.body["field"], "username");
    for (body, field) in [
        (json!({"username": "x y", "role": "viewer"}), "username"),
        (json!({"username": "dave", "role": "root"}), "role"),
        (json!({"username": "dave"}), "role"),
        (
            json!({"username": "dave", "role": "viewer", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "dave", "role": "viewer", "tenant_id": TenantId::new()}),
            "tenant_id",
        ),
        (
            json!({"username": "dave", "role": "viewer", "isadmin": true}),
            "isadmin",
        ),
    ] {
        let r = app
            .call(Method::POST, "/api/v1/auth/analysts", t, Some(body.clone()))
            .await;
        assert!(r.status.is_client_error(), "{body}: {}", r.status);
        if field != "isadmin" {
            assert_eq!(r.body["field"], field, "{body}: {}", r.body);
        }
    }
}

#[tokio::test]
async fn the_last_platform_admin_cannot_be_demoted_even_concurrently() {
    let app = TestApp::new().await;
    let t = Some(app.admin_token.as_str());
    let path = format!("/api/v1/auth/analysts/{}", app.admin.id);
    let r = app
        .call(Method::PATCH, &path, t, Some(json!({"role": "analyst"})))
        .await;
    assert_problem(&r, StatusCode::CONFLICT);
    let r = app
        .call(Method::PATCH, &path, t, Some(json!({"is_active": false})))
        .await;
    assert_problem(&r, StatusCode::CONFLICT);

    // Two admins demote each other at the same moment: one wins, one is refused.
    let (second, second_token) = app.user("second", Role::Admin, app.platform).await;
    let p1 = path.clone();
    let p2 = format!("/api/v1/auth/analysts/{}", second.id);
    let (r1, r2) = tokio::join!(
        app.call(Method::PATCH, &p2, t, Some(json!({"role": "viewer"}))),
        app.call(
            Method::PATCH,
            &p1,
            Some(&second_token),
            Some(json!({"role": "viewer"}))
        ),
    );
    let mut statuses = [r1.status.as_u16(), r2.status.as_u16()];
    statuses.sort();
    // Either one succeeds and the other is refused (409), or the second is refused because
    // the winner already demoted its caller (403).
    assert!(
        statuses == [200, 409] || statuses == [200, 403],
        "{statuses:?}"
    );
    let admins = app
        .store
        .list_analysts(&Scope::AllTenants)
        .await
        .expect("list")
        .into_iter()
        .filter(|a| a.role == Role::Admin && a.is_active)
        .count();
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_never_a_500() {
    let app = TestApp::with_config(|c| c.body_limit = 4096).await;
    let t = app.admin_token.clone();
    let post = |body: Body, ct: Option<&str>| {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/tenants")
            .header("authorization", format!("Bearer {t}"));
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(body).expect("request")
    };
    let r = app
        .raw(post(Body::from("{\"slug\": "), Some("application/json")))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let r = app
        .raw(post(Body::from("[1,2]"), Some("application/json")))
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .raw(post(Body::from("{\"slug\":\"a\"}"), Some("text/plain")))
        .await;
    assert_problem(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app.raw(post(Body::from("{\"slug\":\"a\"}"), None)).await;
    assert_problem(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!("{{\"slug\":\"{}\",\"name\":\"x\"}}", "a".repeat(10_000));
    let r = app
        .raw(post(Body::from(big), Some("application/json")))
        .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE);
    let r = app
        .raw(post(
            Body::from("{\"slug\":\"ok-slug\"}"),
            Some("application/json"),
        ))
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "name");
    let r = app
        .raw(post(
            Body::from("{\"slug\":\"Bad Slug\",\"name\":\"x\"}"),
            Some("application/json"),
        ))
        .await;
    assert_eq!(r.body["field"], "slug");
    let r = app
        .raw(post(
            Body::from("{\"slug\":\"default\",\"name\":\"x\"}"),
            Some("application/json"),
        ))
        .await;
    assert_problem(&r, StatusCode::CONFLICT);
    assert_eq!(r.body["field"], "slug");

    let r = app
        .call(Method::GET, "/api/v1/tenants/not-a-uuid", Some(&t), None)
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "id");
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/auth/analysts/123",
            Some(&t),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.body["field"], "id");
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/auth/analysts/{}", app.admin.id),
            Some(&t),
            Some(json!({"role": "superuser"})),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "role");
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/auth/analysts/{}", app.admin.id),
            Some(&t),
            Some(json!({"is_active": "yes"})),
        )
        .await;
    assert_eq!(r.body["field"], "is_active");
    let r = app.call(Method::GET, "/api/v1/nope", Some(&t), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    let r = app
        .call(Method::PUT, "/api/v1/tenants", Some(&t), None)
        .await;
    assert!(r.status.is_client_error());
    let r = app.login(&["a"], &1).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["field"] == "username" || r.body["field"] == "password",
        "{}",
        r.body
    );
}

#[tokio::test]
async fn health_readiness_and_metrics_by_route_template() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.body, json!({"status": "ok"}));
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let id = uuid::Uuid::now_v7();
    app.call(
        Method::GET,
        &format!("/api/v1/tenants/{id}"),
        Some(&app.admin_token),
        None,
    )
    .await;
    let r = app.call(Method::GET, "/metrics", None, None).await;
    let text = r.body.as_str().expect("text");
    assert!(text.contains("route=\"/api/v1/tenants/{id}\""), "{text}");
    assert!(
        !text.contains(&id.to_string()),
        "raw paths never become labels"
    );
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert!(
        r.headers.contains_key("x-request-id"),
        "every response carries a request id"
    );

    app.store.close().await;
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_problem(&r, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn swagger_ui_is_served() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/api/docs/", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.as_str().is_some_and(|s| s.contains("swagger")));
}

#[tokio::test]
async fn logins_and_admin_changes_land_in_the_audit_trail_and_verify() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (bob, _) = app.user("bob", Role::Analyst, acme).await;
    assert_eq!(app.login("bob", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        app.login("bob", "wrong-password-1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("nobody", "wrong-password-1").await.status,
        StatusCode::UNAUTHORIZED
    );
    for _ in 0..4 {
        app.login("bob", "wrong-password-1").await;
    }
    // Throttled attempts are refused without being recorded one by one.
    for _ in 0..3 {
        assert_eq!(
            app.login("bob", "wrong-password-1").await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let t = Some(app.admin_token.as_str());
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/audit/events?tenant_id={acme}&limit=500"),
            t,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let types: Vec<String> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["record"]["event_type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "security.login.succeeded")
            .count(),
        1,
        "{types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "security.login.failed")
            .count(),
        5,
        "{types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "security.login.throttled")
            .count(),
        1,
        "{types:?}"
    );
    // The unknown username is recorded in the platform tenant, not in a customer's.
    let r = app
        .call(
            Method::GET,
            &format!(
                "/api/v1/audit/events?tenant_id={}&event_type=security.login.failed",
                app.platform
            ),
            t,
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));

    // A change through the API records who did it, with the request id.
    let req = Request::builder()
        .method(Method::PATCH)
        .uri(format!("/api/v1/auth/analysts/{}", bob.id))
        .header("authorization", format!("Bearer {}", app.admin_token))
        .header("content-type", "application/json")
        .header("x-request-id", "req-audit-7")
        .body(Body::from(r#"{"role":"viewer"}"#))
        .expect("req");
    assert_eq!(app.raw(req).await.status, StatusCode::OK);
    let r = app
        .call(
            Method::GET,
            &format!(
                "/api/v1/audit/events?target_id={}&event_type=security.analyst.updated",
                bob.id
            ),
            t,
            None,
        )
        .await;
    let rec = &r.body["items"][0]["record"];
    assert_eq!(rec["actor"]["name"], "admin");
    assert_eq!(rec["actor"]["kind"], "user");
    assert_eq!(rec["request_id"], "req-audit-7");
    assert_eq!(rec["summary"]["before"]["role"], "analyst");
    assert_eq!(rec["summary"]["after"]["role"], "viewer");

    // Tenant isolation: a tenant admin of acme sees acme's events only.
    let (_, acme_admin) = app.user("acme-admin", Role::Admin, acme).await;
    let r = app
        .call(
            Method::GET,
            "/api/v1/audit/events?limit=500",
            Some(&acme_admin),
            None,
        )
        .await;
    assert!(
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|e| e["tenant_id"] == json!(acme))
    );
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/audit/verify?tenant_id={}", app.platform),
            Some(&acme_admin),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND);

    // Checkpoints on demand, then full and incremental verification.
    let r = app
        .call(Method::POST, "/api/v1/audit/checkpoints", t, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["signed"].as_u64().unwrap_or(0) >= 2);
    for mode in ["full", "incremental"] {
        let r = app
            .call(
                Method::GET,
                &format!("/api/v1/audit/verify?mode={mode}"),
                t,
                None,
            )
            .await;
        assert_eq!(r.body["ok"], true, "{}", r.body);
        assert!(
            r.body["reports"]
                .as_array()
                .expect("reports")
                .iter()
                .all(|x| x["checkpoints_checked"].as_u64() >= Some(1)),
            "{}",
            r.body
        );
    }

    // Pagination walks every event exactly once.
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v1/audit/events?limit=3&cursor={c}"),
            None => "/api/v1/audit/events?limit=3".to_string(),
        };
        let r = app.call(Method::GET, &url, t, None).await;
        seen += r.body["items"].as_array().map_or(0, Vec::len);
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let all = app
        .call(Method::GET, "/api/v1/audit/events?limit=500", t, None)
        .await;
    assert_eq!(seen, all.body["items"].as_array().map_or(0, Vec::len));

    for (q, field) in [
        ("limit=0", "limit"),
        ("event_type=security.nope", "event_type"),
        ("cursor=garbage", "cursor"),
        ("since=yesterday", "since"),
        ("bogus=1", "bogus"),
        ("tenant_id=12", "tenant_id"),
    ] {
        let r = app
            .call(Method::GET, &format!("/api/v1/audit/events?{q}"), t, None)
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        if field != "bogus" {
            assert_eq!(r.body["field"], field, "{q}: {}", r.body);
        }
    }
    let r = app
        .call(Method::GET, "/api/v1/audit/verify?mode=partial", t, None)
        .await;
    assert_eq!(r.body["field"], "mode");
}
