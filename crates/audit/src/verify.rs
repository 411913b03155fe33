//! Streaming chain verification.
//!
//! Feed a tenant's rows in ascending `seq` order. For each row the verifier
//! checks, in this order:
//!
//! 1. the row's `seq` column is the next expected number ([`BreakReason::Gap`]);
//! 2. the row's `tenant_id` column is the verified tenant ([`BreakReason::RowMismatch`]);
//! 3. the recomputed link hash equals the stored one ([`BreakReason::HashMismatch`]);
//! 4. the bytes are a canonical record ([`BreakReason::Undecodable`]) whose
//!    `tenant_id` and `seq` equal the row's columns ([`BreakReason::RowMismatch`]);
//! 5. every checkpoint at this `seq` is signed by a trusted key
//!    ([`BreakReason::UnknownKey`], [`BreakReason::BadSignature`]) and names this
//!    link hash ([`BreakReason::CheckpointMismatch`]).
//!
//! At [`Verifier::finish`], checkpoints beyond the last record reveal a
//! truncated chain ([`BreakReason::Truncated`]), and
//! [`Verifier::finish_with_head`] also compares the stored chain head
//! ([`BreakReason::HeadMismatch`]).
//!
//! Verification stops at the first break: a break means everything after it
//! is unverified (the later rows may well be intact, but nothing links them
//! to a trusted state any more).

use std::collections::VecDeque;
use std::fmt;

use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use uuid::Uuid;

use crate::canonical::{DecodeError, validate_record};
use crate::chain::StoredRow;
use crate::checkpoint::{KeyId, SignedCheckpoint, verify_checkpoint};
use crate::hash::{ChainHead, Hash, link_hash, record_digest};

/// The first point at which the chain failed to verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {reason}")]
pub struct Break {
    /// The first sequence number that is not verified.
    pub seq: u64,
    /// What is wrong.
    pub reason: BreakReason,
}

/// Why the chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BreakReason {
    /// The next row does not have the expected `seq`: a record is missing
    /// (deleted) or rows are out of order (swapped).
    Gap {
        /// The seq that should have come next.
        expected: u64,
        /// The seq column of the row that came instead.
        found: u64,
    },
    /// The stored link hash differs from the one recomputed from the
    /// previous hash and this row's bytes: the bytes, the stored hash or an
    /// earlier link was changed.
    HashMismatch {
        /// The `hash` column.
        stored: Hash,
        /// The recomputed link hash.
        computed: Hash,
    },
    /// The bytes hash correctly but are not a canonical record.
    Undecodable {
        /// The decoder's error.
        error: DecodeError,
    },
    /// The row's `tenant_id`/`seq` columns disagree with the verified tenant
    /// or with the values inside the record bytes.
    RowMismatch {
        /// Which field disagrees: `"tenant_id"` or `"seq"`.
        field: &'static str,
    },
    /// A validly signed checkpoint names a different head hash than the
    /// recomputed chain: the chain up to `seq` was rewritten after the
    /// checkpoint was signed (even if it is internally consistent). The
    /// rewrite began after `last_good_checkpoint` (if any).
    CheckpointMismatch {
        /// The checkpoint's seq (equal to the break's seq).
        checkpoint_seq: u64,
        /// Hash in the checkpoint.
        checkpoint_hash: Hash,
        /// Recomputed link hash at that seq.
        computed: Hash,
        /// The highest earlier checkpoint that matched, if any.
        last_good_checkpoint: Option<u64>,
    },
    /// A checkpoint's signature does not verify with the trusted key it
    /// names: it was forged or altered.
    BadSignature {
        /// The checkpoint's seq.
        checkpoint_seq: u64,
        /// The key id it names.
        key_id: KeyId,
    },
    /// A checkpoint names a key that is not among the trusted keys. Either a
    /// forged checkpoint or a missing (e.g. retired) trusted key.
    UnknownKey {
        /// The checkpoint's seq.
        checkpoint_seq: u64,
        /// The key id it names.
        key_id: KeyId,
    },
    /// A validly signed checkpoint lies beyond the last record: records
    /// after `last_seq` were deleted.
    Truncated {
        /// The last verified seq.
        last_seq: u64,
        /// The checkpoint that proves more records existed.
        checkpoint_seq: u64,
    },
    /// The stored chain head disagrees with the last verified record.
    HeadMismatch {
        /// The stored head.
        stored: ChainHead,
        /// The recomputed head.
        computed: ChainHead,
    },
    /// The start head is at `u64::MAX`; nothing can follow it.
    SeqOverflow,
}

