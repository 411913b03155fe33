//! Checks `normalize` against the reference payloads in the workspace's shared fixtures
//! (`shared/fixtures/alerts`, outside this repository; read in place, never copied). The
//! directory's README defines the `expected` conventions. This test fails when the directory is
//! missing.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use bulwark_normalize::{IndicatorKind, NormalizedAlert, Source, attack, normalize};
use serde_json::Value;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/alerts"
);

fn fixture_paths() -> Vec<PathBuf> {
    let dir = Path::new(DIR);
    let entries = fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "shared fixtures directory {} unreadable: {e}",
            dir.display()
        )
    });
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    paths
}

/// Formats that are not one of our sources go through the generic mapper.
fn source_for(format: &str) -> Source {
    match format {
        "falco" | "thehive" | "stix" | "osquery" => Source::Generic,
        other => other
            .parse()
            .unwrap_or_else(|e| panic!("fixture format {other:?} has no source: {e}")),
    }
}

fn alternatives<'a>(expected: &'a Value, field: &str) -> Vec<&'a Value> {
    expected
        .get("acceptable_alternatives")
        .and_then(|a| a.get(field))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// `actual` (None = null) must equal `expected[field]` or one of its acceptable alternatives.
fn check_field(errors: &mut Vec<String>, expected: &Value, field: &str, actual: Option<String>) {
    let want = &expected[field];
    let actual_json = actual.clone().map_or(Value::Null, Value::String);
    if *want == actual_json || alternatives(expected, field).contains(&&actual_json) {
        return;
    }
    errors.push(format!(
        "{field}: expected {want} (or {:?}), got {actual:?}",
        alternatives(expected, field)
    ));
}

