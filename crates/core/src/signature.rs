//! Webhook request signatures (pure logic: the HTTP layer hands in headers, body and clock).
//!
//! Two forms:
//! - `X-Bulwark-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
//!   keyed with a signing secret that is distinct from the API key. The timestamp is signed, so
//!   a captured request cannot be replayed more than [`TOLERANCE_SECS`] later. Several `v1=`
//!   entries may be given (a sender rolling its secret); one match is enough.
//! - `X-Webhook-Signature: sha256=<hex HMAC-SHA256(api key, raw body)>`, what OpenSOAR senders
//!   produce. It carries no timestamp, so it proves integrity and possession of the key but not
//!   freshness; a key accepts it only when created to.
//!
//! Comparisons are constant-time (`Mac::verify_slice`).

use hmac::{KeyInit, Mac};
use rand::RngCore;
use std::fmt;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Oldest (and furthest in the future) a signed timestamp may be.
pub const TOLERANCE_SECS: i64 = 300;
/// Marks a signing secret, so one pasted in the wrong place is recognisable.
pub const SIGNING_SECRET_MARKER: &str = "whsec_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is not `t=<digits>,v1=<64 hex>`.
    Malformed(&'static str),
    /// The signed timestamp is too old (or too far ahead): a replay or a wrong clock.
    Stale { age_secs: i64 },
    /// Well-formed, but no signature matches the body.
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed signature header: {why}"),
            Self::Stale { age_secs } if *age_secs < 0 => write!(
                f,
                "signature timestamp is {}s in the future (more than {TOLERANCE_SECS}s); check the sender's clock",
                -age_secs
            ),
            Self::Stale { age_secs } => write!(
                f,
                "signature timestamp is {age_secs}s old (more than {TOLERANCE_SECS}s): replayed or delayed request"
            ),
            Self::Mismatch => f.write_str("signature does not match the request body"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// A new signing secret: `whsec_` + 32 random bytes, base64url.
pub fn generate_signing_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{SIGNING_SECRET_MARKER}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// The `X-Bulwark-Signature` value for `body` signed at `timestamp` (what senders compute).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(m.finalize().into_bytes())
    )
}

/// Checks an `X-Bulwark-Signature` header against `body` at time `now` (unix seconds).
pub fn verify(header: &str, secret: &[u8], body: &[u8], now: i64) -> Result<(), SignatureError> {
    let mut timestamp: Option<&str> = None;
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("expected key=value pairs"))?;
        match k {
            "t" if timestamp.is_some() => {
                return Err(SignatureError::Malformed("more than one t="));
            }
            "t" => timestamp = Some(v),
            "v1" => candidates.push(
                decode_sha256_hex(v)
                    .ok_or(SignatureError::Malformed("v1 must be 64 hex digits"))?,
            ),
            // Unknown schemes are ignored, so senders can add newer ones alongside v1.
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed("missing t=<unix seconds>"))?;
    if t.is_empty() || t.len() > 12 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed("t must be unix seconds"));
    }
    let ts: i64 = t
        .parse()
        .map_err(|_| SignatureError::Malformed("t must be unix seconds"))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("missing v1=<hex HMAC-SHA256>"));
    }
    let age = now - ts;
    if age.abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale { age_secs: age });
    }
    let mut m = mac(secret);
    // The timestamp exactly as sent: re-formatting could differ (leading zeros).
    m.update(t.as_bytes());
    m.update(b".");
    m.update(body);
    let mut ok = false;
    for c in &candidates {
        // Every candidate is checked, so timing does not reveal which one matched.
        ok |= m.clone().verify_slice(c).is_ok();
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `X-Webhook-Signature` value OpenSOAR senders compute: `sha256=<hex HMAC(key, body)>`.
pub fn sign_with_key(api_key: &str, body: &[u8]) -> String {
    let mut m = mac(api_key.as_bytes());
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// Checks an `X-Webhook-Signature` header keyed with the API key itself.
pub fn verify_with_key(header: &str, api_key: &str, body: &[u8]) -> Result<(), SignatureError> {
    let hexsig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed("expected sha256=<hex>"))?;
    let sig = decode_sha256_hex(hexsig).ok_or(SignatureError::Malformed(
        "expected 64 hex digits after sha256=",
    ))?;
    let mut m = mac(api_key.as_bytes());
    m.update(body);
    m.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

fn decode_sha256_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    hex::decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"title":"x"}"#;

    #[test]
    fn signed_now_verifies() {
        let h = sign(SECRET, 1_700_000_000, BODY);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(verify(&h, SECRET, BODY, 1_700_000_000), Ok(()));
        assert_eq!(verify(&h, SECRET, BODY, 1_700_000_000 + 300), Ok(()));
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231 style
        // vector widely published; checks we sign exactly "<t>.<body>" with no extra bytes.
        let mut m = mac(b"key");
        m.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        let h = sign(b"key", 5, b"x");
        let mut m = mac(b"key");
        m.update(b"5.x");
        assert_eq!(
            h,
            format!("t=5,v1={}", hex::encode(m.finalize().into_bytes()))
        );
    }

    #[test]
    fn replay_and_future_are_refused() {
        let h = sign(SECRET, 1_000, BODY);
        assert_eq!(
            verify(&h, SECRET, BODY, 1_000 + 301),
            Err(SignatureError::Stale { age_secs: 301 })
        );
        assert_eq!(
            verify(&h, SECRET, BODY, 1_000 - 301),
            Err(SignatureError::Stale { age_secs: -301 })
        );
    }

    #[test]
    fn any_change_is_a_mismatch() {
        let h = sign(SECRET, 1_000, BODY);
        assert_eq!(
            verify(&h, SECRET, b"{\"title\":\"y\"}", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&h, b"other", BODY, 1_000),
            Err(SignatureError::Mismatch)
        );
        // Moving the timestamp invalidates the signature (it is signed).
        let forged = h.replace("t=1000", "t=1001");
        assert_eq!(
            verify(&forged, SECRET, BODY, 1_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn several_v1_entries_one_matching() {
        let good = sign(SECRET, 1_000, BODY);
        let v1 = good.split("v1=").nth(1).expect("v1");
        let h = format!("t=1000,v1={},v1={v1},v0=zz", "0".repeat(64));
        assert_eq!(verify(&h, SECRET, BODY, 1_000), Ok(()));
    }

    #[test]
    fn malformed_headers() {
        for h in [
            "",
            "garbage",
            "t=,v1=00",
            "v1=".to_string().as_str(),
            "t=12",
            "t=-5,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=1,v1=zz",
            "t=1,t=2,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=99999999999999999999,v1=0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(
                matches!(
                    verify(h, SECRET, BODY, 1),
                    Err(SignatureError::Malformed(_))
                ),
                "{h:?}"
            );
        }
    }

    #[test]
    fn key_signature_round_trip() {
        let key = "bwk_ABCDEFGH_secret";
        let h = sign_with_key(key, BODY);
        assert!(h.starts_with("sha256="));
        assert_eq!(verify_with_key(&h, key, BODY), Ok(()));
        assert_eq!(
            verify_with_key(&h, key, b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_with_key("md5=abc", key, BODY),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn secrets_are_distinct_and_marked() {
        let a = generate_signing_secret();
        let b = generate_signing_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(SIGNING_SECRET_MARKER));
        assert_eq!(a.len(), SIGNING_SECRET_MARKER.len() + 43);
    }
}
