//! Export format: round trip, tamper detection, malformed files.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use bulwark_audit::*;
use common::*;
use proptest::prelude::*;
use uuid::Uuid;

struct Fixture {
    signer: CheckpointSigner,
    tenants: Vec<(Uuid, Vec<StoredRow>, Vec<SignedCheckpoint>)>,
}

fn fixture() -> Fixture {
    let signer = CheckpointSigner::generate().unwrap();
    let tenants = [(tenant(200), 25u64), (tenant(201), 0), (tenant(202), 12)]
        .into_iter()
        .map(|(t, n)| {
            let rows = build_chain(t, n);
            let mut cps = checkpoints(&signer, t, &rows, 10);
            cps.push(signer.sign(t, &head_of(t, &rows), AuditTime::now()));
            (t, rows, cps)
        })
        .collect();
    Fixture { signer, tenants }
}

fn export(f: &Fixture) -> Vec<u8> {
    export_with(f, |_, rows| rows.to_vec())
}

/// Exports with a hook to alter each tenant's rows.
fn export_with(f: &Fixture, alter: impl Fn(Uuid, &[StoredRow]) -> Vec<StoredRow>) -> Vec<u8> {
    let header = ExportHeader {
        exported_at: AuditTime::parse_canonical("2025-07-01T00:00:00.000000Z").unwrap(),
        public_key: Some(f.signer.verifying_key()),
        retired_public_keys: vec![],
        tenants: f.tenants.iter().map(|t| t.0).collect(),
    };
    let mut w = ExportWriter::new(Vec::new(), &header).unwrap();
    for (t, rows, cps) in &f.tenants {
        w.begin_tenant(*t, &head_of(*t, rows), cps).unwrap();
        for r in alter(*t, rows) {
            w.write_record(&r).unwrap();
        }
    }
    w.finish().unwrap()
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

#[test]
fn round_trip_with_trusted_key() {
    let f = fixture();
    let bytes = export(&f);
    let key = f.signer.verifying_key();
    let reports = verify_export(&bytes[..], Some(&key)).unwrap();
    assert_eq!(reports.len(), 3);
    for (report, (t, rows, cps)) in reports.iter().zip(&f.tenants) {
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.tenant_id, *t);
        assert_eq!(report.records_checked, rows.len() as u64);
        assert_eq!(report.checkpoints_checked, cps.len() as u64);
        assert_eq!(report.key_source, KeySource::Trusted);
        assert_eq!(report.head(), head_of(*t, rows));
    }
}

#[test]
fn format_is_as_documented() {
    let f = fixture();
    let ls = lines(&export(&f));
    let header: serde_json::Value = serde_json::from_str(&ls[0]).unwrap();
    assert_eq!(header["format"], "bulwark-audit-export-v1");
    assert_eq!(header["public_key"], f.signer.public_key_hex());
    assert_eq!(header["tenants"].as_array().unwrap().len(), 3);
    let second: serde_json::Value = serde_json::from_str(&ls[1]).unwrap();
    assert_eq!(second["type"], "tenant");
    let rec: serde_json::Value =
        serde_json::from_str(ls.iter().find(|l| l.contains("\"record\"")).unwrap()).unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rec["bytes"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        decode_record(&raw).unwrap().seq,
        rec["seq"].as_u64().unwrap()
    );
    let last: serde_json::Value = serde_json::from_str(ls.last().unwrap()).unwrap();
    assert_eq!(last["type"], "end");
    assert_eq!(last["records"], 37);
}

#[test]
fn embedded_key_only_is_reported_as_such() {
    let f = fixture();
    let reports = verify_export(&export(&f)[..], None).unwrap();
    assert!(
        reports
            .iter()
            .all(|r| r.is_ok() && r.key_source == KeySource::EmbeddedOnly)
    );
}

#[test]
fn forged_export_passes_embedded_key_but_fails_trusted_key() {
    let f = fixture();
    // An attacker rewrites tenant 200's chain and re-signs everything with
    // their own key, which they embed in the header.
    let attacker = CheckpointSigner::generate().unwrap();
    let t = f.tenants[0].0;
    let mut rows = f.tenants[0].1.clone();
    let mut rec = decode_record(&rows[4].record_bytes).unwrap();
    rec.summary.detail = Some("nothing happened".into());
    rows[4].record_bytes = encode_record(&rec);
    rehash(t, &mut rows);
    let mut forged = Fixture {
        signer: attacker,
        tenants: f.tenants.clone(),
    };
    let cps = checkpoints(&forged.signer, t, &rows, 10);
    forged.tenants[0] = (t, rows, cps);
    for (tt, rows, cps) in forged.tenants.iter_mut().skip(1) {
        *cps = checkpoints(&forged.signer, *tt, rows, 10);
    }
    let bytes = export(&forged);

    let embedded = verify_export(&bytes[..], None).unwrap();
    assert!(
        embedded
            .iter()
            .all(|r| r.is_ok() && r.key_source == KeySource::EmbeddedOnly)
    );

    let trusted = verify_export(&bytes[..], Some(&f.signer.verifying_key())).unwrap();
    let b = trusted[0].first_break.clone().unwrap();
    assert_eq!(b.seq, 10);
    assert!(matches!(b.reason, BreakReason::UnknownKey { .. }));
}

