//! CrowdStrike Falcon: streaming API / event stream detection summaries (flat, or wrapped in
//! `{"metadata": .., "event": ..}`) and Detects/Alerts API objects (`behaviors`, `device`).

use serde_json::Value;

use super::{Mapped, scaled_severity};
use crate::fields::{first, hashes, ip, long_text, technique_ids, text, texts, time};
use crate::severity;

pub(crate) fn map(payload: &Value) -> (Mapped, &Value) {
    let e = match payload.get("event") {
        Some(ev @ Value::Object(_)) if payload.get("metadata").is_some() => ev,
        _ => payload,
    };
    let (severity, severity_original) = severity_of(e);
    let name = text(
        e,
        &[
            "Name",
            "DetectName",
            "display_name",
            "name",
            "behaviors.display_name",
            "behaviors.scenario",
        ],
    );
    let mut m = Mapped {
        title: name.clone(),
        description: long_text(
            e,
            &[
                "Description",
                "DetectDescription",
                "description",
                "behaviors.description",
            ],
        ),
        severity,
        severity_original,
        source_id: text(
            e,
            &[
                "CompositeId",
                "composite_id",
                "DetectId",
                "detection_id",
                "id",
            ],
        ),
        rule_name: name,
        rule_id: text(e, &["PatternId", "pattern_id", "behaviors.pattern_id"]),
        event_time: time(
            e,
            &[
                "UTCTimestamp",
                "timestamp",
                "created_timestamp",
                "ProcessStartTime",
                "first_behavior",
            ],
        )
        .or_else(|| time(payload, &["metadata.eventCreationTime"])),
        // `LocalIP` is the endpoint's own address; the remote party of a network detection is
        // the source of an identity detection or the remote end of a network access.
        source_ip: ip(e, &["OriginSourceIpAddress", "SourceEndpointIpAddress"]),
        dest_ip: ip(e, &["NetworkAccesses.RemoteAddress"]),
        hostname: text(
            e,
            &[
                "ComputerName",
                "Hostname",
                "hostname",
                "device.hostname",
                "HostnameField",
            ],
        ),
        username: text(
            e,
            &[
                "UserName",
                "user_name",
                "behaviors.user_name",
                "SourceAccountName",
            ],
        ),
        process: text(
            e,
            &[
                "FileName",
                "filename",
                "behaviors.filename",
                "ImageFileName",
            ],
        ),
        url: None,
        tags: texts(e, &["Tactic", "Technique", "Objective", "behaviors.tactic"]),
        ..Mapped::default()
    };
    // Technique names ("User Execution") stay tags; ids go to techniques below.
    m.tags.retain(|t| !crate::attack::is_technique_id(t));
    hashes(
        e,
        &[
            "SHA256String",
            "MD5String",
            "SHA1String",
            "sha256",
            "md5",
            "behaviors.sha256",
            "behaviors.md5",
        ],
        &mut m.file_hashes,
    );
    technique_ids(
        e,
        &[
            "TechniqueId",
            "technique_id",
            "Technique",
            "behaviors.technique_id",
            "MitreAttack.TechniqueID",
            "MitreAttack.technique_id",
        ],
        &mut m.techniques,
    );
    (m, payload)
}

/// `SeverityName` (or its API spellings) first; the numeric `Severity` only when no name is
/// given (see [`severity::crowdstrike`] for its two scales).
fn severity_of(e: &Value) -> (Option<crate::model::Severity>, Option<String>) {
    if let Some(v) = first(
        e,
        &[
            "SeverityName",
            "severity_name",
            "max_severity_displayname",
            "SeverityDisplayName",
        ],
    ) && let Some(sev) = v.as_str().and_then(severity::from_word)
    {
        return (Some(sev), severity::original_text(v));
    }
    scaled_severity(
        first(e, &["Severity", "severity", "max_severity"]),
        severity::crowdstrike,
    )
}
