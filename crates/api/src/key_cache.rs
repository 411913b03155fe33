//! A short-lived cache of API key credentials by their public prefix. Without it every webhook
//! request reads its key from the database before doing anything else, which is a measurable
//! share of the ingest hot path.
//!
//! Entries live [`TTL`]: a key revoked through this node stops working at once (revocation
//! clears the cache); on other nodes of a PostgreSQL deployment it stops within the TTL.
//! Unknown prefixes are never cached, so made-up keys cannot fill it (and the per-address
//! failure budget limits them anyway). Expiry is checked on every use from the cached record.

use bulwark_core::model::ApiKeyCredentials;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TTL: Duration = Duration::from_secs(2);
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Instant, Arc<ApiKeyCredentials>)>>,
}

impl KeyCache {
    pub fn get(&self, prefix: &str, now: Instant) -> Option<Arc<ApiKeyCredentials>> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(prefix) {
            Some((at, creds)) if now.duration_since(*at) < TTL => Some(creds.clone()),
            _ => None,
        }
    }

    pub fn put(&self, prefix: &str, creds: Arc<ApiKeyCredentials>, now: Instant) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (at, _)| now.duration_since(*at) < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(prefix.to_string(), (now, creds));
    }

    /// Forgets everything (a key was revoked or changed).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_core::model::ApiKey;
    use bulwark_core::{ApiKeyId, TenantId};

    fn creds() -> Arc<ApiKeyCredentials> {
        Arc::new(ApiKeyCredentials {
            key: ApiKey {
                id: ApiKeyId::new(),
                tenant_id: TenantId::new(),
                name: "k".into(),
                prefix: "abcdefgh".into(),
                scopes: vec![],
                source: None,
                created_at: chrono::Utc::now(),
                expires_at: None,
                revoked_at: None,
                last_used_at: None,
                created_by: None,
                signed: false,
                accept_key_signature: false,
                rate_limit: None,
            },
            digest: vec![0; 32],
            signing_secret: None,
        })
    }

    #[test]
    fn entries_expire_and_clear() {
        let cache = KeyCache::default();
        let t0 = Instant::now();
        cache.put("abcdefgh", creds(), t0);
        assert!(
            cache
                .get("abcdefgh", t0 + Duration::from_millis(500))
                .is_some()
        );
        assert!(cache.get("abcdefgh", t0 + TTL).is_none());
        assert!(cache.get("other", t0).is_none());
        cache.put("abcdefgh", creds(), t0);
        cache.clear();
        assert!(cache.get("abcdefgh", t0).is_none());
    }
}