#[test]
fn tampered_record_in_export_is_located() {
    let f = fixture();
    let target = f.tenants[2].0;
    let bytes = export_with(&f, |t, rows| {
        let mut rows = rows.to_vec();
        if t == target {
            rows[6].record_bytes[20] ^= 1;
        }
        rows
    });
    let reports = verify_export(&bytes[..], Some(&f.signer.verifying_key())).unwrap();
    assert!(reports[0].is_ok() && reports[1].is_ok());
    let b = reports[2].first_break.clone().unwrap();
    assert_eq!(b.seq, 7);
    assert!(matches!(b.reason, BreakReason::HashMismatch { .. }));
}

#[test]
fn deleted_and_truncated_records_in_export_are_located() {
    let f = fixture();
    let key = f.signer.verifying_key();
    let t0 = f.tenants[0].0;
    let deleted = export_with(&f, |t, rows| {
        let mut rows = rows.to_vec();
        if t == t0 {
            rows.remove(14);
        }
        rows
    });
    let b = verify_export(&deleted[..], Some(&key)).unwrap()[0]
        .first_break
        .clone()
        .unwrap();
    assert_eq!(
        b,
        Break {
            seq: 15,
            reason: BreakReason::Gap {
                expected: 15,
                found: 16
            }
        }
    );

    let truncated = export_with(&f, |t, rows| {
        if t == t0 {
            rows[..21].to_vec()
        } else {
            rows.to_vec()
        }
    });
    let b = verify_export(&truncated[..], Some(&key)).unwrap()[0]
        .first_break
        .clone()
        .unwrap();
    assert_eq!(
        b,
        Break {
            seq: 22,
            reason: BreakReason::Truncated {
                last_seq: 21,
                checkpoint_seq: 25
            }
        }
    );
}

#[test]
fn corrupted_lines_name_the_line_number() {
    let f = fixture();
    let ls = lines(&export(&f));
    let n = ls.len();
    let record_line = ls
        .iter()
        .position(|l| l.contains("\"type\":\"record\""))
        .unwrap();
    let checkpoint_line = ls
        .iter()
        .position(|l| l.contains("\"type\":\"checkpoint\""))
        .unwrap();

    let cases: Vec<(Vec<String>, usize, &str)> = vec![
        // (lines, 0-based index of the expected error line, description)
        (
            {
                let mut l = ls.clone();
                l[record_line].truncate(30);
                l
            },
            record_line,
            "cut line",
        ),
        (
            {
                let mut l = ls.clone();
                l[record_line] = l[record_line].replace("\"bytes\":\"", "\"bytes\":\"!");
                l
            },
            record_line,
            "bad base64",
        ),
        (
            {
                let mut l = ls.clone();
                l[record_line] =
                    l[record_line].replace("\"type\":\"record\"", "\"type\":\"recrod\"");
                l
            },
            record_line,
            "bad type",
        ),
        (
            {
                let mut l = ls.clone();
                l[record_line] = l[record_line].replace("\"seq\":", "\"extra\":1,\"seq\":");
                l
            },
            record_line,
            "unknown field",
        ),
        (
            {
                let mut l = ls.clone();
                l[checkpoint_line] =
                    l[checkpoint_line].replace("\"signature\":\"", "\"signature\":\"zz");
                l
            },
            checkpoint_line,
            "bad signature hex",
        ),
        (
            {
                let mut l = ls.clone();
                l[0] = l[0].replace("export-v1", "export-v2");
                l
            },
            0,
            "format",
        ),
        (
            {
                let mut l = ls.clone();
                l[0] = "{}".into();
                l
            },
            0,
            "empty header",
        ),
        (
            {
                let mut l = ls.clone();
                l.pop();
                l
            },
            n - 1,
            "missing end line",
        ),
        (
            {
                let mut l = ls.clone();
                l.push("{}".into());
                l
            },
            n,
            "data after end",
        ),
        (
            {
                let mut l = ls.clone();
                let c = l.remove(checkpoint_line);
                l.insert(record_line + 1, c);
                l
            },
            record_line + 1,
            "checkpoint after records",
        ),
        (
            {
                let mut l = ls.clone();
                l.remove(1);
                l
            },
            1,
            "missing tenant line",
        ),
        (
            {
                let mut l = ls.clone();
                l[n - 1] = l[n - 1].replace("\"records\":37", "\"records\":36");
                l
            },
            n - 1,
            "end counts",
        ),
        (
            {
                let mut l = ls.clone();
                l[record_line] = "\u{0}\u{ff}".into();
                l
            },
            record_line,
            "binary",
        ),
        (
            {
                let mut l = ls.clone();
                l[record_line] = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
                l
            },
            record_line,
            "deep nesting",
        ),
    ];
    for (lines, expected_idx, what) in cases {
        match verify_export(&join(&lines)[..], Some(&f.signer.verifying_key())) {
            Err(ExportError::Line { line, message }) => {
                assert_eq!(line, expected_idx as u64 + 1, "{what}: {message}");
                assert!(message.chars().count() <= 201, "{what}");
            }
            other => panic!("{what}: expected a line error, got {other:?}"),
        }
    }

    // A file cut in the middle of its last line.
    let mut cut = export(&f);
    cut.truncate(cut.len() - 3);
    let err = verify_export(&cut[..], None).unwrap_err();
    assert!(
        matches!(err, ExportError::Line { line, .. } if line == n as u64),
        "{err}"
    );
    assert!(err.to_string().starts_with(&format!("export line {n}:")));

    // Empty input.
    assert!(matches!(
        verify_export(&b""[..], None),
        Err(ExportError::Line { line: 1, .. })
    ));
}

