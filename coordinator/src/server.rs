//! Running the service: serving a router on a listener with peer addresses (for the loopback
//! rule), and the start-up used by the binary and by tests.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::eviction::spawn_evictor;
use crate::routes::app;
use crate::state::AppState;

/// Serves `state` on `listener` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    eviction_interval: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let evictor = spawn_evictor(state.blobs.clone(), eviction_interval);
    if state.auth.loopback_only() {
        tracing::warn!(
            "no tokens are configured: only loopback (127.0.0.0/8, ::1) connections will be accepted; \
             set tokens in the config file or RMAKE_TOKENS to serve other hosts"
        );
    }
    let result = axum::serve(listener, app(state.clone()).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    evictor.abort();
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
