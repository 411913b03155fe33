//! No input may panic or error beyond `NotAnObject`: weird JSON, deep nesting, huge strings,
//! odd types in every mapped field. Also the public API's small contracts.

use bulwark_normalize::{
    ExtractLimits, NormalizeError, Severity, Source, extract_indicators, fingerprint,
    fingerprint_hex, normalize, split_batch,
};
use serde_json::{Value, json};

fn weird_payloads() -> Vec<Value> {
    let huge = "A".repeat(3 * 1024 * 1024);
    let huge_tokens = "8.8.8.8 evil.com ".repeat(100_000);
    vec![
        json!({}),
        json!({"title": null, "severity": null, "rule": null, "id": null}),
        json!({"title": 42, "severity": [1, 2], "rule": {"level": "high"}, "src_ip": 7}),
        json!({"severity": -1, "priority": 1e300, "level": "NaN"}),
        json!({"severity": "\u{0}\u{202e}\u{fffd}", "title": "\u{1F4A5}\u{0301}"}),
        json!({"title": huge.clone(), "description": huge}),
        json!({"msg": huge_tokens}),
        json!({"kibana.alert.rule.threat": "not an array", "kibana": "flat string"}),
        json!({"detail": [], "findings": {"not": "an array"}}),
        json!({"event": "x", "metadata": 1}),
        json!({"Entities": "[{\"Type\":\"ip\",\"Address\":\"1.2.3.4\"}", "evidence": [1, null, "x"]}),
        json!({"Entities": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]"}),
        json!({"ts": "1e999", "timestamp": "9999-99-99T99:99:99Z", "@timestamp": 18446744073709551615u64}),
        json!({"flow_id": -1, "alert": {"severity": 0, "signature_id": {"a": 1}}}),
        json!({"rule": {"level": 99999, "mitre": {"id": [null, 5, "T1059", "t9999.999"]}}}),
        json!({"m": "[.][.][.](.)hxxphxxps[:][://][at][@]"}),
        json!({"m": "::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::"}),
        json!({"m": "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1"}),
        json!({"m": "a.".repeat(10_000)}),
        json!({"m": "http://".repeat(10_000)}),
        json!({"m": "@".repeat(10_000)}),
        json!({"m": "f".repeat(100_000)}),
        json!({"hits": {"hits": [{"_source": "nope"}]}, "_source": 5}),
        json!({"properties": [], "value": "x"}),
    ]
}

#[test]
fn weird_json_never_panics() {
    for payload in weird_payloads() {
        for source in Source::ALL {
            let alert = normalize(source, &payload)
                .unwrap_or_else(|e| panic!("{source}: unexpected error {e}"));
            assert!(!alert.title.is_empty());
            let _ = fingerprint(&alert);
            let _ = split_batch(source, &payload);
            serde_json::to_string(&alert).expect("serializes");
        }
    }
}

fn nested(depth: usize) -> Value {
    let mut v = json!({"ip": "8.8.8.8", "title": "deep"});
    for i in 0..depth {
        // Built by hand: `json!` would re-serialize `v` recursively at every level.
        v = if i % 2 == 0 {
            Value::Array(vec![v])
        } else {
            let mut m = serde_json::Map::new();
            m.insert("k".into(), v);
            m.insert("t".into(), Value::String("T1059".into()));
            Value::Object(m)
        };
    }
    v
}

#[test]
fn deep_nesting_is_bounded() {
    for depth in [200, 2_000] {
        let mut outer = serde_json::Map::new();
        outer.insert("wrapper".into(), nested(depth));
        let v = Value::Object(outer);
        for source in Source::ALL {
            normalize(source, &v).expect("object payload");
        }
        // Indicators beyond max_depth are not visited.
        assert!(extract_indicators(&v, &ExtractLimits::default()).is_empty());
        let deep_limits = ExtractLimits {
            max_depth: 4_000,
            ..ExtractLimits::default()
        };
        std::thread::Builder::new()
            .stack_size(64 * 1024 * 1024)
            .spawn(move || assert_eq!(extract_indicators(&v, &deep_limits).len(), 1))
            .expect("thread")
            .join()
            .expect("no panic");
    }
}

#[test]
fn parsed_from_text_too() {
    // Non-UTF-8-looking escapes and lone surrogates are rejected by the JSON parser, not by us;
    // what parses must normalize.
    for text in [
        r#"{"m":"\u00ff\u00fe\u0000 10.0.0.1 \ud83d\ude00"}"#,
        r#"{"m":"caf\u00e9.com h\u00e9llo.example.com"}"#,
        r#"{"title":"\u202eevil.com","n":-0.0,"big":123456789012345678901234567890}"#,
    ] {
        let v: Value = serde_json::from_str(text).expect("valid JSON");
        normalize(Source::Generic, &v).expect("normalizes");
    }
    assert!(serde_json::from_str::<Value>(r#"{"m":"\ud800"}"#).is_err());
}

#[test]
fn non_objects_are_rejected_with_the_type() {
    for (v, found) in [
        (json!(null), "null"),
        (json!([1]), "an array"),
        (json!("s"), "a string"),
        (json!(1), "a number"),
        (json!(true), "a boolean"),
    ] {
        let err = normalize(Source::Generic, &v).expect_err("not an object");
        assert_eq!(err, NormalizeError::NotAnObject { found });
        assert!(err.to_string().contains(found));
    }
    let empty = json!({"detail": {"findings": []}});
    let err = normalize(Source::GuardDuty, &empty).expect_err("empty batch");
    assert!(err.to_string().contains("findings"), "{err}");
    assert!(split_batch(Source::GuardDuty, &empty).is_empty());
}

#[test]
fn enums_round_trip() {
    for s in Source::ALL {
        assert_eq!(s.as_str().parse::<Source>(), Ok(s));
        assert_eq!(s.to_string(), s.as_str());
        assert_eq!(serde_json::to_value(s).expect("ser"), json!(s.as_str()));
    }
    assert!("CrowdStrike".parse::<Source>().is_err());
    for s in Severity::ALL {
        assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        assert_eq!(
            serde_json::from_value::<Severity>(json!(s.as_str())).expect("de"),
            s
        );
    }
    assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
}

#[test]
fn fingerprint_is_stable_and_separating() {
    let base = json!({"title": "x", "rule_name": "r", "hostname": "h1", "m": "8.8.8.8"});
    let a = normalize(Source::Generic, &base).expect("a");
    // Same detection re-sent with another id, time and severity: same fingerprint.
    let resent = json!({"title": "x", "rule_name": "r", "hostname": "H1", "m": "8.8.8.8",
                        "id": "other", "severity": "critical", "time": "2024-01-01T00:00:00Z"});
    assert_eq!(
        fingerprint(&a),
        fingerprint(&normalize(Source::Generic, &resent).expect("b"))
    );
    // Different host, indicator, rule or source: different fingerprint.
    for other in [
        json!({"title": "x", "rule_name": "r", "hostname": "h2", "m": "8.8.8.8"}),
        json!({"title": "x", "rule_name": "r", "hostname": "h1", "m": "8.8.4.4"}),
        json!({"title": "x", "rule_name": "r2", "hostname": "h1", "m": "8.8.8.8"}),
        json!({"title": "x", "rule_name": "r", "m": "8.8.8.8"}),
    ] {
        let b = normalize(Source::Generic, &other).expect("other");
        assert_ne!(fingerprint(&a), fingerprint(&b), "{other}");
    }
    let mut z = a.clone();
    z.source = Source::Zeek;
    assert_ne!(fingerprint(&a), fingerprint(&z));
    // Length prefixing: moving a character between fields changes the digest.
    let mut p = a.clone();
    p.rule_name = Some("ab".into());
    p.hostname = Some("c".into());
    let mut q = a.clone();
    q.rule_name = Some("a".into());
    q.hostname = Some("bc".into());
    assert_ne!(fingerprint(&p), fingerprint(&q));
    assert_eq!(fingerprint_hex(&a).len(), 64);
}

#[test]
fn normalized_alert_round_trips_through_serde() {
    let a = normalize(
        Source::Generic,
        &json!({"title": "t", "src_ip": "10.0.0.1", "time": 1700000000, "m": "T1059 evil.com"}),
    )
    .expect("alert");
    let text = serde_json::to_string(&a).expect("ser");
    let back: bulwark_normalize::NormalizedAlert = serde_json::from_str(&text).expect("de");
    assert_eq!(back, a);
    assert!(text.contains("\"source\":\"generic\""));
    assert_eq!(a.mitre_techniques, ["T1059"]);
}

#[test]
fn unverified_and_revoked_techniques() {
    let a = normalize(Source::Generic, &json!({"title": "t", "mitre_techniques": ["T1059", "T9999", "t1002"], "note": "TA0001 S0154 T1420"}))
        .expect("alert");
    // T1002 is revoked: still a real ATT&CK id, verified (the flag is on `attack::lookup`).
    assert_eq!(a.mitre_techniques, ["T1002", "T1059"]);
    assert_eq!(a.unverified_techniques, ["T1420", "T9999"]);
    assert!(
        bulwark_normalize::attack::lookup("T1002")
            .expect("known")
            .revoked
    );
}

#[test]
fn generic_severity_words_and_numbers() {
    for (value, want, original) in [
        (json!("Warning"), Severity::Medium, Some("Warning")),
        (json!("emergency"), Severity::Critical, Some("emergency")),
        (json!(3), Severity::High, Some("3")),
        (json!(8.5), Severity::High, Some("8.5")),
        (json!(85), Severity::Critical, Some("85")),
        (json!("bogus"), Severity::Medium, Some("bogus")),
    ] {
        let a =
            normalize(Source::Generic, &json!({"title": "t", "severity": value})).expect("alert");
        assert_eq!(a.severity, want, "{value}");
        assert_eq!(a.severity_original.as_deref(), original);
    }
    let a = normalize(Source::Generic, &json!({"title": "t"})).expect("alert");
    assert_eq!((a.severity, a.severity_original), (Severity::Medium, None));
}
