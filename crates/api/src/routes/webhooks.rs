//! Alert ingestion over webhooks: `POST /api/v1/webhooks/alerts` (generic) and
//! `POST /api/v1/webhooks/alerts/{source}`. The endpoint decides the source; nothing in the
//! payload can change it. Accepts one JSON alert, a JSON array, a source's own batch envelope
//! (e.g. GuardDuty `findings`), or NDJSON (`application/x-ndjson`, one alert per line).
//! Answers only after the alerts are committed.

//!
//! Every outcome is counted (`ingest_stats`), and every rejected payload is kept in the
//! dead-letter list with its reason, so an admin can see what a sender got wrong and replay it
//! once the cause is fixed.

use crate::auth::{Auth, ClientIp, KeyContext, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::body_rejection;
use crate::ingest_stats::{Outcome, Reject};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bulwark_core::TenantId;
use bulwark_normalize::{NormalizedAlert, Source};
use bulwark_store::ChangeCtx;
use bulwark_store::ingest::{IncomingAlert, IngestOutcome};
use bulwark_store::ingest_ops::NewDeadLetter;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// Deepest JSON nesting accepted (deeper payloads are refused with 422).
pub const MAX_DEPTH: usize = 64;
/// Most alerts in one request.
pub const MAX_BATCH: usize = 10_000;

#[derive(Serialize, ToSchema)]
pub struct AlertAccepted {
    pub alert_id: uuid::Uuid,
    pub duplicate: bool,
    pub duplicate_count: i64,
    pub title: String,
    pub severity: String,
    /// Playbook runs this alert started (queued in the transaction that stored it).
    pub playbooks_triggered: u32,
}

impl From<IngestOutcome> for AlertAccepted {
    fn from(o: IngestOutcome) -> Self {
        Self {
            alert_id: o.alert_id,
            duplicate: o.duplicate,
            duplicate_count: o.duplicate_count,
            title: o.title,
            severity: o.severity,
            playbooks_triggered: o.playbooks_triggered,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LineResult {
    /// 1-based position (line of NDJSON, element of an array).
    pub line: usize,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<AlertAccepted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<LineResult>,
}

/// Longest payload kept in the dead-letter list; longer ones are cut (and cannot be replayed).
pub const DEAD_LETTER_MAX_BYTES: usize = 64 * 1024;

fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}

/// Why one item (or the whole body) was refused: the counter class and the message.
pub(crate) type Refusal = (Reject, String);

fn parse_item(text: &[u8]) -> Result<Value, Refusal> {
    let v: Value = serde_json::from_slice(text).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            (
                Reject::TooDeep,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            )
        } else {
            (Reject::InvalidJson, format!("invalid JSON: {e}"))
        }
    })?;
    if depth(&v) > MAX_DEPTH {
        return Err((
            Reject::TooDeep,
            format!("nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(v)
}

fn normalize_item(source: Source, v: &Value) -> Result<NormalizedAlert, Refusal> {
    if !v.is_object() {
        return Err((
            Reject::NotAnObject,
            "each alert must be a JSON object".into(),
        ));
    }
    bulwark_normalize::normalize(source, v).map_err(|e| (Reject::Unmappable, e.to_string()))
}

/// One alert of a request: its payload as text and what normalizing it gave.
pub(crate) struct Item {
    pub raw: String,
    pub result: Result<NormalizedAlert, Refusal>,
}

/// A JSON body: one alert, an array of alerts, or a source's batch envelope. `Err` when the
/// body as a whole is unusable. The flag is true for a single alert (answered without the
/// batch wrapper).
pub(crate) fn split_document(source: Source, bytes: &[u8]) -> Result<(bool, Vec<Item>), Refusal> {
    let v = parse_item(bytes)?;
    let parts = match &v {
        Value::Array(a) => a.iter().collect::<Vec<_>>(),
        Value::Object(_) => bulwark_normalize::split_batch(source, &v),
        _ => {
            return Err((
                Reject::NotAnObject,
                "must be a JSON object or an array of objects".into(),
            ));
        }
    };
    if parts.is_empty() {
        return Err((Reject::Empty, "contains no alerts".into()));
    }
    let single = parts.len() == 1 && std::ptr::eq(parts[0], &v);
    let items = parts
        .into_iter()
        .map(|p| Item {
            raw: if single {
                String::from_utf8_lossy(bytes).into_owned()
            } else {
                p.to_string()
            },
            result: normalize_item(source, p),
        })
        .collect();
    Ok((single, items))
}

/// NDJSON: one alert per non-blank line.
pub(crate) fn split_lines(source: Source, bytes: &[u8]) -> Vec<Item> {
    bytes
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| Item {
            raw: String::from_utf8_lossy(l).into_owned(),
            result: parse_item(l).and_then(|v| normalize_item(source, &v)),
        })
        .collect()
}

fn is_ndjson(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let m = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            m == "application/x-ndjson" || m == "application/ndjson" || m == "application/jsonl"
        })
        .unwrap_or(false)
}

/// Reads the body: `(is NDJSON, bytes)`.
async fn read_payload(req: Request, state: &AppState) -> Result<(bool, Bytes), (Reject, ApiError)> {
    let ndjson = is_ndjson(&req);
    if !ndjson && !crate::extract::is_json_content_type(&req) {
        return Err((
            Reject::UnsupportedMediaType,
            ApiError::UnsupportedMediaType(
                "expected application/json or application/x-ndjson".into(),
            ),
        ));
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        let e = body_rejection(e);
        let r = if matches!(e, ApiError::PayloadTooLarge) {
            Reject::TooLarge
        } else {
            Reject::InvalidJson
        };
        (r, e)
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err((
            Reject::Empty,
            ApiError::bad_request(None, "the request body is empty"),
        ));
    }
    Ok((ndjson, bytes))
}

pub(crate) fn source_of(path: Option<String>) -> ApiResult<Source> {
    match path {
        None => Ok(Source::Generic),
        Some(s) => s.parse().map_err(|_| {
            ApiError::bad_request(
                Some("source".into()),
                format!(
                    "unknown source `{}`; expected one of {}",
                    s.chars().take(32).collect::<String>(),
                    crate::routes::api_keys::WEBHOOK_SOURCES.join(", ")
                ),
            )
        }),
    }
}

/// The path's webhook source, for counting requests refused before the handler runs.
pub fn source_of_path(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/v1/webhooks/alerts")?;
    match rest.strip_prefix('/') {
        None if rest.is_empty() => Some(Source::Generic.as_str()),
        Some(s) => s.parse::<Source>().ok().map(Source::as_str),
        None => None,
    }
}

pub const SIGNATURE_HEADER: &str = "x-bulwark-signature";
pub const KEY_SIGNATURE_HEADER: &str = "x-webhook-signature";

/// Checks the request signature the key asks for. Analysts (JWT) are not asked to sign.
/// A signature the key cannot check is refused rather than ignored: a sender that signs
/// believes its requests are protected.
fn check_signature(
    key: Option<&KeyContext>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let Some(key) = key else {
        return Ok(());
    };
    let header = |name: &str| -> Result<Option<String>, String> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(str::to_string)
                    .map_err(|_| format!("{name} is not ASCII"))
            })
            .transpose()
    };
    let k = &key.creds.key;
    if let Some(sig) = header(SIGNATURE_HEADER)? {
        let secret = key
            .creds
            .signing_secret
            .as_ref()
            .ok_or("X-Bulwark-Signature given, but this API key has no signing secret")?;
        let now = chrono::Utc::now().timestamp();
        return bulwark_core::signature::verify(&sig, secret.expose().as_bytes(), body, now)
            .map_err(|e| format!("X-Bulwark-Signature: {e}"));
    }
    if let Some(sig) = header(KEY_SIGNATURE_HEADER)? {
        if !k.accept_key_signature {
            return Err("X-Webhook-Signature given, but this API key does not accept it (create the key with accept_key_signature)".into());
        }
        return bulwark_core::signature::verify_with_key(&sig, key.presented.expose(), body)
            .map_err(|e| format!("X-Webhook-Signature: {e}"));
    }
    if k.requires_signature() {
        return Err(if k.signed {
            "this API key requires X-Bulwark-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>".into()
        } else {
            "this API key requires X-Webhook-Signature: sha256=<hex HMAC-SHA256(key, body)>".into()
        });
    }
    Ok(())
}

