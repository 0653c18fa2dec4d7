//! The worker's side of remote execution: `POST /v1/workers` (register), `DELETE
//! /v1/workers/{id}`, `POST /v1/workers/{id}/lease` (long poll), `POST
//! /v1/workers/{id}/heartbeat`, `POST /v1/leases/{id}/complete`; and `GET /v1/farm`.

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use rmake_proto::exec::{
    CompleteResponse, HeartbeatRequest, HeartbeatResponse, LeaseId, LeaseOutcome, LeaseRequest,
    LeaseResponse, RegisterRequest, RegisterResponse, WorkerId,
};

use super::extract::{path_param, ApiJson};
use crate::sched::{FarmStatus, SchedError};
use crate::state::AppState;

/// Registers a worker.
pub(super) async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Json<RegisterResponse>, SchedError> {
    if req.slots == 0 {
        return Err(SchedError::bad_request("a worker needs at least one slot"));
    }
    Ok(Json(state.sched.register(req)))
}

/// Deregisters a worker (idempotent); its leases are re-queued at once.
pub(super) async fn deregister(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, SchedError> {
    state.sched.deregister(&WorkerId(path_param(id)?));
    Ok(StatusCode::NO_CONTENT)
}

/// Waits for an action to run (`lease: null` when the wait ends empty).
pub(super) async fn lease(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<LeaseRequest>,
) -> Result<Json<LeaseResponse>, SchedError> {
    let worker = WorkerId(path_param(id)?);
    let lease = state
        .sched
        .lease(&worker, Duration::from_millis(req.wait_ms))
        .await?;
    Ok(Json(LeaseResponse { lease }))
}

/// Renews leases; answers the ones to abandon.
pub(super) async fn heartbeat(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, SchedError> {
    let worker = WorkerId(path_param(id)?);
    Ok(Json(state.sched.heartbeat(&worker, req.leases)))
}

/// Reports how a lease ended.
pub(super) async fn complete(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    ApiJson(outcome): ApiJson<LeaseOutcome>,
) -> Result<Json<CompleteResponse>, SchedError> {
    let lease = LeaseId(path_param(id)?);
    let accepted = state.sched.complete(&lease, outcome).await?;
    Ok(Json(CompleteResponse { accepted }))
}

/// Workers, builds, queued and running counts.
pub(super) async fn farm(State(state): State<AppState>) -> Json<FarmStatus> {
    Json(state.sched.status())
}
