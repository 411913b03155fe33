//! Ingest keys remembered between requests, so a webhook sender's every request does not read
//! its key from the database (one read per request was a sixth of a single-alert request's
//! cost). Only the ingest route uses it, and only because the ingest writer checks, once per
//! gathered batch and just before writing, that every key in the batch is still usable: a key
//! revoked (by the API or the CLI, on any node) stops storing alerts exactly as soon as it did
//! when each request read it. Unknown prefixes are never remembered (made-up keys cannot fill
//! the cache); entries live [`KeyCache::TTL`] and the cache is emptied when it grows past
//! [`KeyCache::MAX`].

use bulwark_core::model::ApiKeyCredentials;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Instant, Arc<ApiKeyCredentials>)>>,
}

impl KeyCache {
    /// How long a key read from the database is used without reading it again.
    pub const TTL: Duration = Duration::from_secs(30);
    /// Entries kept at most.
    pub const MAX: usize = 10_000;

    pub fn get(&self, prefix: &str, now: Instant) -> Option<Arc<ApiKeyCredentials>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(prefix)
            .filter(|(at, _)| now.duration_since(*at) < Self::TTL)
            .map(|(_, c)| c.clone())
    }

    pub fn insert(&self, prefix: &str, creds: Arc<ApiKeyCredentials>, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::MAX {
            entries.clear();
        }
        entries.insert(prefix.to_owned(), (now, creds));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_core::model::ApiKey;

    fn creds() -> Arc<ApiKeyCredentials> {
        Arc::new(ApiKeyCredentials {
            key: ApiKey {
                id: bulwark_core::ids::ApiKeyId(uuid::Uuid::now_v7()),
                tenant_id: bulwark_core::TenantId(uuid::Uuid::now_v7()),
                name: "k".into(),
                prefix: "abcdefgh".into(),
                scopes: vec![],
                source: None,
                signed: false,
                accept_key_signature: false,
                rate_limit: None,
                expires_at: None,
                revoked_at: None,
                created_by: None,
                created_at: bulwark_core::time::now(),
                last_used_at: None,
            },
            digest: vec![],
            signing_secret: None,
        })
    }

    #[test]
    fn entries_expire_and_the_cache_is_bounded() {
        let cache = KeyCache::default();
        let t0 = Instant::now();
        cache.insert("abcdefgh", creds(), t0);
        assert!(cache.get("abcdefgh", t0 + Duration::from_secs(1)).is_some());
        assert!(cache.get("abcdefgh", t0 + KeyCache::TTL).is_none());
        assert!(cache.get("zzzzzzzz", t0).is_none());
        for i in 0..KeyCache::MAX {
            cache.insert(&format!("{i:08}"), creds(), t0);
        }
        assert!(
            cache.entries.lock().map(|e| e.len()).unwrap_or(0) <= KeyCache::MAX,
            "bounded"
        );
    }
}
