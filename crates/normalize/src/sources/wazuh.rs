//! Wazuh `alerts.json` objects (also OSSEC-style alerts with `srcuser`/`dstuser` at top level).

use serde_json::Value;

use super::{Mapped, scaled_severity};
use crate::fields::{get, hashes, ip, long_text, technique_ids, text, texts, time};
use crate::severity;

pub(crate) fn map(p: &Value) -> Mapped {
    let (severity, severity_original) =
        scaled_severity(get(p, "rule.level"), severity::wazuh_level);
    let description = text(p, &["rule.description"]);
    let mut m = Mapped {
        title: description.clone(),
        description: long_text(p, &["full_log"]),
        severity,
        severity_original,
        source_id: text(p, &["id", "_id"]),
        rule_name: description,
        rule_id: text(p, &["rule.id"]),
        event_time: time(p, &["timestamp", "@timestamp"]),
        source_ip: ip(
            p,
            &[
                "data.srcip",
                "data.src_ip",
                "srcip",
                "data.win.eventdata.ipAddress",
            ],
        ),
        dest_ip: ip(p, &["data.dstip", "data.dst_ip", "dstip"]),
        hostname: text(p, &["agent.name", "hostname", "predecoder.hostname"]),
        username: text(
            p,
            &[
                "data.srcuser",
                "data.dstuser",
                "srcuser",
                "dstuser",
                "data.win.eventdata.targetUserName",
                "data.win.eventdata.subjectUserName",
                "syscheck.uname_after",
            ],
        ),
        process: text(
            p,
            &[
                "data.win.eventdata.image",
                "data.audit.exe",
                "predecoder.program_name",
                "program_name",
            ],
        ),
        url: text(p, &["data.url"]),
        tags: texts(p, &["rule.groups"]),
        ..Mapped::default()
    };
    hashes(
        p,
        &[
            "syscheck.md5_after",
            "syscheck.sha1_after",
            "syscheck.sha256_after",
            "data.win.eventdata.hashes",
        ],
        &mut m.file_hashes,
    );
    technique_ids(p, &["rule.mitre.id"], &mut m.techniques);
    m
}
