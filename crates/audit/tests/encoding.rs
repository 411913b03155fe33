//! Property tests of the canonical record encoding.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use bulwark_audit::*;
use proptest::prelude::*;
use serde_json::{Map, Value};
use uuid::Uuid;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Arbitrary Unicode, including controls, quotes, backslashes, astral chars.
        any::<String>(),
        "[a-z_\\-\\\\\"\\x00-\\x1f\\x7f é€😀]{0,12}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(MAX_SAFE_INTEGER),
            Just(-MAX_SAFE_INTEGER)
        ]
        .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

fn record() -> impl Strategy<Value = AuditRecord> {
    (
        any::<u128>(),
        any::<u64>(),
        0i64..=253_402_300_799_999_999,
        (
            prop::sample::select(ActorKind::ALL.to_vec()),
            opt(text()),
            opt(text()),
        ),
        prop::sample::select(EventType::ALL.to_vec()),
        (text(), opt(text())),
        (opt(value()), opt(value()), opt(text())),
        opt(text()),
    )
        .prop_map(
            |(
                t,
                seq,
                micros,
                (kind, id, name),
                event_type,
                (tk, tid),
                (before, after, detail),
                request_id,
            )| {
                AuditRecord {
                    tenant_id: Uuid::from_u128(t),
                    seq,
                    ts: AuditTime::from_unix_micros(micros).unwrap(),
                    actor: Actor { kind, id, name },
                    event_type,
                    target: Target { kind: tk, id: tid },
                    summary: Summary {
                        before: before.map(|v| AuditValue::new(v).unwrap()),
                        after: after.map(|v| AuditValue::new(v).unwrap()),
                        detail,
                    },
                    request_id,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// decode(encode(r)) == r, and the bytes are JSON that a general parser
    /// reads as the same data.
    #[test]
    fn round_trip(r in record()) {
        let bytes = encode_record(&r);
        prop_assert_eq!(decode_record(&bytes), Ok(r.clone()));
        let generic: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(generic["seq"].as_u64(), Some(r.seq));
        if let Some(after) = &r.summary.after {
            prop_assert_eq!(&generic["summary"]["after"], after.as_value());
        }
        prop_assert_eq!(generic["v"].as_u64(), Some(1));
    }

    /// Equal records encode equally; different records differ.
    #[test]
    fn injective(a in record(), b in record()) {
        prop_assert_eq!(a == b, encode_record(&a) == encode_record(&b));
    }

    /// encode(decode(b)) == b for every accepted b: mutating valid bytes
    /// either gets rejected or yields bytes that are themselves canonical.
    #[test]
    fn mutations_are_rejected_or_canonical(
        r in record(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = encode_record(&r);
        for (idx, byte, op) in edits {
            let i = idx.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.push(byte),
            }
        }
        if let Ok(decoded) = decode_record(&bytes) {
            prop_assert_eq!(encode_record(&decoded), bytes);
        }
    }

    /// Re-serializing through a general JSON library with other whitespace
    /// or key order is always rejected unless it happens to be identical.
    #[test]
    fn pretty_printed_is_rejected(r in record()) {
        let bytes = encode_record(&r);
        let generic: Value = serde_json::from_slice(&bytes).unwrap();
        let pretty = serde_json::to_vec_pretty(&generic).unwrap();
        prop_assert!(decode_record(&pretty).is_err());
    }

    /// Arbitrary bytes never panic.
    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = decode_record(&bytes) {
            prop_assert_eq!(encode_record(&r), bytes);
        }
    }

    /// JSON-shaped garbage (more likely to get deep into the parser).
    #[test]
    fn json_shaped_garbage_never_panics(s in "[\\[\\]{}\":,0-9a-z\\-\\\\ .eE]{0,200}") {
        let _ = decode_record(s.as_bytes());
    }
}

#[test]
fn serde_json_form_is_not_the_canonical_form() {
    // The serde (API) representation of a record is a convenience and is not
    // what gets hashed; make sure nobody confuses the two.
    let r = AuditRecord {
        tenant_id: Uuid::nil(),
        seq: 1,
        ts: AuditTime::from_unix_micros(0).unwrap(),
        actor: Actor::system(),
        event_type: EventType::BootstrapCompleted,
        target: Target {
            kind: "platform".into(),
            id: None,
        },
        summary: Summary::default(),
        request_id: None,
    };
    let api = serde_json::to_vec(&r).unwrap();
    assert_ne!(api, encode_record(&r));
    let back: AuditRecord = serde_json::from_slice(&api).unwrap();
    assert_eq!(back, r);
}
