//! Observables (IOCs): the list with filters and cursor pagination, one observable with its
//! sightings, manual additions and analyst changes (tags, description, reputation).
//! See `docs/observables.md`.

use crate::auth::{Auth, RequestId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, PathId, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark_core::{AlertAccess, Permission, TenantId};
use bulwark_normalize::{IndicatorKind, normalize_indicator};
use bulwark_store::ChangeCtx;
use bulwark_store::observables::{
    CreateOutcome, MatchMode, NewObservable, ORIGINS, Observable, ObservableCursor,
    ObservableDetail, ObservableFilter, ObservablePatch, ObservableSort, SightingOptions, VERDICTS,
    check_description, clean_tags, validate_patch,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

const KINDS: &str = "ipv4, ipv6, domain, url, email, md5, sha1, sha256, sha512, cve";

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ObservableQuery {
    /// ipv4, ipv6, domain, url, email, md5, sha1, sha256, sha512 or cve.
    pub kind: Option<String>,
    /// Text in the value (defanged text is refanged first). Case-insensitive, except in URLs.
    pub q: Option<String>,
    /// How `q` matches: `contains` (default), `prefix` or `exact`.
    pub r#match: Option<String>,
    pub tag: Option<String>,
    /// malicious, suspicious, benign or unknown.
    pub verdict: Option<String>,
    /// alert or manual.
    pub origin: Option<String>,
    pub tenant_id: Option<TenantId>,
    /// Last seen at or after.
    pub since: Option<DateTime<Utc>>,
    /// `last_seen` (default, most recent first) or `sightings` (most seen first).
    pub sort: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (with the same `sort`).
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ObservablePage {
    pub items: Vec<Observable>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn one_of(field: &str, v: Option<String>, allowed: &[&str]) -> ApiResult<Option<String>> {
    match v {
        Some(s) if !allowed.contains(&s.as_str()) => Err(ApiError::field(
            field,
            format!("expected one of {}", allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

fn bounded_text(field: &str, v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        Some(s) if s.len() > 512 => Err(ApiError::field(field, "at most 512 bytes")),
        Some(s) if s.contains('\0') => Err(ApiError::field(field, "must not contain NUL")),
        Some(s) if s.trim().is_empty() => Err(ApiError::field(field, "must not be empty")),
        other => Ok(other),
    }
}

fn parse_kind(field: &str, raw: &str) -> ApiResult<IndicatorKind> {
    raw.parse::<IndicatorKind>()
        .map_err(|_| ApiError::field(field, format!("unknown kind; expected one of {KINDS}")))
}

/// Observables visible to the caller matching every filter given.
#[utoipa::path(get, path = "/api/v1/observables", tag = "observables", security(("bearer" = [])),
    params(ObservableQuery),
    responses((status = 200, body = ObservablePage), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<ObservableQuery>,
) -> ApiResult<axum::Json<ObservablePage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 500"));
    }
    let kind = q
        .kind
        .as_deref()
        .map(|k| parse_kind("kind", k))
        .transpose()?;
    let match_mode = match q.r#match.as_deref() {
        None | Some("contains") => MatchMode::Contains,
        Some("prefix") => MatchMode::Prefix,
        Some("exact") => MatchMode::Exact,
        Some(_) => {
            return Err(ApiError::field(
                "match",
                "expected contains, prefix or exact",
            ));
        }
    };
    let sort = match q.sort.as_deref() {
        None | Some("last_seen") => ObservableSort::LastSeen,
        Some("sightings") => ObservableSort::Sightings,
        Some(_) => return Err(ApiError::field("sort", "expected last_seen or sightings")),
    };
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => {
            let c = ObservableCursor::decode(c)
                .filter(|c| c.sort() == sort)
                .ok_or_else(|| {
                    ApiError::field(
                        "cursor",
                        "not a cursor of this list (use next_cursor with the same sort)",
                    )
                })?;
            Some(c)
        }
    };
    // Search text: refanged like indicators in alerts; an exact search for a valid value of
    // the given kind uses its canonical form (`Evil.COM.` finds `evil.com`).
    let text = bounded_text("q", q.q)?.map(|t| {
        let t = bulwark_normalize::refang(t.trim()).into_owned();
        match (match_mode, kind) {
            (MatchMode::Exact, Some(k)) => normalize_indicator(k, &t).map_or(t, |i| i.value),
            _ => t,
        }
    });
    crate::routes::dashboard::check_time("since", q.since)?;
    let filter = ObservableFilter {
        tenant_id: q.tenant_id,
        kind: kind.map(|k| k.as_str().to_string()),
        q: text,
        match_mode,
        tag: bounded_text("tag", q.tag)?,
        verdict: one_of("verdict", q.verdict, VERDICTS)?,
        origin: one_of("origin", q.origin, ORIGINS)?,
        since: q.since,
        sort,
        after,
        limit,
    };
    let items = state
        .store
        .list_observables(&AlertAccess::of(&caller), &filter)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|o| ObservableCursor::of(sort, o).encode()))
        .flatten();
    Ok(axum::Json(ObservablePage { items, next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ObservableDetailQuery {
    /// At most this many alerts and this many incidents (1 to 500, default 50).
    pub sightings_limit: Option<u32>,
}

/// One observable: reputation and enrichment fields, and its sightings: the alerts carrying it
/// that the caller may see (newest first) and the incidents those alerts are in.
#[utoipa::path(get, path = "/api/v1/observables/{id}", tag = "observables", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Observable id"), ObservableDetailQuery),
    responses((status = 200, body = ObservableDetail), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    Query(q): Query<ObservableDetailQuery>,
) -> ApiResult<axum::Json<ObservableDetail>> {
    let limit = q.sightings_limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("sightings_limit", "must be 1 to 500"));
    }
    let opts = SightingOptions {
        limit,
        incidents: caller.can(Permission::IncidentsRead),
    };
    Ok(axum::Json(
        state
            .store
            .get_observable(&AlertAccess::of(&caller), id, opts)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateObservableRequest {
    /// ipv4, ipv6, domain, url, email, md5, sha1, sha256, sha512 or cve.
    pub kind: String,
    /// Normalized as ingestion does (defanged values are refanged).
    pub value: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub description: Option<String>,
    /// Defaults to the caller's home tenant.
    pub tenant_id: Option<TenantId>,
}

/// The 409 answer to adding an observable the tenant already has.
#[derive(Serialize, ToSchema)]
pub struct ObservableExists {
    #[serde(flatten)]
    pub problem: Problem,
    /// The observable that already exists (change it with PATCH).
    pub existing_id: uuid::Uuid,
}

/// Add an observable by hand (origin `manual`). The value is validated and normalized for its
/// kind; if the tenant already has it, nothing changes and the answer is 409 with its id.
#[utoipa::path(post, path = "/api/v1/observables", tag = "observables", security(("bearer" = [])),
    request_body = CreateObservableRequest,
    responses((status = 201, body = Observable),
              (status = 409, description = "Already exists", body = ObservableExists),
              (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    Json(req): Json<CreateObservableRequest>,
) -> ApiResult<Response> {
    let kind = parse_kind("kind", &req.kind)?;
    let indicator = normalize_indicator(kind, &req.value)
        .map_err(|e| ApiError::field("value", e.to_string()))?;
    let tags = clean_tags(&req.tags).map_err(|(f, m)| ApiError::field(f, m))?;
    let description = req
        .description
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    check_description(description.as_deref()).map_err(|(f, m)| ApiError::field(f, m))?;
    let tenant_id = caller
        .target_tenant(req.tenant_id)
        .ok_or_else(|| ApiError::field("tenant_id", "unknown tenant"))?;
    let outcome = state
        .store
        .create_observable(
            &ChangeCtx::from_caller(&caller, rid),
            &AlertAccess::of(&caller),
            NewObservable {
                tenant_id,
                kind: kind.as_str().to_string(),
                value: indicator.value,
                is_private: indicator.private,
                tags,
                description,
            },
        )
        .await?;
    Ok(match outcome {
        CreateOutcome::Created(o) => (StatusCode::CREATED, axum::Json(o)).into_response(),
        CreateOutcome::Exists(existing_id) => {
            let body = ObservableExists {
                problem: Problem {
                    kind: "urn:bulwark:problem:conflict".into(),
                    title: "Conflict".into(),
                    status: StatusCode::CONFLICT.as_u16(),
                    detail: format!("this observable already exists: {existing_id}"),
                    field: Some("value".into()),
                    errors: Vec::new(),
                },
                existing_id,
            };
            let mut resp = (StatusCode::CONFLICT, axum::Json(body)).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            resp
        }
    })
}

/// Present and null → `Some(None)`; absent → `None` (with `#[serde(default)]`).
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Fields left out stay as they are; `null` clears a field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateObservableRequest {
    /// Replaces the tags (`null` or `[]` removes them all).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// 0 (harmless) to 100 (certainly malicious).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 100)]
    pub reputation_score: Option<Option<i64>>,
    /// malicious, suspicious, benign or unknown.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub verdict: Option<Option<String>>,
}

/// Change an observable's tags, description or reputation (score and verdict). Audited as
/// `decision.observable.updated`.
#[utoipa::path(patch, path = "/api/v1/observables/{id}", tag = "observables", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Observable id")),
    request_body = UpdateObservableRequest,
    responses((status = 200, body = Observable), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
    Json(req): Json<UpdateObservableRequest>,
) -> ApiResult<axum::Json<Observable>> {
    let patch = ObservablePatch {
        tags: req.tags.map(Option::unwrap_or_default),
        description: req
            .description
            .map(|d| d.map(|d| d.trim().to_string()).filter(|d| !d.is_empty())),
        reputation_score: req.reputation_score,
        verdict: req.verdict,
    };
    validate_patch(&patch).map_err(|(f, m)| ApiError::field(f, m))?;
    Ok(axum::Json(
        state
            .store
            .update_observable(
                &ChangeCtx::from_caller(&caller, rid),
                &AlertAccess::of(&caller),
                id,
                patch,
            )
            .await?,
    ))
}

/// The answer to a manual enrichment request.
#[derive(Serialize, ToSchema)]
pub struct EnrichResponse {
    /// The queued enrichment jobs; the lookups run in the background and their results appear
    /// on the observable (`enrichment`, `verdict`, `reputation_sources`).
    pub job_ids: Vec<uuid::Uuid>,
    /// The integrations that will look it up.
    pub integrations: Vec<String>,
}

/// Look an observable up again now with every enabled enrichment integration of its tenant
/// that handles its kind, even if a cached answer is still fresh. Private and reserved values
/// and the tenant's allow-list are never sent out (409 saying why). Audited.
#[utoipa::path(post, path = "/api/v1/observables/{id}/enrich", tag = "observables", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Observable id")),
    responses((status = 202, body = EnrichResponse), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn enrich(
    State(state): State<AppState>,
    Auth(caller): Auth,
    RequestId(rid): RequestId,
    PathId(id): PathId,
) -> ApiResult<(StatusCode, axum::Json<EnrichResponse>)> {
    use bulwark_integrations::enrich::{integrations_for, never_sent, parse_allow_list};
    let o = state
        .store
        .get_observable(
            &AlertAccess::of(&caller),
            id,
            SightingOptions {
                limit: 1,
                incidents: false,
            },
        )
        .await?
        .observable;
    let settings = state.store.enrichment_settings_of(o.tenant_id).await?;
    let allow = parse_allow_list(&settings.allow_list).map_err(|e| {
        ApiError::Conflict(format!(
            "the tenant's enrichment allow-list cannot be read ({e}): nothing is sent"
        ))
    })?;
    if let Some(why) = never_sent(&o.kind, &o.value, o.is_private, &allow) {
        return Err(ApiError::Conflict(format!("{}: {why}", o.value)));
    }
    let all = state.store.enrichment_integrations(o.tenant_id).await?;
    let usable: Vec<String> = integrations_for(&state.config.integrations, &all, &o.kind)
        .into_iter()
        .map(|r| r.name.clone())
        .collect();
    if usable.is_empty() {
        return Err(ApiError::Conflict(format!(
            "no enabled enrichment integration of this tenant looks up {} values \
             (configure one with `enrichment: true`)",
            o.kind
        )));
    }
    let job_ids = state
        .store
        .queue_enrichment(
            &ChangeCtx::from_caller(&caller, rid),
            o.tenant_id,
            &[o.id],
            true,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(EnrichResponse {
            job_ids,
            integrations: usable,
        }),
    ))
}
