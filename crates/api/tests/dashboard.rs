//! Dashboard statistics over HTTP, checked against alerts created and changed here: counts,
//! open vs closed, MTTA / MTTR, the series, tenant scope, tag rules and bad input.

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

/// A timestamp as both backends store it (SQLite: RFC 3339 text in UTC, as sqlx writes it).
fn ts(t: &str) -> String {
    format!("'{t}+00:00'")
}

async fn sql(app: &TestApp, q: &str) {
    exec_raw(&app._db.url, q)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
}

/// Stores an alert, then sets its triage fields as the triage routes would have.
struct Fixture<'a> {
    source: &'a str,
    severity: &'a str,
    tags: &'a [&'a str],
    first_seen: &'a str,
    status: &'a str,
    acknowledged_at: Option<&'a str>,
    closed_at: Option<&'a str>,
    deleted: bool,
}

impl Default for Fixture<'_> {
    fn default() -> Self {
        Fixture {
            source: "generic",
            severity: "high",
            tags: &[],
            first_seen: "2020-01-01T10:15:00",
            status: "new",
            acknowledged_at: None,
            closed_at: None,
            deleted: false,
        }
    }
}

async fn alert(app: &TestApp, tenant: TenantId, n: usize, f: Fixture<'_>) -> String {
    let payload = if f.source == "wazuh" {
        wazuh_alert(&format!("w-{n}"), "203.0.113.9")
    } else {
        json!({"title": format!("alert {n}"), "severity": f.severity, "source_id": format!("s-{n}"),
               "tags": f.tags})
    };
    let id = app.alert(tenant, f.source, payload).await;
    let opt = |v: Option<&str>| v.map_or("NULL".to_string(), ts);
    sql(
        app,
        &format!(
            "UPDATE alerts SET severity = '{}', first_seen = {}, status = '{}', acknowledged_at = {}, \
             closed_at = {}, deleted_at = {} WHERE id = {}",
            f.severity,
            ts(f.first_seen),
            f.status,
            opt(f.acknowledged_at),
            opt(f.closed_at),
            if f.deleted { ts("2020-01-02T00:00:00") } else { "NULL".into() },
            id_lit(&id)
        ),
    )
    .await;
    id
}

async fn stats(app: &TestApp, token: &str, query: &str) -> Resp {
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/dashboard/stats{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
    r
}

fn series(r: &Resp) -> Vec<(String, i64)> {
    r.body["series"]
        .as_array()
        .unwrap_or_else(|| panic!("series: {}", r.body))
        .iter()
        .map(|p| {
            (
                p["start"].as_str().expect("start").to_string(),
                p["count"].as_i64().expect("count"),
            )
        })
        .collect()
}

fn close_to(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 0.01)
}

const RANGE: &str = "?since=2020-01-01T00:00:00Z&until=2020-01-04T00:00:00Z";

