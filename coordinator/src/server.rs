//! Running the service: serving a router on a listener with peer addresses (for the loopback
//! rule), and the start-up used by the binary and by tests.

use std::future::Future;
use std::net::SocketAddr;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::eviction::spawn_evictor;
use crate::routes::app;
use crate::sched::spawn_sweeper;
use crate::state::AppState;

/// Serves `state` on `listener` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    eviction_interval: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let evictor = spawn_evictor(state.blobs.clone(), eviction_interval);
    let sweeper = spawn_sweeper(state.sched.clone());
    if state.auth.loopback_only() {
        tracing::warn!(
            "no tokens are configured: only loopback (127.0.0.0/8, ::1) connections will be accepted; \
             set tokens in the config file or RMAKE_TOKENS to serve other hosts"
        );
    }
    // Small writes (an execute stream's events, JSON answers) go out at once instead of
    // waiting for the peer's delayed ACK (Nagle): 40 ms per event otherwise.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let result = axum::serve(
        listener,
        app(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown({
        // Open execute streams and lease polls end first, or the drain would wait for them.
        let sched = state.sched.clone();
        async move {
            shutdown.await;
            sched.shutdown();
        }
    })
    .await;
    evictor.abort();
    sweeper.abort();
    let blobs = state.blobs.clone();
    // Write buffered last-use times and make sled durable before exiting.
    let _ = tokio::task::spawn_blocking(move || {
        let meta = blobs.meta();
        if let Err(e) = meta.flush_touches().and_then(|_| meta.flush()) {
            tracing::error!(error = %e, "could not flush metadata at shutdown");
        }
    })
    .await;
    result
}

/// A coordinator started in this process (the embedded farm, tests): where it listens, its
/// state, and how to stop it.
#[derive(Debug)]
pub struct Running {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its state (for in-process use such as `ActionCache::insert`).
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Stops serving, waits for open requests and flushes the metadata.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Why an in-process coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be opened.
    #[error("opening data directory: {0}")]
    Open(#[from] crate::error::StoreError),
    /// The listen address could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The blocking open task failed.
    #[error("start-up task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Opens the data directory of `config` and serves it on `config.listen` (port 0 picks a free
/// port) on the current tokio runtime, with the background eviction task.
pub async fn spawn(config: crate::config::Config) -> Result<Running, StartError> {
    let cfg = config.clone();
    let (state, _report) = tokio::task::spawn_blocking(move || AppState::open(&cfg)).await??;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        state.clone(),
        config.eviction_interval,
        async move {
            let _ = rx.await;
        },
    ));
    Ok(Running {
        url: format!("http://{addr}"),
        addr,
        state,
        shutdown: Some(tx),
        task: Some(task),
    })
}
