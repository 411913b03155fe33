//! Field access shared by every source mapper.
//!
//! [`get`] looks a dotted path up across nested objects, flat dotted keys (`"kibana.alert.rule.name"`)
//! and any mixture of the two (`{"kibana.alert": {"rule": {"name": ..}}}`), which is how Elastic,
//! Zeek and Falco documents arrive depending on the shipper. All other helpers build on it.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};

/// Longest text kept for short fields (title, names, ids, hosts).
pub(crate) const MAX_SHORT: usize = 1024;
/// Longest text kept for descriptions.
pub(crate) const MAX_LONG: usize = 64 * 1024;
/// Array elements inspected per level when a path crosses an array.
const MAX_FANOUT: usize = 256;

/// Looks `path` (dot-separated) up in `v`. At each object level the longest flat key that matches
/// a prefix of the remaining path wins, then shorter prefixes are tried (so `{"a.b": {"c": 1}}`,
/// `{"a": {"b.c": 1}}` and `{"a": {"b": {"c": 1}}}` all answer `a.b.c`). When the path crosses an
/// array, its elements are tried in order and the first match is returned. `null` counts as
/// absent, so a flat `null` does not hide a nested value.
pub(crate) fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => get_in_object(map, path),
        // Only objects inside the array are searched (no recursion into nested arrays), so the
        // lookup depth is bounded by the path, whatever the payload's nesting.
        Value::Array(items) => items
            .iter()
            .take(MAX_FANOUT)
            .find_map(|item| item.as_object().and_then(|m| get_in_object(m, path))),
        _ => None,
    }
}

fn get_in_object<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(found) = map.get(path).filter(|v| !v.is_null()) {
        return Some(found);
    }
    // Try each split point, longest head first. Paths are short constants, so this is cheap.
    for (dot, _) in path.rmatch_indices('.') {
        let (head, tail) = (&path[..dot], &path[dot + 1..]);
        if let Some(child) = map.get(head)
            && let Some(found) = get(child, tail)
        {
            return Some(found);
        }
    }
    None
}

/// Like [`get`] but collects every match, fanning out over arrays at every level (e.g.
/// `kibana.alert.rule.threat.technique.id` over `threat[].technique[]`).
pub(crate) fn get_all<'a>(v: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(map) => {
            if let Some(found) = map.get(path) {
                push_leaf(found, out);
            }
            for (dot, _) in path.rmatch_indices('.') {
                if let Some(child) = map.get(&path[..dot]) {
                    get_all(child, &path[dot + 1..], out);
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter().take(MAX_FANOUT).filter(|i| i.is_object()) {
                get_all(item, path, out);
            }
        }
        _ => {}
    }
}

fn push_leaf<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Null => {}
        Value::Array(items) => out.extend(items.iter().take(MAX_FANOUT).filter(|i| !i.is_null())),
        other => out.push(other),
    }
}

/// Text of a scalar: trimmed non-empty strings, numbers in JSON notation; for an array, its first
/// textual element. Clipped to [`MAX_SHORT`] bytes.
pub(crate) fn text_of(v: &Value) -> Option<String> {
    text_of_max(v, MAX_SHORT)
}

fn text_of_max(v: &Value, max: usize) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| clip(t, max).to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items.iter().take(MAX_FANOUT).find_map(|i| match i {
            Value::Array(_) => None,
            other => text_of_max(other, max),
        }),
        _ => None,
    }
}

/// First non-empty text among `paths`.
pub(crate) fn text(v: &Value, paths: &[&str]) -> Option<String> {
    paths.iter().find_map(|p| get(v, p).and_then(text_of))
}

/// First non-empty text among `paths`, clipped to [`MAX_LONG`] (descriptions).
pub(crate) fn long_text(v: &Value, paths: &[&str]) -> Option<String> {
    paths
        .iter()
        .find_map(|p| get(v, p).and_then(|x| text_of_max(x, MAX_LONG)))
}

/// The first value present (non-null) among `paths`.
pub(crate) fn first<'a>(v: &'a Value, paths: &[&str]) -> Option<&'a Value> {
    paths.iter().find_map(|p| get(v, p))
}

/// First valid IP address among `paths`.
pub(crate) fn ip(v: &Value, paths: &[&str]) -> Option<IpAddr> {
    paths.iter().find_map(|p| get(v, p).and_then(ip_of))
}

