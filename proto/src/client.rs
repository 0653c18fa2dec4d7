//! `CoordinatorClient`: the typed HTTP client of the coordinator API, used by workers and the CLI.
//!
//! Every download is checked against its digest before the caller sees it as complete; large
//! blobs stream in both directions and are never held whole in memory.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::{header, Method, RequestBuilder, Response, StatusCode};

use rmake_cas::{Digest, Hasher};

use crate::action::{ActionKey, ActionResult};
use crate::batch;
use crate::error::ClientError;
use crate::paths;
use crate::types::{
    limits, BatchDownloadRequest, BatchUploadResponse, BuildId, ErrorBody, FindMissingRequest,
    FindMissingResponse, HealthResponse, PinRequest, PinResponse, StatusResponse,
};

/// Buffer size for streaming a local file up.
const FILE_CHUNK: usize = 1024 * 1024;

/// A byte range of a blob, as in an HTTP `Range: bytes=` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b`: bytes `a` to `b`, both included.
    Inclusive(u64, u64),
    /// `a-`: from `a` to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl std::fmt::Display for ByteRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ByteRange::Inclusive(a, b) => write!(f, "bytes={a}-{b}"),
            ByteRange::From(a) => write!(f, "bytes={a}-"),
            ByteRange::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

/// A client for one coordinator: a base URL and an optional bearer token.
#[derive(Clone)]
pub struct CoordinatorClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for CoordinatorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never print it.
        f.debug_struct("CoordinatorClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A stream of a blob's bytes that fails at the end if they do not hash to the digest.
pub struct BlobStream {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    hasher: Option<Hasher>,
    expected: Digest,
}

impl Stream for BlobStream {
    type Item = Result<Bytes, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(h) = this.hasher.as_mut() {
                    h.update(&chunk);
                    if h.len() > this.expected.size {
                        this.hasher = None;
                        return Poll::Ready(Some(Err(ClientError::Protocol(format!(
                            "blob {} arrived longer than its size",
                            this.expected
                        )))));
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.hasher = None;
                Poll::Ready(Some(Err(ClientError::Transport(e))))
            }
            Poll::Ready(None) => match this.hasher.take() {
                None => Poll::Ready(None),
                Some(h) => {
                    let actual = h.finish();
                    if actual == this.expected {
                        Poll::Ready(None)
                    } else {
                        Poll::Ready(Some(Err(ClientError::DigestMismatch {
                            expected: this.expected,
                            actual,
                        })))
                    }
                }
            },
        }
    }
}

