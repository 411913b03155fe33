//! Real published sample payloads (see `tests/fixtures/PROVENANCE.md`) and what a SOC analyst
//! expects `normalize` to make of them.

use std::collections::BTreeSet;

use bulwark_normalize::{IndicatorKind, NormalizedAlert, Severity, Source, normalize, split_batch};
use serde_json::Value;

fn load(rel: &str) -> Value {
    let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn run(source: Source, rel: &str) -> NormalizedAlert {
    normalize(source, &load(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn of_kind(a: &NormalizedAlert, kind: IndicatorKind) -> Vec<&str> {
    a.indicators
        .iter()
        .filter(|i| i.kind == kind)
        .map(|i| i.value.as_str())
        .collect()
}

fn ip(s: &str) -> Option<std::net::IpAddr> {
    Some(s.parse().expect("test ip"))
}

#[test]
fn every_source_has_a_fixture() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    for source in Source::ALL {
        let sub = format!("{dir}/{}", source.as_str());
        let n = std::fs::read_dir(&sub)
            .map(|d| d.filter(|e| e.is_ok()).count())
            .unwrap_or(0);
        assert!(n > 0, "no fixture for {source} in {sub}");
    }
    let provenance =
        std::fs::read_to_string(format!("{dir}/PROVENANCE.md")).expect("PROVENANCE.md");
    for entry in std::fs::read_dir(&dir).expect("fixtures dir").flatten() {
        if entry.path().is_dir() {
            for file in std::fs::read_dir(entry.path())
                .expect("source dir")
                .flatten()
            {
                let name = file.file_name().to_string_lossy().into_owned();
                assert!(
                    provenance.contains(&name),
                    "{name} is not listed in PROVENANCE.md"
                );
            }
        }
    }
}

#[test]
fn wazuh_sudo_to_root() {
    let a = run(Source::Wazuh, "wazuh/pci_dss_sudo_to_root_5402.json");
    assert_eq!(a.title, "Successful sudo to ROOT executed");
    assert_eq!(a.severity, Severity::Low); // level 3
    assert_eq!(a.severity_original.as_deref(), Some("3"));
    assert_eq!(a.rule_id.as_deref(), Some("5402"));
    assert_eq!(a.hostname.as_deref(), Some("CentOS"));
    assert_eq!(a.username.as_deref(), Some("agent"));
    assert_eq!(a.process.as_deref(), Some("sudo"));
    assert_eq!(
        a.event_time.map(|t| t.to_rfc3339()).as_deref(),
        Some("2017-01-05T14:11:21+00:00")
    );
    assert_eq!(of_kind(&a, IndicatorKind::Ipv4), ["192.168.56.4"]);
    assert!(
        a.indicators.iter().all(|i| i.kind != IndicatorKind::Domain),
        "cardholder_data.txt"
    );
    assert_eq!(a.tags, ["sudo", "syslog"]);
}

#[test]
fn suricata_gpl_attack_response_with_metadata() {
    let a = run(
        Source::Suricata,
        "suricata/eve_alert_gpl_attack_response_metadata.json",
    );
    assert_eq!(a.title, "GPL ATTACK_RESPONSE id check returned root");
    assert_eq!(a.severity, Severity::Medium); // alert.severity 2
    assert_eq!(a.rule_id.as_deref(), Some("2100498"));
    assert_eq!(a.source_id.as_deref(), Some("1805461738637437:1:2100498"));
    assert_eq!(a.source_ip, ip("52.222.141.99"));
    assert_eq!(a.dest_ip, ip("10.31.64.240"));
    assert_eq!(a.hostname, None);
    // metadata.mitre_attack is lower-case "t1190" in this rule: structured, so normalized.
    assert_eq!(a.mitre_techniques, ["T1190"]);
    assert_eq!(of_kind(&a, IndicatorKind::Domain), ["testmynids.org"]);
    // "curl/7.58.0", "HTTP/1.1", "exploit.rules", CVSS numbers are not indicators.
    assert_eq!(a.indicators.len(), 3, "{:?}", a.indicators);
    let private: Vec<_> = a
        .indicators
        .iter()
        .filter(|i| i.private)
        .map(|i| &i.value)
        .collect();
    assert_eq!(private, ["10.31.64.240"]);
}

#[test]
fn splunk_webhook_without_severity() {
    let a = run(Source::Splunk, "splunk/webhook_search_one_result.json");
    assert_eq!(a.title, "sudo");
    assert_eq!(a.rule_name.as_deref(), Some("sudo"));
    assert_eq!(a.severity, Severity::Medium);
    assert_eq!(a.severity_original, None);
    assert_eq!(
        a.source_id.as_deref(),
        Some("rt_scheduler__admin__search__sudo_at_1483557185_2.2")
    );
    assert_eq!(a.hostname.as_deref(), Some("myserver"));
    assert_eq!(a.process.as_deref(), Some("sudo"));
    assert_eq!(a.event_time.map(|t| t.timestamp()), Some(1_483_557_272));
    // The results link is a URL literally present; "auth.log" and "pam_unix(sudo:session)" are not.
    assert_eq!(of_kind(&a, IndicatorKind::Domain), ["example.com"]);
    assert_eq!(of_kind(&a, IndicatorKind::Url).len(), 1);
    assert_eq!(a.indicators.len(), 2);
}

#[test]
fn sentinel_graph_alert_v2() {
    let a = run(
        Source::Sentinel,
        "sentinel/graph_alert_v2_hidden_file_execution.json",
    );
    assert_eq!(a.title, "Suspicious execution of hidden file");
    assert_eq!(a.severity, Severity::Low);
    assert_eq!(
        a.source_id.as_deref(),
        Some("da637578995287051192_756343937")
    );
    assert_eq!(a.hostname.as_deref(), Some("tempDns"));
    assert_eq!(a.username.as_deref(), Some("SYSTEM"));
    assert_eq!(a.process.as_deref(), Some("MsSense.exe"));
    assert_eq!(a.mitre_techniques, ["T1564.001"]);
    assert_eq!(
        a.file_hashes,
        [
            "5f1e8acedc065031aad553b710838eb366cfee9a",
            "8963a19fb992ad9a76576c5638fd68292cffb9aaac29eb8285f9abf6196a7dec"
        ]
    );
    // mdeDeviceId is 40 hex characters (SHA-1 length) but an id: not a hash.
    assert_eq!(
        of_kind(&a, IndicatorKind::Sha1),
        ["5f1e8acedc065031aad553b710838eb366cfee9a"]
    );
    assert_eq!(of_kind(&a, IndicatorKind::Ipv4), ["1.1.1.1"]);
    // "Microsoft.Compute" in the VM resource id and "MsSense.exe" are not domains.
    assert_eq!(
        of_kind(&a, IndicatorKind::Domain),
        ["security.microsoft.com"]
    );
}

#[test]
fn sentinel_arm_alert_with_properties_wrapper() {
    let a = run(
        Source::Sentinel,
        "sentinel/arm_security_alert_properties.json",
    );
    assert_eq!(a.title, "myAlert");
    assert_eq!(a.severity, Severity::Low);
    assert_eq!(
        a.source_id.as_deref(),
        Some("abcdef-6fde-4ab7-a093-d09f7b75c58c")
    );
    assert!(a.event_time.is_some());
    assert!(a.indicators.is_empty(), "{:?}", a.indicators);
}

#[test]
fn crowdstrike_detection_summary_event_stream() {
    let a = run(
        Source::CrowdStrike,
        "crowdstrike/detection_summary_event_stream.json",
    );
    assert_eq!(a.title, "NGAV");
    assert_eq!(a.severity, Severity::Low);
    assert_eq!(a.severity_original.as_deref(), Some("Low"));
    assert_eq!(a.source_id.as_deref(), Some("detect::id::test"));
    assert_eq!(a.hostname.as_deref(), Some("ELASTICHOST"));
    assert_eq!(a.username.as_deref(), Some("ELASTICUSER"));
    assert_eq!(a.process.as_deref(), Some("TESTFILE.exe"));
    assert_eq!(a.dest_ip, ip("67.43.156.1"));
    assert_eq!(a.file_hashes.len(), 3);
    assert_eq!(
        of_kind(&a, IndicatorKind::Md5),
        ["49f30e09200e7b59edc5ef32fbd0442c"]
    );
    assert_eq!(
        of_kind(&a, IndicatorKind::Domain),
        ["falcon.crowdstrike.com"]
    );
    assert!(a.mitre_techniques.is_empty()); // "PUP" is a technique name, not an id
    assert!(a.tags.contains(&"PUP".to_string()));
}

#[test]
fn guardduty_kubernetes_tor_caller() {
    let a = run(Source::GuardDuty, "guardduty/kubernetes_tor_ip_caller.json");
    assert_eq!(
        a.rule_name.as_deref(),
        Some("Discovery:Kubernetes/TorIPCaller")
    );
    assert_eq!(a.severity, Severity::Medium); // 5
    assert_eq!(a.source_ip, ip("175.16.199.1"));
    assert_eq!(
        a.source_id.as_deref(),
        Some("43b6abcdeabcdeabcde1234562176924")
    );
    assert_eq!(
        a.hostname.as_deref(),
        Some("GeneratedFindingEKSClusterName")
    );
    // The finding id (32 hex) inside the ARN is not an MD5.
    assert_eq!(a.indicators.len(), 1, "{:?}", a.indicators);
    let wrapped = serde_json::json!({"detail": {"findings": [load("guardduty/kubernetes_tor_ip_caller.json")]}});
    assert_eq!(normalize(Source::GuardDuty, &wrapped).expect("wrapped"), a);
    assert_eq!(split_batch(Source::GuardDuty, &wrapped).len(), 1);
}

#[test]
fn elastic_8_1_mixed_flat_and_nested_alert() {
    let a = run(
        Source::Elastic,
        "elastic/kibana_8_1_threat_match_alert.json",
    );
    assert_eq!(a.title, "threat-match-rule");
    assert_eq!(a.severity, Severity::Low);
    assert_eq!(
        a.rule_id.as_deref(),
        Some("53000028-120c-4e55-a8c0-db092e05aef4")
    );
    assert_eq!(
        a.source_id.as_deref(),
        Some("30a75fe46d3dbdfab55982036f77a8d60e2d1112e96f277c3b8c22f9bb57817a")
    );
    assert_eq!(a.hostname.as_deref(), Some("security-linux-1"));
    assert_eq!(
        a.description.as_deref(),
        Some("event on security-linux-1 created low alert threat-match-rule.")
    );
    // The 64-hex alert uuid is not a SHA-256, the agent's FQDN is the asset, "siem.indicatorRule"
    // and "host.name" are not domains.
    let values: BTreeSet<&str> = a.indicators.iter().map(|i| i.value.as_str()).collect();
    assert_eq!(values, BTreeSet::from(["11.200.0.194"]));
    // As a search hit, the same document normalizes the same way.
    let hit = serde_json::json!({"_id": "x", "_source": load("elastic/kibana_8_1_threat_match_alert.json")});
    assert_eq!(
        normalize(Source::Elastic, &hit).expect("hit").title,
        "threat-match-rule"
    );
}

#[test]
fn zeek_notices() {
    let a = run(Source::Zeek, "zeek/notice_ssh_password_guessing.json");
    assert_eq!(a.title, "SSH::Password_Guessing");
    assert_eq!(a.severity, Severity::Medium);
    assert_eq!(a.severity_original, None);
    assert_eq!(a.source_ip, ip("172.16.238.1"));
    assert_eq!(
        of_kind(&a, IndicatorKind::Ipv4),
        ["172.16.238.1", "172.16.238.136"]
    );
    assert_eq!(
        a.event_time.map(|t| t.to_rfc3339()).as_deref(),
        Some("2011-11-04T19:44:35.879278+00:00")
    );

    let b = run(Source::Zeek, "zeek/notice_ssl_self_signed_badssl.json");
    assert_eq!(b.title, "SSL::Invalid_Server_Cert");
    assert_eq!(b.source_ip, ip("10.156.0.2"));
    assert_eq!(b.dest_ip, ip("89.160.20.156"));
    // "*.badssl.com" is a certificate wildcard, not an observed domain.
    assert!(of_kind(&b, IndicatorKind::Domain).is_empty());
}

#[test]
fn generic_thehive_alert() {
    let a = run(Source::Generic, "generic/thehive_get_alert.json");
    assert_eq!(a.title, "New Alert");
    assert_eq!(a.severity, Severity::Medium); // TheHive 2
    assert_eq!(a.severity_original.as_deref(), Some("2"));
    assert_eq!(a.source_id.as_deref(), Some("alert-ref"));
    assert_eq!(a.description.as_deref(), Some("N/A"));
    assert_eq!(
        a.event_time.map(|t| t.timestamp_millis()),
        Some(1_495_012_062_016)
    );
    // The 32-hex `_id`/`id` is TheHive's alert id, not an MD5.
    assert!(a.indicators.is_empty(), "{:?}", a.indicators);
}
