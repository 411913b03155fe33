//! Extractors whose rejections are problem+json naming the field, instead of axum's plain-text
//! rejections.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// A JSON body. Rejections: 415 without a JSON content type, 413 over the body limit, 400 for
/// malformed JSON, 422 for a type or value error with the field's path.
pub struct Json<T>(pub T);

pub(crate) fn is_json_content_type(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

pub(crate) fn body_rejection(e: BytesRejection) -> ApiError {
    // The body limit surfaces as a rejection whose status is 413.
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad_request(None, "the request body could not be read")
    }
}

/// Parses JSON, reporting the path of the failing field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => {
            refuse_nul_in_json(bytes)?;
            Ok(v)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let field = if path == "." || path.is_empty() {
                missing_field(&inner.to_string())
            } else {
                Some(path)
            };
            use serde_json::error::Category;
            Err(match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
                    None,
                    format!("malformed JSON: {}", clean_message(&inner.to_string())),
                ),
                Category::Data => ApiError::Validation {
                    status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    field,
                    detail: clean_message(&inner.to_string()),
                },
            })
        }
    }
}

/// Both backends store years 1 to 9999 only; anything else is refused as the named field.
pub fn storable_time(
    field: &str,
    t: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), ApiError> {
    use chrono::Datelike;
    match t {
        Some(t) if !(1..=9999).contains(&t.year()) => {
            Err(ApiError::field(field, "must be between years 1 and 9999"))
        }
        _ => Ok(()),
    }
}

/// A NUL character cannot be stored in a PostgreSQL text column (and has no business in
/// one): refuse it up front, naming the field, instead of failing at the database. Only
/// bodies that contain the `\u0000` escape are walked.
fn refuse_nul_in_json(bytes: &[u8]) -> Result<(), ApiError> {
    let has_escape = bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && &w[2..6] == b"0000");
    if !has_escape {
        return Ok(());
    }
    fn find(v: &serde_json::Value, path: &str) -> Option<String> {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => Some(path.to_string()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, x)| find(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(map) => map.iter().find_map(|(k, x)| {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.contains('\0') {
                    Some(here)
                } else {
                    find(x, &here)
                }
            }),
            _ => None,
        }
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(None, format!("malformed JSON: {e}")))?;
    match find(&value, "") {
        Some(field) => Err(ApiError::field(&field, "must not contain NUL characters")),
        None => Ok(()),
    }
}

/// serde reports a missing field at the parent's path; pull the name out of its message.
fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// serde_json appends " at line 1 column 12"; keep the message, drop the position noise only
/// when it is the whole tail.
fn clean_message(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(&req) {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// An optional JSON body: an empty body is `None`; anything else must be valid JSON.
pub struct OptionalJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json_content_type(&req);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// Query parameters; a bad one is a 422 naming it.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        if let Some((name, _)) =
            form_urlencoded_parse(raw).find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::field(
                name.replace('\0', ""),
                "must not contain NUL characters",
            ));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(raw));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                let field = if path == "." {
                    missing_field(&msg)
                } else {
                    Some(path)
                };
                ApiError::Validation {
                    status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    field,
                    detail: msg,
                }
            })
    }
}

fn form_urlencoded_parse(raw: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(raw.as_bytes())
}

/// A UUID path parameter (`{id}`). A malformed one is a 400 naming the parameter.
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::bad_request(Some("id".into()), "missing path parameter"))?;
        Uuid::parse_str(&raw)
            .map(PathId)
            .map_err(|_| ApiError::bad_request(Some("id".into()), "must be a UUID"))
    }
}

/// Two UUID path parameters (`/{id}/.../{second}`); `second` names the second one in errors.
pub struct PathIds(pub Uuid, pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::bad_request(Some("id".into()), "missing path parameter"))?;
        let mut ids = Vec::with_capacity(2);
        for (name, value) in raw.iter().take(2) {
            let id = Uuid::parse_str(value)
                .map_err(|_| ApiError::bad_request(Some(name.clone()), "must be a UUID"))?;
            ids.push(id);
        }
        match ids[..] {
            [a, b] => Ok(PathIds(a, b)),
            _ => Err(ApiError::bad_request(
                Some("id".into()),
                "missing path parameter",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        role: bulwark_core::Role,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        username: String,
        inner: Option<Inner>,
    }

    fn field_of(e: ApiError) -> (u16, Option<String>) {
        match e {
            ApiError::Validation { status, field, .. } => (status.as_u16(), field),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn names_the_failing_field() {
        let e = parse_json::<Body>(br#"{"username": 5}"#).expect_err("error");
        assert_eq!(field_of(e), (422, Some("username".into())));
        let e = parse_json::<Body>(br#"{}"#).expect_err("error");
        assert_eq!(field_of(e), (422, Some("username".into())));
        let e =
            parse_json::<Body>(br#"{"username":"a","inner":{"role":"root"}}"#).expect_err("error");
        assert_eq!(field_of(e), (422, Some("inner.role".into())));
        let e = parse_json::<Body>(br#"{"username":"a","extra":1}"#).expect_err("error");
        assert_eq!(field_of(e).0, 422);
    }

    #[test]
    fn malformed_json_is_400() {
        for bad in [&b"{"[..], b"nope", b"", b"{\"username\": \"a\",}"] {
            let e = parse_json::<Body>(bad).expect_err("error");
            assert_eq!(field_of(e).0, 400);
        }
    }
}
