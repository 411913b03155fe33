//! The built-in store actions (`alert.*`, `incident.*`, `observable.tag`) and `script`.
//! Every change goes through the same store methods as the API (lifecycle rules, activity
//! timeline, audit chain), attributed to the playbook run ([`ActionContext::change_ctx`]).

use crate::action::{Action, ActionContext, ActionError};
use async_trait::async_trait;
use bulwark_core::alert_change::AlertChange;
use bulwark_core::{Role, Scope};
use bulwark_store::alert_triage::ChangeRequest;
use bulwark_store::incidents::{Acting, IncidentPatch, NewIncident};
use bulwark_store::observables::{MatchMode, ObservableFilter, ObservablePatch};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

fn opt_str<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

fn str_list(input: &Value, key: &str) -> Vec<String> {
    input
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A snake_case enum from an argument; the error names the field.
fn enum_arg<T: DeserializeOwned>(input: &Value, key: &str) -> Result<Option<T>, ActionError> {
    match opt_str(input, key) {
        None => Ok(None),
        Some(s) => serde_json::from_value(Value::String(s.to_owned()))
            .map(Some)
            .map_err(|_| ActionError::fatal(format!("{key}: `{s}` is not a valid value"))),
    }
}

fn alert_id(ctx: &ActionContext) -> Result<Uuid, ActionError> {
    ctx.alert_id
        .ok_or_else(|| ActionError::fatal("this run has no alert"))
}

/// A username → (analyst id, the scope the analyst sees); `None` for "" (unassign).
async fn assignee(
    ctx: &ActionContext,
    username: &str,
) -> Result<Option<(Uuid, Scope)>, ActionError> {
    if username.is_empty() {
        return Ok(None);
    }
    let creds = ctx
        .store
        .credentials_by_username(username)
        .await
        .map_err(|e| ActionError::store("assignee", e))?
        .filter(|c| c.analyst.is_active)
        .ok_or_else(|| ActionError::fatal(format!("assignee: no active analyst `{username}`")))?;
    let a = creds.analyst;
    let scope = if a.role == Role::Admin && a.tenant_id == ctx.platform_tenant {
        Scope::AllTenants
    } else {
        let mut t = vec![a.tenant_id];
        t.extend(a.tenant_ids.iter().copied());
        Scope::Tenants(t)
    };
    Ok(Some((a.id.0, scope)))
}

pub struct AlertUpdate;

#[async_trait]
impl Action for AlertUpdate {
    fn name(&self) -> &str {
        "alert.update"
    }

    async fn execute(&self, ctx: &ActionContext, input: &Value) -> Result<Value, ActionError> {
        let id = alert_id(ctx)?;
        let mut change = AlertChange {
            status: enum_arg(input, "status")?,
            severity: opt_str(input, "severity").map(str::to_owned),
            determination: enum_arg(input, "determination")?,
            resolve_reason: enum_arg(input, "resolve_reason")?,
            add_tags: str_list(input, "tags"),
            remove_tags: str_list(input, "remove_tags"),
            ..AlertChange::default()
        };
        let mut assignee_scope = None;
        if let Some(u) = opt_str(input, "assignee") {
            match assignee(ctx, u).await? {
                Some((aid, scope)) => {
                    change.assignee = Some(Some(aid));
                    assignee_scope = Some(scope);
                }
                None => change.assignee = Some(None),
            }
        }
        let req = ChangeRequest {
            change,
            assignee_scope,
            claim: None,
        };
        let changed = match &ctx.alert_writer {
            Some(w) => w.change(ctx.change_ctx(), ctx.access(), id, req).await,
            None => {
                ctx.store
                    .update_alert(&ctx.change_ctx(), &ctx.access(), id, &req)
                    .await
            }
        }
        .map_err(|e| ActionError::store("alert.update refused", e))?;
        Ok(json!({ "alert_id": id, "changed": changed }))
    }
}

pub struct AlertComment;

#[async_trait]
impl Action for AlertComment {
    fn name(&self) -> &str {
        "alert.comment"
    }

    async fn execute(&self, ctx: &ActionContext, input: &Value) -> Result<Value, ActionError> {
        let id = alert_id(ctx)?;
        let text = opt_str(input, "text").ok_or_else(|| ActionError::fatal("text: required"))?;
        let c = match &ctx.alert_writer {
            Some(w) => {
                w.comment(ctx.change_ctx(), ctx.access(), id, text.to_owned())
                    .await
            }
            None => {
                ctx.store
                    .add_alert_comment(&ctx.change_ctx(), &ctx.access(), id, text, &[])
                    .await
            }
        }
        .map_err(|e| ActionError::store("alert.comment", e))?;
        Ok(json!({ "comment_id": c.id }))
    }
}

fn acting<'a>(
    ctx: &ActionContext,
    change: &'a bulwark_store::ChangeCtx,
    access: &'a bulwark_core::AlertAccess,
) -> Acting<'a> {
    Acting {
        ctx: change,
        access,
        platform_tenant: ctx.platform_tenant,
    }
}

