//! The normalized alert schema and its small enums.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The tool an alert payload comes from. Selects the field mapping used by [`crate::normalize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Generic,
    Elastic,
    Wazuh,
    Suricata,
    Splunk,
    Sentinel,
    CrowdStrike,
    GuardDuty,
    Zeek,
}

impl Source {
    /// Every source, in declaration order.
    pub const ALL: [Source; 9] = [
        Source::Generic,
        Source::Elastic,
        Source::Wazuh,
        Source::Suricata,
        Source::Splunk,
        Source::Sentinel,
        Source::CrowdStrike,
        Source::GuardDuty,
        Source::Zeek,
    ];

    /// The lowercase wire name (`"crowdstrike"`, `"guardduty"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Generic => "generic",
            Source::Elastic => "elastic",
            Source::Wazuh => "wazuh",
            Source::Suricata => "suricata",
            Source::Splunk => "splunk",
            Source::Sentinel => "sentinel",
            Source::CrowdStrike => "crowdstrike",
            Source::GuardDuty => "guardduty",
            Source::Zeek => "zeek",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing an unknown [`Source`], [`Severity`] or [`IndicatorKind`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of: {expected})")]
pub struct ParseEnumError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for Source {
    type Err = ParseEnumError;

    /// Exact lowercase wire names only; surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Source::ALL
            .into_iter()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                what: "source",
                value: s.to_string(),
                expected: "generic, elastic, wazuh, suricata, splunk, sentinel, crowdstrike, \
                           guardduty, zeek",
            })
    }
}

/// Normalized severity. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = ParseEnumError;

    /// Exact lowercase wire names only (`info`, `low`, `medium`, `high`, `critical`). To interpret a
    /// tool's own wording (`"Informational"`, `"warning"`, `"7"`) use
    /// [`crate::severity::from_generic_text`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                what: "severity",
                value: s.to_string(),
                expected: "info, low, medium, high, critical",
            })
    }
}

/// What an [`Indicator`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorKind {
    Ipv4,
    Ipv6,
    Domain,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Cve,
}

impl IndicatorKind {
    pub const ALL: [IndicatorKind; 10] = [
        IndicatorKind::Ipv4,
        IndicatorKind::Ipv6,
        IndicatorKind::Domain,
        IndicatorKind::Url,
        IndicatorKind::Email,
        IndicatorKind::Md5,
        IndicatorKind::Sha1,
        IndicatorKind::Sha256,
        IndicatorKind::Sha512,
        IndicatorKind::Cve,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Ipv4 => "ipv4",
            IndicatorKind::Ipv6 => "ipv6",
            IndicatorKind::Domain => "domain",
            IndicatorKind::Url => "url",
            IndicatorKind::Email => "email",
            IndicatorKind::Md5 => "md5",
            IndicatorKind::Sha1 => "sha1",
            IndicatorKind::Sha256 => "sha256",
            IndicatorKind::Sha512 => "sha512",
            IndicatorKind::Cve => "cve",
        }
    }

    /// Whether this kind is a file hash.
    pub const fn is_hash(self) -> bool {
        matches!(
            self,
            IndicatorKind::Md5
                | IndicatorKind::Sha1
                | IndicatorKind::Sha256
                | IndicatorKind::Sha512
        )
    }

    /// Whether this kind is an IP address.
    pub const fn is_ip(self) -> bool {
        matches!(self, IndicatorKind::Ipv4 | IndicatorKind::Ipv6)
    }
}

impl fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IndicatorKind {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        IndicatorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                what: "indicator kind",
                value: s.to_string(),
                expected: "ipv4, ipv6, domain, url, email, md5, sha1, sha256, sha512, cve",
            })
    }
}

/// An indicator of compromise found in an alert payload.
///
/// Values are canonical: IPs in `std`'s display form, domains/e-mails/hashes lower-cased, URLs
/// refanged with a lower-cased scheme and host, CVE ids upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Indicator {
    pub kind: IndicatorKind,
    pub value: String,
    /// Only meaningful for IPs: not publicly routable (see `docs/normalization.md`). Always `false`
    /// for other kinds.
    pub private: bool,
}

/// A normalized alert, aligned with the OCSF Detection Finding class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedAlert {
    /// Never empty: falls back to the rule name, then to `"<source> alert"`.
    pub title: String,
    pub description: Option<String>,
    pub severity: Severity,
    /// The tool's own severity value, verbatim as text (`"12"`, `"High"`, `"3"`); `None` when the
    /// payload has none.
    pub severity_original: Option<String>,
    pub source: Source,
    /// The tool's own alert/finding/event id, when it has one (used for deduplication).
    pub source_id: Option<String>,
    pub rule_name: Option<String>,
    pub rule_id: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub source_ip: Option<IpAddr>,
    pub dest_ip: Option<IpAddr>,
    /// The monitored asset (agent, endpoint, instance), not a remote party.
    pub hostname: Option<String>,
    pub username: Option<String>,
    pub process: Option<String>,
    /// File hashes named by the tool's structured hash fields (lower-case hex, deduplicated).
    pub file_hashes: Vec<String>,
    /// The tool's primary URL field for the activity (not console links).
    pub url: Option<String>,
    pub tags: Vec<String>,
    /// Technique ids found in the list shipped with this crate (deduplicated, sorted).
    pub mitre_techniques: Vec<String>,
    /// Technique-shaped ids that are not in the shipped list (deduplicated, sorted).
    pub unverified_techniques: Vec<String>,
    /// Every indicator extracted from the payload (deduplicated, sorted by kind then value).
    pub indicators: Vec<Indicator>,
}

/// Why a payload could not be normalized at all. Missing or malformed individual fields are never
/// errors: they are left empty or fall back to documented defaults.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NormalizeError {
    /// The payload (or the wrapper field that must hold the alert) is not a JSON object.
    #[error("alert payload must be a JSON object, got {found}")]
    NotAnObject { found: &'static str },
    /// A batch wrapper field that must hold the alert is present but holds no object, e.g.
    /// GuardDuty `detail.findings` is an empty array.
    #[error("field `{field}` holds no alert object")]
    EmptyBatch { field: &'static str },
}

pub(crate) fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
