//! The declarative integration format: an integration type as a YAML (or JSON) document.
//!
//! ```yaml
//! name: virustotal
//! title: VirusTotal
//! category: intel
//! base_url: https://www.virustotal.com/api/v3
//! rate_limit: {requests: 4, per_seconds: 60}
//! config:
//!   api_key: {secret: true, required: true, description: API key}
//! auth:
//!   header: {name: x-apikey, value: "{{ secrets.api_key }}"}
//! health: {action: lookup_ip, input: {ip: 8.8.8.8}}
//! actions:
//!   lookup_ip:
//!     description: Reputation of an IP address
//!     enrich: {kinds: [ipv4, ipv6], input: ip}
//!     input:
//!       ip: {type: string, required: true}
//!     request:
//!       method: GET
//!       path: "/ip_addresses/{{ input.ip | urlencode }}"
//!     output:
//!       malicious: response.data.attributes.last_analysis_stats.malicious
//!     reputation:
//!       score: "[result.malicious * 10, 100] | min"
//!       verdict: "'malicious' if result.malicious > 2 else 'benign'"
//! ```
//!
//! Strings under `request` are minijinja templates over `input`, `config`, `secrets` and
//! `idempotency_key`; a string that is exactly one `{{ expr }}` keeps the expression's type
//! (a list stays a list in a JSON body). `output` values and `reputation` are minijinja
//! *expressions* over `response` (the body, parsed as JSON when it is JSON), `status`,
//! `headers` and `input` (and `result`, the output, for `reputation`); `secrets` are not in
//! scope there, so a mapping cannot copy a secret into a result. The full reference is in
//! docs/integrations.md.