/// Rejected payloads of one request, for the dead-letter list.
struct DeadLetters {
    tenant: TenantId,
    source: &'static str,
    api_key: Option<uuid::Uuid>,
    request_id: Option<String>,
    received_at: chrono::DateTime<chrono::Utc>,
    letters: Vec<NewDeadLetter>,
}

impl DeadLetters {
    fn push(&mut self, payload: &str, (reason, detail): &Refusal) {
        let mut cut = payload.len().min(DEAD_LETTER_MAX_BYTES);
        while !payload.is_char_boundary(cut) {
            cut -= 1;
        }
        self.letters.push(NewDeadLetter {
            tenant_id: self.tenant,
            source: self.source.to_string(),
            reason: reason.as_str().to_string(),
            detail: detail.clone(),
            payload: payload[..cut].to_string(),
            payload_bytes: i64::try_from(payload.len()).unwrap_or(i64::MAX),
            truncated: cut < payload.len(),
            api_key_id: self.api_key,
            request_id: self.request_id.clone(),
            received_at: self.received_at,
        });
    }

    /// Stores them. A failure here is logged, not returned: the sender was already told what
    /// was wrong, and the good alerts of the request are committed.
    async fn store(self, state: &AppState) {
        if self.letters.is_empty() {
            return;
        }
        let keep = state.config.limits.dead_letters_per_tenant;
        if let Err(e) = state.store.add_dead_letters(&self.letters, keep).await {
            tracing::warn!(error = %e, count = self.letters.len(), "could not keep rejected payloads");
        }
    }
}

