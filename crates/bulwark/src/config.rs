//! Configuration: defaults, then an optional TOML file (`--config`), then `BULWARK_*`
//! environment variables. Validated once at start-up; every error names the setting.
//! Secrets are wrapped so `Debug` and logs never print them.

use anyhow::{Context, bail};
use bulwark_core::Secret;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: Secret<String>,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub log_level: String,
    pub token_ttl_secs: u64,
    pub body_limit_bytes: usize,
    pub jwt_secret: Option<Secret<String>>,
    pub admin_password: Option<Secret<String>>,
    /// Run the job worker inside `bulwark serve`.
    pub embedded_worker: bool,
    /// Seconds between signed audit checkpoints.
    pub audit_checkpoint_secs: u64,
    /// PEM (PKCS#8 Ed25519) audit signing key; default: `<data_dir>/audit-signing.pem`.
    pub audit_signing_key: Option<Secret<String>>,
    /// Hex public keys of retired signing keys (their checkpoints must still verify).
    pub audit_retired_keys: Vec<String>,
    /// Alerts without a source id are deduplicated by fingerprint within this many seconds.
    pub dedup_window_secs: u64,
    /// Default request budget per API key: sustained rate and burst.
    pub key_rate_per_second: u32,
    pub key_rate_burst: u32,
    /// Failed authentications allowed per client address per minute, and at once.
    pub auth_failures_per_minute: u32,
    pub auth_failure_burst: u32,
    /// Behind a reverse proxy that appends X-Forwarded-For: key limits by its last entry.
    pub trust_forwarded_for: bool,
    /// Rejected payloads kept per tenant.
    pub dead_letters_per_tenant: u32,
    /// Playbook runs a worker works on at once.
    pub worker_concurrency: usize,
    /// A worker's lease on a run's job; it heartbeats every third of it.
    pub worker_lease_secs: u64,
    /// How often an idle worker looks for jobs.
    pub worker_poll_interval_ms: u64,
    /// `http.request` destinations allowed although private, loopback, ...: host names or CIDRs.
    pub http_allow: Vec<String>,
    /// Directory of playbook files loaded as global playbooks and kept in step.
    pub playbooks_dir: Option<PathBuf>,
    /// Web console: a session ends this long after login.
    pub session_ttl_secs: u64,
    /// Web console: a session ends after this long without a page request.
    pub session_idle_secs: u64,
    /// Web console: `auto` (Secure cookie when a trusted proxy says https), `always`, `never`.
    pub cookie_secure: bulwark_web::CookieSecure,
    /// Key that encrypts integration secrets (64 hex digits or base64 of 32 bytes); default:
    /// `<data_dir>/secret.key`.
    pub secret_key: Option<Secret<String>>,
    /// Earlier keys, still accepted for decryption until `bulwark secrets rotate` re-encrypted
    /// everything.
    pub secret_retired_keys: Vec<Secret<String>>,
    /// Directory of the operator's declarative integration definitions.
    pub integrations_dir: Option<PathBuf>,
}

/// The file form: every field optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    token_ttl_secs: Option<u64>,
    body_limit_bytes: Option<usize>,
    jwt_secret: Option<String>,
    admin_password: Option<String>,
    embedded_worker: Option<bool>,
    audit_checkpoint_secs: Option<u64>,
    audit_signing_key: Option<String>,
    audit_retired_keys: Option<Vec<String>>,
    dedup_window_secs: Option<u64>,
    key_rate_per_second: Option<u32>,
    key_rate_burst: Option<u32>,
    auth_failures_per_minute: Option<u32>,
    auth_failure_burst: Option<u32>,
    trust_forwarded_for: Option<bool>,
    dead_letters_per_tenant: Option<u32>,
    worker_concurrency: Option<usize>,
    worker_lease_secs: Option<u64>,
    worker_poll_interval_ms: Option<u64>,
    http_allow: Option<Vec<String>>,
    playbooks_dir: Option<PathBuf>,
    session_ttl_secs: Option<u64>,
    session_idle_secs: Option<u64>,
    cookie_secure: Option<String>,
    secret_key: Option<String>,
    secret_retired_keys: Option<Vec<String>>,
    integrations_dir: Option<PathBuf>,
}

/// A number from the environment (`var`) or the file (`key`), within `range`.
fn number<T>(
    env: Env<'_>,
    var: &str,
    key: &str,
    from_file: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v = match env(var) {
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{var} ({key}): `{v}` is not a whole number"))?,
        None => from_file.unwrap_or(default),
    };
    if !range.contains(&v) {
        bail!(
            "{var} ({key}): must be between {} and {}",
            range.start(),
            range.end()
        );
    }
    Ok(v)
}

