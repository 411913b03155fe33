//! Who may do what, and in which tenants.
//!
//! Permissions are a closed set; roles and API-key scopes map to a [`PermissionSet`]. Unknown
//! role or scope names fail to parse, so a typo in the database or a request denies access
//! instead of granting it.

use crate::ids::{AnalystId, ApiKeyId, TenantId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! permissions {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// One thing a caller may be allowed to do.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Permission { $($variant),+ }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name),+ }
            }
        }

        impl FromStr for Permission {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Permission::$variant),)+
                    _ => Err(UnknownName::new("permission", s)),
                }
            }
        }
    };
}

permissions! {
    AlertsRead => "alerts:read",
    AlertsUpdate => "alerts:update",
    AlertsDelete => "alerts:delete",
    IncidentsRead => "incidents:read",
    IncidentsCreate => "incidents:create",
    IncidentsUpdate => "incidents:update",
    IncidentsDelete => "incidents:delete",
    PlaybooksRead => "playbooks:read",
    PlaybooksManage => "playbooks:manage",
    PlaybooksExecute => "playbooks:execute",
    ApprovalsDecide => "approvals:decide",
    IntegrationsRead => "integrations:read",
    IntegrationsManage => "integrations:manage",
    ObservablesRead => "observables:read",
    ObservablesManage => "observables:manage",
    AiUse => "ai:use",
    AnalystsManage => "analysts:manage",
    ApiKeysManage => "api_keys:manage",
    SettingsManage => "settings:manage",
    TenantsManage => "tenants:manage",
    AuditRead => "audit:read",
    WebhooksIngest => "webhooks:ingest",
    IngestManage => "ingest:manage",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A name that is not in a closed vocabulary (role, permission, scope).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
}

impl UnknownName {
    fn new(kind: &'static str, value: &str) -> Self {
        Self {
            kind,
            value: value.chars().take(64).collect(),
        }
    }
}

/// A set of permissions, as a bit set (there are fewer than 64).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct PermissionSet(u64);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn of(perms: &[Permission]) -> Self {
        perms.iter().fold(Self::EMPTY, |s, p| s.with(*p))
    }

    pub fn with(self, p: Permission) -> Self {
        Self(self.0 | (1u64 << p as u8))
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & (1u64 << p as u8) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|p| p.as_str()))
            .finish()
    }
}

/// An analyst's role.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, in every tenant (platform administrator).
    Admin,
    /// Day-to-day SOC work; no administration (keeps observables:manage).
    Analyst,
    /// Read-only.
    Viewer,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Admin, Role::Analyst, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
        }
    }

    /// The permission table. Admin has all; analyst has all but the `*:manage` administration
    /// permissions (it keeps `observables:manage`) and the `*:delete` ones; viewer has the
    /// `:read` ones.
    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        match self {
            Role::Admin => PermissionSet::of(Permission::ALL),
            Role::Analyst => PermissionSet::of(&[
                AlertsRead,
                AlertsUpdate,
                IncidentsRead,
                IncidentsCreate,
                IncidentsUpdate,
                PlaybooksRead,
                PlaybooksExecute,
                ApprovalsDecide,
                IntegrationsRead,
                ObservablesRead,
                ObservablesManage,
                AiUse,
                AuditRead,
            ]),
            Role::Viewer => PermissionSet::of(&[
                AlertsRead,
                IncidentsRead,
                PlaybooksRead,
                IntegrationsRead,
                ObservablesRead,
                AuditRead,
            ]),
        }
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "analyst" => Ok(Role::Analyst),
            "viewer" => Ok(Role::Viewer),
            _ => Err(UnknownName::new("role", s)),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API key may be used for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ApiKeyScope {
    /// Post alerts to the webhook endpoints, nothing else.
    #[serde(rename = "webhooks:ingest")]
    WebhooksIngest,
    /// Read what a viewer can read.
    #[serde(rename = "read")]
    Read,
    /// Change what an analyst can change (never administration).
    #[serde(rename = "write")]
    Write,
}

impl ApiKeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyScope::WebhooksIngest => "webhooks:ingest",
            ApiKeyScope::Read => "read",
            ApiKeyScope::Write => "write",
        }
    }

    pub fn permissions(self) -> PermissionSet {
        match self {
            ApiKeyScope::WebhooksIngest => PermissionSet::of(&[Permission::WebhooksIngest]),
            ApiKeyScope::Read => Role::Viewer.permissions(),
            ApiKeyScope::Write => Role::Analyst.permissions(),
        }
    }

    pub fn set_permissions(scopes: &[ApiKeyScope]) -> PermissionSet {
        scopes
            .iter()
            .fold(PermissionSet::EMPTY, |s, sc| s.union(sc.permissions()))
    }
}

impl FromStr for ApiKeyScope {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "webhooks:ingest" => Ok(ApiKeyScope::WebhooksIngest),
            "read" => Ok(ApiKeyScope::Read),
            "write" => Ok(ApiKeyScope::Write),
            _ => Err(UnknownName::new("api key scope", s)),
        }
    }
}

