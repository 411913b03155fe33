//! One error type for every HTTP handler, rendered as RFC 9457 problem+json.
//!
//! Policy: caller mistakes are 4xx with the offending field named; anything unexpected is logged
//! with the request id and answered with a bare 500 that reveals nothing (no messages from the
//! database, no stack traces).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark_core::validate::FieldError;
use bulwark_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI identifying the problem type, e.g. `urn:bulwark:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, when there is one (dotted path for nested fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem found, when there are several (an invalid playbook lists them all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

/// One of several problems in a request: where (field path, and the line of a YAML document
/// when known) and what.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    /// Dotted path in the document, e.g. `actions[1].depends_on[0]`; empty for the whole document.
    pub field: String,
    /// 1-based line in the submitted document, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug)]
pub enum ApiError {
    /// 400 (malformed) or 422 (well-formed but invalid), naming the field.
    Validation {
        status: StatusCode,
        field: Option<String>,
        detail: String,
    },
    /// 422 with every problem listed (the first one named in `field`).
    Invalid {
        detail: String,
        errors: Vec<FieldProblem>,
    },
    Unauthorized(&'static str),
    /// A webhook signature is missing, malformed, stale or wrong (401, says which).
    BadSignature(String),
    Forbidden(String),
    NotFound,
    Conflict(String),
    PayloadTooLarge,
    UnsupportedMediaType(String),
    TooManyRequests {
        retry_after_secs: u64,
    },
    Internal(anyhow::Error),
    Unavailable(String),
}

impl ApiError {
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::Validation {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    pub fn bad_request(field: Option<String>, detail: impl Into<String>) -> Self {
        ApiError::Validation {
            status: StatusCode::BAD_REQUEST,
            field,
            detail: detail.into(),
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Validation { status, .. } if *status == StatusCode::BAD_REQUEST => {
                (*status, "bad-request", "Malformed request")
            }
            ApiError::Validation { status, .. } => (*status, "validation", "Invalid request"),
            ApiError::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
            ),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::BadSignature(_) => (
                StatusCode::UNAUTHORIZED,
                "bad-signature",
                "Invalid signature",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
        }
    }
}

impl From<crate::password_pool::PoolError> for ApiError {
    fn from(e: crate::password_pool::PoolError) -> Self {
        match e {
            crate::password_pool::PoolError::Busy => {
                ApiError::Unavailable("too many logins in progress; retry shortly".into())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::field(e.field, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict { field } => ApiError::Validation {
                status: StatusCode::CONFLICT,
                field: Some(field.to_string()),
                detail: format!("{field} already exists"),
            },
            StoreError::LastAdmin => ApiError::Conflict(e.to_string()),
            StoreError::Forbidden(message) => ApiError::Forbidden(message),
            StoreError::State(message) => ApiError::Conflict(message),
            StoreError::Invalid { field, message } => ApiError::field(field, message),
            ref other if other.is_retryable_conflict() => ApiError::Unavailable(
                "a concurrent change conflicted with this one; nothing was written, send it again"
                    .into(),
            ),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let mut errors = Vec::new();
        let (detail, field) = match self {
            ApiError::Validation { field, detail, .. } => (detail, field),
            ApiError::Invalid {
                detail,
                errors: all,
            } => {
                let field = all.first().map(|e| e.field.clone());
                errors = all;
                (detail, field)
            }
            ApiError::Unauthorized(d) => (d.to_string(), None),
            ApiError::Forbidden(d) | ApiError::Conflict(d) | ApiError::BadSignature(d) => (d, None),
            ApiError::UnsupportedMediaType(d) | ApiError::Unavailable(d) => (d, None),
            ApiError::NotFound => ("no such resource".to_string(), None),
            ApiError::PayloadTooLarge => {
                ("the request body exceeds the size limit".to_string(), None)
            }
            ApiError::TooManyRequests { retry_after_secs } => (
                format!("too many attempts; retry after {retry_after_secs} s"),
                None,
            ),
            ApiError::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "internal error");
                (
                    "an unexpected error occurred; it has been logged".to_string(),
                    None,
                )
            }
        };
        let body = Problem {
            kind: format!("urn:bulwark:problem:{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            field,
            errors,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"bulwark\""),
            );
        }
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