fn boolean(
    env: Env<'_>,
    var: &str,
    key: &str,
    from_file: Option<bool>,
    default: bool,
) -> anyhow::Result<bool> {
    match env(var).as_deref() {
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => bail!("{var} ({key}): `{other}` is not true or false"),
        None => Ok(from_file.unwrap_or(default)),
    }
}

/// Parses the TOML file; errors name the key (`token_ttl_secs: invalid type ...`).
fn parse_file(text: &str) -> Result<FileConfig, String> {
    let de = toml::Deserializer::parse(text).map_err(|e| e.message().to_string())?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().message().to_string();
        if path == "." {
            msg
        } else {
            format!("{path}: {msg}")
        }
    })
}

/// The settings and their environment variables, for `config check` and the docs.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "BULWARK_SESSION_TTL_SECS",
        "web console: a session ends this long after login (default 43200 = 12 h)",
    ),
    (
        "BULWARK_SESSION_IDLE_SECS",
        "web console: a session ends after this long without a page request (default 3600)",
    ),
    (
        "BULWARK_COOKIE_SECURE",
        "web console: auto (Secure cookie behind a trusted https proxy), always or never (default auto)",
    ),
    (
        "BULWARK_DATA_DIR",
        "data directory (default ./bulwark-data)",
    ),
    (
        "BULWARK_DATABASE_URL",
        "sqlite:// or postgres:// URL (default: SQLite file in the data directory)",
    ),
    (
        "BULWARK_LISTEN",
        "address to listen on (default 127.0.0.1:8000)",
    ),
    ("BULWARK_LOG_FORMAT", "text or json (default text)"),
    (
        "BULWARK_LOG_LEVEL",
        "tracing filter, e.g. info or bulwark=debug (default info)",
    ),
    (
        "BULWARK_TOKEN_TTL_SECS",
        "access token lifetime in seconds (default 28800 = 8 h)",
    ),
    (
        "BULWARK_BODY_LIMIT_BYTES",
        "maximum request body (default 1048576)",
    ),
    (
        "BULWARK_JWT_SECRET",
        "token signing key, at least 32 bytes (default: generated key file in the data directory)",
    ),
    (
        "BULWARK_ADMIN_PASSWORD",
        "password for the admin user created on first start (default: generated and printed once)",
    ),
    (
        "BULWARK_EMBEDDED_WORKER",
        "run the job worker inside `serve` (default true)",
    ),
    (
        "BULWARK_DEDUP_WINDOW_SECS",
        "alerts without a source id are deduplicated by fingerprint within this window (default 86400)",
    ),
    (
        "BULWARK_KEY_RATE_PER_SECOND",
        "requests per second per API key, unless the key sets its own (default 500)",
    ),
    (
        "BULWARK_KEY_RATE_BURST",
        "requests an API key may make at once (default 1000)",
    ),
    (
        "BULWARK_AUTH_FAILURES_PER_MINUTE",
        "failed authentications per client address per minute before 429 (default 30)",
    ),
    (
        "BULWARK_AUTH_FAILURE_BURST",
        "failed authentications a client address may make at once (default 60)",
    ),
    (
        "BULWARK_TRUST_FORWARDED_FOR",
        "take the client address from the last X-Forwarded-For entry (default false)",
    ),
    (
        "BULWARK_DEAD_LETTERS_PER_TENANT",
        "rejected payloads kept per tenant, newest first (default 10000)",
    ),
    (
        "BULWARK_WORKER_CONCURRENCY",
        "playbook runs a worker works on at once (default 8)",
    ),
    (
        "BULWARK_WORKER_LEASE_SECS",
        "a worker's lease on a run; heartbeats every third of it (default 30)",
    ),
    (
        "BULWARK_WORKER_POLL_INTERVAL_MS",
        "how often an idle worker looks for runs (default 250)",
    ),
    (
        "BULWARK_HTTP_ALLOW",
        "comma-separated host names or CIDRs http.request may reach although private/loopback (default none)",
    ),
    (
        "BULWARK_SECRET_KEY",
        "key encrypting integration secrets, 64 hex digits (default: generated key file secret.key in the data directory)",
    ),
    (
        "BULWARK_SECRET_RETIRED_KEYS",
        "comma-separated earlier secret keys still accepted for decryption (default none)",
    ),
    (
        "BULWARK_INTEGRATIONS_DIR",
        "directory of declarative integration definitions (*.yaml, *.yml, *.json) (default none)",
    ),
    (
        "BULWARK_PLAYBOOKS_DIR",
        "directory of playbook files (*.yaml, *.yml, *.json) loaded as global playbooks (default none)",
    ),
];

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Loads from the process environment and the optional file.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let env = |k: &str| std::env::var(k).ok();
        Self::from_sources(file, &env)
    }

    pub fn from_sources(file: Option<&Path>, env: Env<'_>) -> anyhow::Result<Self> {
        let f = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?;
                parse_file(&text)
                    .map_err(|e| anyhow::anyhow!("config file {}: {e}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let pick = |var: &str, from_file: Option<String>| env(var).or(from_file);

        let data_dir = pick(
            "BULWARK_DATA_DIR",
            f.data_dir.map(|p| p.display().to_string()),
        )
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("./bulwark-data"));
        if data_dir.as_os_str().is_empty() {
            bail!("BULWARK_DATA_DIR (data_dir): must not be empty");
        }
        let database_url = match pick("BULWARK_DATABASE_URL", f.database_url) {
            Some(u) => {
                if !(u.starts_with("sqlite:")
                    || u.starts_with("postgres://")
                    || u.starts_with("postgresql://"))
                {
                    bail!(
                        "BULWARK_DATABASE_URL (database_url): must start with sqlite:, postgres:// or postgresql://"
                    );
                }
                u
            }
            None => format!("sqlite://{}", data_dir.join("bulwark.db").display()),
        };
        let listen_raw =
            pick("BULWARK_LISTEN", f.listen).unwrap_or_else(|| "127.0.0.1:8000".into());
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            anyhow::anyhow!(
                "BULWARK_LISTEN (listen): `{listen_raw}` is not an address like 127.0.0.1:8000"
            )
        })?;
        let log_format = match pick("BULWARK_LOG_FORMAT", f.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("BULWARK_LOG_FORMAT (log_format): `{other}` is not text or json"),
        };
        let log_level = pick("BULWARK_LOG_LEVEL", f.log_level).unwrap_or_else(|| "info".into());
        let token_ttl_secs = number(
            env,
            "BULWARK_TOKEN_TTL_SECS",
            "token_ttl_secs",
            f.token_ttl_secs,
            8 * 3600,
            60..=30 * 24 * 3600,
        )?;
        let body_limit_bytes = number(
            env,
            "BULWARK_BODY_LIMIT_BYTES",
            "body_limit_bytes",
            f.body_limit_bytes,
            1024 * 1024,
            1024..=256 * 1024 * 1024,
        )?;
        let jwt_secret = pick("BULWARK_JWT_SECRET", f.jwt_secret);
        if let Some(s) = &jwt_secret
            && s.len() < 32
        {
            bail!("BULWARK_JWT_SECRET (jwt_secret): must be at least 32 bytes");
        }
        let admin_password = pick("BULWARK_ADMIN_PASSWORD", f.admin_password);
        if let Some(p) = &admin_password {
            bulwark_core::validate::password("BULWARK_ADMIN_PASSWORD (admin_password)", p)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let embedded_worker = boolean(
            env,
            "BULWARK_EMBEDDED_WORKER",
            "embedded_worker",
            f.embedded_worker,
            true,
        )?;
        let audit_checkpoint_secs = number(
            env,
            "BULWARK_AUDIT_CHECKPOINT_SECS",
            "audit_checkpoint_secs",
            f.audit_checkpoint_secs,
            300,
            1..=86_400,
        )?;
        let audit_signing_key = pick("BULWARK_AUDIT_SIGNING_KEY", f.audit_signing_key);
        if let Some(pem) = &audit_signing_key
            && bulwark_audit::CheckpointSigner::from_pkcs8_pem(pem).is_err()
        {
            bail!(
                "BULWARK_AUDIT_SIGNING_KEY (audit_signing_key): not a PKCS#8 PEM Ed25519 private key"
            );
        }
        let audit_retired_keys = match env("BULWARK_AUDIT_RETIRED_KEYS") {
            Some(v) => v
                .split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
            None => f.audit_retired_keys.unwrap_or_default(),
        };
        for k in &audit_retired_keys {
            if bulwark_audit::public_key_from_hex(k).is_err() {
                bail!(
                    "BULWARK_AUDIT_RETIRED_KEYS (audit_retired_keys): `{k}` is not a hex Ed25519 public key"
                );
            }
        }
        let dedup_window_secs = number(
            env,
            "BULWARK_DEDUP_WINDOW_SECS",
            "dedup_window_secs",
            f.dedup_window_secs,
            86_400,
            60..=30 * 86_400,
        )?;
        let key_rate_per_second = number(
            env,
            "BULWARK_KEY_RATE_PER_SECOND",
            "key_rate_per_second",
            f.key_rate_per_second,
            500,
            1..=100_000,
        )?;
        let key_rate_burst = number(
            env,
            "BULWARK_KEY_RATE_BURST",
            "key_rate_burst",
            f.key_rate_burst,
            1000,
            1..=1_000_000,
        )?;
        let auth_failures_per_minute = number(
            env,
            "BULWARK_AUTH_FAILURES_PER_MINUTE",
            "auth_failures_per_minute",
            f.auth_failures_per_minute,
            30,
            1..=100_000,
        )?;
        let auth_failure_burst = number(
            env,
            "BULWARK_AUTH_FAILURE_BURST",
            "auth_failure_burst",
            f.auth_failure_burst,
            60,
            1..=100_000,
        )?;
        let trust_forwarded_for = boolean(
            env,
            "BULWARK_TRUST_FORWARDED_FOR",
            "trust_forwarded_for",
            f.trust_forwarded_for,
            false,
        )?;
        let dead_letters_per_tenant = number(
            env,
            "BULWARK_DEAD_LETTERS_PER_TENANT",
            "dead_letters_per_tenant",
            f.dead_letters_per_tenant,
            10_000,
            1..=1_000_000,
        )?;
        let worker_concurrency = number(
            env,
            "BULWARK_WORKER_CONCURRENCY",
            "worker_concurrency",
            f.worker_concurrency,
            64,
            1..=256,
        )?;
        let worker_lease_secs = number(
            env,
            "BULWARK_WORKER_LEASE_SECS",
            "worker_lease_secs",
            f.worker_lease_secs,
            30,
            5..=3600,
        )?;
        let worker_poll_interval_ms = number(
            env,
            "BULWARK_WORKER_POLL_INTERVAL_MS",
            "worker_poll_interval_ms",
            f.worker_poll_interval_ms,
            250,
            10..=60_000,
        )?;
        let http_allow: Vec<String> = match env("BULWARK_HTTP_ALLOW") {
            Some(v) => v
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect(),
            None => f.http_allow.unwrap_or_default(),
        };
        for h in &http_allow {
            if !is_allow_entry(h) {
                bail!(
                    "BULWARK_HTTP_ALLOW (http_allow): `{h}` is not a host name or a CIDR like 10.0.0.0/8"
                );
            }
        }
        let playbooks_dir = pick(
            "BULWARK_PLAYBOOKS_DIR",
            f.playbooks_dir.map(|p| p.display().to_string()),
        )
        .map(PathBuf::from);
        if let Some(d) = &playbooks_dir
            && !d.is_dir()
        {
            bail!(
                "BULWARK_PLAYBOOKS_DIR (playbooks_dir): `{}` is not a directory",
                d.display()
            );
        }
        let session_ttl_secs = number(
            env,
            "BULWARK_SESSION_TTL_SECS",
            "session_ttl_secs",
            f.session_ttl_secs,
            12 * 3600,
            300..=30 * 24 * 3600,
        )?;
        let session_idle_secs = number(
            env,
            "BULWARK_SESSION_IDLE_SECS",
            "session_idle_secs",
            f.session_idle_secs,
            3600,
            60..=30 * 24 * 3600,
        )?;
        let cookie_secure = match pick("BULWARK_COOKIE_SECURE", f.cookie_secure) {
            None => bulwark_web::CookieSecure::Auto,
            Some(v) => v.parse().map_err(|e| {
                anyhow::anyhow!("BULWARK_COOKIE_SECURE (cookie_secure): `{v}`: {e}")
            })?,
        };
        let secret_key = pick("BULWARK_SECRET_KEY", f.secret_key);
        if let Some(k) = &secret_key
            && bulwark_integrations::SecretKey::parse(k).is_err()
        {
            bail!(
                "BULWARK_SECRET_KEY (secret_key): expected 64 hex digits or base64 of 32 bytes (e.g. `openssl rand -hex 32`)"
            );
        }
        let secret_retired_keys: Vec<String> = match env("BULWARK_SECRET_RETIRED_KEYS") {
            Some(v) => v
                .split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
            None => f.secret_retired_keys.unwrap_or_default(),
        };
        for (i, k) in secret_retired_keys.iter().enumerate() {
            if bulwark_integrations::SecretKey::parse(k).is_err() {
                bail!(
                    "BULWARK_SECRET_RETIRED_KEYS (secret_retired_keys): entry {} is not a key (64 hex digits or base64 of 32 bytes)",
                    i + 1
                );
            }
        }
        let integrations_dir = pick(
            "BULWARK_INTEGRATIONS_DIR",
            f.integrations_dir.map(|p| p.display().to_string()),
        )
        .map(PathBuf::from);
        if let Some(d) = &integrations_dir
            && !d.is_dir()
        {
            bail!(
                "BULWARK_INTEGRATIONS_DIR (integrations_dir): `{}` is not a directory",
                d.display()
            );
        }
        Ok(Config {
            session_ttl_secs,
            session_idle_secs,
            cookie_secure,
            secret_key: secret_key.map(Secret::new),
            secret_retired_keys: secret_retired_keys.into_iter().map(Secret::new).collect(),
            integrations_dir,
            worker_concurrency,
            worker_lease_secs,
            worker_poll_interval_ms,
            http_allow,
            playbooks_dir,
            dedup_window_secs,
            key_rate_per_second,
            key_rate_burst,
            auth_failures_per_minute,
            auth_failure_burst,
            trust_forwarded_for,
            dead_letters_per_tenant,
            audit_checkpoint_secs,
            audit_signing_key: audit_signing_key.map(Secret::new),
            audit_retired_keys,
            data_dir,
            database_url: Secret::new(database_url),
            listen,
            log_format,
            log_level,
            token_ttl_secs,
            body_limit_bytes,
            jwt_secret: jwt_secret.map(Secret::new),
            admin_password: admin_password.map(Secret::new),
            embedded_worker,
        })
    }

    /// The database URL with any password masked, for messages.
    pub fn database_url_redacted(&self) -> String {
        redact_url(self.database_url.expose())
    }
}

