//! Tag-based access to alerts (CoPilot's model, failing closed).
//!
//! A tenant may restrict its alerts by tag: a non-admin caller then sees an alert when one of
//! its tags is on an allow-list naming the caller (`user:<id>`, `role:<role>`,
//! `api_key:<id>`). Untagged alerts follow the tenant's `untagged` setting. A setting the code
//! does not know (a newer version wrote it, or someone edited the row) hides every alert of
//! that tenant from non-admins.
//!
//! The rules are resolved per request into a [`Visibility`] (two small queries), then pushed
//! into every alert query as SQL by [`push_alert_access`]: lists, counts, single reads, bulk
//! changes and search all go through it, so no handler can forget it.

use bulwark_core::{AlertAccess, TenantId};
use serde::{Deserialize, Serialize};
use sqlx::{Database, Encode, QueryBuilder, Type};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What happens to alerts that carry no tag, when a tenant restricts by tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Untagged {
    /// Everyone in the tenant sees them.
    VisibleToAll,
    /// Only administrators see them.
    AdminOnly,
    /// They count as carrying the tenant's `default_tag`.
    DefaultTag,
}

impl Untagged {
    pub fn as_str(self) -> &'static str {
        match self {
            Untagged::VisibleToAll => "visible_to_all",
            Untagged::AdminOnly => "admin_only",
            Untagged::DefaultTag => "default_tag",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "visible_to_all" => Some(Untagged::VisibleToAll),
            "admin_only" => Some(Untagged::AdminOnly),
            "default_tag" => Some(Untagged::DefaultTag),
            _ => None,
        }
    }
}

/// One allow-list entry: `subject` may see alerts tagged `tag`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct TagRule {
    /// `user:<analyst id>`, `role:<admin|analyst|viewer>` or `api_key:<key id>`.
    pub subject: String,
    pub tag: String,
}

/// A tenant's whole tag-access configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TagAccessConfig {
    pub enabled: bool,
    pub untagged: Untagged,
    /// Required when `untagged` is `default_tag`.
    pub default_tag: Option<String>,
    pub rules: Vec<TagRule>,
}

impl Default for TagAccessConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            untagged: Untagged::VisibleToAll,
            default_tag: None,
            rules: Vec::new(),
        }
    }
}

/// A settings row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SettingsRow {
    pub tenant_id: Uuid,
    pub enabled: bool,
    pub untagged: String,
    pub default_tag: Option<String>,
}

/// What a caller sees within one restricting tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    /// Alerts with any of these tags are visible.
    pub tags: Vec<String>,
    /// Alerts without tags are visible.
    pub untagged: bool,
}

/// The caller's view of alerts, across the tenants of its scope.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Visibility {
    /// Tenants that restrict by tag, with what the caller may see there. Tenants not listed
    /// do not restrict.
    pub restricted: BTreeMap<TenantId, Restriction>,
}

impl Visibility {
    pub fn everything() -> Self {
        Self::default()
    }

    /// Whether an alert of `tenant` with `tags` is visible (the same rule the SQL applies).
    pub fn allows(&self, tenant: TenantId, tags: &[String]) -> bool {
        match self.restricted.get(&tenant) {
            None => true,
            Some(r) if tags.is_empty() => r.untagged,
            Some(r) => tags.iter().any(|t| r.tags.contains(t)),
        }
    }
}

/// Resolves the settings rows (enabled ones, of the scope's tenants) and the tags allowed to
/// the caller's subjects into a [`Visibility`]. Pure, so the rules can be tested alone.
pub(crate) fn resolve(
    access: &AlertAccess,
    settings: &[SettingsRow],
    allowed: &[(Uuid, String)],
) -> Visibility {
    if access.bypass_tags {
        return Visibility::everything();
    }
    let mut restricted = BTreeMap::new();
    for s in settings.iter().filter(|s| s.enabled) {
        let tenant = TenantId(s.tenant_id);
        let tags: Vec<String> = allowed
            .iter()
            .filter(|(t, _)| *t == s.tenant_id)
            .map(|(_, tag)| tag.clone())
            .collect();
        let restriction = match Untagged::parse(&s.untagged) {
            Some(Untagged::VisibleToAll) => Restriction {
                tags,
                untagged: true,
            },
            Some(Untagged::AdminOnly) => Restriction {
                tags,
                untagged: false,
            },
            Some(Untagged::DefaultTag) => {
                let untagged = s.default_tag.as_ref().is_some_and(|d| tags.contains(d));
                Restriction { tags, untagged }
            }
            // Unknown setting: nothing of this tenant is visible.
            None => Restriction {
                tags: Vec::new(),
                untagged: false,
            },
        };
        restricted.insert(tenant, restriction);
    }
    Visibility { restricted }
}

