//! The action catalog: which actions exist and which arguments they take.
//!
//! Validation checks every playbook action against it at load time. The built-in
//! actions are in [`Catalog::builtin`]; the integrations layer adds its own with
//! [`Catalog::register`].

use std::collections::BTreeMap;

use serde::Serialize;

/// The type an argument's value must have (after template rendering).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "values")]
pub enum ArgType {
    String,
    Integer,
    Number,
    Bool,
    StringList,
    Object,
    Any,
    Enum(Vec<String>),
    /// A string such as `"30s"` (see [`crate::duration::parse_duration`]).
    Duration,
}

impl ArgType {
    pub fn enumeration(values: &[&str]) -> Self {
        ArgType::Enum(values.iter().map(|v| (*v).to_owned()).collect())
    }

    /// A short human description, e.g. for error messages and docs.
    pub fn describe(&self) -> String {
        match self {
            ArgType::String => "a string".into(),
            ArgType::Integer => "an integer".into(),
            ArgType::Number => "a number".into(),
            ArgType::Bool => "a boolean".into(),
            ArgType::StringList => "a list of strings".into(),
            ArgType::Object => "an object".into(),
            ArgType::Any => "any value".into(),
            ArgType::Enum(v) => format!("one of {}", v.join(", ")),
            ArgType::Duration => "a duration such as \"30s\"".into(),
        }
    }

    /// Checks a concrete (non-template) value. `Err` carries the message.
    pub fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        use serde_json::Value as V;
        let ok = match (self, value) {
            (ArgType::Any, _) => true,
            (ArgType::String, V::String(_)) => true,
            (ArgType::Integer, V::Number(n)) => n.is_i64() || n.is_u64(),
            (ArgType::Number, V::Number(_)) => true,
            (ArgType::Bool, V::Bool(_)) => true,
            (ArgType::StringList, V::Array(items)) => items.iter().all(|i| i.is_string()),
            (ArgType::Object, V::Object(_)) => true,
            (ArgType::Enum(allowed), V::String(s)) => {
                if allowed.iter().any(|a| a == s) {
                    true
                } else {
                    return Err(format!(
                        "`{s}` is not allowed here: expected {}{}",
                        self.describe(),
                        crate::error::did_you_mean(s, allowed.iter().map(String::as_str))
                    ));
                }
            }
            (ArgType::Duration, V::String(s)) => {
                crate::duration::parse_duration(s)?;
                true
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "expected {}, got {}",
                self.describe(),
                json_kind(value)
            ))
        }
    }
}

pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_f64() => "a number",
        serde_json::Value::Number(_) => "an integer",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// One argument of an action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArgSchema {
    pub name: String,
    pub ty: ArgType,
    pub required: bool,
    pub description: String,
    /// The value used when the argument is not given (documentation; the action applies it).
    pub default: Option<serde_json::Value>,
    /// `false` for arguments that must never be template-rendered (e.g. a script's source:
    /// rendering alert data into code would be an injection).
    pub templated: bool,
}

impl ArgSchema {
    pub fn new(name: &str, ty: ArgType, description: &str) -> Self {
        Self {
            name: name.to_owned(),
            ty,
            required: false,
            description: description.to_owned(),
            default: None,
            templated: true,
        }
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn default_value(mut self, v: serde_json::Value) -> Self {
        self.default = Some(v);
        self
    }

    pub fn raw(mut self) -> Self {
        self.templated = false;
        self
    }
}

/// An action the engine knows how to run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionSchema {
    pub name: String,
    pub description: String,
    pub args: Vec<ArgSchema>,
    /// Whether it changes anything outside the run (alerts, incidents, remote systems).
    pub side_effects: bool,
}

impl ActionSchema {
    pub fn new(name: &str, description: &str, side_effects: bool, args: Vec<ArgSchema>) -> Self {
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            args,
            side_effects,
        }
    }

    pub fn arg(&self, name: &str) -> Option<&ArgSchema> {
        self.args.iter().find(|a| a.name == name)
    }
}

/// Action name → schema.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    actions: BTreeMap<String, ActionSchema>,
}

