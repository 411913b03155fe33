//! Observables over HTTP: filters, pagination, sightings (alerts and incidents), manual
//! additions, changes, tag access, tenant scope and bad input.

mod common;

use bulwark_store::tag_access::{TagAccessConfig, TagRule, Untagged};
use bulwark_store::testing::{exec_raw, requested_backend};
use common::*;

fn pg() -> bool {
    requested_backend() == bulwark_store::Backend::Postgres
}

/// A UUID as an SQL literal of the backend (SQLite stores UUIDs as 16-byte blobs).
fn id_lit(u: &str) -> String {
    if pg() {
        format!("'{u}'")
    } else {
        format!("X'{}'", u.replace('-', ""))
    }
}

async fn sql(app: &TestApp, q: &str) {
    exec_raw(&app._db.url, q)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
}

/// A generic alert carrying `text` (its indicators are extracted from it).
fn generic(source_id: &str, text: &str, tags: &[&str]) -> Value {
    json!({"title": format!("alert {source_id}"), "severity": "high", "source_id": source_id,
           "description": text, "tags": tags})
}

async fn get(app: &TestApp, token: &str, path: &str) -> Resp {
    app.call(Method::GET, path, Some(token), None).await
}

fn values(r: &Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {}", r.body))
        .iter()
        .map(|o| o["value"].as_str().expect("value").to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The id of the caller-visible observable with this exact (kind, value).
async fn obs_id(app: &TestApp, token: &str, kind: &str, value: &str) -> String {
    let r = get(
        app,
        token,
        &format!("/api/v1/observables?kind={kind}&match=exact&q={value}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no {kind} {value}: {}", r.body))
        .to_string()
}

async fn post(app: &TestApp, token: &str, body: Value) -> Resp {
    app.call(Method::POST, "/api/v1/observables", Some(token), Some(body))
        .await
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> Resp {
    app.call(
        Method::PATCH,
        &format!("/api/v1/observables/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn the_list_filters_sorts_and_pages() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (_, ana) = app.user("ana", Role::Analyst, acme).await;
    for i in 0..3 {
        app.alert(
            acme,
            "generic",
            generic(&format!("ip-{i}"), "ssh brute force from 203.0.113.9", &[]),
        )
        .await;
    }
    app.alert(
        acme,
        "generic",
        generic(
            "dl",
            "download of http://Evil.Example.net/Payload.ps1 from 198.51.100.7",
            &[],
        ),
    )
    .await;
    app.alert(
        acme,
        "generic",
        generic(
            "vuln",
            "exploit of cve-2021-44228 dropped d41d8cd98f00b204e9800998ecf8427e",
            &[],
        ),
    )
    .await;
    app.alert(globex, "generic", generic("g", "beacon to 192.0.2.44", &[]))
        .await;
    let r = post(
        &app,
        &ana,
        json!({"kind": "domain", "value": "Bad[.]Example.ORG.", "tags": ["c2", "apt"],
               "description": "from the intel feed"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["value"], "bad.example.org");

    let all = get(&app, &ana, "/api/v1/observables").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(
        sorted(values(&all)),
        sorted(
            [
                "203.0.113.9",
                "198.51.100.7",
                "evil.example.net",
                "http://evil.example.net/Payload.ps1",
                "CVE-2021-44228",
                "d41d8cd98f00b204e9800998ecf8427e",
                "bad.example.org",
            ]
            .map(String::from)
            .to_vec()
        ),
        "the analyst sees their tenant only"
    );
    assert!(all.body["next_cursor"].is_null());
    // Newest first: the manual one was added last.
    assert_eq!(values(&all)[0], "bad.example.org");
    let ip = &all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["value"] == "203.0.113.9")
        .expect("ip")
        .clone();
    assert_eq!(ip["kind"], "ipv4");
    assert_eq!(ip["sightings"], 3);
    assert_eq!(ip["origin"], "alert");
    assert_eq!(ip["is_private"], false);
    assert_eq!(ip["tenant_id"], acme.to_string());
    assert!(ip["verdict"].is_null() && ip["reputation_score"].is_null());

    // Mark one malicious, for the verdict filter.
    let cve = obs_id(&app, &ana, "cve", "CVE-2021-44228").await;
    let r = patch(&app, &ana, &cve, json!({"verdict": "malicious"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    for (query, want) in [
        ("?kind=ipv4", vec!["198.51.100.7", "203.0.113.9"]),
        (
            "?q=EVIL",
            vec!["evil.example.net"], // URL paths are case-sensitive, so the URL is not found
        ),
        (
            "?q=evil",
            vec!["evil.example.net", "http://evil.example.net/Payload.ps1"],
        ),
        ("?q=Payload", vec!["http://evil.example.net/Payload.ps1"]),
        ("?q=payload", vec![]),
        (
            "?kind=url&q=evil%5B.%5Dexample",
            vec!["http://evil.example.net/Payload.ps1"],
        ),
        ("?q=cve-2021", vec!["CVE-2021-44228"]),
        ("?q=203.0&match=prefix", vec!["203.0.113.9"]),
        ("?q=0.113&match=prefix", vec![]),
        ("?q=0.113", vec!["203.0.113.9"]),
        (
            "?q=D41D8&match=prefix&kind=md5",
            vec!["d41d8cd98f00b204e9800998ecf8427e"],
        ),
        (
            "?kind=domain&match=exact&q=BAD%5B.%5Dexample.org.",
            vec!["bad.example.org"],
        ),
        ("?match=exact&q=203.0.113", vec![]),
        ("?q=%25", vec![]),
        ("?q=_", vec![]),
        ("?tag=c2", vec!["bad.example.org"]),
        ("?tag=nope", vec![]),
        ("?origin=manual", vec!["bad.example.org"]),
        ("?verdict=malicious", vec!["CVE-2021-44228"]),
        ("?verdict=benign", vec![]),
        ("?since=2999-01-01T00:00:00Z", vec![]),
        (&format!("?tenant_id={globex}"), vec![]),
    ] {
        let r = get(&app, &ana, &format!("/api/v1/observables{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        assert_eq!(
            sorted(values(&r)),
            sorted(want.iter().map(|s| s.to_string()).collect()),
            "{query}"
        );
    }
    let r = get(&app, &ana, "/api/v1/observables?origin=alert").await;
    assert_eq!(values(&r).len(), 6);
    let r = get(&app, &ana, "/api/v1/observables?since=2000-01-01T00:00:00Z").await;
    assert_eq!(values(&r).len(), 7);
    let r = get(
        &app,
        &app.admin_token,
        &format!("/api/v1/observables?tenant_id={globex}"),
    )
    .await;
    assert_eq!(
        values(&r),
        ["192.0.2.44"],
        "the platform admin sees every tenant"
    );

    // Most seen first.
    let r = get(&app, &ana, "/api/v1/observables?sort=sightings").await;
    assert_eq!(values(&r)[0], "203.0.113.9");
    let counts: Vec<i64> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["sightings"].as_i64().expect("n"))
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");

    // Pages follow the cursor without repeats or gaps, in both orders.
    for sort in ["last_seen", "sightings"] {
        let full = get(&app, &ana, &format!("/api/v1/observables?sort={sort}")).await;
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let url = match &cursor {
                Some(c) => format!("/api/v1/observables?sort={sort}&limit=2&cursor={c}"),
                None => format!("/api/v1/observables?sort={sort}&limit=2"),
            };
            let r = get(&app, &ana, &url).await;
            assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
            seen.extend(values(&r));
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, values(&full), "{sort}");
    }

    // Bad input names the field.
    let p1 = get(&app, &ana, "/api/v1/observables?sort=sightings&limit=2").await;
    let sightings_cursor = p1.body["next_cursor"].as_str().expect("cursor").to_string();
    for (query, field) in [
        ("?kind=hostname", "kind"),
        ("?match=fuzzy", "match"),
        ("?sort=newest", "sort"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?limit=-1", "limit"),
        ("?cursor=garbage", "cursor"),
        (&format!("?cursor={sightings_cursor}"), "cursor"),
        ("?verdict=evil", "verdict"),
        ("?origin=feed", "origin"),
        ("?q=", "q"),
        (&format!("?q={}", "a".repeat(513)), "q"),
        ("?tag=", "tag"),
        ("?q=a%00b", "q"),
        ("?since=0000-01-01T00:00:00Z", "since"),
        ("?since=yesterday", "since"),
        ("?tenant_id=12", "tenant_id"),
        ("?colour=red", "colour"),
    ] {
        let r = get(&app, &ana, &format!("/api/v1/observables{query}")).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        if field != "colour" {
            assert_eq!(r.body["field"], field, "{query}: {}", r.body);
        }
    }
}

#[tokio::test]
async fn one_observable_shows_its_alerts_and_incidents() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (_, ana) = app.user("ana", Role::Analyst, acme).await;
    let mut alerts = Vec::new();
    for i in 0..3 {
        alerts.push(
            app.alert(
                acme,
                "generic",
                generic(&format!("a-{i}"), "callback to 203.0.113.50", &[]),
            )
            .await,
        );
    }
    let unrelated = app
        .alert(acme, "generic", generic("u", "nothing to see", &[]))
        .await;
    app.alert(
        globex,
        "generic",
        generic("g", "callback to 203.0.113.50", &[]),
    )
    .await;
    let id = obs_id(&app, &ana, "ipv4", "203.0.113.50").await;

    // Incidents: one linking the first alert, one deleted linking the second, one linking an
    // alert without the observable.
    let (i1, i2, i3) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let t = id_lit(&acme.to_string());
    let now = "'2026-01-05T10:00:00+00:00'";
    for (n, inc, deleted) in [(1, &i1, "NULL"), (2, &i2, now), (3, &i3, "NULL")] {
        sql(
            &app,
            &format!(
                "INSERT INTO incidents (id, tenant_id, number, title, severity, status, created_at, updated_at, deleted_at) \
                 VALUES ({}, {t}, {n}, 'Incident {n}', 'high', 'open', {now}, {now}, {deleted})",
                id_lit(inc)
            ),
        )
        .await;
    }
    for (inc, alert) in [
        (&i1, &alerts[0]),
        (&i1, &alerts[1]),
        (&i2, &alerts[1]),
        (&i3, &unrelated),
    ] {
        sql(
            &app,
            &format!(
                "INSERT INTO incident_alerts (incident_id, alert_id, tenant_id, linked_at) VALUES ({}, {}, {t}, {now})",
                id_lit(inc),
                id_lit(alert)
            ),
        )
        .await;
    }
    sql(
        &app,
        &format!(
            "UPDATE observables SET enrichment = '{{\"virustotal\": {{\"malicious\": 12}}}}', \
             enriched_at = {now}, reputation_score = 90, verdict = 'malicious' WHERE id = {}",
            id_lit(&id)
        ),
    )
    .await;

    let r = get(&app, &ana, &format!("/api/v1/observables/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["value"], "203.0.113.50");
    assert_eq!(r.body["sightings"], 3);
    assert_eq!(r.body["alerts_total"], 3);
    assert_eq!(r.body["reputation_score"], 90);
    assert_eq!(r.body["verdict"], "malicious");
    assert_eq!(r.body["enrichment"]["virustotal"]["malicious"], 12);
    assert!(r.body["enriched_at"].is_string());
    let ids: Vec<&str> = r.body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [&alerts[2], &alerts[1], &alerts[0]], "newest first");
    assert_eq!(r.body["alerts"][0]["tenant_id"], acme.to_string());
    assert_eq!(r.body["incidents_total"], 1, "{}", r.body["incidents"]);
    assert_eq!(r.body["incidents"][0]["id"], i1);
    assert_eq!(r.body["incidents"][0]["number"], 1);
    assert_eq!(r.body["incidents"][0]["title"], "Incident 1");

    // Bounded, with the total.
    let r = get(
        &app,
        &ana,
        &format!("/api/v1/observables/{id}?sightings_limit=2"),
    )
    .await;
    assert_eq!(r.body["alerts"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.body["alerts_total"], 3);

    // Deleted alerts are not sightings any more (the counter is ingestion's and stays).
    sql(
        &app,
        &format!(
            "UPDATE alerts SET deleted_at = {now} WHERE id = {}",
            id_lit(&alerts[0])
        ),
    )
    .await;
    let r = get(&app, &ana, &format!("/api/v1/observables/{id}")).await;
    assert_eq!(r.body["alerts_total"], 2);
    assert_eq!(
        r.body["incidents_total"], 1,
        "still linked through the second alert"
    );

    // Missing, another tenant's, bad input.
    let r = get(&app, &app.admin_token, "/api/v1/observables?q=203.0.113.50").await;
    assert_eq!(values(&r).len(), 2, "one per tenant");
    let globex_id = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["tenant_id"] == globex.to_string())
        .and_then(|o| o["id"].as_str())
        .expect("globex's")
        .to_string();
    assert_problem(
        &get(&app, &ana, &format!("/api/v1/observables/{globex_id}")).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &get(
            &app,
            &ana,
            &format!("/api/v1/observables/{}", uuid::Uuid::now_v7()),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    let r = get(&app, &ana, "/api/v1/observables/42").await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "id");
    for q in [
        "sightings_limit=0",
        "sightings_limit=501",
        "sightings_limit=x",
    ] {
        let r = get(&app, &ana, &format!("/api/v1/observables/{id}?{q}")).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["field"], "sightings_limit", "{q}");
    }
}

#[tokio::test]
async fn manual_additions_are_normalized_conflict_and_are_audited() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (_, ana) = app.user("ana", Role::Analyst, acme).await;
    let r = post(
        &app,
        &ana,
        json!({"kind": "url", "value": " hxxps://Evil.Example.com/Gate.php ",
               "tags": ["c2", " c2 ", "phishing"], "description": "  from the intel feed "}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(r.body["value"], "https://evil.example.com/Gate.php");
    assert_eq!(r.body["kind"], "url");
    assert_eq!(r.body["origin"], "manual");
    assert_eq!(r.body["sightings"], 0);
    assert_eq!(r.body["tags"], json!(["c2", "phishing"]));
    assert_eq!(r.body["description"], "from the intel feed");
    assert_eq!(r.body["tenant_id"], acme.to_string());

    // The same value written differently is the same observable: 409 with its id.
    let r = post(
        &app,
        &ana,
        json!({"kind": "url", "value": "https://EVIL.example.com/Gate.php", "tags": ["other"]}),
    )
    .await;
    assert_problem(&r, StatusCode::CONFLICT);
    assert_eq!(r.body["existing_id"], id);
    assert_eq!(r.body["field"], "value");
    let r = get(&app, &ana, &format!("/api/v1/observables/{id}")).await;
    assert_eq!(
        r.body["tags"],
        json!(["c2", "phishing"]),
        "unchanged by the 409"
    );

    // One seen in an alert first keeps origin `alert`; adding it by hand is a 409 too.
    app.alert(
        acme,
        "generic",
        generic("a-1", "scan from 198.51.100.23", &[]),
    )
    .await;
    let seen = obs_id(&app, &ana, "ipv4", "198.51.100.23").await;
    let r = post(
        &app,
        &ana,
        json!({"kind": "ipv4", "value": "198.51.100[.]23"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["existing_id"], seen);
    // The same value in another tenant is another observable.
    let r = post(
        &app,
        &app.admin_token,
        json!({"kind": "ipv4", "value": "198.51.100.23", "tenant_id": globex}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["tenant_id"], globex.to_string());

    // A manual observable later seen in an alert counts the sighting and stays manual.
    let alert = app
        .alert(
            acme,
            "generic",
            generic("a-2", "phish link https://evil.example.com/Gate.php", &[]),
        )
        .await;
    let r = get(&app, &ana, &format!("/api/v1/observables/{id}")).await;
    assert_eq!(r.body["sightings"], 1);
    assert_eq!(r.body["origin"], "manual");
    assert_eq!(r.body["alerts"][0]["id"], alert);

    // Private addresses are flagged as ingestion flags them.
    let r = post(&app, &ana, json!({"kind": "ipv4", "value": "10.1.2.3"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["is_private"], true);

    // Bad input names the field and stores nothing.
    let before = get(&app, &ana, "/api/v1/observables?limit=500").await;
    for (body, field) in [
        (json!({"kind": "hostname", "value": "web-01"}), "kind"),
        (json!({"kind": "IPV4", "value": "203.0.113.1"}), "kind"),
        (json!({"value": "203.0.113.1"}), "kind"),
        (json!({"kind": "ipv4"}), "value"),
        (json!({"kind": "ipv4", "value": "not an ip"}), "value"),
        (json!({"kind": "ipv4", "value": ""}), "value"),
        (
            json!({"kind": "domain", "value": "intranet.local"}),
            "value",
        ),
        (
            json!({"kind": "sha256", "value": "d41d8cd98f00b204e9800998ecf8427e"}),
            "value",
        ),
        (json!({"kind": "cve", "value": "CVE-21-1"}), "value"),
        (json!({"kind": "ipv4", "value": 42}), "value"),
        (
            json!({"kind": "url", "value": "http://evil.example.com/a\u{0}b"}),
            "value",
        ),
        (
            json!({"kind": "ipv4", "value": "203.0.113.1", "description": "a\u{0}b"}),
            "description",
        ),
        (
            json!({"kind": "ipv4", "value": "203.0.113.1", "tenant_id": uuid::Uuid::now_v7()}),
            "tenant_id",
        ),
        (
            json!({"kind": "ipv4", "value": "203.0.113.1", "tags": [""]}),
            "tags",
        ),
        (
            json!({"kind": "ipv4", "value": "203.0.113.1", "tags": "x"}),
            "tags",
        ),
        (
            json!({"kind": "ipv4", "value": "203.0.113.1", "tags": vec!["t"; 51]}),
            "tags",
        ),
        (
            json!({"kind": "ipv4", "value": "203.0.113.1", "description": "x".repeat(10_001)}),
            "description",
        ),
        (
            json!({"kind": "ipv4", "value": "203.0.113.1", "tenant_id": globex}),
            "tenant_id",
        ),
        (
            json!({"kind": "ipv4", "value": "203.0.113.1", "tenant_id": "x"}),
            "tenant_id",
        ),
        (
            json!({"kind": "ipv4", "value": "203.0.113.1", "origin": "feed"}),
            "",
        ),
    ] {
        let r = post(&app, &ana, body.clone()).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        if !field.is_empty() {
            assert_eq!(r.body["field"], field, "{body}: {}", r.body);
        }
    }
    // Also for the platform admin, whose scope has no tenant list: an unknown tenant is a 422.
    let r = post(
        &app,
        &app.admin_token,
        json!({"kind": "ipv4", "value": "203.0.113.1", "tenant_id": uuid::Uuid::now_v7()}),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "tenant_id");
    let after = get(&app, &ana, "/api/v1/observables?limit=500").await;
    assert_eq!(values(&after), values(&before), "nothing half-written");

    // The addition is in the audit trail, with who made it.
    let r = get(
        &app,
        &app.admin_token,
        &format!("/api/v1/audit/events?event_type=action.observable.created&target_id={id}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", r.body);
    let rec = &items[0]["record"];
    assert_eq!(rec["actor"]["name"], "ana");
    assert_eq!(rec["target"]["kind"], "observable");
    assert_eq!(
        rec["summary"]["after"]["value"],
        "https://evil.example.com/Gate.php"
    );
    assert_eq!(rec["summary"]["after"]["origin"], "manual");
    assert_eq!(items[0]["tenant_id"], acme.to_string());
}

#[tokio::test]
async fn changes_are_validated_and_audited() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (_, ana) = app.user("ana", Role::Analyst, acme).await;
    let (_, viewer) = app.user("vic", Role::Viewer, acme).await;
    app.alert(acme, "generic", generic("a", "beacon to 203.0.113.77", &[]))
        .await;
    let id = obs_id(&app, &ana, "ipv4", "203.0.113.77").await;

    let r = patch(
        &app,
        &ana,
        &id,
        json!({"reputation_score": 87, "verdict": "malicious", "tags": ["apt", "c2"],
               "description": "known C2"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["reputation_score"], 87);
    assert_eq!(r.body["verdict"], "malicious");
    assert_eq!(r.body["tags"], json!(["apt", "c2"]));
    assert_eq!(r.body["description"], "known C2");
    assert_eq!(r.body["value"], "203.0.113.77");
    assert_eq!(r.body["origin"], "alert");

    // Left out: unchanged; null: cleared.
    let r = patch(&app, &ana, &id, json!({"verdict": null, "tags": []})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["verdict"].is_null());
    assert_eq!(r.body["tags"], json!([]));
    assert_eq!(r.body["reputation_score"], 87);
    assert_eq!(r.body["description"], "known C2");
    let r = patch(&app, &ana, &id, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["reputation_score"], 87);
    for score in [0, 100] {
        let r = patch(&app, &ana, &id, json!({"reputation_score": score})).await;
        assert_eq!(r.body["reputation_score"], score);
    }
    for verdict in ["malicious", "suspicious", "benign", "unknown"] {
        let r = patch(&app, &ana, &id, json!({"verdict": verdict})).await;
        assert_eq!(r.body["verdict"], verdict);
    }

    // Bad input: 422 naming the field, nothing changed.
    let before = get(&app, &ana, &format!("/api/v1/observables/{id}")).await;
    for (body, field) in [
        (json!({"reputation_score": 101}), "reputation_score"),
        (json!({"reputation_score": -1}), "reputation_score"),
        (json!({"reputation_score": 50.5}), "reputation_score"),
        (json!({"reputation_score": "high"}), "reputation_score"),
        (json!({"verdict": "evil", "reputation_score": 5}), "verdict"),
        (json!({"verdict": 1}), "verdict"),
        (json!({"tags": [" "], "verdict": "benign"}), "tags"),
        (json!({"tags": "apt"}), "tags"),
        (json!({"tags": [1]}), "tags[0]"),
        (json!({"description": "x".repeat(10_001)}), "description"),
        (json!({"description": "a\u{0}b"}), "description"),
        (json!({"value": "203.0.113.78"}), ""),
        (json!({"kind": "ipv6"}), ""),
    ] {
        let r = patch(&app, &ana, &id, body.clone()).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        if !field.is_empty() {
            assert_eq!(r.body["field"], field, "{body}: {}", r.body);
        }
    }
    let r = app
        .raw(
            Request::builder()
                .method(Method::PATCH)
                .uri(format!("/api/v1/observables/{id}"))
                .header("authorization", format!("Bearer {ana}"))
                .header("content-type", "application/json")
                .body(Body::from("{\"verdict\": "))
                .expect("request"),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST);
    let after = get(&app, &ana, &format!("/api/v1/observables/{id}")).await;
    assert_eq!(after.body, before.body, "nothing half-written");

    // Viewers read but do not change.
    assert_problem(
        &patch(&app, &viewer, &id, json!({"verdict": "benign"})).await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(
        get(&app, &viewer, &format!("/api/v1/observables/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_problem(
        &patch(
            &app,
            &ana,
            &uuid::Uuid::now_v7().to_string(),
            json!({"verdict": "benign"}),
        )
        .await,
        StatusCode::NOT_FOUND,
    );

    // Each change is one audit record with what it was and what it became.
    let r = get(
        &app,
        &app.admin_token,
        &format!(
            "/api/v1/audit/events?event_type=decision.observable.updated&target_id={id}&limit=500"
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().expect("items");
    assert_eq!(
        items.len(),
        1 + 1 + 2 + 4,
        "no record for the empty patch: {}",
        r.body
    );
    let first = items
        .iter()
        .find(|e| e["record"]["summary"]["after"]["reputation_score"] == 87)
        .expect("first change");
    assert_eq!(first["record"]["actor"]["name"], "ana");
    assert!(first["record"]["summary"]["before"]["reputation_score"].is_null());
    assert_eq!(first["record"]["summary"]["after"]["verdict"], "malicious");
    assert_eq!(
        first["record"]["summary"]["after"]["tags"],
        json!(["apt", "c2"])
    );
    assert_eq!(first["record"]["summary"]["after"]["description_bytes"], 8);
    let r = get(&app, &app.admin_token, "/api/v1/audit/verify").await;
    assert_eq!(r.body["ok"], true, "{}", r.body);
}

#[tokio::test]
async fn tag_rules_hide_alerts_in_sightings_and_what_only_they_carry() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (_, viewer) = app.user("vic", Role::Viewer, acme).await;
    let (insider, insider_token) = app.user("ines", Role::Analyst, acme).await;
    let (_, tenant_admin) = app.user("root", Role::Admin, acme).await;
    let soc = app
        .alert(
            acme,
            "generic",
            generic("soc", "beacon to 203.0.113.10", &["soc"]),
        )
        .await;
    let secret = app
        .alert(
            acme,
            "generic",
            generic(
                "secret",
                "beacon to 203.0.113.10 and 203.0.113.20",
                &["secret"],
            ),
        )
        .await;
    app.alert(
        acme,
        "generic",
        generic("untagged", "beacon to 203.0.113.30", &[]),
    )
    .await;
    let shared = obs_id(&app, &app.admin_token, "ipv4", "203.0.113.10").await;
    let only_secret = obs_id(&app, &app.admin_token, "ipv4", "203.0.113.20").await;
    let r = post(
        &app,
        &insider_token,
        json!({"kind": "domain", "value": "manual.example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // An incident holding only the secret alert.
    let inc = uuid::Uuid::now_v7().to_string();
    let now = "'2026-01-05T10:00:00+00:00'";
    let t = id_lit(&acme.to_string());
    sql(
        &app,
        &format!(
            "INSERT INTO incidents (id, tenant_id, number, title, severity, status, created_at, updated_at) \
             VALUES ({}, {t}, 1, 'Secret op', 'high', 'open', {now}, {now})",
            id_lit(&inc)
        ),
    )
    .await;
    sql(
        &app,
        &format!(
            "INSERT INTO incident_alerts (incident_id, alert_id, tenant_id, linked_at) VALUES ({}, {}, {t}, {now})",
            id_lit(&inc),
            id_lit(&secret)
        ),
    )
    .await;

    app.store
        .set_tag_access(
            &ChangeCtx::system("test"),
            &Scope::AllTenants,
            acme,
            &TagAccessConfig {
                enabled: true,
                untagged: Untagged::AdminOnly,
                default_tag: None,
                rules: vec![
                    TagRule {
                        subject: "role:viewer".into(),
                        tag: "soc".into(),
                    },
                    TagRule {
                        subject: format!("user:{}", insider.id),
                        tag: "secret".into(),
                    },
                ],
            },
        )
        .await
        .expect("tag access");

    // The viewer sees the soc alert as the sighting, no incident, and nothing carried only by
    // alerts hidden from them; manual observables stay visible.
    let r = get(&app, &viewer, &format!("/api/v1/observables/{shared}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["alerts_total"], 1);
    assert_eq!(r.body["alerts"][0]["id"], soc);
    assert_eq!(r.body["incidents_total"], 0);
    assert_eq!(r.body["incidents"], json!([]));
    assert!(!r.body.to_string().contains(&secret));
    let r = get(&app, &viewer, "/api/v1/observables").await;
    assert_eq!(
        sorted(values(&r)),
        ["203.0.113.10", "manual.example.com"],
        "{}",
        r.body
    );
    assert_problem(
        &get(&app, &viewer, &format!("/api/v1/observables/{only_secret}")).await,
        StatusCode::NOT_FOUND,
    );
    let r = patch(
        &app,
        &insider_token,
        &only_secret,
        json!({"verdict": "benign"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Someone allowed the secret tag sees it and its incident; an admin sees everything.
    let r = get(
        &app,
        &insider_token,
        &format!("/api/v1/observables/{shared}"),
    )
    .await;
    assert_eq!(r.body["alerts_total"], 1);
    assert_eq!(r.body["alerts"][0]["id"], secret);
    assert_eq!(r.body["incidents"][0]["id"], inc);
    let r = get(
        &app,
        &tenant_admin,
        &format!("/api/v1/observables/{shared}"),
    )
    .await;
    assert_eq!(r.body["alerts_total"], 2);
    assert_eq!(r.body["incidents_total"], 1);
    let r = get(&app, &tenant_admin, "/api/v1/observables").await;
    assert_eq!(values(&r).len(), 4);
}

#[tokio::test]
async fn enrichment_by_hand_settings_and_reputation_on_alerts_and_incidents() {
    use bulwark_store::enrichment::{LookupKey, LookupOutcome};
    let app = TestApp::new().await;
    let admin = app.admin_token.clone();
    let (_, analyst) = app.user("ana", Role::Analyst, app.platform).await;
    let alert = app
        .alert(
            app.platform,
            "generic",
            generic(
                "e-1",
                "beacon to 45.33.32.156 and 10.1.2.3, allowed 45.33.33.9",
                &[],
            ),
        )
        .await;
    let public = obs_id(&app, &admin, "ipv4", "45.33.32.156").await;
    let private = obs_id(&app, &admin, "ipv4", "10.1.2.3").await;
    let listed = obs_id(&app, &admin, "ipv4", "45.33.33.9").await;
    let enrich = |id: &str| format!("/api/v1/observables/{id}/enrich");

    // No intel integration yet: nothing can look it up.
    let r = app
        .call(Method::POST, &enrich(&public), Some(&analyst), None)
        .await;
    assert_problem(&r, StatusCode::CONFLICT);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no enabled enrichment integration")),
        "{}",
        r.body
    );

    let r = app
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&admin),
            Some(json!({"type": "virustotal", "name": "vt", "enrichment": true, "secrets": {"api_key": "k-123"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let vt: uuid::Uuid = r.body["id"].as_str().expect("id").parse().expect("uuid");

    // Settings: validated field by field, then saved.
    let settings = format!("/api/v1/tenants/{}/enrichment", app.platform);
    let r = get(&app, &admin, &settings).await;
    assert_eq!(r.body, json!({"allow_list": [], "cache_ttl_secs": 86400}));
    for (body, field) in [
        (json!({"cache_ttl_secs": 1}), "cache_ttl_secs"),
        (json!({"allow_list": ["10.0.0.0/40"]}), "allow_list"),
        (json!({"allow_list": ["a b"]}), "allow_list"),
        (json!({"allow_lists": []}), ""),
    ] {
        let r = app
            .call(Method::PUT, &settings, Some(&admin), Some(body.clone()))
            .await;
        assert!(r.status.is_client_error(), "{body}: {}", r.body);
        if !field.is_empty() {
            assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(r.body["field"], field, "{body}: {}", r.body);
        }
    }
    let r = app
        .call(
            Method::PUT,
            &settings,
            Some(&admin),
            Some(json!({"allow_list": [" 45.33.33.0/24 "], "cache_ttl_secs": 600})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        get(&app, &admin, &settings).await.body,
        json!({"allow_list": ["45.33.33.0/24"], "cache_ttl_secs": 600})
    );
    let r = app
        .call(Method::PUT, &settings, Some(&analyst), Some(json!({})))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN);

    // Private and allow-listed values are refused with the reason; a public one is queued.
    let r = app
        .call(Method::POST, &enrich(&private), Some(&analyst), None)
        .await;
    assert_problem(&r, StatusCode::CONFLICT);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("private or reserved")),
        "{}",
        r.body
    );
    let r = app
        .call(Method::POST, &enrich(&listed), Some(&analyst), None)
        .await;
    assert_problem(&r, StatusCode::CONFLICT);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("allow-list (`45.33.33.0/24`)")),
        "{}",
        r.body
    );
    let r = app
        .call(Method::POST, &enrich(&public), Some(&analyst), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["integrations"], json!(["vt"]));
    assert_eq!(r.body["job_ids"].as_array().map(Vec::len), Some(1));
    let r = app
        .call(
            Method::POST,
            &enrich(&uuid::Uuid::now_v7().to_string()),
            Some(&analyst),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND);
    let audit = get(&app, &admin, "/api/v1/audit/events?limit=100").await;
    assert!(
        audit
            .body
            .to_string()
            .contains("\"requested\":\"enrichment\""),
        "{}",
        audit.body
    );

    // What a lookup found shows on the observable, the alert and the incident.
    let key = LookupKey {
        tenant_id: app.platform,
        kind: "ipv4".into(),
        value: "45.33.32.156".into(),
        integration_id: vt,
        integration: "vt".into(),
        type_name: "virustotal".into(),
        action: "lookup_ip".into(),
    };
    assert!(
        app.store
            .claim_lookup(&key, std::time::Duration::from_secs(60), true)
            .await
            .expect("claim")
    );
    app.store
        .record_lookup(
            &key,
            LookupOutcome::Found {
                verdict: "malicious".into(),
                score: 73,
                result: json!({"malicious": 7}),
                ttl_secs: 600,
            },
        )
        .await
        .expect("record");
    let o = get(&app, &analyst, &format!("/api/v1/observables/{public}")).await;
    assert_eq!(
        (
            o.body["verdict"].clone(),
            o.body["reputation_score"].clone()
        ),
        (json!("malicious"), json!(73))
    );
    assert_eq!(o.body["verdict_origin"], "enrichment");
    assert_eq!(o.body["reputation_sources"][0]["integration"], "vt");
    assert_eq!(o.body["reputation_sources"][0]["type"], "virustotal");
    assert_eq!(
        o.body["enrichment"]["results"][0]["result"],
        json!({"malicious": 7})
    );
    assert!(
        o.body["enrichment"]["results"][0]
            .get("locked_until")
            .is_none()
    );
    let listed_page = get(&app, &analyst, "/api/v1/observables?verdict=malicious").await;
    assert_eq!(values(&listed_page), ["45.33.32.156"]);
    let a = get(&app, &analyst, &format!("/api/v1/alerts/{alert}")).await;
    let ao = a.body["observables"]
        .as_array()
        .expect("observables")
        .iter()
        .find(|x| x["value"] == "45.33.32.156")
        .cloned()
        .expect("public");
    assert_eq!(
        (ao["verdict"].clone(), ao["reputation_score"].clone()),
        (json!("malicious"), json!(73))
    );
    assert_eq!(ao["reputation_sources"][0]["verdict"], "malicious");
    let inc = app
        .call(
            Method::POST,
            "/api/v1/incidents",
            Some(&analyst),
            Some(json!({"title": "C2", "alert_ids": [alert]})),
        )
        .await;
    assert_eq!(inc.status, StatusCode::CREATED, "{}", inc.body);
    let io = inc.body["observables"]
        .as_array()
        .expect("observables")
        .iter()
        .find(|x| x["value"] == "45.33.32.156")
        .cloned()
        .expect("public");
    assert_eq!(io["id"], json!(public));
    assert_eq!(
        (io["verdict"].clone(), io["alert_count"].clone()),
        (json!("malicious"), json!(1))
    );
    assert_eq!(io["reputation_sources"][0]["score"], 73);

    // An analyst's verdict is theirs: a later lookup does not overwrite it.
    let r = patch(&app, &analyst, &public, json!({"verdict": "benign"})).await;
    assert_eq!(
        (r.body["verdict"].clone(), r.body["verdict_origin"].clone()),
        (json!("benign"), json!("analyst"))
    );
    assert!(
        app.store
            .claim_lookup(&key, std::time::Duration::from_secs(60), true)
            .await
            .expect("claim")
    );
    app.store
        .record_lookup(
            &key,
            LookupOutcome::Found {
                verdict: "malicious".into(),
                score: 80,
                result: json!({}),
                ttl_secs: 600,
            },
        )
        .await
        .expect("record");
    let o = get(&app, &analyst, &format!("/api/v1/observables/{public}")).await;
    assert_eq!(o.body["verdict"], "benign");
    assert_eq!(o.body["reputation_sources"][0]["score"], 80);
}
