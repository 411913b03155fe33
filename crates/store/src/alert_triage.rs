//! Changing alerts during triage: PATCH, claim, bulk actions, soft delete, comments and the
//! activity timeline.
//!
//! Every change runs in one transaction that reads the rows under the caller's tenant scope
//! and tag rules (locked on PostgreSQL), applies [`bulwark_core::alert_change::plan`], writes
//! one activity row per changed field and one audit record per alert. Nothing is written when
//! nothing changes.

use bulwark_core::alert_change::{AlertChange, AlertState, Plan};
use bulwark_core::triage::{AlertStatus, Determination, ResolveReason};
use bulwark_core::{Scope, TenantId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{StoreError, StoreResult};

/// A change with what the store needs to check it: the tenants the new assignee can see
/// (resolved by the caller from the analyst's account), when an assignee is set.
#[derive(Debug, Clone, Default)]
pub struct ChangeRequest {
    pub change: AlertChange,
    pub assignee_scope: Option<Scope>,
    /// A claim (`change.assignee` is the claimer): refused when someone else holds the alert
    /// unless `Some(true)` (force); moves a new or triaged alert to in_progress.
    pub claim: Option<bool>,
}

/// A playbook action's write to an alert. The writes of concurrent runs share one transaction
/// ([`crate::AlertTriageStore::alert_writes`]): on SQLite every commit waits for the one writer
/// and its fsync, so one commit per action capped a worker at the disk's commit rate.
#[derive(Debug, Clone)]
pub enum AlertWrite {
    Change {
        ctx: crate::ChangeCtx,
        access: bulwark_core::AlertAccess,
        id: Uuid,
        req: ChangeRequest,
    },
    Comment {
        ctx: crate::ChangeCtx,
        access: bulwark_core::AlertAccess,
        id: Uuid,
        body: String,
    },
}

/// What an [`AlertWrite`] did.
#[derive(Debug, Clone)]
pub enum AlertWritten {
    /// `false` when the change changed nothing.
    Changed(bool),
    Commented(Comment),
}

/// What a bulk request does to each alert.
#[derive(Debug, Clone)]
pub enum BulkAction {
    Change(ChangeRequest),
    /// Links every alert to this incident (same tenant only).
    LinkIncident(Uuid),
}

/// The result for one alert of a bulk request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkItem {
    pub alert_id: Uuid,
    /// `updated`, `unchanged`, `not_found`, `invalid` or `conflict`.
    pub outcome: String,
    /// For `invalid`: the field at fault.
    pub field: Option<String>,
    pub message: Option<String>,
}

/// One entry of an alert's activity timeline.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Activity {
    pub id: Uuid,
    pub alert_id: Uuid,
    /// `created`, `status`, `severity`, `determination`, `resolve_reason`, `assignee`, `tags`,
    /// `comment`, `comment_edited`, `deleted`, `incident_linked`, `incident_unlinked`; from
    /// automation: `playbook_run` (old: trigger, new: the run's status), `playbook_step`
    /// (old: `ref (action)`, new: the attempt's status) and `approval` (old: its message, new:
    /// its status), each with the playbook's name as actor.
    pub kind: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    /// `user`, `api_key`, `system` or `playbook`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A comment on an alert (or an incident).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Comment {
    pub id: Uuid,
    pub alert_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub author_kind: String,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub body: String,
    /// Ids of the analysts mentioned with `@username`.
    #[sqlx(json)]
    pub mentions: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

pub(crate) const COMMENT_COLUMNS: &str = "id, alert_id, incident_id, author_kind, author_id, \
     author_name, body, mentions, created_at, edited_at";

/// An incident an alert is linked to, as the alert shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LinkedIncident {
    pub id: Uuid,
    pub number: i64,
    pub title: String,
    pub status: String,
    pub severity: String,
}

/// The triage columns of an alert row, read (and locked) before a change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TriageRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub status: String,
    pub severity: String,
    pub determination: Option<String>,
    pub resolve_reason: Option<String>,
    pub assignee_id: Option<Uuid>,
    #[sqlx(json)]
    pub tags: Vec<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

pub(crate) const TRIAGE_COLUMNS: &str = "alerts.id, alerts.tenant_id, alerts.status, alerts.severity, \
     alerts.determination, alerts.resolve_reason, alerts.assignee_id, alerts.tags, alerts.acknowledged_at";