/// Appends the tenant scope and the tag rules for alerts (the table must be named `alerts`).
/// The dashboard's per-tag-set roll-up (`alert_hourly_tags`) is read under that name too: it
/// holds the alerts' `tenant_id` and `tags` values as they are, so this one predicate decides
/// for both, with the same untagged behaviour and the same fail-closed handling.
/// `tag_values` is the backend's "each tag of alerts.tags" expression, ending with the
/// element column: `json_each(alerts.tags) t WHERE t.value` or
/// `jsonb_array_elements_text(alerts.tags) t WHERE t`.
pub(crate) fn push_alert_access<DB>(
    qb: &mut QueryBuilder<DB>,
    access: &AlertAccess,
    vis: &Visibility,
    tag_values: &str,
) where
    DB: Database,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> String: Encode<'a, DB> + Type<DB>,
{
    push_alert_access_on(qb, "alerts.tenant_id", access, vis, tag_values);
}

/// [`push_alert_access`] with the tenant column written as `tenant` (`alerts.tenant_id`, or an
/// expression of it the SQLite planner will not pick an index for, `+alerts.tenant_id`, where
/// another index is known to be the better one); the conditions are the same.
pub(crate) fn push_alert_access_on<DB>(
    qb: &mut QueryBuilder<DB>,
    tenant: &str,
    access: &AlertAccess,
    vis: &Visibility,
    tag_values: &str,
) where
    DB: Database,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> String: Encode<'a, DB> + Type<DB>,
{
    crate::scope_sql::push_scope(qb, tenant, &access.scope);
    if vis.restricted.is_empty() {
        return;
    }
    qb.push(format_args!(" AND ({tenant} NOT IN ("));
    let mut sep = qb.separated(", ");
    for t in vis.restricted.keys() {
        sep.push_bind(t.0);
    }
    qb.push(")");
    let tenant_col = tenant;
    for (tenant, r) in &vis.restricted {
        if r.tags.is_empty() && !r.untagged {
            continue;
        }
        qb.push(format_args!(" OR ({tenant_col} = "))
            .push_bind(tenant.0)
            .push(" AND (");
        let mut first = true;
        if !r.tags.is_empty() {
            qb.push(format_args!("EXISTS (SELECT 1 FROM {tag_values} IN ("));
            let mut sep = qb.separated(", ");
            for tag in &r.tags {
                sep.push_bind(tag.clone());
            }
            qb.push("))");
            first = false;
        }
        if r.untagged {
            if !first {
                qb.push(" OR ");
            }
            qb.push("alerts.tags = '[]'");
        }
        qb.push("))");
    }
    qb.push(")");
}

/// Checks a configuration before it is stored.
pub fn validate(config: &TagAccessConfig) -> Result<(), (&'static str, String)> {
    if config.untagged == Untagged::DefaultTag
        && config
            .default_tag
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
    {
        return Err((
            "default_tag",
            "required when untagged is default_tag".into(),
        ));
    }
    if config.rules.len() > 10_000 {
        return Err(("rules", "at most 10000 rules".into()));
    }
    for (i, rule) in config.rules.iter().enumerate() {
        let valid_subject = match rule.subject.split_once(':') {
            Some(("user" | "api_key", id)) => id.parse::<Uuid>().is_ok(),
            Some(("role", role)) => role.parse::<bulwark_core::Role>().is_ok(),
            _ => false,
        };
        if !valid_subject {
            return Err((
                "rules",
                format!(
                    "rule {i}: subject must be user:<uuid>, role:<admin|analyst|viewer> or api_key:<uuid>"
                ),
            ));
        }
        if rule.tag.trim().is_empty() || rule.tag.len() > 128 {
            return Err(("rules", format!("rule {i}: tag must be 1 to 128 bytes")));
        }
    }
    Ok(())
}

