//! Encryption of integration secrets at rest.
//!
//! Secrets (API keys, passwords, webhook URLs that embed a token) are stored as one ciphertext
//! per integration instance: XChaCha20-Poly1305 (an AEAD: tampering is detected), a random
//! 24-byte nonce per encryption, and the instance's id as associated data, so a ciphertext
//! copied onto another row does not decrypt there.
//!
//! The key never lives in the database: `BULWARK_SECRET_KEY` or the key file `secret.key` in the
//! data directory (created with mode 0600 on first start). Every ciphertext names the key that
//! made it (`bwk1:<key id>:<base64>`, the key id being a hash of the key, never the key), so
//! the key can be rotated: the new key becomes current, the old one stays listed as *retired*
//! (still accepted for decryption), `bulwark secrets rotate` re-encrypts every row under the
//! current key, and the retired key can then be dropped. See docs/integrations.md.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::fmt;

/// The prefix of every ciphertext this module writes (a version for the format).
const PREFIX: &str = "bwk1";

/// A 32-byte key and its id.
#[derive(Clone)]
pub struct SecretKey {
    id: String,
    key: [u8; 32],
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"bulwark-secret-key-id:");
        h.update(key);
        let id = hex::encode(&h.finalize()[..8]);
        Self { id, key }
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self::from_bytes(rand::random::<[u8; 32]>())
    }

    /// 64 hex digits, or standard base64 of 32 bytes (as `openssl rand -hex 32` or
    /// `openssl rand -base64 32` print them). The error never contains the text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|_| KeyError::Format)?
        } else {
            B64.decode(t).map_err(|_| KeyError::Format)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Format)?;
        Ok(Self::from_bytes(key))
    }

    /// The key's id (16 hex digits of a hash of the key): safe to print and store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as 64 hex digits, for writing a key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.key).into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a key: expected 64 hex digits or base64 of 32 bytes")]
    Format,
}

/// Why a ciphertext could not be opened. Never contains secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the stored secret is not in a known format")]
    Format,
    #[error(
        "the stored secret was encrypted with key {0}, which is neither the current nor a retired key"
    )]
    UnknownKey(String),
    #[error("the stored secret does not decrypt (wrong key or tampered)")]
    Decrypt,
}

/// The current key (encrypts) and the retired keys (still decrypt).
#[derive(Clone, Debug)]
pub struct Keyring {
    current: SecretKey,
    retired: Vec<SecretKey>,
}

impl Keyring {
    pub fn new(current: SecretKey, retired: Vec<SecretKey>) -> Self {
        let retired = retired.into_iter().filter(|k| k.id != current.id).collect();
        Self { current, retired }
    }

    /// A keyring with a fresh random key: for tests, never for data that must survive.
    pub fn ephemeral() -> Self {
        Self::new(SecretKey::generate(), Vec::new())
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    pub fn retired_ids(&self) -> Vec<&str> {
        self.retired.iter().map(|k| k.id()).collect()
    }

    /// Encrypts `plain` for the row `aad` (the integration's id).
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> String {
        let nonce_bytes = rand::random::<[u8; 24]>();
        let nonce: XNonce = nonce_bytes.into();
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let ct = self
            .current
            .cipher()
            .encrypt(&nonce, Payload { msg: plain, aad })
            .unwrap_or_default();
        let mut blob = nonce_bytes.to_vec();
        blob.extend_from_slice(&ct);
        format!("{PREFIX}:{}:{}", self.current.id, B64.encode(blob))
    }

    /// The id of the key a ciphertext names.
    pub fn key_id_of(sealed: &str) -> Result<&str, SecretError> {
        let mut parts = sealed.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(PREFIX), Some(id), Some(_)) => Ok(id),
            _ => Err(SecretError::Format),
        }
    }

    /// Decrypts with the key the ciphertext names (current or retired).
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(PREFIX), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SecretError::Format);
        };
        let key = std::iter::once(&self.current)
            .chain(self.retired.iter())
            .find(|k| k.id == id)
            .ok_or_else(|| SecretError::UnknownKey(id.chars().take(16).collect()))?;
        let blob = B64.decode(b64).map_err(|_| SecretError::Format)?;
        if blob.len() < 24 + 16 {
            return Err(SecretError::Format);
        }
        let (nonce, ct) = blob.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| SecretError::Format)?;
        let nonce: XNonce = nonce.into();
        key.cipher()
            .decrypt(&nonce, Payload { msg: ct, aad })
            .map_err(|_| SecretError::Decrypt)
    }

    /// Whether a ciphertext is under the current key already.
    pub fn is_current(&self, sealed: &str) -> bool {
        Self::key_id_of(sealed).is_ok_and(|id| id == self.current.id)
    }

    /// Re-encrypts a ciphertext under the current key (for rotation).
    pub fn reseal(&self, sealed: &str, aad: &[u8]) -> Result<String, SecretError> {
        let plain = self.open(sealed, aad)?;
        Ok(self.seal(&plain, aad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_bind_to_the_row() {
        let ring = Keyring::ephemeral();
        let s = ring.seal(b"hunter2-api-key", b"row-1");
        assert!(s.starts_with("bwk1:"));
        assert!(!s.contains("hunter2"));
        assert_eq!(ring.open(&s, b"row-1").expect("opens"), b"hunter2-api-key");
        assert_eq!(ring.open(&s, b"row-2"), Err(SecretError::Decrypt));
        // Two encryptions of the same secret differ (random nonce).
        assert_ne!(s, ring.seal(b"hunter2-api-key", b"row-1"));
        // Tampering is detected.
        let mut t = s.clone().into_bytes();
        let last = t.len() - 3;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).expect("utf8");
        assert!(ring.open(&t, b"row-1").is_err());
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable_while_retired() {
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        let before = Keyring::new(old.clone(), vec![]);
        let sealed = before.seal(b"s3cret", b"id");
        let rotated = Keyring::new(new.clone(), vec![old.clone()]);
        assert!(!rotated.is_current(&sealed));
        assert_eq!(
            rotated.open(&sealed, b"id").expect("retired key"),
            b"s3cret"
        );
        let resealed = rotated.reseal(&sealed, b"id").expect("reseal");
        assert!(rotated.is_current(&resealed));
        let after = Keyring::new(new, vec![]);
        assert_eq!(after.open(&resealed, b"id").expect("current"), b"s3cret");
        match after.open(&sealed, b"id") {
            Err(SecretError::UnknownKey(id)) => assert_eq!(id, old.id()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_parse_and_never_print() {
        let k = SecretKey::generate();
        let again = SecretKey::parse(&k.to_hex()).expect("hex");
        assert_eq!(again.id(), k.id());
        let b64 = B64.encode(k.key);
        assert_eq!(SecretKey::parse(&b64).expect("b64").id(), k.id());
        assert!(!format!("{k:?}").contains(&k.to_hex()));
        assert_eq!(SecretKey::parse("short").err(), Some(KeyError::Format));
        assert_eq!(
            SecretKey::parse("zz")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            "not a key: expected 64 hex digits or base64 of 32 bytes"
        );
    }
}
