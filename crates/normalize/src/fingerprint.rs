//! Deduplication fingerprint for alerts that carry no `source_id`.

use sha2::{Digest, Sha256};

use crate::model::NormalizedAlert;

/// Domain separator and version of the fingerprint input; bump it if the definition changes.
const DOMAIN: &[u8] = b"bulwark-normalize/fingerprint/v1";

/// SHA-256 over, in order (every field length-prefixed, so no two different inputs collide by
/// concatenation):
///
/// 1. the tag `bulwark-normalize/fingerprint/v1`;
/// 2. the source name (`"wazuh"`);
/// 3. the detection key: `rule_id`, else `rule_name`, else `title`;
/// 4. the number of indicators, then each indicator as `kind:value`, sorted bytewise;
/// 5. a presence byte for `hostname` (0 absent, 1 present), then the hostname lower-cased.
///
/// Each length prefix is the byte length as a big-endian `u64`. Severity, times, descriptions
/// and ids are deliberately left out: the same detection on the same asset with the same
/// indicators is the same alert, however often it is re-sent.
pub fn fingerprint(alert: &NormalizedAlert) -> [u8; 32] {
    let mut h = Sha256::new();
    field(&mut h, DOMAIN);
    field(&mut h, alert.source.as_str().as_bytes());
    let key = alert
        .rule_id
        .as_deref()
        .or(alert.rule_name.as_deref())
        .unwrap_or(&alert.title);
    field(&mut h, key.as_bytes());

    let mut items: Vec<String> = alert
        .indicators
        .iter()
        .map(|i| format!("{}:{}", i.kind.as_str(), i.value))
        .collect();
    items.sort_unstable();
    items.dedup();
    h.update((items.len() as u64).to_be_bytes());
    for item in &items {
        field(&mut h, item.as_bytes());
    }

    match &alert.hostname {
        Some(host) => {
            h.update([1u8]);
            field(&mut h, host.to_lowercase().as_bytes());
        }
        None => h.update([0u8]),
    }
    h.finalize().into()
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// [`fingerprint`] as 64 lower-case hex characters (for storage in a text column).
pub fn fingerprint_hex(alert: &NormalizedAlert) -> String {
    hex::encode(fingerprint(alert))
}
