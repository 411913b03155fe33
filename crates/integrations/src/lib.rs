//! # bulwark-integrations: what Bulwark can reach
//!
//! An **integration type** (VirusTotal, Slack, MISP, ...) is a name, a configuration schema
//! (fields, some of them secret) and actions with typed inputs. Most types are *declarative*:
//! a YAML definition of HTTP requests (see [`definition`]), embedded in the binary
//! (`src/builtin/*.yaml`) or loaded by the operator from a directory. The few that need code
//! (SMTP email, DNS) are *native* (see [`native`]).
//!
//! An **instance** is a tenant's configured integration (stored by `bulwark-store`): its
//! non-secret config in clear, its secrets as one AEAD ciphertext ([`secret`]). [`Integrations`]
//! is the runtime: it knows the types, opens instances with the keyring, and makes the calls
//! through the outbound policy ([`outbound`]: destination checks, rate limits, retries, circuit
//! breakers). Every action is an engine action (`virustotal.lookup_ip`, [`action`]) registered
//! in the worker and in the playbook catalog, and can be run by hand through the API.
//!
//! ## Secrets never leak
//! Secrets are decrypted only for the call, are not in scope of output mappings, and every
//! message that leaves a call (errors, health results) and every result passes through
//! [`Redactor`], which replaces each secret value with `[redacted]`, so a vendor that echoes a
//! key in its error text does not put it in a run record. [`Instance`]'s `Debug` shows no
//! secret.

pub mod action;
pub mod definition;
pub mod enrich;
pub mod native;
pub mod notify;
pub mod outbound;
pub mod secret;
pub mod template;
pub mod types;

use bulwark_core::TenantId;
use bulwark_playbook::Catalog;
use bulwark_store::Store;
use bulwark_store::integrations::{HealthResult, IntegrationRecord};
use outbound::{Guards, NetPolicy, OutboundSettings};
use secret::Keyring;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use types::{ActionDef, AuthDef, IntegrationType, Kind};
use uuid::Uuid;

pub use secret::{SecretError, SecretKey};

/// A failed call: `retryable` lets a playbook's retry policy (or a job) try again. The message
/// has been redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub message: String,
    pub retryable: bool,
}

impl CallError {
    pub fn fatal(m: impl Into<String>) -> Self {
        Self {
            message: m.into(),
            retryable: false,
        }
    }
    pub fn retry(m: impl Into<String>) -> Self {
        Self {
            message: m.into(),
            retryable: true,
        }
    }
}

/// The definitions shipped in the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("virustotal", include_str!("builtin/virustotal.yaml")),
    ("abuseipdb", include_str!("builtin/abuseipdb.yaml")),
    ("shodan", include_str!("builtin/shodan.yaml")),
    ("greynoise", include_str!("builtin/greynoise.yaml")),
    ("urlhaus", include_str!("builtin/urlhaus.yaml")),
    ("threatfox", include_str!("builtin/threatfox.yaml")),
    ("misp", include_str!("builtin/misp.yaml")),
    ("elastic", include_str!("builtin/elastic.yaml")),
    ("splunk", include_str!("builtin/splunk.yaml")),
    ("defender", include_str!("builtin/defender.yaml")),
    ("crowdstrike", include_str!("builtin/crowdstrike.yaml")),
    ("slack", include_str!("builtin/slack.yaml")),
    ("slack_webhook", include_str!("builtin/slack_webhook.yaml")),
    ("teams", include_str!("builtin/teams.yaml")),
    ("webhook", include_str!("builtin/webhook.yaml")),
    ("jira", include_str!("builtin/jira.yaml")),
    ("pagerduty", include_str!("builtin/pagerduty.yaml")),
    ("rdap", include_str!("builtin/rdap.yaml")),
    ("email", include_str!("builtin/email.yaml")),
    ("dns", include_str!("builtin/dns.yaml")),
];

/// The built-in types (each definition is checked by a test).
pub fn builtin_types() -> Result<Vec<IntegrationType>, String> {
    BUILTIN
        .iter()
        .map(|(name, text)| {
            definition::parse(text)
                .map(|mut t| {
                    t.builtin = true;
                    t
                })
                .map_err(|e| format!("built-in integration {name}: {e}"))
        })
        .collect()
}

/// Loads the operator's definitions: every `*.yaml`, `*.yml` and `*.json` file of `dir` (not
/// hidden, not in subdirectories). Every problem names its file.
pub fn load_dir(dir: &Path) -> Result<Vec<IntegrationType>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => match definition::parse(&text) {
                Ok(t) => out.push(t),
                Err(e) => errors.push(format!("{}: {e}", f.display())),
            },
            Err(e) => errors.push(format!("{}: {e}", f.display())),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n"))
    }
}

