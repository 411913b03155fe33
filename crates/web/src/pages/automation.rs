//! Automation: playbooks (list, source with validation errors, versions, enable/disable,
//! manual and dry runs), runs with every action attempt, and the approvals inbox.

use crate::api::{Ctx, redirect, uuid};
use crate::error::WebError;
use crate::form::{FormData, enc};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use bulwark_core::Permission as P;
use serde_json::{Value, json};

/// GET /playbooks
pub async fn playbooks(ctx: Ctx) -> Result<Response, WebError> {
    let list = ctx.get("/api/v1/playbooks").await?;
    Ok(ctx.render(
        "playbooks.html",
        "playbooks",
        "Playbooks",
        crate::ctx! { playbooks => list["items"] },
    ))
}

const EXAMPLE: &str = "name: triage-high-alerts\ndescription: What this playbook does\nenabled: true\ntriggers:\n  - on: alert.created\n    if: alert.severity in [\"high\", \"critical\"]\n  - on: manual\nactions:\n  - ref: tag\n    action: alert.update\n    args:\n      tags: [\"auto-triaged\"]\n  - ref: note\n    action: alert.comment\n    depends_on: [tag]\n    args:\n      text: \"triaged by {{ playbook.name }}\"\n";

/// GET /playbooks/new
pub async fn new_playbook(ctx: Ctx) -> Result<Response, WebError> {
    Ok(ctx.render(
        "playbook_edit.html",
        "playbooks",
        "New playbook",
        crate::ctx! { source => EXAMPLE, errors => Vec::<Value>::new(), creating => true },
    ))
}

/// The edit form again, with the API's validation problems (each with its line).
fn invalid(ctx: &Ctx, source: &str, e: WebError, playbook: Option<Value>) -> Response {
    let mut resp = ctx.render(
        "playbook_edit.html",
        "playbooks",
        "Edit playbook",
        crate::ctx! {
            source => source,
            errors => e.errors,
            error => e.message(),
            creating => playbook.is_none(),
            p => playbook,
        },
    );
    *resp.status_mut() = e.status;
    resp
}

/// POST /playbooks: create from the YAML (or JSON) text.
pub async fn create_playbook(ctx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let f = FormData::parse(&body);
    let source =
        f.0.iter()
            .find(|(k, _)| k == "source")
            .map(|(_, v)| v.replace("\r\n", "\n"))
            .unwrap_or_default();
    let ctype = if source.trim_start().starts_with('{') {
        "application/json"
    } else {
        "application/yaml"
    };
    let q = if f.get("global").is_some() {
        "?scope=global"
    } else {
        ""
    };
    let a = ctx
        .call(
            Method::POST,
            &format!("/api/v1/playbooks{q}"),
            Some((ctype, source.clone().into_bytes())),
        )
        .await?;
    if !a.status.is_success() {
        return Ok(invalid(
            &ctx,
            &source,
            WebError::from_problem(a.status, &a.body),
            None,
        ));
    }
    Ok(redirect(
        &format!("/playbooks/{}", a.body["id"].as_str().unwrap_or_default()),
        "Playbook created.",
    ))
}

/// GET /playbooks/{id} (`?edit=1` for the editor)
pub async fn playbook(
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let p = ctx.get(&format!("/api/v1/playbooks/{id}")).await?;
    if f.get("edit").is_some() {
        let source = p["source"].as_str().unwrap_or("").to_string();
        return Ok(ctx.render(
            "playbook_edit.html",
            "playbooks",
            "Edit playbook",
            crate::ctx! { source => source, errors => Vec::<Value>::new(), creating => false, p => p },
        ));
    }
    playbook_page(&ctx, p, None, StatusCode::OK).await
}

async fn playbook_page(
    ctx: &Ctx,
    p: Value,
    dry_run: Option<Value>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let id = p["id"].as_str().unwrap_or_default().to_string();
    let runs = ctx
        .get(&format!("/api/v1/runs?playbook_id={id}&limit=20"))
        .await?;
    let title = p["name"].as_str().unwrap_or("Playbook").to_string();
    let mut resp = ctx.render(
        "playbook.html",
        "playbooks",
        &title,
        crate::ctx! { p => p, runs => runs["items"], dry_run => dry_run },
    );
    *resp.status_mut() = status;
    Ok(resp)
}

/// POST /playbooks/{id}: a new version from the edited text.
pub async fn edit_playbook(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let source =
        f.0.iter()
            .find(|(k, _)| k == "source")
            .map(|(_, v)| v.replace("\r\n", "\n"))
            .unwrap_or_default();
    let version = f.get("version").unwrap_or("");
    let ctype = if source.trim_start().starts_with('{') {
        "application/json"
    } else {
        "application/yaml"
    };
    let a = ctx
        .call(
            Method::PUT,
            &format!("/api/v1/playbooks/{id}?version={}", enc(version)),
            Some((ctype, source.clone().into_bytes())),
        )
        .await?;
    if !a.status.is_success() {
        let p = ctx.get_opt(&format!("/api/v1/playbooks/{id}")).await?;
        return Ok(invalid(
            &ctx,
            &source,
            WebError::from_problem(a.status, &a.body),
            p,
        ));
    }
    Ok(redirect(
        &format!("/playbooks/{id}"),
        &format!("Saved as version {}.", a.body["version"]),
    ))
}

