//! Templates (compiled into the binary, HTML autoescaped), the filters they use, the static
//! assets, and the context every page shares.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{AutoEscape, Environment, Value};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// A template context: each value is serialized (`serde_json` values, records, options) or
/// kept as it is when it already is a template value (safe HTML such as the charts).
#[macro_export]
macro_rules! ctx {
    ($($key:ident => $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m: std::collections::BTreeMap<&'static str, minijinja::Value> =
            std::collections::BTreeMap::new();
        $( m.insert(stringify!($key), minijinja::Value::from(minijinja::value::Serde(&$value))); )*
        minijinja::Value::from(minijinja::value::Serde(&m))
    }};
}

macro_rules! templates {
    ($env:ident, $($name:literal),+ $(,)?) => {
        $(
            if let Err(e) = $env.add_template($name, include_str!(concat!("../templates/", $name))) {
                panic!("template {} does not compile: {e:#}", $name);
            }
        )+
    };
}

pub const APP_JS: &str = include_str!("../static/app.js");
pub const APP_CSS: &str = include_str!("../static/app.css");

/// A short digest of the assets, appended to their URLs so browsers may cache them for long.
pub fn asset_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(APP_JS);
        h.update(APP_CSS);
        hex::encode(&h.finalize()[..6])
    })
}

/// The template environment, built once.
pub fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        env.add_filter("dt", dt);
        env.add_filter("ago", ago);
        env.add_filter("short", short);
        env.add_filter("pretty", pretty);
        env.add_filter("duration", duration);
        env.add_filter("label", label);
        env.add_filter("enc", |v: String| crate::form::enc(&v));
        env.add_function("asset_version", || asset_version().to_string());
        env.add_global("reasons", Value::from(minijinja::value::Serde(reasons())));
        templates!(
            env,
            "base.html",
            "macros.html",
            "login.html",
            "error.html",
            "alerts.html",
            "alert_rows.html",
            "alert.html",
            "incidents.html",
            "incident.html",
            "playbooks.html",
            "playbook.html",
            "playbook_edit.html",
            "runs.html",
            "run.html",
            "approvals.html",
            "observables.html",
            "observable.html",
            "dashboard.html",
            "users.html",
            "api_keys.html",
            "tenants.html",
            "tag_access.html",
            "notifications.html",
            "account.html",
            "admin_tabs.html",
            "templates.html",
            "suggestions.html",
        );
        env
    })
}

/// The resolve reasons with the determinations they fit, for the resolve forms (the script
/// offers only the reasons that fit the chosen determination; the API decides).
fn reasons() -> Vec<serde_json::Value> {
    use bulwark_core::triage::{Determination, ResolveReason};
    ResolveReason::ALL
        .iter()
        .map(|r| {
            let dets: Vec<&str> = Determination::ALL
                .iter()
                .filter(|d| r.fits_determination(**d))
                .map(|d| d.as_str())
                .collect();
            serde_json::json!({"value": r.as_str(), "label": r.label(), "dets": dets.join(" ")})
        })
        .collect()
}

/// Renders a template to a string; a rendering failure is logged and becomes a 500.
pub fn render(name: &str, ctx: Value) -> Result<String, crate::error::WebError> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| crate::error::WebError::internal(format!("template {name}: {e:#}")))
}

/// A rendered page with `status`; a page that fails to render is a plain 500.
pub fn page_response(name: &str, ctx: Value, status: StatusCode) -> Response {
    match render(name, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html("<!doctype html><title>Error</title><p>An unexpected error occurred; it has been logged.</p>"),
        )
            .into_response(),
    }
}

/// GET /static/{file}
pub async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    resp
}

fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `2026-01-02 13:04:05` (UTC) from an RFC 3339 time.
fn dt(v: Value) -> String {
    match v.as_str().and_then(parse_time) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None if v.is_none() || v.is_undefined() => String::new(),
        None => v.to_string(),
    }
}

/// `5m ago`, `3h ago`, `2d ago`.
fn ago(v: Value) -> String {
    let Some(t) = v.as_str().and_then(parse_time) else {
        return String::new();
    };
    let secs = (bulwark_core::time::now() - t).num_seconds();
    let (n, unit) = match secs {
        s if s < 0 => return "just now".into(),
        s if s < 60 => (s, "s"),
        s if s < 3600 => (s / 60, "m"),
        s if s < 86_400 => (s / 3600, "h"),
        s => (s / 86_400, "d"),
    };
    format!("{n}{unit} ago")
}

/// The first 8 characters of an id.
fn short(v: Value) -> String {
    v.as_str()
        .map(|s| s.chars().take(8).collect())
        .unwrap_or_default()
}

/// JSON text indented; anything else as it is.
fn pretty(v: Value) -> String {
    let text = match v.as_str() {
        Some(s) => s.to_string(),
        None => return serde_json::to_string_pretty(&v).unwrap_or_default(),
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(j) => serde_json::to_string_pretty(&j).unwrap_or(text),
        Err(_) => text,
    }
}

/// `1h 4m`, `3m 20s`, `850 ms` from seconds.
fn duration(v: Value) -> String {
    let Some(secs) = f64::try_from(v).ok() else {
        return "—".into();
    };
    if secs < 1.0 {
        return format!("{} ms", (secs * 1000.0).round());
    }
    let s = secs.round() as i64;
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `false_positive` → `false positive`.
fn label(v: Value) -> String {
    v.as_str().map(|s| s.replace('_', " ")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let env = env();
        assert!(env.get_template("alerts.html").is_ok());
    }

    #[test]
    fn filters() {
        assert_eq!(
            dt(Value::from("2026-01-02T13:04:05.123Z")),
            "2026-01-02 13:04:05"
        );
        assert_eq!(short(Value::from("0193abcd-ef")), "0193abcd");
        assert_eq!(duration(Value::from(3725.0)), "1h 2m");
        assert_eq!(duration(Value::from(0.25)), "250 ms");
        assert_eq!(label(Value::from("false_positive")), "false positive");
        assert_eq!(pretty(Value::from("{\"a\":1}")), "{\n  \"a\": 1\n}");
        assert_eq!(pretty(Value::from("not json")), "not json");
    }
}
