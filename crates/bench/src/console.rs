//! The `console` suite: how long the web console takes to render its pages server-side on the
//! triage data set (a million alerts; load it first with the `triage` suite on the same
//! database).
//!
//! The console and the API are built in this process exactly as `bulwark serve` builds them
//! (`bulwark_api::router_with` + `bulwark_web::router`), a session is stored for an admin and
//! for an analyst restricted by tag rules, and each page is requested through the router with
//! the session cookie and read to the last byte: the time covers the session lookup, every
//! in-process API request the page makes (authentication, scope, the store's queries) and
//! the template rendering. No network and no browser, so it is the server's share of a page
//! load.

use crate::triage::{TENANT_PREFIX, TENANTS, stats};
use anyhow::Context;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bulwark_core::{Role, Scope, TenantId};
use bulwark_store::sessions::NewSession;
use bulwark_store::{ChangeCtx, NewAnalyst, NewTenant, Store};
use sha2::Digest;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const TARGET_MS: f64 = 100.0;

async fn analyst(
    store: &Store,
    name: &str,
    role: Role,
    tenant: TenantId,
) -> anyhow::Result<bulwark_core::model::Analyst> {
    if let Some(c) = store.credentials_by_username(name).await? {
        return Ok(c.analyst);
    }
    Ok(store
        .create_analyst(
            &ChangeCtx::system("bench"),
            NewAnalyst {
                tenant_id: tenant,
                username: name.into(),
                display_name: name.into(),
                // Never used to log in: the session is stored directly.
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
                role,
                tenant_ids: vec![],
            },
        )
        .await?)
}

/// A stored session for `who`; returns the cookie.
async fn session(store: &Store, who: &bulwark_core::model::Analyst) -> anyhow::Result<String> {
    let id = format!("bench-{}", uuid::Uuid::now_v7());
    let now = chrono::Utc::now();
    let version = store
        .credentials_by_id(who.id)
        .await?
        .context("analyst")?
        .token_version;
    store
        .create_session(&NewSession {
            id_hash: sha2::Sha256::digest(id.as_bytes()).to_vec(),
            analyst_id: who.id,
            token_version: version,
            csrf_token: "bench".into(),
            created_at: now,
            expires_at: now + chrono::Duration::hours(1),
            user_agent: None,
            client_ip: None,
        })
        .await?;
    Ok(format!("bulwark_session={id}"))
}

