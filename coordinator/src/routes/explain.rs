//! `POST /v1/explain`: why an action would miss the action cache, in words for users.

use axum::extract::State;
use axum::Json;

use rmake_proto::exec::{ExplainRequest, ExplainResponse};

use super::extract::ApiJson;
use crate::error::ApiError;
use crate::sched::validate;
use crate::state::AppState;

/// Compares the action with the nearest stored entry (see `docs/caching.md`).
pub(super) async fn explain(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ExplainRequest>,
) -> Result<Json<ExplainResponse>, ApiError> {
    validate::spec(&req.spec).map_err(ApiError::BadRequest)?;
    let cache = state.readsets.clone();
    let target = req.target.clone();
    let resp =
        tokio::task::spawn_blocking(move || cache.explain(&req.spec, &req.prereqs)).await??;
    tracing::debug!(%target, hit = resp.hit, reasons = resp.reasons.len(), "explained");
    Ok(Json(resp))
}
