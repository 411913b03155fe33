//! Alert ingestion over HTTP: webhooks, batches, bad input, signatures, rate limits, the
//! dead-letter list and the counters.

mod common;

use common::*;

#[tokio::test]
async fn webhooks_store_alerts_once_and_answer_after_commit() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (key, _) = app.key(&["webhooks:ingest"], acme).await;
    let body = wazuh_alert("1715430559.77", "203.0.113.9").to_string();
    let path = "/api/v1/webhooks/alerts/wazuh";
    let r = post_raw(&app, path, &key, "application/json", body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["duplicate"], false);
    assert_eq!(r.body["severity"], "critical");
    assert_eq!(r.body["title"], "sshd: brute force");
    assert_eq!(r.body["playbooks_triggered"], 0);
    let id = r.body["alert_id"].clone();
    let r = post_raw(&app, path, &key, "application/json", body.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["duplicate"], true);
    assert_eq!(r.body["duplicate_count"], 1);
    assert_eq!(r.body["alert_id"], id);
    assert_eq!(
        app.store.alert_count(acme).await.expect("count"),
        1,
        "stored in the key's tenant"
    );
    assert_eq!(app.store.alert_count(app.platform).await.expect("count"), 0);

    // 64 concurrent deliveries of a new alert over HTTP: one row, one id, no errors.
    let body = wazuh_alert("race-http-1", "203.0.113.10").to_string();
    let futs: Vec<_> = (0..64)
        .map(|_| post_raw(&app, path, &key, "application/json", body.clone()))
        .collect();
    let results = join_all(futs).await;
    let ids: std::collections::HashSet<_> = results
        .iter()
        .map(|r| r.body["alert_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        results
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(app.store.alert_count(acme).await.expect("count"), 2);
}

#[tokio::test]
async fn webhook_batches_report_each_line_and_keep_the_good_ones() {
    let app = TestApp::new().await;
    let (key, _) = app.key(&["webhooks:ingest"], app.platform).await;
    let lines = [
        wazuh_alert("nd-1", "203.0.113.1").to_string(),
        "{not json".to_string(),
        wazuh_alert("nd-2", "203.0.113.2").to_string(),
        "[1,2]".to_string(),
        wazuh_alert("nd-1", "203.0.113.1").to_string(),
    ]
    .join("\n");
    let path = "/api/v1/webhooks/alerts/wazuh";
    let r = post_raw(&app, path, &key, "application/x-ndjson", lines).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["accepted"], 2);
    assert_eq!(r.body["duplicates"], 1);
    assert_eq!(r.body["rejected"], 2);
    let results = r.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    assert!(
        results[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid JSON"))
    );
    assert_eq!(results[1]["line"], 2);
    assert!(
        results[3]["error"]
            .as_str()
            .is_some_and(|e| e.contains("object"))
    );
    assert_eq!(results[4]["alert_id"], results[0]["alert_id"]);

    // A JSON array, and a GuardDuty findings envelope split into alerts.
    let arr = json!([{"title": "A", "severity": "low"}, {"title": "B", "severity": "high"}]);
    let r = post_raw(
        &app,
        "/api/v1/webhooks/alerts",
        &key,
        "application/json",
        arr.to_string(),
    )
    .await;
    assert_eq!(r.body["accepted"], 2, "{}", r.body);
    let gd = json!({"findings": [
        {"id": "f-1", "type": "Recon:EC2/PortProbeUnprotectedPort", "title": "Port probe", "severity": 2.0},
        {"id": "f-2", "type": "UnauthorizedAccess:EC2/SSHBruteForce", "title": "SSH brute force", "severity": 8.0}
    ]});
    let r = post_raw(
        &app,
        "/api/v1/webhooks/alerts/guardduty",
        &key,
        "application/json",
        gd.to_string(),
    )
    .await;
    assert_eq!(r.body["accepted"], 2, "{}", r.body);
    assert_eq!(r.body["results"][1]["severity"], "high");
}

#[tokio::test]
async fn webhook_bad_input_and_key_bindings() {
    let app = TestApp::with_config(|c| c.body_limit = 64 * 1024).await;
    let k = bulwark_core::credentials::generate_api_key();
    app.store
        .create_api_key(
            &ChangeCtx::system("test"),
            bulwark_store::NewApiKey {
                tenant_id: app.platform,
                name: "suricata only".into(),
                prefix: k.prefix.clone(),
                digest: k.digest.to_vec(),
                scopes: vec![ApiKeyScope::WebhooksIngest],
                source: Some("suricata".into()),
                expires_at: None,
                created_by: None,
                signing_secret: None,
                accept_key_signature: false,
                rate_limit: None,
            },
        )
        .await
        .expect("key");
    let key = k.secret;
    let ok =
        json!({"event_type": "alert", "src_ip": "203.0.113.5", "dest_ip": "10.0.0.5", "flow_id": 1,
                    "alert": {"signature": "ET POLICY test", "signature_id": 1, "severity": 2}})
        .to_string();
    let p = "/api/v1/webhooks/alerts/suricata";
    let r = post_raw(&app, p, &key, "application/json", ok.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The endpoint decides the source; a key bound to suricata cannot post as another tool.
    for (path, status) in [
        ("/api/v1/webhooks/alerts/wazuh", StatusCode::FORBIDDEN),
        ("/api/v1/webhooks/alerts", StatusCode::FORBIDDEN),
        ("/api/v1/webhooks/alerts/splunkish", StatusCode::BAD_REQUEST),
    ] {
        let r = post_raw(&app, path, &key, "application/json", ok.clone()).await;
        assert_problem(&r, status);
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(r.body["field"], "source");
        }
    }

    let r = post_raw(&app, p, &key, "application/json", "{\"a\":".into()).await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let r = post_raw(&app, p, &key, "application/json", "42".into()).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "body");
    let r = post_raw(&app, p, &key, "application/json", "   ".into()).await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let r = post_raw(&app, p, &key, "text/plain", ok.clone()).await;
    assert_problem(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let deep = format!("{}1{}", "{\"a\":".repeat(65), "}".repeat(65));
    let r = post_raw(&app, p, &key, "application/json", deep).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"].as_str().is_some_and(|d| d.contains("64")),
        "{}",
        r.body
    );
    let deeper = format!("{}1{}", "[".repeat(500), "]".repeat(500));
    let r = post_raw(&app, p, &key, "application/json", deeper).await;
    assert!(r.status.is_client_error());
    let big = json!({"title": "x".repeat(70 * 1024)}).to_string();
    let r = post_raw(&app, p, &key, "application/json", big).await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        app.store.alert_count(app.platform).await.expect("count"),
        1,
        "nothing half-written"
    );
}