impl fmt::Display for BreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakReason::Gap { expected, found } => {
                write!(
                    f,
                    "expected seq {expected}, found seq {found} (missing or reordered record)"
                )
            }
            BreakReason::HashMismatch { stored, computed } => {
                write!(f, "stored hash {stored} != recomputed {computed}")
            }
            BreakReason::Undecodable { error } => write!(f, "undecodable record: {error}"),
            BreakReason::RowMismatch { field } => {
                write!(f, "row column {field} disagrees with the record")
            }
            BreakReason::CheckpointMismatch {
                checkpoint_seq,
                checkpoint_hash,
                computed,
                last_good_checkpoint,
            } => {
                write!(
                    f,
                    "signed checkpoint at seq {checkpoint_seq} says {checkpoint_hash}, chain has {computed} (chain rewritten"
                )?;
                match last_good_checkpoint {
                    Some(s) => write!(f, " after seq {s})"),
                    None => f.write_str(")"),
                }
            }
            BreakReason::BadSignature {
                checkpoint_seq,
                key_id,
            } => write!(
                f,
                "checkpoint at seq {checkpoint_seq} has an invalid signature (key {key_id})"
            ),
            BreakReason::UnknownKey {
                checkpoint_seq,
                key_id,
            } => write!(
                f,
                "checkpoint at seq {checkpoint_seq} is signed by untrusted key {key_id}"
            ),
            BreakReason::Truncated {
                last_seq,
                checkpoint_seq,
            } => write!(
                f,
                "chain ends at seq {last_seq} but a signed checkpoint exists at seq {checkpoint_seq}"
            ),
            BreakReason::HeadMismatch { stored, computed } => write!(
                f,
                "stored head ({}, {}) != recomputed head ({}, {})",
                stored.seq, stored.hash, computed.seq, computed.hash
            ),
            BreakReason::SeqOverflow => f.write_str("sequence number overflow"),
        }
    }
}

/// Where the keys used to check checkpoint signatures came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// Keys supplied by the verifying party (e.g. pinned public keys).
    /// Checkpoints then prove the chain matches what the key holder signed.
    Trusted,
    /// Only the key embedded in the export itself. This proves internal
    /// consistency only: whoever produced the export could have embedded
    /// their own key.
    EmbeddedOnly,
}

/// The outcome of verifying one tenant's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The tenant.
    pub tenant_id: Uuid,
    /// Where verification started (genesis, or a trusted head).
    pub start: ChainHead,
    /// Rows fully verified.
    pub records_checked: u64,
    /// The first break, if any. `None` means every fed row verified.
    pub first_break: Option<Break>,
    /// Last verified seq (`start.seq` if none). On a break, the seq before it.
    pub last_seq: u64,
    /// Link hash at `last_seq`: a trusted start for the next incremental run,
    /// but only if `first_break` is `None`.
    pub last_hash: Hash,
    /// Checkpoints whose signature and head hash were verified.
    pub checkpoints_checked: u64,
    /// Checkpoints before `start.seq`, which an incremental run cannot check.
    pub checkpoints_skipped: u64,
    /// The highest verified checkpoint seq. Records after it are protected
    /// by the hash chain only (see docs/audit.md, truncation).
    pub last_checkpoint_seq: Option<u64>,
    /// Where the checkpoint keys came from.
    pub key_source: KeySource,
}

impl VerifyReport {
    /// True when no break was found.
    pub fn is_ok(&self) -> bool {
        self.first_break.is_none()
    }

    /// The verified head (meaningful as a trusted start only if `is_ok`).
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.last_seq,
            hash: self.last_hash,
        }
    }
}

