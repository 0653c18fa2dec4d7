//! `SchedError`: how a remote-execution request is refused, with the HTTP status and the JSON
//! error body's code (`missing_inputs`, `unknown_worker`, …).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use rmake_proto::ErrorBody;

use crate::error::ApiError;

/// A refused or failed remote-execution request.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    /// No open build has this id (never opened, cancelled or expired).
    #[error("no build {0} (it was never opened, was cancelled, or expired)")]
    UnknownBuild(String),
    /// The worker is not registered (the coordinator restarted or forgot it): register again.
    #[error("unknown worker {0}: register again")]
    UnknownWorker(String),
    /// Blobs the action needs are not stored.
    #[error(
        "{count} input blob(s) of the action are not stored, e.g. {example}: upload them first"
    )]
    MissingInputs {
        /// How many are missing.
        count: usize,
        /// One of them.
        example: rmake_cas::Digest,
    },
    /// Anything the generic API errors cover (bad request, internal failure).
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl SchedError {
    /// A malformed request.
    pub fn bad_request(msg: impl Into<String>) -> SchedError {
        SchedError::Api(ApiError::BadRequest(msg.into()))
    }
}

impl From<tokio::task::JoinError> for SchedError {
    fn from(e: tokio::task::JoinError) -> SchedError {
        SchedError::Api(e.into())
    }
}

impl From<crate::error::StoreError> for SchedError {
    fn from(e: crate::error::StoreError) -> SchedError {
        SchedError::Api(ApiError::internal(e))
    }
}

impl IntoResponse for SchedError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            SchedError::UnknownBuild(_) => (StatusCode::NOT_FOUND, "unknown_build"),
            SchedError::UnknownWorker(_) => (StatusCode::NOT_FOUND, "unknown_worker"),
            SchedError::MissingInputs { .. } => (StatusCode::BAD_REQUEST, "missing_inputs"),
            SchedError::Api(_) => {
                let SchedError::Api(api) = self else {
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                };
                return api.into_response();
            }
        };
        tracing::debug!(error = %self, "request refused");
        let body = ErrorBody {
            error: self.to_string(),
            code: code.to_string(),
        };
        (status, Json(body)).into_response()
    }
}