/// A webhook request with extra headers, from a given client address.
async fn post_from(
    app: &TestApp,
    path: &str,
    key: &str,
    body: &str,
    headers: &[(&str, String)],
    ip: Option<[u8; 4]>,
) -> Resp {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("x-api-key", key)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    let mut req = b.body(Body::from(body.to_string())).expect("req");
    if let Some(ip) = ip {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                ip, 40000,
            ))));
    }
    app.raw(req).await
}

async fn create_key(app: &TestApp, body: Value) -> Resp {
    app.call(
        Method::POST,
        "/api/v1/api-keys",
        Some(&app.admin_token),
        Some(body),
    )
    .await
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn signed_keys_accept_only_fresh_matching_signatures() {
    use bulwark_core::signature::{sign, sign_with_key};
    let app = TestApp::new().await;
    let r = create_key(
        &app,
        json!({"name": "signed", "scopes": ["webhooks:ingest"], "signed": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["api_key"]["signed"], true);
    let key = r.body["key"].as_str().expect("key").to_string();
    let secret = r.body["signing_secret"]
        .as_str()
        .expect("signing secret shown once")
        .to_string();
    assert!(secret.starts_with("whsec_") && secret != key);
    let listed = app.admin(Method::GET, "/api/v1/api-keys").await;
    assert!(
        !listed.body.to_string().contains(&secret),
        "secret never listed"
    );

    let p = "/api/v1/webhooks/alerts";
    let body = json!({"title": "signed alert", "source_id": "s-1"}).to_string();
    let h = |v: String| vec![("x-bulwark-signature", v)];
    // Missing, stale, from the future, for another body, with the key instead of the secret.
    for (headers, needle) in [
        (vec![], "requires X-Bulwark-Signature"),
        (
            // Well outside the 5-minute window: a loaded machine may take seconds between
            // signing and the server's check.
            h(sign(secret.as_bytes(), now_unix() - 330, body.as_bytes())),
            "old",
        ),
        (
            h(sign(secret.as_bytes(), now_unix() + 330, body.as_bytes())),
            "future",
        ),
        (
            h(sign(secret.as_bytes(), now_unix(), b"{}")),
            "does not match",
        ),
        (
            h(sign(key.as_bytes(), now_unix(), body.as_bytes())),
            "does not match",
        ),
        (h("t=abc,v1=00".into()), "malformed"),
        (
            vec![("x-webhook-signature", sign_with_key(&key, body.as_bytes()))],
            "does not accept",
        ),
    ] {
        let r = post_from(&app, p, &key, &body, &headers, None).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["type"], "urn:bulwark:problem:bad-signature");
        assert!(
            r.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(needle)),
            "{needle}: {}",
            r.body
        );
    }
    assert_eq!(app.store.alert_count(app.platform).await.expect("count"), 0);
    let good = h(sign(secret.as_bytes(), now_unix() - 60, body.as_bytes()));
    let r = post_from(&app, p, &key, &body, &good, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // OpenSOAR senders: HMAC keyed with the API key, accepted when the key allows it.
    let r = create_key(
        &app,
        json!({"name": "opensoar", "scopes": ["webhooks:ingest"], "accept_key_signature": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("signing_secret").is_none());
    let okey = r.body["key"].as_str().expect("key").to_string();
    let body2 = json!({"title": "from opensoar", "source_id": "o-1"}).to_string();
    let r = post_from(&app, p, &okey, &body2, &[], None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("X-Webhook-Signature"))
    );
    let wrong = vec![("x-webhook-signature", sign_with_key(&key, body2.as_bytes()))];
    assert_problem(
        &post_from(&app, p, &okey, &body2, &wrong, None).await,
        StatusCode::UNAUTHORIZED,
    );
    let right = vec![(
        "x-webhook-signature",
        sign_with_key(&okey, body2.as_bytes()),
    )];
    let r = post_from(&app, p, &okey, &body2, &right, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // A plain key refuses a signature it cannot check rather than ignoring it.
    let (plain, _) = app.key(&["webhooks:ingest"], app.platform).await;
    let body3 = json!({"title": "plain", "source_id": "p-1"}).to_string();
    let sig = h(sign(b"whatever", now_unix(), body3.as_bytes()));
    let r = post_from(&app, p, &plain, &body3, &sig, None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no signing secret"))
    );
    assert_eq!(app.store.alert_count(app.platform).await.expect("count"), 2);

    // Signatures only make sense for ingest keys.
    let r = create_key(
        &app,
        json!({"name": "x", "scopes": ["read"], "signed": true}),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "signed");
    let r = create_key(
        &app,
        json!({"name": "x", "scopes": ["webhooks:ingest"], "rate_limit": {"per_second": 0, "burst": 5}}),
    )
    .await;
    assert_eq!(r.body["field"], "rate_limit.per_second", "{}", r.body);

    // Signature failures are counted per source.
    let r = app.admin(Method::GET, "/api/v1/ingest/stats").await;
    let generic = r.body["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["source"] == "generic")
        .expect("generic counted")
        .clone();
    assert_eq!(generic["accepted"], 2, "{generic}");
    assert_eq!(
        generic["rejected_by_reason"]["bad_signature"], 10,
        "{generic}"
    );
}

#[tokio::test]
async fn each_key_has_a_rate_limit_that_made_up_keys_cannot_drain() {
    let app = TestApp::new().await;
    let r = create_key(
        &app,
        json!({"name": "slow", "scopes": ["webhooks:ingest"], "rate_limit": {"per_second": 1, "burst": 2}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["api_key"]["rate_limit"]["burst"], 2);
    let key = r.body["key"].as_str().expect("key").to_string();
    // Same prefix, wrong secret: refused as unauthenticated, charged to nobody's bucket.
    let mut forged = key.clone();
    forged.replace_range(key.len() - 4.., "AAAA");
    let p = "/api/v1/webhooks/alerts";
    for i in 0..5 {
        let body = json!({"title": "forged", "source_id": format!("f-{i}")}).to_string();
        let r = post_from(&app, p, &forged, &body, &[], None).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED);
    }
    for i in 0..2 {
        let body = json!({"title": "real", "source_id": format!("r-{i}")}).to_string();
        let r = post_from(&app, p, &key, &body, &[], None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let body = json!({"title": "real", "source_id": "r-3"}).to_string();
    let r = post_from(&app, p, &key, &body, &[], None).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // Another key has its own bucket.
    let (other, _) = app.key(&["webhooks:ingest"], app.platform).await;
    let r = post_from(&app, p, &other, &body, &[], None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The bucket refills.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let body = json!({"title": "real", "source_id": "r-4"}).to_string();
    let r = post_from(&app, p, &key, &body, &[], None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn failed_authentications_are_limited_per_client_address() {
    let app = TestApp::with_config(|c| {
        c.limits.auth_failure_burst = 3;
        c.limits.auth_failures_per_minute = 1;
    })
    .await;
    let (key, _) = app.key(&["webhooks:ingest"], app.platform).await;
    let p = "/api/v1/webhooks/alerts";
    let body = json!({"title": "t", "source_id": "ip-1"}).to_string();
    let attacker = Some([198, 51, 100, 7]);
    for _ in 0..3 {
        let r = post_from(&app, p, "bwk_AAAAAAAA_nope", &body, &[], attacker).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED);
    }
    // Budget spent: refused before any credential is checked, even a valid one.
    let r = post_from(&app, p, &key, &body, &[], attacker).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((50..=60).contains(&wait), "{wait}");
    // Other addresses are not affected.
    let r = post_from(&app, p, &key, &body, &[], Some([192, 0, 2, 1])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Bad signatures count as failed authentications too.
    let r = create_key(
        &app,
        json!({"name": "signed", "scopes": ["webhooks:ingest"], "signed": true}),
    )
    .await;
    let signed = r.body["key"].as_str().expect("key").to_string();
    let second = Some([192, 0, 2, 2]);
    for _ in 0..3 {
        let r = post_from(&app, p, &signed, &body, &[], second).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED);
    }
    let r = post_from(&app, p, &key, &body, &[], second).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn rejected_payloads_are_kept_counted_and_replayable() {
    let app = TestApp::with_config(|c| c.limits.dead_letters_per_tenant = 4).await;
    let acme = app.tenant("acme").await;
    let (key, key_id) = app.key(&["webhooks:ingest"], acme).await;
    let path = "/api/v1/webhooks/alerts/wazuh";
    let lines = [
        wazuh_alert("dl-1", "203.0.113.1").to_string(),
        "{not json".to_string(),
        "[1,2]".to_string(),
        wazuh_alert("dl-1", "203.0.113.1").to_string(),
    ]
    .join("\n");
    let r = post_raw(&app, path, &key, "application/x-ndjson", lines).await;
    assert_eq!(
        (r.body["accepted"].as_u64(), r.body["rejected"].as_u64()),
        (Some(1), Some(2))
    );
    let r = post_raw(&app, path, &key, "application/json", "{\"broken\":".into()).await;
    assert_problem(&r, StatusCode::BAD_REQUEST);

    let list = |q: &'static str| {
        let app = &app;
        async move {
            app.admin(Method::GET, &format!("/api/v1/ingest/dead-letters{q}"))
                .await
        }
    };
    let r = list("").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 3, "{}", r.body);
    // Newest first, with the reason, the sender's key and no payload in the list.
    assert_eq!(items[0]["reason"], "invalid_json");
    assert_eq!(items[0]["source"], "wazuh");
    assert_eq!(items[0]["tenant_id"], acme.to_string());
    assert_eq!(items[0]["api_key_id"], key_id);
    assert!(items[0].get("payload").is_none());
    assert_eq!(items[1]["reason"], "not_an_object");
    let r = list("?reason=not_an_object").await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    let one = app
        .call(
            Method::GET,
            &format!(
                "/api/v1/ingest/dead-letters/{}",
                items[1]["id"].as_str().expect("id")
            ),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(one.body["payload"], "[1,2]");
    // Analysts may see the counters but not the payloads.
    let (_, analyst) = app.user("ana", Role::Analyst, acme).await;
    let r = app
        .call(
            Method::GET,
            "/api/v1/ingest/dead-letters",
            Some(&analyst),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN);
    let stats = app
        .call(
            Method::GET,
            "/api/v1/ingest/stats?days=7",
            Some(&analyst),
            None,
        )
        .await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    let wazuh = &stats.body["sources"][0];
    assert_eq!(wazuh["source"], "wazuh");
    assert_eq!(wazuh["tenant_id"], acme.to_string());
    assert_eq!(
        (wazuh["accepted"].as_i64(), wazuh["duplicates"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(wazuh["rejected"], 3);
    assert_eq!(wazuh["rejected_by_reason"]["invalid_json"], 2);
    assert_eq!(wazuh["rejected_by_reason"]["not_an_object"], 1);
    let r = app
        .call(
            Method::GET,
            "/api/v1/ingest/stats?days=0",
            Some(&analyst),
            None,
        )
        .await;
    assert_eq!(r.body["field"], "days");
    let metrics = app.call(Method::GET, "/metrics", None, None).await;
    let text = metrics.body.as_str().expect("text").to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("bulwark_ingest_alerts_total")
                && l.contains("source=\"wazuh\"")
                && l.contains("reason=\"not_an_object\"")),
        "{text}"
    );

    // Still invalid: replay fails with the reason and the letter stays.
    let bad_id = items[0]["id"].as_str().expect("id").to_string();
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/ingest/dead-letters/{bad_id}/replay"),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "payload");

    // A payload rejected earlier (say, by an older mapping) that is valid now is ingested on
    // replay, once, for its own tenant, and the replay is audited.
    let valid = wazuh_alert("dl-replayed", "203.0.113.9").to_string();
    let ok_id = app.dead_letter(acme, &valid).await;
    let replay = format!("/api/v1/ingest/dead-letters/{ok_id}/replay");
    let r = app.admin(Method::POST, &replay).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["alerts"][0]["duplicate"], false);
    assert_eq!(
        r.body["dead_letter"]["alert_id"],
        r.body["alerts"][0]["alert_id"]
    );
    assert_eq!(r.body["dead_letter"]["replayed_by"], "admin");
    assert_eq!(app.store.alert_count(acme).await.expect("count"), 2);
    let again = app.admin(Method::POST, &replay).await;
    assert_problem(&again, StatusCode::CONFLICT);
    let r = list("?replayed=true").await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    let audit = app
        .admin(
            Method::GET,
            "/api/v1/audit/events?event_type=action.dead_letter.replayed",
        )
        .await;
    assert_eq!(
        audit.body["items"][0]["record"]["target"]["id"], ok_id,
        "{}",
        audit.body
    );

    // Discard; and the list is bounded (newest kept).
    let r = app
        .admin(
            Method::DELETE,
            &format!("/api/v1/ingest/dead-letters/{bad_id}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for i in 0..6 {
        post_raw(
            &app,
            path,
            &key,
            "application/json",
            format!("{{\"n\":{i},"),
        )
        .await;
    }
    let r = list("").await;
    let items = r.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 4, "{}", r.body);
    let newest = app
        .call(
            Method::GET,
            &format!(
                "/api/v1/ingest/dead-letters/{}",
                items[0]["id"].as_str().expect("id")
            ),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(newest.body["payload"], "{\"n\":5,");
    let r = list("?limit=2").await;
    let cursor = r.body["next_cursor"].as_str().expect("cursor").to_string();
    let r2 = app
        .admin(
            Method::GET,
            &format!("/api/v1/ingest/dead-letters?limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(r2.body["items"].as_array().map(Vec::len), Some(2));
    assert_ne!(r2.body["items"][0]["id"], r.body["items"][0]["id"]);
}

#[tokio::test]
async fn oversized_rejected_payloads_are_cut_and_not_replayable() {
    let app = TestApp::new().await;
    let (key, _) = app.key(&["webhooks:ingest"], app.platform).await;
    let big = format!("{{\"title\": \"{}\"", "é".repeat(40 * 1024));
    let r = post_raw(
        &app,
        "/api/v1/webhooks/alerts",
        &key,
        "application/json",
        big.clone(),
    )
    .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let list = app.admin(Method::GET, "/api/v1/ingest/dead-letters").await;
    let item = &list.body["items"][0];
    assert_eq!(item["truncated"], true);
    assert_eq!(item["payload_bytes"], big.len());
    let id = item["id"].as_str().expect("id");
    let one = app
        .admin(Method::GET, &format!("/api/v1/ingest/dead-letters/{id}"))
        .await;
    let kept = one.body["payload"].as_str().expect("payload");
    assert!(
        kept.len() <= 64 * 1024 && big.starts_with(kept),
        "cut on a character boundary"
    );
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/ingest/dead-letters/{id}/replay"),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cut short"))
    );
}

/// Ingest keys are remembered between requests; a revoked one still stops storing alerts at
/// once, because the writer checks the batch's keys just before it writes.
#[tokio::test]
async fn a_revoked_ingest_key_stores_nothing_more_even_when_remembered() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (key, id) = app.key(&["webhooks:ingest"], acme).await;
    let path = "/api/v1/webhooks/alerts/wazuh";
    for i in 0..3 {
        let body = wazuh_alert(&format!("kc-{i}"), "203.0.113.9").to_string();
        let r = post_raw(&app, path, &key, "application/json", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // Revoked straight in the store, as the CLI (another process) does.
    app.store
        .revoke_api_key(
            &bulwark_store::ChangeCtx::system("cli"),
            &bulwark_core::Scope::AllTenants,
            bulwark_core::ApiKeyId(id.parse().expect("key id")),
            bulwark_core::time::now(),
        )
        .await
        .expect("revoke");
    let body = wazuh_alert("kc-after", "203.0.113.9").to_string();
    let r = post_raw(&app, path, &key, "application/json", body).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    let batch = [
        wazuh_alert("kc-b1", "203.0.113.9").to_string(),
        wazuh_alert("kc-b2", "203.0.113.9").to_string(),
    ]
    .join("\n");
    let r = post_raw(&app, path, &key, "application/x-ndjson", batch).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.store.alert_count(acme).await.expect("count"),
        3,
        "nothing stored after the revocation"
    );
}
