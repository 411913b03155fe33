//! Integration types: what a type is made of once its definition is loaded.

use bulwark_playbook::{ActionSchema, ArgSchema, ArgType};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// The value type of a configuration field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Url,
    Integer,
    Bool,
    StringList,
}

impl FieldType {
    pub fn check(self, v: &Value) -> Result<(), String> {
        let ok = match (self, v) {
            (FieldType::String | FieldType::Url, Value::String(_)) => true,
            (FieldType::Integer, Value::Number(n)) => n.is_i64(),
            (FieldType::Bool, Value::Bool(_)) => true,
            (FieldType::StringList, Value::Array(a)) => a.iter().all(Value::is_string),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "expected {}",
                match self {
                    FieldType::String => "a string",
                    FieldType::Url => "an http(s) URL",
                    FieldType::Integer => "an integer",
                    FieldType::Bool => "a boolean",
                    FieldType::StringList => "a list of strings",
                }
            ));
        }
        if self == FieldType::Url {
            let s = v.as_str().unwrap_or_default();
            match reqwest::Url::parse(s) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => return Err("expected an http(s) URL".into()),
            }
            if s.len() > 2048 {
                return Err("at most 2048 characters".into());
            }
        }
        if let Value::String(s) = v
            && (s.len() > 8192 || s.contains('\0'))
        {
            return Err("at most 8192 characters, no NUL".into());
        }
        Ok(())
    }
}

/// One configuration field of a type.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigField {
    pub name: String,
    /// Stored encrypted, never returned.
    pub secret: bool,
    pub required: bool,
    pub description: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

/// How requests authenticate (templates over `config` and `secrets`).
#[derive(Debug, Clone)]
pub enum AuthDef {
    Header {
        name: String,
        value: String,
    },
    Query {
        name: String,
        value: String,
    },
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
    /// OAuth 2.0 client credentials: a token is fetched (and cached until it expires) and sent
    /// as a bearer token.
    OAuth2 {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
    },
}

impl AuthDef {
    pub fn templates(&self) -> Vec<&str> {
        match self {
            AuthDef::Header { value, .. } | AuthDef::Query { value, .. } => vec![value],
            AuthDef::Bearer(t) => vec![t],
            AuthDef::Basic { username, password } => vec![username, password],
            AuthDef::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let mut v = vec![token_url.as_str(), client_id, client_secret];
                if let Some(s) = scope {
                    v.push(s);
                }
                v
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AuthDef::Header { .. } => "header",
            AuthDef::Query { .. } => "query",
            AuthDef::Bearer(_) => "bearer",
            AuthDef::Basic { .. } => "basic",
            AuthDef::OAuth2 { .. } => "oauth2",
        }
    }
}

/// An HTTP request template.
#[derive(Debug, Clone)]
pub struct RequestDef {
    pub method: String,
    pub path: String,
    pub url: Option<String>,
    pub query: std::collections::BTreeMap<String, String>,
    pub headers: std::collections::BTreeMap<String, String>,
    pub json: Option<Value>,
    pub form: Option<std::collections::BTreeMap<String, String>>,
    pub body: Option<String>,
}

/// Which observables an action can enrich, and the input that takes the value.
#[derive(Debug, Clone, Serialize)]
pub struct EnrichDef {
    pub kinds: Vec<String>,
    pub input: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ArgType,
    pub required: bool,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

/// One action of a type (engine name: `<type>.<action>`).
#[derive(Debug, Clone)]
pub struct ActionDef {
    pub name: String,
    pub description: String,
    pub side_effects: bool,
    pub inputs: Vec<InputDef>,
    pub enrich: Option<EnrichDef>,
    pub request: Option<RequestDef>,
    /// The result when the service answers 404 (an unknown indicator is not an error).
    pub not_found: Option<Value>,
    /// Output name → expression.
    pub output: Vec<(String, String)>,
    /// (score expression, verdict expression) over `result`.
    pub reputation: Option<(String, String)>,
    pub idempotency_header: Option<String>,
    pub fail_if: Option<String>,
    pub fail_message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HealthDef {
    pub action: String,
    pub input: Value,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RateLimit {
    pub requests: u32,
    #[serde(serialize_with = "secs")]
    pub per: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Http,
    /// A handler written in Rust (`email`, `dns`).
    Native(String),
}

/// A loaded integration type.
#[derive(Debug, Clone)]
pub struct IntegrationType {
    pub name: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub fields: Vec<ConfigField>,
    pub actions: Vec<ActionDef>,
    pub auth: Option<AuthDef>,
    pub health: Option<HealthDef>,
    pub rate_limit: Option<RateLimit>,
    pub retry_statuses: Vec<u16>,
    pub channel: bool,
    pub follow_redirects: bool,
    /// Shipped in the binary (not from the admin's directory).
    pub builtin: bool,
    pub kind: Kind,
}

impl IntegrationType {
    pub fn action(&self, name: &str) -> Option<&ActionDef> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn field(&self, name: &str) -> Option<&ConfigField> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn secret_fields(&self) -> impl Iterator<Item = &ConfigField> {
        self.fields.iter().filter(|f| f.secret)
    }

    /// The playbook catalog entry of each action, with the `integration` argument that picks
    /// the instance.
    pub fn schemas(&self) -> Vec<ActionSchema> {
        self.actions
            .iter()
            .map(|a| {
                let mut args: Vec<ArgSchema> = a
                    .inputs
                    .iter()
                    .map(|i| {
                        let mut s = ArgSchema::new(&i.name, i.ty.clone(), &i.description);
                        if i.required {
                            s = s.required();
                        }
                        if let Some(d) = &i.default {
                            s = s.default_value(d.clone());
                        }
                        s
                    })
                    .collect();
                args.push(ArgSchema::new(
                    "integration",
                    ArgType::String,
                    "The integration instance (its name); default: the tenant's default (or only) one of this type.",
                ));
                ActionSchema::new(
                    &format!("{}.{}", self.name, a.name),
                    &if a.description.is_empty() {
                        format!("{} action {}", self.title, a.name)
                    } else {
                        format!("{}: {}", self.title, a.description)
                    },
                    a.side_effects,
                    args,
                )
            })
            .collect()
    }
}
