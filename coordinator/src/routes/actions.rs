//! `GET /v1/actions/<key>`: action-cache lookup. There is deliberately no write endpoint.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;

use rmake_proto::{ActionKey, ActionResult};

use crate::error::ApiError;
use crate::state::AppState;

/// A hit is the stored result; a miss (or an entry whose blobs are gone) is a 404.
pub(super) async fn lookup(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<ActionResult>, ApiError> {
    let key: ActionKey = super::extract::path_param(key)?
        .parse()
        .map_err(|e: rmake_proto::ActionKeyParseError| ApiError::BadRequest(e.to_string()))?;
    let cache = state.actions.clone();
    match tokio::task::spawn_blocking(move || cache.lookup(&key)).await?? {
        Some(result) => Ok(Json(result)),
        None => Err(ApiError::NotFound(format!(
            "no action-cache entry for {key}"
        ))),
    }
}
