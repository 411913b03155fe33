//! Administration (users and roles, API keys, tenants, tag-based access) and the analyst's own
//! account. Secrets the API returns once (a new key, a generated password) are rendered into
//! the answer to the form that created them, and nowhere else: never into a redirect, a
//! cookie or a log.

use crate::api::{Ctx, redirect, uuid};
use crate::error::WebError;
use crate::form::FormData;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

async fn users_page(ctx: &Ctx, shown: Option<Value>) -> Result<Response, WebError> {
    let users = ctx.get("/api/v1/auth/analysts").await?;
    Ok(ctx.render(
        "users.html",
        "admin",
        "Users",
        crate::ctx! { users => users, tenants => crate::api::tenants(ctx).await?, shown => shown },
    ))
}

/// GET /admin/users
pub async fn users(ctx: Ctx) -> Result<Response, WebError> {
    users_page(&ctx, None).await
}

/// POST /admin/users: a new analyst (a generated password is shown once).
pub async fn create_user(ctx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let f = FormData::parse(&body);
    let back = "/admin/users";
    let mut req = json!({
        "username": f.get("username").unwrap_or(""),
        "role": f.get("role").unwrap_or(""),
    });
    for field in ["display_name", "tenant_id", "password"] {
        if let Some(v) = f.get(field) {
            req[field] = json!(v);
        }
    }
    let grants = f.all("tenant_ids");
    if !grants.is_empty() {
        req["tenant_ids"] = json!(grants);
    }
    let created = ctx
        .send(Method::POST, "/api/v1/auth/analysts", &req)
        .await
        .map_err(|e| e.back(back))?;
    let shown = created["initial_password"]
        .as_str()
        .map(|p| json!({"username": created["analyst"]["username"], "password": p}));
    users_page(&ctx, shown).await
}

/// POST /admin/users/{id}: role, active, display name.
pub async fn update_user(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = "/admin/users";
    let mut req = serde_json::Map::new();
    if let Some(r) = f.get("role") {
        req.insert("role".into(), json!(r));
    }
    if let Some(a) = f.get("is_active") {
        req.insert("is_active".into(), json!(a == "true"));
    }
    if let Some(d) = f.get("display_name") {
        req.insert("display_name".into(), json!(d));
    }
    ctx.send(
        Method::PATCH,
        &format!("/api/v1/auth/analysts/{id}"),
        &Value::Object(req),
    )
    .await
    .map_err(|e| e.back(back))?;
    Ok(redirect(back, "Saved."))
}

/// POST /admin/users/{id}/reset: a generated password, shown once.
pub async fn reset_password(ctx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let r = ctx
        .send(
            Method::POST,
            &format!("/api/v1/auth/analysts/{id}/reset-password"),
            &json!({}),
        )
        .await
        .map_err(|e| e.back("/admin/users"))?;
    let users = ctx.get("/api/v1/auth/analysts").await?;
    let username = users
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["id"] == json!(id))
        .map(|u| u["username"].clone())
        .unwrap_or(Value::Null);
    users_page(
        &ctx,
        r["password"]
            .as_str()
            .map(|p| json!({"username": username, "password": p})),
    )
    .await
}

async fn keys_page(ctx: &Ctx, created: Option<Value>) -> Result<Response, WebError> {
    let keys = ctx.get("/api/v1/api-keys").await?;
    Ok(ctx.render(
        "api_keys.html",
        "admin",
        "API keys",
        crate::ctx! { keys => keys, tenants => crate::api::tenants(ctx).await?, created => created },
    ))
}

/// GET /admin/api-keys
pub async fn api_keys(ctx: Ctx) -> Result<Response, WebError> {
    keys_page(&ctx, None).await
}

