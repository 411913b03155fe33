//! The alert queue (filters, keyset pages, live refresh, bulk actions) and one alert (fields,
//! payloads, observables, timeline, comments, incidents, runs, and the triage actions).

use crate::api::{Ctx, assignees, names, redirect, redirect_flash, tenants, uuid};
use crate::error::WebError;
use crate::form::{FormData, enc};
use crate::pages::back_to;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bulwark_core::Permission as P;
use bulwark_core::triage::{AlertStatus, ResolveReason};
use serde_json::{Value, json};

/// Query fields the console adds to the API's (`time`: a quick range).
const WEB_ONLY: &[&str] = &["time", "cursor", "after", "page"];

/// The API query of the queue's filters: the API's own parameters, `assignee_id=me`, and a
/// quick `time` range turned into `since`.
fn queue_query(ctx: &Ctx, f: &FormData) -> String {
    let mut q = FormData(
        f.0.iter()
            .filter(|(k, _)| k != "assignee_id" || f.get("assignee_id") != Some("me"))
            .cloned()
            .collect(),
    );
    if f.get("assignee_id") == Some("me") {
        q.0.push(("assignee_id".into(), ctx.session.analyst.id.to_string()));
    }
    let hours = match f.get("time") {
        Some("1h") => Some(1),
        Some("24h") => Some(24),
        Some("7d") => Some(24 * 7),
        Some("30d") => Some(24 * 30),
        _ => None,
    };
    if let (Some(h), None) = (hours, f.get("since")) {
        let now = bulwark_core::time::now();
        let since = now - chrono::Duration::hours(h);
        q.0.push((
            "since".into(),
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ));
        // A closed window lets the store bound the ids it reads (a window far from where the
        // queue starts reading, e.g. the last day in oldest-first order, would otherwise be
        // reached by walking every older alert: seconds at a million alerts). The end is a
        // minute ahead so alerts arriving meanwhile stay in; each refresh moves it.
        if f.get("until").is_none() {
            q.0.push((
                "until".into(),
                (now + chrono::Duration::minutes(1))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ));
        }
    }
    q.api_query(WEB_ONLY)
}

/// The queue URL with the current filters (for links and the bulk form's way back).
fn filters_only(f: &FormData) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &f.0 {
        if !v.trim().is_empty() && k != "cursor" && k != "after" {
            out.append_pair(k, v);
        }
    }
    out.finish()
}

async fn row_context(ctx: &Ctx) -> Result<(Value, Value), WebError> {
    let tenants: serde_json::Map<String, Value> = tenants(ctx)
        .await?
        .into_iter()
        .filter_map(|t| Some((t["id"].as_str()?.to_string(), t["slug"].clone())))
        .collect();
    Ok((json!(names(ctx).await?), Value::Object(tenants)))
}

/// GET /alerts
pub async fn queue(ctx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, WebError> {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let mut api_q = queue_query(&ctx, &f);
    if let Some(c) = f.get("cursor") {
        api_q.push_str(&format!("&cursor={}", enc(c)));
    }
    let answer = ctx
        .call(Method::GET, &format!("/api/v1/alerts?{api_q}"), None)
        .await?;
    let (page, error, status) = if answer.status.is_success() {
        (answer.body, None, StatusCode::OK)
    } else {
        let e = WebError::from_problem(answer.status, &answer.body);
        if answer.status.is_server_error() {
            return Err(e);
        }
        (json!({"items": []}), Some(e.message()), e.status)
    };
    let (names, tenant_slugs) = row_context(&ctx).await?;
    let incidents = if ctx.can(P::IncidentsUpdate) {
        ctx.get_opt(
            "/api/v1/incidents?status=open,in_progress,pending_approval,contained&limit=100",
        )
        .await?
        .map(|p| p["items"].clone())
    } else {
        None
    };
    let filters = filters_only(&f);
    let selected = |name: &str| -> Vec<String> {
        f.all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::to_string)
            .collect()
    };
    let live = f.get("cursor").is_none() && f.get("sort").unwrap_or("newest") == "newest";
    let mut resp = ctx.render(
        "alerts.html",
        "alerts",
        "Alert queue",
        crate::ctx! {
            alerts => page["items"],
            next_cursor => page["next_cursor"],
            paged => f.get("cursor").is_some(),
            error => error,
            filters => filters,
            f => crate::ctx! {
                status => selected("status"),
                severity => selected("severity"),
                source => f.get("source"),
                tenant_id => f.get("tenant_id"),
                assignee_id => f.get("assignee_id"),
                tag => f.get("tag"),
                q => f.get("q"),
                time => f.get("time"),
                sort => f.get("sort"),
                determination => f.get("determination"),
                observable => f.get("observable"),
                hostname => f.get("hostname"),
                ip => f.get("ip"),
            },
            live => live,
            poll_query => queue_query(&ctx, &f),
            names => names,
            tenant_slugs => tenant_slugs,
            tenants => tenants(&ctx).await?,
            assignees => assignees(&ctx).await?,
            incidents => incidents,
            back => format!("/alerts?{}", filters_only(&f)),
        },
    );
    *resp.status_mut() = status;
    Ok(resp)
}

