//! Microsoft Sentinel and Defender alerts: the Sentinel `SecurityAlert` table (PascalCase,
//! `Entities` as a JSON string), Sentinel REST/Logic-App alerts (`properties` wrapper), Microsoft
//! Graph security alerts v2 (`evidence` with `@odata.type`) and Defender for Endpoint API alerts.

use serde_json::Value;

use super::{Mapped, generic_severity};
use crate::fields::{
    first, get, hashes, ip_of, long_text, technique_ids, text, text_of, texts, time,
};

/// Longest `Entities`/`ExtendedProperties` string that is parsed as embedded JSON.
const MAX_EMBEDDED_JSON: usize = 256 * 1024;

pub(crate) fn map(payload: &Value) -> (Mapped, &Value) {
    let p = match payload.get("properties") {
        Some(props @ Value::Object(_)) => props,
        _ => payload,
    };
    let (severity, severity_original) =
        generic_severity(first(p, &["severity", "Severity", "AlertSeverity"]));
    let title = text(
        p,
        &[
            "title",
            "alertDisplayName",
            "AlertDisplayName",
            "AlertName",
            "DisplayName",
            "displayName",
        ],
    );
    let mut m = Mapped {
        title: title.clone(),
        description: long_text(p, &["description", "Description"]),
        severity,
        severity_original,
        source_id: text(
            p,
            &[
                "systemAlertId",
                "SystemAlertId",
                "id",
                "alertId",
                "providerAlertId",
                "AlertId",
            ],
        )
        .or_else(|| text(payload, &["name"])),
        rule_name: text(
            p,
            &["AlertName", "alertDisplayName", "title", "DisplayName"],
        )
        .or(title),
        rule_id: text(
            p,
            &["detectorId", "alertType", "AlertType", "detectionSource"],
        ),
        event_time: time(
            p,
            &[
                "firstActivityDateTime",
                "startTimeUtc",
                "StartTime",
                "createdDateTime",
                "timeGenerated",
                "TimeGenerated",
                "alertCreationTime",
            ],
        ),
        hostname: text(
            p,
            &["computerDnsName", "CompromisedEntity", "compromisedEntity"],
        ),
        tags: texts(p, &["tags", "systemTags"]),
        ..Mapped::default()
    };
    technique_ids(
        p,
        &[
            "mitreTechniques",
            "techniques",
            "Techniques",
            "mitreTechniqueIds",
        ],
        &mut m.techniques,
    );

    // Entities / evidence, possibly a JSON string (Log Analytics `SecurityAlert.Entities`).
    let embedded = first(p, &["Entities", "entities"])
        .and_then(Value::as_str)
        .filter(|s| s.len() <= MAX_EMBEDDED_JSON)
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    let lists = [
        first(p, &["evidence", "Evidence"]),
        first(p, &["entities", "Entities"]).filter(|v| v.is_array()),
        embedded.as_ref(),
    ];
    for list in lists.into_iter().flatten() {
        if let Value::Array(items) = list {
            for e in items.iter().take(256) {
                apply_entity(e, &mut m);
            }
        }
    }
    crate::fields::sort_dedup(&mut m.file_hashes);
    (m, payload)
}

fn apply_entity(e: &Value, m: &mut Mapped) {
    let kind = text(e, &["@odata.type", "Type", "type", "entityType", "kind"])
        .unwrap_or_default()
        .to_ascii_lowercase();
    if m.source_ip.is_none() {
        m.source_ip = first(
            e,
            &["ipAddress", "Address", "address", "properties.address"],
        )
        .and_then(ip_of);
    }
    if m.hostname.is_none() && (kind.contains("host") || kind.contains("device") || kind.is_empty())
    {
        m.hostname = text(
            e,
            &[
                "deviceDnsName",
                "hostName",
                "HostName",
                "properties.hostName",
            ],
        );
    }
    if m.username.is_none() {
        m.username = text(
            e,
            &[
                "accountName",
                "AccountName",
                "userAccount.accountName",
                "properties.accountName",
            ],
        )
        .or_else(|| {
            kind.contains("account")
                .then(|| get(e, "Name").and_then(text_of))
                .flatten()
        });
    }
    if m.process.is_none() && kind.contains("process") {
        m.process = text(e, &["imageFile.fileName", "ImageFile.Name", "fileName"]);
    }
    if m.url.is_none() && kind.contains("url") {
        m.url = text(e, &["url", "Url"]);
    }
    hashes(
        e,
        &[
            "sha1",
            "sha256",
            "md5",
            "fileDetails.sha1",
            "fileDetails.sha256",
            "imageFile.sha1",
            "imageFile.sha256",
        ],
        &mut m.file_hashes,
    );
    if kind.contains("filehash") {
        hashes(e, &["Value", "value"], &mut m.file_hashes);
    }
}