fn set_of(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn values(alert: &NormalizedAlert, kinds: &[IndicatorKind]) -> BTreeSet<String> {
    alert
        .indicators
        .iter()
        .filter(|i| kinds.contains(&i.kind))
        .map(|i| i.value.clone())
        .collect()
}

/// The concrete look-alike tokens of a `not_iocs` entry: the text before an explanatory
/// " (...)", split on ", " and " / "; prose entries (containing spaces) yield nothing.
fn not_ioc_tokens(entry: &str) -> Vec<String> {
    let head = entry.split(" (").next().unwrap_or(entry);
    head.split(", ")
        .flat_map(|p| p.split(" / "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.contains(' '))
        .flat_map(|t| {
            let mut v = vec![t.to_string()];
            if let Some(stripped) = t.strip_prefix("*.") {
                v.push(stripped.to_string());
            }
            v
        })
        .collect()
}

fn check_fixture(path: &Path) -> Vec<String> {
    let raw = fs::read_to_string(path).expect("read fixture");
    let doc: Value = serde_json::from_str(&raw).expect("fixture is JSON");
    let format = doc["format"].as_str().expect("format");
    let expected = &doc["expected"];
    let source = source_for(format);
    let alert = match normalize(source, &doc["payload"]) {
        Ok(a) => a,
        Err(e) => return vec![format!("normalize failed: {e}")],
    };
    let mut errors = Vec::new();

    // title: a null expectation means the payload has none; then our documented fallback
    // ("<source> alert") or an acceptable alternative is right.
    if expected["title"].is_null() {
        let fallback = Value::String(format!("{source} alert"));
        let got = Value::String(alert.title.clone());
        if got != fallback && !alternatives(expected, "title").contains(&&got) {
            errors.push(format!(
                "title: expected fallback or alternative, got {:?}",
                alert.title
            ));
        }
    } else {
        check_field(&mut errors, expected, "title", Some(alert.title.clone()));
    }
    if !expected["severity"].is_null() {
        check_field(
            &mut errors,
            expected,
            "severity",
            Some(alert.severity.as_str().to_string()),
        );
    }
    check_field(
        &mut errors,
        expected,
        "source_ip",
        alert.source_ip.map(|i| i.to_string()),
    );
    check_field(
        &mut errors,
        expected,
        "dest_ip",
        alert.dest_ip.map(|i| i.to_string()),
    );
    check_field(&mut errors, expected, "hostname", alert.hostname.clone());
    check_field(&mut errors, expected, "rule_name", alert.rule_name.clone());

    // ATT&CK: every expected id must be verified, except ids the shipped Enterprise list does
    // not contain (e.g. Mobile ATT&CK's T1420/T1426), which must be reported as unverified.
    let want_tech = set_of(&expected["mitre_techniques"]);
    let (want_verified, want_unverified): (BTreeSet<String>, BTreeSet<String>) = want_tech
        .into_iter()
        .partition(|id| attack::lookup(id).is_some());
    let got_verified: BTreeSet<String> = alert.mitre_techniques.iter().cloned().collect();
    if got_verified != want_verified {
        errors.push(format!(
            "mitre_techniques: expected {want_verified:?}, got {got_verified:?}"
        ));
    }
    for id in &want_unverified {
        if !alert.unverified_techniques.contains(id) {
            errors.push(format!(
                "technique {id} is not in the shipped Enterprise list and must be in \
                 unverified_techniques, got {:?}",
                alert.unverified_techniques
            ));
        }
    }

    let iocs = &expected["iocs"];
    let ip_kinds = [IndicatorKind::Ipv4, IndicatorKind::Ipv6];
    let checks: [(&str, BTreeSet<String>); 9] = [
        ("ip", values(&alert, &ip_kinds)),
        (
            "private_ips",
            alert
                .indicators
                .iter()
                .filter(|i| i.kind.is_ip() && i.private)
                .map(|i| i.value.clone())
                .collect(),
        ),
        ("domain", values(&alert, &[IndicatorKind::Domain])),
        ("url", values(&alert, &[IndicatorKind::Url])),
        ("md5", values(&alert, &[IndicatorKind::Md5])),
        ("sha1", values(&alert, &[IndicatorKind::Sha1])),
        ("sha256", values(&alert, &[IndicatorKind::Sha256])),
        ("email", values(&alert, &[IndicatorKind::Email])),
        ("cve", values(&alert, &[IndicatorKind::Cve])),
    ];
    for (name, got) in checks {
        let want = set_of(&iocs[name]);
        if want != got {
            errors.push(format!("iocs.{name}: expected {want:?}, got {got:?}"));
        }
    }
    // Nothing beyond the listed kinds may appear either (sha512 has no list: must be empty).
    let sha512 = values(&alert, &[IndicatorKind::Sha512]);
    if !sha512.is_empty() {
        errors.push(format!("unexpected sha512 indicators {sha512:?}"));
    }

    let all_values: BTreeSet<String> = alert
        .indicators
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .chain(
            alert
                .mitre_techniques
                .iter()
                .map(|t| t.to_ascii_lowercase()),
        )
        .chain(
            alert
                .unverified_techniques
                .iter()
                .map(|t| t.to_ascii_lowercase()),
        )
        .collect();
    for entry in expected["not_iocs"].as_array().into_iter().flatten() {
        for token in not_ioc_tokens(entry.as_str().unwrap_or_default()) {
            if all_values.contains(&token.to_ascii_lowercase()) {
                errors.push(format!("not_iocs: {token:?} was extracted"));
            }
        }
    }
    errors
}

#[test]
fn shared_fixtures_normalize_as_expected() {
    let paths = fixture_paths();
    let mut failures = Vec::new();
    for path in &paths {
        let errors = check_fixture(path);
        if !errors.is_empty() {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            failures.push(format!(
                "{}:\n  - {}",
                name.unwrap_or_default(),
                errors.join("\n  - ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} shared fixtures failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[test]
fn not_ioc_token_parsing() {
    assert_eq!(
        not_ioc_tokens("DenialOfService.Tcp, m3.xlarge, aws.guardduty (not domains)"),
        ["DenialOfService.Tcp", "m3.xlarge", "aws.guardduty"]
    );
    assert_eq!(
        not_ioc_tokens("*.cloudapp.net / smartcontroller.local (certificate subject)"),
        ["*.cloudapp.net", "cloudapp.net", "smartcontroller.local"]
    );
    assert!(not_ioc_tokens("trailing ';' after the URL is NOT part of the URL").is_empty());
}
