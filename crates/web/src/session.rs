//! Console sessions and CSRF protection.
//!
//! - **Session**: 32 random bytes (base64url) in an HttpOnly, SameSite=Strict cookie, `Secure`
//!   (and named `__Host-bulwark_session`) when the request came over TLS or the configuration
//!   says so. The database keeps only the SHA-256 of the id, with the analyst, the analyst's
//!   token version at login, a CSRF token, and the absolute and idle expiry times, so any API
//!   node (PostgreSQL) recognises the session and logging out deletes it everywhere. A
//!   password change or a disabled account ends the session on the next request (the token
//!   version or `is_active` no longer match), exactly as it ends API tokens.
//! - **Login** reuses the API's check (`bulwark_api::routes::auth::check_login`): the same
//!   per-username throttle, the same argon2 pool and timing for unknown users, the same audit
//!   records. A new session id is issued at every login (no fixation).
//! - **CSRF**: every request that is not GET/HEAD must carry the session's CSRF token (form
//!   field `_csrf` or header `X-CSRF-Token`, compared in constant time) and must not come from
//!   another site (`Sec-Fetch-Site`, else `Origin`, must be same-origin when the browser sends
//!   them). The login form, which has no session yet, uses a double-submit cookie and the same
//!   origin checks. SameSite=Strict is a further layer, not the only one.

use crate::Web;
use crate::error::WebError;
use crate::form::FormData;
use crate::render;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use bulwark_core::Caller;
use bulwark_core::model::Analyst;
use bulwark_store::sessions::NewSession;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

const COOKIE: &str = "bulwark_session";
const SECURE_COOKIE: &str = "__Host-bulwark_session";
const LOGIN_COOKIE: &str = "bulwark_login";
/// A session's `last_seen_at` is written at most this often (not on every page).
const TOUCH_EVERY_SECS: i64 = 60;

/// When the session cookie gets the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    /// When the request came over TLS (`X-Forwarded-Proto: https` from a trusted proxy).
    Auto,
    Always,
    Never,
}

impl std::str::FromStr for CookieSecure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "always" | "true" => Ok(Self::Always),
            "never" | "false" => Ok(Self::Never),
            _ => Err("expected auto, always or never".into()),
        }
    }
}

/// Console settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// A session ends this long after login, however active.
    pub session_ttl: Duration,
    /// A session ends after this long without a page request (the queue's background refresh
    /// does not count as activity).
    pub session_idle: Duration,
    pub cookie_secure: CookieSecure,
    /// How often the queue asks for new alerts.
    pub poll_interval: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            session_idle: Duration::from_secs(3600),
            cookie_secure: CookieSecure::Auto,
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// The logged-in analyst of a request, put in the request's extensions by [`require`].
#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
    pub analyst: Arc<Analyst>,
    pub token_version: i64,
    pub csrf: String,
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SECURE_COOKIE)
        .or_else(|| cookie(headers, COOKIE))
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

fn secure(web: &Web, headers: &HeaderMap) -> bool {
    match web.config.cookie_secure {
        CookieSecure::Always => true,
        CookieSecure::Never => false,
        CookieSecure::Auto => {
            web.api.config.limits.trust_forwarded_for
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
        }
    }
}

fn set_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn session_cookie(secure: bool, value: &str, max_age: Option<i64>) -> String {
    let (name, flags) = if secure {
        (SECURE_COOKIE, "; Secure")
    } else {
        (COOKIE, "")
    };
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{flags}{age}")
}

