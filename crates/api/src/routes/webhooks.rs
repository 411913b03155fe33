//! Alert ingestion over webhooks: `POST /api/v1/webhooks/alerts` (generic) and
//! `POST /api/v1/webhooks/alerts/{source}`. The endpoint decides the source; nothing in the
//! payload can change it. Accepts one JSON alert, a JSON array, a source's own batch envelope
//! (e.g. GuardDuty `findings`), or NDJSON (`application/x-ndjson`, one alert per line).
//! Answers only after the alerts are committed.

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::body_rejection;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bulwark_normalize::Source;
use bulwark_store::ChangeCtx;
use bulwark_store::ingest::{IncomingAlert, IngestOutcome};
use serde::Serialize;
use serde_json::Value;
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
    /// Playbooks started by this alert (automation is not built yet: always 0).
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
            playbooks_triggered: 0,
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

fn parse_item(text: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(text).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            format!("nesting deeper than {MAX_DEPTH} levels")
        } else {
            format!("invalid JSON: {e}")
        }
    })?;
    if depth(&v) > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
    }
    Ok(v)
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

/// A request body: one document or NDJSON lines.
pub enum Payload {
    Single(Bytes),
    Lines(Bytes),
}

impl<S: Send + Sync> FromRequest<S> for Payload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ndjson = is_ndjson(&req);
        let json = crate::extract::is_json_content_type(&req);
        if !ndjson && !json {
            return Err(ApiError::UnsupportedMediaType(
                "expected application/json or application/x-ndjson".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(None, "the request body is empty"));
        }
        Ok(if ndjson {
            Payload::Lines(bytes)
        } else {
            Payload::Single(bytes)
        })
    }
}

fn source_of(path: Option<String>) -> ApiResult<Source> {
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

/// Ingest alerts for the generic source.
#[utoipa::path(post, path = "/api/v1/webhooks/alerts", tag = "ingestion", security(("api_key" = [])),
    request_body(content = Object, description = "One alert, an array, or NDJSON (application/x-ndjson)"),
    responses((status = 201, description = "Stored (new alert)", body = AlertAccepted),
              (status = 200, description = "Duplicate of a stored alert, or a batch result", body = BatchResult),
              (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn ingest_generic(
    state: State<AppState>,
    auth: Auth,
    rid: RequestId,
    payload: Payload,
) -> ApiResult<Response> {
    ingest(state, auth, rid, Source::Generic, payload).await
}

/// Ingest alerts from one tool (`elastic`, `wazuh`, `suricata`, `splunk`, `sentinel`,
/// `crowdstrike`, `guardduty`, `zeek`, `generic`).
#[utoipa::path(post, path = "/api/v1/webhooks/alerts/{source}", tag = "ingestion", security(("api_key" = [])),
    params(("source" = String, Path, description = "The sending tool")),
    request_body(content = Object, description = "One alert, an array, the tool's batch envelope, or NDJSON"),
    responses((status = 201, description = "Stored (new alert)", body = AlertAccepted),
              (status = 200, description = "Duplicate of a stored alert, or a batch result", body = BatchResult),
              (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn ingest_source(
    state: State<AppState>,
    auth: Auth,
    rid: RequestId,
    Path(source): Path<String>,
    payload: Payload,
) -> ApiResult<Response> {
    let source = source_of(Some(source))?;
    ingest(state, auth, rid, source, payload).await
}

async fn ingest(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    source: Source,
    payload: Payload,
) -> ApiResult<Response> {
    if let Some(bound) = &caller.source_binding
        && bound != source.as_str()
    {
        return Err(ApiError::Forbidden(format!(
            "this API key may only post alerts for source `{bound}`"
        )));
    }
    let actor = ChangeCtx::from_caller(&caller, rid);
    let tenant_id = caller.home_tenant;
    let received_at = bulwark_core::time::now();
    let to_incoming = |raw: String, v: &Value| -> Result<IncomingAlert, String> {
        if !v.is_object() {
            return Err("each alert must be a JSON object".into());
        }
        let alert = bulwark_normalize::normalize(source, v).map_err(|e| e.to_string())?;
        Ok(IncomingAlert {
            tenant_id,
            alert,
            raw,
            received_at,
            actor: actor.clone(),
        })
    };

    // Every item: its 1-based position and either an alert to store or why it was refused.
    let (single, items): (bool, Vec<Result<IncomingAlert, String>>) = match payload {
        Payload::Single(bytes) => {
            let v = parse_item(&bytes).map_err(|e| {
                if e.starts_with("invalid JSON") {
                    ApiError::bad_request(None, e)
                } else {
                    ApiError::field("body", e)
                }
            })?;
            let parts = match &v {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                Value::Object(_) => bulwark_normalize::split_batch(source, &v),
                _ => {
                    return Err(ApiError::field(
                        "body",
                        "must be a JSON object or an array of objects",
                    ));
                }
            };
            if parts.is_empty() {
                return Err(ApiError::field("body", "contains no alerts"));
            }
            let single = parts.len() == 1 && std::ptr::eq(parts[0], &v);
            let items = parts
                .into_iter()
                .map(|p| {
                    let raw = if single {
                        String::from_utf8_lossy(&bytes).into_owned()
                    } else {
                        p.to_string()
                    };
                    to_incoming(raw, p)
                })
                .collect();
            (single, items)
        }
        Payload::Lines(bytes) => {
            let items = bytes
                .split(|b| *b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .map(|l| {
                    parse_item(l)
                        .and_then(|v| to_incoming(String::from_utf8_lossy(l).into_owned(), &v))
                })
                .collect();
            (false, items)
        }
    };
    if items.len() > MAX_BATCH {
        return Err(ApiError::field(
            "body",
            format!("at most {MAX_BATCH} alerts per request"),
        ));
    }
    if single {
        let alert = match items.into_iter().next() {
            Some(Ok(a)) => a,
            Some(Err(e)) => return Err(ApiError::field("body", e)),
            None => return Err(ApiError::field("body", "contains no alerts")),
        };
        let outcome = state.ingest.write(vec![alert]).await.map_err(write_error)?;
        let o = outcome
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no outcome")))?;
        let status = if o.duplicate {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        return Ok((status, axum::Json(AlertAccepted::from(o))).into_response());
    }

    let good: Vec<IncomingAlert> = items
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mut outcomes = if good.is_empty() {
        Vec::new()
    } else {
        state.ingest.write(good).await.map_err(write_error)?
    }
    .into_iter();
    let mut result = BatchResult {
        accepted: 0,
        duplicates: 0,
        rejected: 0,
        results: Vec::with_capacity(items.len()),
    };
    for (i, item) in items.into_iter().enumerate() {
        let line = i + 1;
        match item {
            Ok(_) => {
                let o = outcomes
                    .next()
                    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("missing outcome")))?;
                if o.duplicate {
                    result.duplicates += 1;
                } else {
                    result.accepted += 1;
                }
                result.results.push(LineResult {
                    line,
                    accepted: Some(o.into()),
                    error: None,
                });
            }
            Err(e) => {
                result.rejected += 1;
                result.results.push(LineResult {
                    line,
                    accepted: None,
                    error: Some(e),
                });
            }
        }
    }
    Ok((StatusCode::OK, axum::Json(result)).into_response())
}

fn write_error(e: crate::ingest_writer::WriteError) -> ApiError {
    match e {
        crate::ingest_writer::WriteError::Store(s) => s.into(),
        other => ApiError::internal(other),
    }
}
