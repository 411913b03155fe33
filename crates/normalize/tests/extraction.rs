//! Tricky indicator-extraction cases: recall on real indicators, precision on look-alikes.

use bulwark_normalize::{ExtractLimits, Indicator, IndicatorKind, extract_indicators, refang};
use serde_json::{Value, json};

fn extract(v: Value) -> Vec<Indicator> {
    extract_indicators(&v, &ExtractLimits::default())
}

fn kinds_values(v: Value) -> Vec<(IndicatorKind, String)> {
    extract(v).into_iter().map(|i| (i.kind, i.value)).collect()
}

fn values_of(v: Value, kind: IndicatorKind) -> Vec<String> {
    extract(v)
        .into_iter()
        .filter(|i| i.kind == kind)
        .map(|i| i.value)
        .collect()
}

use IndicatorKind::*;

#[test]
fn ipv6_in_text_compressed_mapped_and_zoned() {
    let got = values_of(
        json!({"msg": "conn from 2001:db8::1 to [fe80::1ff:fe23:4567:890a%eth0]:22 via ::ffff:192.0.2.1 and 2606:4700:4700::1111."}),
        Ipv6,
    );
    assert_eq!(
        got,
        [
            "2001:db8::1",
            "2606:4700:4700::1111",
            "::ffff:192.0.2.1",
            "fe80::1ff:fe23:4567:890a"
        ]
    );
    // The IPv4 inside the mapped address is not reported separately.
    assert!(values_of(json!({"m": "::ffff:192.0.2.1"}), Ipv4).is_empty());
    let loopback = extract(json!({"m": "bound to ::1"}));
    assert_eq!(loopback.len(), 1);
    assert!(loopback[0].private);
}

#[test]
fn ipv6_look_alikes() {
    for s in [
        "52:54:00:36:3e:ff",
        "12:29:19",
        "2021-01-04T04:59:23Z",
        "AWS::IAM::Role",
        "SSL::Invalid_Server_Cert",
        "Intel::DOMAIN",
        "Notice::ACTION_LOG",
        "std::vector",
        "a :: b",
    ] {
        assert!(extract(json!({ "m": s })).is_empty(), "{s}");
    }
}

#[test]
fn ips_in_arrays_and_lists() {
    let got = values_of(
        json!({"ips": ["10.0.0.1", "8.8.8.8"], "nested": [[{"x": "1.1.1.1, 9.9.9.9;4.4.4.4"}]]}),
        Ipv4,
    );
    assert_eq!(
        got,
        ["1.1.1.1", "10.0.0.1", "4.4.4.4", "8.8.8.8", "9.9.9.9"]
    );
}

#[test]
fn ipv4_look_alikes() {
    for s in [
        "version 1.2.3.4",
        "v1.2.3.4",
        "1.2.3.4.5",
        "OID 1.3.6.1.4.1.311.21.8",
        "Chrome/120.0.0.0 Safari/537.36",
        "256.1.1.1",
        "01.02.03.04",
        "build: 10.0.19041.1",
        "x1.2.3.4",
    ] {
        assert!(values_of(json!({ "m": s }), Ipv4).is_empty(), "{s}");
    }
    assert_eq!(
        values_of(json!({"m": "ip=203.0.113.9:443."}), Ipv4),
        ["203.0.113.9"]
    );
}

#[test]
fn private_flags() {
    let got: Vec<(String, bool)> =
        extract(json!({"m": "10.1.1.1 100.64.1.1 198.51.100.7 169.254.169.254 11.0.0.1 fd12::1"}))
            .into_iter()
            .map(|i| (i.value, i.private))
            .collect();
    assert_eq!(
        got,
        [
            ("10.1.1.1".to_string(), true),
            ("100.64.1.1".to_string(), true),
            ("11.0.0.1".to_string(), false),
            ("169.254.169.254".to_string(), true),
            ("198.51.100.7".to_string(), false),
            ("fd12::1".to_string(), true),
        ]
    );
    assert!(extract(json!({"d": "evil.com"})).iter().all(|i| !i.private));
}