impl TriageRow {
    pub(crate) fn state(&self) -> StoreResult<AlertState> {
        let corrupt =
            |what: &str, v: &str| StoreError::Corrupt(format!("alert {}: {what} `{v}`", self.id));
        Ok(AlertState {
            status: self
                .status
                .parse::<AlertStatus>()
                .map_err(|_| corrupt("status", &self.status))?,
            severity: self.severity.clone(),
            determination: self
                .determination
                .as_deref()
                .map(|d| {
                    d.parse::<Determination>()
                        .map_err(|_| corrupt("determination", d))
                })
                .transpose()?,
            resolve_reason: self
                .resolve_reason
                .as_deref()
                .map(|r| {
                    r.parse::<ResolveReason>()
                        .map_err(|_| corrupt("resolve_reason", r))
                })
                .transpose()?,
            assignee_id: self.assignee_id,
            tags: self.tags.clone(),
            acknowledged: self.acknowledged_at.is_some(),
        })
    }
}

/// Plans a change on one row, checking the assignee can see the alert's tenant.
pub(crate) fn plan_for(
    row: &TriageRow,
    req: &ChangeRequest,
    vis: &crate::tag_access::Visibility,
) -> StoreResult<Plan> {
    let state = row.state()?;
    let mut change = req.change.clone();
    if let Some(force) = req.claim {
        if state.status.is_closed() {
            return Err(StoreError::State(
                "the alert is closed; reopen it before claiming".into(),
            ));
        }
        if let (Some(holder), Some(claimer)) = (state.assignee_id, change.assignee.flatten())
            && holder != claimer
            && !force
        {
            return Err(StoreError::State(format!(
                "the alert is assigned to analyst {holder}; claim with force=true to take it over"
            )));
        }
        if matches!(state.status, AlertStatus::New | AlertStatus::Triaged) {
            change.status = Some(AlertStatus::InProgress);
        }
    }
    if let Some(Some(_)) = req.change.assignee {
        let sees = req
            .assignee_scope
            .as_ref()
            .is_some_and(|s| s.allows(TenantId(row.tenant_id)));
        if !sees {
            return Err(StoreError::Invalid {
                field: "assignee_id",
                message: "this analyst cannot see the alert's tenant".into(),
            });
        }
    }
    let plan =
        bulwark_core::alert_change::plan(&state, &change).map_err(|e| StoreError::Invalid {
            field: e.field,
            message: e.message,
        })?;
    if !vis.allows(TenantId(row.tenant_id), &plan.next.tags) {
        return Err(StoreError::Invalid {
            field: "tags",
            message: "the new tags would hide this alert from you under the tenant's tag rules"
                .into(),
        });
    }
    Ok(plan)
}