/// An IP address from a string (or the first element of an array of strings). Accepts a bare
/// address, `[v6]`, `v4:port` and `[v6]:port`; anything else is `None`.
pub(crate) fn ip_of(v: &Value) -> Option<IpAddr> {
    match v {
        Value::String(s) => parse_ip(s),
        Value::Array(items) => items
            .iter()
            .take(MAX_FANOUT)
            .find_map(|i| i.as_str().and_then(parse_ip)),
        _ => None,
    }
}

pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse().ok();
    }
    s.parse::<std::net::SocketAddr>().ok().map(|sa| sa.ip())
}

/// Every text value found under `paths` (arrays flattened), e.g. tags.
pub(crate) fn texts(v: &Value, paths: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for p in paths {
        get_all(v, p, &mut found);
    }
    found.into_iter().filter_map(text_of).collect()
}

/// Technique ids from structured fields under `paths`, normalized; values that are not
/// technique-shaped are ignored here (free-text scanning sees them anyway).
pub(crate) fn technique_ids(v: &Value, paths: &[&str], out: &mut Vec<String>) {
    let mut found = Vec::new();
    for p in paths {
        get_all(v, p, &mut found);
    }
    for item in found {
        if let Value::String(s) = item {
            // Some tools send "T1059, T1105" or a JSON-ish list in one string.
            for part in s.split(|c: char| c == ',' || c == ';' || c.is_whitespace()) {
                let part = part.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '.');
                if let Some(id) = crate::attack::structured_id(part) {
                    out.push(id);
                }
            }
        }
    }
}

/// Lower-case hex hashes from structured hash fields under `paths`.
pub(crate) fn hashes(v: &Value, paths: &[&str], out: &mut Vec<String>) {
    let mut found = Vec::new();
    for p in paths {
        get_all(v, p, &mut found);
    }
    for item in found {
        if let Value::String(s) = item
            && let Some(h) = crate::extract::normalize_hash(s.trim())
        {
            out.push(h);
        }
    }
}

/// First parseable timestamp among `paths`.
pub(crate) fn time(v: &Value, paths: &[&str]) -> Option<DateTime<Utc>> {
    paths.iter().find_map(|p| get(v, p).and_then(parse_time))
}

/// Parses the timestamp spellings seen in alert payloads: RFC 3339, ISO 8601 with `+0000`
/// offsets, `YYYY-MM-DD hh:mm:ss[.f][Z]` (UTC assumed without an offset), and Unix epochs as
/// numbers or numeric strings (seconds, milliseconds, microseconds or nanoseconds, told apart by
/// magnitude). Returns `None` for anything else, and for epoch 0 (a common "unset" placeholder).
pub(crate) fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => epoch_int(i),
            None => epoch(n.as_f64()?),
        },
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s.len() > 64 {
                return None;
            }
            if s.bytes().all(|b| b.is_ascii_digit()) {
                return epoch_int(s.parse().ok()?);
            }
            if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return epoch(s.parse().ok()?);
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
            for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
                if let Ok(t) = DateTime::parse_from_str(s, fmt) {
                    return Some(t.with_timezone(&Utc));
                }
            }
            let naive = s.strip_suffix('Z').unwrap_or(s);
            for fmt in [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y %b %d %H:%M:%S",
            ] {
                if let Ok(t) = NaiveDateTime::parse_from_str(naive, fmt) {
                    return Some(Utc.from_utc_datetime(&t));
                }
            }
            None
        }
        _ => None,
    }
}

/// Integer epochs, exactly: seconds below 1e11, then milliseconds, microseconds, nanoseconds.
fn epoch_int(n: i64) -> Option<DateTime<Utc>> {
    if n <= 0 {
        return None;
    }
    let (secs, nanos) = if n < 100_000_000_000 {
        (n, 0)
    } else if n < 100_000_000_000_000 {
        (n / 1_000, (n % 1_000) * 1_000_000)
    } else if n < 100_000_000_000_000_000 {
        (n / 1_000_000, (n % 1_000_000) * 1_000)
    } else {
        (n / 1_000_000_000, n % 1_000_000_000)
    };
    DateTime::from_timestamp(secs, u32::try_from(nanos).ok()?)
}

