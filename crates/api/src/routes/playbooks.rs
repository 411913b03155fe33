//! Playbooks: list, read (with the current source and the version history), create and update
//! from the YAML or JSON document itself, enable/disable, delete. Validation is the playbook
//! crate's: a document that does not load is a 422 listing every problem with its path and
//! line (YAML lines come from the loader; JSON ones are found from the path).
//!
//! A playbook belongs to one tenant (the caller's home tenant, or `?tenant_id=`) or, with
//! `?scope=global`, to every tenant; only a platform administrator (all tenants in scope) may
//! create or change a global one. The store enforces the same rule and writes the audit records.

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, FieldProblem, Problem};
use crate::extract::{PathId, Query, body_rejection};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::{CONTENT_TYPE, IF_MATCH};
use axum::http::{HeaderMap, StatusCode};
use bulwark_core::{Caller, Scope, TenantId};
use bulwark_playbook::{Catalog, Playbook, PlaybookErrors};
use bulwark_store::ChangeCtx;
use bulwark_store::automation::{PlaybookRecord, PlaybookWrite};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The action catalog: the built-in actions and the integrations'.
pub(crate) fn catalog(state: &AppState) -> &Catalog {
    state.config.integrations.catalog()
}

/// The load errors of a playbook as a 422 listing them all.
pub(crate) fn invalid_playbook(errs: &PlaybookErrors) -> ApiError {
    let errors: Vec<FieldProblem> = errs
        .errors()
        .iter()
        .map(|e| FieldProblem {
            field: e.path.clone(),
            line: e.line,
            message: e.message.clone(),
        })
        .collect();
    ApiError::Invalid {
        detail: format!(
            "the playbook is not valid ({} problem{})",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        ),
        errors,
    }
}

/// A playbook document in the request body: `application/yaml` (also `text/yaml`,
/// `application/x-yaml`) or `application/json`; validated and compiled.
pub struct PlaybookBody {
    pub playbook: Playbook,
    pub source: String,
    pub format: &'static str,
}

fn body_format(headers: &HeaderMap) -> Option<&'static str> {
    let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mime = ct.split(';').next()?.trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/yaml" | "text/yaml" | "application/x-yaml" | "text/x-yaml" => Some("yaml"),
        "application/json" => Some("json"),
        m if m.starts_with("application/") && m.ends_with("+json") => Some("json"),
        _ => None,
    }
}

impl FromRequest<AppState> for PlaybookBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let format = body_format(req.headers()).ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "expected Content-Type: application/yaml (or text/yaml, application/x-yaml) or application/json"
                    .into(),
            )
        })?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        let source = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request(Some("body".into()), "must be UTF-8 text"))?;
        if source.contains('\0') {
            return Err(ApiError::bad_request(
                Some("body".into()),
                "must not contain NUL characters",
            ));
        }
        let playbook = if format == "yaml" {
            bulwark_playbook::parse_yaml(&source, catalog(state))
        } else {
            let value: serde_json::Value = crate::extract::parse_json(source.as_bytes())?;
            bulwark_playbook::parse_json(&value, catalog(state)).map_err(|e| json_lines(e, &source))
        }
        .map_err(|e| invalid_playbook(&e))?;
        Ok(PlaybookBody {
            playbook,
            source,
            format,
        })
    }
}

/// The JSON loader knows paths, not lines: find each path's line in the submitted text.
fn json_lines(mut errs: PlaybookErrors, source: &str) -> PlaybookErrors {
    for e in &mut errs.0 {
        if e.line.is_none() && !e.path.is_empty() {
            e.line = json_line(source, &e.path);
        }
    }
    errs
}

