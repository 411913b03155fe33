//! Alert normalization and indicator extraction for Bulwark.
//!
//! Pure logic, no I/O: [`normalize`] turns one alert payload from a SIEM/EDR/IDS (see [`Source`])
//! into a [`NormalizedAlert`] (OCSF Detection Finding-aligned), with every indicator of compromise
//! in it ([`extract_indicators`]) and its ATT&CK technique ids checked against the shipped
//! Enterprise list ([`attack`]). [`fingerprint`] gives a deduplication key for alerts that carry
//! no id of their own. The field mappings, severity tables and extraction rules are documented in
//! `docs/normalization.md`.
//!
//! ```
//! use bulwark_normalize::{normalize, Severity, Source};
//!
//! let payload = serde_json::json!({
//!     "rule": {"level": 10, "description": "sshd: brute force", "id": "5712",
//!              "mitre": {"id": ["T1110"]}},
//!     "agent": {"name": "web-01"},
//!     "data": {"srcip": "203.0.113.7"},
//!     "id": "1652272159.1549653"
//! });
//! let alert = normalize(Source::Wazuh, &payload).unwrap();
//! assert_eq!(alert.severity, Severity::High);
//! assert_eq!(alert.mitre_techniques, vec!["T1110"]);
//! assert_eq!(alert.source_ip.unwrap().to_string(), "203.0.113.7");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod attack;
mod extract;
mod fields;
mod fingerprint;
mod model;
mod refang;
pub mod severity;
mod sources;

pub use extract::{
    ExtractLimits, InvalidIndicator, extract_indicators, is_private_ip, normalize_indicator,
};
pub use fingerprint::{fingerprint, fingerprint_hex};
pub use model::{
    Indicator, IndicatorKind, NormalizeError, NormalizedAlert, ParseEnumError, Severity, Source,
};
pub use refang::refang;
pub use sources::split_batch;

use serde_json::Value;

/// Normalizes one alert payload from `source`: maps the tool's fields, extracts indicators from
/// every string in the alert (with [`ExtractLimits::default`]) and verifies ATT&CK technique ids.
///
/// Only a payload that is not a JSON object (or a batch wrapper holding no alert object) is an
/// error; missing or malformed fields are left empty or get documented defaults (severity
/// `Medium`, title `"<source> alert"`).
pub fn normalize(source: Source, payload: &Value) -> Result<NormalizedAlert, NormalizeError> {
    normalize_with_limits(source, payload, &ExtractLimits::default())
}

/// [`normalize`] with explicit extraction limits.
pub fn normalize_with_limits(
    source: Source,
    payload: &Value,
    limits: &ExtractLimits,
) -> Result<NormalizedAlert, NormalizeError> {
    if !payload.is_object() {
        return Err(NormalizeError::NotAnObject {
            found: model::json_type_name(payload),
        });
    }
    let (mapped, alert_root) = sources::map(source, payload)?;
    let (mut indicators, mut techniques) = extract::extract_with_techniques(alert_root, limits);

    // The monitored asset's own name (or its FQDN) is context, not an indicator.
    if let Some(host) = &mapped.hostname {
        let host = host.to_ascii_lowercase();
        indicators.retain(|i| {
            !(i.kind == IndicatorKind::Domain
                && (i.value == host
                    || i.value
                        .strip_prefix(host.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))))
        });
    }

    techniques.extend(mapped.techniques);
    let (mut mitre_techniques, mut unverified_techniques): (Vec<String>, Vec<String>) = techniques
        .into_iter()
        .partition(|id| attack::lookup(id).is_some());
    fields::sort_dedup(&mut mitre_techniques);
    fields::sort_dedup(&mut unverified_techniques);

    let mut file_hashes = mapped.file_hashes;
    fields::sort_dedup(&mut file_hashes);
    let mut tags = mapped.tags;
    fields::sort_dedup(&mut tags);

    let title = mapped
        .title
        .or_else(|| mapped.rule_name.clone())
        .unwrap_or_else(|| format!("{source} alert"));

    Ok(NormalizedAlert {
        title,
        description: mapped.description,
        severity: mapped.severity.unwrap_or(Severity::Medium),
        severity_original: mapped.severity_original,
        source,
        source_id: mapped.source_id,
        rule_name: mapped.rule_name,
        rule_id: mapped.rule_id,
        event_time: mapped.event_time,
        source_ip: mapped.source_ip,
        dest_ip: mapped.dest_ip,
        hostname: mapped.hostname,
        username: mapped.username,
        process: mapped.process,
        file_hashes,
        url: mapped.url,
        tags,
        mitre_techniques,
        unverified_techniques,
        indicators,
    })
}