pub struct IncidentCreate;

#[async_trait]
impl Action for IncidentCreate {
    fn name(&self) -> &str {
        "incident.create"
    }

    async fn execute(&self, ctx: &ActionContext, input: &Value) -> Result<Value, ActionError> {
        let (change, access) = (ctx.change_ctx(), ctx.access());
        let link = input
            .get("link_alert")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let template_id = match opt_str(input, "template") {
            None => None,
            Some(name) => {
                let all = ctx
                    .store
                    .list_incident_templates(
                        &Scope::Tenants(vec![ctx.tenant_id]),
                        Some(ctx.tenant_id),
                    )
                    .await
                    .map_err(|e| ActionError::store("template", e))?;
                Some(
                    all.into_iter()
                        .find(|t| t.name == name)
                        .ok_or_else(|| {
                            ActionError::fatal(format!("template: no template `{name}`"))
                        })?
                        .id,
                )
            }
        };
        let tags = input.get("tags").map(|_| str_list(input, "tags"));
        let new = NewIncident {
            tenant_id: ctx.tenant_id,
            title: opt_str(input, "title").map(str::to_owned),
            description: opt_str(input, "description").map(str::to_owned),
            severity: opt_str(input, "severity").map(str::to_owned),
            tags,
            assignee_id: None,
            template_id,
            alert_ids: match (link, ctx.alert_id) {
                (true, Some(a)) => vec![a],
                _ => Vec::new(),
            },
        };
        let inc = ctx
            .store
            .create_incident(&acting(ctx, &change, &access), new)
            .await
            .map_err(|e| ActionError::store("incident.create refused", e))?;
        Ok(json!({ "incident_id": inc.incident.id, "number": inc.incident.number }))
    }
}

fn uuid_arg(input: &Value, key: &str) -> Result<Option<Uuid>, ActionError> {
    match opt_str(input, key) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ActionError::fatal(format!("{key}: `{s}` is not an id"))),
    }
}

pub struct IncidentLink;

#[async_trait]
impl Action for IncidentLink {
    fn name(&self) -> &str {
        "incident.link"
    }

    async fn execute(&self, ctx: &ActionContext, input: &Value) -> Result<Value, ActionError> {
        let alert = alert_id(ctx)?;
        let incident = uuid_arg(input, "incident_id")?
            .ok_or_else(|| ActionError::fatal("incident_id: required"))?;
        let (change, access) = (ctx.change_ctx(), ctx.access());
        let res = ctx
            .store
            .link_alerts(&acting(ctx, &change, &access), incident, &[alert])
            .await
            .map_err(|e| ActionError::store("incident.link refused", e))?;
        let outcome = res
            .first()
            .map(|r| serde_json::to_value(r.result).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        Ok(json!({ "incident_id": incident, "alert_id": alert, "result": outcome }))
    }
}

pub struct IncidentUpdate;

#[async_trait]
impl Action for IncidentUpdate {
    fn name(&self) -> &str {
        "incident.update"
    }

