//! Elastic Security (Kibana) detection alerts: 8.x `kibana.alert.*` documents with nested,
//! flat-dotted or mixed keys, legacy 7.x `signal.*` documents, and search hits wrapping either
//! (`{"_id": .., "_source": {..}}`).

use serde_json::Value;

use super::Mapped;
use crate::fields::{first, hashes, ip, long_text, technique_ids, text, texts, time};
use crate::severity;

pub(crate) fn map(payload: &Value) -> (Mapped, &Value) {
    let p = match payload.get("_source") {
        Some(src @ Value::Object(_)) => src,
        _ => payload,
    };
    let (severity, severity_original) = severity_of(p);
    let rule_name = text(
        p,
        &["kibana.alert.rule.name", "signal.rule.name", "rule.name"],
    );
    let mut m = Mapped {
        title: rule_name.clone().or_else(|| text(p, &["message"])),
        description: long_text(
            p,
            &[
                "kibana.alert.reason",
                "kibana.alert.rule.description",
                "signal.reason",
                "signal.rule.description",
                "rule.description",
            ],
        ),
        severity,
        severity_original,
        source_id: text(p, &["kibana.alert.uuid", "signal.id"]).or_else(|| text(payload, &["_id"])),
        rule_name,
        rule_id: text(
            p,
            &[
                "kibana.alert.rule.rule_id",
                "kibana.alert.rule.uuid",
                "signal.rule.rule_id",
                "signal.rule.id",
                "rule.id",
            ],
        ),
        event_time: time(
            p,
            &[
                "kibana.alert.original_time",
                "signal.original_time",
                "@timestamp",
            ],
        ),
        source_ip: ip(p, &["source.ip", "client.ip"]),
        dest_ip: ip(p, &["destination.ip", "server.ip"]),
        hostname: text(p, &["host.name", "host.hostname"]),
        username: text(p, &["user.name"]),
        process: text(p, &["process.name", "process.executable"]),
        url: text(p, &["url.full", "url.original"]),
        tags: texts(p, &["kibana.alert.rule.tags", "signal.rule.tags"]),
        ..Mapped::default()
    };
    hashes(
        p,
        &[
            "file.hash.md5",
            "file.hash.sha1",
            "file.hash.sha256",
            "file.hash.sha512",
            "process.hash.md5",
            "process.hash.sha1",
            "process.hash.sha256",
            "process.hash.sha512",
        ],
        &mut m.file_hashes,
    );
    technique_ids(
        p,
        &[
            "kibana.alert.rule.threat.technique.id",
            "kibana.alert.rule.threat.technique.subtechnique.id",
            "signal.rule.threat.technique.id",
            "signal.rule.threat.technique.subtechnique.id",
            "threat.technique.id",
            "threat.technique.subtechnique.id",
        ],
        &mut m.techniques,
    );
    (m, p)
}

/// `kibana.alert.severity` / `signal.rule.severity` (low/medium/high/critical); the 0–100
/// risk score when the word is missing or unknown.
fn severity_of(p: &Value) -> (Option<crate::model::Severity>, Option<String>) {
    let word = first(p, &["kibana.alert.severity", "signal.rule.severity"]);
    if let Some(w) = word {
        let original = severity::original_text(w);
        if let Some(sev) = w.as_str().and_then(severity::from_word) {
            return (Some(sev), original);
        }
    }
    let score = first(p, &["kibana.alert.risk_score", "signal.rule.risk_score"]);
    if let Some(s) = score
        && let Some(n) = severity::value_number(s).filter(|n| (0.0..=100.0).contains(n))
    {
        return (
            Some(severity::elastic_risk_score(n)),
            severity::original_text(s),
        );
    }
    (None, word.or(score).and_then(severity::original_text))
}
