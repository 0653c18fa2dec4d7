//! `POST /v1/pins` and `DELETE /v1/pins/<build>`: leases that keep a build's blobs from eviction.

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use rmake_proto::{BuildId, PinRequest, PinResponse};

use super::extract::ApiJson;
use crate::error::ApiError;
use crate::state::AppState;

/// Pins blobs for a build and renews its lease; answers which of them are not stored.
pub(super) async fn pin(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PinRequest>,
) -> Result<Json<PinResponse>, ApiError> {
    if !req.build_id.is_valid() {
        return Err(ApiError::BadRequest(
            "build_id must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit"
                .into(),
        ));
    }
    if req.digests.len() > state.limits.max_batch_blobs {
        return Err(ApiError::PayloadTooLarge(format!(
            "at most {} digests per pin request",
            state.limits.max_batch_blobs
        )));
    }
    let ttl_secs = req.ttl_secs.clamp(1, state.max_pin_ttl.as_secs().max(1));
    let blobs = state.blobs.clone();
    let missing = tokio::task::spawn_blocking(move || {
        blobs.pin(&req.build_id, &req.digests, Duration::from_secs(ttl_secs))
    })
    .await??;
    Ok(Json(PinResponse { missing, ttl_secs }))
}

/// Drops a build's pins (idempotent).
pub(super) async fn unpin(
    State(state): State<AppState>,
    build: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let build = BuildId(super::extract::path_param(build)?);
    if !build.is_valid() {
        return Err(ApiError::BadRequest("invalid build id".into()));
    }
    state.blobs.pins().unpin(&build);
    Ok(StatusCode::NO_CONTENT)
}
