//! Shared test helpers.
#![allow(dead_code, clippy::unwrap_used)]

use bulwark_audit::*;
use serde_json::json;
use uuid::Uuid;

pub fn tenant(n: u128) -> Uuid {
    Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// A varied, realistic record number `i`.
pub fn new_record(i: u64) -> NewRecord {
    let events = EventType::ALL;
    let event_type = events[(i as usize) % events.len()];
    let actor = match i % 4 {
        0 => Actor {
            kind: ActorKind::User,
            id: Some(format!("analyst-{}", i % 17)),
            name: Some("alice".into()),
        },
        1 => Actor {
            kind: ActorKind::ApiKey,
            id: Some(format!("key-{}", i % 5)),
            name: None,
        },
        2 => Actor {
            kind: ActorKind::Playbook,
            id: Some("pb-7".into()),
            name: Some("Isolate host".into()),
        },
        _ => Actor::system(),
    };
    NewRecord {
        ts: AuditTime::from_unix_micros(1_735_689_600_000_000 + i as i64 * 1_000_003).unwrap(),
        actor,
        event_type,
        target: Target {
            kind: "alert".into(),
            id: Some(format!("alert-{i}")),
        },
        summary: Summary {
            before: Some(AuditValue::new(json!({"status": "new", "severity": 3})).unwrap()),
            after: Some(
                AuditValue::new(
                    json!({"status": "triaged", "severity": 4, "tags": ["phishing", i]}),
                )
                .unwrap(),
            ),
            detail: if i.is_multiple_of(3) {
                Some(format!("changed by rule #{i}"))
            } else {
                None
            },
        },
        request_id: Some(format!("req-{i:08x}")),
    }
}

/// A chain of `n` rows for `tenant`.
pub fn build_chain(t: Uuid, n: u64) -> Vec<StoredRow> {
    let mut b = ChainBuilder::new(t, None);
    (1..=n)
        .map(|i| b.append(new_record(i)).unwrap().into_row())
        .collect()
}

/// Head after `rows` (genesis if empty).
pub fn head_of(t: Uuid, rows: &[StoredRow]) -> ChainHead {
    rows.last()
        .map(|r| ChainHead {
            seq: r.seq,
            hash: r.hash,
        })
        .unwrap_or_else(|| ChainHead::genesis(t))
}

/// Checkpoint at each multiple of `every`.
pub fn checkpoints(
    signer: &CheckpointSigner,
    t: Uuid,
    rows: &[StoredRow],
    every: u64,
) -> Vec<SignedCheckpoint> {
    rows.iter()
        .filter(|r| r.seq.is_multiple_of(every))
        .map(|r| {
            signer.sign(
                t,
                &ChainHead {
                    seq: r.seq,
                    hash: r.hash,
                },
                AuditTime::from_unix_micros(1_800_000_000_000_000 + r.seq as i64).unwrap(),
            )
        })
        .collect()
}

/// Verifies `rows` from genesis with optional checkpoints.
pub fn verify(
    t: Uuid,
    rows: &[StoredRow],
    keys: &[VerifyingKey],
    cps: &[SignedCheckpoint],
) -> VerifyReport {
    let mut v = Verifier::with_checkpoints(t, None, keys, cps).unwrap();
    for r in rows {
        if v.feed(r).is_err() {
            break;
        }
    }
    v.finish()
}

/// Recomputes every hash after the rows were edited (what an attacker with
/// database access but without the signing key can do).
pub fn rehash(t: Uuid, rows: &mut [StoredRow]) {
    let mut prev = genesis_hash(t);
    for r in rows.iter_mut() {
        r.hash = chain_hash(t, r.seq, &prev, &r.record_bytes);
        prev = r.hash;
    }
}