/// Clears the session cookie under both names.
fn clear_session_cookies(resp: &mut Response) {
    set_cookie(
        resp,
        &format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    set_cookie(
        resp,
        &format!("{SECURE_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0"),
    );
}

enum Lookup {
    Live(Session),
    /// No cookie, an unknown id, or a session that ended.
    None,
}

async fn load(web: &Web, id: &str, now: DateTime<Utc>, active: bool) -> Result<Lookup, WebError> {
    let hash = digest(id);
    let Some(row) = web.api.store.session_by_hash(&hash).await? else {
        return Ok(Lookup::None);
    };
    let idle =
        chrono::Duration::from_std(web.config.session_idle).unwrap_or(chrono::Duration::hours(1));
    let ended = now >= row.expires_at || now - row.last_seen_at > idle;
    let creds = if ended {
        None
    } else {
        web.api.store.credentials_by_id(row.analyst_id).await?
    };
    let Some(creds) = creds.filter(|c| c.analyst.is_active && c.token_version == row.token_version)
    else {
        web.api.store.delete_session(&hash).await?;
        return Ok(Lookup::None);
    };
    if active && (now - row.last_seen_at).num_seconds() >= TOUCH_EVERY_SECS {
        web.api.store.touch_session(&hash, now).await?;
    }
    let caller =
        bulwark_api::auth::caller_for_analyst(&creds.analyst, web.api.config.platform_tenant);
    Ok(Lookup::Live(Session {
        caller,
        analyst: Arc::new(creds.analyst),
        token_version: creds.token_version,
        csrf: row.csrf_token,
    }))
}

fn is_mutation(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Requests the browser marks as coming from another site are refused: `Sec-Fetch-Site`
/// when sent (every current browser), else `Origin` compared with `Host`.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or("");
            !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
        }
    }
}