/// Errors in setting up a verifier (caller mistakes, not chain breaks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifierError {
    /// A checkpoint for another tenant was supplied.
    #[error("checkpoint for tenant {found} supplied to the verifier of tenant {expected}")]
    WrongTenant {
        /// The verifier's tenant.
        expected: Uuid,
        /// The checkpoint's tenant.
        found: Uuid,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SigStatus {
    Valid,
    Bad,
    UnknownKey,
}

#[derive(Clone, Debug)]
struct PendingCheckpoint {
    seq: u64,
    head_hash: Hash,
    key_id: KeyId,
    sig: SigStatus,
}

/// Verifies one tenant's chain from a stream of rows.
#[derive(Clone, Debug)]
pub struct Verifier {
    tenant_id: Uuid,
    start: ChainHead,
    head: ChainHead,
    records_checked: u64,
    first_break: Option<Break>,
    /// Sorted by seq; checkpoints with seq <= head.seq are already checked.
    pending: VecDeque<PendingCheckpoint>,
    checkpoints_checked: u64,
    checkpoints_skipped: u64,
    last_checkpoint_seq: Option<u64>,
    key_source: KeySource,
}

impl Verifier {
    /// A verifier without checkpoints. `start`: `None` verifies from genesis;
    /// `Some(head)` continues from a head you trust (a previous clean
    /// report's `head()`, or a verified checkpoint).
    pub fn new(tenant_id: Uuid, start: Option<ChainHead>) -> Self {
        let start = start.unwrap_or_else(|| ChainHead::genesis(tenant_id));
        Verifier {
            tenant_id,
            start,
            head: start,
            records_checked: 0,
            first_break: None,
            pending: VecDeque::new(),
            checkpoints_checked: 0,
            checkpoints_skipped: 0,
            last_checkpoint_seq: None,
            key_source: KeySource::Trusted,
        }
    }

    /// A verifier that also checks `checkpoints` (in any order) against
    /// `trusted_keys`. Every checkpoint must be signed by one of the keys
    /// (the one its key id names); keep retired public keys in the list to
    /// verify old checkpoints. Checkpoints before `start` cannot be checked
    /// and are counted as skipped; one exactly at `start` is compared with
    /// the start hash.
    pub fn with_checkpoints<'a>(
        tenant_id: Uuid,
        start: Option<ChainHead>,
        trusted_keys: &[VerifyingKey],
        checkpoints: impl IntoIterator<Item = &'a SignedCheckpoint>,
    ) -> Result<Self, VerifierError> {
        let mut v = Verifier::new(tenant_id, start);
        let keys: Vec<(KeyId, &VerifyingKey)> =
            trusted_keys.iter().map(|k| (KeyId::of(k), k)).collect();
        let mut pending = Vec::new();
        for cp in checkpoints {
            let c = &cp.checkpoint;
            if c.tenant_id != tenant_id {
                return Err(VerifierError::WrongTenant {
                    expected: tenant_id,
                    found: c.tenant_id,
                });
            }
            if c.seq < v.start.seq {
                v.checkpoints_skipped += 1;
                continue;
            }
            let mut candidates = keys.iter().filter(|(id, _)| *id == c.key_id).peekable();
            let sig = if candidates.peek().is_none() {
                SigStatus::UnknownKey
            } else if candidates.any(|(_, k)| verify_checkpoint(cp, k).is_ok()) {
                SigStatus::Valid
            } else {
                SigStatus::Bad
            };
            pending.push(PendingCheckpoint {
                seq: c.seq,
                head_hash: c.head_hash,
                key_id: c.key_id,
                sig,
            });
        }
        pending.sort_by_key(|p| p.seq);
        v.pending = pending.into();
        // Checkpoints exactly at the start are checked against it now.
        let start = v.start;
        v.check_checkpoints_at(start.seq, &start.hash);
        Ok(v)
    }

    pub(crate) fn set_key_source(&mut self, source: KeySource) {
        self.key_source = source;
    }

    /// The tenant being verified.
    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// The last verified head.
    pub fn head(&self) -> ChainHead {
        self.head
    }

    /// Verifies the next row. After the first break every call returns that
    /// same break and does nothing else.
    pub fn feed(&mut self, row: &StoredRow) -> Result<(), Break> {
        if let Some(b) = &self.first_break {
            return Err(b.clone());
        }
        let Some(expected) = self.head.seq.checked_add(1) else {
            return self.fail(u64::MAX, BreakReason::SeqOverflow);
        };
        if row.seq != expected {
            return self.fail(
                expected,
                BreakReason::Gap {
                    expected,
                    found: row.seq,
                },
            );
        }
        if row.tenant_id != self.tenant_id {
            return self.fail(expected, BreakReason::RowMismatch { field: "tenant_id" });
        }
        let computed = link_hash(
            self.tenant_id,
            expected,
            &self.head.hash,
            &record_digest(&row.record_bytes),
        );
        if computed != row.hash {
            return self.fail(
                expected,
                BreakReason::HashMismatch {
                    stored: row.hash,
                    computed,
                },
            );
        }
        // Same acceptance as `decode_record`, without materializing the record.
        match validate_record(&row.record_bytes) {
            Err(error) => return self.fail(expected, BreakReason::Undecodable { error }),
            Ok((tenant_id, _)) if tenant_id != row.tenant_id => {
                return self.fail(expected, BreakReason::RowMismatch { field: "tenant_id" });
            }
            Ok((_, seq)) if seq != row.seq => {
                return self.fail(expected, BreakReason::RowMismatch { field: "seq" });
            }
            Ok(_) => {}
        }
        self.head = ChainHead {
            seq: expected,
            hash: computed,
        };
        self.records_checked += 1;
        self.check_checkpoints_at(expected, &computed);
        match &self.first_break {
            Some(b) => Err(b.clone()),
            None => Ok(()),
        }
    }

    fn fail(&mut self, seq: u64, reason: BreakReason) -> Result<(), Break> {
        let b = Break { seq, reason };
        self.first_break = Some(b.clone());
        Err(b)
    }

    /// Checks all pending checkpoints at `seq` against `hash`.
    fn check_checkpoints_at(&mut self, seq: u64, hash: &Hash) {
        while self.first_break.is_none() && self.pending.front().is_some_and(|p| p.seq == seq) {
            let Some(cp) = self.pending.pop_front() else {
                break;
            };
            let reason = match cp.sig {
                SigStatus::UnknownKey => Some(BreakReason::UnknownKey {
                    checkpoint_seq: seq,
                    key_id: cp.key_id,
                }),
                SigStatus::Bad => Some(BreakReason::BadSignature {
                    checkpoint_seq: seq,
                    key_id: cp.key_id,
                }),
                SigStatus::Valid if cp.head_hash != *hash => {
                    Some(BreakReason::CheckpointMismatch {
                        checkpoint_seq: seq,
                        checkpoint_hash: cp.head_hash,
                        computed: *hash,
                        last_good_checkpoint: self.last_checkpoint_seq,
                    })
                }
                SigStatus::Valid => None,
            };
            match reason {
                Some(reason) => self.first_break = Some(Break { seq, reason }),
                None => {
                    self.checkpoints_checked += 1;
                    self.last_checkpoint_seq = Some(seq);
                }
            }
        }
    }

    /// Ends verification. Checkpoints beyond the last fed record are
    /// evaluated here: a validly signed one proves that records were removed
    /// from the end. (To verify only a prefix of a chain, pass only the
    /// checkpoints within it.)
    pub fn finish(mut self) -> VerifyReport {
        if self.first_break.is_none()
            && let Some(cp) = self.pending.pop_front()
        {
            let last_seq = self.head.seq;
            let (seq, reason) = match cp.sig {
                SigStatus::UnknownKey => (
                    cp.seq,
                    BreakReason::UnknownKey {
                        checkpoint_seq: cp.seq,
                        key_id: cp.key_id,
                    },
                ),
                SigStatus::Bad => (
                    cp.seq,
                    BreakReason::BadSignature {
                        checkpoint_seq: cp.seq,
                        key_id: cp.key_id,
                    },
                ),
                SigStatus::Valid => (
                    last_seq.saturating_add(1),
                    BreakReason::Truncated {
                        last_seq,
                        checkpoint_seq: cp.seq,
                    },
                ),
            };
            self.first_break = Some(Break { seq, reason });
        }
        VerifyReport {
            tenant_id: self.tenant_id,
            start: self.start,
            records_checked: self.records_checked,
            first_break: self.first_break,
            last_seq: self.head.seq,
            last_hash: self.head.hash,
            checkpoints_checked: self.checkpoints_checked,
            checkpoints_skipped: self.checkpoints_skipped,
            last_checkpoint_seq: self.last_checkpoint_seq,
            key_source: self.key_source,
        }
    }

    /// Like [`finish`](Self::finish), and also compares the stored chain
    /// head (e.g. the `audit_chain_heads` row) with the recomputed one. A
    /// stored head beyond the last record means records were removed from
    /// the end; one behind it means rows were added without moving the head.
    pub fn finish_with_head(self, stored: &ChainHead) -> VerifyReport {
        let mut report = self.finish();
        let computed = report.head();
        if report.first_break.is_none() && *stored != computed {
            let seq = if stored.seq > computed.seq {
                computed.seq.saturating_add(1)
            } else if stored.seq < computed.seq {
                stored.seq.saturating_add(1)
            } else {
                computed.seq
            };
            report.first_break = Some(Break {
                seq,
                reason: BreakReason::HeadMismatch {
                    stored: *stored,
                    computed,
                },
            });
        }
        report
    }
}
