//! A dry run: what a run of a playbook would do with a given trigger context, computed
//! without executing anything.
//!
//! Every action is looked at in the order it would run. Its `run_if` and `for_each` are
//! evaluated and its arguments rendered against the same context the worker builds
//! ([`trigger_context`] + [`RunState::context`]). What only exists while a run executes —
//! results of earlier actions (`actions.*`), `vars` set by `set` actions, the `error` an
//! error handler receives — is reported as *unknown*, per argument, instead of being
//! rendered empty. Template and expression errors are reported per action, never raised.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::expr::{PreparedContext, Sandbox, is_template};
use crate::run::RunState;
use crate::spec::{ErrorPolicy, Playbook};

/// At most this many `for_each` items are previewed.
pub const MAX_PREVIEW_ITEMS: usize = 100;

/// The context a run starts with, as the worker builds it: the alert and incident as the API
/// shows them (`null` when the run has none), the trigger's input, the playbook and the run.
pub fn trigger_context(
    alert: Value,
    incident: Value,
    input: Value,
    playbook: (&str, i32),
    run_id: &str,
    trigger: &str,
) -> Value {
    json!({
        "alert": alert,
        "incident": incident,
        "input": input,
        "playbook": { "name": playbook.0, "version": playbook.1 },
        "run": { "id": run_id, "trigger": trigger },
    })
}

/// What a dry run says about one action.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewAction {
    #[serde(rename = "ref")]
    pub ref_: String,
    pub action: String,
    pub depends_on: Vec<String>,
    /// `run`: it would run; `skip`: it would be skipped (its `run_if` is false or a
    /// dependency is skipped); `error`: it would fail (an expression or argument error);
    /// `unknown`: it depends on what earlier actions return; `handler`: it runs only when an
    /// action it handles fails.
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_if: Option<PreviewExpr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub for_each: Option<PreviewExpr>,
    /// One entry per execution: one without `for_each`, one per item with it (the first
    /// 100 items; empty when the items are not known).
    pub units: Vec<PreviewUnit>,
}

/// A `run_if` or `for_each` expression and what it evaluated to.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewExpr {
    pub source: String,
    /// The value (a `for_each` list: its first 100 items).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
    /// Why the value is not known before the run executes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The arguments of one execution of an action.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewUnit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub item: Option<Value>,
    /// The arguments as the action would receive them (rendered, checked against the catalog).
    #[schema(value_type = Object)]
    pub args: Map<String, Value>,
    /// Argument → why its value is known only when the run executes.
    pub unknown: BTreeMap<String, String>,
    /// Argument → the error rendering or checking it.
    pub errors: BTreeMap<String, String>,
}

