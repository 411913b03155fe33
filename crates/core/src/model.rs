//! Records as the rest of the system sees them (storage-independent).

use crate::access::{ApiKeyScope, Role};
use crate::ids::{AnalystId, ApiKeyId, TenantId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// The slug of the tenant created on first start.
pub const DEFAULT_TENANT_SLUG: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Analyst {
    pub id: AnalystId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Home tenant: where this analyst's own records go by default.
    pub tenant_id: TenantId,
    /// Further tenants this analyst was granted (not including the home tenant).
    pub tenant_ids: Vec<TenantId>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl Analyst {
    /// Every tenant this analyst may see (admins see all; see [`crate::Scope`]).
    pub fn visible_tenants(&self) -> Vec<TenantId> {
        let mut v = vec![self.tenant_id];
        v.extend(
            self.tenant_ids
                .iter()
                .copied()
                .filter(|t| *t != self.tenant_id),
        );
        v
    }
}

/// What authentication needs about an analyst, beyond the public record.
#[derive(Debug, Clone)]
pub struct AnalystCredentials {
    pub analyst: Analyst,
    pub password_hash: String,
    /// Bumped on password change, reset and disable: tokens carry it, so older tokens die.
    pub token_version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The public part of the key (`bwk_xxxxxxxx`), enough to recognise it in logs.
    pub prefix: String,
    pub scopes: Vec<ApiKeyScope>,
    /// When set, the key may only post alerts for this webhook source.
    pub source: Option<String>,
    /// Requests must carry a valid `X-Bulwark-Signature` made with the key's signing secret
    /// (or, if `accept_key_signature`, an `X-Webhook-Signature`).
    pub signed: bool,
    /// Accepts OpenSOAR's `X-Webhook-Signature: sha256=<HMAC(key, body)>`; signatures become
    /// required for this key.
    pub accept_key_signature: bool,
    /// Overrides the server's per-key request rate limit.
    pub rate_limit: Option<RateLimit>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by: Option<AnalystId>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }

    /// Whether every request made with this key must be signed.
    pub fn requires_signature(&self) -> bool {
        self.signed || self.accept_key_signature
    }
}

/// A token bucket: `per_second` requests on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// What authentication needs about an API key.
#[derive(Debug, Clone)]
pub struct ApiKeyCredentials {
    pub key: ApiKey,
    pub digest: Vec<u8>,
    /// The HMAC secret for `X-Bulwark-Signature` (kept readable: verifying needs it).
    pub signing_secret: Option<crate::Secret<String>>,
}
