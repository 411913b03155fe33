//! One field mapping per [`Source`]. Each mapper reads the vendor's documented field names and
//! fills a [`Mapped`] draft; [`crate::normalize`] then adds the indicators and the ATT&CK
//! verification. Mappers never fail on missing or odd fields: they leave them empty.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::{NormalizeError, Severity, Source};
use crate::severity;

mod crowdstrike;
mod elastic;
mod generic;
mod guardduty;
mod sentinel;
mod splunk;
mod suricata;
mod wazuh;
mod zeek;

/// What a mapper found. `None`/empty means "the payload does not say".
#[derive(Debug, Default)]
pub(crate) struct Mapped {
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<Severity>,
    pub severity_original: Option<String>,
    pub source_id: Option<String>,
    pub rule_name: Option<String>,
    pub rule_id: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub source_ip: Option<IpAddr>,
    pub dest_ip: Option<IpAddr>,
    pub hostname: Option<String>,
    pub username: Option<String>,
    pub process: Option<String>,
    pub file_hashes: Vec<String>,
    pub url: Option<String>,
    pub tags: Vec<String>,
    /// Technique ids from structured fields (free text is scanned separately).
    pub techniques: Vec<String>,
}

/// Runs the mapper for `source`. Returns the draft and the part of the payload that holds the
/// alert (indicator extraction runs over it: e.g. one GuardDuty finding, not its whole batch).
pub(crate) fn map(source: Source, payload: &Value) -> Result<(Mapped, &Value), NormalizeError> {
    match source {
        Source::Generic => Ok((generic::map(payload), payload)),
        Source::Elastic => Ok(elastic::map(payload)),
        Source::Wazuh => Ok((wazuh::map(payload), payload)),
        Source::Suricata => Ok((suricata::map(payload), payload)),
        Source::Splunk => Ok((splunk::map(payload), payload)),
        Source::Sentinel => Ok(sentinel::map(payload)),
        Source::CrowdStrike => Ok(crowdstrike::map(payload)),
        Source::GuardDuty => guardduty::map(payload),
        Source::Zeek => Ok((zeek::map(payload), payload)),
    }
}

/// Splits a batch delivery into the payloads of its individual alerts, each of which can be
/// passed to [`crate::normalize`] with the same `source`:
///
/// * any source: a top-level JSON array → its object elements;
/// * GuardDuty: `findings` or EventBridge `detail.findings` arrays → each finding;
/// * Sentinel / Microsoft Graph: a `value` array (Graph list responses) → each alert;
/// * Elastic: a search response (`hits.hits`) → each hit (the mapper unwraps `_source`);
/// * Splunk: a `results` array (the all-results variant some custom alert actions send) → each
///   row as is (the search metadata around it is not copied into the rows).
///
/// Anything else is returned as a single payload. Non-object elements are skipped.
pub fn split_batch(source: Source, payload: &Value) -> Vec<&Value> {
    if let Value::Array(items) = payload {
        return items.iter().filter(|v| v.is_object()).collect();
    }
    let batch_field = match source {
        Source::GuardDuty => crate::fields::first(payload, &["detail.findings", "findings"]),
        Source::Sentinel => payload.get("value"),
        Source::Elastic => crate::fields::get(payload, "hits.hits"),
        Source::Splunk => payload.get("results"),
        _ => None,
    };
    match batch_field {
        Some(Value::Array(items)) => items.iter().filter(|v| v.is_object()).collect(),
        _ => vec![payload],
    }
}

/// Severity from a value on the generic word/number scales, plus its verbatim text.
pub(crate) fn generic_severity(v: Option<&Value>) -> (Option<Severity>, Option<String>) {
    let Some(v) = v else { return (None, None) };
    let original = severity::original_text(v);
    let sev = match v {
        Value::String(s) => severity::from_generic_text(s),
        Value::Number(n) => n.as_f64().and_then(severity::from_generic_number),
        _ => None,
    };
    (sev, original)
}

/// Severity from a numeric tool scale (number or numeric string), falling back to severity words
/// when the value is text (`"High"`), plus its verbatim text.
pub(crate) fn scaled_severity(
    v: Option<&Value>,
    scale: fn(f64) -> Option<Severity>,
) -> (Option<Severity>, Option<String>) {
    let Some(v) = v else { return (None, None) };
    let original = severity::original_text(v);
    let sev = severity::value_number(v)
        .and_then(scale)
        .or_else(|| v.as_str().and_then(severity::from_word));
    (sev, original)
}