/// Fractional epochs (Zeek's `ts`), to microsecond-ish precision.
fn epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    // Seconds until year 5138 are < 1e11; larger values are ms, µs or ns.
    let secs = if n < 1e11 {
        n
    } else if n < 1e14 {
        n / 1e3
    } else if n < 1e17 {
        n / 1e6
    } else {
        n / 1e9
    };
    if secs >= 1e11 {
        return None;
    }
    let whole = secs.trunc();
    // f64 carries about 16 significant digits: keep microseconds, drop float noise below them.
    let micros = ((secs - whole) * 1e6).round().clamp(0.0, 999_999.0) as u32;
    let nanos = micros * 1_000;
    DateTime::from_timestamp(whole as i64, nanos)
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Sorts and deduplicates.
pub(crate) fn sort_dedup(v: &mut Vec<String>) {
    v.sort_unstable();
    v.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_lookup_nested_flat_and_mixed() {
        let nested = json!({"kibana": {"alert": {"rule": {"name": "A"}}}});
        let flat = json!({"kibana.alert.rule.name": "B"});
        let mixed = json!({"kibana.alert": {"rule.name": "C"}});
        let mixed2 = json!({"kibana": {"alert.rule": {"name": "D"}}});
        assert_eq!(
            text(&nested, &["kibana.alert.rule.name"]).as_deref(),
            Some("A")
        );
        assert_eq!(
            text(&flat, &["kibana.alert.rule.name"]).as_deref(),
            Some("B")
        );
        assert_eq!(
            text(&mixed, &["kibana.alert.rule.name"]).as_deref(),
            Some("C")
        );
        assert_eq!(
            text(&mixed2, &["kibana.alert.rule.name"]).as_deref(),
            Some("D")
        );
        let null_flat = json!({"a.b": null, "a": {"b": "E"}});
        assert_eq!(text(&null_flat, &["a.b"]).as_deref(), Some("E"));
        assert_eq!(text(&json!("str"), &["a"]), None);
    }

    #[test]
    fn get_all_fans_out_over_arrays() {
        let v = json!({"kibana.alert.rule.threat": [
            {"technique": [{"id": "T1059", "subtechnique": [{"id": "T1059.001"}]}]},
            {"technique": [{"id": "T1105"}]}
        ]});
        let mut ids = Vec::new();
        technique_ids(
            &v,
            &[
                "kibana.alert.rule.threat.technique.id",
                "kibana.alert.rule.threat.technique.subtechnique.id",
            ],
            &mut ids,
        );
        assert_eq!(ids, vec!["T1059", "T1105", "T1059.001"]);
    }

    #[test]
    fn times() {
        let t = |v: Value| parse_time(&v).map(|d| d.to_rfc3339());
        assert_eq!(
            t(json!("2022-05-11T12:29:19.905+0000")).as_deref(),
            Some("2022-05-11T12:29:19.905+00:00")
        );
        assert_eq!(
            t(json!("2021-09-18 20:38:52Z")).as_deref(),
            Some("2021-09-18T20:38:52+00:00")
        );
        assert_eq!(
            t(json!(1320279566.452687))
                .map(|s| s[..19].to_string())
                .as_deref(),
            Some("2011-11-03T00:19:26")
        );
        assert_eq!(
            t(json!(1686845212400u64)).as_deref(),
            Some("2023-06-15T16:06:52.400+00:00")
        );
        assert_eq!(
            t(json!("1581517935")).as_deref(),
            Some("2020-02-12T14:32:15+00:00")
        );
        assert_eq!(
            t(json!("2017 Jan 05 14:11:21")).as_deref(),
            Some("2017-01-05T14:11:21+00:00")
        );
        assert_eq!(t(json!(0)), None);
        assert_eq!(t(json!("yesterday")), None);
        assert_eq!(t(json!(1e300)), None);
    }

    #[test]
    fn ips() {
        assert_eq!(
            parse_ip(" 10.0.0.1 ").map(|i| i.to_string()).as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            parse_ip("[::1]").map(|i| i.to_string()).as_deref(),
            Some("::1")
        );
        assert_eq!(
            parse_ip("1.2.3.4:80").map(|i| i.to_string()).as_deref(),
            Some("1.2.3.4")
        );
        assert_eq!(parse_ip("GeneratedFindingIp"), None);
        assert_eq!(parse_ip(""), None);
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("abc", 10), "abc");
    }
}
