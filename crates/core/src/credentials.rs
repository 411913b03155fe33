//! Credentials: password hashing (argon2id), API key format, random secrets.
//!
//! API key format: `bwk_<8 lowercase base32 chars>_<43 base64url chars>`. The first part
//! (`bwk_xxxxxxxx`) is the public *prefix*: it is stored in clear, shown in listings and used to
//! find the key row. Only SHA-256 of the whole key is stored; the comparison is constant-time.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const API_KEY_MARKER: &str = "bwk_";
const PREFIX_BODY_LEN: usize = 8;
const SECRET_BYTES: usize = 32;
const SECRET_B64_LEN: usize = 43;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Random bytes from the OS-seeded CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    buf
}

/// A random password for bootstrap and resets: 24 characters from an unambiguous alphabet.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let bytes = random_bytes::<24>();
    bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

/// A freshly generated API key. `secret` is shown to the user once and never stored.
pub struct NewApiKey {
    pub prefix: String,
    pub secret: String,
    pub digest: [u8; 32],
}

pub fn generate_api_key() -> NewApiKey {
    let prefix_bytes = random_bytes::<PREFIX_BODY_LEN>();
    let mut prefix = String::from(API_KEY_MARKER);
    prefix.extend(
        prefix_bytes
            .iter()
            .map(|b| BASE32[(*b as usize) % 32] as char),
    );
    let secret_part = URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>());
    let secret = format!("{prefix}_{secret_part}");
    let digest = api_key_digest(&secret);
    NewApiKey {
        prefix,
        secret,
        digest,
    }
}

pub fn api_key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The lookup prefix of a presented key, if it is shaped like one of ours.
pub fn api_key_prefix(presented: &str) -> Option<&str> {
    let prefix_len = API_KEY_MARKER.len() + PREFIX_BODY_LEN;
    if presented.len() != prefix_len + 1 + SECRET_B64_LEN || !presented.starts_with(API_KEY_MARKER)
    {
        return None;
    }
    let (prefix, rest) = presented.split_at_checked(prefix_len)?;
    let body = &prefix[API_KEY_MARKER.len()..];
    if !body.bytes().all(|b| BASE32.contains(&b)) {
        return None;
    }
    let secret = rest.strip_prefix('_')?;
    if !secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some(prefix)
}

/// Constant-time check of a presented key against a stored digest.
pub fn api_key_matches(presented: &str, stored_digest: &[u8]) -> bool {
    let d = api_key_digest(presented);
    stored_digest.len() == d.len() && bool::from(d.as_slice().ct_eq(stored_digest))
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

/// argon2id with the crate's defaults (OWASP's recommended m=19 MiB, t=2, p=1), random salt.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| HashError)
}

/// Verifies a password against a PHC string. A malformed stored hash verifies as false.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A reusable argon2 work area. argon2id with the default parameters needs 19 MiB per hash;
/// allocating it per login lets the allocator's per-thread arenas keep hundreds of megabytes
/// after a burst of logins. A few long-lived hashing threads, each owning one of these, keep
/// memory flat (see the API's password pool).
pub struct HashMemory(Vec<argon2::Block>);

/// The most memory a stored hash may ask for when verified (64 MiB): a tampered or foreign
/// PHC string cannot make verification allocate without bound.
const MAX_VERIFY_BLOCKS: usize = 64 * 1024;

impl HashMemory {
    /// Empty until first used: an idle server does not pay for it.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    fn blocks(&mut self, count: usize) -> &mut [argon2::Block] {
        if self.0.len() < count {
            self.0.resize(count, argon2::Block::default());
        }
        &mut self.0[..count]
    }
}

impl Default for HashMemory {
    fn default() -> Self {
        Self::new()
    }
}