#[test]
fn defanged_urls_domains_and_emails() {
    let got = kinds_values(json!({
        "ioc1": "hxxps://evil-site[.]com/payload.exe",
        "ioc2": "hXXp[://]203.0.113[.]5:8080/x",
        "ioc3": "bad(.)example{.}org",
        "ioc4": "contact: phisher[at]mail-evil[dot]net",
        "ioc5": "update[.]zip"
    }));
    assert_eq!(
        got,
        [
            (Ipv4, "203.0.113.5".to_string()),
            (Domain, "bad.example.org".to_string()),
            (Domain, "evil-site.com".to_string()),
            // A defanged token is a deliberate network indicator, even with a file-like TLD.
            (Domain, "update.zip".to_string()),
            (Url, "http://203.0.113.5:8080/x".to_string()),
            (Url, "https://evil-site.com/payload.exe".to_string()),
            (Email, "phisher@mail-evil.net".to_string()),
        ]
    );
    assert_eq!(refang("hxxp://a[.]b"), "http://a.b");
}

#[test]
fn urls_trailing_punctuation_and_hosts() {
    let got = values_of(
        json!({"m": "see (https://example.org/a_(b)) and https://x.example.com/p?q=1, or ftp://files.example.net/f;"}),
        Url,
    );
    assert_eq!(
        got,
        [
            "ftp://files.example.net/f",
            "https://example.org/a_(b)",
            "https://x.example.com/p?q=1"
        ]
    );
    // Non-routable hosts are not indicators.
    assert!(
        extract(
            json!({"m": "http://localhost:5601/app and http://intranet/x and https://svc.local/"})
        )
        .is_empty()
    );
    // Scheme and host are canonicalised, the path is kept as written.
    assert_eq!(
        values_of(json!({"m": "HTTPS://Evil.COM/Path"}), Url),
        ["https://evil.com/Path"]
    );
}

#[test]
fn hashes_in_urls_and_text() {
    let sha = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
    let got = values_of(
        json!({"link": format!("https://www.virustotal.com/gui/file/{sha}/detection"), "md5": "MD5=44D88612FEA8A8F36DE82E1278ABB02F"}),
        Sha256,
    );
    assert_eq!(got, [sha]);
    assert_eq!(
        values_of(json!({"m": "MD5=44D88612FEA8A8F36DE82E1278ABB02F"}), Md5),
        ["44d88612fea8a8f36de82e1278abb02f"]
    );
    let sha512 = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
    assert_eq!(values_of(json!({"m": sha512}), Sha512), [sha512]);
}

#[test]
fn hash_look_alikes() {
    for (key, s) in [
        ("m", "00000000000000000000000000000000"),
        ("m", "0000000000000000000000000000000000000000"),
        ("m", "A31E767E-7887-4A15-86F1-2CB85DB0F805"),
        ("m", "0x44d88612fea8a8f36de82e1278abb02f"),
        ("m", "RMD5267e440bddd8ef1f44d88612fea8a8f3"),
        (
            "m",
            "44d88612fea8a8f36de82e1278abb02f44d88612fea8a8f36de82e1278abb02f1",
        ),
        ("m", "12345678901234567890123456789012"),
        ("m", "44D88612fea8a8f36de82e1278abb02f"),
        ("id", "44d88612fea8a8f36de82e1278abb02f"),
        ("detectorId", "44d88612fea8a8f36de82e1278abb02f"),
        ("AgentIdString", "44d88612fea8a8f36de82e1278abb02f"),
        (
            "kibana.alert.uuid",
            "30a75fe46d3dbdfab55982036f77a8d60e2d1112e96f277c3b8c22f9bb57817a",
        ),
        (
            "arn",
            "arn:aws:guardduty:us-east-1:1:detector/44d88612fea8a8f36de82e1278abb02f",
        ),
    ] {
        let got = extract(json!({ key: s }));
        assert!(got.iter().all(|i| !i.kind.is_hash()), "{key}={s}: {got:?}");
    }
}