#[test]
fn writer_enforces_structure() {
    let f = fixture();
    let header = ExportHeader {
        exported_at: AuditTime::now(),
        public_key: None,
        retired_public_keys: vec![],
        tenants: vec![tenant(200), tenant(201)],
    };
    let mut w = ExportWriter::new(Vec::new(), &header).unwrap();
    assert!(
        w.begin_tenant(tenant(201), &ChainHead::genesis(tenant(201)), &[])
            .is_err()
    );
    let (t, rows, cps) = &f.tenants[0];
    assert!(w.write_record(&rows[0]).is_err());
    w.begin_tenant(*t, &head_of(*t, rows), cps).unwrap();
    assert!(w.write_record(&f.tenants[2].1[0]).is_err());
    let w2 = ExportWriter::new(Vec::new(), &header).unwrap();
    assert!(w2.finish().is_err());
    let dup = ExportHeader {
        tenants: vec![tenant(1), tenant(1)],
        ..header
    };
    assert!(ExportWriter::new(Vec::new(), &dup).is_err());
    drop(w);
}

#[test]
fn header_key_must_be_valid_when_used() {
    let f = fixture();
    let mut ls = lines(&export(&f));
    let hex = f.signer.public_key_hex();
    ls[0] = ls[0].replace(&hex, &"0".repeat(64));
    let err = verify_export(&join(&ls)[..], None).unwrap_err();
    assert!(matches!(err, ExportError::Line { line: 1, .. }), "{err}");
    // With a trusted key the embedded key is ignored entirely.
    assert!(
        verify_export(&join(&ls)[..], Some(&f.signer.verifying_key()))
            .unwrap()
            .iter()
            .all(|r| r.is_ok())
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random byte edits of a valid export never panic; they give an error
    /// or reports.
    #[test]
    fn corrupted_export_never_panics(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let f = small_fixture();
        let mut bytes = f.clone();
        for (i, b) in edits {
            let n = bytes.len();
            bytes[i.index(n)] = b;
        }
        let _ = verify_export(&bytes[..], None);
    }

    /// Arbitrary input never panics.
    #[test]
    fn garbage_export_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = verify_export(&bytes[..], None);
    }

    /// Line-shuffled exports never panic and never verify silently unless
    /// unchanged.
    #[test]
    fn shuffled_lines_never_pass_silently(a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let bytes = small_fixture();
        let mut ls = lines(&bytes);
        let (i, j) = (a.index(ls.len()), b.index(ls.len()));
        ls.swap(i, j);
        let changed = join(&ls) != bytes;
        if let Ok(reports) = verify_export(&join(&ls)[..], None) {
            prop_assert!(!changed || reports.iter().any(|r| !r.is_ok()));
        }
    }
}

fn small_fixture() -> Vec<u8> {
    use std::sync::OnceLock;
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let signer = CheckpointSigner::generate().unwrap();
            let t = tenant(300);
            let rows = build_chain(t, 6);
            let cps = checkpoints(&signer, t, &rows, 3);
            export(&Fixture {
                signer,
                tenants: vec![(t, rows, cps)],
            })
        })
        .clone()
}