const ALERT_STATUSES: &[&str] = &[
    "new",
    "triaged",
    "in_progress",
    "escalated",
    "resolved",
    "false_positive",
];
const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "info"];
const DETERMINATIONS: &[&str] = &["malicious", "suspicious", "benign"];
const INCIDENT_STATUSES: &[&str] = &[
    "open",
    "in_progress",
    "pending_approval",
    "contained",
    "eradicated",
    "recovered",
    "closed",
];
const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an action.
    pub fn register(&mut self, schema: ActionSchema) {
        self.actions.insert(schema.name.clone(), schema);
    }

    pub fn get(&self, name: &str) -> Option<&ActionSchema> {
        self.actions.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    pub fn actions(&self) -> impl Iterator<Item = &ActionSchema> {
        self.actions.values()
    }

    /// The built-in actions.
    pub fn builtin() -> Self {
        use ArgType as T;
        let s = ArgSchema::new;
        let mut c = Catalog::new();
        c.register(ActionSchema::new(
            "alert.update",
            "Change the triggering alert: status, severity, determination, assignee, tags. At least one argument.",
            true,
            vec![
                s("status", T::enumeration(ALERT_STATUSES), "New status."),
                s("severity", T::enumeration(SEVERITIES), "New severity."),
                s("determination", T::enumeration(DETERMINATIONS), "Analyst determination."),
                s("resolve_reason", T::String, "Why it was resolved."),
                s("assignee", T::String, "A username, or empty to unassign."),
                s("tags", T::StringList, "Tags to add."),
                s("remove_tags", T::StringList, "Tags to remove."),
            ],
        ));
        c.register(ActionSchema::new(
            "alert.comment",
            "Add a comment to the triggering alert.",
            true,
            vec![s("text", T::String, "The comment (Markdown).").required()],
        ));
        c.register(ActionSchema::new(
            "incident.create",
            "Create an incident, linking the triggering alert by default.",
            true,
            vec![
                s("title", T::String, "Incident title.").required(),
                s("description", T::String, "Incident description."),
                s("severity", T::enumeration(SEVERITIES), "Incident severity."),
                s("tags", T::StringList, "Tags."),
                s("template", T::String, "Case template name."),
                s("link_alert", T::Bool, "Link the triggering alert.").default_value(true.into()),
            ],
        ));
        c.register(ActionSchema::new(
            "incident.link",
            "Link the triggering alert to an incident.",
            true,
            vec![s("incident_id", T::String, "The incident.").required()],
        ));
        c.register(ActionSchema::new(
            "incident.update",
            "Change an incident (by default the run's incident).",
            true,
            vec![
                s(
                    "incident_id",
                    T::String,
                    "The incident; default: the run's incident.",
                ),
                s("status", T::enumeration(INCIDENT_STATUSES), "New status."),
                s("severity", T::enumeration(SEVERITIES), "New severity."),
                s("tags", T::StringList, "Tags to add."),
                s("assignee", T::String, "A username, or empty to unassign."),
            ],
        ));
        c.register(ActionSchema::new(
            "observable.tag",
            "Tag an observable (IP, domain, hash, ...).",
            true,
            vec![
                s("value", T::String, "The observable's value.").required(),
                s(
                    "type",
                    T::String,
                    "The observable's type (ip, domain, ...).",
                ),
                s("tags", T::StringList, "Tags to add.").required(),
            ],
        ));
        c.register(ActionSchema::new(
            "http.request",
            "Send an HTTP request; the result is {status, headers, body}.",
            true,
            vec![
                s("method", T::enumeration(HTTP_METHODS), "HTTP method.")
                    .default_value("GET".into()),
                s("url", T::String, "Absolute URL.").required(),
                s("headers", T::Object, "Request headers."),
                s("body", T::Any, "Request body (JSON unless a string)."),
                s("timeout", T::Duration, "Request timeout."),
            ],
        ));
        c.register(ActionSchema::new(
            "script",
            "Run a sandboxed Rhai script; `input` is in scope, the last expression is the result.",
            false,
            vec![
                s(
                    "source",
                    T::String,
                    "Rhai source (never template-rendered).",
                )
                .required()
                .raw(),
                s("input", T::Any, "Data for the script (rendered)."),
            ],
        ));
        c.register(ActionSchema::new(
            "wait",
            "Pause the run for a duration (max 7 days) or until a time (RFC 3339).",
            false,
            vec![
                s("duration", T::Duration, "How long to wait (max 7d)."),
                s("until", T::String, "RFC 3339 time to wait for."),
            ],
        ));
        c.register(ActionSchema::new(
            "set",
            "Compute variables: the rendered values become the result and are merged into `vars`.",
            false,
            vec![s("values", T::Object, "Name → value (templates allowed).").required()],
        ));
        c.register(ActionSchema::new(
            "approval",
            "Ask people to approve before the run goes on.",
            false,
            vec![
                s("message", T::String, "What is asked.").required(),
                s("approvers", T::Integer, "Distinct approvals needed (1-5).")
                    .default_value(1.into()),
                s(
                    "ttl",
                    T::Duration,
                    "How long the request stays open (max 7d).",
                )
                .default_value("4h".into()),
                s(
                    "on_timeout",
                    T::enumeration(&["fail", "escalate"]),
                    "What happens when nobody decides.",
                )
                .default_value("fail".into()),
                s(
                    "roles",
                    T::StringList,
                    "Roles allowed to decide (default: analysts and admins).",
                ),
            ],
        ));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_has_the_documented_actions() {
        let c = Catalog::builtin();
        let names: Vec<&str> = c.names().collect();
        for n in [
            "alert.update",
            "alert.comment",
            "incident.create",
            "incident.link",
            "incident.update",
            "observable.tag",
            "http.request",
            "script",
            "wait",
            "set",
            "approval",
        ] {
            assert!(names.contains(&n), "{n} missing");
        }
        let comment = c.get("alert.comment").expect("alert.comment is built in");
        assert!(comment.arg("text").is_some_and(|a| a.required));
    }

    #[test]
    fn arg_type_checks() {
        assert!(ArgType::StringList.check(&json!(["a", "b"])).is_ok());
        assert_eq!(
            ArgType::StringList
                .check(&json!(["a", 1]))
                .expect_err("must fail"),
            "expected a list of strings, got a list"
        );
        assert!(ArgType::Integer.check(&json!(1.5)).is_err());
        assert!(ArgType::Number.check(&json!(1.5)).is_ok());
        let e = ArgType::enumeration(SEVERITIES)
            .check(&json!("hihg"))
            .expect_err("must fail");
        assert!(e.contains("did you mean `high`"), "{e}");
        assert!(ArgType::Duration.check(&json!("5q")).is_err());
    }

    #[test]
    fn register_adds() {
        let mut c = Catalog::builtin();
        c.register(ActionSchema::new(
            "slack.post",
            "Post to Slack",
            true,
            vec![],
        ));
        assert!(c.get("slack.post").is_some());
    }
}