/// The 1-based line where the value at `target` (`actions[1].args.text`) starts in a JSON
/// text, by a scan that tracks the path of every value (the text has been parsed already).
fn json_line(text: &str, target: &str) -> Option<usize> {
    enum Frame {
        Obj { path: String, key: Option<String> },
        Arr { path: String, index: usize },
    }
    let here = |stack: &[Frame]| match stack.last() {
        None => String::new(),
        Some(Frame::Obj { path, key }) => {
            let k = key.as_deref().unwrap_or("");
            if path.is_empty() {
                k.to_owned()
            } else {
                format!("{path}.{k}")
            }
        }
        Some(Frame::Arr { path, index }) => format!("{path}[{index}]"),
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                s.push(e);
                            }
                        }
                        c => s.push(c),
                    }
                }
                if matches!(stack.last(), Some(Frame::Obj { key: None, .. })) {
                    if let Some(Frame::Obj { key, .. }) = stack.last_mut() {
                        *key = Some(s);
                    }
                } else if here(&stack) == target {
                    return Some(line);
                }
            }
            '{' | '[' => {
                let path = here(&stack);
                if path == target {
                    return Some(line);
                }
                stack.push(if c == '{' {
                    Frame::Obj { path, key: None }
                } else {
                    Frame::Arr { path, index: 0 }
                });
            }
            '}' | ']' => {
                stack.pop();
            }
            ',' => match stack.last_mut() {
                Some(Frame::Obj { key, .. }) => *key = None,
                Some(Frame::Arr { index, .. }) => *index += 1,
                None => {}
            },
            c if c.is_whitespace() || c == ':' => {}
            _ => {
                // A number, true, false or null.
                if here(&stack) == target {
                    return Some(line);
                }
                while chars
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | '}' | ']') && !c.is_whitespace())
                {
                    chars.next();
                }
            }
        }
    }
    None
}

fn write_of(body: PlaybookBody, tenant_id: Option<TenantId>) -> PlaybookWrite {
    let spec = body.playbook.spec();
    PlaybookWrite {
        tenant_id,
        name: spec.name.clone(),
        description: spec.description.clone(),
        enabled: spec.enabled,
        priority: spec.priority,
        spec: body.playbook.to_json(),
        source: body.source,
        source_format: body.format,
        origin: "api",
        file_path: None,
    }
}

fn ctx(caller: &Caller, rid: Option<String>) -> ChangeCtx {
    ChangeCtx::from_caller(caller, rid)
}

#[derive(Serialize, ToSchema)]
pub struct PlaybookList {
    /// The caller's tenants' playbooks and the global ones, by priority then name.
    pub items: Vec<PlaybookRecord>,
}

