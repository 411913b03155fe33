//! Splunk webhook alert action: `search_name`, `sid`, `results_link`, `owner`, `app` and the
//! first result row in `result`.

use serde_json::Value;

use super::{Mapped, generic_severity};
use crate::fields::{first, hashes, ip, long_text, technique_ids, text, time};

pub(crate) fn map(p: &Value) -> Mapped {
    // Splunk itself has no alert severity; a search may output one (ES notables: `urgency`).
    let (severity, severity_original) = generic_severity(first(
        p,
        &[
            "result.severity",
            "result.urgency",
            "result.priority",
            "severity",
        ],
    ));
    let search_name = text(p, &["search_name"]);
    let mut m = Mapped {
        title: search_name.clone(),
        description: long_text(p, &["result.description", "result.message", "result._raw"]),
        severity,
        severity_original,
        source_id: text(p, &["sid"]),
        rule_name: search_name,
        rule_id: None,
        event_time: time(p, &["result._time", "result.time"]),
        source_ip: ip(
            p,
            &[
                "result.src_ip",
                "result.src",
                "result.srcip",
                "result.source_ip",
                "result.clientip",
            ],
        ),
        dest_ip: ip(
            p,
            &[
                "result.dest_ip",
                "result.dest",
                "result.dst",
                "result.dstip",
                "result.dst_ip",
            ],
        ),
        hostname: text(
            p,
            &[
                "result.host",
                "result.hostname",
                "result.dest_host",
                "result.dvc",
            ],
        ),
        username: text(
            p,
            &[
                "result.user",
                "result.username",
                "result.src_user",
                "result.USER",
            ],
        ),
        process: text(p, &["result.process_name", "result.process"]),
        url: text(p, &["result.url", "result.URL", "result.uri"]),
        tags: Vec::new(),
        ..Mapped::default()
    };
    if let Some(app) = text(p, &["app"]) {
        m.tags.push(format!("app:{app}"));
    }
    hashes(
        p,
        &[
            "result.file_hash",
            "result.md5",
            "result.sha1",
            "result.sha256",
            "result.hash",
        ],
        &mut m.file_hashes,
    );
    technique_ids(
        p,
        &[
            "result.mitre_technique_id",
            "result.annotations.mitre_attack",
            "result.mitre_attack",
        ],
        &mut m.techniques,
    );
    m
}
