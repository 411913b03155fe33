//! Zeek `notice.log` and `intel.log` entries in JSON (flat dotted keys like `id.orig_h`, or
//! nested objects).

use serde_json::Value;

use super::Mapped;
use crate::fields::{get, ip, long_text, text, texts, time};

pub(crate) fn map(p: &Value) -> Mapped {
    let source_ip = ip(p, &["src", "id.orig_h"]);
    let dest_ip = ip(p, &["dst", "id.resp_h"]);
    let event_time = time(p, &["ts", "@timestamp"]);
    if let Some(indicator) = text(p, &["seen.indicator"]) {
        // intel.log: an indicator from a feed was seen.
        let indicator_type = text(p, &["seen.indicator_type"]);
        let where_ = text(p, &["seen.where"]);
        let sources = texts(p, &["sources"]);
        let description = match (&indicator_type, &where_) {
            (Some(t), Some(w)) => Some(format!("{t} {indicator} seen in {w}")),
            (Some(t), None) => Some(format!("{t} {indicator} seen")),
            _ => None,
        };
        let mut tags = texts(p, &["matched"]);
        tags.extend(sources.iter().map(|s| format!("source:{s}")));
        return Mapped {
            title: Some(format!("Intel match: {indicator}")),
            description,
            rule_name: indicator_type,
            source_ip,
            dest_ip,
            event_time,
            tags,
            ..Mapped::default()
        };
    }
    // notice.log
    let note = text(p, &["note"]);
    let msg = long_text(p, &["msg"]);
    let description = match (msg, get(p, "sub").and_then(crate::fields::text_of)) {
        (Some(msg), Some(sub)) => Some(format!("{msg} ({sub})")),
        (msg, sub) => msg.or(sub),
    };
    Mapped {
        title: note.clone().or_else(|| text(p, &["msg"])),
        description,
        rule_name: note,
        source_ip,
        dest_ip,
        event_time,
        tags: texts(p, &["actions"]),
        ..Mapped::default()
    }
}