macro_rules! impl_tag_access {
    ($store:ident, $db:ty) => {
        mod tag_access_impl {
            use super::$store;
            use $crate::tag_access::{resolve, SettingsRow, TagAccessConfig, TagRule, Untagged, Visibility};
            use $crate::scope_sql::push_scope;
            use $crate::{ChangeCtx, StoreError, StoreResult, TagAccessStore};
            use bulwark_audit::EventType;
            use bulwark_core::{AlertAccess, Scope, TenantId};
            use serde_json::json;
            use sqlx::QueryBuilder;
            use uuid::Uuid;

            impl $store {
                /// The caller's view of alerts; one or two small reads, none for admins.
                pub(crate) async fn alert_visibility(&self, access: &AlertAccess) -> StoreResult<Visibility> {
                    if access.bypass_tags {
                        return Ok(Visibility::everything());
                    }
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT tenant_id, enabled, untagged, default_tag FROM tag_access_settings WHERE enabled",
                    );
                    push_scope(&mut qb, "tenant_id", &access.scope);
                    let settings: Vec<SettingsRow> = qb.build_query_as().fetch_all(&self.reader).await?;
                    if settings.is_empty() || access.subjects.is_empty() {
                        return Ok(resolve(access, &settings, &[]));
                    }
                    let mut qb = QueryBuilder::<$db>::new("SELECT tenant_id, tag FROM tag_access_rules WHERE tenant_id IN (");
                    let mut sep = qb.separated(", ");
                    for s in &settings {
                        sep.push_bind(s.tenant_id);
                    }
                    qb.push(") AND subject IN (");
                    let mut sep = qb.separated(", ");
                    for s in &access.subjects {
                        sep.push_bind(s.clone());
                    }
                    qb.push(")");
                    let allowed: Vec<(Uuid, String)> = qb.build_query_as().fetch_all(&self.reader).await?;
                    Ok(resolve(access, &settings, &allowed))
                }
            }

            #[async_trait::async_trait]
            impl TagAccessStore for $store {
                async fn get_tag_access(&self, scope: &Scope, tenant: TenantId) -> StoreResult<TagAccessConfig> {
                    if !scope.allows(tenant) {
                        return Err(StoreError::NotFound);
                    }
                    let row: Option<SettingsRow> = sqlx::query_as(
                        "SELECT tenant_id, enabled, untagged, default_tag FROM tag_access_settings WHERE tenant_id = $1",
                    )
                    .bind(tenant.0)
                    .fetch_optional(&self.reader)
                    .await?;
                    let rules: Vec<(String, String)> = sqlx::query_as(
                        "SELECT subject, tag FROM tag_access_rules WHERE tenant_id = $1 ORDER BY subject, tag",
                    )
                    .bind(tenant.0)
                    .fetch_all(&self.reader)
                    .await?;
                    let rules = rules.into_iter().map(|(subject, tag)| TagRule { subject, tag }).collect();
                    Ok(match row {
                        None => TagAccessConfig { rules, ..TagAccessConfig::default() },
                        Some(r) => TagAccessConfig {
                            enabled: r.enabled,
                            untagged: Untagged::parse(&r.untagged).ok_or_else(|| {
                                StoreError::Corrupt(format!("tag access setting `untagged` = `{}`", r.untagged))
                            })?,
                            default_tag: r.default_tag,
                            rules,
                        },
                    })
                }

                async fn set_tag_access(
                    &self,
                    ctx: &ChangeCtx,
                    scope: &Scope,
                    tenant: TenantId,
                    config: &TagAccessConfig,
                ) -> StoreResult<()> {
                    if !scope.allows(tenant) {
                        return Err(StoreError::NotFound);
                    }
                    $crate::tag_access::validate(config)
                        .map_err(|(field, message)| StoreError::Invalid { field, message })?;
                    let exists: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM tenants WHERE id = $1")
                        .bind(tenant.0)
                        .fetch_optional(&self.reader)
                        .await?;
                    if exists.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "INSERT INTO tag_access_settings (tenant_id, enabled, untagged, default_tag, updated_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET enabled = excluded.enabled, \
                         untagged = excluded.untagged, default_tag = excluded.default_tag, updated_at = excluded.updated_at",
                    )
                    .bind(tenant.0)
                    .bind(config.enabled)
                    .bind(config.untagged.as_str())
                    .bind(config.default_tag.clone())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM tag_access_rules WHERE tenant_id = $1")
                        .bind(tenant.0)
                        .execute(&mut *tx)
                        .await?;
                    let mut rules = config.rules.clone();
                    rules.sort();
                    rules.dedup();
                    for chunk in rules.chunks(300) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO tag_access_rules (tenant_id, subject, tag, created_at) ",
                        );
                        qb.push_values(chunk, |mut b, r| {
                            b.push_bind(tenant.0).push_bind(r.subject.clone()).push_bind(r.tag.clone()).push_bind(now);
                        });
                        qb.build().execute(&mut *tx).await?;
                    }
                    let rec = $crate::audit::record(
                        ctx,
                        EventType::SettingsChanged,
                        "tag_access",
                        Some(tenant.to_string()),
                        None,
                        Some(json!({
                            "enabled": config.enabled,
                            "untagged": config.untagged.as_str(),
                            "default_tag": config.default_tag,
                            "rules": rules.len(),
                        })),
                    )?;
                    Self::append_audit(&mut tx, tenant, rec).await?;
                    tx.commit().await?;
                    Ok(())
                }
            }
        }
    };
}

