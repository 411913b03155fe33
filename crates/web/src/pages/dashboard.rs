//! The dashboard: the API's statistics with charts drawn on the server as SVG.

use crate::api::Ctx;
use crate::charts;
use crate::error::WebError;
use crate::form::FormData;
use axum::extract::RawQuery;
use axum::response::Response;

/// GET /dashboard (`?range=24h|7d|30d`, default 24h)
pub async fn page(ctx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, WebError> {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    // The last 24 hours by default: the shift's view, and the cheapest range (the statistics
    // read every alert of the range; see docs/benchmarks.md).
    let range = match f.get("range") {
        Some(r @ ("7d" | "30d")) => r.to_string(),
        _ => "24h".to_string(),
    };
    let now = bulwark_core::time::now();
    let (hours, bucket) = match range.as_str() {
        "30d" => (24 * 30, "day"),
        "7d" => (24 * 7, "hour"),
        _ => (24, "hour"),
    };
    let since =
        (now - chrono::Duration::hours(hours)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut q = format!("since={}&bucket={bucket}", crate::form::enc(&since));
    if let Some(t) = f.get("tenant_id") {
        q.push_str(&format!("&tenant_id={}", crate::form::enc(t)));
    }
    let stats = ctx.get(&format!("/api/v1/dashboard/stats?{q}")).await?;
    let series = charts::stacked_series(&stats["series"], bucket);
    let incidents = ctx
        .get_opt("/api/v1/incidents?status=open,in_progress,pending_approval,contained,eradicated,recovered&limit=10")
        .await?;
    Ok(ctx.render(
        "dashboard.html",
        "dashboard",
        "Dashboard",
        crate::ctx! {
            s => stats,
            range => range,
            over_time => minijinja::Value::from_safe_string(series),
            by_status => minijinja::Value::from_safe_string(charts::bars(&stats["by_status"], charts::STATUS_ORDER, "status")),
            by_severity => minijinja::Value::from_safe_string(charts::bars(&stats["by_severity"], charts::SEVERITIES, "sev")),
            by_source => minijinja::Value::from_safe_string(charts::bars(&stats["by_source"], &[], "source")),
            times => minijinja::Value::from_safe_string(charts::response_times(&stats)),
            incidents => incidents.map(|i| i["items"].clone()),
            tenants => crate::api::tenants(&ctx).await?,
            tenant_id => f.get("tenant_id"),
        },
    ))
}
