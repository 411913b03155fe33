//! Dashboard charts drawn on the server as inline SVG: no script, no external service, and
//! allowed by the console's content security policy (presentation attributes and classes
//! only; colours come from the stylesheet).

use serde_json::Value;
use std::fmt::Write;

pub const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "info"];
pub const STATUS_ORDER: &[&str] = &[
    "new",
    "triaged",
    "in_progress",
    "escalated",
    "resolved",
    "false_positive",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A rounded maximum for an axis: 1, 2, 5 × 10^n.
fn nice_max(v: i64) -> i64 {
    let v = v.max(1);
    let mut m = 1;
    loop {
        for f in [1, 2, 5] {
            if f * m >= v {
                return f * m;
            }
        }
        m *= 10;
    }
}

/// Alerts over time, stacked by severity (`series` of the dashboard statistics).
pub fn stacked_series(series: &Value, bucket: &str) -> String {
    let points = series.as_array().cloned().unwrap_or_default();
    let (w, h, left, bottom, top) = (1400.0_f64, 230.0_f64, 44.0_f64, 24.0_f64, 8.0_f64);
    let n = points.len().max(1) as f64;
    let max = points
        .iter()
        .map(|p| p["count"].as_i64().unwrap_or(0))
        .max()
        .unwrap_or(0);
    // Four grid steps of a round size.
    let max = nice_max((max + 3) / 4) * 4;
    let plot_h = h - bottom - top;
    let slot = (w - left) / n;
    let bar = (slot * 0.8).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="Alerts over time by severity">"#
    );
    for i in 0..=4 {
        let v = max * i / 4;
        let y = top + plot_h - plot_h * (v as f64) / (max as f64);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{left}" x2="{w}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            left - 6.0,
            y + 4.0
        );
    }
    let label_every = (points.len() / 8).max(1);
    for (i, p) in points.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        let start = p["start"].as_str().unwrap_or("");
        let mut tip = format!("{start}: {} alerts", p["count"].as_i64().unwrap_or(0));
        for sev in SEVERITIES.iter().rev() {
            let c = p["by_severity"][*sev].as_i64().unwrap_or(0);
            if c == 0 {
                continue;
            }
            let bh = plot_h * c as f64 / max as f64;
            y -= bh;
            let _ = write!(
                svg,
                r#"<rect class="sev-{sev}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}"><title>{}: {c} {sev}</title></rect>"#,
                esc(start)
            );
            let _ = write!(tip, ", {c} {sev}");
        }
        let _ = write!(
            svg,
            r#"<rect class="hit" x="{:.1}" y="{top}" width="{slot:.1}" height="{plot_h}"><title>{}</title></rect>"#,
            left + slot * i as f64,
            esc(&tip)
        );
        if i % label_every == 0 {
            let label = if bucket == "hour" {
                start.get(5..13).unwrap_or("").replace('T', " ") + "h"
            } else {
                start.get(5..10).unwrap_or("").to_string()
            };
            let _ = write!(
                svg,
                r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                left + slot * i as f64 + slot / 2.0,
                h - 6.0,
                esc(&label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars of a `{name: count}` object, in `order` (or largest first when empty).
pub fn bars(counts: &Value, order: &[&str], class_prefix: &str) -> String {
    let mut rows: Vec<(String, i64)> = match counts.as_object() {
        Some(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
            .collect(),
        None => Vec::new(),
    };
    if order.is_empty() {
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        rows.truncate(10);
    } else {
        rows.sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let row_h = 22.0;
    let (w, label_w, num_w) = (340.0_f64, 100.0_f64, 48.0_f64);
    let h = row_h * rows.len().max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart bars" viewBox="0 0 {w} {h}" role="img">"#
    );
    if rows.is_empty() {
        let _ = write!(svg, r#"<text class="axis" x="0" y="15">No alerts</text>"#);
    }
    for (i, (name, n)) in rows.iter().enumerate() {
        let y = row_h * i as f64;
        let bw = (w - label_w - num_w) * (*n as f64) / (max as f64);
        let class = format!("{class_prefix}-{}", esc(name));
        let _ = write!(
            svg,
            r#"<text class="label" x="0" y="{:.1}">{}</text><rect class="track" x="{label_w}" y="{:.1}" width="{:.1}" height="14"/><rect class="{class}" x="{label_w}" y="{:.1}" width="{bw:.1}" height="14"><title>{}: {n}</title></rect><text class="num" x="{w}" y="{:.1}" text-anchor="end">{n}</text>"#,
            y + 15.0,
            esc(&name.replace('_', " ")),
            y + 4.0,
            w - label_w - num_w,
            y + 4.0,
            esc(name),
            y + 15.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Mean time to acknowledge and to resolve side by side (seconds; `null` when no sample),
/// on one axis so their proportion reads at a glance.
pub fn response_times(stats: &Value) -> String {
    let rows = [
        (
            "acknowledge",
            "mtta",
            stats["mtta"]["mean_seconds"].as_f64(),
        ),
        ("resolve", "mttr", stats["mttr"]["mean_seconds"].as_f64()),
    ];
    let max = rows
        .iter()
        .filter_map(|r| r.2)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let (w, label_w, num_w, row_h) = (340.0_f64, 90.0_f64, 60.0_f64, 26.0_f64);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart bars" viewBox="0 0 {w} {}" role="img" aria-label="Mean time to acknowledge and to resolve">"#,
        row_h * 2.0
    );
    for (i, (label, class, v)) in rows.iter().enumerate() {
        let y = row_h * i as f64;
        let bw = (w - label_w - num_w) * v.unwrap_or(0.0) / max;
        let text = v.map_or("no sample".to_string(), human_seconds);
        let _ = write!(
            svg,
            r#"<text class="label" x="0" y="{:.1}">{label}</text><rect class="track" x="{label_w}" y="{:.1}" width="{:.1}" height="16"/><rect class="time-{class}" x="{label_w}" y="{:.1}" width="{bw:.1}" height="16"/><text class="num" x="{w}" y="{:.1}" text-anchor="end">{text}</text>"#,
            y + 16.0,
            y + 4.0,
            w - label_w - num_w,
            y + 4.0,
            y + 16.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `1h 4m`, `3m 20s`, `42s`.
fn human_seconds(secs: f64) -> String {
    let s = secs.round() as i64;
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn axes_round_up() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(3), 5);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(999), 1000);
    }

    #[test]
    fn charts_escape_names_and_stack_severities() {
        let svg = bars(&json!({"<script>": 3, "wazuh": 5}), &[], "source");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        let svg = stacked_series(
            &json!([{"start": "2026-01-01T00:00:00Z", "count": 3,
                     "by_severity": {"critical": 1, "high": 2, "medium": 0, "low": 0, "info": 0}}]),
            "day",
        );
        assert!(svg.contains("sev-critical") && svg.contains("sev-high"));
        assert!(!svg.contains("sev-medium"));
    }
}
