//! Values entered by hand normalize to the same canonical form extraction gives them.

use bulwark_normalize::{IndicatorKind as K, extract_indicators, normalize_indicator};

fn ok(kind: K, raw: &str) -> String {
    normalize_indicator(kind, raw)
        .unwrap_or_else(|e| panic!("{kind} {raw:?}: {e}"))
        .value
}

#[test]
fn canonical_forms() {
    assert_eq!(ok(K::Ipv4, " 203.0.113.9 "), "203.0.113.9");
    assert_eq!(ok(K::Ipv4, "203[.]0[.]113[.]9"), "203.0.113.9");
    assert_eq!(ok(K::Ipv6, "2001:DB8:0:0::1"), "2001:db8::1");
    assert_eq!(ok(K::Ipv6, "[2001:db8::1]"), "2001:db8::1");
    assert_eq!(ok(K::Domain, "Evil.Example.COM."), "evil.example.com");
    assert_eq!(ok(K::Domain, "evil[.]co[.]uk"), "evil.co.uk");
    assert_eq!(
        ok(K::Url, "hxxps://Evil.Example.com/Path?Q=1"),
        "https://evil.example.com/Path?Q=1"
    );
    assert_eq!(ok(K::Email, "Bob@Mail.Example.com"), "bob@mail.example.com");
    assert_eq!(
        ok(K::Md5, "D41D8CD98F00B204E9800998ECF8427E"),
        "d41d8cd98f00b204e9800998ecf8427e"
    );
    assert_eq!(ok(K::Cve, "cve-2021-44228"), "CVE-2021-44228");
    assert!(
        normalize_indicator(K::Ipv4, "10.0.0.1")
            .expect("ip")
            .private
    );
    assert!(
        !normalize_indicator(K::Ipv4, "203.0.113.9")
            .expect("ip")
            .private
    );
}

#[test]
fn invalid_values_are_refused() {
    for (kind, raw) in [
        (K::Ipv4, ""),
        (K::Ipv4, "   "),
        (K::Ipv4, "300.1.1.1"),
        (K::Ipv4, "2001:db8::1"),
        (K::Ipv6, "203.0.113.9"),
        (K::Ipv6, "::"),
        (K::Domain, "localhost"),
        (K::Domain, "server.local"),
        (K::Domain, "evil.example.com/path"),
        (K::Domain, "no such.com"),
        (K::Url, "evil.example.com/path"),
        (K::Url, "http://intranet/"),
        (K::Email, "not-an-email"),
        (K::Email, "a@b"),
        (K::Md5, "xyz"),
        (K::Md5, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (K::Sha1, "0000000000000000000000000000000000000000"),
        (K::Sha256, "d41d8cd98f00b204e9800998ecf8427e"),
        (K::Cve, "CVE-1990-1234"),
        (K::Cve, "CVE-2021-44228 and more"),
        (K::Url, "http://evil.example.com/a\u{0}b"),
        (K::Url, "http://evil.example.com/a\tb"),
    ] {
        assert!(
            normalize_indicator(kind, raw).is_err(),
            "{kind} {raw:?} should be refused"
        );
    }
}

#[test]
fn a_value_added_by_hand_matches_the_extracted_one() {
    let payload = serde_json::json!({
        "msg": "beacon to hxxps://Evil.Example.com/Gate.php from 198.51.100.7, dropped \
                D41D8CD98F00B204E9800998ECF8427E, mail from Bad.Actor@Example.org, exploiting cve-2021-44228"
    });
    let found = extract_indicators(&payload, &Default::default());
    for ind in &found {
        let manual = normalize_indicator(ind.kind, &ind.value).expect("valid");
        assert_eq!(&manual, ind, "{}", ind.value);
    }
    for (kind, raw) in [
        (K::Url, "hxxps://Evil.Example.com/Gate.php"),
        (K::Ipv4, "198.51.100.7"),
        (K::Md5, "D41D8CD98F00B204E9800998ECF8427E"),
        (K::Email, "Bad.Actor@Example.org"),
        (K::Cve, "cve-2021-44228"),
        (K::Domain, "EVIL.example.com"),
    ] {
        let manual = normalize_indicator(kind, raw).expect("valid");
        assert!(found.contains(&manual), "{manual:?} not in {found:?}");
    }
}