pub(crate) use impl_tag_access;

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_core::Scope;

    fn access(bypass: bool) -> AlertAccess {
        AlertAccess {
            scope: Scope::AllTenants,
            bypass_tags: bypass,
            subjects: vec!["role:analyst".into()],
        }
    }

    fn row(t: Uuid, untagged: &str, default_tag: Option<&str>) -> SettingsRow {
        SettingsRow {
            tenant_id: t,
            enabled: true,
            untagged: untagged.into(),
            default_tag: default_tag.map(str::to_string),
        }
    }

    #[test]
    fn admins_see_everything() {
        let t = Uuid::now_v7();
        let v = resolve(&access(true), &[row(t, "admin_only", None)], &[]);
        assert!(v.allows(TenantId(t), &[]));
        assert!(v.allows(TenantId(t), &["x".into()]));
    }

    #[test]
    fn any_allowed_tag_makes_an_alert_visible() {
        let t = Uuid::now_v7();
        let v = resolve(
            &access(false),
            &[row(t, "admin_only", None)],
            &[(t, "soc".into())],
        );
        assert!(v.allows(TenantId(t), &["other".into(), "soc".into()]));
        assert!(!v.allows(TenantId(t), &["other".into()]));
        assert!(!v.allows(TenantId(t), &[]));
        // A tenant without settings does not restrict.
        assert!(v.allows(TenantId(Uuid::now_v7()), &["other".into()]));
    }

    #[test]
    fn untagged_behaviours() {
        let t = Uuid::now_v7();
        let all = resolve(&access(false), &[row(t, "visible_to_all", None)], &[]);
        assert!(all.allows(TenantId(t), &[]));
        let default_allowed = resolve(
            &access(false),
            &[row(t, "default_tag", Some("dflt"))],
            &[(t, "dflt".into())],
        );
        assert!(default_allowed.allows(TenantId(t), &[]));
        let default_denied = resolve(&access(false), &[row(t, "default_tag", Some("dflt"))], &[]);
        assert!(!default_denied.allows(TenantId(t), &[]));
    }

    #[test]
    fn an_unknown_setting_denies_everything_in_that_tenant() {
        let t = Uuid::now_v7();
        let v = resolve(
            &access(false),
            &[row(t, "visible_to_some", None)],
            &[(t, "soc".into())],
        );
        assert!(!v.allows(TenantId(t), &[]));
        assert!(!v.allows(TenantId(t), &["soc".into()]));
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = TagAccessConfig {
            enabled: true,
            untagged: Untagged::DefaultTag,
            default_tag: None,
            rules: vec![],
        };
        assert_eq!(validate(&c).map_err(|e| e.0), Err("default_tag"));
        c.default_tag = Some("x".into());
        c.rules.push(TagRule {
            subject: "group:x".into(),
            tag: "a".into(),
        });
        assert_eq!(validate(&c).map_err(|e| e.0), Err("rules"));
        c.rules[0].subject = "role:viewer".into();
        assert!(validate(&c).is_ok());
    }
}
