//! Suricata EVE JSON (`event_type: alert`).

use serde_json::Value;

use super::{Mapped, scaled_severity};
use crate::fields::{get, hashes, ip, technique_ids, text, texts, time};
use crate::severity;

pub(crate) fn map(p: &Value) -> Mapped {
    let (severity, severity_original) =
        scaled_severity(get(p, "alert.severity"), severity::suricata);
    let signature = text(p, &["alert.signature"]);
    let signature_id = text(p, &["alert.signature_id"]);
    let mut m = Mapped {
        title: signature.clone(),
        description: text(p, &["alert.category"]),
        severity,
        severity_original,
        source_id: source_id(p, signature_id.as_deref()),
        rule_name: signature,
        rule_id: signature_id,
        event_time: time(p, &["timestamp", "@timestamp"]),
        source_ip: ip(p, &["src_ip"]),
        dest_ip: ip(p, &["dest_ip"]),
        // EVE has no monitored-asset name: `host` is the sensor, `http.hostname` the server.
        hostname: None,
        username: None,
        process: None,
        url: None,
        tags: texts(p, &["alert.category"]),
        ..Mapped::default()
    };
    hashes(
        p,
        &[
            "fileinfo.md5",
            "fileinfo.sha1",
            "fileinfo.sha256",
            "files.md5",
            "files.sha256",
        ],
        &mut m.file_hashes,
    );
    technique_ids(
        p,
        &[
            "alert.metadata.mitre_technique_id",
            "alert.metadata.mitre_attack",
            "alert.metadata.mitre_technique",
        ],
        &mut m.techniques,
    );
    m
}

/// `flow_id` identifies the flow, and one flow can raise several different signatures, so on its
/// own it would merge distinct alerts during deduplication. The id is `flow_id:gid:signature_id`
/// (the same signature firing again on the same flow is the same alert); just `flow_id` when the
/// signature id is missing.
fn source_id(p: &Value, signature_id: Option<&str>) -> Option<String> {
    let flow = text(p, &["flow_id"])?;
    Some(match signature_id {
        Some(sid) => {
            let gid = text(p, &["alert.gid"]).unwrap_or_else(|| "1".to_string());
            format!("{flow}:{gid}:{sid}")
        }
        None => flow,
    })
}
