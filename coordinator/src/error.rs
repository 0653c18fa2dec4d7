//! `ApiError`: every error the HTTP API returns, with its status and JSON body
//! `{"error": "...", "code": "..."}`; internal details are logged, not sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use rmake_cas::CasError;
use rmake_proto::ErrorBody;

/// An error answered to an API caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials (or none needed) but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Uploaded bytes do not match their digest; nothing was stored.
    #[error("{0}")]
    DigestMismatch(String),
    /// The request or batch is larger than the limits.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The Range cannot be served for a blob of this size.
    #[error("range not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable {
        /// The blob's size.
        size: u64,
    },
    /// The disk is full; nothing was stored.
    #[error("{0}")]
    InsufficientStorage(String),
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Something failed inside the coordinator; the detail is logged only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::DigestMismatch(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::DigestMismatch(_) => "digest_mismatch",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::InsufficientStorage(_) => "insufficient_storage",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Wraps an internal failure (logged when turned into a response).
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<CasError> for ApiError {
    fn from(e: CasError) -> ApiError {
        match e {
            CasError::DigestMismatch { .. } | CasError::SizeExceeded { .. } => {
                ApiError::DigestMismatch(format!("{e}; nothing was stored"))
            }
            CasError::NotFound(d) => ApiError::NotFound(format!("blob {d} not found")),
            CasError::NoSpace { .. } => ApiError::InsufficientStorage(
                "the coordinator's disk is full; nothing was stored".into(),
            ),
            CasError::InvalidDigest(p) => ApiError::BadRequest(p.to_string()),
            CasError::InvalidPath { .. } => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<sled::Error> for ApiError {
    fn from(e: sled::Error) -> ApiError {
        if let sled::Error::Io(io) = &e {
            if matches!(io.raw_os_error(), Some(28) | Some(122)) {
                return ApiError::InsufficientStorage(
                    "the coordinator's metadata disk is full".into(),
                );
            }
        }
        ApiError::Internal(format!("metadata store: {e}"))
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::Internal(format!("background task failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(detail = %detail, "internal error");
                "internal error (see the coordinator's log)".to_string()
            }
            other => {
                if status.is_server_error() {
                    tracing::warn!(error = %other, "request failed");
                } else {
                    tracing::debug!(error = %other, "request refused");
                }
                other.to_string()
            }
        };
        let body = ErrorBody {
            error: message,
            code: self.code().to_string(),
        };
        let mut resp = (status, Json(body)).into_response();
        match &self {
            ApiError::Unauthorized(_) => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RangeNotSatisfiable { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        resp
    }
}

/// An error of the coordinator's storage layer (blob store plus metadata), for library callers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The blob store failed or refused.
    #[error(transparent)]
    Cas(#[from] CasError),
    /// The metadata database failed.
    #[error("metadata store: {0}")]
    Meta(#[from] sled::Error),
    /// An upload's body stopped before its end.
    #[error("upload interrupted: {0}")]
    Interrupted(String),
    /// An action result refers to blobs the store does not hold.
    #[error("action result refers to {count} missing blob(s), e.g. {example}")]
    MissingOutputs {
        /// How many are missing.
        count: usize,
        /// One of them.
        example: rmake_cas::Digest,
    },
    /// A stored action-cache entry does not decode.
    #[error("corrupt action-cache entry: {0}")]
    Corrupt(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Cas(c) => c.into(),
            StoreError::Meta(m) => m.into(),
            StoreError::Interrupted(msg) => {
                ApiError::BadRequest(format!("upload interrupted: {msg}; nothing was stored"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