/// Ingest alerts for the generic source.
#[utoipa::path(post, path = "/api/v1/webhooks/alerts", tag = "ingestion", security(("api_key" = [])),
    params(("X-Bulwark-Signature" = Option<String>, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256(signing secret, \"<t>.<raw body>\")>; required for signed keys"),
           ("X-Webhook-Signature" = Option<String>, Header, description = "sha256=<hex HMAC-SHA256(API key, raw body)>; for keys that accept it")),
    request_body(content = Object, description = "One alert, an array, or NDJSON (application/x-ndjson)"),
    responses((status = 201, description = "Stored (new alert)", body = AlertAccepted),
              (status = 200, description = "Duplicate of a stored alert, or a batch result", body = BatchResult),
              (status = 401, description = "Bad or missing key or signature", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
              (status = 429, description = "The key's rate limit", body = Problem)))]
pub async fn ingest_generic(
    state: State<AppState>,
    auth: Auth,
    rid: RequestId,
    req: Request,
) -> ApiResult<Response> {
    ingest(state, auth, rid, Source::Generic, req).await
}

/// Ingest alerts from one tool (`elastic`, `wazuh`, `suricata`, `splunk`, `sentinel`,
/// `crowdstrike`, `guardduty`, `zeek`, `generic`).
#[utoipa::path(post, path = "/api/v1/webhooks/alerts/{source}", tag = "ingestion", security(("api_key" = [])),
    params(("source" = String, Path, description = "The sending tool"),
           ("X-Bulwark-Signature" = Option<String>, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256(signing secret, \"<t>.<raw body>\")>; required for signed keys"),
           ("X-Webhook-Signature" = Option<String>, Header, description = "sha256=<hex HMAC-SHA256(API key, raw body)>; for keys that accept it")),
    request_body(content = Object, description = "One alert, an array, the tool's batch envelope, or NDJSON"),
    responses((status = 201, description = "Stored (new alert)", body = AlertAccepted),
              (status = 200, description = "Duplicate of a stored alert, or a batch result", body = BatchResult),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn ingest_source(
    state: State<AppState>,
    auth: Auth,
    rid: RequestId,
    Path(source): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let source = source_of(Some(source))?;
    ingest(state, auth, rid, source, req).await
}

async fn ingest(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    source: Source,
    req: Request,
) -> ApiResult<Response> {
    let tenant_id = caller.home_tenant;
    let src = source.as_str();
    let refuse = |r: Reject| {
        state
            .ingest_stats
            .record(tenant_id, src, Outcome::Rejected(r), 1)
    };
    if let Some(bound) = &caller.source_binding
        && bound != src
    {
        refuse(Reject::SourceNotAllowed);
        return Err(ApiError::Forbidden(format!(
            "this API key may only post alerts for source `{bound}`"
        )));
    }
    let key = req.extensions().get::<Arc<KeyContext>>().cloned();
    // The writer checks this key again just before storing (it may come from the key cache).
    let key_id = key.as_ref().map(|k| k.creds.key.id);
    let ip = req.extensions().get::<ClientIp>().and_then(|c| c.0);
    // Only the signature headers outlive the request (the body consumes it).
    let headers: HeaderMap = [SIGNATURE_HEADER, KEY_SIGNATURE_HEADER]
        .into_iter()
        .filter_map(|h| {
            let v = req.headers().get(h)?.clone();
            Some((axum::http::HeaderName::from_static(h), v))
        })
        .collect();
    let (ndjson, bytes) = read_payload(req, &state).await.map_err(|(r, e)| {
        refuse(r);
        e
    })?;
    if let Err(detail) = check_signature(key.as_deref(), &headers, &bytes) {
        refuse(Reject::BadSignature);
        crate::auth::record_auth_failure(&state, ip);
        return Err(ApiError::BadSignature(detail));
    }

    let actor = ChangeCtx::from_caller(&caller, rid.clone());
    let received_at = bulwark_core::time::now();
    let mut dead = DeadLetters {
        tenant: tenant_id,
        source: src,
        api_key: key.as_ref().map(|k| k.creds.key.id.0),
        request_id: rid,
        received_at,
        letters: Vec::new(),
    };
    let (single, items) = if ndjson {
        (false, split_lines(source, &bytes))
    } else {
        match split_document(source, &bytes) {
            Ok(x) => x,
            Err(refusal) => {
                refuse(refusal.0);
                dead.push(&String::from_utf8_lossy(&bytes), &refusal);
                dead.store(&state).await;
                let (reason, detail) = refusal;
                return Err(if reason == Reject::InvalidJson {
                    ApiError::bad_request(None, detail)
                } else {
                    ApiError::field("body", detail)
                });
            }
        }
    };
    if items.len() > MAX_BATCH {
        refuse(Reject::TooManyAlerts);
        return Err(ApiError::field(
            "body",
            format!("at most {MAX_BATCH} alerts per request"),
        ));
    }
    if items.is_empty() {
        refuse(Reject::Empty);
        return Err(ApiError::field("body", "contains no alerts"));
    }

    let triggers = state.triggers.current(&state.store).await?;
    let mut good: Vec<IncomingAlert> = Vec::with_capacity(items.len());
    let mut lines: Vec<Result<(), String>> = Vec::with_capacity(items.len());
    let mut rejected: u64 = 0;
    for item in items {
        match item.result {
            Ok(alert) => {
                good.push(IncomingAlert {
                    tenant_id,
                    triggers: triggers.for_new_alert(tenant_id, &alert, received_at),
                    alert,
                    raw: item.raw,
                    received_at,
                    actor: actor.clone(),
                });
                lines.push(Ok(()));
            }
            Err(refusal) => {
                state
                    .ingest_stats
                    .record(tenant_id, src, Outcome::Rejected(refusal.0), 1);
                rejected += 1;
                dead.push(&item.raw, &refusal);
                lines.push(Err(refusal.1));
            }
        }
    }
    dead.store(&state).await;
    if single {
        if let Some(Err(detail)) = lines.pop() {
            return Err(ApiError::field("body", detail));
        }
        let outcome = state
            .ingest
            .write(good, key_id)
            .await
            .map_err(write_error)?;
        let o = outcome
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no outcome")))?;
        let (status, counted) = if o.duplicate {
            (StatusCode::OK, Outcome::Duplicate)
        } else {
            (StatusCode::CREATED, Outcome::Accepted)
        };
        state.ingest_stats.record(tenant_id, src, counted, 1);
        return Ok((status, axum::Json(AlertAccepted::from(o))).into_response());
    }

    let outcomes = if good.is_empty() {
        Vec::new()
    } else {
        state
            .ingest
            .write(good, key_id)
            .await
            .map_err(write_error)?
    };
    let duplicates = outcomes.iter().filter(|o| o.duplicate).count();
    state
        .ingest_stats
        .record(tenant_id, src, Outcome::Duplicate, duplicates as u64);
    state.ingest_stats.record(
        tenant_id,
        src,
        Outcome::Accepted,
        (outcomes.len() - duplicates) as u64,
    );
    let mut outcomes = outcomes.into_iter();
    let mut result = BatchResult {
        accepted: 0,
        duplicates: 0,
        rejected: rejected as usize,
        results: Vec::with_capacity(lines.len()),
    };
    for (i, line) in lines.into_iter().enumerate() {
        let line_no = i + 1;
        match line {
            Ok(()) => {
                let o = outcomes
                    .next()
                    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("missing outcome")))?;
                if o.duplicate {
                    result.duplicates += 1;
                } else {
                    result.accepted += 1;
                }
                result.results.push(LineResult {
                    line: line_no,
                    accepted: Some(o.into()),
                    error: None,
                });
            }
            Err(e) => result.results.push(LineResult {
                line: line_no,
                accepted: None,
                error: Some(e),
            }),
        }
    }
    Ok((StatusCode::OK, axum::Json(result)).into_response())
}

pub(crate) fn write_error(e: crate::ingest_writer::WriteError) -> ApiError {
    match e {
        crate::ingest_writer::WriteError::Store(s) => s.into(),
        crate::ingest_writer::WriteError::KeyNotUsable => {
            ApiError::Unauthorized(crate::auth::INVALID)
        }
        other => ApiError::internal(other),
    }
}