pub(crate) async fn console(url: String, iterations: u32) -> anyhow::Result<String> {
    let store: Store = bulwark_store::open(&url).await?;
    let first = store
        .tenant_by_slug(&format!("{TENANT_PREFIX}{}", TENANTS[0].0))
        .await?
        .context("no triage data set here: run `bulwark-bench triage --database-url ...` first")?;
    let platform = match store.tenant_by_slug("default").await? {
        Some(t) => t.id,
        None => {
            store
                .create_tenant(
                    &ChangeCtx::system("bench"),
                    NewTenant {
                        slug: "default".into(),
                        name: "Default".into(),
                    },
                )
                .await?
                .id
        }
    };
    let admin = analyst(&store, "bench-console-admin", Role::Admin, platform).await?;
    let restricted = analyst(&store, "bench-console-analyst", Role::Analyst, first.id).await?;
    let admin_cookie = session(&store, &admin).await?;
    let analyst_cookie = session(&store, &restricted).await?;

    let config =
        bulwark_api::ApiConfig::new(b"bench-secret-bench-secret-bench-secret".to_vec(), platform);
    let state = bulwark_api::State::new(store.clone(), config, None);
    let router = bulwark_api::router_with(
        state.clone(),
        bulwark_web::router(state.clone(), bulwark_web::WebConfig::default()),
    );

    // Records to open: the newest alert, an incident with many alerts, a common observable.
    let access = bulwark_core::AlertAccess::unrestricted(Scope::AllTenants);
    let newest = store
        .list_alerts(
            &access,
            &bulwark_store::alerts::AlertFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    let alert = newest.first().context("no alerts")?.id;
    let incidents = store
        .list_incidents(
            &access,
            &bulwark_store::incidents::IncidentFilter {
                limit: 200,
                ..Default::default()
            },
        )
        .await?;
    let incident = incidents
        .iter()
        .max_by_key(|i| i.alert_count)
        .context("no incidents")?;
    let observable = store
        .list_observables(
            &access,
            &bulwark_store::observables::ObservableFilter {
                sort: bulwark_store::observables::ObservableSort::Sightings,
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    let observable = observable.first().context("no observables")?.id;

    let pages: Vec<(String, String, &str)> = vec![
        ("queue, first page".into(), "/alerts".into(), "admin"),
        ("queue, first page".into(), "/alerts".into(), "analyst"),
        (
            "queue, open critical+high".into(),
            "/alerts?status=new&status=triaged&severity=critical&severity=high".into(),
            "admin",
        ),
        (
            "queue, text search".into(),
            "/alerts?q=powershell".into(),
            "admin",
        ),
        (
            "queue, last 24 h, oldest first".into(),
            "/alerts?time=24h&sort=oldest".into(),
            "admin",
        ),
        (
            "queue, live refresh (nothing new)".into(),
            format!("/alerts/poll?after={alert}"),
            "admin",
        ),
        ("alert detail".into(), format!("/alerts/{alert}"), "admin"),
        ("incidents".into(), "/incidents".into(), "admin"),
        (
            format!("incident with {} alerts", incident.alert_count),
            format!("/incidents/{}", incident.id),
            "admin",
        ),
        ("observables".into(), "/observables".into(), "admin"),
        (
            "observables, most seen".into(),
            "/observables?sort=sightings".into(),
            "admin",
        ),
        (
            "observable (most sightings)".into(),
            format!("/observables/{observable}"),
            "admin",
        ),
        (
            "dashboard, 24 h".into(),
            "/dashboard?range=24h".into(),
            "admin",
        ),
        (
            "dashboard, 7 days".into(),
            "/dashboard?range=7d".into(),
            "admin",
        ),
        (
            "dashboard, 30 days".into(),
            "/dashboard?range=30d".into(),
            "admin",
        ),
        (
            "dashboard, 24 h".into(),
            "/dashboard?range=24h".into(),
            "analyst",
        ),
        (
            "dashboard, 7 days".into(),
            "/dashboard?range=7d".into(),
            "analyst",
        ),
        (
            "dashboard, 30 days".into(),
            "/dashboard?range=30d".into(),
            "analyst",
        ),
        ("runs".into(), "/runs".into(), "admin"),
        ("playbooks".into(), "/playbooks".into(), "admin"),
    ];

    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let total = store.alert_count(first.id).await.unwrap_or(0);
    let mut report = format!(
        "### Console pages, {backend} ({total} alerts in the largest tenant)\n\n\
         | page | as | p50 | p95 | p99 | max | size | target (p99) |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n"
    );
    for (name, path, who) in pages {
        let cookie = if who == "admin" {
            &admin_cookie
        } else {
            &analyst_cookie
        };
        let mut ms = Vec::new();
        let mut size = 0;
        let budget = Instant::now();
        for i in 0..iterations + 2 {
            let mut req = Request::builder()
                .uri(&path)
                .header(header::COOKIE, cookie.as_str());
            if path.starts_with("/alerts/poll") {
                req = req.header(header::ACCEPT, "application/json");
            }
            let req = req.body(Body::empty())?;
            let t = Instant::now();
            let resp = router.clone().oneshot(req).await?;
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
            let elapsed = t.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(
                status == StatusCode::OK,
                "{path}: {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
            size = bytes.len();
            if i >= 2 {
                ms.push(elapsed);
            }
            if budget.elapsed() > Duration::from_secs(60) && ms.len() >= 5 {
                break;
            }
        }
        let s = stats(ms);
        eprintln!("{name} ({who}): p50 {:.1} ms, p99 {:.1} ms", s.p50, s.p99);
        report.push_str(&format!(
            "| {name} | {who} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} KB | {} |\n",
            s.p50,
            s.p95,
            s.p99,
            s.max,
            size / 1024,
            if s.p99 < TARGET_MS {
                "< 100 ms met"
            } else {
                "< 100 ms **not met**"
            }
        ));
    }
    store.close().await;
    Ok(report)
}