    async fn execute(&self, ctx: &ActionContext, input: &Value) -> Result<Value, ActionError> {
        let id = uuid_arg(input, "incident_id")?
            .or(ctx.incident_id)
            .ok_or_else(|| ActionError::fatal("incident_id: this run has no incident"))?;
        let (change, access) = (ctx.change_ctx(), ctx.access());
        let mut patch = IncidentPatch {
            status: enum_arg(input, "status")?,
            severity: opt_str(input, "severity").map(str::to_owned),
            ..IncidentPatch::default()
        };
        let add = str_list(input, "tags");
        if !add.is_empty() {
            // Tags are added to the current ones (the patch replaces).
            let cur = ctx
                .store
                .get_incident(&access, id)
                .await
                .map_err(|e| ActionError::store("incident.update", e))?;
            let mut tags = cur.incident.tags;
            for t in add {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            patch.tags = Some(tags);
        }
        if let Some(u) = opt_str(input, "assignee") {
            patch.assignee_id = Some(assignee(ctx, u).await?.map(|(a, _)| a));
        }
        let inc = ctx
            .store
            .update_incident(&acting(ctx, &change, &access), id, patch)
            .await
            .map_err(|e| ActionError::store("incident.update refused", e))?;
        Ok(json!({ "incident_id": id, "status": inc.incident.status }))
    }
}

pub struct ObservableTag;

#[async_trait]
impl Action for ObservableTag {
    fn name(&self) -> &str {
        "observable.tag"
    }

    async fn execute(&self, ctx: &ActionContext, input: &Value) -> Result<Value, ActionError> {
        let value = opt_str(input, "value").ok_or_else(|| ActionError::fatal("value: required"))?;
        let kind = opt_str(input, "type");
        let access = ctx.access();
        let found = ctx
            .store
            .list_observables(
                &access,
                &ObservableFilter {
                    tenant_id: Some(ctx.tenant_id),
                    kind: kind.map(str::to_owned),
                    q: Some(value.to_owned()),
                    match_mode: MatchMode::Contains,
                    limit: 50,
                    ..ObservableFilter::default()
                },
            )
            .await
            .map_err(|e| ActionError::store("observable.tag", e))?;
        let obs = found
            .into_iter()
            .find(|o| o.value.eq_ignore_ascii_case(value))
            .ok_or_else(|| {
                ActionError::fatal(format!("value: no observable `{value}` in the tenant"))
            })?;
        let mut tags = obs.tags.clone();
        for t in str_list(input, "tags") {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        if tags == obs.tags {
            return Ok(json!({ "observable_id": obs.id, "tags": tags, "changed": false }));
        }
        let updated = ctx
            .store
            .update_observable(
                &ctx.change_ctx(),
                &access,
                obs.id,
                ObservablePatch {
                    tags: Some(tags),
                    ..ObservablePatch::default()
                },
            )
            .await
            .map_err(|e| ActionError::store("observable.tag refused", e))?;
        Ok(json!({ "observable_id": obs.id, "tags": updated.tags, "changed": true }))
    }
}

/// `script`: a sandboxed Rhai script, on a blocking thread.
pub struct Script {
    pub limits: bulwark_playbook::ScriptLimits,
}

#[async_trait]
impl Action for Script {
    fn name(&self) -> &str {
        "script"
    }

    async fn execute(&self, _ctx: &ActionContext, input: &Value) -> Result<Value, ActionError> {
        let source = opt_str(input, "source")
            .ok_or_else(|| ActionError::fatal("source: required"))?
            .to_owned();
        let data = input.get("input").cloned().unwrap_or(Value::Null);
        let limits = self.limits.clone();
        let res = tokio::task::spawn_blocking(move || {
            let compiled = bulwark_playbook::compile_script(&source)?;
            compiled.run(&data, &limits)
        })
        .await
        .map_err(|e| ActionError::fatal(format!("script crashed: {e}")))?;
        res.map_err(|e| ActionError::fatal(format!("script: {e}")))
    }
}
