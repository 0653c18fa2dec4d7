//! Batch endpoints: `POST /v1/batch/upload` and `POST /v1/batch/download`, many small blobs per
//! request in the framing of `rmake_proto::batch`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use rmake_cas::Digest;
use rmake_proto::batch::{self, FramingError};
use rmake_proto::{BatchDownloadRequest, BatchUploadResponse, RejectedBlob};

use super::extract::{read_limited, ApiJson};
use crate::error::{ApiError, StoreError};
use crate::state::AppState;

/// Stores every frame of the body; answers per blob which were stored and which refused.
/// A full disk fails the whole request with 507.
pub(super) async fn batch_upload(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<BatchUploadResponse>, ApiError> {
    let bytes = read_limited(body, state.limits.max_batch_bytes, "batch upload").await?;
    let frames = batch::decode(&bytes, state.limits.max_batch_blobs).map_err(|e| match e {
        FramingError::TooManyFrames { max } => {
            ApiError::PayloadTooLarge(format!("at most {max} blobs per batch"))
        }
        other => ApiError::BadRequest(other.to_string()),
    })?;
    let mut items = Vec::with_capacity(frames.len());
    for f in frames {
        match f.data {
            Some(data) => items.push((f.digest, data)),
            None => {
                return Err(ApiError::BadRequest(format!(
                    "upload frame for {} has no data",
                    f.digest
                )))
            }
        }
    }
    let blobs = state.blobs.clone();
    let (items, results) = tokio::task::spawn_blocking(move || {
        let refs: Vec<(Digest, &[u8])> = items.iter().map(|(d, b)| (*d, b.as_ref())).collect();
        let results = blobs.put_many(&refs);
        (items, results)
    })
    .await?;
    let mut answer = BatchUploadResponse::default();
    for ((digest, _), result) in items.iter().zip(results) {
        match result {
            Ok(()) => answer.stored.push(*digest),
            Err(e) => {
                let api: ApiError = e.into();
                if matches!(api, ApiError::InsufficientStorage(_)) {
                    return Err(api);
                }
                answer.rejected.push(RejectedBlob {
                    digest: *digest,
                    code: api.code().to_string(),
                    error: api.to_string(),
                });
            }
        }
    }
    Ok(Json(answer))
}

/// Answers one frame per requested digest, in order, with the data of those stored.
pub(super) async fn batch_download(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BatchDownloadRequest>,
) -> Result<Response, ApiError> {
    let limits = state.limits;
    if req.digests.len() > limits.max_batch_blobs {
        return Err(ApiError::PayloadTooLarge(format!(
            "at most {} digests per batch",
            limits.max_batch_blobs
        )));
    }
    // The sizes come from the client: add them without overflowing.
    let total = req.digests.iter().try_fold(0u64, |acc, d| {
        d.size
            .checked_add(batch::FRAME_HEADER as u64)
            .and_then(|frame| acc.checked_add(frame))
    });
    if total.is_none_or(|t| t > limits.max_batch_bytes) {
        return Err(ApiError::PayloadTooLarge(format!(
            "the requested blobs add up to more than the batch limit of {} bytes; fetch large ones singly",
            limits.max_batch_bytes
        )));
    }
    let blobs = state.blobs.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(total.unwrap_or(0) as usize);
        for d in &req.digests {
            let data = blobs.get(d)?;
            batch::encode_frame(&mut out, d, data.as_deref());
        }
        Ok(out)
    })
    .await??;
    let mut resp = Body::from(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}