#[tokio::test]
async fn the_numbers_match_the_alerts() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (_, ana) = app.user("ana", Role::Analyst, acme).await;
    let fixtures = [
        Fixture {
            severity: "high",
            first_seen: "2020-01-01T10:15:00",
            ..Fixture::default()
        },
        // Acknowledged after 600 s.
        Fixture {
            severity: "critical",
            first_seen: "2020-01-01T11:30:00",
            status: "triaged",
            acknowledged_at: Some("2020-01-01T11:40:00"),
            ..Fixture::default()
        },
        // Acknowledged after 1200 s, resolved after 10800 s.
        Fixture {
            source: "wazuh",
            severity: "low",
            first_seen: "2020-01-02T09:00:00",
            status: "resolved",
            acknowledged_at: Some("2020-01-02T09:20:00"),
            closed_at: Some("2020-01-02T12:00:00"),
            ..Fixture::default()
        },
        // Closed as a false positive after 3600 s without an acknowledgement.
        Fixture {
            severity: "medium",
            first_seen: "2020-01-03T00:00:00",
            status: "false_positive",
            closed_at: Some("2020-01-03T01:00:00"),
            ..Fixture::default()
        },
        // Deleted: counts nowhere.
        Fixture {
            severity: "high",
            first_seen: "2020-01-02T05:00:00",
            status: "resolved",
            acknowledged_at: Some("2020-01-02T05:01:00"),
            closed_at: Some("2020-01-02T05:02:00"),
            deleted: true,
            ..Fixture::default()
        },
        // First seen before the range, acknowledged (7200 s) and closed in it: counts in MTTA
        // only (it was reopened, so it is not resolved any more).
        Fixture {
            severity: "info",
            first_seen: "2019-12-31T23:00:00",
            status: "in_progress",
            acknowledged_at: Some("2020-01-01T01:00:00"),
            closed_at: Some("2020-01-01T02:00:00"),
            ..Fixture::default()
        },
        // After the range: counts nowhere.
        Fixture {
            first_seen: "2020-01-04T00:00:00",
            ..Fixture::default()
        },
    ];
    for (n, f) in fixtures.into_iter().enumerate() {
        alert(&app, acme, n, f).await;
    }
    alert(
        &app,
        globex,
        100,
        Fixture {
            first_seen: "2020-01-02T08:00:00",
            status: "resolved",
            acknowledged_at: Some("2020-01-02T08:00:10"),
            closed_at: Some("2020-01-02T08:00:20"),
            ..Fixture::default()
        },
    )
    .await;

    let r = stats(&app, &ana, RANGE).await;
    let b = &r.body;
    assert_eq!(b["since"], "2020-01-01T00:00:00Z");
    assert_eq!(b["until"], "2020-01-04T00:00:00Z");
    assert_eq!(b["bucket"], "day");
    assert_eq!(
        (
            b["total"].as_i64(),
            b["open"].as_i64(),
            b["closed"].as_i64()
        ),
        (Some(4), Some(2), Some(2)),
        "{b}"
    );
    assert_eq!(
        b["by_severity"],
        json!({"critical": 1, "high": 1, "medium": 1, "low": 1, "info": 0})
    );
    assert_eq!(
        b["by_status"],
        json!({"new": 1, "triaged": 1, "in_progress": 0, "escalated": 0, "resolved": 1, "false_positive": 1})
    );
    assert_eq!(b["by_source"], json!({"generic": 3, "wazuh": 1}));
    assert_eq!(b["by_tenant"], json!([{"tenant_id": acme, "count": 4}]));
    assert_eq!(b["mtta"]["samples"], 3, "{}", b["mtta"]);
    assert!(
        close_to(&b["mtta"]["mean_seconds"], (600.0 + 1200.0 + 7200.0) / 3.0),
        "{}",
        b["mtta"]
    );
    assert_eq!(b["mttr"]["samples"], 2, "{}", b["mttr"]);
    assert!(
        close_to(&b["mttr"]["mean_seconds"], (10800.0 + 3600.0) / 2.0),
        "{}",
        b["mttr"]
    );
    assert_eq!(
        series(&r),
        [
            ("2020-01-01T00:00:00Z".to_string(), 2),
            ("2020-01-02T00:00:00Z".to_string(), 1),
            ("2020-01-03T00:00:00Z".to_string(), 1),
        ]
    );

    // Hourly, zero-filled, over part of the first day.
    let r = stats(
        &app,
        &ana,
        "?since=2020-01-01T09:00:00Z&until=2020-01-01T12:30:00Z&bucket=hour",
    )
    .await;
    assert_eq!(r.body["total"], 2);
    assert_eq!(
        series(&r),
        [
            ("2020-01-01T09:00:00Z".to_string(), 0),
            ("2020-01-01T10:00:00Z".to_string(), 1),
            ("2020-01-01T11:00:00Z".to_string(), 1),
            ("2020-01-01T12:00:00Z".to_string(), 0),
        ]
    );
    assert_eq!(r.body["mtta"]["samples"], 1);
    assert!(close_to(&r.body["mtta"]["mean_seconds"], 600.0));
    assert_eq!(r.body["mttr"]["samples"], 0);
    assert!(r.body["mttr"]["mean_seconds"].is_null());

    // The platform admin sees both tenants, and can narrow to one; the analyst cannot widen.
    let r = stats(&app, &app.admin_token, RANGE).await;
    assert_eq!(r.body["total"], 5);
    assert_eq!(
        r.body["by_tenant"],
        json!([{"tenant_id": acme, "count": 4}, {"tenant_id": globex, "count": 1}])
    );
    assert_eq!(r.body["mttr"]["samples"], 3);
    assert!(close_to(
        &r.body["mttr"]["mean_seconds"],
        (10800.0 + 3600.0 + 20.0) / 3.0
    ));
    let r = stats(
        &app,
        &app.admin_token,
        &format!("{RANGE}&tenant_id={globex}"),
    )
    .await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["mtta"]["samples"], 1);
    let r = stats(&app, &ana, &format!("{RANGE}&tenant_id={globex}")).await;
    assert_eq!(r.body["total"], 0);
    assert_eq!(r.body["mtta"]["samples"], 0);
    assert_eq!(r.body["by_tenant"], json!([]));
    assert_eq!(series(&r).iter().map(|p| p.1).sum::<i64>(), 0);
    assert_eq!(series(&r).len(), 3, "zero-filled even when empty");

    // Default: the last 7 days, by day.
    app.alert(
        acme,
        "generic",
        json!({"title": "fresh", "source_id": "fresh"}),
    )
    .await;
    let r = stats(&app, &ana, "").await;
    assert_eq!(r.body["total"], 1, "{}", r.body);
    assert_eq!(r.body["by_status"]["new"], 1);
    assert_eq!(r.body["bucket"], "day");
    let points = series(&r);
    assert_eq!(points.len(), 8, "{points:?}");
    assert_eq!(points.iter().map(|p| p.1).sum::<i64>(), 1);
    assert_eq!(points.last().map(|p| p.1), Some(1));
    let since =
        chrono::DateTime::parse_from_rfc3339(r.body["since"].as_str().expect("since")).expect("ts");
    let until =
        chrono::DateTime::parse_from_rfc3339(r.body["until"].as_str().expect("until")).expect("ts");
    assert_eq!(until - since, chrono::Duration::days(7));
}