/// GET /alerts/poll?<filters>&after=<newest shown id>: the alerts that arrived since, as table
/// rows (newest first) for the queue to insert. Not counted as activity for the idle timeout.
pub async fn poll(ctx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, WebError> {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    // Oldest first after the newest shown: exactly the ones that arrived since (ids are
    // time-ordered), through the queue's indexed, paged query.
    let filters = FormData(f.0.iter().filter(|(k, _)| k != "sort").cloned().collect());
    let api_q = queue_query(&ctx, &filters);
    let sep = if api_q.is_empty() { "" } else { "&" };
    let mut uri = format!("/api/v1/alerts?{api_q}{sep}sort=oldest&limit=100");
    if let Some(after) = f.get("after") {
        uri.push_str(&format!("&cursor={}", enc(after)));
    } else {
        return Ok(axum::Json(json!({"count": 0, "html": ""})).into_response());
    }
    let page = ctx.get(&uri).await?;
    let mut items = page["items"].as_array().cloned().unwrap_or_default();
    items.reverse();
    let (names, tenant_slugs) = row_context(&ctx).await?;
    let html = crate::render::render(
        "alert_rows.html",
        ctx.page(
            "alerts",
            "",
            crate::ctx! { alerts => items, names => names, tenant_slugs => tenant_slugs, fresh => true },
        ),
    )?;
    Ok(axum::Json(json!({
        "count": items.len(),
        "top": items.first().map(|a| a["id"].clone()),
        "html": html,
    }))
    .into_response())
}

/// A bulk action's summary: "3 updated, 1 unchanged".
fn bulk_summary(results: &Value) -> (String, bool) {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut problems = Vec::new();
    for r in results["results"].as_array().into_iter().flatten() {
        let outcome = r["outcome"].as_str().unwrap_or("?").replace('_', " ");
        match counts.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, n)) => *n += 1,
            None => counts.push((outcome.clone(), 1)),
        }
        if let Some(m) = r["message"].as_str()
            && problems.len() < 3
        {
            problems.push(m.to_string());
        }
    }
    let mut text = counts
        .iter()
        .map(|(o, n)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join(", ");
    if !problems.is_empty() {
        text.push_str(&format!(" ({})", problems.join("; ")));
    }
    (text, problems.is_empty())
}

/// The triage change a form asks for, as the API's PATCH body (`set` of a bulk request).
fn patch_of(ctx: &Ctx, f: &FormData) -> Result<Value, WebError> {
    let mut set = serde_json::Map::new();
    match f.get("action") {
        Some("assign_me") => {
            set.insert("assignee_id".into(), json!(ctx.session.analyst.id));
        }
        Some("resolve") => {
            // The reason decides the closing status (false-positive reasons close as
            // false_positive); an explicit `close_status` wins.
            let reason = f
                .get("resolve_reason")
                .and_then(|r| serde_json::from_value::<ResolveReason>(json!(r)).ok());
            let derived = match reason {
                Some(r) if !r.fits_status(AlertStatus::Resolved) => "false_positive",
                _ => "resolved",
            };
            set.insert(
                "status".into(),
                json!(f.get("close_status").unwrap_or(derived)),
            );
            set.insert("determination".into(), json!(f.get("determination")));
            set.insert("resolve_reason".into(), json!(f.get("resolve_reason")));
        }
        Some("escalate") => {
            set.insert("status".into(), json!("escalated"));
        }
        Some("reopen") => {
            set.insert("status".into(), json!("in_progress"));
        }
        _ => {}
    }
    if let Some(s) = f.get("status") {
        set.insert("status".into(), json!(s));
    }
    if let Some(s) = f.get("severity") {
        set.insert("severity".into(), json!(s));
    }
    match f.get("assignee_id") {
        Some("none") => {
            set.insert("assignee_id".into(), Value::Null);
        }
        Some("me") => {
            set.insert("assignee_id".into(), json!(ctx.session.analyst.id));
        }
        Some(id) => {
            set.insert("assignee_id".into(), json!(id));
        }
        None => {}
    }
    let tags = |name| -> Vec<String> {
        f.get(name)
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    if !tags("add_tags").is_empty() {
        set.insert("add_tags".into(), json!(tags("add_tags")));
    }
    if !tags("remove_tags").is_empty() {
        set.insert("remove_tags".into(), json!(tags("remove_tags")));
    }
    if set.is_empty() {
        return Err(WebError::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose what to change.",
        ));
    }
    Ok(Value::Object(set))
}

