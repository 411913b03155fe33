//! Appending records to a tenant's chain.

use uuid::Uuid;

use crate::canonical::encode_record;
use crate::hash::{ChainHead, Hash, chain_hash, genesis_hash};
use crate::record::{AuditRecord, NewRecord};

/// Largest accepted record encoding (1 MiB). Larger records are refused by
/// [`append`]; put bulky data elsewhere and reference it by id.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// One stored row of the audit table, as the database returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRow {
    /// `tenant_id` column.
    pub tenant_id: Uuid,
    /// `seq` column.
    pub seq: u64,
    /// `record_bytes` column: the exact output of [`encode_record`].
    pub record_bytes: Vec<u8>,
    /// `hash` column: the chain link hash of this record.
    pub hash: Hash,
}

/// Why a record could not be appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The chain is at `u64::MAX`.
    #[error("audit chain sequence number exhausted")]
    SeqExhausted,
    /// The encoded record exceeds [`MAX_RECORD_BYTES`].
    #[error("audit record too large: {len} bytes (max {MAX_RECORD_BYTES})")]
    RecordTooLarge {
        /// Encoded length.
        len: usize,
    },
    /// A head with `seq == 0` whose hash is not the tenant's genesis hash:
    /// the caller passed another tenant's head or a corrupted one.
    #[error("chain head at seq 0 is not this tenant's genesis hash")]
    BadGenesisHead,
}

/// The result of appending one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The record as placed in the chain (tenant and seq filled in).
    pub record: AuditRecord,
    /// Its canonical bytes: store exactly these.
    pub record_bytes: Vec<u8>,
    /// Its chain link hash: store it next to the bytes.
    pub hash: Hash,
    /// The new chain head (`seq`, `hash` of this record).
    pub head: ChainHead,
}

impl Appended {
    /// The row to insert.
    pub fn to_row(&self) -> StoredRow {
        StoredRow {
            tenant_id: self.record.tenant_id,
            seq: self.record.seq,
            record_bytes: self.record_bytes.clone(),
            hash: self.hash,
        }
    }

    /// The row to insert, consuming `self`.
    pub fn into_row(self) -> StoredRow {
        StoredRow {
            tenant_id: self.record.tenant_id,
            seq: self.record.seq,
            record_bytes: self.record_bytes,
            hash: self.hash,
        }
    }
}

/// Places `new` right after `head` in `tenant_id`'s chain: assigns
/// `seq = head.seq + 1`, encodes, and hashes. Pure: it does not know what is
/// stored, so the caller must serialize appends per tenant (read and update
/// the head in the same transaction, e.g. `SELECT ... FOR UPDATE`).
pub fn append(tenant_id: Uuid, head: &ChainHead, new: NewRecord) -> Result<Appended, AppendError> {
    if head.seq == 0 && head.hash != genesis_hash(tenant_id) {
        return Err(AppendError::BadGenesisHead);
    }
    let seq = head.seq.checked_add(1).ok_or(AppendError::SeqExhausted)?;
    let record = new.into_record(tenant_id, seq);
    let record_bytes = encode_record(&record);
    if record_bytes.len() > MAX_RECORD_BYTES {
        return Err(AppendError::RecordTooLarge {
            len: record_bytes.len(),
        });
    }
    let hash = chain_hash(tenant_id, seq, &head.hash, &record_bytes);
    Ok(Appended {
        record,
        record_bytes,
        hash,
        head: ChainHead { seq, hash },
    })
}

/// Appends a batch of records to one tenant's chain, tracking the head.
#[derive(Clone, Debug)]
pub struct ChainBuilder {
    tenant_id: Uuid,
    head: ChainHead,
}

impl ChainBuilder {
    /// Continues `tenant_id`'s chain from `head` (`None` = empty chain).
    pub fn new(tenant_id: Uuid, head: Option<ChainHead>) -> Self {
        ChainBuilder {
            tenant_id,
            head: head.unwrap_or_else(|| ChainHead::genesis(tenant_id)),
        }
    }

    /// The tenant.
    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// The current head (the last appended record, or genesis).
    pub fn head(&self) -> ChainHead {
        self.head
    }

    /// Appends one record; on success the builder's head advances.
    pub fn append(&mut self, new: NewRecord) -> Result<Appended, AppendError> {
        let appended = append(self.tenant_id, &self.head, new)?;
        self.head = appended.head;
        Ok(appended)
    }
}
