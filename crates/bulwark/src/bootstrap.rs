//! First start: data directory, token signing key, the `default` tenant and the `admin` user.
//! Idempotent: later starts find everything in place and change nothing.

use crate::config::Config;
use anyhow::{Context, bail};
use bulwark_core::credentials::{generate_password, hash_password, random_bytes};
use bulwark_core::model::{DEFAULT_TENANT_SLUG, Tenant};
use bulwark_core::{Role, Secret};
use bulwark_store::{ChangeCtx, NewAnalyst, NewTenant, Store, StoreError};
use std::io::Write;
use std::path::Path;

/// Creates the data directory (mode 0700: it holds the database and the signing key).
pub fn ensure_data_dir(config: &Config) -> anyhow::Result<()> {
    if config.data_dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The token signing key: `BULWARK_JWT_SECRET`, else `<data_dir>/jwt.key` (created with mode
/// 0600 on first start). A key file readable by others is refused.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Secret<Vec<u8>>> {
    if let Some(s) = &config.jwt_secret {
        return Ok(Secret::new(s.expose().as_bytes().to_vec()));
    }
    let path = config.data_dir.join("jwt.key");
    if !path.exists() {
        write_private_file(&path, hex::encode(random_bytes::<64>()).as_bytes())?;
    }
    check_private(&path)?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let key = hex::decode(text.trim())
        .with_context(|| format!("{}: not a hex-encoded key", path.display()))?;
    if key.len() < 32 {
        bail!("{}: the key must be at least 32 bytes", path.display());
    }
    Ok(Secret::new(key))
}

fn write_private_file(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(content)?;
    f.sync_all()?;
    Ok(())
}

fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

/// Creates the default tenant and, when there are no analysts at all, the `admin` user. The
/// generated password is printed to the console once (never logged).
pub async fn ensure_initial_accounts(store: &Store, config: &Config) -> anyhow::Result<Tenant> {
    let ctx = ChangeCtx::system("bootstrap");
    let tenant = match store.tenant_by_slug(DEFAULT_TENANT_SLUG).await? {
        Some(t) => t,
        None => match store
            .create_tenant(
                &ctx,
                NewTenant {
                    slug: DEFAULT_TENANT_SLUG.into(),
                    name: "Default".into(),
                },
            )
            .await
        {
            Ok(t) => t,
            // Another node bootstrapped at the same moment.
            Err(StoreError::Conflict { .. }) => store
                .tenant_by_slug(DEFAULT_TENANT_SLUG)
                .await?
                .context("default tenant vanished")?,
            Err(e) => return Err(e.into()),
        },
    };
    if store.count_analysts().await? > 0 {
        return Ok(tenant);
    }
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.expose().clone(), false),
        None => (generate_password(), true),
    };
    let hash = tokio::task::spawn_blocking({
        let p = password.clone();
        move || hash_password(&p)
    })
    .await??;
    let created = store
        .create_analyst(
            &ctx,
            NewAnalyst {
                tenant_id: tenant.id,
                username: "admin".into(),
                display_name: "Administrator".into(),
                password_hash: hash,
                role: Role::Admin,
                tenant_ids: vec![],
            },
        )
        .await;
    match created {
        Ok(_) if generated => {
            println!("bulwark: created user `admin` with password: {password}");
            println!(
                "bulwark: this password is shown once; change it with `POST /api/v1/auth/change-password`"
            );
        }
        Ok(_) => {
            println!("bulwark: created user `admin` with the password from BULWARK_ADMIN_PASSWORD")
        }
        Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(tenant)
}