/// POST /alerts/bulk: one action on the selected alerts (the API's bulk request), or a new
/// incident made of them.
pub async fn bulk(ctx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let f = FormData::parse(&body);
    let back = back_to(&f, "/alerts");
    let ids: Vec<&str> = f.all("id");
    if ids.is_empty() {
        return Err(WebError::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Select at least one alert.",
        )
        .back(back));
    }
    match f.get("action") {
        Some("incident") => {
            let title = match f.get("title") {
                Some(t) => t.to_string(),
                None => default_title(&ctx, &ids).await?,
            };
            let req = json!({"alert_ids": ids, "title": title});
            let created = ctx
                .send(Method::POST, "/api/v1/incidents", &req)
                .await
                .map_err(|e| e.back(back.clone()))?;
            let id = created["id"].as_str().unwrap_or_default();
            Ok(redirect(
                &format!("/incidents/{id}"),
                &format!(
                    "Incident #{} created from {} alerts.",
                    created["number"],
                    ids.len()
                ),
            ))
        }
        Some("link") => {
            let incident = f.get("incident_id").ok_or_else(|| {
                WebError::status(StatusCode::UNPROCESSABLE_ENTITY, "Choose an incident.")
                    .back(back.clone())
            })?;
            let r = ctx
                .send(
                    Method::POST,
                    "/api/v1/alerts/bulk",
                    &json!({"alert_ids": ids, "link_incident": incident}),
                )
                .await
                .map_err(|e| e.back(back.clone()))?;
            let (text, clean) = bulk_summary(&r);
            Ok(redirect_flash(
                &back,
                if clean { "ok" } else { "error" },
                &format!("Linked: {text}"),
            ))
        }
        _ => {
            let set = patch_of(&ctx, &f).map_err(|e| e.back(back.clone()))?;
            let r = ctx
                .send(
                    Method::POST,
                    "/api/v1/alerts/bulk",
                    &json!({"alert_ids": ids, "set": set}),
                )
                .await
                .map_err(|e| e.back(back.clone()))?;
            let (text, clean) = bulk_summary(&r);
            Ok(redirect_flash(
                &back,
                if clean { "ok" } else { "error" },
                &text,
            ))
        }
    }
}

/// A new incident's title when the analyst gave none: the first alert's, with the count.
async fn default_title(ctx: &Ctx, ids: &[&str]) -> Result<String, WebError> {
    let first = ids.first().map(|i| uuid(i)).transpose()?;
    let title = match first {
        Some(id) => ctx
            .get_opt(&format!("/api/v1/alerts/{id}"))
            .await?
            .and_then(|a| a["title"].as_str().map(str::to_string)),
        None => None,
    }
    .unwrap_or_else(|| "New incident".to_string());
    let title: String = title.chars().take(250).collect();
    Ok(if ids.len() > 1 {
        format!("{title} (+{} more)", ids.len() - 1)
    } else {
        title
    })
}