/// Variables whose value exists only while the run executes.
fn runtime_refs(vars: impl IntoIterator<Item = String>, handler: bool) -> Vec<String> {
    let mut out: Vec<String> = vars
        .into_iter()
        .filter(|v| {
            let root = v.split('.').next().unwrap_or("");
            root == "actions" || root == "vars" || (handler && root == "error")
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn unknown_because(refs: &[String]) -> String {
    format!(
        "reads {}, known only when the run executes",
        refs.join(", ")
    )
}

/// Every runtime-only variable the templates inside `v` read; a template that does not
/// compile is left to the renderer to report.
fn template_refs(sandbox: &Sandbox, v: &Value, handler: bool, out: &mut Vec<String>) {
    match v {
        Value::String(s) if is_template(s) => {
            if let Ok(vars) = sandbox.check_template(s) {
                out.extend(runtime_refs(vars, handler));
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| template_refs(sandbox, i, handler, out)),
        Value::Object(m) => m
            .values()
            .for_each(|i| template_refs(sandbox, i, handler, out)),
        _ => {}
    }
}

/// The dry run of `pb` with the context a run would start with (see [`trigger_context`]).
pub fn preview(pb: &Playbook, sandbox: &Sandbox, trigger_ctx: Value) -> Vec<PreviewAction> {
    let state = RunState::new(pb, "dry-run", trigger_ctx);
    let inner = &pb.inner;
    let mut decided: Vec<Option<String>> = vec![None; inner.spec.actions.len()];
    let mut out = Vec::with_capacity(inner.order.len());
    for &i in &inner.order {
        let (Some(spec), Some(comp)) = (inner.spec.actions.get(i), inner.actions.get(i)) else {
            continue;
        };
        let handler = comp.is_handler;
        let base = state.context(pb, i, None);
        let prepared = PreparedContext::new(&base);
        let mut decision = "run";
        let mut reason = None;

        if handler {
            decision = "handler";
            reason = Some("runs only when an action it handles fails".to_owned());
        }
        for &d in &comp.deps {
            let dep = inner.spec.actions.get(d).map_or("?", |a| a.ref_.as_str());
            match decided.get(d).cloned().flatten().as_deref() {
                Some("skip") if decision != "skip" => {
                    decision = "skip";
                    reason = Some(format!("depends on `{dep}`, which would be skipped"));
                }
                Some("unknown" | "error" | "handler") if decision == "run" => {
                    decision = "unknown";
                    reason = Some(format!("depends on `{dep}`, whose outcome is not known"));
                }
                _ => {}
            }
        }

        let run_if = comp.run_if.as_ref().map(|cond| {
            let refs = runtime_refs(cond.referenced_variables(), handler);
            let mut e = PreviewExpr {
                source: cond.source().to_owned(),
                value: None,
                unknown: None,
                error: None,
            };
            if !refs.is_empty() {
                e.unknown = Some(unknown_because(&refs));
                return (e, None);
            }
            match cond.eval_prepared(&prepared) {
                Ok(b) => {
                    e.value = Some(Value::Bool(b));
                    (e, Some(Ok(b)))
                }
                Err(err) => {
                    e.error = Some(err.to_string());
                    (e, Some(Err(())))
                }
            }
        });
        let run_if = run_if.map(|(e, outcome)| {
            if decision == "run" {
                match outcome {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) => {
                        decision = "skip";
                        reason = Some("run_if is false".to_owned());
                    }
                    Some(Err(())) => {
                        decision = "error";
                        reason = Some("run_if cannot be evaluated".to_owned());
                    }
                    None => {
                        decision = "unknown";
                        reason = Some("run_if reads results of earlier actions".to_owned());
                    }
                }
            }
            e
        });

        // `None`: the items are not known; `Some(None)`: no for_each (one unit).
        let mut items: Option<Option<Vec<Value>>> = Some(None);
        let for_each = comp.for_each.as_ref().map(|expr| {
            let refs = runtime_refs(expr.referenced_variables(), handler);
            let mut e = PreviewExpr {
                source: expr.source().to_owned(),
                value: None,
                unknown: None,
                error: None,
            };
            if !refs.is_empty() {
                e.unknown = Some(unknown_because(&refs));
                items = None;
                return e;
            }
            match expr.eval_prepared(&prepared) {
                Ok(Value::Array(list)) => {
                    let shown = list.iter().take(MAX_PREVIEW_ITEMS).cloned().collect();
                    e.value = Some(Value::Array(shown));
                    items = Some(Some(list));
                }
                Ok(other) => {
                    e.error = Some(format!(
                        "for_each must evaluate to a list, got {}",
                        crate::catalog::json_kind(&other)
                    ));
                    items = None;
                }
                Err(err) => {
                    e.error = Some(err.to_string());
                    items = None;
                }
            }
            e
        });
        if let Some(e) = &for_each {
            if e.error.is_some() && decision == "run" {
                decision = "error";
                reason = Some("for_each cannot be evaluated".to_owned());
            } else if e.unknown.is_some() && decision == "run" {
                decision = "unknown";
                reason = Some("for_each reads results of earlier actions".to_owned());
            }
        }

        let mut units = Vec::new();
        match items {
            Some(None) => units.push(render_unit(pb, sandbox, &state, i, None)),
            Some(Some(list)) => {
                if list.len() > MAX_PREVIEW_ITEMS {
                    reason.get_or_insert_with(|| {
                        format!(
                            "{} items; the first {MAX_PREVIEW_ITEMS} are shown",
                            list.len()
                        )
                    });
                }
                for (k, item) in list.iter().enumerate().take(MAX_PREVIEW_ITEMS) {
                    units.push(render_unit(pb, sandbox, &state, i, Some((k, item))));
                }
            }
            None => {}
        }
        if decision == "run" && units.iter().any(|u| !u.errors.is_empty()) {
            decision = "error";
            reason = Some(match comp.on_error {
                ErrorPolicy::Fail => "an argument cannot be rendered: the run would fail".into(),
                _ => "an argument cannot be rendered: its on_error applies".into(),
            });
        }
        if let Some(slot) = decided.get_mut(i) {
            *slot = Some(decision.to_owned());
        }
        out.push(PreviewAction {
            ref_: spec.ref_.clone(),
            action: spec.action.clone(),
            depends_on: spec.depends_on.clone(),
            decision: decision.to_owned(),
            reason,
            run_if,
            for_each,
            units,
        });
    }
    out
}

/// Renders one execution's arguments one by one, so that one unknown or broken argument does
/// not hide the others.
fn render_unit(
    pb: &Playbook,
    sandbox: &Sandbox,
    state: &RunState,
    i: usize,
    item: Option<(usize, &Value)>,
) -> PreviewUnit {
    let mut unit = PreviewUnit {
        item_index: item.map(|(k, _)| k),
        item: item.map(|(_, v)| v.clone()),
        args: Map::new(),
        unknown: BTreeMap::new(),
        errors: BTreeMap::new(),
    };
    let (Some(spec), Some(comp)) = (pb.inner.spec.actions.get(i), pb.inner.actions.get(i)) else {
        return unit;
    };
    let ctx = PreparedContext::new(&state.context(pb, i, item));
    for (k, v) in &spec.args {
        if comp.raw_args.contains(&k.as_str()) {
            unit.args.insert(k.clone(), v.clone());
            continue;
        }
        let mut refs = Vec::new();
        template_refs(sandbox, v, comp.is_handler, &mut refs);
        refs.sort();
        refs.dedup();
        if !refs.is_empty() {
            unit.unknown.insert(k.clone(), unknown_because(&refs));
            continue;
        }
        let rendered = sandbox
            .render_value_prepared(v, &ctx, &format!("args.{k}"), &[])
            .map_err(|e| format!("rendering arguments: {e}"))
            .and_then(|v| {
                let mut one = Map::new();
                one.insert(k.clone(), v);
                crate::run::check_rendered(&comp.schema, Value::Object(one))
            });
        match rendered {
            Ok(Value::Object(mut one)) => {
                if let Some(v) = one.remove(k) {
                    unit.args.insert(k.clone(), v);
                }
            }
            Ok(_) => {}
            Err(e) => {
                unit.errors.insert(k.clone(), e);
            }
        }
    }
    unit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Catalog, parse_json};

    fn pb(spec: Value) -> Playbook {
        parse_json(&spec, &Catalog::builtin()).expect("valid playbook")
    }

    fn ctx() -> Value {
        trigger_context(
            json!({"title": "SSH brute force", "severity": "high", "source_ip": "10.0.0.5",
                   "hosts": ["a", "b"]}),
            Value::Null,
            json!({}),
            ("p", 1),
            "dry-run",
            "manual",
        )
    }

    #[test]
    fn renders_arguments_and_marks_results_of_earlier_actions_unknown() {
        let p = pb(json!({
            "name": "p", "triggers": [{"on": "manual"}],
            "actions": [
                {"ref": "tag", "action": "alert.update", "args": {"tags": ["auto"]}},
                {"ref": "note", "action": "alert.comment", "depends_on": ["tag"],
                 "args": {"text": "by {{ playbook.name }} for {{ alert.source_ip }}"}},
                {"ref": "more", "action": "alert.comment", "depends_on": ["note"],
                 "args": {"text": "{{ actions.note.result.comment_id }}"}}
            ]
        }));
        let out = preview(&p, Sandbox::shared(), ctx());
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].decision, "run");
        assert_eq!(out[0].units[0].args["tags"], json!(["auto"]));
        assert_eq!(out[1].units[0].args["text"], json!("by p for 10.0.0.5"));
        assert_eq!(out[2].decision, "run");
        assert!(out[2].units[0].args.is_empty());
        assert!(out[2].units[0].unknown["text"].contains("actions.note.result"));
    }

    #[test]
    fn run_if_false_skips_the_action_and_its_dependents() {
        let p = pb(json!({
            "name": "p", "triggers": [{"on": "manual"}],
            "actions": [
                {"ref": "a", "action": "alert.comment", "run_if": "alert.severity == 'low'",
                 "args": {"text": "x"}},
                {"ref": "b", "action": "alert.comment", "depends_on": ["a"], "args": {"text": "y"}}
            ]
        }));
        let out = preview(&p, Sandbox::shared(), ctx());
        assert_eq!(out[0].decision, "skip");
        assert_eq!(
            out[0].run_if.as_ref().and_then(|e| e.value.clone()),
            Some(json!(false))
        );
        assert_eq!(out[1].decision, "skip");
    }

    #[test]
    fn for_each_gives_one_unit_per_item_and_errors_are_reported_not_raised() {
        let p = pb(json!({
            "name": "p", "triggers": [{"on": "manual"}],
            "actions": [
                {"ref": "each", "action": "alert.comment", "for_each": "alert.hosts",
                 "args": {"text": "host {{ item }} #{{ item_index }}"}},
                {"ref": "bad", "action": "alert.comment",
                 "args": {"text": "{{ range(10000000) | list | length }}"}}
            ]
        }));
        let out = preview(&p, Sandbox::shared(), ctx());
        let each = out.iter().find(|a| a.ref_ == "each").expect("each");
        assert_eq!(each.units.len(), 2);
        assert_eq!(each.units[1].args["text"], json!("host b #1"));
        let bad = out.iter().find(|a| a.ref_ == "bad").expect("bad");
        assert_eq!(bad.decision, "error");
        assert!(bad.units[0].errors.contains_key("text"));
    }

    #[test]
    fn long_for_each_lists_are_cut_to_the_first_items() {
        let p = pb(json!({
            "name": "p", "triggers": [{"on": "manual"}],
            "actions": [{"ref": "each", "action": "alert.comment", "for_each": "range(250) | list",
                         "args": {"text": "{{ item }}"}}]
        }));
        let out = preview(&p, Sandbox::shared(), ctx());
        assert_eq!(out[0].units.len(), MAX_PREVIEW_ITEMS);
        let shown = out[0].for_each.as_ref().and_then(|e| e.value.clone());
        assert_eq!(
            shown.and_then(|v| v.as_array().map(Vec::len)),
            Some(MAX_PREVIEW_ITEMS)
        );
        assert!(
            out[0]
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("250 items"))
        );
    }
}
