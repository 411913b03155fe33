//! Administration commands that act directly on the database as the operator (no HTTP, no
//! token): users, API keys, tenants. They apply the same validation and rules as the API.

use anyhow::{Context, bail};
use bulwark_core::credentials::{generate_api_key, generate_password, hash_password};
use bulwark_core::model::{Analyst, DEFAULT_TENANT_SLUG, Tenant};
use bulwark_core::{ApiKeyId, ApiKeyScope, Role, Scope, validate};
use bulwark_store::{AnalystPatch, ChangeCtx, NewAnalyst, NewApiKey, NewTenant, Store};
use clap::Subcommand;
use std::io::BufRead;

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create an analyst; prints a generated password unless --password-stdin is given.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "analyst")]
        role: String,
        /// Home tenant slug (default: `default`).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List analysts.
    List,
    /// Change an analyst's role (admin, analyst, viewer).
    SetRole { username: String, role: String },
    /// Disable an analyst: their sessions end at once.
    Disable { username: String },
    /// Enable a disabled analyst.
    Enable { username: String },
    /// Set a new password (generated and printed unless --password-stdin).
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCmd {
    /// Create a key; prints it once.
    Create {
        #[arg(long)]
        name: String,
        /// Repeatable: webhooks:ingest, read, write.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        #[arg(long)]
        tenant: Option<String>,
        /// Bind the key to one webhook source.
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Give the key a signing secret (printed once) and require X-Bulwark-Signature.
        #[arg(long)]
        signed: bool,
        /// Accept OpenSOAR's X-Webhook-Signature (HMAC keyed with the API key); signatures
        /// become required.
        #[arg(long)]
        accept_key_signature: bool,
        /// Requests per second for this key (with --burst), instead of the server default.
        #[arg(long, requires = "burst")]
        rate_per_second: Option<u32>,
        #[arg(long, requires = "rate_per_second")]
        burst: Option<u32>,
    },
    /// List keys (never the secrets).
    List,
    /// Revoke a key by id, effective immediately.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Create a tenant.
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    validate::password("password", &p).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(p)
}

async fn hash(p: String) -> anyhow::Result<String> {
    Ok(tokio::task::spawn_blocking(move || hash_password(&p)).await??)
}

async fn tenant(store: &Store, slug: Option<&str>) -> anyhow::Result<Tenant> {
    let slug = slug.unwrap_or(DEFAULT_TENANT_SLUG);
    store
        .tenant_by_slug(slug)
        .await?
        .with_context(|| format!("no tenant with slug `{slug}` (see `bulwark tenant list`)"))
}

async fn analyst(store: &Store, username: &str) -> anyhow::Result<Analyst> {
    let u = validate::username("username", username).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(store
        .credentials_by_username(&u)
        .await?
        .with_context(|| format!("no user `{u}`"))?
        .analyst)
}

fn parse_role(r: &str) -> anyhow::Result<Role> {
    r.parse()
        .map_err(|_| anyhow::anyhow!("role: `{r}` is not one of admin, analyst, viewer"))
}