#[test]
fn domain_look_alikes() {
    for s in [
        "cmd.exe",
        "svchost.exe",
        "file.txt",
        "event.kind",
        "Microsoft.Compute",
        "System.IO",
        "Microsoft.Azure",
        "chrome.mojom.UtilWin",
        "user.name",
        "host.id",
        "process.pid",
        "localhost.localdomain",
        "printer.local",
        "svc.cluster.internal",
        "setup.py",
        "run.sh",
        "README.md",
        "invoice.zip",
        "Safari.app",
        "libc.so.6",
        "libmalicious.so",
        "/tmp/load.sh",
        "C:\\Windows\\evil.com",
        "com.apple.news",
        "org.apache.commons.io",
        "*.cloudapp.net",
        "obj.method(arg)",
        "key_name.com",
        "1.2.3",
        "U.S.",
        "process.name : cmd.exe and user.name : admin",
    ] {
        let got = values_of(json!({ "m": s }), Domain);
        assert!(got.is_empty(), "{s}: {got:?}");
    }
    // File-name context from the key.
    assert!(values_of(json!({"FileName": "eicar.com"}), Domain).is_empty());
    assert_eq!(
        values_of(json!({"CommandLine": "curl eicar.com"}), Domain),
        ["eicar.com"]
    );
}

#[test]
fn domain_recall() {
    let got = values_of(
        json!({"m": "curl google.com; nslookup WWW.EXAMPLE.CO.UK then evil-c2.xyz:443 and //cdn.example.net/x, \\\\files.corp-example.com\\share, s3.amazonaws.com, bit.ly"}),
        Domain,
    );
    assert_eq!(
        got,
        [
            "bit.ly",
            "cdn.example.net",
            "evil-c2.xyz",
            "files.corp-example.com",
            "google.com",
            "s3.amazonaws.com",
            "www.example.co.uk"
        ]
    );
}

#[test]
fn email_domain_is_not_a_separate_domain() {
    let got = kinds_values(json!({"m": "From: John.Doe@Example.com, bounce <a+b@mail.evil.org>"}));
    assert_eq!(
        got,
        [
            (Email, "a+b@mail.evil.org".to_string()),
            (Email, "john.doe@example.com".to_string())
        ]
    );
    for s in [
        "user@corp.local",
        "git@localhost",
        "x@1.2.3.4",
        "a..b@example.com",
    ] {
        assert!(values_of(json!({ "m": s }), Email).is_empty(), "{s}");
    }
}

#[test]
fn cve_ids() {
    let got = values_of(
        json!({"m": "fixes cve-2021-44228 and CVE-2014-6271; not CVE-12-1234 or CVE-2021-12"}),
        Cve,
    );
    assert_eq!(got, ["CVE-2014-6271", "CVE-2021-44228"]);
}

#[test]
fn keys_are_not_scanned_and_output_is_deduplicated_and_sorted() {
    let got = kinds_values(
        json!({"8.8.8.8": "x", "a": "8.8.8.8", "b": ["8.8.8.8", "evil.com"], "c": "EVIL.com"}),
    );
    assert_eq!(
        got,
        [
            (Ipv4, "8.8.8.8".to_string()),
            (Domain, "evil.com".to_string())
        ]
    );
}

#[test]
fn limits_bound_the_work() {
    let many: Vec<String> = (0..500)
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
        .collect();
    let limits = ExtractLimits {
        max_indicators: 10,
        ..ExtractLimits::default()
    };
    assert_eq!(
        extract_indicators(&json!({ "ips": many }), &limits).len(),
        10
    );

    let limits = ExtractLimits {
        max_strings: 1,
        ..ExtractLimits::default()
    };
    assert_eq!(
        extract_indicators(&json!(["1.1.1.1", "2.2.2.2"]), &limits).len(),
        1
    );

    // A string cut by the byte budget is cut at whitespace: no half hash is reported.
    let sha = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
    let text = format!("8.8.8.8 {sha}");
    let limits = ExtractLimits {
        max_total_bytes: 40,
        ..ExtractLimits::default()
    };
    let got = extract_indicators(&json!({ "m": text }), &limits);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value, "8.8.8.8");

    let mut deep = json!("8.8.8.8");
    for _ in 0..10 {
        deep = json!([deep]);
    }
    let limits = ExtractLimits {
        max_depth: 5,
        ..ExtractLimits::default()
    };
    assert!(extract_indicators(&deep, &limits).is_empty());
    assert_eq!(
        extract_indicators(&deep, &ExtractLimits::default()).len(),
        1
    );
}
