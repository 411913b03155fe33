//! The per-tenant hash chain: genesis, link hash, chain head.
//!
//! ```text
//! h_0 = SHA-256("bulwark-audit-v1/genesis" || tenant_id[16])
//! h_n = SHA-256("bulwark-audit-v1" || tenant_id[16] || seq_be[8] || h_{n-1}[32] || SHA-256(record_bytes)[32])
//! ```
//!
//! `tenant_id` is the 16 raw bytes of the UUID (RFC 9562 byte order, i.e. the
//! order of the hex digits in its text form); `seq_be` is the record's
//! sequence number as an unsigned 64-bit big-endian integer. Every input after
//! the constant domain tag has a fixed length, so the concatenation is
//! unambiguous.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Domain tag of a chain link hash.
pub const CHAIN_DOMAIN: &[u8] = b"bulwark-audit-v1";
/// Domain tag of a tenant's genesis hash.
pub const GENESIS_DOMAIN: &[u8] = b"bulwark-audit-v1/genesis";

/// A SHA-256 digest. Its text form is exactly 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

/// A hash's text form was not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hash: expected 64 lowercase hex digits")]
pub struct HashParseError;

impl Hash {
    /// Length of a hash in bytes.
    pub const LEN: usize = 32;

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds a hash from a byte slice that must be exactly 32 bytes long
    /// (e.g. a `bytea` column).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashParseError> {
        <[u8; 32]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| HashParseError)
    }

    /// Lowercase hex form (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lowercase hex digits (uppercase is rejected so that
    /// every hash has exactly one text form).
    pub fn from_hex(s: &str) -> Result<Self, HashParseError> {
        let mut out = [0u8; 32];
        decode_lower_hex(s, &mut out).map_err(|()| HashParseError)?;
        Ok(Hash(out))
    }
}

/// Decodes `s`, which must be exactly `2 * out.len()` lowercase hex digits.
pub(crate) fn decode_lower_hex(s: &str, out: &mut [u8]) -> Result<(), ()> {
    if s.len() != out.len().saturating_mul(2)
        || !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(());
    }
    hex::decode_to_slice(s, out).map_err(|_| ())
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl FromStr for Hash {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(s)
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hash::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// The head of a tenant's chain: the last record's sequence number and link
/// hash. An empty chain's head is `(0, genesis_hash(tenant))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    /// Sequence number of the last record (0 for an empty chain).
    pub seq: u64,
    /// Link hash of the last record (the genesis hash for an empty chain).
    pub hash: Hash,
}

impl ChainHead {
    /// The head of an empty chain: `(0, genesis_hash(tenant_id))`.
    pub fn genesis(tenant_id: Uuid) -> Self {
        ChainHead {
            seq: 0,
            hash: genesis_hash(tenant_id),
        }
    }
}

/// `h_0 = SHA-256("bulwark-audit-v1/genesis" || tenant_id)`.
pub fn genesis_hash(tenant_id: Uuid) -> Hash {
    let mut h = Sha256::new();
    h.update(GENESIS_DOMAIN);
    h.update(tenant_id.as_bytes());
    Hash(h.finalize().into())
}

/// `SHA-256(record_bytes)`: the digest of one record's canonical bytes.
pub fn record_digest(record_bytes: &[u8]) -> Hash {
    Hash(Sha256::digest(record_bytes).into())
}

/// `h_n = SHA-256("bulwark-audit-v1" || tenant_id || seq (u64 BE) || prev || SHA-256(record_bytes))`.
pub fn chain_hash(tenant_id: Uuid, seq: u64, prev: &Hash, record_bytes: &[u8]) -> Hash {
    link_hash(tenant_id, seq, prev, &record_digest(record_bytes))
}

/// The link hash from an already computed record digest.
pub(crate) fn link_hash(tenant_id: Uuid, seq: u64, prev: &Hash, digest: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(CHAIN_DOMAIN);
    h.update(tenant_id.as_bytes());
    h.update(seq.to_be_bytes());
    h.update(prev.0);
    h.update(digest.0);
    Hash(h.finalize().into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_strict() {
        let h = Hash([0xab; 32]);
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert!(Hash::from_hex(&h.to_hex().to_uppercase()).is_err());
        assert!(Hash::from_hex("ab").is_err());
        assert!(Hash::from_hex(&format!("{}0", h.to_hex())).is_err());
        assert!(Hash::from_hex(&"zz".repeat(32)).is_err());
        assert!(Hash::from_slice(&[0u8; 31]).is_err());
    }

    /// Recomputes the genesis formula by hand from its documented parts.
    #[test]
    fn genesis_is_domain_separated() {
        let t = Uuid::from_u128(1);
        assert_ne!(genesis_hash(t), genesis_hash(Uuid::from_u128(2)));
        let mut manual = Sha256::new();
        manual.update(b"bulwark-audit-v1/genesis");
        manual.update([0u8; 15]);
        manual.update([1u8]);
        assert_eq!(genesis_hash(t).0, <[u8; 32]>::from(manual.finalize()));
    }

    #[test]
    fn chain_hash_matches_formula() {
        let t = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let prev = genesis_hash(t);
        let bytes = b"{}";
        let mut m = Vec::new();
        m.extend_from_slice(b"bulwark-audit-v1");
        m.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        m.extend_from_slice(&7u64.to_be_bytes());
        m.extend_from_slice(&prev.0);
        m.extend_from_slice(&Sha256::digest(bytes));
        assert_eq!(
            chain_hash(t, 7, &prev, bytes).0,
            <[u8; 32]>::from(Sha256::digest(&m))
        );
    }
}
