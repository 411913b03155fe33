//! Bulwark's tamper-evident audit log core.
//!
//! Pure logic, no database and no async: the database layer stores what this
//! crate produces and feeds stored rows back for verification.
//!
//! * [`encode_record`] / [`decode_record`]: canonical, versioned record bytes
//!   (RFC 8785-style canonical JSON). The database stores exactly these bytes.
//! * [`chain_hash`], [`genesis_hash`], [`append`], [`ChainBuilder`]: the
//!   per-tenant SHA-256 hash chain.
//! * [`Verifier`]: streaming verification that detects and locates the first
//!   break (edited bytes, edited hashes, deleted/reordered records, and,
//!   with signed checkpoints, a rewritten but consistent chain or a truncated
//!   one).
//! * [`CheckpointSigner`], [`verify_checkpoint`]: Ed25519-signed checkpoints
//!   with a key kept outside the database.
//! * [`ExportWriter`], [`verify_export`]: a JSON Lines export that a third
//!   party can verify offline.
//!
//! The formats are specified in `docs/audit.md` precisely enough to write an
//! independent verifier.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod canonical;
mod chain;
mod checkpoint;
mod event;
mod export;
mod hash;
mod record;
mod verify;

pub use canonical::{DecodeError, decode_record, encode_record};
pub use chain::{AppendError, Appended, ChainBuilder, MAX_RECORD_BYTES, StoredRow, append};
pub use checkpoint::{
    CHECKPOINT_DOMAIN, CHECKPOINT_SIGNING_LEN, Checkpoint, CheckpointSigner, KeyError, KeyId,
    KeyOrigin, SignedCheckpoint, public_key_from_hex, public_key_to_hex, verify_checkpoint,
};
pub use event::{Category, EventType, UnknownEventType};
pub use export::{
    EXPORT_FORMAT, ExportError, ExportHeader, ExportWriter, MAX_LINE_BYTES, verify_export,
    verify_export_with_keys,
};
pub use hash::{
    CHAIN_DOMAIN, ChainHead, GENESIS_DOMAIN, Hash, HashParseError, chain_hash, genesis_hash,
    record_digest,
};
pub use record::{
    Actor, ActorKind, AuditRecord, AuditTime, AuditValue, MAX_SAFE_INTEGER, MAX_VALUE_DEPTH,
    NewRecord, RECORD_FORMAT_VERSION, Summary, Target, TimeError, UnknownActorKind, ValueError,
};
pub use verify::{Break, BreakReason, KeySource, Verifier, VerifierError, VerifyReport};

/// Re-exported so callers use the same Ed25519 types as this crate.
pub use ed25519_dalek::{Signature, VerifyingKey};
