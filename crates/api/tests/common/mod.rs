//! The test harness shared by the HTTP suites: the real router over a real store (SQLite, or
//! PostgreSQL when `BULWARK_TEST_DATABASE_URL` says so), called in-process.
#![allow(dead_code, unused_imports)]

pub use axum::Router;
pub use axum::body::Body;
pub use axum::http::{HeaderMap, Method, Request, StatusCode};
pub use bulwark_api::auth::Access;
pub use bulwark_api::routes::route_table;
pub use bulwark_api::{ApiConfig, State};
pub use bulwark_core::credentials::hash_password;
pub use bulwark_core::model::Analyst;
pub use bulwark_core::{ApiKeyScope, Role, Scope, TenantId};
pub use bulwark_store::testing::{TestDb, fresh};
pub use bulwark_store::{ChangeCtx, NewAnalyst, NewTenant, Store};
pub use http_body_util::BodyExt;
pub use serde_json::{Value, json};
pub use std::sync::OnceLock;
pub use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn password_hash() -> String {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_password(PASSWORD).expect("hash"))
        .clone()
}

pub struct TestApp {
    pub router: Router,
    pub state: State,
    pub store: Store,
    pub platform: TenantId,
    pub admin: Analyst,
    pub admin_token: String,
    pub _db: TestDb,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    pub async fn with_config(tweak: impl FnOnce(&mut ApiConfig)) -> Self {
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
        let mut config = ApiConfig::new(b"test-secret-test-secret-test-secret!".to_vec(), platform);
        config.audit.signer = Some(std::sync::Arc::new(
            bulwark_audit::CheckpointSigner::generate().expect("audit key"),
        ));
        // Playbook changes made through the store are seen by the next request.
        config.playbook_refresh = std::time::Duration::ZERO;
        tweak(&mut config);
        let state = State::new(
            store.clone(),
            config,
            bulwark_api::http_metrics::prometheus(),
        );
        let router = bulwark_api::router(state.clone());
        let mut app = TestApp {
            router,
            state,
            store,
            platform,
            admin_token: String::new(),
            admin: dummy_analyst(),
            _db: db,
        };
        let (admin, token) = app.user("admin", Role::Admin, platform).await;
        app.admin = admin;
        app.admin_token = token;
        app
    }

    pub async fn tenant(&self, slug: &str) -> TenantId {
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

    /// Creates an analyst and returns it with a valid token.
    pub async fn user(&self, name: &str, role: Role, tenant: TenantId) -> (Analyst, String) {
        let a = self
            .store
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
            .expect("analyst");
        let token = self.state.tokens.issue(a.id, 0).expect("token");
        (a, token)
    }

    pub async fn key(&self, scopes: &[&str], tenant: TenantId) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/api/v1/api-keys",
                Some(&self.admin_token),
                Some(json!({"name": "k", "scopes": scopes, "tenant_id": tenant})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        (
            r.body["key"].as_str().expect("key").to_string(),
            r.body["api_key"]["id"].as_str().expect("id").to_string(),
        )
    }

    /// A call as the platform admin, without a body.
    pub async fn admin(&self, method: Method, path: &str) -> Resp {
        self.call(method, path, Some(&self.admin_token), None).await
    }

    /// Stores an alert for `tenant` as ingestion would and returns its id.
    pub async fn alert(&self, tenant: TenantId, source: &str, payload: Value) -> String {
        let source: bulwark_normalize::Source = source.parse().expect("source");
        let out = self
            .store
            .ingest(
                &[bulwark_store::ingest::IncomingAlert {
                    tenant_id: tenant,
                    alert: bulwark_normalize::normalize(source, &payload).expect("normalize"),
                    raw: payload.to_string(),
                    received_at: chrono::Utc::now(),
                    actor: ChangeCtx::system("test"),
                    triggers: Default::default(),
                }],
                chrono::Duration::hours(24),
            )
            .await
            .expect("ingest");
        out[0].alert_id.to_string()
    }

    /// Keeps a rejected payload for `tenant` (as the webhook would) and returns its id.
    pub async fn dead_letter(&self, tenant: TenantId, payload: &str) -> String {
        let ids = self
            .store
            .add_dead_letters(
                &[bulwark_store::ingest_ops::NewDeadLetter {
                    tenant_id: tenant,
                    source: "generic".into(),
                    reason: "invalid_json".into(),
                    detail: "test".into(),
                    payload: payload.into(),
                    payload_bytes: payload.len() as i64,
                    truncated: false,
                    api_key_id: None,
                    request_id: None,
                    received_at: chrono::Utc::now(),
                }],
                100,
            )
            .await
            .expect("dead letter");
        ids[0].to_string()
    }

    pub async fn login<U, P>(&self, username: &U, password: &P) -> Resp
    where
        U: serde::Serialize + ?Sized,
        P: serde::Serialize + ?Sized,
    {
        let body = json!({"username": username, "password": password});
        self.call(Method::POST, "/api/v1/auth/login", None, Some(body))
            .await
    }

    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "500: {body}");
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.raw(req).await
    }
}

pub fn dummy_analyst() -> Analyst {
    Analyst {
        id: Default::default(),
        username: String::new(),
        display_name: String::new(),
        role: Role::Viewer,
        tenant_id: Default::default(),
        tenant_ids: vec![],
        is_active: true,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        last_login_at: None,
    }
}

pub fn concrete(path: &str) -> String {
    let mut p = path.to_string();
    for param in ["{id}", "{alert_id}", "{task_id}", "{comment_id}"] {
        p = p.replace(param, &uuid::Uuid::now_v7().to_string());
    }
    p
}

pub fn body_for(method: &Method) -> Option<Value> {
    matches!(*method, Method::POST | Method::PATCH | Method::PUT).then(|| json!({}))
}

pub fn assert_problem(r: &Resp, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(r.body["status"].as_u64(), Some(u64::from(status.as_u16())));
    assert!(
        r.body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:bulwark:problem:"))
    );
    assert!(r.body["title"].is_string() && r.body["detail"].is_string());
}

pub fn wazuh_alert(id: &str, ip: &str) -> Value {
    json!({
        "id": id,
        "timestamp": "2024-05-11T12:29:19.905+0000",
        "rule": {"level": 12, "description": "sshd: brute force", "id": "5712", "mitre": {"id": ["T1110"]}},
        "agent": {"id": "001", "name": "web-01"},
        "data": {"srcip": ip}
    })
}

pub async fn post_raw(app: &TestApp, path: &str, key: &str, ct: &str, body: String) -> Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("x-api-key", key)
        .header("content-type", ct)
        .body(Body::from(body))
        .expect("req");
    app.raw(req).await
}

/// Polls every future concurrently until all are done (no extra dependency).
pub async fn join_all<F: std::future::Future<Output = Resp>>(futs: Vec<F>) -> Vec<Resp> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<Resp>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => results[i] = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}