/// An `http_allow` entry: a CIDR or address, or a host name (letters, digits, `-`, `.`).
fn is_allow_entry(h: &str) -> bool {
    if bulwark_engine::http::parse_cidr(h).is_some() {
        return true;
    }
    h.len() <= 253
        && !h.starts_with(['.', '-'])
        && !h.ends_with('-')
        && !h.contains("..")
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && h.chars().any(|c| c.is_ascii_alphabetic())
}

pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)], file: Option<&str>) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| map.get(k).cloned();
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bulwark.toml");
        if let Some(text) = file {
            std::fs::write(&path, text)?;
        }
        Config::from_sources(file.map(|_| path.as_path()), &env)
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = load(&[], None).expect("defaults");
        assert_eq!(c.data_dir, PathBuf::from("./bulwark-data"));
        assert_eq!(
            c.database_url.expose(),
            "sqlite://./bulwark-data/bulwark.db"
        );
        assert_eq!(c.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(c.token_ttl_secs, 28800);
        assert!(c.embedded_worker);
    }

    #[test]
    fn env_overrides_file() {
        let c = load(
            &[("BULWARK_LISTEN", "0.0.0.0:9000")],
            Some("listen = \"127.0.0.1:7000\"\nlog_format = \"json\"\n"),
        )
        .expect("config");
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn errors_name_the_setting() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
        let cases: &[Case] = &[
            (&[("BULWARK_LISTEN", "nope")], None, "BULWARK_LISTEN"),
            (&[("BULWARK_LOG_FORMAT", "xml")], None, "BULWARK_LOG_FORMAT"),
            (
                &[("BULWARK_DATABASE_URL", "mysql://x")],
                None,
                "BULWARK_DATABASE_URL",
            ),
            (
                &[("BULWARK_TOKEN_TTL_SECS", "soon")],
                None,
                "BULWARK_TOKEN_TTL_SECS",
            ),
            (
                &[("BULWARK_JWT_SECRET", "short")],
                None,
                "BULWARK_JWT_SECRET",
            ),
            (
                &[("BULWARK_ADMIN_PASSWORD", "short")],
                None,
                "BULWARK_ADMIN_PASSWORD",
            ),
            (
                &[("BULWARK_KEY_RATE_PER_SECOND", "fast")],
                None,
                "BULWARK_KEY_RATE_PER_SECOND",
            ),
            (
                &[("BULWARK_DEAD_LETTERS_PER_TENANT", "0")],
                None,
                "BULWARK_DEAD_LETTERS_PER_TENANT",
            ),
            (
                &[("BULWARK_TRUST_FORWARDED_FOR", "maybe")],
                None,
                "BULWARK_TRUST_FORWARDED_FOR",
            ),
            (
                &[("BULWARK_WORKER_CONCURRENCY", "0")],
                None,
                "BULWARK_WORKER_CONCURRENCY",
            ),
            (
                &[("BULWARK_WORKER_LEASE_SECS", "1")],
                None,
                "BULWARK_WORKER_LEASE_SECS",
            ),
            (
                &[("BULWARK_WORKER_POLL_INTERVAL_MS", "often")],
                None,
                "BULWARK_WORKER_POLL_INTERVAL_MS",
            ),
            (
                &[("BULWARK_HTTP_ALLOW", "10.0.0.0/99")],
                None,
                "BULWARK_HTTP_ALLOW",
            ),
            (
                &[("BULWARK_PLAYBOOKS_DIR", "/nonexistent/playbooks")],
                None,
                "BULWARK_PLAYBOOKS_DIR",
            ),
            (
                &[("BULWARK_SECRET_KEY", "short")],
                None,
                "BULWARK_SECRET_KEY",
            ),
            (
                &[("BULWARK_SECRET_RETIRED_KEYS", "nope")],
                None,
                "BULWARK_SECRET_RETIRED_KEYS",
            ),
            (
                &[("BULWARK_INTEGRATIONS_DIR", "/nonexistent/integrations")],
                None,
                "BULWARK_INTEGRATIONS_DIR",
            ),
            (&[], Some("http_allow = [\"a b\"]\n"), "http_allow"),
            (&[], Some("http_allow = \"x\"\n"), "http_allow"),
            (
                &[],
                Some("worker_lease_secs = 99999\n"),
                "worker_lease_secs",
            ),
            (&[], Some("dedup_window_secs = 5\n"), "dedup_window_secs"),
            (&[], Some("lisen = \"x\"\n"), "lisen"),
            (&[], Some("token_ttl_secs = \"x\"\n"), "token_ttl_secs"),
        ];
        for (vars, file, name) in cases {
            let err = load(vars, *file).expect_err("must fail");
            assert!(
                format!("{err:#}").contains(name),
                "{err:#} should name {name}"
            );
        }
    }

    #[test]
    fn engine_settings_from_file_and_env() {
        let c = load(&[], None).expect("defaults");
        assert_eq!(
            (
                c.worker_concurrency,
                c.worker_lease_secs,
                c.worker_poll_interval_ms
            ),
            (64, 30, 250)
        );
        assert!(c.http_allow.is_empty() && c.playbooks_dir.is_none());
        let dir = tempfile::tempdir().expect("dir");
        let file = format!(
            "worker_concurrency = 4\nworker_lease_secs = 60\nworker_poll_interval_ms = 100\n\
             http_allow = [\"10.0.0.0/8\", \"hooks.internal\"]\nplaybooks_dir = \"{}\"\n",
            dir.path().display()
        );
        let c = load(&[("BULWARK_WORKER_CONCURRENCY", "2")], Some(&file)).expect("config");
        assert_eq!(
            (
                c.worker_concurrency,
                c.worker_lease_secs,
                c.worker_poll_interval_ms
            ),
            (2, 60, 100)
        );
        assert_eq!(c.http_allow, vec!["10.0.0.0/8", "hooks.internal"]);
        assert_eq!(c.playbooks_dir.as_deref(), Some(dir.path()));
        let c = load(
            &[("BULWARK_HTTP_ALLOW", "127.0.0.1, ::1/128,")],
            Some(&file),
        )
        .expect("env");
        assert_eq!(c.http_allow, vec!["127.0.0.1", "::1/128"]);
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let c = load(
            &[
                (
                    "BULWARK_JWT_SECRET",
                    "0123456789abcdef0123456789abcdef-secret",
                ),
                (
                    "BULWARK_DATABASE_URL",
                    "postgres://bulwark:pa55word@db/bulwark",
                ),
                (
                    "BULWARK_SECRET_KEY",
                    "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface",
                ),
            ],
            None,
        )
        .expect("config");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789abcdef"));
        assert!(!dbg.contains("pa55word"));
        assert!(!dbg.contains("feedface"));
        assert_eq!(
            c.database_url_redacted(),
            "postgres://bulwark:***@db/bulwark"
        );
    }
}
