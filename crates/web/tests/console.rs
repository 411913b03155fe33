//! The console over HTTP, in process, with a real store (SQLite, or PostgreSQL when
//! `BULWARK_TEST_DATABASE_URL` says so): sessions, CSRF, security headers, permissions and
//! tenant scope as the API applies them, bad input.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use bulwark_api::{ApiConfig, State};
use bulwark_core::credentials::hash_password;
use bulwark_core::model::Analyst;
use bulwark_core::{Role, TenantId};
use bulwark_store::testing::{TestDb, fresh};
use bulwark_store::{ChangeCtx, NewAnalyst, NewTenant, Store};
use bulwark_web::{CookieSecure, WebConfig};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";

fn password_hash() -> String {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_password(PASSWORD).expect("hash"))
        .clone()
}

struct App {
    router: Router,
    state: State,
    store: Store,
    platform: TenantId,
    admin_token: String,
    _db: TestDb,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }

    /// The value of `name="…" value="…"` or `name="csrf-token" content="…"` in the page.
    fn field(&self, name: &str) -> String {
        for (pat, attr) in [
            (format!("name=\"{name}\" value=\""), ""),
            (format!("name=\"{name}\" content=\""), ""),
        ] {
            let _ = attr;
            if let Some(i) = self.body.find(&pat) {
                let rest = &self.body[i + pat.len()..];
                return rest.split('"').next().unwrap_or("").to_string();
            }
        }
        panic!("no field {name} in the page:\n{}", self.body);
    }
}

/// A logged-in browser: its session cookie and the page's CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl App {
    async fn new(config: WebConfig) -> App {
        Self::with_api(config, |_| {}).await
    }

    /// With the API's settings changed by `f` (e.g. outbound calls to a local fake allowed).
    async fn with_api(config: WebConfig, f: impl FnOnce(&mut ApiConfig)) -> App {
        let db = fresh().await;
        let store = db.store.clone();
        let platform = store
            .create_tenant(
                &ChangeCtx::system("test"),
                NewTenant {
                    slug: "default".into(),
                    name: "Default".into(),
                },
            )
            .await
            .expect("tenant")
            .id;
        let mut api = ApiConfig::new(b"test-secret-test-secret-test-secret!".to_vec(), platform);
        api.playbook_refresh = Duration::ZERO;
        api.limits.trust_forwarded_for = true;
        f(&mut api);
        let state = State::new(store.clone(), api, None);
        let router =
            bulwark_api::router_with(state.clone(), bulwark_web::router(state.clone(), config));
        let mut app = App {
            router,
            state,
            store,
            platform,
            admin_token: String::new(),
            _db: db,
        };
        let admin = app.user("admin", Role::Admin, platform).await;
        app.admin_token = app.state.tokens.issue(admin.id, 0).expect("token");
        app
    }

    async fn user(&self, name: &str, role: Role, tenant: TenantId) -> Analyst {
        self.store
            .create_analyst(
                &ChangeCtx::system("test"),
                NewAnalyst {
                    tenant_id: tenant,
                    username: name.into(),
                    display_name: name.into(),
                    password_hash: password_hash(),
                    role,
                    tenant_ids: vec![],
                },
            )
            .await
            .expect("analyst")
    }

    async fn tenant(&self, slug: &str) -> TenantId {
        self.store
            .create_tenant(
                &ChangeCtx::system("test"),
                NewTenant {
                    slug: slug.into(),
                    name: slug.into(),
                },
            )
            .await
            .expect("tenant")
            .id
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = String::from_utf8_lossy(&bytes).to_string();
        assert!(
            !status.is_server_error(),
            "{status} must not happen:\n{body}"
        );
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, s: Option<&Session>) -> Resp {
        let mut b = Request::builder().uri(path);
        if let Some(s) = s {
            b = b.header(header::COOKIE, &s.cookie);
        }
        self.send(b.body(Body::empty()).expect("request")).await
    }

    /// A form POST as a browser on this site sends it.
    async fn post(&self, path: &str, s: Option<&Session>, form: &[(&str, &str)]) -> Resp {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin");
        if let Some(s) = s {
            b = b.header(header::COOKIE, &s.cookie);
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(b.body(Body::from(body)).expect("request")).await
    }

    /// Posts with the session's CSRF token added.
    async fn act(&self, path: &str, s: &Session, form: &[(&str, &str)]) -> Resp {
        let mut all = form.to_vec();
        all.push(("_csrf", &s.csrf));
        self.post(path, Some(s), &all).await
    }

    async fn api(&self, method: Method, path: &str, body: Value) -> Value {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.admin_token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let r = self.send(req).await;
        assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
        serde_json::from_str(&r.body).unwrap_or(Value::Null)
    }

    /// Stores an alert through the webhook of `tenant` and returns its id.
    async fn alert(&self, tenant: TenantId, title: &str) -> String {
        let key = self
            .api(
                Method::POST,
                "/api/v1/api-keys",
                json!({"name": "k", "scopes": ["webhooks:ingest"], "tenant_id": tenant}),
            )
            .await["key"]
            .as_str()
            .expect("key")
            .to_string();
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/webhooks/alerts/generic")
            .header("x-api-key", key)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"title": title, "severity": "high", "source_ip": "203.0.113.5"}).to_string(),
            ))
            .expect("request");
        let r = self.send(req).await;
        assert!(r.status.is_success(), "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).expect("json");
        v["alert_id"].as_str().expect("id").to_string()
    }

    async fn login_with(&self, user: &str, password: &str, extra: &[(&str, &str)]) -> Resp {
        let page = self.get("/login", None).await;
        assert_eq!(page.status, StatusCode::OK);
        let token = page.field("_login_csrf");
        let login_cookie = page
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("bulwark_login="))
            .expect("login cookie");
        let login_cookie = login_cookie.split(';').next().unwrap_or("").to_string();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("username", user),
                ("password", password),
                ("_login_csrf", &token),
            ])
            .finish();
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, login_cookie)
            .header("sec-fetch-site", "same-origin");
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body)).expect("request")).await
    }

    async fn login(&self, user: &str) -> Session {
        let r = self.login_with(user, PASSWORD, &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let cookie = r
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("bulwark_session="))
            .expect("session cookie");
        let cookie = cookie.split(';').next().unwrap_or("").to_string();
        let page = self
            .get(
                "/account",
                Some(&Session {
                    cookie: cookie.clone(),
                    csrf: String::new(),
                }),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        Session {
            csrf: page.field("csrf-token"),
            cookie,
        }
    }
}

