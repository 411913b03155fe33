//! Shared application state: the store, token issuer, throttles and in-memory usage counters.

use crate::auth::TokenIssuer;
use crate::password_pool::PasswordPool;
use crate::throttle::{LoginThrottle, ThrottlePolicy};
use bulwark_core::{ApiKeyId, Secret, TenantId};
use bulwark_store::Store;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Settings the API layer needs (the binary builds this from its configuration).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// HS256 signing key for access tokens.
    pub jwt_secret: Secret<Vec<u8>>,
    pub token_ttl: Duration,
    pub body_limit: usize,
    pub login_throttle: ThrottlePolicy,
    /// The `default` tenant: admins whose home it is are platform admins (every tenant);
    /// admins homed elsewhere administer only their own tenants.
    pub platform_tenant: TenantId,
    pub audit: AuditKeys,
    /// Alerts without a source id are deduplicated by fingerprint within this window.
    pub dedup_window: chrono::Duration,
    pub limits: Limits,
    /// How often a node checks whether playbooks changed elsewhere (its own changes apply at
    /// once).
    pub playbook_refresh: Duration,
    /// Integration types, the secrets keyring and the outbound policy. Its catalog (built-in
    /// and integration actions) validates playbooks. `new` gives an ephemeral key (tests);
    /// the binary sets the real one.
    pub integrations: Arc<bulwark_integrations::Integrations>,
}

/// Abuse limits and the dead-letter bound.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests per API key (a key's own `rate_limit` overrides it).
    pub key_rate: bulwark_core::model::RateLimit,
    /// Failed authentications per client IP per minute, and the burst allowed.
    pub auth_failures_per_minute: u32,
    pub auth_failure_burst: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a proxy that
    /// appends it) instead of the TCP peer.
    pub trust_forwarded_for: bool,
    /// Rejected payloads kept per tenant (newest first).
    pub dead_letters_per_tenant: u32,
}

impl Limits {
    /// The failed-authentication bucket of one client address.
    pub fn auth_failure_policy(&self) -> crate::rate_limit::BucketPolicy {
        crate::rate_limit::BucketPolicy::per_minute(
            self.auth_failures_per_minute,
            self.auth_failure_burst,
        )
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            key_rate: bulwark_core::model::RateLimit {
                per_second: 500,
                burst: 1000,
            },
            auth_failures_per_minute: 30,
            auth_failure_burst: 60,
            trust_forwarded_for: false,
            dead_letters_per_tenant: 10_000,
        }
    }
}

impl ApiConfig {
    pub fn new(jwt_secret: Vec<u8>, platform_tenant: TenantId) -> Self {
        Self {
            platform_tenant,
            audit: AuditKeys::default(),
            dedup_window: chrono::Duration::hours(24),
            limits: Limits::default(),
            playbook_refresh: Duration::from_secs(1),
            integrations: Arc::new(bulwark_integrations::Integrations::for_tests(&[])),
            jwt_secret: Secret::new(jwt_secret),
            token_ttl: Duration::from_secs(8 * 3600),
            body_limit: DEFAULT_BODY_LIMIT,
            login_throttle: ThrottlePolicy::default(),
        }
    }
}

/// Checkpoint signing for the audit trail: the key lives outside the database.
#[derive(Clone, Default)]
pub struct AuditKeys {
    pub signer: Option<Arc<bulwark_audit::CheckpointSigner>>,
    /// Earlier public keys whose checkpoints must still verify (after a key rotation).
    pub retired: Vec<bulwark_audit::VerifyingKey>,
}

impl AuditKeys {
    pub fn trusted_keys(&self) -> Vec<bulwark_audit::VerifyingKey> {
        let mut keys = self.retired.clone();
        if let Some(s) = &self.signer {
            keys.push(s.verifying_key());
        }
        keys
    }
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys")
            .field("signer", &self.signer.as_ref().map(|s| s.public_key_hex()))
            .field("retired", &self.retired.len())
            .finish()
    }
}

/// `last_used_at` of API keys, kept in memory and flushed in batches, so authenticating a
/// request never writes to the database.
#[derive(Default)]
pub struct KeyUsage {
    pending: Mutex<HashMap<ApiKeyId, DateTime<Utc>>>,
}

impl KeyUsage {
    pub fn record(&self, id: ApiKeyId, at: DateTime<Utc>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.insert(id, at);
    }

    pub fn take(&self) -> Vec<(ApiKeyId, DateTime<Utc>)> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.drain().collect()
    }

    /// Writes what was recorded since the last flush.
    pub async fn flush(&self, store: &Store) {
        let batch = self.take();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.touch_api_keys(&batch).await {
            tracing::warn!(error = %e, "could not record API key usage; will retry");
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (id, at) in batch {
                let slot = p.entry(id).or_insert(at);
                if *slot < at {
                    *slot = at;
                }
            }
        }
    }
}

pub struct Inner {
    pub store: Store,
    pub tokens: TokenIssuer,
    pub throttle: LoginThrottle,
    pub key_usage: KeyUsage,
    /// Ingest keys remembered between requests (see `key_cache`).
    pub key_cache: crate::key_cache::KeyCache,
    pub metrics: Option<PrometheusHandle>,
    pub passwords: PasswordPool,
    pub ingest: crate::ingest_writer::IngestWriter,
    pub ingest_stats: crate::ingest_stats::IngestStats,
    /// Request budget per valid API key.
    pub key_buckets: crate::rate_limit::Buckets<ApiKeyId>,
    /// Failed-authentication budget per client address.
    pub auth_failures: crate::rate_limit::Buckets<std::net::IpAddr>,
    /// Enabled playbooks' triggers, matched at ingestion and on changes.
    pub triggers: crate::triggers::Triggers,
    pub config: ApiConfig,
}

/// Cheap to clone; handed to every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(store: Store, config: ApiConfig, metrics: Option<PrometheusHandle>) -> Self {
        let ingest = crate::ingest_writer::IngestWriter::start(store.clone(), config.dedup_window);
        Self(Arc::new(Inner {
            store,
            tokens: TokenIssuer::new(config.jwt_secret.expose(), config.token_ttl),
            throttle: LoginThrottle::new(config.login_throttle),
            key_usage: KeyUsage::default(),
            key_cache: Default::default(),
            metrics,
            passwords: PasswordPool::per_core(),
            ingest,
            ingest_stats: Default::default(),
            key_buckets: crate::rate_limit::Buckets::new(100_000),
            auth_failures: crate::rate_limit::Buckets::new(100_000),
            triggers: crate::triggers::Triggers::with_catalog(
                config.playbook_refresh,
                config.integrations.catalog().clone(),
            ),
            config,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
