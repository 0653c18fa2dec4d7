//! `rmake-worker`: a build-farm worker. Flags over environment over the config file (logs:
//! `RMAKE_LOG`, an env-filter such as `rmake_worker=debug`); SIGTERM
//! or SIGINT stop it gracefully (running actions finish or are handed back, then it
//! deregisters and exits 0).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;

use rmake_worker::config::{parse_property, parse_size, FileConfig};
use rmake_worker::Config;

/// Runs recipes for an rmake coordinator.
#[derive(Debug, Parser)]
#[command(name = "rmake-worker", version, about)]
struct Args {
    /// Coordinator URL, e.g. http://farm:8080.
    #[arg(long, env = "RMAKE_COORDINATOR")]
    coordinator: Option<String>,
    /// Bearer token with the worker role.
    #[arg(long, env = "RMAKE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Actions run at once (default: the number of cores).
    #[arg(long)]
    slots: Option<u32>,
    /// Directory for the blob cache and the exec roots.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Name shown in results (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// A platform property, key=value (repeatable); added to os and arch.
    #[arg(long = "platform", value_name = "KEY=VALUE")]
    platform: Vec<String>,
    /// Size cap of the blob cache: bytes, or with a K/M/G/T suffix.
    #[arg(long)]
    cache_size: Option<String>,
    /// Default recipe timeout in seconds.
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Exec roots kept after their run for the next action on the same tree (0: none).
    #[arg(long)]
    idle_exec_roots: Option<u32>,
    /// TOML config file with the same keys (coordinator, token, slots, work-dir, name,
    /// cache-size, timeout-secs, idle-exec-roots, [platform]).
    #[arg(long, env = "RMAKE_WORKER_CONFIG")]
    config: Option<PathBuf>,
}

/// File, then environment and flags (clap already put flags over the environment).
fn resolve(args: Args) -> anyhow::Result<Config> {
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let Some(coordinator) = args.coordinator.or(file.coordinator) else {
        bail!("no coordinator: pass --coordinator URL or set RMAKE_COORDINATOR");
    };
    let work_dir = args
        .work_dir
        .or(file.work_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("rmake-worker"));
    let mut config = Config::new(coordinator, work_dir);
    config.token = args.token.or(file.token);
    if let Some(name) = args.name.or(file.name) {
        config.name = name;
    }
    if let Some(slots) = args.slots.or(file.slots) {
        if slots == 0 {
            bail!("--slots must be at least 1");
        }
        config.slots = slots;
        config.idle_exec_roots = slots;
    }
    if let Some(size) = file.cache_size {
        config.cache_max_bytes = size.0;
    }
    if let Some(size) = &args.cache_size {
        config.cache_max_bytes = parse_size(size).context("--cache-size")?;
    }
    if let Some(secs) = args.timeout_secs.or(file.timeout_secs) {
        config.default_timeout = Duration::from_secs(secs);
    }
    if let Some(n) = args.idle_exec_roots.or(file.idle_exec_roots) {
        config.idle_exec_roots = n;
    }
    config.platform.extend(file.platform);
    for p in &args.platform {
        let (k, v) = parse_property(p)?;
        config.platform.insert(k, v);
    }
    Ok(config)
}

/// Completes on the first SIGTERM or SIGINT.
async fn signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RMAKE_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("rmake_worker=info,rmake_exec=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = (|| -> anyhow::Result<()> {
        let config = resolve(Args::parse())?;
        tracing::info!(?config, "starting");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?;
        rt.block_on(async {
            let stop = signal();
            tokio::pin!(stop);
            // Handlers are installed before the worker starts, so an early signal is not lost.
            let installed = futures::FutureExt::now_or_never(&mut stop);
            if let Some(r) = installed {
                return r;
            }
            let shutdown = async move {
                if let Err(e) = stop.await {
                    tracing::error!(error = %format!("{e:#}"), "signal handling failed; stopping");
                }
            };
            rmake_worker::run(config, shutdown).await
        })
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmake-worker: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
