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