pub async fn user(store: &Store, cmd: UserCmd) -> anyhow::Result<()> {
    let ctx = ChangeCtx::cli();
    match cmd {
        UserCmd::Create {
            username,
            role,
            tenant: t,
            display_name,
            password_stdin,
        } => {
            let username =
                validate::username("username", &username).map_err(|e| anyhow::anyhow!("{e}"))?;
            let role = parse_role(&role)?;
            let display_name = match display_name {
                Some(d) => {
                    validate::name("display_name", &d, 128).map_err(|e| anyhow::anyhow!("{e}"))?
                }
                None => username.clone(),
            };
            let home = tenant(store, t.as_deref()).await?;
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (generate_password(), true)
            };
            let a = store
                .create_analyst(
                    &ctx,
                    NewAnalyst {
                        tenant_id: home.id,
                        username,
                        display_name,
                        password_hash: hash(password.clone()).await?,
                        role,
                        tenant_ids: vec![],
                    },
                )
                .await?;
            println!(
                "created user {} ({}) in tenant {}",
                a.username, a.role, home.slug
            );
            if generated {
                println!("password: {password}");
            }
        }
        UserCmd::List => {
            println!(
                "{:<24} {:<8} {:<7} {:<36} last login",
                "username", "role", "active", "id"
            );
            for a in store.list_analysts(&Scope::AllTenants).await? {
                println!(
                    "{:<24} {:<8} {:<7} {:<36} {}",
                    a.username,
                    a.role,
                    a.is_active,
                    a.id,
                    a.last_login_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        UserCmd::SetRole { username, role } => {
            let a = analyst(store, &username).await?;
            let role = parse_role(&role)?;
            let patch = AnalystPatch {
                role: Some(role),
                ..Default::default()
            };
            store
                .update_analyst(&ctx, &Scope::AllTenants, a.id, patch)
                .await?;
            println!("{} is now {role}", a.username);
        }
        UserCmd::Disable { username } => {
            let a = analyst(store, &username).await?;
            let patch = AnalystPatch {
                is_active: Some(false),
                ..Default::default()
            };
            store
                .update_analyst(&ctx, &Scope::AllTenants, a.id, patch)
                .await?;
            println!("{} is disabled; their sessions have ended", a.username);
        }
        UserCmd::Enable { username } => {
            let a = analyst(store, &username).await?;
            let patch = AnalystPatch {
                is_active: Some(true),
                ..Default::default()
            };
            store
                .update_analyst(&ctx, &Scope::AllTenants, a.id, patch)
                .await?;
            println!("{} is enabled", a.username);
        }
        UserCmd::ResetPassword {
            username,
            password_stdin,
        } => {
            let a = analyst(store, &username).await?;
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (generate_password(), true)
            };
            store
                .set_password(
                    &ctx,
                    &Scope::AllTenants,
                    a.id,
                    hash(password.clone()).await?,
                )
                .await?;
            println!(
                "password of {} reset; their sessions have ended",
                a.username
            );
            if generated {
                println!("password: {password}");
            }
        }
    }
    Ok(())
}

pub async fn api_key(store: &Store, cmd: ApiKeyCmd) -> anyhow::Result<()> {
    let ctx = ChangeCtx::cli();
    match cmd {
        ApiKeyCmd::Create {
            name,
            scopes,
            tenant: t,
            source,
            expires_in_days,
            signed,
            accept_key_signature,
            rate_per_second,
            burst,
        } => {
            let name = validate::name("name", &name, 100).map_err(|e| anyhow::anyhow!("{e}"))?;
            let scopes = scopes
                .iter()
                .map(|s| {
                    s.parse::<ApiKeyScope>().map_err(|_| {
                        anyhow::anyhow!("scope: `{s}` is not one of webhooks:ingest, read, write")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if let Some(s) = &source
                && !bulwark_api::routes::api_keys::WEBHOOK_SOURCES.contains(&s.as_str())
            {
                bail!("source: `{s}` is not a known webhook source");
            }
            let expires_at = match expires_in_days {
                Some(d) if (1..=3650).contains(&d) => {
                    Some(bulwark_core::time::now() + chrono::Duration::days(i64::from(d)))
                }
                Some(_) => bail!("expires-in-days: must be 1 to 3650"),
                None => None,
            };
            if (signed || accept_key_signature) && !scopes.contains(&ApiKeyScope::WebhooksIngest) {
                bail!("signed / accept-key-signature: the key needs --scope webhooks:ingest");
            }
            let rate_limit = match (rate_per_second, burst) {
                (Some(r), Some(b))
                    if (1..=100_000).contains(&r) && (1..=1_000_000).contains(&b) =>
                {
                    Some(bulwark_core::model::RateLimit {
                        per_second: r,
                        burst: b,
                    })
                }
                (Some(_), Some(_)) => {
                    bail!("rate-per-second: must be 1 to 100000; burst: must be 1 to 1000000")
                }
                _ => None,
            };
            let signing_secret = signed.then(bulwark_core::signature::generate_signing_secret);
            let home = tenant(store, t.as_deref()).await?;
            let k = generate_api_key();
            let key = store
                .create_api_key(
                    &ctx,
                    NewApiKey {
                        tenant_id: home.id,
                        name,
                        prefix: k.prefix,
                        digest: k.digest.to_vec(),
                        scopes,
                        source,
                        expires_at,
                        created_by: None,
                        signing_secret: signing_secret.clone(),
                        accept_key_signature,
                        rate_limit,
                    },
                )
                .await?;
            println!(
                "created API key {} ({}) for tenant {}",
                key.id, key.prefix, home.slug
            );
            println!("key (shown once): {}", k.secret);
            if let Some(s) = signing_secret {
                println!("signing secret (shown once): {s}");
            }
        }
        ApiKeyCmd::List => {
            println!(
                "{:<36} {:<14} {:<24} {:<28} state",
                "id", "prefix", "name", "scopes"
            );
            let now = bulwark_core::time::now();
            for k in store.list_api_keys(&Scope::AllTenants).await? {
                let scopes: Vec<_> = k.scopes.iter().map(|s| s.as_str()).collect();
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else if !k.is_usable_at(now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<36} {:<14} {:<24} {:<28} {state}",
                    k.id,
                    k.prefix,
                    k.name,
                    scopes.join(",")
                );
            }
        }
        ApiKeyCmd::Revoke { id } => {
            let id: ApiKeyId = id
                .parse()
                .map_err(|_| anyhow::anyhow!("id: `{id}` is not a UUID"))?;
            let k = store
                .revoke_api_key(&ctx, &Scope::AllTenants, id, bulwark_core::time::now())
                .await
                .map_err(|e| match e {
                    bulwark_store::StoreError::NotFound => anyhow::anyhow!("no API key {id}"),
                    other => other.into(),
                })?;
            println!("revoked API key {} ({})", k.id, k.prefix);
        }
    }
    Ok(())
}

pub async fn tenant_cmd(store: &Store, cmd: TenantCmd) -> anyhow::Result<()> {
    match cmd {
        TenantCmd::Create { slug, name } => {
            let slug = validate::slug("slug", &slug).map_err(|e| anyhow::anyhow!("{e}"))?;
            let name = validate::name("name", name.as_deref().unwrap_or(&slug), 200)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let t = store
                .create_tenant(&ChangeCtx::cli(), NewTenant { slug, name })
                .await?;
            println!("created tenant {} ({})", t.slug, t.id);
        }
        TenantCmd::List => {
            println!("{:<24} {:<36} name", "slug", "id");
            for t in store.list_tenants(&Scope::AllTenants).await? {
                println!("{:<24} {:<36} {}", t.slug, t.id, t.name);
            }
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Verify audit chains: in the database (default), or an export file offline.
    Verify {
        /// Only this tenant (slug).
        #[arg(long)]
        tenant: Option<String>,
        /// Start from the newest valid checkpoint instead of genesis.
        #[arg(long)]
        incremental: bool,
        /// Verify an export file instead of the database (needs no database).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// Trusted public key (hex) for --file; without it only the key embedded in the file
        /// is used, which proves consistency but not origin.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Write records and checkpoints to a file that `audit verify --file` checks offline.
    Export {
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Sign a checkpoint of every chain that moved since its last one.
    Checkpoint,
    /// Print the public key that verifies checkpoints.
    PublicKey,
}

fn print_report(r: &bulwark_audit::VerifyReport, slug: &str) -> bool {
    match &r.first_break {
        None => println!(
            "{slug}: ok, {} records checked up to seq {}, {} checkpoints verified",
            r.records_checked, r.last_seq, r.checkpoints_checked
        ),
        Some(b) => println!("{slug}: BROKEN at seq {}: {}", b.seq, b.reason),
    }
    r.is_ok()
}

/// `bulwark audit verify --file`: offline, no database.
pub fn verify_file(path: &std::path::Path, public_key: Option<&str>) -> anyhow::Result<bool> {
    let key = public_key
        .map(|k| {
            bulwark_audit::public_key_from_hex(k).map_err(|e| anyhow::anyhow!("public-key: {e}"))
        })
        .transpose()?;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reports = bulwark_audit::verify_export(std::io::BufReader::new(file), key.as_ref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut ok = true;
    for r in &reports {
        ok &= print_report(r, &r.tenant_id.to_string());
        if matches!(r.key_source, bulwark_audit::KeySource::EmbeddedOnly) {
            println!(
                "  note: checkpoints were checked against the key inside the file; pass --public-key to check their origin"
            );
        }
    }
    Ok(ok)
}

async fn audit_scope(
    store: &Store,
    slug: Option<&str>,
) -> anyhow::Result<Vec<(bulwark_core::TenantId, String)>> {
    let tenants = store.list_tenants(&Scope::AllTenants).await?;
    let with_chain = store.audit_tenants(&Scope::AllTenants).await?;
    Ok(tenants
        .into_iter()
        .filter(|t| slug.is_none_or(|s| s == t.slug) && with_chain.contains(&t.id))
        .map(|t| (t.id, t.slug))
        .collect())
}

/// Returns `false` when a chain is broken (the process then exits non-zero).
pub async fn audit(
    store: &Store,
    keys: &bulwark_api::state::AuditKeys,
    cmd: AuditCmd,
) -> anyhow::Result<bool> {
    match cmd {
        AuditCmd::Verify {
            tenant,
            incremental,
            ..
        } => {
            let mode = if incremental {
                bulwark_store::audit::VerifyMode::Incremental
            } else {
                bulwark_store::audit::VerifyMode::Full
            };
            let trusted = keys.trusted_keys();
            let mut ok = true;
            for (id, slug) in audit_scope(store, tenant.as_deref()).await? {
                let r =
                    bulwark_store::audit::verify_tenant(store.as_ref(), id, &trusted, mode).await?;
                ok &= print_report(&r, &slug);
            }
            Ok(ok)
        }
        AuditCmd::Export { file, tenant } => {
            let tenants = audit_scope(store, tenant.as_deref()).await?;
            let header = bulwark_audit::ExportHeader {
                exported_at: bulwark_audit::AuditTime::now(),
                public_key: keys.signer.as_ref().map(|s| s.verifying_key()),
                retired_public_keys: keys.retired.clone(),
                tenants: tenants.iter().map(|(t, _)| t.0).collect(),
            };
            let out = std::io::BufWriter::new(
                std::fs::File::create(&file)
                    .with_context(|| format!("creating {}", file.display()))?,
            );
            let mut w = bulwark_audit::ExportWriter::new(out, &header)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut count = 0u64;
            for (t, _) in &tenants {
                let head = store
                    .audit_head(*t)
                    .await?
                    .unwrap_or_else(|| bulwark_audit::ChainHead::genesis(t.0));
                let cps = store.checkpoints(*t).await?;
                w.begin_tenant(t.0, &head, &cps)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut after = 0;
                loop {
                    let rows = store.audit_rows(*t, after, 5_000).await?;
                    let Some(last) = rows.last() else { break };
                    after = last.seq;
                    for r in &rows {
                        w.write_record(r).map_err(|e| anyhow::anyhow!("{e}"))?;
                        count += 1;
                    }
                }
            }
            use std::io::Write;
            w.finish().map_err(|e| anyhow::anyhow!("{e}"))?.flush()?;
            println!(
                "exported {count} records of {} tenants to {}",
                tenants.len(),
                file.display()
            );
            Ok(true)
        }
        AuditCmd::Checkpoint => {
            let signer = keys.signer.as_ref().context("no audit signing key")?;
            let n =
                bulwark_store::audit::sign_checkpoints(store.as_ref(), signer, &Scope::AllTenants)
                    .await?;
            println!("signed {n} checkpoints");
            Ok(true)
        }
        AuditCmd::PublicKey => {
            let signer = keys.signer.as_ref().context("no audit signing key")?;
            println!("{}", signer.public_key_hex());
            Ok(true)
        }
    }
}

/// `bulwark secrets rotate`: every ciphertext not under the current key is re-encrypted under
/// it. Rows that no listed key opens are reported (and make the command fail) but left alone.
pub async fn rotate_secrets(
    store: &Store,
    keyring: &bulwark_integrations::secret::Keyring,
) -> anyhow::Result<()> {
    let (done, current, failed) = rotate_all(store, keyring).await?;
    println!(
        "re-encrypted {done} secret(s) under key {}; {current} already current",
        keyring.current_id()
    );
    if !failed.is_empty() {
        for (id, e) in &failed {
            eprintln!("integration {id}: {e}");
        }
        anyhow::bail!(
            "{} secret(s) could not be decrypted with the listed keys",
            failed.len()
        );
    }
    println!("no stored secret uses a retired key any more: retired keys can be removed");
    Ok(())
}

/// Re-encrypts; answers (re-encrypted, already current, failures).
pub async fn rotate_all(
    store: &Store,
    keyring: &bulwark_integrations::secret::Keyring,
) -> anyhow::Result<(usize, usize, Vec<(uuid::Uuid, String)>)> {
    let mut done = 0;
    let mut current = 0;
    let mut failed = Vec::new();
    for (id, sealed) in store.integration_secrets().await? {
        if keyring.is_current(&sealed) {
            current += 1;
            continue;
        }
        match keyring.reseal(&sealed, id.as_bytes()) {
            Ok(new) => {
                if store.replace_integration_secret(id, &sealed, &new).await? {
                    done += 1;
                }
            }
            Err(e) => failed.push((id, e.to_string())),
        }
    }
    Ok((done, current, failed))
}

/// `bulwark secrets status`: how many stored secrets each key id encrypts.
pub async fn secrets_status(
    store: &Store,
    keyring: &bulwark_integrations::secret::Keyring,
) -> anyhow::Result<()> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, sealed) in store.integration_secrets().await? {
        let id =
            bulwark_integrations::secret::Keyring::key_id_of(&sealed).unwrap_or("unknown format");
        *counts.entry(id.to_owned()).or_default() += 1;
    }
    println!("current key: {}", keyring.current_id());
    println!("retired keys: {:?}", keyring.retired_ids());
    for (id, n) in counts {
        let what = if id == keyring.current_id() {
            "current"
        } else if keyring.retired_ids().contains(&id.as_str()) {
            "retired"
        } else {
            "UNKNOWN (cannot be decrypted)"
        };
        println!("{id}: {n} secret(s) ({what})");
    }
    Ok(())
}
