//! Signed checkpoints and the checkpoint signing key.
//!
//! A checkpoint states "tenant T's chain had head hash H at seq N", signed
//! with an Ed25519 key that lives outside the database. Someone who can
//! rewrite the database (and therefore recompute a fully consistent chain)
//! cannot produce a valid signature for the rewritten head.
//!
//! Signing bytes (99 bytes, all fields fixed length):
//!
//! ```text
//! "bulwark-audit-checkpoint-v1"   27 bytes ASCII
//! tenant_id                       16 bytes
//! seq                              8 bytes, u64 big-endian
//! head_hash                       32 bytes
//! signed_at                        8 bytes, i64 big-endian, microseconds since the Unix epoch
//! key_id                           8 bytes
//! ```
//!
//! `key_id` is the first 8 bytes of SHA-256 of the 32-byte Ed25519 public
//! key. Signatures are verified with `verify_strict` (RFC 8032 with the
//! stricter checks of ed25519-dalek: no small-order keys or components, no
//! malleable signatures).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::hash::{ChainHead, Hash, decode_lower_hex};
use crate::record::AuditTime;

/// Domain tag of checkpoint signing bytes.
pub const CHECKPOINT_DOMAIN: &[u8] = b"bulwark-audit-checkpoint-v1";

/// Length of [`Checkpoint::signing_bytes`].
pub const CHECKPOINT_SIGNING_LEN: usize = 27 + 16 + 8 + 32 + 8 + 8;

