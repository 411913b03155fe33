//! `bulwark`: one binary for the API server, workers and administration.

use anyhow::Context;
use bulwark::config::{Config, LogFormat};
use bulwark::{bootstrap, cli, server};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "bulwark",
    version,
    about = "Bulwark security operations platform"
)]
struct Cli {
    /// Optional TOML configuration file (BULWARK_* environment variables override it).
    #[arg(long, global = true, env = "BULWARK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP API (and, by default, an embedded worker). The default command.
    Serve,
    /// Run a worker only (scale-out on PostgreSQL).
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage analysts.
    #[command(subcommand)]
    User(cli::UserCmd),
    /// Manage API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(cli::ApiKeyCmd),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(cli::TenantCmd),
    /// Tamper-evident audit log: verify, export, checkpoint.
    #[command(subcommand)]
    Audit(cli::AuditCmd),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Playbook files (offline: no database or configuration needed).
    #[command(subcommand)]
    Playbook(PlaybookCmd),
    /// The key that encrypts integration secrets.
    #[command(subcommand)]
    Secrets(SecretsCmd),
}

#[derive(Subcommand, Debug)]
enum SecretsCmd {
    /// Re-encrypt every stored integration secret under the current key (after a new key was
    /// set and the old one listed as retired). `--new-key` first replaces the key file.
    Rotate {
        /// Key file only: retire the current `secret.key` (to `secret.key.retired`) and write a
        /// new one before re-encrypting. Restart the other nodes afterwards.
        #[arg(long)]
        new_key: bool,
    },
    /// Which keys the stored secrets use.
    Status,
}

#[derive(Subcommand, Debug)]
enum PlaybookCmd {
    /// Check YAML/JSON playbooks against the built-in actions; prints `FILE:line: message`
    /// for every problem and exits 1 when a file is invalid.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Validate the configuration and print the effective settings (secrets redacted).
    Check,
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> std::process::ExitCode {
    bulwark::memory::limit_malloc_arenas();
    let cli = Cli::parse();
    if let Some(Command::Playbook(PlaybookCmd::Validate { files })) = &cli.command {
        let (report, ok) = bulwark::playbook_cmd::validate_files(files);
        print!("{report}");
        return if ok {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::from(1)
        };
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bulwark: configuration error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bulwark: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bulwark: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn open_store(config: &Config) -> anyhow::Result<bulwark_store::Store> {
    bootstrap::ensure_data_dir(config)?;
    bulwark_store::open(config.database_url.expose())
        .await
        .with_context(|| format!("opening database {}", config.database_url_redacted()))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            bulwark::memory::start_trimming();
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("BULWARK_LISTEN: cannot listen on {}", config.listen))?;
            server::serve(config, listener, server::shutdown_signal()).await
        }
        Command::Worker => {
            bulwark::memory::start_trimming();
            server::run_worker(config).await
        }
        Command::Migrate => {
            bootstrap::ensure_data_dir(&config)?;
            let backend = bulwark_store::migrate(config.database_url.expose()).await?;
            println!(
                "migrations applied ({backend:?}, {})",
                config.database_url_redacted()
            );
            Ok(())
        }
        Command::User(cmd) => {
            let store = open_store(&config).await?;
            bootstrap::ensure_initial_accounts(&store, &config).await?;
            let r = cli::user(&store, cmd).await;
            store.close().await;
            r
        }
        Command::ApiKey(cmd) => {
            let store = open_store(&config).await?;
            bootstrap::ensure_initial_accounts(&store, &config).await?;
            let r = cli::api_key(&store, cmd).await;
            store.close().await;
            r
        }
        Command::Tenant(cmd) => {
            let store = open_store(&config).await?;
            bootstrap::ensure_initial_accounts(&store, &config).await?;
            let r = cli::tenant_cmd(&store, cmd).await;
            store.close().await;
            r
        }
        Command::Audit(cli::AuditCmd::Verify {
            file: Some(file),
            public_key,
            ..
        }) => {
            if cli::verify_file(&file, public_key.as_deref())? {
                Ok(())
            } else {
                anyhow::bail!("audit verification failed")
            }
        }
        Command::Audit(cmd) => {
            let store = open_store(&config).await?;
            bootstrap::ensure_initial_accounts(&store, &config).await?;
            let keys = bootstrap::audit_keys(&config)?;
            let r = cli::audit(&store, &keys, cmd).await;
            store.close().await;
            if r? {
                Ok(())
            } else {
                anyhow::bail!("audit verification failed")
            }
        }
        Command::Playbook(_) => Ok(()), // handled before the configuration is read
        Command::Secrets(cmd) => {
            let store = open_store(&config).await?;
            if let SecretsCmd::Rotate { new_key: true } = cmd {
                let (old, new) = bootstrap::new_secret_key(&config)?;
                println!("new secret key {new} (key {old} retired to secret.key.retired)");
            }
            let keyring = bootstrap::secret_keyring(&config)?;
            let r = match cmd {
                SecretsCmd::Rotate { .. } => cli::rotate_secrets(&store, &keyring).await,
                SecretsCmd::Status => cli::secrets_status(&store, &keyring).await,
            };
            store.close().await;
            r
        }
        Command::Config(ConfigCmd::Check) => {
            println!("configuration is valid");
            println!("data_dir         = {}", config.data_dir.display());
            println!("database_url     = {}", config.database_url_redacted());
            println!("listen           = {}", config.listen);
            println!("log_format       = {:?}", config.log_format);
            println!("log_level        = {}", config.log_level);
            println!("token_ttl_secs   = {}", config.token_ttl_secs);
            println!("body_limit_bytes = {}", config.body_limit_bytes);
            println!(
                "jwt_secret       = {}",
                if config.jwt_secret.is_some() {
                    "[set]"
                } else {
                    "[key file in data_dir]"
                }
            );
            println!("embedded_worker  = {}", config.embedded_worker);
            println!("worker_concurrency = {}", config.worker_concurrency);
            println!("worker_lease_secs  = {}", config.worker_lease_secs);
            println!(
                "worker_poll_interval_ms = {}",
                config.worker_poll_interval_ms
            );
            println!("http_allow       = {:?}", config.http_allow);
            println!("session_ttl_secs  = {}", config.session_ttl_secs);
            println!("session_idle_secs = {}", config.session_idle_secs);
            println!("cookie_secure     = {:?}", config.cookie_secure);
            println!(
                "playbooks_dir    = {}",
                config
                    .playbooks_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| "[none]".into())
            );
            Ok(())
        }
    }
}