/// [`hash_password`] in a caller-provided work area. Produces the same PHC string format.
pub fn hash_password_in(mem: &mut HashMemory, password: &str) -> Result<String, HashError> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    use argon2::{Algorithm, Params, Version};
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = random_bytes::<16>();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            mem.blocks(params.block_count()),
        )
        .map_err(|_| HashError)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|_| HashError)?,
        salt: Some(Salt::new(&salt).map_err(|_| HashError)?),
        hash: Some(Output::new(&out).map_err(|_| HashError)?),
    };
    Ok(phc.to_string())
}

/// [`verify_password`] in a caller-provided work area. Only argon2id hashes verify; a malformed
/// hash, another algorithm or excessive parameters verify as false.
pub fn verify_password_in(mem: &mut HashMemory, password: &str, phc: &str) -> bool {
    use argon2::{Algorithm, Params, Version};
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    if params.block_count() > MAX_VERIFY_BLOCKS {
        return false;
    }
    let argon = Argon2::new(Algorithm::Argon2id, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    if argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            mem.blocks(params.block_count()),
        )
        .is_err()
    {
        return false;
    }
    bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// [`dummy_password_hash`], computed (once per process) in a caller-provided work area.
pub fn dummy_password_hash_in(mem: &mut HashMemory) -> &'static str {
    use std::sync::OnceLock;
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password_in(mem, &generate_password()).unwrap_or_default())
}

/// A valid hash of a random password, used to spend the same time on a login for a username
/// that does not exist as on one that does (no timing oracle for usernames).
pub fn dummy_password_hash() -> &'static str {
    use std::sync::OnceLock;
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&generate_password()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match() {
        let k = generate_api_key();
        assert!(k.secret.starts_with("bwk_"));
        assert_eq!(api_key_prefix(&k.secret), Some(k.prefix.as_str()));
        assert!(api_key_matches(&k.secret, &k.digest));
        let mut tampered = k.secret.clone();
        tampered.pop();
        tampered.push(if k.secret.ends_with('A') { 'B' } else { 'A' });
        assert!(!api_key_matches(&tampered, &k.digest));
        assert!(!api_key_matches(&k.secret, &k.digest[..31]));
    }

    #[test]
    fn key_carries_at_least_32_random_bytes() {
        let k = generate_api_key();
        let secret = &k.secret[k.prefix.len() + 1..];
        assert_eq!(
            URL_SAFE_NO_PAD.decode(secret).map(|b| b.len()).ok(),
            Some(32)
        );
        assert_ne!(generate_api_key().secret, k.secret);
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        for bad in [
            "",
            "bwk_",
            "bwk_abcdefgh",
            "xyz_abcdefgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "bwk_ABCDEFGH_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "bwk_abcdefgh-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "bwk_abcdefgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!",
            "bwk_abcdéfgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(api_key_prefix(bad), None, "{bad}");
        }
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not-a-phc-string"));
    }

    #[test]
    fn hashing_in_a_reused_work_area_matches_the_standard_format() {
        let mut mem = HashMemory::new();
        let h = hash_password_in(&mut mem, "correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        // Interchangeable with the allocating functions, both ways.
        assert!(verify_password("correct horse battery", &h));
        let std_hash = hash_password("correct horse battery").expect("hash");
        assert!(verify_password_in(
            &mut mem,
            "correct horse battery",
            &std_hash
        ));
        assert!(verify_password_in(&mut mem, "correct horse battery", &h));
        assert!(!verify_password_in(&mut mem, "correct horse batterY", &h));
        assert!(!verify_password_in(&mut mem, "x", "garbage"));
        // Other algorithms and absurd memory costs are refused.
        let argon2i = h.replacen("argon2id", "argon2i", 1);
        assert!(!verify_password_in(
            &mut mem,
            "correct horse battery",
            &argon2i
        ));
        let huge = h.replacen("m=19456", "m=4000000", 1);
        assert!(!verify_password_in(
            &mut mem,
            "correct horse battery",
            &huge
        ));
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a, generate_password());
    }
}