/// One activity row to write: (tenant, alert, kind, old value, new value).
pub(crate) type ActivityRow = (Uuid, Uuid, &'static str, Option<String>, Option<String>);

/// The audit summary of a plan: changed fields, before and after.
pub(crate) fn audit_summaries(plan: &Plan) -> (serde_json::Value, serde_json::Value) {
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    for c in &plan.changes {
        before.insert(c.field.into(), c.old.clone().into());
        after.insert(c.field.into(), c.new.clone().into());
    }
    (before.into(), after.into())
}

macro_rules! impl_alert_triage {
    ($store:ident, $db:ty) => {
        mod alert_triage_impl {
            use super::$store;
            use $crate::alert_triage::{
                audit_summaries, plan_for, Activity, ActivityRow, BulkAction, BulkItem, ChangeRequest, Comment,
                TriageRow, COMMENT_COLUMNS, TRIAGE_COLUMNS,
            };
            use $crate::tag_access::{push_alert_access, Visibility};
            use $crate::{AlertTriageStore, ChangeCtx, StoreError, StoreResult};
            use bulwark_audit::{EventType, NewRecord};
            use bulwark_core::alert_change::Plan;
            use bulwark_core::{AlertAccess, TenantId};
            use chrono::{DateTime, Utc};
            use serde_json::json;
            use sqlx::{QueryBuilder, Transaction};
            use std::collections::BTreeMap;
            use uuid::Uuid;

            type Tx = Transaction<'static, $db>;


            impl $store {
                /// Reads (and on PostgreSQL locks) the visible rows among `ids`, in id order.
                async fn triage_rows(
                    tx: &mut Tx,
                    access: &AlertAccess,
                    vis: &Visibility,
                    ids: &[Uuid],
                ) -> StoreResult<Vec<TriageRow>> {
                    let mut rows = Vec::with_capacity(ids.len());
                    for chunk in ids.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new(format!(
                            "SELECT {TRIAGE_COLUMNS} FROM alerts WHERE alerts.deleted_at IS NULL AND alerts.id IN ("
                        ));
                        let mut sep = qb.separated(", ");
                        for id in chunk {
                            sep.push_bind(*id);
                        }
                        qb.push(")");
                        push_alert_access(&mut qb, access, vis, Self::ALERT_TAG_VALUES);
                        qb.push(" ORDER BY alerts.id");
                        qb.push(Self::ROW_LOCK);
                        let part: Vec<TriageRow> = qb.build_query_as().fetch_all(&mut **tx).await?;
                        rows.extend(part);
                    }
                    Ok(rows)
                }

                async fn apply_plan(tx: &mut Tx, row: &TriageRow, plan: &Plan, now: DateTime<Utc>) -> StoreResult<()> {
                    let n = &plan.next;
                    sqlx::query(
                        "UPDATE alerts SET status = $1, severity = $2, determination = $3, resolve_reason = $4, \
                         assignee_id = $5, tags = $6, updated_at = $7, \
                         acknowledged_at = CASE WHEN $8 THEN $7 ELSE acknowledged_at END, \
                         closed_at = CASE WHEN $9 THEN $7 WHEN $10 THEN NULL ELSE closed_at END \
                         WHERE id = $11",
                    )
                    .bind(n.status.as_str())
                    .bind(n.severity.clone())
                    .bind(n.determination.map(|d| d.as_str()))
                    .bind(n.resolve_reason.map(|r| r.as_str()))
                    .bind(n.assignee_id)
                    .bind(sqlx::types::Json(&n.tags))
                    .bind(now)
                    .bind(plan.acknowledge)
                    .bind(plan.closed == Some(true))
                    .bind(plan.closed == Some(false))
                    .bind(row.id)
                    .execute(&mut **tx)
                    .await?;
                    Ok(())
                }

                /// Writes activity rows: (tenant, alert, kind, old value, new value).
                pub(crate) async fn insert_activities(
                    tx: &mut Tx,
                    ctx: &ChangeCtx,
                    acts: &[ActivityRow],
                    now: DateTime<Utc>,
                ) -> StoreResult<()> {
                    for chunk in acts.chunks(200) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO alert_activities (id, tenant_id, alert_id, kind, old_value, new_value, \
                             actor_kind, actor_id, actor_name, created_at) ",
                        );
                        qb.push_values(chunk, |mut b, (tenant, alert, kind, old, new)| {
                            b.push_bind(Uuid::now_v7())
                                .push_bind(*tenant)
                                .push_bind(*alert)
                                .push_bind(*kind)
                                .push_bind(old.clone())
                                .push_bind(new.clone())
                                .push_bind(ctx.actor_kind)
                                .push_bind(ctx.actor_id.clone())
                                .push_bind(ctx.actor_name.clone())
                                .push_bind(now);
                        });
                        qb.build().execute(&mut **tx).await?;
                    }
                    Ok(())
                }

                /// Appends the audit records, grouped per tenant chain.
                async fn append_grouped(tx: &mut Tx, recs: Vec<(Uuid, NewRecord)>) -> StoreResult<()> {
                    let mut by_tenant: BTreeMap<Uuid, Vec<NewRecord>> = BTreeMap::new();
                    for (t, r) in recs {
                        by_tenant.entry(t).or_default().push(r);
                    }
                    for (t, recs) in by_tenant {
                        Self::append_audit_many(tx, TenantId(t), recs).await?;
                    }
                    Ok(())
                }

                /// Applies a change to the rows; returns per-row outcomes (updated/unchanged/invalid).
                async fn change_rows(
                    tx: &mut Tx,
                    ctx: &ChangeCtx,
                    rows: &[TriageRow],
                    req: &ChangeRequest,
                    vis: &Visibility,
                    now: DateTime<Utc>,
                ) -> StoreResult<Vec<(Uuid, Result<bool, StoreError>)>> {
                    let mut acts: Vec<ActivityRow> = Vec::new();
                    let mut recs = Vec::new();
                    let mut out = Vec::with_capacity(rows.len());
                    for row in rows {
                        let plan = match plan_for(row, req, vis) {
                            Ok(p) => p,
                            Err(e) => {
                                out.push((row.id, Err(e)));
                                continue;
                            }
                        };
                        if plan.changes.is_empty() {
                            out.push((row.id, Ok(false)));
                            continue;
                        }
                        Self::apply_plan(tx, row, &plan, now).await?;
                        for c in &plan.changes {
                            acts.push((row.tenant_id, row.id, c.field, c.old.clone(), c.new.clone()));
                        }
                        let (before, after) = audit_summaries(&plan);
                        let event = if plan.closes() { EventType::AlertResolved } else { EventType::AlertUpdated };
                        let rec = $crate::audit::record(ctx, event, "alert", Some(row.id.to_string()), Some(before), Some(after))?;
                        recs.push((row.tenant_id, rec));
                        out.push((row.id, Ok(true)));
                    }
                    Self::insert_activities(tx, ctx, &acts, now).await?;
                    Self::append_grouped(tx, recs).await?;
                    Ok(out)
                }

                /// A change to one alert inside the caller's transaction.
                async fn update_in(
                    tx: &mut Tx,
                    ctx: &ChangeCtx,
                    access: &AlertAccess,
                    vis: &Visibility,
                    id: Uuid,
                    req: &ChangeRequest,
                ) -> StoreResult<bool> {
                    let row = Self::one_row(tx, access, vis, id).await?;
                    let now = bulwark_core::time::now();
                    let mut out = Self::change_rows(tx, ctx, std::slice::from_ref(&row), req, vis, now).await?;
                    match out.pop() {
                        Some((_, r)) => r,
                        None => Ok(false),
                    }
                }

                /// A comment on one alert inside the caller's transaction.
                #[allow(clippy::too_many_arguments)]
                async fn comment_in(
                    tx: &mut Tx,
                    ctx: &ChangeCtx,
                    access: &AlertAccess,
                    vis: &Visibility,
                    id: Uuid,
                    body: &str,
                    mentions: &[Uuid],
                ) -> StoreResult<Comment> {
                    let row = Self::one_row(tx, access, vis, id).await?;
                    let now = bulwark_core::time::now();
                    let comment_id = Uuid::now_v7();
                    let comment: Comment = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO comments (id, tenant_id, alert_id, author_kind, author_id, author_name, body, \
                         mentions, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COMMENT_COLUMNS}"
                    )))
                    .bind(comment_id)
                    .bind(row.tenant_id)
                    .bind(id)
                    .bind(ctx.actor_kind)
                    .bind(ctx.actor_id.clone())
                    .bind(ctx.actor_name.clone())
                    .bind(body)
                    .bind(sqlx::types::Json(mentions))
                    .bind(now)
                    .fetch_one(&mut **tx)
                    .await?;
                    let acts = [(row.tenant_id, id, "comment", None, Some(comment_id.to_string()))];
                    Self::insert_activities(tx, ctx, &acts, now).await?;
                    let rec = $crate::audit::record(ctx, EventType::CommentAdded, "alert", Some(id.to_string()), None,
                        Some(json!({"comment_id": comment_id.to_string(), "mentions": mentions.len() as i64})))?;
                    Self::append_audit(tx, TenantId(row.tenant_id), rec).await?;
                    Ok(comment)
                }

                async fn one_row(tx: &mut Tx, access: &AlertAccess, vis: &Visibility, id: Uuid) -> StoreResult<TriageRow> {
                    Self::triage_rows(tx, access, vis, &[id]).await?.pop().ok_or(StoreError::NotFound)
                }
            }

            #[async_trait::async_trait]
            impl AlertTriageStore for $store {
                async fn update_alert(
                    &self,
                    ctx: &ChangeCtx,
                    access: &AlertAccess,
                    id: Uuid,
                    req: &ChangeRequest,
                ) -> StoreResult<bool> {
                    let vis = self.alert_visibility(access).await?;
                    let mut tx = self.begin_write().await?;
                    let changed = Self::update_in(&mut tx, ctx, access, &vis, id, req).await?;
                    tx.commit().await?;
                    Ok(changed)
                }

                async fn alert_writes(
                    &self,
                    writes: &[$crate::alert_triage::AlertWrite],
                ) -> StoreResult<Vec<StoreResult<$crate::alert_triage::AlertWritten>>> {
                    use $crate::alert_triage::{AlertWrite, AlertWritten};
                    let mut views = Vec::with_capacity(writes.len());
                    for w in writes {
                        let access = match w {
                            AlertWrite::Change { access, .. } | AlertWrite::Comment { access, .. } => access,
                        };
                        views.push(self.alert_visibility(access).await);
                    }
                    let mut tx = self.begin_write().await?;
                    let mut out = Vec::with_capacity(writes.len());
                    for (w, vis) in writes.iter().zip(views) {
                        let vis = match vis {
                            Ok(v) => v,
                            Err(e) => {
                                out.push(Err(e));
                                continue;
                            }
                        };
                        // Each write in a savepoint: a refused one leaves the others intact.
                        sqlx::query("SAVEPOINT alert_write").execute(&mut *tx).await?;
                        let done = match w {
                            AlertWrite::Change { ctx, access, id, req } => {
                                Self::update_in(&mut tx, ctx, access, &vis, *id, req).await.map(AlertWritten::Changed)
                            }
                            AlertWrite::Comment { ctx, access, id, body } => {
                                Self::comment_in(&mut tx, ctx, access, &vis, *id, body, &[])
                                    .await
                                    .map(AlertWritten::Commented)
                            }
                        };
                        if done.is_err() {
                            sqlx::query("ROLLBACK TO SAVEPOINT alert_write").execute(&mut *tx).await?;
                        }
                        sqlx::query("RELEASE SAVEPOINT alert_write").execute(&mut *tx).await?;
                        out.push(done);
                    }
                    tx.commit().await?;
                    Ok(out)
                }

                async fn bulk_alerts(
                    &self,
                    ctx: &ChangeCtx,
                    access: &AlertAccess,
                    ids: &[Uuid],
                    action: &BulkAction,
                ) -> StoreResult<Vec<BulkItem>> {
                    let vis = self.alert_visibility(access).await?;
                    let mut unique: Vec<Uuid> = ids.to_vec();
                    unique.sort();
                    unique.dedup();
                    let now = bulwark_core::time::now();
                    let mut tx = self.begin_write().await?;
                    let rows = Self::triage_rows(&mut tx, access, &vis, &unique).await?;
                    let results: Vec<(Uuid, Result<bool, StoreError>)> = match action {
                        BulkAction::Change(req) => Self::change_rows(&mut tx, ctx, &rows, req, &vis, now).await?,
                        BulkAction::LinkIncident(incident) => {
                            Self::link_rows(&mut tx, ctx, access, &rows, *incident, now).await?
                        }
                    };
                    tx.commit().await?;
                    let by_id: BTreeMap<Uuid, Result<bool, StoreError>> = results.into_iter().collect();
                    Ok(ids
                        .iter()
                        .map(|id| {
                            let (outcome, field, message) = match by_id.get(id) {
                                None => ("not_found", None, None),
                                Some(Ok(true)) => ("updated", None, None),
                                Some(Ok(false)) => ("unchanged", None, None),
                                Some(Err(StoreError::Invalid { field, message })) => {
                                    ("invalid", Some(field.to_string()), Some(message.clone()))
                                }
                                Some(Err(StoreError::NotFound)) => ("not_found", None, None),
                                Some(Err(StoreError::State(message))) => ("conflict", None, Some(message.clone())),
                                Some(Err(e)) => ("invalid", None, Some(e.to_string())),
                            };
                            BulkItem {
                                alert_id: *id,
                                outcome: outcome.into(),
                                field,
                                message,
                            }
                        })
                        .collect())
                }

                async fn delete_alert(&self, ctx: &ChangeCtx, access: &AlertAccess, id: Uuid) -> StoreResult<()> {
                    let vis = self.alert_visibility(access).await?;
                    let mut tx = self.begin_write().await?;
                    let row = Self::one_row(&mut tx, access, &vis, id).await?;
                    let now = bulwark_core::time::now();
                    sqlx::query("UPDATE alerts SET deleted_at = $1, updated_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    let acts = [(row.tenant_id, id, "deleted", Some(row.status.clone()), None)];
                    Self::insert_activities(&mut tx, ctx, &acts, now).await?;
                    let rec = $crate::audit::record(ctx, EventType::AlertDeleted, "alert", Some(id.to_string()),
                        Some(json!({"status": row.status, "severity": row.severity})), None)?;
                    Self::append_audit(&mut tx, TenantId(row.tenant_id), rec).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn add_alert_comment(
                    &self,
                    ctx: &ChangeCtx,
                    access: &AlertAccess,
                    id: Uuid,
                    body: &str,
                    mentions: &[Uuid],
                ) -> StoreResult<Comment> {
                    let vis = self.alert_visibility(access).await?;
                    let mut tx = self.begin_write().await?;
                    let comment = Self::comment_in(&mut tx, ctx, access, &vis, id, body, mentions).await?;
                    tx.commit().await?;
                    Ok(comment)
                }

                async fn edit_alert_comment(
                    &self,
                    ctx: &ChangeCtx,
                    access: &AlertAccess,
                    alert_id: Uuid,
                    comment_id: Uuid,
                    body: &str,
                    mentions: &[Uuid],
                ) -> StoreResult<Comment> {
                    let vis = self.alert_visibility(access).await?;
                    let mut tx = self.begin_write().await?;
                    let row = Self::one_row(&mut tx, access, &vis, alert_id).await?;
                    let existing: Option<(String, Option<String>)> = sqlx::query_as(
                        "SELECT author_kind, author_id FROM comments WHERE id = $1 AND alert_id = $2",
                    )
                    .bind(comment_id)
                    .bind(alert_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let (kind, author) = existing.ok_or(StoreError::NotFound)?;
                    if kind != ctx.actor_kind || author.is_none() || author != ctx.actor_id {
                        return Err(StoreError::Forbidden("only the author may edit a comment".into()));
                    }
                    let now = bulwark_core::time::now();
                    let comment: Comment = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "UPDATE comments SET body = $1, mentions = $2, edited_at = $3 WHERE id = $4 RETURNING {COMMENT_COLUMNS}"
                    )))
                    .bind(body)
                    .bind(sqlx::types::Json(mentions))
                    .bind(now)
                    .bind(comment_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let acts = [(row.tenant_id, alert_id, "comment_edited", None, Some(comment_id.to_string()))];
                    Self::insert_activities(&mut tx, ctx, &acts, now).await?;
                    let rec = $crate::audit::record(ctx, EventType::AlertUpdated, "alert", Some(alert_id.to_string()), None,
                        Some(json!({"comment_edited": comment_id.to_string()})))?;
                    Self::append_audit(&mut tx, TenantId(row.tenant_id), rec).await?;
                    tx.commit().await?;
                    Ok(comment)
                }

                async fn list_alert_comments(&self, access: &AlertAccess, id: Uuid) -> StoreResult<Vec<Comment>> {
                    self.visible_alert_tenant(access, id).await?;
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {COMMENT_COLUMNS} FROM comments WHERE alert_id = $1 ORDER BY id LIMIT 1000"
                    )))
                    .bind(id)
                    .fetch_all(&self.reader)
                    .await?)
                }

                async fn alert_activities(
                    &self,
                    access: &AlertAccess,
                    id: Uuid,
                    after: Option<Uuid>,
                    limit: u32,
                ) -> StoreResult<Vec<Activity>> {
                    self.visible_alert_tenant(access, id).await?;
                    // The arrival is the alert row itself: its UUIDv7 id sorts before every later
                    // activity, so it pages with the same cursor without a row per ingested alert.
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT * FROM (SELECT id, id AS alert_id, 'created' AS kind, NULL AS old_value, \
                         source AS new_value, 'system' AS actor_kind, NULL AS actor_id, 'ingest' AS actor_name, \
                         first_seen AS created_at FROM alerts WHERE id = ",
                    );
                    qb.push_bind(id);
                    qb.push(
                        " UNION ALL SELECT id, alert_id, kind, old_value, new_value, actor_kind, actor_id, actor_name, \
                         created_at FROM alert_activities WHERE alert_id = ",
                    );
                    qb.push_bind(id);
                    // Automation on this alert: each run, each action attempt, each approval.
                    qb.push(
                        " UNION ALL SELECT r.id, r.alert_id, 'playbook_run' AS kind, r.trigger AS old_value, \
                         r.status AS new_value, 'playbook' AS actor_kind, NULL AS actor_id, r.playbook_name AS actor_name, \
                         r.created_at FROM playbook_runs r WHERE r.alert_id = ",
                    );
                    qb.push_bind(id);
                    qb.push(
                        " UNION ALL SELECT s.id, r.alert_id, 'playbook_step' AS kind, s.ref || ' (' || s.action || ')' AS old_value, \
                         s.status AS new_value, 'playbook' AS actor_kind, NULL AS actor_id, r.playbook_name AS actor_name, \
                         s.started_at AS created_at FROM run_steps s JOIN playbook_runs r ON r.id = s.run_id WHERE r.alert_id = ",
                    );
                    qb.push_bind(id);
                    qb.push(
                        " UNION ALL SELECT a.id, r.alert_id, 'approval' AS kind, a.message AS old_value, \
                         a.status AS new_value, 'playbook' AS actor_kind, NULL AS actor_id, a.playbook_name AS actor_name, \
                         a.created_at FROM approvals a JOIN playbook_runs r ON r.id = a.run_id WHERE r.alert_id = ",
                    );
                    qb.push_bind(id);
                    qb.push(") act");
                    if let Some(a) = after {
                        qb.push(" WHERE id > ").push_bind(a);
                    }
                    qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                    Ok(qb.build_query_as().fetch_all(&self.reader).await?)
                }

            }

            impl $store {
                /// The tenant of a visible alert; `NotFound` when the caller cannot see it.
                pub(crate) async fn visible_alert_tenant(&self, access: &AlertAccess, id: Uuid) -> StoreResult<TenantId> {
                    let vis = self.alert_visibility(access).await?;
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT alerts.tenant_id FROM alerts WHERE alerts.deleted_at IS NULL AND alerts.id = ",
                    );
                    qb.push_bind(id);
                    push_alert_access(&mut qb, access, &vis, Self::ALERT_TAG_VALUES);
                    let row: Option<(Uuid,)> = qb.build_query_as().fetch_optional(&self.reader).await?;
                    row.map(|r| TenantId(r.0)).ok_or(StoreError::NotFound)
                }

                /// Links rows to an incident of the same tenant, inside the bulk transaction.
                async fn link_rows(
                    tx: &mut Tx,
                    ctx: &ChangeCtx,
                    access: &AlertAccess,
                    rows: &[TriageRow],
                    incident: Uuid,
                    now: DateTime<Utc>,
                ) -> StoreResult<Vec<(Uuid, Result<bool, StoreError>)>> {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT tenant_id FROM incidents WHERE deleted_at IS NULL AND id = ",
                    );
                    qb.push_bind(incident);
                    $crate::scope_sql::push_scope(&mut qb, "tenant_id", &access.scope);
                    qb.push(Self::ROW_LOCK);
                    let found: Option<(Uuid,)> = qb.build_query_as().fetch_optional(&mut **tx).await?;
                    let Some((incident_tenant,)) = found else {
                        return Err(StoreError::Invalid {
                            field: "link_incident",
                            message: "no such incident".into(),
                        });
                    };
                    let mut out = Vec::with_capacity(rows.len());
                    let mut same_tenant = Vec::with_capacity(rows.len());
                    for row in rows {
                        if row.tenant_id == incident_tenant {
                            same_tenant.push(row.id);
                        } else {
                            out.push((row.id, Err(StoreError::Invalid {
                                field: "link_incident",
                                message: "the incident belongs to another tenant".into(),
                            })));
                        }
                    }
                    // The incident module's own linking: links, timeline events, alert activities.
                    let linked =
                        Self::insert_links(tx, ctx, TenantId(incident_tenant), incident, &same_tenant).await?;
                    for id in same_tenant {
                        out.push((id, Ok(linked.contains(&id))));
                    }
                    if !linked.is_empty() {
                        sqlx::query("UPDATE incidents SET updated_at = $1 WHERE id = $2")
                            .bind(now)
                            .bind(incident)
                            .execute(&mut **tx)
                            .await?;
                        let rec = $crate::audit::record(ctx, EventType::IncidentUpdated, "incident", Some(incident.to_string()),
                            None, Some(json!({"alerts_linked": linked.len() as i64})))?;
                        Self::append_audit(tx, TenantId(incident_tenant), rec).await?;
                    }
                    Ok(out)
                }
            }
        }
    };
}

pub(crate) use impl_alert_triage;
