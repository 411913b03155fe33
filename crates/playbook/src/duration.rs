//! Durations written as `"500ms"`, `"30s"`, `"5m"`, `"4h"`, `"1d"`.

use std::time::Duration;

/// Parses `<digits><unit>` with unit one of `ms`, `s`, `m`, `h`, `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "invalid duration `{text}`: expected a whole number followed by a unit (ms, s, m, h, d), e.g. \"30s\""
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration `{text}`: number too large"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => {
            return Err(format!(
                "invalid duration `{text}`: missing unit (ms, s, m, h, d), e.g. \"{n}s\""
            ));
        }
        other => {
            return Err(format!(
                "invalid duration `{text}`: unknown unit `{other}` (use ms, s, m, h or d)"
            ));
        }
    };
    let ms = n
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("invalid duration `{text}`: too large"))?;
    Ok(Duration::from_millis(ms))
}

/// Parses and checks `min <= d <= max`.
pub fn parse_duration_bounded(
    text: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < min {
        return Err(format!(
            "duration `{text}` is below the minimum of {}",
            format_duration(min)
        ));
    }
    if d > max {
        return Err(format!(
            "duration `{text}` exceeds the maximum of {}",
            format_duration(max)
        ));
    }
    Ok(d)
}

/// Formats a duration in the largest unit that divides it exactly.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_precisely() {
        assert!(
            parse_duration("30")
                .expect_err("must fail")
                .contains("missing unit")
        );
        assert!(
            parse_duration("5x")
                .expect_err("must fail")
                .contains("unknown unit `x`")
        );
        assert!(
            parse_duration("1.5s")
                .expect_err("must fail")
                .contains("unknown unit `.5s`")
        );
        assert!(
            parse_duration("s")
                .expect_err("must fail")
                .contains("expected a whole number")
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(
            parse_duration("99999999999999999999999d")
                .expect_err("must fail")
                .contains("too large")
        );
        assert!(
            parse_duration("999999999999999999d")
                .expect_err("must fail")
                .contains("too large")
        );
    }

    #[test]
    fn bounds_and_format() {
        let r = parse_duration_bounded("2h", Duration::ZERO, Duration::from_secs(3600));
        assert_eq!(
            r.expect_err("must fail"),
            "duration `2h` exceeds the maximum of 1h"
        );
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
    }
}
