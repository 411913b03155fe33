//! Severity tables: every tool's scale mapped onto [`Severity`].
//!
//! The tables are documented in `docs/normalization.md`; keep the two in step.

use serde_json::Value;

use crate::model::Severity;

/// Maps a severity *word* (case-insensitive, surrounding whitespace ignored).
///
/// | words | severity |
/// |---|---|
/// | critical, crit, fatal, emergency, emerg, alert | critical |
/// | high, error, err, severe, major | high |
/// | medium, med, moderate, warning, warn | medium |
/// | low, minor, notice | low |
/// | info, informational, information, debug, none | info |
pub fn from_word(word: &str) -> Option<Severity> {
    let w = word.trim();
    const TABLE: &[(&str, Severity)] = &[
        ("critical", Severity::Critical),
        ("crit", Severity::Critical),
        ("fatal", Severity::Critical),
        ("emergency", Severity::Critical),
        ("emerg", Severity::Critical),
        ("alert", Severity::Critical),
        ("high", Severity::High),
        ("error", Severity::High),
        ("err", Severity::High),
        ("severe", Severity::High),
        ("major", Severity::High),
        ("medium", Severity::Medium),
        ("med", Severity::Medium),
        ("moderate", Severity::Medium),
        ("warning", Severity::Medium),
        ("warn", Severity::Medium),
        ("low", Severity::Low),
        ("minor", Severity::Low),
        ("notice", Severity::Low),
        ("info", Severity::Info),
        ("informational", Severity::Info),
        ("information", Severity::Info),
        ("debug", Severity::Info),
        ("none", Severity::Info),
    ];
    TABLE
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(w))
        .map(|&(_, sev)| sev)
}

/// The generic numeric scale. Senders use different scales, so the value's range decides:
///
/// * whole numbers 0–4: ordinal levels as in TheHive/OpenSOAR — 0 info, 1 low, 2 medium, 3 high,
///   4 critical;
/// * any other value up to 10: a 0–10 score with CVSS v3 bands — ≥ 9 critical, ≥ 7 high, ≥ 4
///   medium, > 0 low, 0 info;
/// * above 10 up to 100: a 0–100 risk score with Elastic's bands — ≥ 74 critical, ≥ 48 high,
///   ≥ 22 medium, below that low;
/// * negative, above 100 or not finite: unknown (`None`).
pub fn from_generic_number(n: f64) -> Option<Severity> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    if n.fract() == 0.0 && n <= 4.0 {
        return Some(match n as u8 {
            0 => Severity::Info,
            1 => Severity::Low,
            2 => Severity::Medium,
            3 => Severity::High,
            _ => Severity::Critical,
        });
    }
    if n <= 10.0 {
        return Some(cvss_bands(n));
    }
    if n <= 100.0 {
        return Some(elastic_risk_score(n));
    }
    None
}

/// Word or number (as text), generic scales.
pub fn from_generic_text(text: &str) -> Option<Severity> {
    from_word(text).or_else(|| parse_number(text).and_then(from_generic_number))
}

/// CVSS v3 qualitative bands over 0–10 (also used for generic 0–10 scores).
fn cvss_bands(n: f64) -> Severity {
    if n >= 9.0 {
        Severity::Critical
    } else if n >= 7.0 {
        Severity::High
    } else if n >= 4.0 {
        Severity::Medium
    } else if n > 0.0 {
        Severity::Low
    } else {
        Severity::Info
    }
}

