//! Bulwark's domain types and pure logic. Nothing here performs I/O or needs an async runtime,
//! so every rule (who may do what, which tenant a caller sees, what a valid key looks like) is
//! unit-tested without a server or a database.

pub mod access;
pub mod alert_change;
pub mod credentials;
pub mod ids;
pub mod incident;
pub mod mentions;
pub mod model;
pub mod secret;
pub mod signature;
pub mod time;
pub mod triage;
pub mod validate;

pub use access::{
    AlertAccess, ApiKeyScope, Caller, Permission, PermissionSet, Principal, Role, Scope,
};
pub use ids::{AnalystId, ApiKeyId, TenantId};
pub use secret::Secret;
