//! Request extractors and body readers that fail with [`ApiError`]s (JSON bodies, size limits).

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use rmake_cas::Digest;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body, limited to the configured size, rejected as `{"error", "code"}`.
pub(super) struct ApiJson<T>(pub(super) T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_limited(
            req.into_body(),
            state.limits.max_json_bytes as u64,
            "JSON request",
        )
        .await?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON request body: {e}")))
    }
}

/// Reads a whole body of at most `limit` bytes.
pub(super) async fn read_limited(
    body: Body,
    limit: u64,
    what: &str,
) -> Result<bytes::Bytes, ApiError> {
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit_usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ApiError::PayloadTooLarge(format!(
            "{what} body is larger than the limit of {limit} bytes"
        ))),
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the {what} body: {e}"
        ))),
    }
}

/// A path parameter, or a JSON 400 if it does not decode.
pub(super) fn path_param<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(t)| t)
        .map_err(|e| ApiError::BadRequest(format!("invalid path: {e}")))
}

/// The digest named by a `/v1/blobs/<hex>/<size>` path.
pub(super) fn digest_from_path(
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Digest, ApiError> {
    let (hash, size) = path_param(p)?;
    format!("{hash}/{size}")
        .parse()
        .map_err(|e: rmake_cas::DigestParseError| ApiError::BadRequest(e.to_string()))
}