/// GET /alerts/{id}
pub async fn detail(ctx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let alert = ctx.get(&format!("/api/v1/alerts/{id}")).await?;
    let activities = ctx
        .get(&format!("/api/v1/alerts/{id}/activities?limit=500"))
        .await?;
    let comments = ctx.get(&format!("/api/v1/alerts/{id}/comments")).await?;
    let runs = ctx
        .get_opt(&format!("/api/v1/runs?alert_id={id}&limit=20"))
        .await?;
    let tenant = alert["tenant_id"].as_str().unwrap_or_default().to_string();
    let playbooks = if ctx.can(P::PlaybooksExecute) {
        ctx.get_opt("/api/v1/playbooks").await?.map(|p| {
            p["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|pb| {
                    pb["enabled"] == json!(true)
                        && (pb["tenant_id"].is_null() || pb["tenant_id"] == json!(tenant))
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    } else {
        None
    };
    let incidents = if ctx.can(P::IncidentsUpdate) {
        ctx.get_opt(&format!(
            "/api/v1/incidents?tenant_id={tenant}&status=open,in_progress,pending_approval,contained,eradicated,recovered&limit=100"
        ))
        .await?
        .map(|p| p["items"].clone())
    } else {
        None
    };
    let templates = if ctx.can(P::IncidentsCreate) {
        ctx.get_opt(&format!("/api/v1/incident-templates?tenant_id={tenant}"))
            .await?
    } else {
        None
    };
    let (names, tenant_slugs) = row_context(&ctx).await?;
    let title = alert["title"].as_str().unwrap_or("Alert").to_string();
    Ok(ctx.render(
        "alert.html",
        "alerts",
        &title,
        crate::ctx! {
            a => alert,
            activities => activities["items"],
            comments => comments,
            runs => runs.map(|r| r["items"].clone()),
            playbooks => playbooks,
            incidents => incidents,
            templates => templates,
            names => names,
            tenant_slugs => tenant_slugs,
            assignees => assignees(&ctx).await?,
            back => format!("/alerts/{id}"),
        },
    ))
}

/// POST /alerts/{id}/claim
pub async fn claim(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = back_to(&f, &format!("/alerts/{id}"));
    let force = if f.get("force").is_some() {
        "?force=true"
    } else {
        ""
    };
    ctx.send(
        Method::POST,
        &format!("/api/v1/alerts/{id}/claim{force}"),
        &Value::Null,
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Assigned to you."))
}

/// POST /alerts/{id}/update: status, resolve, escalate, severity, assignee, tags.
pub async fn update(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = back_to(&f, &format!("/alerts/{id}"));
    let patch = patch_of(&ctx, &f).map_err(|e| e.back(back.clone()))?;
    let a = ctx
        .send(Method::PATCH, &format!("/api/v1/alerts/{id}"), &patch)
        .await
        .map_err(|e| e.back(back.clone()))?;
    let msg = match f.get("action") {
        Some("resolve") => format!(
            "Closed as {} ({}).",
            a["status"].as_str().unwrap_or("").replace('_', " "),
            a["determination"].as_str().unwrap_or("")
        ),
        Some("escalate") => "Escalated.".to_string(),
        _ => "Saved.".to_string(),
    };
    Ok(redirect(&back, &msg))
}

/// POST /alerts/{id}/comments
pub async fn comment(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/alerts/{id}");
    ctx.send(
        Method::POST,
        &format!("/api/v1/alerts/{id}/comments"),
        &json!({"body": f.get("body").unwrap_or("")}),
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&format!("{back}#comments"), "Comment added."))
}

/// POST /alerts/{id}/incident: create an incident from the alert, or link it to one.
pub async fn incident(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/alerts/{id}");
    if let Some(incident) = f.get("incident_id") {
        let incident = uuid(incident).map_err(|e| e.back(back.clone()))?;
        ctx.send(
            Method::POST,
            &format!("/api/v1/incidents/{incident}/alerts"),
            &json!({"alert_ids": [id]}),
        )
        .await
        .map_err(|e| e.back(back.clone()))?;
        return Ok(redirect(&back, "Linked to the incident."));
    }
    let mut req = json!({"alert_ids": [id]});
    match (f.get("title"), f.get("template_id")) {
        (Some(t), _) => req["title"] = json!(t),
        // The template names it.
        (None, Some(_)) => {}
        (None, None) => req["title"] = json!(default_title(&ctx, &[&id.to_string()]).await?),
    }
    if let Some(t) = f.get("template_id") {
        req["template_id"] = json!(t);
    }
    let created = ctx
        .send(Method::POST, "/api/v1/incidents", &req)
        .await
        .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(
        &format!("/incidents/{}", created["id"].as_str().unwrap_or_default()),
        &format!("Incident #{} created.", created["number"]),
    ))
}

/// POST /alerts/{id}/run: run a playbook on the alert.
pub async fn run_playbook(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/alerts/{id}");
    let pb = f.get("playbook_id").ok_or_else(|| {
        WebError::status(StatusCode::UNPROCESSABLE_ENTITY, "Choose a playbook.").back(back.clone())
    })?;
    let pb = uuid(pb).map_err(|e| e.back(back.clone()))?;
    let run = ctx
        .send(
            Method::POST,
            &format!("/api/v1/playbooks/{pb}/run"),
            &json!({"alert_id": id}),
        )
        .await
        .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(
        &format!("/runs/{}", run["id"].as_str().unwrap_or_default()),
        "Run queued.",
    ))
}
