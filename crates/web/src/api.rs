//! The per-request context of a console page: the session, and the in-process API client the
//! page reads and writes through.
//!
//! Each console request gets a short-lived bearer token for the session's analyst (minted
//! here, never sent to the browser) and sends its API requests to the API router in the same
//! process. The API re-reads the analyst, checks the route's permission, applies the tenant
//! scope and tag rules, validates, audits and starts triggers, exactly as for any other
//! client; the console only turns forms into API requests and API answers into pages.

use crate::Web;
use crate::error::WebError;
use crate::render;
use crate::session::Session;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark_core::{Permission, Scope};
use minijinja::Value;
use serde_json::Value as Json;
use tower::ServiceExt;

const FLASH_COOKIE: &str = "bulwark_flash";

pub struct Ctx {
    pub web: Web,
    pub session: Session,
    pub rid: Option<String>,
    /// A message left by the previous request (after a redirect).
    pub flash: Option<Flash>,
    token: String,
    /// The analysts and tenants of the caller's scope, read once per request.
    analysts: tokio::sync::OnceCell<Vec<bulwark_core::model::Analyst>>,
    tenant_list: tokio::sync::OnceCell<Vec<bulwark_core::model::Tenant>>,
    /// Notification deliveries that failed in the last 24 h, for the navigation's warning
    /// (pages of analysts who may manage integrations; `None` otherwise or when none failed).
    failed_notifications: Option<FailedNotifications>,
}

/// What the navigation's warning says: `count` failed deliveries in the last 24 h, `more`
/// when there may be more than the few read.
#[derive(serde::Serialize, Clone, Copy)]
pub struct FailedNotifications {
    pub count: usize,
    pub more: bool,
}

/// At most this many failed deliveries are read for the warning (one indexed, limited query:
/// the API's `?status=failed` list, newest first).
const FAILED_NOTIFICATIONS_READ: usize = 20;

#[derive(serde::Serialize, Clone)]
pub struct Flash {
    pub kind: String,
    pub text: String,
}

impl FromRequestParts<Web> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, WebError> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| WebError::status(StatusCode::UNAUTHORIZED, "Log in first."))?;
        let token = web
            .api
            .tokens
            .issue(session.analyst.id, session.token_version)
            .map_err(WebError::from)?;
        let flash = crate::session::cookie(&parts.headers, FLASH_COOKIE).and_then(|raw| {
            let decoded: String = form_urlencoded::parse(format!("m={raw}").as_bytes())
                .find(|(k, _)| k == "m")
                .map(|(_, v)| v.into_owned())?;
            let (kind, text) = decoded.split_once(':')?;
            Some(Flash {
                kind: if kind == "error" { "error" } else { "ok" }.to_string(),
                text: text.chars().take(500).collect(),
            })
        });
        let mut ctx = Ctx {
            web: web.clone(),
            session,
            rid: parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            flash,
            token,
            analysts: Default::default(),
            tenant_list: Default::default(),
            failed_notifications: None,
        };
        // Pages only: not form posts (they redirect) nor the queue's background refresh.
        if parts.method == Method::GET
            && parts.uri.path() != "/alerts/poll"
            && ctx.can(Permission::IntegrationsManage)
        {
            ctx.failed_notifications = ctx.count_failed_notifications().await;
        }
        Ok(ctx)
    }
}

/// What the API answered.
pub struct Answer {
    pub status: StatusCode,
    pub body: Json,
}

