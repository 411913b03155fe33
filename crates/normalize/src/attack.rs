//! The shipped MITRE ATT&CK Enterprise technique list (v18.1) and technique-id scanning.
//!
//! The list is embedded at compile time and parsed once, on first use. Revoked and deprecated
//! techniques are kept: [`lookup`] returns them with their flags set, and [`crate::normalize`] counts
//! them as *verified* (they are real ATT&CK ids that a tool may still emit) while the flags let a
//! caller warn about them. Ids that are technique-shaped but absent from the list (typos, Mobile or
//! ICS ids, made-up numbers) are never accepted silently: they land in
//! [`crate::NormalizedAlert::unverified_techniques`].
//!
//! Source: MITRE ATT&CK®, <https://attack.mitre.org>, © The MITRE Corporation, used under the
//! ATT&CK Terms of Use; see `data/README.md`.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The ATT&CK release the shipped list comes from.
pub const ATTACK_VERSION: &str = "18.1";

const CSV: &str = include_str!("../data/attack-enterprise-v18.1.csv");

/// One ATT&CK Enterprise technique or sub-technique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technique {
    /// `T1234` or `T1234.001`.
    pub id: &'static str,
    pub name: &'static str,
    /// Tactic short names (`credential-access`, ...), in the list's order.
    pub tactics: Vec<&'static str>,
    pub revoked: bool,
    pub deprecated: bool,
    pub is_subtechnique: bool,
}

struct Catalog {
    by_id: HashMap<&'static str, Technique>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let mut by_id = HashMap::with_capacity(1024);
    for line in CSV.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&'static str> = line.split(',').collect();
        // The shipped file is checked by a unit test; a malformed row is skipped, never a panic.
        let [id, name, is_sub, tactics, _platforms, revoked, deprecated] = cols[..] else {
            continue;
        };
        if !is_technique_id(id) {
            continue;
        }
        by_id.insert(
            id,
            Technique {
                id,
                name,
                tactics: tactics.split(';').filter(|t| !t.is_empty()).collect(),
                revoked: revoked == "true",
                deprecated: deprecated == "true",
                is_subtechnique: is_sub == "true",
            },
        );
    }
    Catalog { by_id }
});

/// Looks a technique up by id (`T1059`, `T1059.001`). Case and surrounding whitespace are ignored.
/// Revoked and deprecated techniques are returned too, with their flags set.
pub fn lookup(id: &str) -> Option<&'static Technique> {
    let id = id.trim();
    if id.bytes().any(|b| b.is_ascii_lowercase()) {
        let upper = id.to_ascii_uppercase();
        CATALOG.by_id.get(upper.as_str())
    } else {
        CATALOG.by_id.get(id)
    }
}

/// Number of techniques and sub-techniques in the shipped list (revoked and deprecated included).
pub fn count() -> usize {
    CATALOG.by_id.len()
}

/// Whether `s` is exactly technique-shaped: `T` + 4 digits, optionally `.` + 3 digits.
pub fn is_technique_id(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        5 => b[0] == b'T' && b[1..].iter().all(u8::is_ascii_digit),
        9 => {
            b[0] == b'T'
                && b[1..5].iter().all(u8::is_ascii_digit)
                && b[5] == b'.'
                && b[6..].iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// Normalizes a value from a structured technique field (`"t1059.001 "`, `"T1059"`): trims,
/// upper-cases, and returns it when technique-shaped.
pub(crate) fn structured_id(raw: &str) -> Option<String> {
    let t = raw.trim().to_ascii_uppercase();
    is_technique_id(&t).then_some(t)
}

/// Finds word-bounded technique ids (`T1234`, `T1234.001`) in free text and appends them to `out`.
/// Tactic (`TA0001`), software (`S0154`), CAPEC and CWE ids never match. Only an upper-case `T`
/// counts in free text (ATT&CK ids are written that way; `t1234` in prose is rarely an id).
pub(crate) fn scan_text(text: &str, out: &mut Vec<String>) {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr_t(&b[i..]) {
        let start = i + off;
        i = start + 1;
        // Left boundary: not preceded by a word character.
        if start > 0 && is_word(b[start - 1]) {
            continue;
        }
        let digits = count_digits(&b[start + 1..]);
        if digits != 4 {
            continue;
        }
        let mut end = start + 5;
        // Optional ".NNN" sub-technique part: exactly three digits.
        if end < b.len() && b[end] == b'.' {
            let sub = count_digits(&b[end + 1..]);
            if sub == 3 {
                end += 4;
            } else if sub > 0 {
                // "T1234.5" / "T1234.0001" is a version-like token, not an id.
                continue;
            }
        }
        if end < b.len() && is_word(b[end]) {
            continue;
        }
        // Safe: the matched range is ASCII.
        out.push(text[start..end].to_string());
        i = end;
    }
}

fn memchr_t(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'T')
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_parses_completely() {
        let data_rows = CSV.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
        assert_eq!(count(), data_rows, "every CSV row must parse");
        assert_eq!(count(), 835);
    }

    #[test]
    fn lookup_known_revoked_and_unknown() {
        let t = lookup("T1059.001").expect("PowerShell");
        assert_eq!(t.name, "PowerShell");
        assert!(t.is_subtechnique);
        assert!(t.tactics.contains(&"execution"));
        assert!(!t.revoked);
        let r = lookup("t1002").expect("revoked technique is still known");
        assert!(r.revoked);
        assert!(lookup("T9999").is_none());
        assert!(lookup("TA0001").is_none());
        assert!(lookup(" T1110 ").is_some());
    }

    #[test]
    fn scan_finds_bounded_ids_only() {
        let mut out = Vec::new();
        scan_text(
            "T1021.002 Remote Services + T1570; TA0008, S0154, CAPEC-163, xT1234, T12345, \
             T1059.0011, T1110.1, (T1003)",
            &mut out,
        );
        assert_eq!(out, vec!["T1021.002", "T1570", "T1003"]);
    }

    #[test]
    fn structured_ids_are_normalized() {
        assert_eq!(structured_id(" t1190 ").as_deref(), Some("T1190"));
        assert_eq!(structured_id("Brute Force"), None);
    }
}
