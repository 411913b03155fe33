//! Incidents: the list (with filters and creation from a template), and one incident with its
//! timeline, tasks, linked alerts, aggregated observables and assets, comments and lifecycle.

use crate::api::{Ctx, assignees, names, redirect, tenants, uuid};
use crate::error::WebError;
use crate::form::{FormData, enc};
use crate::pages::back_to;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use bulwark_core::Permission as P;
use bulwark_core::incident::IncidentStatus;
use serde_json::{Value, json};

/// GET /incidents
pub async fn list(ctx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, WebError> {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let q = f.api_query(&[]);
    let answer = ctx
        .call(Method::GET, &format!("/api/v1/incidents?{q}"), None)
        .await?;
    let (page, error, status) = if answer.status.is_success() {
        (answer.body, None, StatusCode::OK)
    } else if answer.status.is_server_error() {
        return Err(WebError::from_problem(answer.status, &answer.body));
    } else {
        let e = WebError::from_problem(answer.status, &answer.body);
        (json!({"items": []}), Some(e.message()), e.status)
    };
    let templates = if ctx.can(P::IncidentsCreate) {
        ctx.get_opt("/api/v1/incident-templates").await?
    } else {
        None
    };
    let next = page["next_cursor"].as_str().map(|c| {
        let mut keep = FormData(f.0.iter().filter(|(k, _)| k != "cursor").cloned().collect());
        keep.0.push(("cursor".into(), c.into()));
        keep.api_query(&[])
    });
    let mut resp = ctx.render(
        "incidents.html",
        "incidents",
        "Incidents",
        crate::ctx! {
            incidents => page["items"],
            next => next,
            error => error,
            f => crate::ctx! {
                status => f.get("status"),
                severity => f.get("severity"),
                q => f.get("q"),
                tag => f.get("tag"),
                assignee_id => f.get("assignee_id"),
                tenant_id => f.get("tenant_id"),
            },
            statuses => IncidentStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            templates => templates,
            names => names(&ctx).await?,
            tenants => tenants(&ctx).await?,
            assignees => assignees(&ctx).await?,
        },
    );
    *resp.status_mut() = status;
    Ok(resp)
}

/// POST /incidents: a new incident (optionally from a template, with alerts).
pub async fn create(ctx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let f = FormData::parse(&body);
    let back = back_to(&f, "/incidents");
    let mut req = serde_json::Map::new();
    for field in [
        "title",
        "description",
        "severity",
        "template_id",
        "tenant_id",
        "assignee_id",
    ] {
        if let Some(v) = f.get(field) {
            req.insert(field.into(), json!(v));
        }
    }
    let ids = f.all("alert_id");
    if !ids.is_empty() {
        req.insert("alert_ids".into(), json!(ids));
    }
    let created = ctx
        .send(Method::POST, "/api/v1/incidents", &Value::Object(req))
        .await
        .map_err(|e| e.back(back))?;
    Ok(redirect(
        &format!("/incidents/{}", created["id"].as_str().unwrap_or_default()),
        &format!("Incident #{} created.", created["number"]),
    ))
}

/// GET /incidents/{id}
pub async fn detail(
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let incident = ctx.get(&format!("/api/v1/incidents/{id}")).await?;
    let mut tl_q = String::from("limit=100");
    if let Some(c) = f.get("cursor") {
        tl_q.push_str(&format!("&cursor={}", enc(c)));
    }
    if let Some(k) = f.get("kind") {
        tl_q.push_str(&format!("&kind={}", enc(k)));
    }
    let timeline = ctx
        .get(&format!("/api/v1/incidents/{id}/timeline?{tl_q}"))
        .await?;
    let mut alerts_q = String::from("limit=50");
    if let Some(c) = f.get("alerts_cursor") {
        alerts_q.push_str(&format!("&cursor={}", enc(c)));
    }
    let alerts = ctx
        .get(&format!("/api/v1/incidents/{id}/alerts?{alerts_q}"))
        .await?;
    let runs = ctx
        .get_opt(&format!("/api/v1/runs?incident_id={id}&limit=20"))
        .await?;
    let playbooks = if ctx.can(P::PlaybooksExecute) {
        ctx.get_opt("/api/v1/playbooks")
            .await?
            .map(|p| p["items"].clone())
    } else {
        None
    };
    let status = incident["status"]
        .as_str()
        .and_then(|s| s.parse::<IncidentStatus>().ok());
    let moves: Vec<&str> = status
        .map(|s| {
            bulwark_core::incident::allowed_from(s)
                .into_iter()
                .map(|t| t.as_str())
                .collect()
        })
        .unwrap_or_default();
    let title = format!(
        "#{} {}",
        incident["number"],
        incident["title"].as_str().unwrap_or("")
    );
    Ok(ctx.render(
        "incident.html",
        "incidents",
        &title,
        crate::ctx! {
            i => incident,
            timeline => timeline["items"],
            timeline_next => timeline["next_cursor"],
            alerts => alerts["items"],
            alerts_next => alerts["next_cursor"],
            runs => runs.map(|r| r["items"].clone()),
            playbooks => playbooks,
            moves => moves,
            names => names(&ctx).await?,
            assignees => assignees(&ctx).await?,
            back => format!("/incidents/{id}"),
        },
    ))
}

/// POST /incidents/{id}/update: status, severity, assignee, title, description, tags.
pub async fn update(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/incidents/{id}");
    let mut patch = serde_json::Map::new();
    for field in ["status", "severity", "title"] {
        if let Some(v) = f.get(field) {
            patch.insert(field.into(), json!(v));
        }
    }
    match f.get("assignee_id") {
        Some("none") => {
            patch.insert("assignee_id".into(), Value::Null);
        }
        Some("me") => {
            patch.insert("assignee_id".into(), json!(ctx.session.analyst.id));
        }
        Some(a) => {
            patch.insert("assignee_id".into(), json!(a));
        }
        None => {}
    }
    if f.0.iter().any(|(k, _)| k == "description") {
        patch.insert("description".into(), json!(f.get("description")));
    }
    if f.0.iter().any(|(k, _)| k == "tags") {
        let tags: Vec<&str> = f
            .get("tags")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        patch.insert("tags".into(), json!(tags));
    }
    if patch.is_empty() {
        return Err(
            WebError::status(StatusCode::UNPROCESSABLE_ENTITY, "Choose what to change.").back(back),
        );
    }
    ctx.send(
        Method::PATCH,
        &format!("/api/v1/incidents/{id}"),
        &Value::Object(patch),
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Saved."))
}

/// POST /incidents/{id}/comments
pub async fn comment(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/incidents/{id}");
    ctx.send(
        Method::POST,
        &format!("/api/v1/incidents/{id}/comments"),
        &json!({"body": f.get("body").unwrap_or("")}),
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Comment added."))
}

/// POST /incidents/{id}/tasks
pub async fn add_task(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/incidents/{id}");
    let mut req = json!({"title": f.get("title").unwrap_or("")});
    if let Some(a) = f.get("assignee_id") {
        req["assignee_id"] = json!(a);
    }
    if let Some(d) = f.get("due_at") {
        // A `datetime-local` field: minutes, no zone; the console works in UTC.
        req["due_at"] = json!(if d.len() == 16 {
            format!("{d}:00Z")
        } else {
            d.to_string()
        });
    }
    ctx.send(Method::POST, &format!("/api/v1/incidents/{id}/tasks"), &req)
        .await
        .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Task added."))
}

/// POST /incidents/{id}/tasks/{task_id}: a new status, or `delete`.
pub async fn update_task(
    ctx: Ctx,
    Path((id, task)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    let (id, task) = (uuid(&id)?, uuid(&task)?);
    let f = FormData::parse(&body);
    let back = format!("/incidents/{id}");
    let uri = format!("/api/v1/incidents/{id}/tasks/{task}");
    if f.get("action") == Some("delete") {
        ctx.send(Method::DELETE, &uri, &Value::Null)
            .await
            .map_err(|e| e.back(back.clone()))?;
        return Ok(redirect(&back, "Task deleted."));
    }
    let mut patch = serde_json::Map::new();
    if let Some(s) = f.get("status") {
        patch.insert("status".into(), json!(s));
    }
    match f.get("assignee_id") {
        Some("none") => {
            patch.insert("assignee_id".into(), Value::Null);
        }
        Some(a) => {
            patch.insert("assignee_id".into(), json!(a));
        }
        None => {}
    }
    ctx.send(Method::PATCH, &uri, &Value::Object(patch))
        .await
        .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Task updated."))
}

/// POST /incidents/{id}/alerts/{alert_id}/unlink
pub async fn unlink(
    ctx: Ctx,
    Path((id, alert)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (id, alert) = (uuid(&id)?, uuid(&alert)?);
    let back = format!("/incidents/{id}");
    ctx.send(
        Method::DELETE,
        &format!("/api/v1/incidents/{id}/alerts/{alert}"),
        &Value::Null,
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Alert unlinked."))
}

/// POST /incidents/{id}/run: run a playbook on the incident.
pub async fn run_playbook(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/incidents/{id}");
    let pb = f.get("playbook_id").ok_or_else(|| {
        WebError::status(StatusCode::UNPROCESSABLE_ENTITY, "Choose a playbook.").back(back.clone())
    })?;
    let pb = uuid(pb).map_err(|e| e.back(back.clone()))?;
    let run = ctx
        .send(
            Method::POST,
            &format!("/api/v1/playbooks/{pb}/run"),
            &json!({"incident_id": id}),
        )
        .await
        .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(
        &format!("/runs/{}", run["id"].as_str().unwrap_or_default()),
        "Run queued.",
    ))
}

/// GET /incidents/templates
pub async fn templates(ctx: Ctx) -> Result<Response, WebError> {
    let list = ctx.get("/api/v1/incident-templates").await?;
    Ok(ctx.render(
        "templates.html",
        "incidents",
        "Incident templates",
        crate::ctx! { templates => list, tenants => tenants(&ctx).await? },
    ))
}

/// POST /incidents/templates: a new template; tasks one per line, `title | hours until due`.
pub async fn create_template(ctx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let f = FormData::parse(&body);
    let back = "/incidents/templates";
    let mut tasks = Vec::new();
    let text =
        f.0.iter()
            .find(|(k, _)| k == "tasks")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (title, due) = match line.rsplit_once('|') {
            Some((t, h)) => {
                let hours: u32 = h.trim().parse().map_err(|_| {
                    WebError::status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!(
                            "tasks, line {}: the hours after `|` must be a whole number",
                            n + 1
                        ),
                    )
                    .back(back)
                })?;
                (t.trim(), Some(hours))
            }
            None => (line, None),
        };
        tasks.push(json!({"title": title, "due_in_hours": due}));
    }
    let tags: Vec<&str> = f
        .get("tags")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let mut req = json!({
        "name": f.get("name").unwrap_or(""),
        "severity": f.get("severity").unwrap_or("medium"),
        "tags": tags,
        "tasks": tasks,
    });
    for field in ["description", "tenant_id"] {
        if let Some(v) = f.get(field) {
            req[field] = json!(v);
        }
    }
    ctx.send(Method::POST, "/api/v1/incident-templates", &req)
        .await
        .map_err(|e| e.back(back))?;
    Ok(redirect(back, "Template created."))
}

/// POST /incidents/templates/{id}/delete
pub async fn delete_template(ctx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let back = "/incidents/templates";
    ctx.send(
        Method::DELETE,
        &format!("/api/v1/incident-templates/{id}"),
        &Value::Null,
    )
    .await
    .map_err(|e| e.back(back))?;
    Ok(redirect(back, "Template deleted."))
}

/// GET /incidents/suggestions (`?window_hours=`): groups of open, unlinked alerts sharing a
/// value, to make incidents of (the API's suggestions).
pub async fn suggestions(ctx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, WebError> {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let hours = f.get("window_hours").unwrap_or("24").to_string();
    let list = ctx
        .get(&format!(
            "/api/v1/incidents/suggestions?window_hours={}&limit=25",
            enc(&hours)
        ))
        .await?;
    Ok(ctx.render(
        "suggestions.html",
        "incidents",
        "Suggested incidents",
        crate::ctx! { groups => list, window_hours => hours },
    ))
}