impl CoordinatorClient {
    /// A client for the coordinator at `base_url` (`http://host:port`, with or without a path
    /// prefix), sending `token` as a bearer token if given.
    pub fn new(base_url: &str, token: Option<String>) -> Result<CoordinatorClient, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let parsed = reqwest::Url::parse(base_url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(ClientError::Transport)?;
        Ok(CoordinatorClient {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// Sends a request; turns an error status into [`ClientError::Api`] with the body's message.
    pub(crate) async fn send(&self, builder: RequestBuilder) -> Result<Response, ClientError> {
        let resp = builder.send().await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => (body.code, body.error),
            Err(_) => ("http_error".to_string(), text.chars().take(500).collect()),
        };
        Err(ClientError::Api {
            status: status.as_u16(),
            code,
            message,
        })
    }

    pub(crate) async fn json<T: serde::de::DeserializeOwned>(resp: Response) -> Result<T, ClientError> {
        let bytes = resp.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<HealthResponse, ClientError> {
        Self::json(self.send(self.request(Method::GET, paths::HEALTHZ)).await?).await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        Self::json(self.send(self.request(Method::GET, paths::STATUS)).await?).await
    }

    /// The digests the coordinator lacks, in input order without duplicates. Splits large
    /// requests to stay under the server's limit.
    pub async fn find_missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, ClientError> {
        let mut missing = Vec::new();
        for chunk in digests.chunks(limits::MAX_BATCH_DIGESTS) {
            let req = FindMissingRequest {
                digests: chunk.to_vec(),
            };
            let resp = self
                .send(self.request(Method::POST, paths::FIND_MISSING).json(&req))
                .await?;
            let body: FindMissingResponse = Self::json(resp).await?;
            missing.extend(body.missing);
        }
        let mut seen = std::collections::HashSet::new();
        missing.retain(|d| seen.insert(*d));
        Ok(missing)
    }

    /// Uploads one blob held in memory.
    pub async fn upload_blob(&self, digest: &Digest, data: Bytes) -> Result<(), ClientError> {
        let builder = self
            .request(Method::PUT, &paths::blob(digest))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(data);
        self.send(builder).await.map(drop)
    }

    /// Uploads one blob from a stream of chunks; the coordinator verifies the digest.
    pub async fn upload_stream<S, E>(&self, digest: &Digest, stream: S) -> Result<(), ClientError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let builder = self
            .request(Method::PUT, &paths::blob(digest))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, digest.size)
            .body(reqwest::Body::wrap_stream(stream));
        self.send(builder).await.map(drop)
    }

    /// Uploads a local file as the blob `digest`, streaming it.
    pub async fn upload_file(&self, digest: &Digest, path: &Path) -> Result<(), ClientError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| ClientError::Io {
                op: "open",
                path: path.to_path_buf(),
                source,
            })?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, FILE_CHUNK);
        self.upload_stream(digest, stream).await
    }

    /// Downloads one blob into memory and verifies it.
    pub async fn download_blob(&self, digest: &Digest) -> Result<Bytes, ClientError> {
        let mut stream = self.download_stream(digest).await?;
        let mut out = Vec::with_capacity(usize::try_from(digest.size).unwrap_or(0).min(64 << 20));
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }

    /// Streams one blob; the stream yields an error at its end if the bytes are wrong.
    pub async fn download_stream(&self, digest: &Digest) -> Result<BlobStream, ClientError> {
        let resp = self
            .send(self.request(Method::GET, &paths::blob(digest)))
            .await?;
        Ok(BlobStream {
            inner: Box::pin(resp.bytes_stream()),
            hasher: Some(Hasher::new()),
            expected: *digest,
        })
    }

    /// Downloads one blob into `path` (created or truncated), verifying it; on a mismatch or
    /// any failure the file is removed. Hashing and writing happen on a blocking thread.
    pub async fn download_to_file(&self, digest: &Digest, path: &Path) -> Result<(), ClientError> {
        let resp = self
            .send(self.request(Method::GET, &paths::blob(digest)))
            .await?;
        let mut body = resp.bytes_stream();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let target = path.to_path_buf();
        let expected = *digest;
        let writer = tokio::task::spawn_blocking(move || -> Result<(), ClientError> {
            use std::io::Write;
            let io_err = |op, source| ClientError::Io {
                op,
                path: target.clone(),
                source,
            };
            let file = std::fs::File::create(&target).map_err(|e| io_err("create", e))?;
            let mut out = std::io::BufWriter::with_capacity(FILE_CHUNK, file);
            let mut hasher = Hasher::new();
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
                if hasher.len() > expected.size {
                    return Err(ClientError::Protocol(format!(
                        "blob {expected} arrived longer than its size"
                    )));
                }
                out.write_all(&chunk).map_err(|e| io_err("write", e))?;
            }
            out.flush().map_err(|e| io_err("write", e))?;
            let actual = hasher.finish();
            if actual != expected {
                return Err(ClientError::DigestMismatch { expected, actual });
            }
            Ok(())
        });
        let mut transport = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => {
                    if tx.send(c).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    transport = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let written = writer
            .await
            .map_err(|e| ClientError::Protocol(format!("writer task failed: {e}")));
        let result = match (transport, written) {
            (Some(e), _) => Err(ClientError::Transport(e)),
            (None, Ok(r)) => r,
            (None, Err(e)) => Err(e),
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        result
    }

    /// Downloads part of a blob (not verifiable, since it is not the whole blob).
    pub async fn download_range(
        &self,
        digest: &Digest,
        range: ByteRange,
    ) -> Result<Bytes, ClientError> {
        let builder = self
            .request(Method::GET, &paths::blob(digest))
            .header(header::RANGE, range.to_string());
        let resp = self.send(builder).await?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(ClientError::Protocol(format!(
                "expected 206 for a range, got {}",
                resp.status()
            )));
        }
        Ok(resp.bytes().await?)
    }

    /// Uploads small blobs in one request (see [`crate::batch`] for the framing). The caller
    /// keeps within the batch limits; [`CoordinatorClient::upload_many`] splits for you.
    pub async fn batch_upload(
        &self,
        blobs: &[(Digest, Bytes)],
    ) -> Result<BatchUploadResponse, ClientError> {
        let body = batch::encode_upload(blobs.iter().map(|(d, b)| (d, b.as_ref())));
        let builder = self
            .request(Method::POST, paths::BATCH_UPLOAD)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        Self::json(self.send(builder).await?).await
    }

    /// Downloads small blobs in one request; each present blob is verified. Returns one entry
    /// per requested digest, in order, `None` for a blob the coordinator lacks.
    pub async fn batch_download(
        &self,
        digests: &[Digest],
    ) -> Result<Vec<(Digest, Option<Bytes>)>, ClientError> {
        let req = BatchDownloadRequest {
            digests: digests.to_vec(),
        };
        let resp = self
            .send(self.request(Method::POST, paths::BATCH_DOWNLOAD).json(&req))
            .await?;
        let body = resp.bytes().await?;
        let frames = batch::decode(&body, digests.len())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if frames.len() != digests.len() {
            return Err(ClientError::Protocol(format!(
                "batch download answered {} frames for {} digests",
                frames.len(),
                digests.len()
            )));
        }
        let mut out = Vec::with_capacity(frames.len());
        for (want, frame) in digests.iter().zip(frames) {
            if frame.digest != *want {
                return Err(ClientError::Protocol(format!(
                    "batch frame for {} answers {want}",
                    frame.digest
                )));
            }
            if let Some(data) = &frame.data {
                let actual = Digest::of(data);
                if actual != *want {
                    return Err(ClientError::DigestMismatch {
                        expected: *want,
                        actual,
                    });
                }
            }
            out.push((frame.digest, frame.data));
        }
        Ok(out)
    }

    /// Looks up an action-cache entry; `None` on a miss.
    pub async fn lookup_action(
        &self,
        key: &ActionKey,
    ) -> Result<Option<ActionResult>, ClientError> {
        match self
            .send(self.request(Method::GET, &paths::action(key)))
            .await
        {
            Ok(resp) => Ok(Some(Self::json(resp).await?)),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Pins blobs for a build (or renews its lease); returns the ones that are not stored.
    pub async fn pin(&self, req: &PinRequest) -> Result<PinResponse, ClientError> {
        Self::json(
            self.send(self.request(Method::POST, paths::PINS).json(req))
                .await?,
        )
        .await
    }

    /// Drops every pin of a build.
    pub async fn unpin(&self, build: &BuildId) -> Result<(), ClientError> {
        self.send(self.request(Method::DELETE, &paths::pins_of(build)))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_tokens_hidden() {
        assert!(CoordinatorClient::new("not a url", None).is_err());
        assert!(CoordinatorClient::new("ftp://host/", None).is_err());
        let c = CoordinatorClient::new("http://127.0.0.1:1/", Some("s3cret".into()));
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.base_url(), "http://127.0.0.1:1");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn range_header_text() {
        assert_eq!(ByteRange::Inclusive(0, 9).to_string(), "bytes=0-9");
        assert_eq!(ByteRange::From(5).to_string(), "bytes=5-");
        assert_eq!(ByteRange::Suffix(3).to_string(), "bytes=-3");
    }
}
