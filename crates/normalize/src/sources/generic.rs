//! Generic / OpenSOAR-style payloads, and formats without a dedicated mapper (Falco, TheHive,
//! osquery, STIX 2 bundles).

use serde_json::Value;

use super::{Mapped, generic_severity};
use crate::fields::{self, first, get, hashes, ip, long_text, technique_ids, text, texts, time};

const TITLE: &[&str] = &[
    "title",
    "alert_name",
    "alertname",
    "name",
    "rule_name",
    "rule.name",
    "rule",
    "signature",
    "event_name",
    "summary",
    "message",
    "msg",
    "output",
];
const RULE_NAME: &[&str] = &["rule_name", "rule.name", "rule", "rule_title", "name"];
const SEVERITY: &[&str] = &[
    "severity",
    "severity_label",
    "severity_name",
    "priority",
    "level",
    "urgency",
    "risk_score",
];

pub(crate) fn map(p: &Value) -> Mapped {
    if let Some(m) = stix_bundle(p) {
        return m;
    }
    let (severity, severity_original) = generic_severity(first(p, SEVERITY));
    let mut m = Mapped {
        title: text(p, TITLE),
        description: long_text(p, &["description", "desc", "details"]),
        severity,
        severity_original,
        source_id: text(
            p,
            &[
                "source_id",
                "sourceRef",
                "alert_id",
                "alertId",
                "id",
                "uuid",
                "event_id",
                "_id",
            ],
        ),
        rule_name: text(p, RULE_NAME),
        rule_id: text(p, &["rule_id", "rule.id", "signature_id", "ruleId"]),
        event_time: time(
            p,
            &[
                "event_time",
                "timestamp",
                "@timestamp",
                "time",
                "date",
                "created_at",
                "createdAt",
                "unixTime",
                "ts",
            ],
        ),
        source_ip: ip(
            p,
            &[
                "source_ip",
                "src_ip",
                "srcip",
                "src",
                "source.ip",
                "sourceIp",
                "sourceIPAddress",
                "client_ip",
            ],
        ),
        dest_ip: ip(
            p,
            &[
                "dest_ip",
                "dst_ip",
                "dstip",
                "dst",
                "destination_ip",
                "destination.ip",
                "destinationIp",
                "dest",
            ],
        ),
        hostname: text(
            p,
            &[
                "hostname",
                "host.name",
                "host.hostname",
                "host",
                "hostIdentifier",
                "computer_name",
                "computer",
                "device_name",
                "agent.name",
            ],
        ),
        username: text(
            p,
            &[
                "username",
                "user_name",
                "user.name",
                "user",
                "src_user",
                "output_fields.user.name",
            ],
        ),
        process: text(
            p,
            &[
                "process",
                "process_name",
                "process.name",
                "output_fields.proc.name",
                "proc.name",
            ],
        ),
        url: text(p, &["url", "url.full", "request_url"]),
        tags: texts(p, &["tags", "labels"]),
        ..Mapped::default()
    };
    // `host`/`user`/`rule` may be objects in some senders; `text` only takes scalars, so an
    // object there simply yields nothing and the next candidate is tried.
    hashes(
        p,
        &[
            "md5",
            "sha1",
            "sha256",
            "sha512",
            "file_hash",
            "hash",
            "hashes",
            "file.hash.md5",
            "file.hash.sha1",
            "file.hash.sha256",
        ],
        &mut m.file_hashes,
    );
    technique_ids(
        p,
        &[
            "mitre_techniques",
            "techniques",
            "technique_id",
            "mitre.technique_id",
            "mitre.id",
            "threat.technique.id",
        ],
        &mut m.techniques,
    );
    if let Some(Value::String(s)) = get(p, "tags") {
        // "a, b, c" as one string.
        m.tags = s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| fields::clip(t, fields::MAX_SHORT).to_string())
            .collect();
    }
    m
}

/// A STIX 2.x bundle (e.g. a threat-intel report exported from MISP): the first `report`
/// object names the alert.
fn stix_bundle(p: &Value) -> Option<Mapped> {
    if p.get("type")?.as_str()? != "bundle" {
        return None;
    }
    let objects = p.get("objects")?.as_array()?;
    let report = objects
        .iter()
        .find(|o| o.get("type").and_then(Value::as_str) == Some("report"));
    let mut m = Mapped {
        source_id: text(p, &["id"]),
        ..Mapped::default()
    };
    if let Some(r) = report {
        m.title = text(r, &["name"]);
        m.description = long_text(r, &["description"]);
        m.event_time = time(r, &["published", "created"]);
        m.tags = texts(r, &["labels"]);
    }
    Some(m)
}