/// The audit checkpoint signer and the trusted keys: `BULWARK_AUDIT_SIGNING_KEY`, else
/// `<data_dir>/audit-signing.pem` (created with mode 0600 on first start; refused if readable
/// by others). Never stored in the database: that is what makes checkpoints worth having.
pub fn audit_keys(config: &Config) -> anyhow::Result<bulwark_api::state::AuditKeys> {
    let signer = match &config.audit_signing_key {
        Some(pem) => bulwark_audit::CheckpointSigner::from_pkcs8_pem(pem.expose())
            .map_err(|e| anyhow::anyhow!("BULWARK_AUDIT_SIGNING_KEY: {e}"))?,
        None => {
            let path = config.data_dir.join("audit-signing.pem");
            let (signer, origin) = bulwark_audit::CheckpointSigner::load_or_create(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if matches!(origin, bulwark_audit::KeyOrigin::Created) {
                println!(
                    "bulwark: created audit signing key {} (public key {})",
                    path.display(),
                    signer.public_key_hex()
                );
            }
            signer
        }
    };
    let retired = config
        .audit_retired_keys
        .iter()
        .map(|k| bulwark_audit::public_key_from_hex(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("BULWARK_AUDIT_RETIRED_KEYS: {e}"))?;
    Ok(bulwark_api::state::AuditKeys {
        signer: Some(std::sync::Arc::new(signer)),
        retired,
    })
}

/// The keyring of integration secrets: `BULWARK_SECRET_KEY`, else `<data_dir>/secret.key`
/// (created with mode 0600 on first start; refused if readable by others); retired keys from
/// `BULWARK_SECRET_RETIRED_KEYS` and `<data_dir>/secret.key.retired` (one per line).
pub fn secret_keyring(config: &Config) -> anyhow::Result<bulwark_integrations::secret::Keyring> {
    use bulwark_integrations::SecretKey;
    let current = match &config.secret_key {
        Some(k) => {
            SecretKey::parse(k.expose()).map_err(|e| anyhow::anyhow!("BULWARK_SECRET_KEY: {e}"))?
        }
        None => {
            let path = config.data_dir.join("secret.key");
            if !path.exists() {
                write_private_file(&path, SecretKey::generate().to_hex().as_bytes())?;
            }
            check_private(&path)?;
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            SecretKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
    };
    let mut retired = Vec::new();
    for k in &config.secret_retired_keys {
        retired.push(
            SecretKey::parse(k.expose())
                .map_err(|e| anyhow::anyhow!("BULWARK_SECRET_RETIRED_KEYS: {e}"))?,
        );
    }
    let retired_file = config.data_dir.join("secret.key.retired");
    if retired_file.exists() {
        check_private(&retired_file)?;
        let text = std::fs::read_to_string(&retired_file)
            .with_context(|| format!("reading {}", retired_file.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            retired.push(
                SecretKey::parse(line)
                    .map_err(|e| anyhow::anyhow!("{}:{}: {e}", retired_file.display(), i + 1))?,
            );
        }
    }
    Ok(bulwark_integrations::secret::Keyring::new(current, retired))
}

/// `bulwark secrets new-key` (key file only): the current key is appended to
/// `secret.key.retired` and a new `secret.key` is written. Returns (old id, new id).
pub fn new_secret_key(config: &Config) -> anyhow::Result<(String, String)> {
    use bulwark_integrations::SecretKey;
    if config.secret_key.is_some() {
        bail!(
            "BULWARK_SECRET_KEY is set: generate the new key yourself (`openssl rand -hex 32`), set it as BULWARK_SECRET_KEY, move the old one to BULWARK_SECRET_RETIRED_KEYS, restart, then run `bulwark secrets rotate`"
        );
    }
    let path = config.data_dir.join("secret.key");
    let old = secret_keyring(config)?;
    let old_text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let retired_file = config.data_dir.join("secret.key.retired");
    let mut retired_text = if retired_file.exists() {
        std::fs::read_to_string(&retired_file)?
    } else {
        String::new()
    };
    if !retired_text.is_empty() && !retired_text.ends_with('\n') {
        retired_text.push('\n');
    }
    retired_text.push_str(old_text.trim());
    retired_text.push('\n');
    // Retire first, then replace: a crash in between leaves both keys usable.
    let tmp = config.data_dir.join("secret.key.retired.tmp");
    let _ = std::fs::remove_file(&tmp);
    write_private_file(&tmp, retired_text.as_bytes())?;
    std::fs::rename(&tmp, &retired_file)?;
    let new = SecretKey::generate();
    let tmp = config.data_dir.join("secret.key.tmp");
    let _ = std::fs::remove_file(&tmp);
    write_private_file(&tmp, new.to_hex().as_bytes())?;
    std::fs::rename(&tmp, &path)?;
    Ok((old.current_id().to_owned(), new.id().to_owned()))
}

/// The integrations runtime of this node: built-in types plus the operator's directory, the
/// keyring, and the outbound allow-list.
pub fn integrations(config: &Config) -> anyhow::Result<bulwark_integrations::Integrations> {
    let custom = match &config.integrations_dir {
        Some(d) => bulwark_integrations::load_dir(d)
            .map_err(|e| anyhow::anyhow!("BULWARK_INTEGRATIONS_DIR: {e}"))?,
        None => Vec::new(),
    };
    let settings = bulwark_integrations::outbound::OutboundSettings {
        allow: config.http_allow.clone(),
        ..Default::default()
    };
    bulwark_integrations::Integrations::new(secret_keyring(config)?, settings, custom)
        .map_err(|e| anyhow::anyhow!("integrations: {e}"))
}
