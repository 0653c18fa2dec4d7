//! `GET /healthz` and `GET /v1/status`.

use axum::extract::State;
use axum::Json;

use rmake_proto::{HealthResponse, StatusResponse};

use crate::state::AppState;

/// Liveness: answers as long as the service runs.
pub(super) async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// Counters of the store (all in memory; no I/O).
pub(super) async fn status(State(state): State<AppState>) -> Json<StatusResponse> {
    let meta = state.blobs.meta();
    let (evictions, evicted_bytes) = state.blobs.eviction_counts();
    let (pinned_builds, pinned_blobs) = state.blobs.pins().stats();
    Json(StatusResponse {
        version: env!("CARGO_PKG_VERSION").to_string(),
        blob_count: meta.blob_count(),
        blob_bytes: meta.blob_bytes(),
        max_cache_bytes: state.blobs.max_cache_bytes(),
        evictions,
        evicted_bytes,
        action_cache_entries: state.actions.len(),
        pinned_builds,
        pinned_blobs,
        uptime_secs: state.started.elapsed().as_secs(),
    })
}
