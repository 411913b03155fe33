//! `bulwark serve` and `bulwark worker`: long-running processes with graceful shutdown.
//!
//! The server entry takes a bound listener and a shutdown future, so tests and benchmarks can
//! bind port 0 and stop it at will.

use crate::bootstrap;
use crate::config::Config;
use bulwark_api::{ApiConfig, State};
use bulwark_store::Store;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives during start-up is not lost (and does
/// not kill the process with the default action).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { _ = wait(term) => {}, _ = wait(int) => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested; finishing in-flight work");
    }
}

/// Opens the store, bootstraps, and serves until `shutdown` resolves. In-flight requests finish
/// before this returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    bootstrap::ensure_data_dir(&config)?;
    let jwt = bootstrap::jwt_secret(&config)?;
    let store = bulwark_store::open(config.database_url.expose()).await?;
    let platform = bootstrap::ensure_initial_accounts(&store, &config).await?;

    let integrations = std::sync::Arc::new(bootstrap::integrations(&config)?);
    let mut api_config = ApiConfig::new(jwt.expose().clone(), platform.id);
    api_config.integrations = integrations.clone();
    api_config.audit = bootstrap::audit_keys(&config)?;
    api_config.token_ttl = Duration::from_secs(config.token_ttl_secs);
    api_config.body_limit = config.body_limit_bytes;
    api_config.dedup_window = chrono::Duration::seconds(config.dedup_window_secs as i64);
    api_config.limits = bulwark_api::state::Limits {
        key_rate: bulwark_core::model::RateLimit {
            per_second: config.key_rate_per_second,
            burst: config.key_rate_burst,
        },
        auth_failures_per_minute: config.auth_failures_per_minute,
        auth_failure_burst: config.auth_failure_burst,
        trust_forwarded_for: config.trust_forwarded_for,
        dead_letters_per_tenant: config.dead_letters_per_tenant,
    };
    let state = State::new(
        store.clone(),
        api_config,
        bulwark_api::http_metrics::prometheus(),
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let flusher = tokio::spawn(flush_counters(state.clone(), stop_rx.clone()));
    let checkpointer = tokio::spawn(checkpoint_loop(
        state.clone(),
        Duration::from_secs(config.audit_checkpoint_secs),
        stop_rx.clone(),
    ));
    let engine = crate::worker::engine_config(&config, Some(platform.id), &integrations);
    let worker = config.embedded_worker.then(|| {
        tokio::spawn(crate::worker::run(
            store.clone(),
            engine,
            integrations.clone(),
            stop_rx.clone(),
        ))
    });

    let addr = listener.local_addr()?;
    // A plain line on stdout, for people and for tests that bind port 0.
    println!("bulwark: listening on http://{addr}");
    tracing::info!(%addr, backend = ?store.backend(), database = %config.database_url_redacted(), "serving");

    let web = bulwark_web::router(
        state.clone(),
        bulwark_web::WebConfig {
            session_ttl: Duration::from_secs(config.session_ttl_secs),
            session_idle: Duration::from_secs(config.session_idle_secs),
            cookie_secure: config.cookie_secure,
            ..Default::default()
        },
    );
    axum::serve(
        listener,
        bulwark_api::router_with(state.clone(), web)
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;

    let _ = stop_tx.send(true);
    let _ = flusher.await;
    let _ = checkpointer.await;
    if let Some(w) = worker {
        let _ = w.await;
    }
    state.key_usage.flush(&store).await;
    state.ingest_stats.flush(&store).await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// API keys' `last_used_at` and the ingestion counters, written every 5 s instead of on
/// every request (and once more at shutdown).
async fn flush_counters(state: State, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {
                state.key_usage.flush(&state.store).await;
                state.ingest_stats.flush(&state.store).await;
            }
            _ = stop.changed() => return,
        }
    }
}

/// Signs a checkpoint of every audit chain that moved, periodically and once more at shutdown.
/// Every node may do this; a checkpoint already stored for a (tenant, seq) is skipped.
async fn checkpoint_loop(state: State, every: Duration, mut stop: watch::Receiver<bool>) {
    let Some(signer) = state.config.audit.signer.clone() else {
        return;
    };
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stop.changed() => true,
        };
        let scope = bulwark_core::Scope::AllTenants;
        match bulwark_store::audit::sign_checkpoints(state.store.as_ref(), &signer, &scope).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(checkpoints = n, "signed audit checkpoints"),
            Err(e) => tracing::warn!(error = %e, "could not sign audit checkpoints"),
        }
        if stopping {
            return;
        }
    }
}

/// `bulwark worker`: a worker process for scale-out on PostgreSQL.
pub async fn run_worker(config: Config) -> anyhow::Result<()> {
    let store: Store = bulwark_store::open(config.database_url.expose()).await?;
    let integrations = std::sync::Arc::new(bootstrap::integrations(&config)?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let shutdown = shutdown_signal();
    let engine = crate::worker::engine_config(&config, None, &integrations);
    let handle = tokio::spawn(crate::worker::run(
        store.clone(),
        engine,
        integrations,
        stop_rx,
    ));
    println!("bulwark: worker started");
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = handle.await;
    store.close().await;
    Ok(())
}