/// Elastic Security risk score (0–100): 0–21 low, 22–47 medium, 48–73 high, 74–100 critical
/// (Elastic's defaults per severity are 21, 47, 73 and 99).
pub fn elastic_risk_score(n: f64) -> Severity {
    if n >= 74.0 {
        Severity::Critical
    } else if n >= 48.0 {
        Severity::High
    } else if n >= 22.0 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// Wazuh `rule.level` 0–15: 12+ critical, 8–11 high, 4–7 medium, 1–3 low, 0 info.
pub fn wazuh_level(level: f64) -> Option<Severity> {
    if !level.is_finite() || level < 0.0 {
        return None;
    }
    Some(if level >= 12.0 {
        Severity::Critical
    } else if level >= 8.0 {
        Severity::High
    } else if level >= 4.0 {
        Severity::Medium
    } else if level >= 1.0 {
        Severity::Low
    } else {
        Severity::Info
    })
}

/// Suricata `alert.severity` (the rule's classification priority): 1 high, 2 medium, 3 low,
/// 4 and above info (priority 4 is "not suspicious" in the default classification.config).
pub fn suricata(priority: f64) -> Option<Severity> {
    if !priority.is_finite() || priority < 1.0 || priority.fract() != 0.0 {
        return None;
    }
    Some(match priority as u64 {
        1 => Severity::High,
        2 => Severity::Medium,
        3 => Severity::Low,
        _ => Severity::Info,
    })
}

/// GuardDuty `severity` 0–10: ≥ 9 critical, 7–8.9 high, 4–6.9 medium, below 4 low.
pub fn guardduty(n: f64) -> Option<Severity> {
    if !n.is_finite() || !(0.0..=10.0).contains(&n) {
        return None;
    }
    Some(if n >= 9.0 {
        Severity::Critical
    } else if n >= 7.0 {
        Severity::High
    } else if n >= 4.0 {
        Severity::Medium
    } else {
        Severity::Low
    })
}

/// CrowdStrike numeric severity. Two scales exist: the legacy 1–5 `Severity` of
/// `DetectionSummaryEvent` (1 informational, 2 low, 3 medium, 4 high, 5 critical) and the 0–100
/// score of newer events and alerts (canonical values 10/30/50/70/90): ≥ 90 critical, ≥ 70 high,
/// ≥ 50 medium, ≥ 20 low, below that info. Whole numbers 1–5 are read on the first scale.
pub fn crowdstrike(n: f64) -> Option<Severity> {
    if !n.is_finite() || !(0.0..=100.0).contains(&n) {
        return None;
    }
    if n.fract() == 0.0 && (1.0..=5.0).contains(&n) {
        return Some(match n as u8 {
            1 => Severity::Info,
            2 => Severity::Low,
            3 => Severity::Medium,
            4 => Severity::High,
            _ => Severity::Critical,
        });
    }
    Some(if n >= 90.0 {
        Severity::Critical
    } else if n >= 70.0 {
        Severity::High
    } else if n >= 50.0 {
        Severity::Medium
    } else if n >= 20.0 {
        Severity::Low
    } else {
        Severity::Info
    })
}

/// A number from a JSON number or a numeric string.
pub(crate) fn value_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    // Reject "inf", "nan", "1e400" and other non-decimal spellings f64::from_str accepts.
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// The tool's own value, verbatim as text (strings trimmed, numbers in JSON notation).
pub(crate) fn original_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| crate::fields::clip(t, crate::fields::MAX_SHORT).to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Severity::*;

    #[test]
    fn words() {
        for (w, s) in [
            ("CRITICAL", Critical),
            (" Emergency ", Critical),
            ("alert", Critical),
            ("Error", High),
            ("major", High),
            ("Warning", Medium),
            ("moderate", Medium),
            ("notice", Low),
            ("Informational", Info),
            ("debug", Info),
            ("none", Info),
        ] {
            assert_eq!(from_word(w), Some(s), "{w}");
        }
        assert_eq!(from_word("bogus"), None);
        assert_eq!(from_word(""), None);
    }

    #[test]
    fn generic_numbers() {
        assert_eq!(from_generic_number(0.0), Some(Info));
        assert_eq!(from_generic_number(1.0), Some(Low));
        assert_eq!(from_generic_number(3.0), Some(High));
        assert_eq!(from_generic_number(4.0), Some(Critical));
        assert_eq!(from_generic_number(3.5), Some(Low));
        assert_eq!(from_generic_number(5.0), Some(Medium));
        assert_eq!(from_generic_number(7.5), Some(High));
        assert_eq!(from_generic_number(10.0), Some(Critical));
        assert_eq!(from_generic_number(21.0), Some(Low));
        assert_eq!(from_generic_number(47.0), Some(Medium));
        assert_eq!(from_generic_number(73.0), Some(High));
        assert_eq!(from_generic_number(99.0), Some(Critical));
        assert_eq!(from_generic_number(101.0), None);
        assert_eq!(from_generic_number(-1.0), None);
        assert_eq!(from_generic_number(f64::NAN), None);
        assert_eq!(from_generic_text("7"), Some(High));
        assert_eq!(from_generic_text("nan"), None);
        assert_eq!(from_generic_text("inf"), None);
    }

    #[test]
    fn tool_scales() {
        assert_eq!(wazuh_level(0.0), Some(Info));
        assert_eq!(wazuh_level(3.0), Some(Low));
        assert_eq!(wazuh_level(7.0), Some(Medium));
        assert_eq!(wazuh_level(10.0), Some(High));
        assert_eq!(wazuh_level(12.0), Some(Critical));
        assert_eq!(wazuh_level(15.0), Some(Critical));
        assert_eq!(suricata(1.0), Some(High));
        assert_eq!(suricata(2.0), Some(Medium));
        assert_eq!(suricata(3.0), Some(Low));
        assert_eq!(suricata(4.0), Some(Info));
        assert_eq!(suricata(0.0), None);
        assert_eq!(guardduty(8.9), Some(High));
        assert_eq!(guardduty(9.0), Some(Critical));
        assert_eq!(guardduty(3.9), Some(Low));
        assert_eq!(guardduty(11.0), None);
        assert_eq!(crowdstrike(2.0), Some(Low));
        assert_eq!(crowdstrike(5.0), Some(Critical));
        assert_eq!(crowdstrike(90.0), Some(Critical));
        assert_eq!(crowdstrike(70.0), Some(High));
        assert_eq!(crowdstrike(50.0), Some(Medium));
        assert_eq!(crowdstrike(30.0), Some(Low));
        assert_eq!(crowdstrike(10.0), Some(Info));
        assert_eq!(elastic_risk_score(21.0), Low);
        assert_eq!(elastic_risk_score(47.0), Medium);
        assert_eq!(elastic_risk_score(73.0), High);
        assert_eq!(elastic_risk_score(99.0), Critical);
    }
}
