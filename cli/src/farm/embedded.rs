//! The embedded farm: with no coordinator configured, a coordinator and a worker run inside
//! `rmake-remote` itself, over the same HTTP code as a shared farm, with their data in the user's
//! cache dir so the cache survives between builds.

use std::path::Path;

use anyhow::Context;

/// A running embedded farm; dropping it stops the worker and the coordinator.
pub struct Embedded {
    /// The coordinator's base URL (loopback).
    pub url: String,
    server: Option<rmake_coordinator::server::Running>,
    stop_worker: Option<tokio::sync::oneshot::Sender<()>>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("url", &self.url).finish()
    }
}

/// Size cap of the embedded farm's store.
const MAX_CACHE_BYTES: u64 = 10 << 30;
/// Data directories tried in turn: one stays locked while a build uses it, so concurrent
/// builds of the same user each take the next free one.
const SLOTS: usize = 8;

impl Embedded {
    /// Starts a coordinator on 127.0.0.1 with its data under `cache_dir`, and a worker with
    /// `slots` slots (at least one per core): on the user's own machine a `-j64` build runs 64
    /// recipes at once, as make would.
    pub async fn start(cache_dir: &Path, slots: u32) -> anyhow::Result<Embedded> {
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating the cache directory {}", cache_dir.display()))?;
        let mut first_error = None;
        for slot in 0..SLOTS {
            let name = if slot == 0 { "farm".to_string() } else { format!("farm-{slot}") };
            let dir = cache_dir.join(&name);
            let mut config = rmake_coordinator::Config::local(dir.join("coordinator"), MAX_CACHE_BYTES);
            // A loopback farm for one user: a crash loses at most a few recent cache entries.
            config.fsync = false;
            match rmake_coordinator::server::spawn(config).await {
                Ok(server) => {
                    let url = server.url.clone();
                    let mut wc = rmake_worker::Config::new(url.clone(), dir.join("worker"));
                    wc.name = format!("embedded-{}", std::process::id());
                    wc.slots = wc.slots.max(slots);
                    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                    let worker = tokio::spawn(async move {
                        if let Err(e) = rmake_worker::run(wc, async move {
                            let _ = rx.await;
                        })
                        .await
                        {
                            tracing::error!(error = %format!("{e:#}"), "embedded worker stopped");
                        }
                    });
                    return Ok(Embedded { url, server: Some(server), stop_worker: Some(tx), worker: Some(worker) });
                }
                Err(e) => {
                    tracing::debug!(dir = %dir.display(), error = %e, "embedded farm data dir unavailable");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(anyhow::Error::new(e).context("starting the embedded farm")),
            None => anyhow::bail!("starting the embedded farm: no data directory available"),
        }
    }

    /// Stops the worker, then the coordinator (flushing its metadata).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop_worker.take() {
            let _ = tx.send(());
        }
        if let Some(w) = self.worker.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), w).await;
        }
        if let Some(s) = self.server.take() {
            if let Err(e) = s.stop().await {
                tracing::warn!(error = %e, "stopping the embedded coordinator");
            }
        }
    }
}