/// POST /admin/api-keys: the new key is shown in this answer only.
pub async fn create_api_key(ctx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let f = FormData::parse(&body);
    let back = "/admin/api-keys";
    let mut req = json!({"name": f.get("name").unwrap_or(""), "scopes": f.all("scopes")});
    for field in ["tenant_id", "source"] {
        if let Some(v) = f.get(field) {
            req[field] = json!(v);
        }
    }
    if let Some(d) = f.get("expires_in_days") {
        let days: u32 = d.parse().map_err(|_| {
            WebError::status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "expires_in_days: must be a whole number of days",
            )
            .back(back)
        })?;
        req["expires_in_days"] = json!(days);
    }
    if f.get("signed").is_some() {
        req["signed"] = json!(true);
    }
    let created = ctx
        .send(Method::POST, "/api/v1/api-keys", &req)
        .await
        .map_err(|e| e.back(back))?;
    keys_page(&ctx, Some(created)).await
}

/// POST /admin/api-keys/{id}/revoke
pub async fn revoke_api_key(ctx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let back = "/admin/api-keys";
    ctx.send(
        Method::DELETE,
        &format!("/api/v1/api-keys/{id}"),
        &Value::Null,
    )
    .await
    .map_err(|e| e.back(back))?;
    Ok(redirect(back, "Key revoked."))
}

/// GET /admin/tenants
pub async fn tenants(ctx: Ctx) -> Result<Response, WebError> {
    let list = ctx.get("/api/v1/tenants").await?;
    Ok(ctx.render(
        "tenants.html",
        "admin",
        "Tenants",
        crate::ctx! { list => list },
    ))
}

/// POST /admin/tenants
pub async fn create_tenant(ctx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let f = FormData::parse(&body);
    let back = "/admin/tenants";
    let slug = f.get("slug").unwrap_or("");
    let req = json!({"slug": slug, "name": f.get("name").unwrap_or(slug)});
    ctx.send(Method::POST, "/api/v1/tenants", &req)
        .await
        .map_err(|e| e.back(back))?;
    Ok(redirect(back, "Tenant created."))
}

/// GET /admin/tenants/{id}/tag-access
pub async fn tag_access(ctx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let tenant = ctx.get(&format!("/api/v1/tenants/{id}")).await?;
    let config = ctx.get(&format!("/api/v1/tenants/{id}/tag-access")).await?;
    let rules_text = config["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} {}",
                r["subject"].as_str().unwrap_or(""),
                r["tag"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(ctx.render(
        "tag_access.html",
        "admin",
        "Tag-based access",
        crate::ctx! { tenant => tenant, c => config, rules_text => rules_text },
    ))
}

/// POST /admin/tenants/{id}/tag-access: the settings and the rules, one `subject tag` a line.
pub async fn save_tag_access(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let id = uuid(&id)?;
    let f = FormData::parse(&body);
    let back = format!("/admin/tenants/{id}/tag-access");
    let mut rules = Vec::new();
    let text =
        f.0.iter()
            .find(|(k, _)| k == "rules")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((subject, tag)) = line.split_once(char::is_whitespace) else {
            return Err(WebError::status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "rules, line {}: expected `subject tag`, e.g. `role:viewer soc`",
                    n + 1
                ),
            )
            .back(back));
        };
        rules.push(json!({"subject": subject.trim(), "tag": tag.trim()}));
    }
    let req = json!({
        "enabled": f.get("enabled").is_some(),
        "untagged": f.get("untagged").unwrap_or("visible_to_all"),
        "default_tag": f.get("default_tag"),
        "rules": rules,
    });
    ctx.send(
        Method::PUT,
        &format!("/api/v1/tenants/{id}/tag-access"),
        &req,
    )
    .await
    .map_err(|e| e.back(back.clone()))?;
    Ok(redirect(&back, "Tag-based access saved."))
}

/// GET /account
pub async fn account(ctx: Ctx) -> Result<Response, WebError> {
    Ok(ctx.render("account.html", "account", "Your account", crate::ctx! {}))
}

/// POST /account: change your own password (this session continues; others end).
pub async fn change_password(ctx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let f = FormData::parse(&body);
    let req = json!({
        "current_password": f.get("current_password").unwrap_or(""),
        "new_password": f.get("new_password").unwrap_or(""),
    });
    ctx.send(Method::POST, "/api/v1/auth/change-password", &req)
        .await
        .map_err(|e| e.back("/account"))?;
    // The token version moved on: every session ends, this one included.
    Ok(redirect(
        "/login",
        "Password changed. Log in with the new password.",
    ))
}