#[tokio::test]
async fn pages_need_a_session_and_carry_strict_security_headers() {
    let app = App::new(WebConfig::default()).await;
    let r = app.get("/alerts?status=new", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2Falerts%3Fstatus%3Dnew");
    let csp = r.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(r.headers.contains_key(header::REFERRER_POLICY));

    let r = app.get("/login", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        !r.body.contains("<script>") && !r.body.contains("style="),
        "no inline script or style"
    );
    // A mutation without a session is refused, not redirected.
    let r = app.post("/alerts/bulk", None, &[("id", "x")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The API is untouched by the console's headers and still answers problem+json.
    let r = app.get("/api/v1/alerts", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    // Static assets.
    let r = app.get("/static/app.js", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("use strict"));
    assert_eq!(
        app.get("/static/nope.js", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn login_sets_a_strict_cookie_stores_only_a_hash_and_logout_ends_it() {
    let app = App::new(WebConfig::default()).await;
    let r = app.login_with("admin", "wrong password!!", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Invalid username or password"));
    let r = app.login_with("admin", PASSWORD, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/alerts");
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("bulwark_session="))
        .expect("cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains("Secure"), "plain HTTP by default");
    let id = cookie
        .trim_start_matches("bulwark_session=")
        .split(';')
        .next()
        .expect("id")
        .to_string();
    // The database keeps the digest, not the id.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes()).to_vec();
    assert!(
        app.store
            .session_by_hash(&digest)
            .await
            .expect("lookup")
            .is_some()
    );
    assert!(
        app.store
            .session_by_hash(id.as_bytes())
            .await
            .expect("lookup")
            .is_none()
    );

    // Behind a TLS proxy the cookie is Secure and __Host- prefixed.
    let r = app
        .login_with("admin", PASSWORD, &[("x-forwarded-proto", "https")])
        .await;
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-bulwark_session="))
        .expect("secure cookie");
    assert!(cookie.contains("; Secure"));

    let s = app.login("admin").await;
    assert_eq!(app.get("/alerts", Some(&s)).await.status, StatusCode::OK);
    // Logging out needs the CSRF token too.
    assert_eq!(
        app.post("/logout", Some(&s), &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app.act("/logout", &s, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");
    let r = app.get("/alerts", Some(&s)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the session ended");
    assert!(r.location().starts_with("/login"));
}

#[tokio::test]
async fn login_is_throttled_like_the_api_and_disabled_users_cannot_log_in() {
    let app = App::new(WebConfig::default()).await;
    let a = app.user("mallory", Role::Analyst, app.platform).await;
    for _ in 0..5 {
        let r = app.login_with("mallory", "not the password", &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.login_with("mallory", PASSWORD, &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key(header::RETRY_AFTER));

    let b = app.user("bob", Role::Analyst, app.platform).await;
    let s = app.login("bob").await;
    app.store
        .update_analyst(
            &ChangeCtx::system("test"),
            &bulwark_core::Scope::AllTenants,
            b.id,
            bulwark_store::AnalystPatch {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
    assert_eq!(
        app.get("/alerts", Some(&s)).await.status,
        StatusCode::SEE_OTHER,
        "a disabled account's session ends at once"
    );
    assert_eq!(
        app.login_with("bob", PASSWORD, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let _ = a;
}

#[tokio::test]
async fn sessions_expire_when_idle_and_when_the_password_changes() {
    let app = App::new(WebConfig {
        session_idle: Duration::from_secs(1),
        ..WebConfig::default()
    })
    .await;
    let s = app.login("admin").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = app.get("/alerts", Some(&s)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "idle too long");

    let app = App::new(WebConfig::default()).await;
    let a = app.user("carol", Role::Analyst, app.platform).await;
    let s = app.login("carol").await;
    app.store
        .set_password(
            &ChangeCtx::system("test"),
            &bulwark_core::Scope::AllTenants,
            a.id,
            password_hash(),
        )
        .await
        .expect("reset");
    let r = app.get("/alerts", Some(&s)).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "a new password ends sessions"
    );
}

#[tokio::test]
async fn mutations_need_the_csrf_token_and_the_same_origin() {
    let app = App::new(WebConfig::default()).await;
    let id = app.alert(app.platform, "csrf target").await;
    let s = app.login("admin").await;
    let path = format!("/alerts/{id}/claim");
    let r = app.post(&path, Some(&s), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no token");
    let r = app.post(&path, Some(&s), &[("_csrf", "forged")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "wrong token");
    let cross = Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &s.cookie)
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(format!("_csrf={}", s.csrf)))
        .expect("request");
    assert_eq!(
        app.send(cross).await.status,
        StatusCode::FORBIDDEN,
        "another site, even with the token"
    );
    let header_token = Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header(header::ORIGIN, "http://localhost")
        .header(header::HOST, "localhost")
        .body(Body::empty())
        .expect("request");
    let r = app.send(header_token).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let a = app
        .api(Method::GET, &format!("/api/v1/alerts/{id}"), Value::Null)
        .await;
    assert_eq!(a["status"], "in_progress", "claimed");
}

#[tokio::test]
async fn a_viewer_sees_no_controls_and_every_crafted_mutation_is_refused() {
    let app = App::new(WebConfig::default()).await;
    let id = app.alert(app.platform, "viewer target").await;
    app.user("vera", Role::Viewer, app.platform).await;
    let s = app.login("vera").await;
    let page = app.get(&format!("/alerts/{id}"), Some(&s)).await;
    assert_eq!(page.status, StatusCode::OK);
    for control in [
        "resolve-form",
        "claim-form",
        "escalate-form",
        "action=\"/alerts/bulk\"",
        "/comments\"",
        "name=\"playbook_id\"",
    ] {
        assert!(!page.body.contains(control), "a viewer sees no `{control}`");
    }
    let queue = app.get("/alerts", Some(&s)).await;
    assert!(!queue.body.contains("id=\"bulk\"") && !queue.body.contains("name=\"id\""));
    assert!(!queue.body.contains("href=\"/admin/"));

    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/alerts/{id}/update"),
            vec![
                ("action", "resolve"),
                ("determination", "benign"),
                ("resolve_reason", "duplicate"),
            ],
        ),
        (format!("/alerts/{id}/claim"), vec![]),
        (format!("/alerts/{id}/comments"), vec![("body", "hi")]),
        (format!("/alerts/{id}/incident"), vec![("title", "x")]),
        (
            "/alerts/bulk".to_string(),
            vec![("id", id.as_str()), ("action", "escalate")],
        ),
        ("/incidents".to_string(), vec![("title", "x")]),
        (
            "/admin/users".to_string(),
            vec![("username", "eve"), ("role", "admin")],
        ),
        ("/admin/tenants".to_string(), vec![("slug", "evil")]),
        (
            "/admin/api-keys".to_string(),
            vec![("name", "k"), ("scopes", "read")],
        ),
    ];
    for (path, form) in forms {
        let r = app.act(&path, &s, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
    let a = app
        .api(Method::GET, &format!("/api/v1/alerts/{id}"), Value::Null)
        .await;
    assert_eq!(a["status"], "new", "nothing changed");
    for page in [
        "/admin/users",
        "/admin/api-keys",
        "/admin/tenants",
        "/approvals",
    ] {
        assert_eq!(
            app.get(page, Some(&s)).await.status,
            StatusCode::FORBIDDEN,
            "{page}"
        );
    }
}

#[tokio::test]
async fn another_tenants_records_are_not_found() {
    let app = App::new(WebConfig::default()).await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let id = app.alert(acme, "acme only").await;
    let incident = app
        .api(
            Method::POST,
            "/api/v1/incidents",
            json!({"title": "acme incident", "alert_ids": [id]}),
        )
        .await["id"]
        .as_str()
        .expect("incident")
        .to_string();
    app.user("gadmin", Role::Admin, globex).await;
    let s = app.login("gadmin").await;
    assert_eq!(
        app.get(&format!("/alerts/{id}"), Some(&s)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/incidents/{incident}"), Some(&s))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .act(
            &format!("/alerts/{id}/update"),
            &s,
            &[("action", "escalate")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let queue = app.get("/alerts", Some(&s)).await;
    assert!(!queue.body.contains("acme only"));
    let r = app
        .act(
            "/alerts/bulk",
            &s,
            &[("id", id.as_str()), ("action", "escalate")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let a = app
        .api(Method::GET, &format!("/api/v1/alerts/{id}"), Value::Null)
        .await;
    assert_eq!(a["status"], "new", "the bulk action did not reach it");

    // The same calls inside the tenant work.
    app.user("aana", Role::Analyst, acme).await;
    let s = app.login("aana").await;
    assert_eq!(
        app.get(&format!("/alerts/{id}"), Some(&s)).await.status,
        StatusCode::OK
    );
    let r = app
        .act(
            &format!("/alerts/{id}/update"),
            &s,
            &[("action", "escalate")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let app = App::new(WebConfig::default()).await;
    let id = app.alert(app.platform, "input target").await;
    let s = app.login("admin").await;
    for (path, status) in [
        ("/alerts?since=yesterday", StatusCode::UNPROCESSABLE_ENTITY),
        ("/alerts?severity=bogus", StatusCode::UNPROCESSABLE_ENTITY),
        ("/alerts?assignee_id=nope", StatusCode::UNPROCESSABLE_ENTITY),
        ("/alerts?cursor=nope", StatusCode::UNPROCESSABLE_ENTITY),
        ("/alerts/not-a-uuid", StatusCode::BAD_REQUEST),
        (
            "/alerts/00000000-0000-7000-8000-000000000000",
            StatusCode::NOT_FOUND,
        ),
        ("/incidents/1", StatusCode::BAD_REQUEST),
        ("/incidents?status=nope", StatusCode::UNPROCESSABLE_ENTITY),
        ("/observables?kind=nope", StatusCode::UNPROCESSABLE_ENTITY),
        ("/runs?status=nope", StatusCode::UNPROCESSABLE_ENTITY),
        ("/approvals?status=nope", StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/playbooks/00000000-0000-7000-8000-000000000000",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = app.get(path, Some(&s)).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
    }
    let r = app.get("/alerts?severity=bogus", Some(&s)).await;
    assert!(r.body.contains("severity"), "the field is named");
    for (form, field) in [
        (
            vec![("action", "resolve"), ("determination", "evil")],
            "determination",
        ),
        (
            vec![
                ("action", "resolve"),
                ("determination", "benign"),
                ("resolve_reason", "true_positive"),
            ],
            "resolve_reason",
        ),
        (vec![("status", "teleported")], "status"),
        (vec![], "Choose what to change"),
    ] {
        let r = app.act(&format!("/alerts/{id}/update"), &s, &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        assert!(r.body.contains(field), "{field}: {}", r.body);
    }
    let r = app
        .act(
            "/playbooks",
            &s,
            &[("source", "name: Bad Name\ntriggers: []\nactions: []\n")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("validation-errors") && r.body.contains("line"));
}

#[tokio::test]
async fn the_queue_poll_returns_only_new_alerts_as_rows() {
    let app = App::new(WebConfig::default()).await;
    let first = app.alert(app.platform, "already shown").await;
    let s = app.login("admin").await;
    let queue = app.get("/alerts", Some(&s)).await;
    assert!(queue.body.contains("data-poll=\"/alerts/poll?"));
    // A quick time range is sent as a closed window (since and until).
    let ranged = app.get("/alerts?time=24h&sort=oldest", Some(&s)).await;
    assert_eq!(ranged.status, StatusCode::OK, "{}", ranged.body);
    assert!(ranged.body.contains("already shown"));
    let live = app.get("/alerts?time=1h", Some(&s)).await;
    assert!(
        live.body.contains("until="),
        "the refresh keeps the window closed"
    );
    let poll = |after: String| {
        let s = &s;
        let app = &app;
        async move {
            let req = Request::builder()
                .uri(format!("/alerts/poll?after={after}"))
                .header(header::COOKIE, &s.cookie)
                .header(header::ACCEPT, "application/json")
                .body(Body::empty())
                .expect("request");
            let r = app.send(req).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            serde_json::from_str::<Value>(&r.body).expect("json")
        }
    };
    assert_eq!(poll(first.clone()).await["count"], 0);
    let second = app.alert(app.platform, "brand <new> alert").await;
    let v = poll(first.clone()).await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["top"], json!(second));
    let html = v["html"].as_str().expect("html");
    assert!(html.contains("brand &lt;new&gt; alert"), "escaped: {html}");
    assert!(!html.contains("already shown"));
    // With the queue's own filters (as the page passes them), including an explicit sort.
    let req = Request::builder()
        .uri(format!(
            "/alerts/poll?sort=newest&severity=high&status=new&q=brand&after={first}"
        ))
        .header(header::COOKIE, &s.cookie)
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .expect("request");
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(v["count"], 1);
    // An ended session answers 401 to the script, not a login page.
    let req = Request::builder()
        .uri("/alerts/poll?after=x")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .expect("request");
    assert_eq!(app.send(req).await.status, StatusCode::UNAUTHORIZED);
    let _ = CookieSecure::Auto;
}

#[tokio::test]
async fn playbooks_are_written_dry_run_toggled_and_run_from_the_console() {
    let app = App::new(WebConfig::default()).await;
    let alert = app.alert(app.platform, "ssh brute force").await;
    let s = app.login("admin").await;
    let yaml = "name: tag-it\ntriggers:\n  - on: manual\nactions:\n  - ref: tag\n    action: alert.update\n    args:\n      tags: [\"seen-{{ alert.severity }}\"]\n";
    let r = app.act("/playbooks", &s, &[("source", yaml)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = r.location().to_string();
    let id = page.trim_start_matches("/playbooks/").to_string();
    let r = app.get(&page, Some(&s)).await;
    assert!(r.body.contains("tag-it") && r.body.contains("Dry run"));

    // A dry run shows the rendered arguments and writes nothing.
    let r = app
        .act(
            &format!("/playbooks/{id}/run"),
            &s,
            &[("alert_id", alert.as_str()), ("dry_run", "1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("dry-run-actions") && r.body.contains("seen-high"));
    let runs = app.api(Method::GET, "/api/v1/runs", Value::Null).await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(0));

    // Editing with a mistake shows every problem with its line; nothing is saved.
    let bad = "name: tag-it\ntriggers:\n  - on: manual\nactions:\n  - ref: tag\n    action: alert.updat\n";
    let r = app
        .act(&page, &s, &[("source", bad), ("version", "1")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("data-line=\"6\""), "{}", r.body);
    // A stale version is a conflict, not an overwrite.
    let r = app
        .act(&page, &s, &[("source", yaml), ("version", "7")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Disabled, it cannot run; enabled again, it runs.
    let r = app
        .act(
            &format!("/playbooks/{id}/enabled"),
            &s,
            &[("enabled", "false")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = app
        .act(
            &format!("/alerts/{alert}/run"),
            &s,
            &[("playbook_id", id.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    app.act(
        &format!("/playbooks/{id}/enabled"),
        &s,
        &[("enabled", "true")],
    )
    .await;
    let r = app
        .act(
            &format!("/alerts/{alert}/run"),
            &s,
            &[("playbook_id", id.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.location().starts_with("/runs/"));
    let r = app.get(r.location(), Some(&s)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("tag-it"));
}

#[tokio::test]
async fn incidents_from_templates_with_tasks_comments_and_moves() {
    let app = App::new(WebConfig::default()).await;
    let alert = app.alert(app.platform, "phish reported").await;
    let template = app
        .api(
            Method::POST,
            "/api/v1/incident-templates",
            json!({"name": "Phishing", "severity": "high",
                   "tasks": [{"title": "Pull the message from every mailbox"}]}),
        )
        .await["id"]
        .as_str()
        .expect("template")
        .to_string();
    let s = app.login("admin").await;
    let r = app
        .act(
            &format!("/alerts/{alert}/incident"),
            &s,
            &[("template_id", template.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = r.location().to_string();
    let r = app.get(&page, Some(&s)).await;
    assert!(r.body.contains("Phishing") && r.body.contains("Pull the message"));
    assert!(r.body.contains("phish reported"), "the alert is linked");
    let r = app
        .act(
            &format!("{page}/comments"),
            &s,
            &[("body", "@admin please look")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = app
        .act(&format!("{page}/update"), &s, &[("status", "contained")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A move the lifecycle refuses names the allowed ones.
    let r = app
        .act(&format!("{page}/update"), &s, &[("status", "open")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("allowed"), "{}", r.body);
    let r = app
        .act(
            &format!("{page}/tasks"),
            &s,
            &[("title", "Reset passwords")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = app.get(&page, Some(&s)).await;
    assert!(r.body.contains("please look") && r.body.contains("Reset passwords"));
    assert!(r.body.contains("contained"));
    let list = app.get("/incidents?q=Phishing", Some(&s)).await;
    assert!(list.body.contains("Phishing"));

    // Templates are managed from the console too.
    let r = app
        .act(
            "/incidents/templates",
            &s,
            &[
                ("name", "Ransomware"),
                ("severity", "critical"),
                ("tasks", "Isolate hosts | 1\nNotify legal"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = app.get("/incidents/templates", Some(&s)).await;
    assert!(page.body.contains("Isolate hosts") && page.body.contains("(+1 h)"));
    let r = app
        .act(
            "/incidents/templates",
            &s,
            &[("name", "Bad"), ("tasks", "Do it | soon")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn administration_shows_new_secrets_once_and_saves_tag_rules() {
    let app = App::new(WebConfig::default()).await;
    let s = app.login("admin").await;
    let r = app
        .act(
            "/admin/api-keys",
            &s,
            &[("name", "wazuh-prod"), ("scopes", "webhooks:ingest")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let start = r.body.find("id=\"secret-value\">").expect("shown") + 18;
    let key = &r.body[start..start + 10];
    assert!(key.starts_with("bwk_"), "{key}");
    let again = app.get("/admin/api-keys", Some(&s)).await;
    assert!(!again.body.contains(key) || !again.body.contains("secret-value"));
    assert!(again.body.contains("wazuh-prod"));

    let r = app
        .act(
            "/admin/users",
            &s,
            &[("username", "nina"), ("role", "analyst")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Password for nina"));
    let r = app
        .act(
            "/admin/users",
            &s,
            &[("username", "nina"), ("role", "analyst")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a taken name");

    let r = app.act("/admin/tenants", &s, &[("slug", "acme")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let acme = app
        .store
        .tenant_by_slug("acme")
        .await
        .expect("lookup")
        .expect("acme");
    let path = format!("/admin/tenants/{}/tag-access", acme.id);
    let r = app
        .act(
            &path,
            &s,
            &[
                ("enabled", "1"),
                ("untagged", "admin_only"),
                ("rules", "role:viewer soc\n# comment\nrole:analyst soc"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = app.get(&path, Some(&s)).await;
    assert!(page.body.contains("role:viewer soc") && page.body.contains("checked"));
    let r = app.act(&path, &s, &[("rules", "nonsense:x soc")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app.act(&path, &s, &[("rules", "just-one-word")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("line 1"));
}

#[tokio::test]
async fn suggestions_group_alerts_that_share_a_value() {
    let app = App::new(WebConfig::default()).await;
    // Both carry 203.0.113.5 (see `App::alert`).
    app.alert(app.platform, "first of a pair").await;
    app.alert(app.platform, "second of a pair").await;
    let s = app.login("admin").await;
    let r = app.get("/incidents/suggestions", Some(&s)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("203.0.113.5") && r.body.contains("first of a pair"));
    assert!(r.body.contains("Create incident from 2 alerts"));
    let r = app
        .get("/incidents/suggestions?window_hours=99999", Some(&s))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

const URL_TOKEN: &str = "s3cret-url-token-91";
const HEADER_SECRET: &str = "hdr-secret-5150";

/// A channel endpoint that always answers 500, echoing the credentials it was called with
/// (a careless upstream): the console must show the failure without them.
async fn failing_channel() -> String {
    let app = Router::new().route(
        "/hook/{token}",
        axum::routing::post(|| async {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("upstream down (token {URL_TOKEN}, auth Bearer {HEADER_SECRET})"),
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}/hook/{URL_TOKEN}")
}

#[tokio::test]
async fn notifications_page_shows_failed_deliveries_to_admins_who_can_retry_them() {
    let app = App::with_api(WebConfig::default(), |c| {
        c.integrations = std::sync::Arc::new(bulwark_integrations::Integrations::for_tests(&[
            "127.0.0.1",
        ]));
    })
    .await;
    let url = failing_channel().await;
    let hook = app
        .api(
            Method::POST,
            "/api/v1/integrations",
            json!({"type": "webhook", "name": "ops-hook", "tenant_id": app.platform,
                   "config": {"header_name": "Authorization"},
                   "secrets": {"url": url, "header_value": format!("Bearer {HEADER_SECRET}")}}),
        )
        .await["id"]
        .as_str()
        .expect("integration id")
        .to_string();
    let rule = app
        .api(
            Method::POST,
            "/api/v1/notifications/rules",
            json!({"name": "high alerts to ops", "event": "alert.created", "min_severity": "high",
                   "integration_id": hook, "tenant_id": app.platform}),
        )
        .await["id"]
        .as_str()
        .expect("rule id")
        .to_string();
    let admin = app.login("admin").await;

    // Nothing failed yet: the rules with their controls, no warning anywhere.
    let page = app.get("/admin/notifications", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for text in [
        "high alerts to ops",
        "alert.created",
        "ops-hook",
        "Send test",
        "Disable",
        "No failed deliveries.",
        "href=\"/admin/notifications\" class=\"on\"",
    ] {
        assert!(page.body.contains(text), "{text} missing:\n{}", page.body);
    }
    assert!(!page.body.contains("id=\"failed-notifications\""));
    assert!(!page.body.contains("<script>") && !page.body.contains("style="));
    // Every form carries the CSRF token.
    assert_eq!(
        page.body.matches("<form method=\"post\"").count(),
        page.body.matches("name=\"_csrf\"").count()
    );
    let alerts = app.get("/alerts", Some(&admin)).await;
    assert!(!alerts.body.contains("id=\"failed-notifications\""));

    // A test through the failing channel fails at once and is listed, failed first.
    let r = app
        .act(
            &format!("/admin/notifications/rules/{rule}/test"),
            &admin,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/admin/notifications?status=failed");
    let failed = app
        .api(
            Method::GET,
            "/api/v1/notifications/deliveries?status=failed",
            json!(null),
        )
        .await;
    let delivery = failed["items"][0]["id"]
        .as_str()
        .expect("a failed delivery")
        .to_string();
    let error = failed["items"][0]["last_error"]
        .as_str()
        .expect("its error")
        .to_string();
    let page = app.get("/admin/notifications", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let retry_path = format!("/admin/notifications/deliveries/{delivery}/retry");
    for text in [
        retry_path.as_str(),
        "Retry",
        "run-failed",
        "1 / 1",
        "high alerts to ops",
    ] {
        assert!(page.body.contains(text), "{text} missing:\n{}", page.body);
    }
    // The channel's reason is shown (escaped), never the secrets it echoed.
    let first_words: String = error
        .chars()
        .take_while(|c| !"<>&\"'".contains(*c))
        .take(12)
        .collect();
    assert!(!first_words.is_empty(), "{error}");
    assert!(
        page.body.contains(&first_words),
        "{first_words} missing:\n{}",
        page.body
    );
    for p in [
        &page.body,
        &app.get("/admin/notifications?status=all", Some(&admin))
            .await
            .body,
    ] {
        assert!(!p.contains(URL_TOKEN), "URL token in the page:\n{p}");
        assert!(
            !p.contains(HEADER_SECRET),
            "header secret in the page:\n{p}"
        );
        assert!(!p.contains("/hook/"), "channel URL in the page:\n{p}");
    }

    // Noticeable from anywhere an admin works: the navigation and the dashboard.
    let alerts = app.get("/alerts", Some(&admin)).await;
    assert!(
        alerts.body.contains("id=\"failed-notifications\"")
            && alerts.body.contains("1 failed notification<"),
        "{}",
        alerts.body
    );
    let dash = app.get("/dashboard", Some(&admin)).await;
    assert!(
        dash.body.contains("1 notification failed in the last 24 h"),
        "{}",
        dash.body
    );

    // A viewer and an analyst see the rules without any control, no deliveries, no warning,
    // and a crafted POST (with a valid session and CSRF token) is refused by the API.
    for (name, role) in [("vic", Role::Viewer), ("ana", Role::Analyst)] {
        app.user(name, role, app.platform).await;
        let s = app.login(name).await;
        let page = app.get("/admin/notifications", Some(&s)).await;
        assert_eq!(page.status, StatusCode::OK, "{name}: {}", page.body);
        assert!(page.body.contains("high alerts to ops"), "{}", page.body);
        for hidden in [
            "Send test",
            "Disable",
            "Retry",
            "Deliveries",
            "/retry",
            "failed-notifications",
        ] {
            assert!(
                !page.body.contains(hidden),
                "{name} sees {hidden}:\n{}",
                page.body
            );
        }
        let alerts = app.get("/alerts", Some(&s)).await;
        assert!(!alerts.body.contains("failed-notifications"));
        for (path, form) in [
            (retry_path.clone(), vec![]),
            (format!("/admin/notifications/rules/{rule}/test"), vec![]),
            (
                format!("/admin/notifications/rules/{rule}/enabled"),
                vec![("enabled", "false")],
            ),
        ] {
            let r = app.act(&path, &s, &form).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{name} {path}: {}", r.body);
        }
    }
    // An admin of another tenant does not find the delivery.
    let acme = app.tenant("acme").await;
    app.user("acme-admin", Role::Admin, acme).await;
    let other = app.login("acme-admin").await;
    let r = app.act(&retry_path, &other, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let page = app.get("/admin/notifications", Some(&other)).await;
    assert!(!page.body.contains("high alerts to ops") && !page.body.contains(&delivery));

    // Without the CSRF token the retry is refused before anything happens.
    let r = app.post(&retry_path, Some(&admin), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The admin retries it: queued again, off the failed list, the warning gone.
    let r = app
        .act(
            &retry_path,
            &admin,
            &[("back", "/admin/notifications?status=failed")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/admin/notifications?status=failed");
    let d = app
        .api(
            Method::GET,
            &format!("/api/v1/notifications/deliveries/{delivery}"),
            json!(null),
        )
        .await;
    assert_eq!(d["status"], "queued", "{d}");
    let page = app
        .get("/admin/notifications?status=failed", Some(&admin))
        .await;
    assert!(page.body.contains("No failed deliveries."), "{}", page.body);
    assert!(!page.body.contains("id=\"failed-notifications\""));
    let page = app
        .get("/admin/notifications?status=queued", Some(&admin))
        .await;
    assert!(
        page.body.contains(&delivery) || page.body.contains("run-queued"),
        "{}",
        page.body
    );
    // Retrying again is refused (only a failed delivery can be), with a message, not a 500.
    let r = app.act(&retry_path, &admin, &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // A bad id or status is a 4xx or the default view, never a 500.
    let r = app
        .act("/admin/notifications/deliveries/nope/retry", &admin, &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .get("/admin/notifications?status=bogus&cursor=x", Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Disable and enable the rule.
    let r = app
        .act(
            &format!("/admin/notifications/rules/{rule}/enabled"),
            &admin,
            &[("enabled", "false")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let got = app
        .api(
            Method::GET,
            &format!("/api/v1/notifications/rules/{rule}"),
            json!(null),
        )
        .await;
    assert_eq!(got["enabled"], false);
    let page = app.get("/admin/notifications", Some(&admin)).await;
    assert!(page.body.contains("off-badge\">disabled") && page.body.contains(">Enable<"));
    let r = app
        .act(
            &format!("/admin/notifications/rules/{rule}/enabled"),
            &admin,
            &[("enabled", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let got = app
        .api(
            Method::GET,
            &format!("/api/v1/notifications/rules/{rule}"),
            json!(null),
        )
        .await;
    assert_eq!(got["enabled"], true);
}

#[tokio::test]
async fn the_failed_notifications_warning_reads_a_few_and_says_when_there_are_more() {
    let app = App::with_api(WebConfig::default(), |c| {
        c.integrations = std::sync::Arc::new(bulwark_integrations::Integrations::for_tests(&[
            "127.0.0.1",
        ]));
    })
    .await;
    let url = failing_channel().await;
    let hook = app
        .api(
            Method::POST,
            "/api/v1/integrations",
            json!({"type": "webhook", "name": "ops-hook", "tenant_id": app.platform,
                   "secrets": {"url": url}}),
        )
        .await["id"]
        .as_str()
        .expect("integration id")
        .to_string();
    let rule = app
        .api(
            Method::POST,
            "/api/v1/notifications/rules",
            json!({"name": "incidents", "event": "incident.created", "integration_id": hook,
                   "tenant_id": app.platform}),
        )
        .await["id"]
        .as_str()
        .expect("rule id")
        .to_string();
    let admin = app.login("admin").await;
    for _ in 0..21 {
        let r = app
            .act(
                &format!("/admin/notifications/rules/{rule}/test"),
                &admin,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }
    let page = app.get("/incidents", Some(&admin)).await;
    assert!(
        page.body.contains("⚠ 20+ failed notifications<"),
        "{}",
        page.body
    );
    let dash = app.get("/dashboard", Some(&admin)).await;
    assert!(
        dash.body
            .contains("20 or more notifications failed in the last 24 h"),
        "{}",
        dash.body
    );
    // The page lists them all (a page of 50), each with its retry.
    let page = app.get("/admin/notifications", Some(&admin)).await;
    assert_eq!(page.body.matches(">Retry</button>").count(), 21);
}