/// Playbooks visible to the caller: its tenants' and the global ones.
#[utoipa::path(get, path = "/api/v1/playbooks", tag = "automation", security(("bearer" = [])),
    responses((status = 200, body = PlaybookList)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<axum::Json<PlaybookList>> {
    Ok(axum::Json(PlaybookList {
        items: state.store.list_playbooks(&caller.scope).await?,
    }))
}

/// One version in a playbook's history.
#[derive(Serialize, ToSchema)]
pub struct VersionSummary {
    pub version: i32,
    /// `yaml` or `json`.
    pub source_format: String,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct PlaybookDetail {
    #[serde(flatten)]
    pub playbook: PlaybookRecord,
    /// The current version's document as it was submitted.
    pub source: String,
    /// `yaml` or `json`.
    pub source_format: String,
    /// Every version, newest first.
    pub versions: Vec<VersionSummary>,
}

async fn detail(state: &AppState, scope: &Scope, pb: PlaybookRecord) -> ApiResult<PlaybookDetail> {
    let versions = state.store.playbook_versions(scope, pb.id).await?;
    let (source, source_format) = versions
        .iter()
        .find(|v| v.version == pb.version)
        .map(|v| (v.source.clone(), v.source_format.clone()))
        .unwrap_or_default();
    Ok(PlaybookDetail {
        playbook: pb,
        source,
        source_format,
        versions: versions
            .into_iter()
            .map(|v| VersionSummary {
                version: v.version,
                source_format: v.source_format,
                created_by: v.created_by,
                created_at: v.created_at,
            })
            .collect(),
    })
}

/// One playbook with its current source and version history.
#[utoipa::path(get, path = "/api/v1/playbooks/{id}", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Playbook id")),
    responses((status = 200, body = PlaybookDetail), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<axum::Json<PlaybookDetail>> {
    let pb = state.store.get_playbook(&caller.scope, id).await?;
    Ok(axum::Json(detail(&state, &caller.scope, pb).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CreateQuery {
    /// `global`: the playbook applies to every tenant (platform administrators only).
    /// Default: one tenant.
    pub scope: Option<String>,
    /// The tenant it belongs to (default: the caller's home tenant).
    pub tenant_id: Option<TenantId>,
}

/// The tenant a new playbook goes to; `None` for a global one.
fn target(caller: &Caller, q: &CreateQuery) -> ApiResult<Option<TenantId>> {
    match q.scope.as_deref() {
        None | Some("tenant") => caller
            .target_tenant(q.tenant_id)
            .map(Some)
            .ok_or_else(|| ApiError::field("tenant_id", "unknown tenant")),
        Some("global") => {
            if q.tenant_id.is_some() {
                return Err(ApiError::field(
                    "tenant_id",
                    "a global playbook belongs to no tenant",
                ));
            }
            if !matches!(caller.scope, Scope::AllTenants) {
                return Err(ApiError::Forbidden(
                    "a playbook for every tenant is created by platform administrators".into(),
                ));
            }
            Ok(None)
        }
        Some(_) => Err(ApiError::field("scope", "expected `tenant` or `global`")),
    }
}

/// Create a playbook from its YAML or JSON document (the body is the document itself).
///
/// 422 lists every validation problem with its field path and line; 409 when the name
/// is taken; 415 for other content types; 403 for `?scope=global` without all tenants in scope.
#[utoipa::path(post, path = "/api/v1/playbooks", tag = "automation", security(("bearer" = [])),
    params(CreateQuery),
    request_body(description = "The playbook document itself (docs/playbooks.md): YAML (application/yaml, text/yaml or application/x-yaml) or JSON",
        content((String = "application/yaml"), (Object = "application/json"))),
    responses((status = 201, body = PlaybookDetail), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Query(q): Query<CreateQuery>,
    body: PlaybookBody,
) -> ApiResult<(StatusCode, axum::Json<PlaybookDetail>)> {
    let tenant = target(&caller, &q)?;
    let pb = state
        .store
        .create_playbook(
            &ctx(&caller, rid),
            &caller.scope,
            caller.home_tenant,
            write_of(body, tenant),
        )
        .await?;
    triggers_changed(&state).await;
    let d = detail(&state, &caller.scope, pb).await?;
    Ok((StatusCode::CREATED, axum::Json(d)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UpdateQuery {
    /// The version the change was made from (or the `If-Match` header); required.
    pub version: Option<i32>,
}

/// The expected version: `?version=N` or `If-Match: "N"`; one of them is required so that
/// concurrent edits cannot silently overwrite each other.
fn expected_version(headers: &HeaderMap, q: &UpdateQuery) -> ApiResult<i32> {
    let header = match headers.get(IF_MATCH) {
        None => None,
        Some(v) => {
            let raw = v.to_str().unwrap_or("").trim();
            let raw = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
            Some(raw.parse::<i32>().map_err(|_| {
                ApiError::field("If-Match", "must be the playbook version, e.g. \"3\"")
            })?)
        }
    };
    match (q.version, header) {
        (Some(a), Some(b)) if a != b => Err(ApiError::field(
            "version",
            "differs from the If-Match header",
        )),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(ApiError::Validation {
            status: StatusCode::PRECONDITION_REQUIRED,
            field: Some("version".into()),
            detail: "name the version you changed: ?version=N or If-Match: \"N\"".into(),
        }),
    }
}

/// Replace a playbook with a new version of its document (it keeps its tenant).
///
/// 409 when `version` (or `If-Match`) is not the current version; 428 without either.
#[utoipa::path(put, path = "/api/v1/playbooks/{id}", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Playbook id"), UpdateQuery,
        ("If-Match" = Option<String>, Header, description = "The expected version, e.g. \"3\" (instead of ?version)")),
    request_body(description = "The playbook document itself (docs/playbooks.md): YAML (application/yaml, text/yaml or application/x-yaml) or JSON",
        content((String = "application/yaml"), (Object = "application/json"))),
    responses((status = 200, body = PlaybookDetail), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
        (status = 428, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Query(q): Query<UpdateQuery>,
    headers: HeaderMap,
    body: PlaybookBody,
) -> ApiResult<axum::Json<PlaybookDetail>> {
    let version = expected_version(&headers, &q)?;
    let old = state.store.get_playbook(&caller.scope, id).await?;
    let pb = state
        .store
        .update_playbook(
            &ctx(&caller, rid),
            &caller.scope,
            caller.home_tenant,
            id,
            Some(version),
            write_of(body, old.tenant_id),
        )
        .await?;
    triggers_changed(&state).await;
    Ok(axum::Json(detail(&state, &caller.scope, pb).await?))
}

async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    rid: Option<String>,
    id: uuid::Uuid,
    enabled: bool,
) -> ApiResult<axum::Json<PlaybookRecord>> {
    let pb = state
        .store
        .set_playbook_enabled(
            &ctx(caller, rid),
            &caller.scope,
            caller.home_tenant,
            id,
            enabled,
        )
        .await?;
    triggers_changed(state).await;
    Ok(axum::Json(pb))
}

/// This node matches with the changed playbooks from the next alert on; other nodes follow
/// within `playbook_refresh`. The change is committed either way.
async fn triggers_changed(state: &AppState) {
    if let Err(e) = state.triggers.reload(&state.store).await {
        tracing::warn!(error = %e, "could not reload playbook triggers; they follow within the refresh interval");
    }
}

/// Enable a playbook (its triggers match again, manual runs are accepted).
#[utoipa::path(post, path = "/api/v1/playbooks/{id}/enable", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Playbook id")),
    responses((status = 200, body = PlaybookRecord), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn enable(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<axum::Json<PlaybookRecord>> {
    set_enabled(&state, &caller, rid, id, true).await
}

/// Disable a playbook: nothing new starts; its queued runs are cancelled when a worker
/// picks them up.
#[utoipa::path(post, path = "/api/v1/playbooks/{id}/disable", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Playbook id")),
    responses((status = 200, body = PlaybookRecord), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn disable(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<axum::Json<PlaybookRecord>> {
    set_enabled(&state, &caller, rid, id, false).await
}

/// Delete a playbook and its versions; its runs stay (with its name and version).
#[utoipa::path(delete, path = "/api/v1/playbooks/{id}", tag = "automation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Playbook id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_playbook(&ctx(&caller, rid), &caller.scope, caller.home_tenant, id)
        .await?;
    triggers_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::json_line;

    #[test]
    fn finds_the_line_of_a_path_in_json() {
        let text = "{\n  \"name\": \"x\",\n  \"actions\": [\n    {\"ref\": \"a\", \"n\": 1},\n    {\n      \"ref\": \"b\\\"]\",\n      \"depends_on\": [\"a\", true]\n    }\n  ]\n}";
        assert_eq!(json_line(text, "name"), Some(2));
        assert_eq!(json_line(text, "actions"), Some(3));
        assert_eq!(json_line(text, "actions[0].n"), Some(4));
        assert_eq!(json_line(text, "actions[1]"), Some(5));
        assert_eq!(json_line(text, "actions[1].ref"), Some(6));
        assert_eq!(json_line(text, "actions[1].depends_on[1]"), Some(7));
        assert_eq!(json_line(text, "actions[2]"), None);
        assert_eq!(json_line(text, "missing"), None);
    }
}