/// POST /playbooks/{id}/enabled: `enabled=true|false`.
pub async fn set_enabled(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/playbooks/{id}");
    let (verb, msg) = if f.get("enabled") == Some("true") {
        ("enable", "Enabled.")
    } else {
        ("disable", "Disabled.")
    };
    ctx.send(
        Method::POST,
        &format!("/api/v1/playbooks/{id}/{verb}"),
        &Value::Null,
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, msg))
}

/// POST /playbooks/{id}/run: a manual run (queued) or a dry run (shown on the page).
pub async fn run(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/playbooks/{id}");
    let mut req = serde_json::Map::new();
    for field in ["alert_id", "incident_id", "tenant_id"] {
        if let Some(v) = f.get(field) {
            req.insert(
                field.into(),
                json!(uuid(v).map_err(|e| e.back(back.clone()))?),
            );
        }
    }
    if let Some(input) = f.get("input") {
        let v: Value = serde_json::from_str(input).map_err(|e| {
            WebError::status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("input: not valid JSON ({e})"),
            )
            .back(back.clone())
        })?;
        req.insert("input".into(), v);
    }
    let dry = f.get("dry_run").is_some();
    req.insert("dry_run".into(), json!(dry));
    let result = ctx
        .send(
            Method::POST,
            &format!("/api/v1/playbooks/{id}/run"),
            &Value::Object(req),
        )
        .await
        .map_err(|e| e.back(back.clone()))?;
    if dry {
        let p = ctx.get(&format!("/api/v1/playbooks/{id}")).await?;
        return playbook_page(&ctx, p, Some(result), StatusCode::OK).await;
    }
    Ok(redirect(
        &format!("/runs/{}", result["id"].as_str().unwrap_or_default()),
        "Run queued.",
    ))
}

/// GET /runs
pub async fn runs(ctx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, WebError> {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let q = f.api_query(&[]);
    let page = ctx.get(&format!("/api/v1/runs?{q}")).await?;
    let next = page["next_cursor"].as_str().map(|c| {
        let mut keep = FormData(f.0.iter().filter(|(k, _)| k != "cursor").cloned().collect());
        keep.0.push(("cursor".into(), c.into()));
        keep.api_query(&[])
    });
    Ok(ctx.render(
        "runs.html",
        "runs",
        "Runs",
        crate::ctx! { runs => page["items"], next => next, status => f.get("status") },
    ))
}

/// GET /runs/{id}
pub async fn run_detail(ctx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let run = ctx.get(&format!("/api/v1/runs/{id}")).await?;
    let approvals = if ctx.can(P::ApprovalsDecide) {
        ctx.get_opt("/api/v1/approvals?status=pending")
            .await?
            .map(|a| {
                a["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|x| x["run_id"] == json!(id))
                    .cloned()
                    .collect::<Vec<_>>()
            })
    } else {
        None
    };
    Ok(ctx.render(
        "run.html",
        "runs",
        "Run",
        crate::ctx! { r => run, approvals => approvals },
    ))
}

/// POST /runs/{id}/cancel
pub async fn cancel_run(ctx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let back = format!("/runs/{id}");
    ctx.send(
        Method::POST,
        &format!("/api/v1/runs/{id}/cancel"),
        &Value::Null,
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Run cancelled."))
}

/// GET /approvals (`?status=` as the API)
pub async fn approvals(ctx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, WebError> {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let status = f.get("status").unwrap_or("pending").to_string();
    let list = ctx
        .get(&format!("/api/v1/approvals?status={}", enc(&status)))
        .await?;
    Ok(ctx.render(
        "approvals.html",
        "approvals",
        "Approvals",
        crate::ctx! { approvals => list["items"], status => status },
    ))
}

/// POST /approvals/{id}/decide: `decision=approve|reject`, optional comment.
pub async fn decide(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = crate::pages::back_to(&f, "/approvals");
    let verb = match f.get("decision") {
        Some("approve") => "approve",
        Some("reject") => "reject",
        _ => {
            return Err(WebError::status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "decision: expected approve or reject",
            )
            .back(back));
        }
    };
    let body = match f.get("comment") {
        Some(c) => json!({"comment": c}),
        None => json!({}),
    };
    let a = ctx
        .send(
            Method::POST,
            &format!("/api/v1/approvals/{id}/{verb}"),
            &body,
        )
        .await
        .map_err(|e| e.back(back.clone()))?;
    let msg = match a["status"].as_str() {
        Some("pending") => "Approval recorded; more approvers are needed.".to_string(),
        Some(s) => format!("Decision recorded: {s}."),
        None => "Decision recorded.".to_string(),
    };
    Ok(redirect(&back, &msg))
}