fn tokens_match(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Wants JSON back (the queue's background refresh), rather than a page.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Route middleware of every console page except the login page: resolves the session (or
/// sends the browser to the login page), and checks CSRF token and origin on mutations.
pub async fn require(State(web): State<Web>, req: Request, next: Next) -> Response {
    let now = bulwark_core::time::now();
    let passive = req.uri().path() == "/alerts/poll";
    let lookup = match session_id(req.headers()) {
        Some(id) => match load(&web, id, now, !passive).await {
            Ok(l) => l,
            Err(e) => return e.into_response(),
        },
        None => Lookup::None,
    };
    let session = match lookup {
        Lookup::Live(s) => s,
        Lookup::None => {
            let mut resp = if wants_json(req.headers()) {
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(serde_json::json!({"error": "session ended", "login": "/login"})),
                )
                    .into_response()
            } else if req.method() == Method::GET {
                let next_path = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default();
                let target = format!(
                    "/login?next={}",
                    form_urlencoded::byte_serialize(next_path.as_bytes()).collect::<String>()
                );
                Redirect::to(&target).into_response()
            } else {
                WebError::status(
                    StatusCode::UNAUTHORIZED,
                    "Your session has ended. Log in again.",
                )
                .into_response()
            };
            if session_id(req.headers()).is_some() {
                clear_session_cookies(&mut resp);
            }
            return resp;
        }
    };
    let req = if is_mutation(req.method()) {
        match check_csrf(&web, &session, req).await {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        }
    } else {
        req
    };
    let mut req = req;
    req.extensions_mut().insert(session);
    next.run(req).await
}

/// Checks origin and token; hands the request on with its (buffered) body.
async fn check_csrf(web: &Web, session: &Session, req: Request) -> Result<Request, WebError> {
    if !same_origin(req.headers()) {
        return Err(WebError::status(
            StatusCode::FORBIDDEN,
            "This request came from another site and was refused.",
        ));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, web.api.config.body_limit)
        .await
        .map_err(|_| WebError::status(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
    let header_token = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let token = header_token.or_else(|| FormData::parse(&bytes).get("_csrf").map(str::to_string));
    if !token.is_some_and(|t| tokens_match(&t, &session.csrf)) {
        return Err(WebError::status(
            StatusCode::FORBIDDEN,
            "The form has expired or did not come from this console. Reload the page and try again.",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A local path to go to after login; anything else (another site, `//host`) is ignored.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.starts_with("/login")
                && n.len() < 2000 =>
        {
            n.to_string()
        }
        _ => "/alerts".to_string(),
    }
}

fn login_response(
    web: &Web,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
    next: Option<&str>,
    username: &str,
) -> Response {
    let token = random_token();
    let ctx = crate::ctx! {
        error => error,
        next => next.map(|n| safe_next(Some(n))),
        username => username,
        login_csrf => token,
        expired => false,
    };
    let mut resp = render::page_response("login.html", ctx, status);
    let secure = secure(web, headers);
    set_cookie(
        &mut resp,
        &format!(
            "{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
            if secure { "; Secure" } else { "" }
        ),
    );
    resp
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// GET /login
pub async fn login_page(
    State(web): State<Web>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    login_response(&web, &headers, StatusCode::OK, None, q.next.as_deref(), "")
}

/// POST /login
pub async fn login(State(web): State<Web>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    let next = form.get("next").map(str::to_string);
    let username = form.get("username").unwrap_or("").trim().to_string();
    let fail = |status, msg: &str| {
        login_response(
            &web,
            &headers,
            status,
            Some(msg),
            next.as_deref(),
            &username,
        )
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !same_origin(&headers) || !tokens_match(form.get("_login_csrf").unwrap_or(""), expected) {
        return fail(
            StatusCode::FORBIDDEN,
            "The login form expired. Please try again.",
        );
    }
    let password = form.get("password").unwrap_or("").to_string();
    if username.is_empty() || password.is_empty() {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your username and password.",
        );
    }
    let rid = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let creds =
        match bulwark_api::routes::auth::check_login(&web.api, rid, &username, password).await {
            Ok(c) => c,
            Err(bulwark_api::error::ApiError::TooManyRequests { retry_after_secs }) => {
                let mut r = fail(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("Too many failed attempts. Try again in {retry_after_secs} s."),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                return r;
            }
            Err(bulwark_api::error::ApiError::Unauthorized(_)) => {
                return fail(StatusCode::UNAUTHORIZED, "Invalid username or password.");
            }
            Err(e) => return WebError::from(e).into_response(),
        };
    let now = bulwark_core::time::now();
    let ttl =
        chrono::Duration::from_std(web.config.session_ttl).unwrap_or(chrono::Duration::hours(12));
    let idle =
        chrono::Duration::from_std(web.config.session_idle).unwrap_or(chrono::Duration::hours(1));
    // A session this browser had before is replaced, not left to expire.
    if let Some(old) = session_id(&headers)
        && let Err(e) = web.api.store.delete_session(&digest(old)).await
    {
        tracing::warn!(error = %e, "could not delete the session replaced by a login");
    }
    // Ended sessions are removed at logins: the table holds live sessions only.
    if let Err(e) = web.api.store.purge_sessions(now, now - idle).await {
        tracing::warn!(error = %e, "could not purge ended console sessions");
    }
    let id = random_token();
    let new = NewSession {
        id_hash: digest(&id),
        analyst_id: creds.analyst.id,
        token_version: creds.token_version,
        csrf_token: random_token(),
        created_at: now,
        expires_at: now + ttl,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect()),
        client_ip: None,
    };
    if let Err(e) = web.api.store.create_session(&new).await {
        return WebError::from(e).into_response();
    }
    let mut resp = Redirect::to(&safe_next(next.as_deref())).into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    set_cookie(
        &mut resp,
        &session_cookie(secure(&web, &headers), &id, Some(ttl.num_seconds())),
    );
    set_cookie(
        &mut resp,
        &format!("{LOGIN_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

/// POST /logout: deletes the session row (on every node) and the cookie.
pub async fn logout(State(web): State<Web>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers)
        && let Err(e) = web.api.store.delete_session(&digest(id)).await
    {
        return WebError::from(e).into_response();
    }
    let mut resp = Redirect::to("/login").into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    clear_session_cookies(&mut resp);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/alerts?status=new")), "/alerts?status=new");
        assert_eq!(safe_next(Some("//evil.example/x")), "/alerts");
        assert_eq!(safe_next(Some("https://evil.example")), "/alerts");
        assert_eq!(safe_next(Some("/\\evil.example")), "/alerts");
        assert_eq!(safe_next(Some("/login")), "/alerts");
        assert_eq!(safe_next(None), "/alerts");
    }

    #[test]
    fn origin_checks() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h), "non-browser clients rely on the token");
        h.insert(header::HOST, HeaderValue::from_static("soc.example:8000"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://soc.example:8000"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("ab", "abc"));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xbulwark_session=1; bulwark_session=abc; other=2"),
        );
        assert_eq!(session_id(&h), Some("abc"));
    }
}
