//! Tenant scope as SQL. The only way store code filters by tenant, so it cannot be forgotten
//! in one query and remembered in another.

use bulwark_core::Scope;
use sqlx::{Database, Encode, QueryBuilder, Type};
use uuid::Uuid;

/// Appends ` AND <column> IN (...)` for a restricted scope; nothing for an unrestricted one;
/// a condition that matches nothing for an empty one.
pub(crate) fn push_scope<DB>(qb: &mut QueryBuilder<DB>, column: &str, scope: &Scope)
where
    DB: Database,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
{
    match scope.tenant_filter() {
        None => {}
        Some([]) => {
            qb.push(" AND 1 = 0");
        }
        Some(tenants) => {
            qb.push(format_args!(" AND {column} IN ("));
            let mut sep = qb.separated(", ");
            for t in tenants {
                sep.push_bind(t.0);
            }
            qb.push(")");
        }
    }
}
