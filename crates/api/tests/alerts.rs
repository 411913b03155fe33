//! The alert queue over HTTP: filters, pagination, one alert in full, tenant scope, bad input.

mod common;

use common::*;

async fn list(app: &TestApp, token: &str, query: &str) -> Resp {
    app.call(
        Method::GET,
        &format!("/api/v1/alerts{query}"),
        Some(token),
        None,
    )
    .await
}

fn titles(r: &Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {}", r.body))
        .iter()
        .map(|a| a["title"].as_str().expect("title").to_string())
        .collect()
}

#[tokio::test]
async fn the_queue_filters_pages_and_stays_in_the_tenant() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (_, analyst) = app.user("ana", Role::Analyst, acme).await;
    let brute = app
        .alert(acme, "wazuh", wazuh_alert("q-1", "203.0.113.9"))
        .await;
    app.alert(
        acme,
        "generic",
        json!({"title": "PowerShell download cradle", "severity": "high", "source_id": "g-1",
               "hostname": "ws-042", "description": "powershell IEX from http://evil.example.net/a.ps1",
               "tags": ["execution", "powershell"]}),
    )
    .await;
    app.alert(
        acme,
        "generic",
        json!({"title": "100% CPU_on host", "severity": "low", "source_id": "g-2", "hostname": "db-1"}),
    )
    .await;
    app.alert(
        globex,
        "generic",
        json!({"title": "Globex secret", "severity": "high", "source_id": "x-1"}),
    )
    .await;

    // The analyst sees their tenant only, newest first.
    let r = list(&app, &analyst, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        titles(&r),
        [
            "100% CPU_on host",
            "PowerShell download cradle",
            "sshd: brute force"
        ]
    );
    assert!(r.body["next_cursor"].is_null());
    let r = list(&app, &analyst, &format!("?tenant_id={globex}")).await;
    assert_eq!(
        titles(&r),
        Vec::<String>::new(),
        "another tenant is empty, not an error"
    );
    let r = list(&app, &app.admin_token, "?severity=high").await;
    assert_eq!(titles(&r).len(), 2, "the platform admin sees both tenants");

    for (query, want) in [
        (
            "?severity=critical,low",
            vec!["100% CPU_on host", "sshd: brute force"],
        ),
        (
            "?status=new&source=generic",
            vec!["100% CPU_on host", "PowerShell download cradle"],
        ),
        ("?q=POWERSHELL", vec!["PowerShell download cradle"]),
        ("?q=evil.example", vec!["PowerShell download cradle"]),
        ("?q=100%25", vec!["100% CPU_on host"]),
        ("?q=U_o", vec!["100% CPU_on host"]),
        ("?q=1%25C", vec![]),
        ("?q=CP__o", vec![]),
        ("?tag=powershell", vec!["PowerShell download cradle"]),
        ("?hostname=db-1", vec!["100% CPU_on host"]),
        ("?ip=203.0.113.9", vec!["sshd: brute force"]),
        ("?observable=203.0.113.9", vec!["sshd: brute force"]),
        (
            "?observable=evil.example.net",
            vec!["PowerShell download cradle"],
        ),
        ("?status=resolved", vec![]),
        ("?sort=oldest&limit=1", vec!["sshd: brute force"]),
    ] {
        let r = list(&app, &analyst, query).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        assert_eq!(titles(&r), want, "{query}");
    }

    // Pages follow the cursor without repeats.
    let p1 = list(&app, &analyst, "?limit=2").await;
    assert_eq!(titles(&p1).len(), 2);
    let cursor = p1.body["next_cursor"].as_str().expect("cursor");
    let p2 = list(&app, &analyst, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(titles(&p2), ["sshd: brute force"]);
    assert!(p2.body["next_cursor"].is_null());

    // One alert in full: the payload as received and its observables.
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/alerts/{brute}"),
            Some(&analyst),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], brute);
    assert_eq!(r.body["status"], "new");
    assert_eq!(r.body["tenant_id"], acme.to_string());
    let raw: Value =
        serde_json::from_str(r.body["raw_payload"].as_str().expect("raw")).expect("json");
    assert_eq!(raw, wazuh_alert("q-1", "203.0.113.9"));
    assert!(
        r.body["observables"]
            .as_array()
            .expect("observables")
            .iter()
            .any(|o| o["kind"] == "ipv4" && o["value"] == "203.0.113.9" && o["sightings"] == 1),
        "{}",
        r.body["observables"]
    );
    assert_eq!(r.body["normalized"]["source"], "wazuh");

    // Bad input names the field.
    for (query, field) in [
        ("?status=open", "status"),
        ("?severity=urgent", "severity"),
        ("?determination=evil", "determination"),
        ("?sort=random", "sort"),
        ("?limit=0", "limit"),
        ("?q=", "q"),
        (
            "?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "until",
        ),
        ("?cursor=not-a-uuid", "cursor"),
        ("?colour=red", "colour"),
    ] {
        let r = list(&app, &analyst, query).await;
        assert!(r.status.is_client_error(), "{query}: {}", r.body);
        assert_eq!(r.body["field"], field, "{query}: {}", r.body);
    }
}
