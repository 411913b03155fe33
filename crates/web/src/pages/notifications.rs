//! Administration › Notifications: the tenant's notification rules (enable/disable, send a
//! test) and the deliveries, failed ones first, with their channel's reason and a retry.
//!
//! Rules are read with `integrations:read` (viewers and analysts see them, without controls);
//! deliveries and every change need `integrations:manage`, as in the API, which decides. The
//! page never shows an integration's configuration or secrets (only its name and type), nor a
//! delivery's event context: the API's redacted `last_error` and the rendered title are enough
//! to see what failed.

use crate::api::{Ctx, redirect, redirect_flash, uuid};
use crate::error::WebError;
use crate::form::FormData;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::Method;
use axum::response::Response;
use bulwark_core::Permission;
use serde_json::{Value, json};

const PAGE: &str = "/admin/notifications";

/// The statuses a delivery list may be filtered by; `failed` is the default view.
const STATUSES: &[&str] = &["failed", "retrying", "queued", "sent", "all"];

/// GET /admin/notifications (`?status=failed|retrying|queued|sent|all`, `&cursor=`)
pub async fn page(ctx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, WebError> {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let status = f
        .get("status")
        .filter(|s| STATUSES.contains(s))
        .unwrap_or("failed")
        .to_string();
    let rules = ctx.get("/api/v1/notifications/rules").await?;
    // Names and types of the channels only: an instance's configuration stays out of the page.
    let channels: serde_json::Map<String, Value> = ctx
        .get_opt("/api/v1/integrations")
        .await?
        .and_then(|l| l["items"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| {
            let id = i["id"].as_str()?.to_string();
            Some((id, json!({"name": i["name"], "type": i["type_name"]})))
        })
        .collect();
    let (deliveries, next) = if ctx.can(Permission::IntegrationsManage) {
        // `status` is one of STATUSES and the cursor a parsed UUID: nothing to encode.
        let mut q = "limit=50".to_string();
        if status != "all" {
            q.push_str(&format!("&status={status}"));
        }
        if let Some(c) = f.get("cursor") {
            q.push_str(&format!("&cursor={}", uuid(c)?));
        }
        let list = ctx
            .get(&format!("/api/v1/notifications/deliveries?{q}"))
            .await?;
        let next = list["next_cursor"]
            .as_str()
            .map(|c| format!("status={status}&cursor={c}"));
        (Some(list["items"].clone()), next)
    } else {
        (None, None)
    };
    Ok(ctx.render(
        "notifications.html",
        "admin",
        "Notifications",
        crate::ctx! {
            rules => rules["items"],
            channels => channels,
            deliveries => deliveries,
            status => status,
            statuses => STATUSES,
            next => next,
            tenants => crate::api::tenants(&ctx).await?,
        },
    ))
}

/// POST /admin/notifications/rules/{id}/enabled (`enabled=true|false`)
pub async fn set_enabled(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let enabled = f.get("enabled") == Some("true");
    ctx.send(
        Method::PATCH,
        &format!("/api/v1/notifications/rules/{id}"),
        &json!({ "enabled": enabled }),
    )
    .await
    .map_err(|e| e.back(PAGE))?;
    Ok(redirect(
        PAGE,
        if enabled {
            "Rule enabled."
        } else {
            "Rule disabled."
        },
    ))
}

/// POST /admin/notifications/rules/{id}/test: sends a test message now. A failed test is
/// listed with the failed deliveries (with the channel's reason); the message says where.
pub async fn test(ctx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let d = ctx
        .send(
            Method::POST,
            &format!("/api/v1/notifications/rules/{id}/test"),
            &Value::Null,
        )
        .await
        .map_err(|e| e.back(PAGE))?;
    if d["status"] == "sent" {
        Ok(redirect(PAGE, "Test message sent."))
    } else {
        Ok(redirect_flash(
            &format!("{PAGE}?status=failed"),
            "error",
            "The test message could not be sent: the channel's reason is in the failed deliveries below.",
        ))
    }
}

/// POST /admin/notifications/deliveries/{id}/retry: queues a failed delivery again.
pub async fn retry(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = super::back_to(&f, PAGE);
    ctx.send(
        Method::POST,
        &format!("/api/v1/notifications/deliveries/{id}/retry"),
        &Value::Null,
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Delivery queued again."))
}