/// Largest key file accepted by [`CheckpointSigner::load`].
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// Identifies a signing key: the first 8 bytes of SHA-256(public key).
/// Text form: 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The key id of `key`.
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(digest.get(..8).unwrap_or(&[0u8; 8]));
        KeyId(id)
    }

    /// Lowercase hex (16 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 16 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let mut id = [0u8; 8];
        decode_lower_hex(s, &mut id).map_err(|()| KeyError::BadKeyId)?;
        Ok(KeyId(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        KeyId::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// The signed statement: tenant's chain head at `seq` was `head_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Tenant.
    pub tenant_id: Uuid,
    /// Sequence number of the chain head (0 = empty chain).
    pub seq: u64,
    /// Link hash at `seq` (the genesis hash when `seq == 0`).
    pub head_hash: Hash,
    /// When it was signed.
    pub signed_at: AuditTime,
    /// Which key signed it.
    pub key_id: KeyId,
}

impl Checkpoint {
    /// The exact bytes that are signed (see the module docs).
    pub fn signing_bytes(&self) -> [u8; CHECKPOINT_SIGNING_LEN] {
        let mut out = [0u8; CHECKPOINT_SIGNING_LEN];
        let parts: [&[u8]; 6] = [
            CHECKPOINT_DOMAIN,
            self.tenant_id.as_bytes(),
            &self.seq.to_be_bytes(),
            &self.head_hash.0,
            &self.signed_at.unix_micros().to_be_bytes(),
            &self.key_id.0,
        ];
        let mut pos = 0;
        for part in parts {
            let end = pos + part.len();
            if let Some(dst) = out.get_mut(pos..end) {
                dst.copy_from_slice(part);
            }
            pos = end;
        }
        debug_assert_eq!(pos, CHECKPOINT_SIGNING_LEN);
        out
    }
}

/// A checkpoint with its Ed25519 signature.
///
/// Serialized (serde) as one flat JSON object:
/// `{"tenant_id","seq","head_hash","signed_at","key_id","signature"}` with
/// hashes, key id and signature in lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "CheckpointWire", try_from = "CheckpointWire")]
pub struct SignedCheckpoint {
    /// The signed statement.
    pub checkpoint: Checkpoint,
    /// Ed25519 signature over [`Checkpoint::signing_bytes`].
    pub signature: Signature,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckpointWire {
    pub(crate) tenant_id: Uuid,
    pub(crate) seq: u64,
    pub(crate) head_hash: Hash,
    pub(crate) signed_at: AuditTime,
    pub(crate) key_id: KeyId,
    pub(crate) signature: String,
}

impl From<SignedCheckpoint> for CheckpointWire {
    fn from(s: SignedCheckpoint) -> Self {
        CheckpointWire {
            tenant_id: s.checkpoint.tenant_id,
            seq: s.checkpoint.seq,
            head_hash: s.checkpoint.head_hash,
            signed_at: s.checkpoint.signed_at,
            key_id: s.checkpoint.key_id,
            signature: hex::encode(s.signature.to_bytes()),
        }
    }
}

impl TryFrom<CheckpointWire> for SignedCheckpoint {
    type Error = KeyError;
    fn try_from(w: CheckpointWire) -> Result<Self, Self::Error> {
        let mut sig = [0u8; 64];
        decode_lower_hex(&w.signature, &mut sig).map_err(|()| KeyError::BadSignatureEncoding)?;
        Ok(SignedCheckpoint {
            checkpoint: Checkpoint {
                tenant_id: w.tenant_id,
                seq: w.seq,
                head_hash: w.head_hash,
                signed_at: w.signed_at,
                key_id: w.key_id,
            },
            signature: Signature::from_bytes(&sig),
        })
    }
}

/// Key handling and checkpoint signature errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("checkpoint key file I/O error: {0}")]
    Io(#[from] io::Error),
    /// The key file is readable or writable by group or others.
    #[error(
        "checkpoint key file {path} has mode {mode:o}; it must not be accessible by group or others (chmod 600)"
    )]
    InsecurePermissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The key path is not a regular file.
    #[error("checkpoint key path {0} is not a regular file")]
    NotAFile(String),
    /// The key file is larger than any valid key file.
    #[error("checkpoint key file {0} is too large to be a key")]
    FileTooLarge(String),
    /// Not a PKCS#8 PEM Ed25519 private key.
    #[error("not a PKCS#8 PEM Ed25519 private key")]
    BadPrivateKey,
    /// Not 64 lowercase hex digits of a valid Ed25519 public key.
    #[error("invalid Ed25519 public key")]
    BadPublicKey,
    /// The public key is a small-order ("weak") point.
    #[error("weak Ed25519 public key rejected")]
    WeakPublicKey,
    /// Not 16 lowercase hex digits.
    #[error("invalid key id")]
    BadKeyId,
    /// Not 128 lowercase hex digits.
    #[error("invalid signature encoding")]
    BadSignatureEncoding,
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Rng(String),
    /// The checkpoint names a different key than the one supplied.
    #[error("checkpoint key id {found} does not match the verifying key {expected}")]
    KeyIdMismatch {
        /// Key id of the supplied verifying key.
        expected: KeyId,
        /// Key id in the checkpoint.
        found: KeyId,
    },
    /// The signature does not verify.
    #[error("checkpoint signature is invalid")]
    BadSignature,
}

/// Where a loaded signer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// An existing key file was loaded.
    Loaded,
    /// No key file existed; a new key was generated and written.
    Created,
}

