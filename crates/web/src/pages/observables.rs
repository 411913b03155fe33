//! Observables: search, and one observable with every alert and incident it appears in (the
//! pivot from an IP, domain or hash of an alert).

use crate::api::{Ctx, redirect, uuid};
use crate::error::WebError;
use crate::form::FormData;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// GET /observables
pub async fn list(ctx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, WebError> {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let q = f.api_query(&[]);
    let answer = ctx
        .call(Method::GET, &format!("/api/v1/observables?{q}"), None)
        .await?;
    let (page, error, status) = if answer.status.is_success() {
        (answer.body, None, StatusCode::OK)
    } else if answer.status.is_server_error() {
        return Err(WebError::from_problem(answer.status, &answer.body));
    } else {
        let e = WebError::from_problem(answer.status, &answer.body);
        (json!({"items": []}), Some(e.message()), e.status)
    };
    let next = page["next_cursor"].as_str().map(|c| {
        let mut keep = FormData(f.0.iter().filter(|(k, _)| k != "cursor").cloned().collect());
        keep.0.push(("cursor".into(), c.into()));
        keep.api_query(&[])
    });
    let mut resp = ctx.render(
        "observables.html",
        "observables",
        "Observables",
        crate::ctx! {
            observables => page["items"],
            next => next,
            error => error,
            f => crate::ctx! {
                q => f.get("q"),
                kind => f.get("kind"),
                mode => f.get("match"),
                verdict => f.get("verdict"),
                tag => f.get("tag"),
                sort => f.get("sort"),
            },
        },
    );
    *resp.status_mut() = status;
    Ok(resp)
}

/// GET /observables/{id}
pub async fn detail(ctx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let o = ctx
        .get(&format!("/api/v1/observables/{id}?sightings_limit=50"))
        .await?;
    let title = o["value"].as_str().unwrap_or("Observable").to_string();
    Ok(ctx.render(
        "observable.html",
        "observables",
        &title,
        crate::ctx! { o => o, names => crate::api::names(&ctx).await? },
    ))
}

/// POST /observables/{id}: verdict, reputation, tags, description.
pub async fn update(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/observables/{id}");
    let mut patch = serde_json::Map::new();
    if f.0.iter().any(|(k, _)| k == "verdict") {
        patch.insert("verdict".into(), json!(f.get("verdict")));
    }
    if f.0.iter().any(|(k, _)| k == "reputation_score") {
        let score = match f.get("reputation_score") {
            None => Value::Null,
            Some(s) => json!(s.parse::<i64>().map_err(|_| {
                WebError::status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "reputation_score: must be a whole number from 0 to 100",
                )
                .back(back.clone())
            })?),
        };
        patch.insert("reputation_score".into(), score);
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
    if f.0.iter().any(|(k, _)| k == "description") {
        patch.insert("description".into(), json!(f.get("description")));
    }
    ctx.send(
        Method::PATCH,
        &format!("/api/v1/observables/{id}"),
        &Value::Object(patch),
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Saved."))
}