/// Replaces secret values in text and results.
#[derive(Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

/// The parts of a secret URL that are credentials on their own: path segments and query
/// parameters (a webhook's token, as Slack, Teams or a generic webhook put it) and the
/// userinfo. Upstreams echo them in their errors without the rest of the URL, so redacting
/// the whole URL only is not enough. Short parts (`hook`, `v1`) are left: they are not
/// secrets and redacting them would garble messages.
fn url_credentials(v: &str) -> Vec<String> {
    const MIN: usize = 10;
    let Some((_, rest)) = v.split_once("://") else {
        return Vec::new();
    };
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut parts: Vec<&str> = Vec::new();
    if let Some((userinfo, _host)) = authority.rsplit_once('@') {
        parts.extend(userinfo.split(':'));
    }
    parts.extend(tail.split(['/', '?', '&', '=', '#']));
    parts
        .into_iter()
        .filter(|p| p.len() >= MIN)
        .map(str::to_owned)
        .collect()
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values
            .into_iter()
            .flat_map(|v| {
                let mut all = url_credentials(&v);
                all.push(v);
                all
            })
            .filter(|v| v.len() >= 4)
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self { values }
    }

    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "[redacted]");
            }
        }
        out
    }

    pub fn value(&self, v: Value) -> Value {
        if self.values.is_empty() {
            return v;
        }
        match v {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|x| self.value(x)).collect()),
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, x)| (self.text(&k), self.value(x)))
                    .collect(),
            ),
            other => other,
        }
    }

    pub fn error(&self, e: CallError) -> CallError {
        CallError {
            message: self.text(&e.message),
            retryable: e.retryable,
        }
    }
}

/// An opened instance: its type, config (defaults applied) and decrypted secrets.
#[derive(Clone)]
pub struct Instance {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub name: String,
    pub ty: Arc<IntegrationType>,
    pub config: Map<String, Value>,
    secrets: Map<String, Value>,
    pub redactor: Redactor,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("type", &self.ty.name)
            .field("name", &self.name)
            .field("config", &self.config)
            .field("secrets", &"[redacted]")
            .finish()
    }
}

impl Instance {
    /// A secret field's value (for native handlers).
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).and_then(Value::as_str)
    }

    pub fn config_str(&self, name: &str) -> Option<&str> {
        self.config.get(name).and_then(Value::as_str)
    }
}

/// The integrations runtime: types, keyring, outbound policy and per-instance guards.
pub struct Integrations {
    types: BTreeMap<String, Arc<IntegrationType>>,
    keyring: Keyring,
    policy: NetPolicy,
    settings: OutboundSettings,
    guards: Guards,
    catalog: Catalog,
    /// OAuth 2.0 access tokens per instance, until they expire.
    tokens: std::sync::Mutex<std::collections::HashMap<Uuid, (String, Instant)>>,
}

impl std::fmt::Debug for Integrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrations")
            .field("types", &self.types.keys().collect::<Vec<_>>())
            .field("key", &self.keyring.current_id())
            .finish()
    }
}

impl Integrations {
    /// The built-in types plus `custom` (a custom type may not take a built-in's name).
    pub fn new(
        keyring: Keyring,
        settings: OutboundSettings,
        custom: Vec<IntegrationType>,
    ) -> Result<Self, String> {
        let mut types = BTreeMap::new();
        for t in builtin_types()? {
            types.insert(t.name.clone(), Arc::new(t));
        }
        for t in custom {
            if types.contains_key(&t.name) {
                return Err(format!(
                    "integration type `{}` is already defined (built in or twice)",
                    t.name
                ));
            }
            if let Kind::Native(n) = &t.kind
                && !native::exists(n)
            {
                return Err(format!(
                    "integration type `{}`: no native handler `{n}`",
                    t.name
                ));
            }
            types.insert(t.name.clone(), Arc::new(t));
        }
        let mut catalog = Catalog::builtin();
        for t in types.values() {
            for s in t.schemas() {
                catalog.register(s);
            }
        }
        Ok(Self {
            types,
            keyring,
            policy: NetPolicy::new(&settings.allow),
            settings,
            guards: Guards::default(),
            catalog,
            tokens: Default::default(),
        })
    }

