//! The console's pages, one module per area.

pub mod admin;
pub mod alerts;
pub mod automation;
pub mod dashboard;
pub mod incidents;
pub mod notifications;
pub mod observables;

use crate::api::Ctx;
use crate::form::FormData;
use axum::response::{IntoResponse, Redirect, Response};

/// GET /
pub async fn home(_ctx: Ctx) -> Response {
    Redirect::to("/alerts").into_response()
}

/// The form's `back` field when it is a path of this site, else `default`.
pub fn back_to(f: &FormData, default: &str) -> String {
    match f.get("back") {
        Some(b) if b.starts_with('/') && !b.starts_with("//") && !b.contains('\\') => b.to_string(),
        _ => default.to_string(),
    }
}