#[tokio::test]
async fn tag_rules_apply_to_every_number() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    let (_, viewer) = app.user("vic", Role::Viewer, acme).await;
    let (_, tenant_admin) = app.user("root", Role::Admin, acme).await;
    let (reader_key, _) = app.key(&["read"], acme).await;
    alert(
        &app,
        acme,
        1,
        Fixture {
            tags: &["soc"],
            severity: "high",
            status: "resolved",
            acknowledged_at: Some("2020-01-01T10:25:00"),
            closed_at: Some("2020-01-01T11:15:00"),
            ..Fixture::default()
        },
    )
    .await;
    let secret = alert(
        &app,
        acme,
        2,
        Fixture {
            tags: &["secret"],
            severity: "critical",
            first_seen: "2020-01-02T10:00:00",
            status: "false_positive",
            acknowledged_at: Some("2020-01-02T10:00:05"),
            closed_at: Some("2020-01-02T10:00:10"),
            ..Fixture::default()
        },
    )
    .await;
    alert(
        &app,
        acme,
        3,
        Fixture {
            severity: "low",
            first_seen: "2020-01-03T10:00:00",
            ..Fixture::default()
        },
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
                rules: vec![TagRule {
                    subject: "role:viewer".into(),
                    tag: "soc".into(),
                }],
            },
        )
        .await
        .expect("tag access");

    let r = stats(&app, &viewer, RANGE).await;
    let b = &r.body;
    assert_eq!(b["total"], 1, "{b}");
    assert_eq!(b["closed"], 1);
    assert_eq!(b["by_severity"]["critical"], 0);
    assert_eq!(b["by_severity"]["low"], 0);
    assert_eq!(b["by_status"]["false_positive"], 0);
    assert_eq!(b["mtta"]["samples"], 1);
    assert!(close_to(&b["mtta"]["mean_seconds"], 600.0));
    assert_eq!(b["mttr"]["samples"], 1);
    assert!(close_to(&b["mttr"]["mean_seconds"], 3600.0));
    assert_eq!(
        series(&r).iter().map(|p| p.1).collect::<Vec<_>>(),
        [1, 0, 0]
    );

    // A read-only API key is not in any allow-list: it sees nothing of this tenant.
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!("/api/v1/dashboard/stats{RANGE}"))
        .header("x-api-key", &reader_key)
        .body(Body::empty())
        .expect("request");
    let r = app.raw(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 0);
    assert_eq!(r.body["mttr"]["samples"], 0);

    let r = stats(&app, &tenant_admin, RANGE).await;
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["mtta"]["samples"], 2);
    assert_eq!(r.body["mttr"]["samples"], 2);

    // RANGE is whole hours: the viewer's numbers above came from the per-tag-set roll-up.
    // Retagging the hidden alert through the API shows it to the viewer, and only it.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/alerts/{secret}"),
            Some(&tenant_admin),
            Some(json!({"tags": ["soc", "reviewed"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = stats(&app, &viewer, RANGE).await;
    let b = &r.body;
    assert_eq!(b["total"], 2, "{b}");
    assert_eq!(b["by_severity"]["critical"], 1);
    assert_eq!(b["by_severity"]["low"], 0);
    assert_eq!(b["mttr"]["samples"], 2);
    assert_eq!(
        series(&r).iter().map(|p| p.1).collect::<Vec<_>>(),
        [1, 1, 0]
    );
    // The same range with unaligned ends (partial hours counted from the alerts) agrees.
    let r = stats(
        &app,
        &viewer,
        "?since=2020-01-01T00:00:01Z&until=2020-01-03T23:59:59Z",
    )
    .await;
    assert_eq!(r.body["total"], 2, "{}", r.body);
}

#[tokio::test]
async fn bad_ranges_name_the_field() {
    let app = TestApp::new().await;
    let (_, viewer) = app.user("vic", Role::Viewer, app.platform).await;
    for (query, field) in [
        (
            "?since=2020-01-02T00:00:00Z&until=2020-01-01T00:00:00Z",
            "until",
        ),
        (
            "?since=2020-01-01T00:00:00Z&until=2020-01-01T00:00:00Z",
            "until",
        ),
        ("?since=2999-01-01T00:00:00Z", "since"),
        (
            "?since=2025-01-01T00:00:00Z&until=2026-01-03T00:00:00Z",
            "since",
        ),
        (
            "?until=2026-01-01T00:00:00Z&since=2024-01-01T00:00:00Z",
            "since",
        ),
        ("?bucket=minute", "bucket"),
        (
            "?bucket=hour&since=2026-01-01T00:00:00Z&until=2026-01-16T00:00:00Z",
            "bucket",
        ),
        ("?since=yesterday", "since"),
        ("?until=2026-13-01T00:00:00Z", "until"),
        ("?tenant_id=12", "tenant_id"),
        (
            "?since=0000-01-01T00:00:00Z&until=0000-01-02T00:00:00Z",
            "since",
        ),
        ("?until=0000-01-02T00:00:00Z", "until"),
        ("?range=7d", ""),
    ] {
        let r = app
            .call(
                Method::GET,
                &format!("/api/v1/dashboard/stats{query}"),
                Some(&viewer),
                None,
            )
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
        if !field.is_empty() {
            assert_eq!(r.body["field"], field, "{query}: {}", r.body);
        }
    }
    // The limits themselves are accepted.
    for query in [
        "?since=2025-01-01T00:00:00Z&until=2026-01-02T00:00:00Z",
        "?bucket=hour&since=2026-01-01T00:00:00Z&until=2026-01-15T00:00:00Z",
    ] {
        let r = stats(&app, &viewer, query).await;
        assert_eq!(r.body["total"], 0);
        let n = series(&r).len();
        assert!(n == 366 || n == 14 * 24, "{query}: {n}");
    }
}
