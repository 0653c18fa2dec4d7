//! Single-blob endpoints: `POST /v1/find-missing`, `PUT` and `GET /v1/blobs/<hex>/<size>`.
//!
//! Uploads stream from the request body through a bounded channel into a blocking task that
//! hashes and writes; downloads stream from a blocking reader through a channel into the
//! response. Neither holds a large blob in memory.

use std::io::{Read, Seek, SeekFrom};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;

use rmake_cas::Digest;
use rmake_proto::{FindMissingRequest, FindMissingResponse};

use super::extract::{digest_from_path, ApiJson};
use crate::blobs::UploadChunk;
use crate::error::{ApiError, StoreError};
use crate::range;
use crate::state::AppState;

/// Blobs up to this size are read in one go; larger ones are streamed in chunks of this size.
const CHUNK: usize = 1024 * 1024;
/// After a failed upload, at most this much of the rest of the body is read (and dropped) so
/// the client gets the error answer instead of a reset connection.
const DRAIN_LIMIT: u64 = 256 * 1024 * 1024;
/// An upload that sends nothing for this long is abandoned (and nothing is stored).
const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(120);

/// Answers which of the requested blobs are not stored.
pub(super) async fn find_missing(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<FindMissingRequest>,
) -> Result<Json<FindMissingResponse>, ApiError> {
    if req.digests.len() > state.limits.max_batch_blobs {
        return Err(ApiError::PayloadTooLarge(format!(
            "at most {} digests per find-missing request",
            state.limits.max_batch_blobs
        )));
    }
    let blobs = state.blobs.clone();
    let missing = tokio::task::spawn_blocking(move || -> Result<Vec<Digest>, StoreError> {
        let present = blobs.has_many(&req.digests)?;
        let mut seen = std::collections::HashSet::new();
        Ok(req
            .digests
            .iter()
            .zip(present)
            .filter(|(d, p)| !p && seen.insert(**d))
            .map(|(d, _)| *d)
            .collect())
    })
    .await??;
    Ok(Json(FindMissingResponse { missing }))
}

/// Stores one blob from the streamed body; 201 once it is verified and durable.
pub(super) async fn put_blob(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let digest = digest_from_path(path)?;
    if digest.size > state.limits.max_blob_size {
        return Err(ApiError::PayloadTooLarge(format!(
            "blob of {} bytes is larger than the limit of {} bytes",
            digest.size, state.limits.max_blob_size
        )));
    }
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        if len != digest.size {
            return Err(ApiError::DigestMismatch(format!(
                "Content-Length is {len} but the digest says {} bytes; nothing was stored",
                digest.size
            )));
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<UploadChunk>(8);
    let blobs = state.blobs.clone();
    let writer = tokio::task::spawn_blocking(move || blobs.put_chunks(&digest, &mut rx));
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut writer_gone = false;
    loop {
        let chunk = match tokio::time::timeout(UPLOAD_IDLE, stream.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => {
                let _ = tx
                    .send(Err(format!(
                        "no data for {} seconds",
                        UPLOAD_IDLE.as_secs()
                    )))
                    .await;
                break;
            }
        };
        match chunk {
            Ok(bytes) => {
                received += bytes.len() as u64;
                if tx.send(Ok(bytes)).await.is_err() {
                    writer_gone = true;
                    break;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string())).await;
                break;
            }
        }
    }
    drop(tx);
    let result = writer.await?;
    if writer_gone && result.is_err() {
        // Read the rest (bounded) so the client sees our answer rather than a reset.
        let mut drained = 0u64;
        while drained < DRAIN_LIMIT {
            match tokio::time::timeout(UPLOAD_IDLE, stream.next()).await {
                Ok(Some(Ok(b))) => drained += b.len() as u64,
                _ => break,
            }
        }
    }
    result?;
    tracing::debug!(%digest, received, "blob stored");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "digest": digest })),
    )
        .into_response())
}

/// Streams one blob (or a `Range` of it).
pub(super) async fn get_blob(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let digest = digest_from_path(path)?;
    let span = range::resolve(
        headers.get(header::RANGE).map(HeaderValue::as_bytes),
        digest.size,
    )?;
    let blobs = state.blobs.clone();
    let opened = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let Some(mut reader) = blobs.open_read(&digest)? else {
            return Ok(None);
        };
        if span.start > 0 {
            reader
                .seek(SeekFrom::Start(span.start))
                .map_err(ApiError::internal)?;
        }
        if span.len <= CHUNK as u64 {
            let mut buf = Vec::with_capacity(span.len as usize);
            reader
                .take(span.len)
                .read_to_end(&mut buf)
                .map_err(ApiError::internal)?;
            if buf.len() as u64 != span.len {
                return Err(ApiError::internal(format!(
                    "blob {digest} is shorter than its size"
                )));
            }
            return Ok(Some(Err(Bytes::from(buf))));
        }
        Ok(Some(Ok(reader)))
    })
    .await??;
    let body = match opened {
        None => return Err(ApiError::NotFound(format!("blob {digest} not found"))),
        Some(Err(small)) => Body::from(small),
        Some(Ok(reader)) => Body::from_stream(stream_reader(reader, span.len)),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = if span.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(span.len));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", digest.hex())) {
        h.insert(header::ETAG, etag);
    }
    if span.partial {
        let last = span.start + span.len - 1;
        if let Ok(v) =
            HeaderValue::from_str(&format!("bytes {}-{last}/{}", span.start, digest.size))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

/// Reads `len` bytes from `reader` on a blocking thread and yields them in chunks.
fn stream_reader(
    mut reader: Box<dyn rmake_cas::ReadSeek>,
    len: u64,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut left = len;
        while left > 0 {
            let want = left.min(CHUNK as u64);
            let mut buf = Vec::with_capacity(want as usize);
            // `read_to_end` fills spare capacity without zeroing it first.
            let item = match (&mut reader).take(want).read_to_end(&mut buf) {
                Ok(n) if n as u64 == want => {
                    left -= want;
                    Ok(Bytes::from(buf))
                }
                Ok(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob file shorter than its size",
                )),
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            // The receiver is gone when the client hung up: stop reading.
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