/// The tenants a caller may see. Every store query that touches tenant data takes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Platform administrators: every tenant.
    AllTenants,
    /// Everyone else: an explicit list (home tenant plus grants). Never empty for a real caller;
    /// an empty list matches nothing.
    Tenants(Vec<TenantId>),
}

impl Scope {
    pub fn single(t: TenantId) -> Self {
        Scope::Tenants(vec![t])
    }

    pub fn allows(&self, t: TenantId) -> bool {
        match self {
            Scope::AllTenants => true,
            Scope::Tenants(ts) => ts.contains(&t),
        }
    }

    /// `None` when unrestricted, else the tenant list for a SQL `IN (...)` filter.
    pub fn tenant_filter(&self) -> Option<&[TenantId]> {
        match self {
            Scope::AllTenants => None,
            Scope::Tenants(ts) => Some(ts),
        }
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Analyst { id: AnalystId, username: String },
    ApiKey { id: ApiKeyId, name: String },
}

/// An authenticated caller: identity, permissions and tenant scope, resolved once per request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub role: Option<Role>,
    pub permissions: PermissionSet,
    pub scope: Scope,
    /// Where records this caller creates go when the request names no tenant.
    pub home_tenant: TenantId,
    /// API keys bound to one webhook source may post alerts for that source only.
    pub source_binding: Option<String>,
}

impl Caller {
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    pub fn analyst_id(&self) -> Option<AnalystId> {
        match &self.principal {
            Principal::Analyst { id, .. } => Some(*id),
            Principal::ApiKey { .. } => None,
        }
    }

    /// The tenant a new record goes to: the requested one if it is in scope, else the home
    /// tenant. `None` means the requested tenant is not visible to the caller.
    pub fn target_tenant(&self, requested: Option<TenantId>) -> Option<TenantId> {
        match requested {
            None => Some(self.home_tenant),
            Some(t) if self.scope.allows(t) => Some(t),
            Some(_) => None,
        }
    }

    /// A short label for logs and audit records.
    pub fn label(&self) -> String {
        match &self.principal {
            Principal::Analyst { username, .. } => username.clone(),
            Principal::ApiKey { name, .. } => format!("api-key:{name}"),
        }
    }
}

/// Who is reading or changing alerts, for tag-based access: the tenant scope, whether tag rules
/// apply at all (administrators bypass them), and the subjects the tenant's allow-lists may
/// name (`user:<id>`, `role:<role>`, `api_key:<id>`). The store turns this into SQL; handlers
/// never filter by tag themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertAccess {
    pub scope: Scope,
    pub bypass_tags: bool,
    pub subjects: Vec<String>,
}

impl AlertAccess {
    pub fn of(caller: &Caller) -> Self {
        let subjects = match &caller.principal {
            Principal::Analyst { id, .. } => {
                let mut s = vec![format!("user:{id}")];
                if let Some(role) = caller.role {
                    s.push(format!("role:{role}"));
                }
                s
            }
            Principal::ApiKey { id, .. } => vec![format!("api_key:{id}")],
        };
        Self {
            scope: caller.scope.clone(),
            bypass_tags: caller.role == Some(Role::Admin),
            subjects,
        }
    }

    /// Everything in the scope, tags ignored (system work: playbooks, exports, tests).
    pub fn unrestricted(scope: Scope) -> Self {
        Self {
            scope,
            bypass_tags: true,
            subjects: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_has_every_permission() {
        for p in Permission::ALL {
            assert!(Role::Admin.permissions().contains(*p), "{p}");
        }
    }

    #[test]
    fn analyst_lacks_administration_and_deletion_but_keeps_observables_manage() {
        let a = Role::Analyst.permissions();
        for p in Permission::ALL {
            let name = p.as_str();
            let admin_only = (name.ends_with(":manage") && *p != Permission::ObservablesManage)
                || name.ends_with(":delete")
                || *p == Permission::WebhooksIngest;
            assert_eq!(a.contains(*p), !admin_only, "{name}");
        }
    }

    #[test]
    fn viewer_has_exactly_the_read_permissions() {
        let v = Role::Viewer.permissions();
        for p in Permission::ALL {
            let is_read = p.as_str().ends_with(":read");
            assert_eq!(v.contains(*p), is_read, "{p}");
        }
    }

    #[test]
    fn unknown_names_fail_closed() {
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
        assert!("alerts:*".parse::<Permission>().is_err());
        assert!("admin".parse::<ApiKeyScope>().is_err());
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(*r));
        }
    }

    #[test]
    fn ingest_scope_grants_only_ingest() {
        let s = ApiKeyScope::WebhooksIngest.permissions();
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![Permission::WebhooksIngest]
        );
        assert!(
            !ApiKeyScope::Write
                .permissions()
                .contains(Permission::AnalystsManage)
        );
    }

    #[test]
    fn scope_filters_tenants() {
        let (a, b) = (TenantId::new(), TenantId::new());
        let s = Scope::single(a);
        assert!(s.allows(a));
        assert!(!s.allows(b));
        assert!(Scope::AllTenants.allows(b));
        assert!(!Scope::Tenants(vec![]).allows(a));
    }
}