/// The checkpoint signing key (Ed25519). The secret is zeroized on drop and
/// never printed by `Debug`.
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: KeyId,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    fn from_signing_key(key: SigningKey) -> Self {
        let key_id = KeyId::of(&key.verifying_key());
        CheckpointSigner { key, key_id }
    }

    /// Generates a new key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Rng(e.to_string()))?;
        Ok(Self::from_signing_key(SigningKey::from_bytes(&seed)))
    }

    /// Parses a PKCS#8 PEM Ed25519 private key (`-----BEGIN PRIVATE KEY-----`,
    /// as written by this crate or `openssl genpkey -algorithm ed25519`).
    /// Use this for a key passed in an environment variable.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(Self::from_signing_key)
            .map_err(|_| KeyError::BadPrivateKey)
    }

    /// The key as PKCS#8 PEM (v2, with the public key).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| KeyError::BadPrivateKey)
    }

    /// Loads a PKCS#8 PEM key file. On Unix the file must be a regular file
    /// not accessible by group or others (mode `0600` or `0400`); otherwise
    /// loading is refused, like OpenSSH does for private keys. The checks
    /// are made on the opened file, not the path, so they cannot race.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let file = File::open(path)?;
        Self::load_open_file(file, path)
    }

    fn load_open_file(file: File, path: &Path) -> Result<Self, KeyError> {
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile(path.display().to_string()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KeyError::InsecurePermissions {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(KeyError::FileTooLarge(path.display().to_string()));
        }
        // Pre-size the buffer so reading never reallocates and leaves copies
        // of the secret behind.
        let cap = usize::try_from(MAX_KEY_FILE_BYTES).unwrap_or(16 * 1024) + 1;
        let mut pem = Zeroizing::new(String::with_capacity(cap));
        file.take(MAX_KEY_FILE_BYTES + 1).read_to_string(&mut pem)?;
        if pem.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(KeyError::FileTooLarge(path.display().to_string()));
        }
        Self::from_pkcs8_pem(&pem)
    }

    /// Loads the key file at `path`, or, if no file exists there, generates
    /// a new key and writes it with mode `0600` (created exclusively, so an
    /// existing file or symlink is never overwritten; the parent directory
    /// must exist). Returns whether the key was loaded or created: log the
    /// public key when it is created, and keep a copy of it away from the
    /// database.
    pub fn load_or_create(path: &Path) -> Result<(Self, KeyOrigin), KeyError> {
        match File::open(path) {
            Ok(file) => return Self::load_open_file(file, path).map(|s| (s, KeyOrigin::Loaded)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let signer = Self::generate()?;
        let pem = signer.to_pkcs8_pem()?;
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = match opts.open(path) {
            Ok(f) => f,
            // Another process created it in the meantime: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Self::load(path).map(|s| (s, KeyOrigin::Loaded));
            }
            Err(e) => return Err(e.into()),
        };
        let written = file
            .write_all(pem.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            drop(file);
            // Do not leave a truncated key behind; the file is ours
            // (create_new), so removing it is safe.
            let _ = fs::remove_file(path);
            return Err(e.into());
        }
        #[cfg(unix)]
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)?.sync_all()?;
        }
        Ok((signer, KeyOrigin::Created))
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as 64 lowercase hex digits.
    pub fn public_key_hex(&self) -> String {
        public_key_to_hex(&self.key.verifying_key())
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Signs a checkpoint of `tenant_id`'s chain at `head`.
    pub fn sign(
        &self,
        tenant_id: Uuid,
        head: &ChainHead,
        signed_at: AuditTime,
    ) -> SignedCheckpoint {
        let checkpoint = Checkpoint {
            tenant_id,
            seq: head.seq,
            head_hash: head.hash,
            signed_at,
            key_id: self.key_id,
        };
        let signature = self.key.sign(&checkpoint.signing_bytes());
        SignedCheckpoint {
            checkpoint,
            signature,
        }
    }
}

/// Hex form of a public key (64 lowercase hex digits).
pub fn public_key_to_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Parses 64 lowercase hex digits into a public key; rejects invalid and
/// small-order ("weak") points.
pub fn public_key_from_hex(s: &str) -> Result<VerifyingKey, KeyError> {
    let mut bytes = [0u8; 32];
    decode_lower_hex(s, &mut bytes).map_err(|()| KeyError::BadPublicKey)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadPublicKey)?;
    if key.is_weak() {
        return Err(KeyError::WeakPublicKey);
    }
    Ok(key)
}

/// Verifies `cp`'s signature with `key`. The checkpoint's key id must be
/// `key`'s; the signature is checked with `verify_strict`.
pub fn verify_checkpoint(cp: &SignedCheckpoint, key: &VerifyingKey) -> Result<(), KeyError> {
    let expected = KeyId::of(key);
    if cp.checkpoint.key_id != expected {
        return Err(KeyError::KeyIdMismatch {
            expected,
            found: cp.checkpoint.key_id,
        });
    }
    if key.is_weak() {
        return Err(KeyError::WeakPublicKey);
    }
    key.verify_strict(&cp.checkpoint.signing_bytes(), &cp.signature)
        .map_err(|_| KeyError::BadSignature)
}