use crate::types::{
    ActionDef, AuthDef, ConfigField, EnrichDef, FieldType, HealthDef, InputDef, IntegrationType,
    Kind, RateLimit, RequestDef,
};
use bulwark_playbook::ArgType;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A definition that does not load: every problem, each with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct DefinitionError(pub Vec<String>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    name: String,
    title: Option<String>,
    #[serde(default)]
    description: String,
    category: String,
    base_url: Option<String>,
    /// Bind the type to a handler written in Rust (`email`, `dns`) instead of HTTP requests.
    native: Option<String>,
    rate_limit: Option<RateLimitDoc>,
    #[serde(default)]
    config: BTreeMap<String, FieldDoc>,
    auth: Option<AuthDoc>,
    health: Option<HealthDoc>,
    /// Extra HTTP statuses that are worth retrying besides 429 and 5xx.
    #[serde(default)]
    retry_statuses: Vec<u16>,
    /// Whether this type is a notification channel (Slack, Teams, email, webhook): it must have
    /// a `notify` action taking `title` and `text`.
    #[serde(default)]
    channel: bool,
    /// Follow redirects (each hop checked like the first); only for types without auth.
    #[serde(default)]
    follow_redirects: bool,
    actions: BTreeMap<String, ActionDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitDoc {
    requests: u32,
    per_seconds: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldDoc {
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    description: String,
    #[serde(rename = "type", default)]
    ty: Option<String>,
    default: Option<Value>,
}

/// Exactly one of the members.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthDoc {
    header: Option<NameValue>,
    query: Option<NameValue>,
    bearer: Option<String>,
    basic: Option<BasicDoc>,
    oauth2: Option<OAuthDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicDoc {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthDoc {
    token_url: String,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthDoc {
    action: String,
    #[serde(default)]
    input: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionDoc {
    #[serde(default)]
    description: String,
    #[serde(default)]
    side_effects: bool,
    enrich: Option<EnrichDoc>,
    #[serde(default)]
    input: BTreeMap<String, InputDoc>,
    request: Option<RequestDoc>,
    not_found: Option<Value>,
    #[serde(default)]
    output: BTreeMap<String, String>,
    reputation: Option<ReputationDoc>,
    /// Send the engine's idempotency key in this header.
    idempotency_header: Option<String>,
    /// An expression over the answer that, when true, makes a 2xx answer a failure (Slack
    /// answers 200 with `ok: false`).
    fail_if: Option<String>,
    /// The failure's message (expression), with `fail_if`.
    fail_message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrichDoc {
    kinds: Vec<String>,
    input: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputDoc {
    #[serde(rename = "type", default = "default_type")]
    ty: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    description: String,
    default: Option<Value>,
    #[serde(default)]
    values: Vec<String>,
}

fn default_type() -> String {
    "string".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestDoc {
    #[serde(default = "default_method")]
    method: String,
    /// Appended to the base URL.
    #[serde(default)]
    path: String,
    /// A complete URL instead of base URL + path (incoming webhooks whose URL is the secret).
    url: Option<String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A JSON body: strings inside are templates.
    json: Option<Value>,
    /// A form body (`application/x-www-form-urlencoded`).
    form: Option<BTreeMap<String, String>>,
    /// A raw text body.
    body: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReputationDoc {
    score: String,
    verdict: String,
}

/// Observable kinds enrichment knows.
pub const OBSERVABLE_KINDS: &[&str] = &[
    "ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256", "sha512", "cve",
];
pub const CATEGORIES: &[&str] = &["intel", "siem", "edr", "messaging", "ticketing", "utility"];
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Parses and checks a definition (YAML is a superset of JSON, so both load).
pub fn parse(text: &str) -> Result<IntegrationType, DefinitionError> {
    let de = serde_norway::Deserializer::from_str(text);
    let doc: Doc = serde_path_to_error_free(de)?;
    build(doc)
}

fn serde_path_to_error_free(de: serde_norway::Deserializer<'_>) -> Result<Doc, DefinitionError> {
    Doc::deserialize(de).map_err(|e| DefinitionError(vec![e.to_string()]))
}

fn check_template(errors: &mut Vec<String>, at: &str, t: &str) {
    let env = crate::template::env();
    if let Err(e) = env.template_from_str(t) {
        errors.push(format!("{at}: template does not compile: {e}"));
    }
}

fn check_expr(errors: &mut Vec<String>, at: &str, e: &str) {
    let env = crate::template::env();
    if let Err(err) = env.compile_expression(e) {
        errors.push(format!("{at}: expression does not compile: {err}"));
    }
}

fn templates_in(errors: &mut Vec<String>, at: &str, v: &Value) {
    match v {
        Value::String(s) => check_template(errors, at, s),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                templates_in(errors, &format!("{at}[{i}]"), x);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                templates_in(errors, &format!("{at}.{k}"), x);
            }
        }
        _ => {}
    }
}

fn arg_type(ty: &str, values: &[String]) -> Option<ArgType> {
    Some(match ty {
        "string" => ArgType::String,
        "integer" => ArgType::Integer,
        "number" => ArgType::Number,
        "bool" | "boolean" => ArgType::Bool,
        "string_list" => ArgType::StringList,
        "object" => ArgType::Object,
        "any" => ArgType::Any,
        "enum" if !values.is_empty() => ArgType::Enum(values.to_vec()),
        _ => return None,
    })
}

fn build(doc: Doc) -> Result<IntegrationType, DefinitionError> {
    let mut errors = Vec::new();
    if !valid_name(&doc.name) {
        errors.push(format!(
            "name: `{}` must be 1-64 characters of [a-z0-9_], starting with a letter",
            doc.name
        ));
    }
    if !CATEGORIES.contains(&doc.category.as_str()) {
        errors.push(format!(
            "category: expected one of {}",
            CATEGORIES.join(", ")
        ));
    }
    let native = doc.native.clone();
    if native.is_none() {
        match &doc.base_url {
            Some(u) => match reqwest::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                _ => errors.push("base_url: must be an http(s) URL".into()),
            },
            None => {
                // Every action must then give a full `url`.
            }
        }
    }
    let mut fields = Vec::new();
    for (name, f) in &doc.config {
        if !valid_name(name) {
            errors.push(format!("config.{name}: invalid field name"));
        }
        let ty = match f.ty.as_deref().unwrap_or("string") {
            "string" => FieldType::String,
            "url" => FieldType::Url,
            "integer" => FieldType::Integer,
            "bool" | "boolean" => FieldType::Bool,
            "string_list" => FieldType::StringList,
            other => {
                errors.push(format!("config.{name}.type: unknown type `{other}`"));
                FieldType::String
            }
        };
        fields.push(ConfigField {
            name: name.clone(),
            secret: f.secret,
            required: f.required,
            description: f.description.clone(),
            ty,
            default: f.default.clone(),
        });
    }
    if native.is_none() && doc.base_url.is_some() && !doc.config.contains_key("base_url") {
        fields.push(ConfigField {
            name: "base_url".into(),
            secret: false,
            required: false,
            description: "Override the service's address (self-hosted or regional endpoints). \
                          Changing it requires giving the secrets again."
                .into(),
            ty: FieldType::Url,
            default: doc.base_url.clone().map(Value::String),
        });
    }
    if native.is_none() && !doc.config.contains_key("rate_limit_per_minute") {
        fields.push(ConfigField {
            name: "rate_limit_per_minute".into(),
            secret: false,
            required: false,
            description: "Requests per minute this instance may make (default: the service's documented limit, if any)".into(),
            ty: FieldType::Integer,
            default: None,
        });
    }
    let auth = match doc.auth {
        None => None,
        Some(a) => {
            let mut all = Vec::new();
            if let Some(h) = a.header {
                all.push(AuthDef::Header {
                    name: h.name,
                    value: h.value,
                });
            }
            if let Some(q) = a.query {
                all.push(AuthDef::Query {
                    name: q.name,
                    value: q.value,
                });
            }
            if let Some(t) = a.bearer {
                all.push(AuthDef::Bearer(t));
            }
            if let Some(b) = a.basic {
                all.push(AuthDef::Basic {
                    username: b.username,
                    password: b.password,
                });
            }
            if let Some(o) = a.oauth2 {
                all.push(AuthDef::OAuth2 {
                    token_url: o.token_url,
                    client_id: o.client_id,
                    client_secret: o.client_secret,
                    scope: o.scope,
                });
            }
            if all.len() != 1 {
                errors.push("auth: exactly one of header, query, bearer, basic and oauth2".into());
            }
            all.pop()
        }
    };
    if doc.follow_redirects && auth.is_some() {
        errors.push(
            "follow_redirects: not allowed with auth (credentials must not follow a redirect)"
                .into(),
        );
    }
    if let Some(a) = &auth {
        for (i, t) in a.templates().iter().enumerate() {
            check_template(&mut errors, &format!("auth[{i}]"), t);
        }
    }
    let mut actions = Vec::new();
    for (aname, a) in doc.actions {
        let at = format!("actions.{aname}");
        if !valid_name(&aname) {
            errors.push(format!("{at}: invalid action name"));
        }
        let mut inputs = Vec::new();
        for (iname, i) in &a.input {
            if !valid_name(iname) || iname == "integration" {
                errors.push(format!(
                    "{at}.input.{iname}: invalid input name (`integration` is reserved)"
                ));
            }
            let Some(ty) = arg_type(&i.ty, &i.values) else {
                errors.push(format!(
                    "{at}.input.{iname}.type: expected string, integer, number, bool, string_list, object, any or enum (with values)"
                ));
                continue;
            };
            inputs.push(InputDef {
                name: iname.clone(),
                ty,
                required: i.required,
                description: i.description.clone(),
                default: i.default.clone(),
            });
        }
        let enrich = match a.enrich {
            Some(e) => {
                for k in &e.kinds {
                    if !OBSERVABLE_KINDS.contains(&k.as_str()) {
                        errors.push(format!("{at}.enrich.kinds: unknown kind `{k}`"));
                    }
                }
                if !a.input.contains_key(&e.input) {
                    errors.push(format!(
                        "{at}.enrich.input: `{}` is not an input of this action",
                        e.input
                    ));
                }
                if a.reputation.is_none() {
                    errors.push(format!(
                        "{at}.enrich: an enrichment action needs `reputation`"
                    ));
                }
                Some(EnrichDef {
                    kinds: e.kinds,
                    input: e.input,
                })
            }
            None => None,
        };
        let request = match a.request {
            Some(r) => {
                let method = r.method.to_ascii_uppercase();
                if !METHODS.contains(&method.as_str()) {
                    errors.push(format!("{at}.request.method: unknown method"));
                }
                if r.url.is_none() && doc.base_url.is_none() && !doc.config.contains_key("base_url")
                {
                    errors.push(format!(
                        "{at}.request: needs `url` (the type has no base_url)"
                    ));
                }
                let bodies = [r.json.is_some(), r.form.is_some(), r.body.is_some()]
                    .iter()
                    .filter(|b| **b)
                    .count();
                if bodies > 1 {
                    errors.push(format!("{at}.request: at most one of json, form and body"));
                }
                check_template(&mut errors, &format!("{at}.request.path"), &r.path);
                if let Some(u) = &r.url {
                    check_template(&mut errors, &format!("{at}.request.url"), u);
                }
                for (k, v) in r.query.iter().chain(r.headers.iter()) {
                    check_template(&mut errors, &format!("{at}.request.{k}"), v);
                }
                if let Some(j) = &r.json {
                    templates_in(&mut errors, &format!("{at}.request.json"), j);
                }
                if let Some(f) = &r.form {
                    for (k, v) in f {
                        check_template(&mut errors, &format!("{at}.request.form.{k}"), v);
                    }
                }
                if let Some(b) = &r.body {
                    check_template(&mut errors, &format!("{at}.request.body"), b);
                }
                Some(RequestDef {
                    method,
                    path: r.path,
                    url: r.url,
                    query: r.query,
                    headers: r.headers,
                    json: r.json,
                    form: r.form,
                    body: r.body,
                })
            }
            None if native.is_some() => None,
            None => {
                errors.push(format!("{at}: needs a `request`"));
                None
            }
        };
        for (k, e) in &a.output {
            check_expr(&mut errors, &format!("{at}.output.{k}"), e);
        }
        for (k, e) in [("fail_if", &a.fail_if), ("fail_message", &a.fail_message)] {
            if let Some(e) = e {
                check_expr(&mut errors, &format!("{at}.{k}"), e);
            }
        }
        if let Some(r) = &a.reputation {
            check_expr(&mut errors, &format!("{at}.reputation.score"), &r.score);
            check_expr(&mut errors, &format!("{at}.reputation.verdict"), &r.verdict);
        }
        actions.push(ActionDef {
            name: aname,
            description: a.description,
            side_effects: a.side_effects,
            inputs,
            enrich,
            request,
            not_found: a.not_found,
            output: a.output.into_iter().collect(),
            reputation: a.reputation.map(|r| (r.score, r.verdict)),
            idempotency_header: a.idempotency_header,
            fail_if: a.fail_if,
            fail_message: a.fail_message,
        });
    }
    if actions.is_empty() {
        errors.push("actions: at least one action".into());
    }
    let health = doc.health.map(|h| HealthDef {
        action: h.action,
        input: if h.input.is_null() {
            Value::Object(Default::default())
        } else {
            h.input
        },
    });
    if let Some(h) = &health
        && !actions.iter().any(|a| a.name == h.action)
    {
        errors.push(format!(
            "health.action: `{}` is not an action of this type",
            h.action
        ));
    }
    if doc.channel {
        match actions.iter().find(|a| a.name == "notify") {
            Some(a) if a.inputs.iter().any(|i| i.name == "text") => {}
            _ => {
                errors.push("channel: a channel needs a `notify` action with a `text` input".into())
            }
        }
    }
    let rate_limit = doc.rate_limit.map(|r| RateLimit {
        requests: r.requests.max(1),
        per: std::time::Duration::from_secs(u64::from(r.per_seconds.max(1))),
    });
    if !errors.is_empty() {
        return Err(DefinitionError(errors));
    }
    Ok(IntegrationType {
        title: doc.title.unwrap_or_else(|| doc.name.clone()),
        name: doc.name,
        description: doc.description,
        category: doc.category,
        fields,
        actions,
        auth,
        health,
        rate_limit,
        retry_statuses: doc.retry_statuses,
        channel: doc.channel,
        follow_redirects: doc.follow_redirects,
        builtin: false,
        kind: match native {
            Some(n) => Kind::Native(n),
            None => Kind::Http,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_listed_with_their_place() {
        let e = parse(
            "name: Bad-Name\ncategory: nope\nactions:\n  x:\n    request: {method: FETCH, path: '{{ oops'}\n    output: {a: 'response.'}\n",
        )
        .expect_err("invalid");
        let all = e.0.join("\n");
        assert!(all.contains("name:"), "{all}");
        assert!(all.contains("category:"), "{all}");
        assert!(all.contains("actions.x.request.method"), "{all}");
        assert!(all.contains("actions.x.request.path"), "{all}");
        assert!(all.contains("actions.x.output.a"), "{all}");
        let e = parse("name: x\ncategory: intel\nbogus: 1\nactions: {}\n").expect_err("unknown");
        assert!(e.0[0].contains("bogus"), "{e}");
    }
}
