//! Errors of console requests, answered as an HTML page with the API's status and message
//! (a 4xx names what was wrong; an unexpected failure is logged and answered without detail).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub detail: String,
    /// The field at fault, as the API names it.
    pub field: Option<String>,
    /// Every problem (playbook validation lists them with lines).
    pub errors: Vec<serde_json::Value>,
    /// Where "back" leads.
    pub back: Option<String>,
}

impl WebError {
    pub fn status(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
            back: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::status(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found() -> Self {
        Self::status(
            StatusCode::NOT_FOUND,
            "There is no such record, or it is not visible to you.",
        )
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "console request failed");
        Self::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error occurred; it has been logged.",
        )
    }

    /// From an API problem document (`application/problem+json`).
    pub fn from_problem(status: StatusCode, body: &serde_json::Value) -> Self {
        if status.is_server_error() {
            return Self::status(status, "An unexpected error occurred; it has been logged.");
        }
        let detail = body["detail"]
            .as_str()
            .unwrap_or("The request was refused.");
        let detail = match status {
            StatusCode::NOT_FOUND => {
                "There is no such record, or it is not visible to you.".to_string()
            }
            StatusCode::FORBIDDEN => format!("You may not do this: {detail}."),
            _ => detail.to_string(),
        };
        Self {
            status,
            detail,
            field: body["field"].as_str().map(str::to_string),
            errors: body["errors"].as_array().cloned().unwrap_or_default(),
            back: None,
        }
    }

    pub fn back(mut self, to: impl Into<String>) -> Self {
        self.back = Some(to.into());
        self
    }

    /// The message with the field, for banners.
    pub fn message(&self) -> String {
        match &self.field {
            Some(f) if !self.detail.contains(f.as_str()) => format!("{f}: {}", self.detail),
            _ => self.detail.clone(),
        }
    }
}

impl From<bulwark_store::StoreError> for WebError {
    fn from(e: bulwark_store::StoreError) -> Self {
        match e {
            bulwark_store::StoreError::NotFound => Self::not_found(),
            other => Self::internal(other),
        }
    }
}

impl From<bulwark_api::error::ApiError> for WebError {
    fn from(e: bulwark_api::error::ApiError) -> Self {
        use bulwark_api::error::ApiError as E;
        match e {
            E::NotFound => Self::not_found(),
            E::Validation {
                status,
                field,
                detail,
            } => Self {
                status,
                detail,
                field,
                errors: Vec::new(),
                back: None,
            },
            E::Forbidden(m) => Self::status(StatusCode::FORBIDDEN, m),
            E::Unavailable(m) => Self::status(StatusCode::SERVICE_UNAVAILABLE, m),
            E::Conflict(m) => Self::status(StatusCode::CONFLICT, m),
            other => Self::internal(format!("{other:?}")),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let ctx = crate::ctx! {
            status => self.status.as_u16(),
            title => title,
            message => self.message(),
            errors => self.errors,
            back => self.back,
        };
        crate::render::page_response("error.html", ctx, self.status)
    }
}