    /// Built-in types only, an ephemeral key and no allow-list: for tests and tools.
    pub fn for_tests(allow: &[&str]) -> Self {
        let settings = OutboundSettings {
            allow: allow.iter().map(|s| (*s).to_owned()).collect(),
            backoff: Duration::from_millis(20),
            notify_backoff: Duration::from_millis(100),
            ..OutboundSettings::default()
        };
        // The built-in definitions are covered by tests; this cannot fail in a test build.
        Self::new(Keyring::ephemeral(), settings, Vec::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Where outbound calls may go.
    pub fn policy(&self) -> &NetPolicy {
        &self.policy
    }

    /// The playbook catalog: the engine's built-in actions and every integration action.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn types(&self) -> impl Iterator<Item = &Arc<IntegrationType>> {
        self.types.values()
    }

    pub fn get_type(&self, name: &str) -> Option<Arc<IntegrationType>> {
        self.types.get(name).cloned()
    }

    /// `virustotal.lookup_ip` → its type and action.
    pub fn action(&self, full: &str) -> Option<(Arc<IntegrationType>, &ActionDef)> {
        let (t, a) = full.split_once('.')?;
        let ty = self.types.get(t)?;
        let def = ty.action(a)?;
        Some((ty.clone(), def))
    }

    /// Encrypts an instance's secret fields, bound to its id.
    pub fn seal(&self, id: Uuid, secrets: &Map<String, Value>) -> Option<String> {
        if secrets.is_empty() {
            return None;
        }
        let plain = serde_json::to_vec(secrets).unwrap_or_default();
        Some(self.keyring.seal(&plain, id.as_bytes()))
    }

    /// Decrypts an instance's secret fields.
    pub fn open_secrets(&self, rec: &IntegrationRecord) -> Result<Map<String, Value>, CallError> {
        match &rec.secrets {
            None => Ok(Map::new()),
            Some(s) => {
                let plain = self
                    .keyring
                    .open(s, rec.id.as_bytes())
                    .map_err(|e| CallError::fatal(format!("integration `{}`: {e}", rec.name)))?;
                serde_json::from_slice(&plain).map_err(|_| {
                    CallError::fatal(format!(
                        "integration `{}`: the stored secrets are not readable",
                        rec.name
                    ))
                })
            }
        }
    }

    /// Opens a stored instance for calls.
    pub fn open(&self, rec: &IntegrationRecord) -> Result<Instance, CallError> {
        let ty = self.get_type(&rec.type_name).ok_or_else(|| {
            CallError::fatal(format!(
                "integration `{}` has type `{}`, which this node does not know",
                rec.name, rec.type_name
            ))
        })?;
        let secrets = self.open_secrets(rec)?;
        let mut config = rec.config.as_object().cloned().unwrap_or_default();
        for f in ty.fields.iter().filter(|f| !f.secret) {
            if !config.contains_key(&f.name)
                && let Some(d) = &f.default
            {
                config.insert(f.name.clone(), d.clone());
            }
        }
        let redactor = Redactor::new(
            secrets
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned)),
        );
        Ok(Instance {
            id: rec.id,
            tenant_id: rec.tenant_id,
            name: rec.name.clone(),
            ty,
            config,
            secrets,
            redactor,
        })
    }

    /// The instance an action uses in a tenant: the one named, else the default of the type,
    /// else the only one.
    pub async fn resolve(
        &self,
        store: &Store,
        tenant: TenantId,
        type_name: &str,
        name: Option<&str>,
    ) -> Result<Instance, CallError> {
        let all = store
            .integrations_of_type(tenant, type_name)
            .await
            .map_err(|e| CallError::retry(format!("loading the {type_name} integration: {e}")))?;
        let rec = match name {
            Some(n) => all.iter().find(|r| r.name == n).ok_or_else(|| {
                CallError::fatal(format!(
                    "integration: this tenant has no {type_name} integration named `{n}`"
                ))
            })?,
            None => match all.iter().find(|r| r.is_default) {
                Some(r) => r,
                None => match all.as_slice() {
                    [one] => one,
                    [] => {
                        return Err(CallError::fatal(format!(
                            "this tenant has no {type_name} integration: configure one first"
                        )));
                    }
                    _ => {
                        return Err(CallError::fatal(format!(
                            "integration: this tenant has several {type_name} integrations and none is the default: name one"
                        )));
                    }
                },
            },
        };
        if !rec.enabled {
            return Err(CallError::fatal(format!(
                "integration `{}` is disabled",
                rec.name
            )));
        }
        self.open(rec)
    }

    /// Checks an action's input against its schema: unknown names, missing required ones,
    /// types; applies defaults. `integration` is removed (it picks the instance).
    pub fn check_input(def: &ActionDef, input: &Value) -> Result<Map<String, Value>, CallError> {
        let mut map = match input {
            Value::Object(o) => o.clone(),
            Value::Null => Map::new(),
            _ => return Err(CallError::fatal("input: expected an object")),
        };
        map.remove("integration");
        for k in map.keys() {
            if !def.inputs.iter().any(|i| &i.name == k) {
                return Err(CallError::fatal(format!(
                    "input.{k}: unknown input (expected {})",
                    def.inputs
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        for i in &def.inputs {
            match map.get(&i.name) {
                None | Some(Value::Null) => {
                    if let Some(d) = &i.default {
                        map.insert(i.name.clone(), d.clone());
                    } else if i.required {
                        return Err(CallError::fatal(format!("input.{}: required", i.name)));
                    } else {
                        map.remove(&i.name);
                    }
                }
                Some(v) => {
                    // A scalar where a string is expected is taken as its text (templates
                    // render numbers as numbers).
                    if i.ty == bulwark_playbook::ArgType::String
                        && (v.is_number() || v.is_boolean())
                    {
                        let s = v.to_string();
                        map.insert(i.name.clone(), Value::String(s));
                        continue;
                    }
                    i.ty.check(v)
                        .map_err(|m| CallError::fatal(format!("input.{}: {m}", i.name)))?;
                }
            }
        }
        Ok(map)
    }

    /// Runs one action of an instance within `timeout`.
    pub async fn call(
        &self,
        inst: &Instance,
        action: &str,
        input: &Value,
        idempotency_key: &str,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let def = inst.ty.action(action).ok_or_else(|| {
            CallError::fatal(format!("{} has no action `{action}`", inst.ty.name))
        })?;
        let input = Value::Object(Self::check_input(def, input)?);
        let deadline = Instant::now() + timeout;
        let out = match &inst.ty.kind {
            Kind::Native(n) => native::call(n, self, inst, def, &input, deadline).await,
            Kind::Http => {
                self.http_call(inst, def, &input, idempotency_key, deadline)
                    .await
            }
        };
        out.map(|v| inst.redactor.value(v))
            .map_err(|e| inst.redactor.error(e))
    }

    /// The type's health check: a real call, its outcome with the service's reason.
    pub async fn health(&self, inst: &Instance) -> HealthResult {
        let started = Instant::now();
        let outcome = match (&inst.ty.kind, &inst.ty.health) {
            (_, Some(h)) => self
                .call(
                    inst,
                    &h.action,
                    &h.input,
                    "health-check",
                    Duration::from_secs(20),
                )
                .await
                .map(|_| "OK".to_string()),
            (Kind::Native(n), None) => native::health(n, inst).await,
            (Kind::Http, None) => Ok(
                "configuration is valid; this type has no health check that sends nothing"
                    .to_string(),
            ),
        };
        let latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        let (ok, message) = match outcome {
            Ok(m) => (true, m),
            Err(e) => (false, inst.redactor.text(&e.message)),
        };
        HealthResult {
            ok,
            message: message.chars().take(1000).collect(),
            checked_at: chrono::Utc::now(),
            latency_ms,
        }
    }

    /// The reputation an enrichment action's result says: (score 0-100, verdict).
    pub fn reputation(def: &ActionDef, input: &Value, result: &Value) -> Option<(i64, String)> {
        let (score_e, verdict_e) = def.reputation.as_ref()?;
        let ctx = json!({"result": result, "input": input});
        let score = template::eval(score_e, &ctx)
            .ok()
            .and_then(|v| v.as_f64())
            .map(|f| f.round().clamp(0.0, 100.0) as i64)
            .unwrap_or(0);
        let verdict = template::eval(verdict_e, &ctx)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|v| ["malicious", "suspicious", "benign", "unknown"].contains(&v.as_str()))
            .unwrap_or_else(|| "unknown".into());
        Some((score, verdict))
    }

    async fn http_call(
        &self,
        inst: &Instance,
        def: &ActionDef,
        input: &Value,
        idempotency_key: &str,
        deadline: Instant,
    ) -> Result<Value, CallError> {
        let req = def
            .request
            .as_ref()
            .ok_or_else(|| CallError::fatal("this action has no request"))?;
        let ctx = json!({
            "input": input,
            "config": inst.config,
            "secrets": inst.secrets,
            "idempotency_key": idempotency_key,
        });
        let render = |t: &str, at: &str| {
            template::render_text(t, &ctx).map_err(|e| CallError::fatal(format!("{at}: {e}")))
        };
        let url_s = match &req.url {
            Some(u) => render(u, "request.url")?,
            None => {
                let base = inst
                    .config_str("base_url")
                    .ok_or_else(|| CallError::fatal("base_url: not configured"))?;
                format!(
                    "{}{}",
                    base.trim_end_matches('/'),
                    render(&req.path, "request.path")?
                )
            }
        };
        let mut url = reqwest::Url::parse(&url_s)
            .map_err(|_| CallError::fatal("the request URL is not valid"))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, t) in &req.query {
                let v = render(t, &format!("request.query.{k}"))?;
                if !v.is_empty() {
                    q.append_pair(k, &v);
                }
            }
            if let Some(AuthDef::Query { name, value }) = &inst.ty.auth {
                q.append_pair(name, &render(value, "auth")?);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| CallError::fatal("request.method: not a method"))?;
        let mut headers = reqwest::header::HeaderMap::new();
        let mut put_header = |k: &str, v: &str| -> Result<(), CallError> {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                CallError::fatal(format!("request.headers: `{k}` is not a header name"))
            })?;
            let value = reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                CallError::fatal(format!("request.headers.{k}: not a valid header value"))
            })?;
            headers.insert(name, value);
            Ok(())
        };
        put_header("user-agent", "Bulwark-SOAR")?;
        for (k, t) in &req.headers {
            let name = render(k, "request.headers")?;
            let v = render(t, &format!("request.headers.{k}"))?;
            if !v.is_empty() && !name.is_empty() {
                put_header(&name, &v)?;
            }
        }
        match &inst.ty.auth {
            Some(AuthDef::Header { name, value }) => put_header(name, &render(value, "auth")?)?,
            Some(AuthDef::Bearer(t)) => {
                put_header("authorization", &format!("Bearer {}", render(t, "auth")?))?
            }
            Some(AuthDef::Basic { username, password }) => {
                use base64::Engine;
                let cred = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    render(username, "auth")?,
                    render(password, "auth")?
                ));
                put_header("authorization", &format!("Basic {cred}"))?
            }
            Some(AuthDef::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scope,
            }) => {
                let token = self
                    .oauth_token(
                        inst,
                        [
                            render(token_url, "auth.token_url")?,
                            render(client_id, "auth.client_id")?,
                            render(client_secret, "auth.client_secret")?,
                            match scope {
                                Some(s) => render(s, "auth.scope")?,
                                None => String::new(),
                            },
                        ],
                        deadline,
                    )
                    .await?;
                put_header("authorization", &format!("Bearer {token}"))?
            }
            _ => {}
        }
        if let Some(h) = &def.idempotency_header {
            put_header(h, idempotency_key)?;
        }
        enum Body {
            None,
            Json(Value),
            Form(Vec<(String, String)>),
            Text(String),
        }
        let body = if let Some(j) = &req.json {
            Body::Json(
                template::render_value(j, &ctx)
                    .map_err(|e| CallError::fatal(format!("request.json: {e}")))?,
            )
        } else if let Some(f) = &req.form {
            let mut pairs = Vec::new();
            for (k, t) in f {
                let v = render(t, &format!("request.form.{k}"))?;
                if !v.is_empty() {
                    pairs.push((k.clone(), v));
                }
            }
            Body::Form(pairs)
        } else if let Some(b) = &req.body {
            Body::Text(render(b, "request.body")?)
        } else {
            Body::None
        };
        let mut addrs = self.policy.check(&url).await?;
        let mut host = url.host_str().unwrap_or_default().to_owned();
        let mut host_label = host.clone();

        let mut attempt = 0;
        let mut hops = 0;
        loop {
            attempt += 1;
            self.guards.admit(inst.id)?;
            if let Some(limit) = instance_rate_limit(inst).or(inst.ty.rate_limit) {
                self.guards.acquire(inst.id, limit, deadline).await?;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(CallError::retry(format!("{host_label}: out of time")));
            }
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(remaining);
            if host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[') {
                builder = builder.resolve_to_addrs(&host, &addrs);
            }
            let client = builder
                .build()
                .map_err(|e| CallError::fatal(format!("http client: {e}")))?;
            let mut rb = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            rb = match &body {
                Body::None => rb,
                Body::Json(v) => rb.json(v),
                Body::Form(p) => rb.form(p),
                Body::Text(t) => rb.body(t.clone()),
            };
            let outcome = rb.send().await;
            let resp = match outcome {
                Ok(r) => r,
                Err(e) => {
                    self.guards.record(
                        inst.id,
                        false,
                        self.settings.breaker_threshold,
                        self.settings.breaker_cooldown,
                    );
                    let what = if e.is_timeout() {
                        "timed out".to_string()
                    } else if e.is_connect() {
                        "connection failed".to_string()
                    } else {
                        // reqwest errors carry the URL (which may hold a query secret): keep
                        // only the kind.
                        "request failed".to_string()
                    };
                    let err = CallError::retry(format!("{host_label}: {what}"));
                    if attempt < self.settings.attempts
                        && self.backoff(attempt, None, deadline).await
                    {
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status().as_u16();
            let resp_headers = resp.headers().clone();
            if (300..400).contains(&status) && inst.ty.follow_redirects && hops < 5 {
                let next = resp_headers
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| {
                        CallError::fatal(format!(
                            "HTTP {status} from {host_label} without a usable Location"
                        ))
                    })?;
                hops += 1;
                addrs = self.policy.check(&next).await?;
                host = next.host_str().unwrap_or_default().to_owned();
                host_label = host.clone();
                url = next;
                continue;
            }
            if status == 401
                && matches!(inst.ty.auth, Some(AuthDef::OAuth2 { .. }))
                && let Ok(mut t) = self.tokens.lock()
            {
                // A revoked or rotated token: fetch a new one next time.
                t.remove(&inst.id);
            }
            let bytes = read_limited(resp, self.settings.body_limit).await;
            let retry_status = status == 429
                || (500..600).contains(&status)
                || inst.ty.retry_statuses.contains(&status);
            self.guards.record(
                inst.id,
                !retry_status,
                self.settings.breaker_threshold,
                self.settings.breaker_cooldown,
            );
            let bytes = match bytes {
                Ok(b) => b,
                Err(e) => return Err(CallError::retry(format!("{host_label}: {e}"))),
            };
            if retry_status {
                let err = CallError::retry(format!(
                    "HTTP {status} from {host_label}{}",
                    reason(&bytes).map(|r| format!(": {r}")).unwrap_or_default()
                ));
                if attempt < self.settings.attempts
                    && self
                        .backoff(attempt, outbound::retry_after(&resp_headers), deadline)
                        .await
                {
                    continue;
                }
                return Err(err);
            }
            if status == 404
                && let Some(nf) = &def.not_found
            {
                return Ok(nf.clone());
            }
            if !(200..300).contains(&status) {
                return Err(CallError::fatal(format!(
                    "HTTP {status} from {host_label}{}",
                    reason(&bytes).map(|r| format!(": {r}")).unwrap_or_default()
                )));
            }
            let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
            let response = parsed
                .clone()
                .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            if def.output.is_empty() {
                return Ok(if bytes.is_empty() {
                    json!({"status": status})
                } else {
                    response
                });
            }
            if parsed.is_none() {
                let snippet: String = String::from_utf8_lossy(&bytes).chars().take(100).collect();
                return Err(CallError::fatal(format!(
                    "{host_label} answered HTTP {status} with something that is not JSON: {snippet:?}"
                )));
            }
            let mut hmap = Map::new();
            for (k, v) in &resp_headers {
                hmap.insert(
                    k.as_str().to_owned(),
                    Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                );
            }
            let octx = json!({"response": response, "status": status, "headers": hmap, "input": input, "config": inst.config});
            if let Some(f) = &def.fail_if
                && template::eval(f, &octx).is_ok_and(|v| truthy(&v))
            {
                let why = def
                    .fail_message
                    .as_ref()
                    .and_then(|m| template::eval(m, &octx).ok())
                    .map(|v| match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .filter(|m| !m.is_empty() && m != "null")
                    .unwrap_or_else(|| "the service reported a failure".into());
                return Err(CallError::fatal(format!("{host_label}: {why}")));
            }
            let mut out = Map::new();
            for (k, e) in &def.output {
                let v = template::eval(e, &octx).map_err(|err| {
                    CallError::fatal(format!(
                        "the answer of {host_label} could not be read (output.{k}): {err}"
                    ))
                })?;
                out.insert(k.clone(), v);
            }
            return Ok(Value::Object(out));
        }
    }

    /// An OAuth 2.0 client-credentials token for the instance, from the cache or the token
    /// endpoint. `[token_url, client_id, client_secret, scope]` are rendered.
    async fn oauth_token(
        &self,
        inst: &Instance,
        [token_url, client_id, client_secret, scope]: [String; 4],
        deadline: Instant,
    ) -> Result<String, CallError> {
        if let Ok(t) = self.tokens.lock()
            && let Some((tok, until)) = t.get(&inst.id)
            && Instant::now() < *until
        {
            return Ok(tok.clone());
        }
        let url = reqwest::Url::parse(&token_url)
            .map_err(|_| CallError::fatal("auth.token_url: not a URL"))?;
        let addrs = self.policy.check(&url).await?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(deadline.saturating_duration_since(Instant::now()));
        if host.parse::<std::net::IpAddr>().is_err() {
            builder = builder.resolve_to_addrs(&host, &addrs);
        }
        let client = builder
            .build()
            .map_err(|e| CallError::fatal(format!("http client: {e}")))?;
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let resp = client
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|_| CallError::retry(format!("token request to {host} failed")))?;
        let status = resp.status().as_u16();
        let bytes = read_limited(resp, 64 * 1024)
            .await
            .map_err(|e| CallError::retry(format!("token request to {host}: {e}")))?;
        if !(200..300).contains(&status) {
            let why = reason(&bytes).map(|r| format!(": {r}")).unwrap_or_default();
            let msg = format!("token request to {host}: HTTP {status}{why}");
            return Err(if status == 429 || status >= 500 {
                CallError::retry(msg)
            } else {
                CallError::fatal(msg)
            });
        }
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|_| CallError::fatal(format!("token request to {host}: not JSON")))?;
        let tok = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| CallError::fatal(format!("token request to {host}: no access_token")))?
            .to_owned();
        let ttl = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        let until = Instant::now() + Duration::from_secs(ttl.saturating_sub(60).max(30));
        if let Ok(mut t) = self.tokens.lock() {
            t.insert(inst.id, (tok.clone(), until));
        }
        Ok(tok)
    }

    /// Sleeps before the next attempt; `false` when there is no time left for it.
    async fn backoff(&self, attempt: u32, hint: Option<Duration>, deadline: Instant) -> bool {
        let exp = self.settings.backoff * 2u32.saturating_pow(attempt.saturating_sub(1));
        let wait = hint.unwrap_or(exp).min(Duration::from_secs(60));
        if Instant::now() + wait >= deadline {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// An instance's own rate limit (`rate_limit_per_minute` in its config), before the type's.
fn instance_rate_limit(inst: &Instance) -> Option<types::RateLimit> {
    let n = inst.config.get("rate_limit_per_minute")?.as_u64()?;
    Some(types::RateLimit {
        requests: u32::try_from(n).ok()?.max(1),
        per: Duration::from_secs(60),
    })
}

async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| "reading the answer failed".to_string())?
    {
        let room = limit.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The service's own explanation of an error, from the usual places in a JSON error body, or
/// the start of a text body.
pub fn reason(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let candidates = [
                v.pointer("/error/message"),
                v.pointer("/errors/0/detail"),
                v.pointer("/errors/0/message"),
                v.pointer("/errors/0"),
                v.pointer("/message"),
                v.pointer("/error_description"),
                v.pointer("/error"),
                v.pointer("/messages/0/text"),
                v.pointer("/detail"),
                v.pointer("/errorMessages/0"),
            ];
            candidates
                .into_iter()
                .flatten()
                .find_map(|c| match c {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Object(_) | Value::Array(_) => None,
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
                .or_else(|| Some(v.to_string()))?
        }
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let t: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    (!t.is_empty()).then_some(t)
}

/// Job kinds handled by [`run_jobs`].
pub use bulwark_store::automation::{JOB_ENRICHMENT, JOB_NOTIFICATION};

/// What a job handler tells the job loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished (failures this job will not retry are recorded where they belong: on the
    /// lookup, on the delivery).
    Done,
    /// Try the job again at this time (or dead-letter it after its last attempt).
    RetryAt(chrono::DateTime<chrono::Utc>, String),
}

/// Jobs worked on at once by one node's integration loop.
const JOB_SLOTS: usize = 8;
/// A job's lease; extended every third of it while the job runs.
const JOB_LEASE: Duration = Duration::from_secs(90);

/// Works on the integration jobs (enrichment, notification deliveries) until `stop` turns
/// true; also runs the notification scanner duty on the node that holds its lease. Up to
/// [`JOB_SLOTS`] jobs run at once; each keeps its lease alive while it runs, so a job that
/// waits on a vendor's rate limit is not taken over by another node. A job's failure is
/// retried at the time its handler says (dead-lettered after its last attempt); nothing a job
/// does can stop the loop.
pub async fn run_jobs(
    store: Store,
    rt: Arc<Integrations>,
    node_id: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let worker = format!("{node_id}-integrations");
    let mut next_duty = tokio::time::Instant::now();
    let mut running: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        if tokio::time::Instant::now() >= next_duty {
            notify::scan_duty(&store, &worker).await;
            next_duty = tokio::time::Instant::now() + Duration::from_secs(notify::SCAN_EVERY_SECS);
        }
        while running.try_join_next().is_some() {}
        let free = JOB_SLOTS.saturating_sub(running.len());
        let mut claimed = 0;
        if free > 0 {
            match store
                .claim_jobs(
                    &worker,
                    &[JOB_ENRICHMENT, JOB_NOTIFICATION],
                    free as i64,
                    JOB_LEASE,
                )
                .await
            {
                Ok(jobs) => {
                    claimed = jobs.len();
                    for job in jobs {
                        let (store, rt, worker) = (store.clone(), rt.clone(), worker.clone());
                        running.spawn(run_one(store, rt, worker, job));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot claim integration jobs"),
            }
        }
        if claimed > 0 && running.len() < JOB_SLOTS {
            continue;
        }
        tokio::select! {
            _ = store.wait_for_jobs(Duration::from_millis(500)), if running.len() < JOB_SLOTS => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = stop.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    // Jobs in flight finish (their calls have their own timeouts); a job cut short would be
    // picked up again after its lease anyway.
    while running.join_next().await.is_some() {}
}

/// One job: its handler, with the lease kept alive, then the release.
async fn run_one(
    store: Store,
    rt: Arc<Integrations>,
    worker: String,
    job: bulwark_store::automation::ClaimedJob,
) {
    let beat = {
        let (store, worker, id) = (store.clone(), worker.clone(), job.id);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(JOB_LEASE / 3).await;
                match store.heartbeat(id, &worker, JOB_LEASE).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(error = %e, "integration job heartbeat failed"),
                }
            }
        })
    };
    let handler = {
        let (store, rt, job) = (store.clone(), rt.clone(), job.clone());
        tokio::spawn(async move {
            match job.kind.as_str() {
                JOB_ENRICHMENT => enrich::process(&store, &rt, &job).await,
                JOB_NOTIFICATION => notify::process(&store, &rt, &job).await,
                other => JobOutcome::RetryAt(
                    chrono::Utc::now() + chrono::Duration::hours(1),
                    format!("unknown job kind {other}"),
                ),
            }
        })
    };
    // A panicking handler is a failed attempt, not a dead loop.
    let outcome = handler.await.unwrap_or_else(|e| {
        JobOutcome::RetryAt(
            chrono::Utc::now() + chrono::Duration::seconds(60),
            format!("the job handler failed: {e}"),
        )
    });
    beat.abort();
    let release = match outcome {
        JobOutcome::Done => bulwark_store::automation::JobRelease::Done,
        JobOutcome::RetryAt(retry_at, error) => {
            bulwark_store::automation::JobRelease::Failed { error, retry_at }
        }
    };
    if let Err(e) = store.release_job(job.id, &worker, release).await {
        tracing::warn!(error = %e, "cannot release an integration job");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_definition_loads() {
        let types = builtin_types().expect("built-ins load");
        assert!(types.len() >= 20);
        let rt = Integrations::for_tests(&[]);
        for name in [
            "virustotal.lookup_ip",
            "virustotal.lookup_hash",
            "abuseipdb.check_ip",
            "slack.post_message",
            "email.send",
        ] {
            assert!(rt.catalog().get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn redactor_hides_secrets_everywhere() {
        let r = Redactor::new(["s3cr3t-key".to_string(), "ab".to_string()]);
        assert_eq!(r.text("bad key s3cr3t-key!"), "bad key [redacted]!");
        assert_eq!(
            r.value(json!({"x": ["s3cr3t-key"], "ab": 1})),
            json!({"x": ["[redacted]"], "ab": 1})
        );
    }

    #[test]
    fn a_secret_urls_token_is_redacted_when_echoed_alone() {
        let r = Redactor::new([
            "https://user:pa55w0rd-long@hooks.example.com/services/T0001/B0002/XyZ123tokenABC?sig=abcdef0123456789".to_string(),
        ]);
        assert_eq!(
            r.text("bad token XyZ123tokenABC, sig abcdef0123456789, pass pa55w0rd-long from hooks.example.com"),
            "bad token [redacted], sig [redacted], pass [redacted] from hooks.example.com"
        );
        assert!(url_credentials("not a url").is_empty());
    }

    #[test]
    fn reasons_come_from_the_usual_places() {
        assert_eq!(
            reason(br#"{"error":{"code":"WrongCredentialsError","message":"Wrong API key"}}"#),
            Some("Wrong API key".into())
        );
        assert_eq!(
            reason(br#"{"errors":[{"detail":"Authentication failed."}]}"#),
            Some("Authentication failed.".into())
        );
        assert_eq!(reason(b"Forbidden\n"), Some("Forbidden".into()));
        assert_eq!(reason(b""), None);
    }
}
