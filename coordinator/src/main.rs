//! `rmake-coordinator`: parses flags, opens the data directory, serves the API.

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use rmake_coordinator::{server, AppState, Args, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = EnvFilter::try_from_env("RMAKE_LOG").unwrap_or_else(|_| {
        EnvFilter::new("rmake=info,rmake_coordinator=info,rmake_cas=info,tower_http=info")
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmake-coordinator: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::from_args(&args)?;
    tracing::info!(?config, "starting");
    let cfg = config.clone();
    let (state, report) = tokio::task::spawn_blocking(move || AppState::open(&cfg))
        .await?
        .with_context(|| format!("opening data directory {}", config.data_dir.display()))?;
    tracing::info!(
        ?report,
        blobs = state.blobs.meta().blob_count(),
        bytes = state.blobs.meta().blob_bytes(),
        "store opened"
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    server::serve(listener, state, config.eviction_interval, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