impl Ctx {
    /// Sends one request to the API as the session's analyst.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Answer, WebError> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(rid) = &self.rid {
            req = req.header("x-request-id", rid.as_str());
        }
        let req = match body {
            Some((ctype, bytes)) => req
                .header(header::CONTENT_TYPE, ctype)
                .body(Body::from(bytes)),
            None => req.body(Body::empty()),
        }
        .map_err(|e| WebError::bad_request(format!("bad request: {e}")))?;
        let resp = self
            .web
            .internal
            .clone()
            .oneshot(req)
            .await
            .map_err(WebError::internal)?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .map_err(WebError::internal)?;
        let body = if bytes.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Json::Null)
        };
        Ok(Answer { status, body })
    }

    fn ok(answer: Answer) -> Result<Json, WebError> {
        if answer.status.is_success() {
            Ok(answer.body)
        } else {
            Err(WebError::from_problem(answer.status, &answer.body))
        }
    }

    /// GET; a non-2xx answer is an error page with the API's status and message.
    pub async fn get(&self, uri: &str) -> Result<Json, WebError> {
        Self::ok(self.call(Method::GET, uri, None).await?)
    }

    /// GET for a part of a page the analyst may not be allowed to see: `None` then.
    pub async fn get_opt(&self, uri: &str) -> Result<Option<Json>, WebError> {
        let a = self.call(Method::GET, uri, None).await?;
        match a.status {
            s if s.is_success() => Ok(Some(a.body)),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Ok(None),
            _ => Err(WebError::from_problem(a.status, &a.body)),
        }
    }

    /// A JSON request (POST, PATCH, PUT, DELETE).
    pub async fn send(&self, method: Method, uri: &str, body: &Json) -> Result<Json, WebError> {
        let bytes = serde_json::to_vec(body).map_err(WebError::internal)?;
        Self::ok(
            self.call(method, uri, Some(("application/json", bytes)))
                .await?,
        )
    }

    /// Failed notification deliveries of the last 24 h (by their last attempt), read through
    /// the API's failed list with a small limit. Best effort: a page is not refused because
    /// this warning could not be read.
    async fn count_failed_notifications(&self) -> Option<FailedNotifications> {
        let uri = format!(
            "/api/v1/notifications/deliveries?status=failed&limit={FAILED_NOTIFICATIONS_READ}"
        );
        let answer = match self.call(Method::GET, &uri, None).await {
            Ok(a) if a.status.is_success() => a,
            Ok(a) => {
                tracing::warn!(status = %a.status, "failed notifications: not readable");
                return None;
            }
            Err(_) => return None,
        };
        let items = answer.body["items"].as_array()?;
        let since = bulwark_core::time::now() - chrono::Duration::hours(24);
        let count = items
            .iter()
            .filter(|d| {
                d["updated_at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t >= since)
            })
            .count();
        (count > 0).then_some(FailedNotifications {
            count,
            more: count == FAILED_NOTIFICATIONS_READ,
        })
    }

    /// Whether the analyst holds a permission (to show or hide controls; the API decides).
    pub fn can(&self, p: Permission) -> bool {
        self.session.caller.can(p)
    }

    pub fn all_tenants(&self) -> bool {
        self.session.caller.scope == Scope::AllTenants
    }

    /// The context every page shares, merged with the page's own.
    pub fn page(&self, nav: &str, title: &str, ctx: Value) -> Value {
        let a = &self.session.analyst;
        let can: std::collections::BTreeMap<&str, bool> = self
            .session
            .caller
            .permissions
            .iter()
            .map(|p| (p.as_str(), true))
            .collect();
        let common = crate::ctx! {
            me => crate::ctx! {
                id => a.id.to_string(),
                username => a.username.clone(),
                display_name => a.display_name.clone(),
                role => a.role.as_str(),
            },
            can => can,
            all_tenants => self.all_tenants(),
            csrf => self.session.csrf.clone(),
            nav => nav,
            title => title,
            flash => self.flash.clone(),
            poll_ms => self.web.config.poll_interval.as_millis() as u64,
            failed_notifications => self.failed_notifications,
        };
        minijinja::context! { ..ctx, ..common }
    }

    /// Renders a page (200), clearing a shown flash message.
    pub fn render(&self, template: &str, nav: &str, title: &str, ctx: Value) -> Response {
        let html = match render::render(template, self.page(nav, title, ctx)) {
            Ok(h) => h,
            Err(e) => return e.into_response(),
        };
        let mut resp = axum::response::Html(html).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.flash.is_some() {
            resp.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "bulwark_flash=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                ),
            );
        }
        resp
    }
}

/// 303 to `to`, with a message shown on the next page.
pub fn redirect(to: &str, message: &str) -> Response {
    redirect_flash(to, "ok", message)
}

pub fn redirect_flash(to: &str, kind: &str, message: &str) -> Response {
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    let text: String = message.chars().take(300).collect();
    let value = format!(
        "{FLASH_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=60",
        crate::form::enc(&format!("{kind}:{text}"))
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// A UUID from a path segment; a malformed one is a 400, as in the API.
pub fn uuid(raw: &str) -> Result<uuid::Uuid, WebError> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| WebError::bad_request("The id in the address is not valid."))
}

/// The analysts of the caller's tenants, read once per request. This and [`tenants`] are the
/// console's only reads outside the API: names for ids the API answers (assignees, authors)
/// and choices for pickers, both within the caller's scope.
async fn analysts(ctx: &Ctx) -> Result<&Vec<bulwark_core::model::Analyst>, WebError> {
    ctx.analysts
        .get_or_try_init(|| async {
            ctx.web
                .api
                .store
                .list_analysts(&ctx.session.caller.scope)
                .await
                .map_err(WebError::from)
        })
        .await
}

/// Analysts' usernames by id, for the records on a page. Analysts outside the caller's
/// tenants are shown by id, as the API shows them.
pub async fn names(ctx: &Ctx) -> Result<std::collections::BTreeMap<String, String>, WebError> {
    Ok(analysts(ctx)
        .await?
        .iter()
        .map(|a| (a.id.to_string(), a.username.clone()))
        .collect())
}

/// Analysts who can be assigned work in the caller's tenants (active ones).
pub async fn assignees(ctx: &Ctx) -> Result<Vec<Json>, WebError> {
    Ok(analysts(ctx)
        .await?
        .iter()
        .filter(|a| a.is_active)
        .map(
            |a| serde_json::json!({"id": a.id.to_string(), "username": a.username, "role": a.role}),
        )
        .collect())
}

/// The tenants the caller sees (for filters and pickers), read once per request.
pub async fn tenants(ctx: &Ctx) -> Result<Vec<Json>, WebError> {
    let ts = ctx
        .tenant_list
        .get_or_try_init(|| async {
            ctx.web
                .api
                .store
                .list_tenants(&ctx.session.caller.scope)
                .await
                .map_err(WebError::from)
        })
        .await?;
    Ok(ts
        .iter()
        .map(|t| serde_json::json!({"id": t.id.to_string(), "slug": t.slug, "name": t.name}))
        .collect())
}
