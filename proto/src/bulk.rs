//! Many-blob transfers on top of [`CoordinatorClient`]: small blobs grouped into batches within
//! the server's limits, large ones streamed one by one, a bounded number of requests in flight.

use std::path::PathBuf;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use rmake_cas::Digest;

use crate::batch;
use crate::client::CoordinatorClient;
use crate::error::ClientError;
use crate::types::{limits, BatchUploadResponse, RejectedBlob};

/// Blobs with whatever locates their bytes (a `Bytes`, a path).
type Items<T> = Vec<(Digest, T)>;

/// Splits items into batches (each within the byte and count limits) of small blobs, and the
/// list of blobs too large for a batch.
fn plan<T: Clone>(items: &[(Digest, T)]) -> (Vec<Items<T>>, Items<T>) {
    let mut groups = Vec::new();
    let mut large = Vec::new();
    let mut current = Vec::new();
    let mut current_bytes = 0u64;
    for (d, t) in items {
        if d.size > limits::MAX_BATCH_BLOB {
            large.push((*d, t.clone()));
            continue;
        }
        let frame = d.size + batch::FRAME_HEADER as u64;
        if !current.is_empty()
            && (current_bytes + frame > limits::MAX_BATCH_BYTES
                || current.len() >= limits::MAX_BATCH_DIGESTS)
        {
            groups.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push((*d, t.clone()));
        current_bytes += frame;
    }
    if !current.is_empty() {
        groups.push(current);
    }
    (groups, large)
}

impl CoordinatorClient {
    /// Uploads any number of blobs: small ones in batches within the limits, large ones one by
    /// one, with up to `parallel` requests in flight. Returns the merged batch answers.
    pub async fn upload_many(
        &self,
        blobs: &[(Digest, Bytes)],
        parallel: usize,
    ) -> Result<BatchUploadResponse, ClientError> {
        let (groups, singles) = plan(blobs);
        let mut merged = BatchUploadResponse::default();
        let mut answers = futures::stream::iter(
            groups
                .into_iter()
                .map(|g| async move { self.batch_upload(&g).await }),
        )
        .buffered(parallel.max(1));
        while let Some(answer) = answers.next().await {
            let answer = answer?;
            merged.stored.extend(answer.stored);
            merged.rejected.extend(answer.rejected);
        }
        let mut uploads = futures::stream::iter(
            singles
                .into_iter()
                .map(|(d, b)| async move { self.upload_blob(&d, b).await.map(|()| d) }),
        )
        .buffered(parallel.max(1));
        while let Some(d) = uploads.try_next().await? {
            merged.stored.push(d);
        }
        Ok(merged)
    }

    /// Uploads local files as blobs: small ones read and sent in batches within the limits,
    /// large ones streamed from disk, up to `parallel` requests in flight. A file whose bytes no
    /// longer match its digest (changed since it was hashed) comes back in `rejected`.
    pub async fn upload_paths(
        &self,
        files: &[(Digest, PathBuf)],
        parallel: usize,
    ) -> Result<BatchUploadResponse, ClientError> {
        let (groups, large) = plan(files);
        let mut merged = BatchUploadResponse::default();
        let mut answers = futures::stream::iter(groups.into_iter().map(|group| async move {
            // Read one group at a time, so memory stays bounded by the batch limit.
            let blobs = tokio::task::spawn_blocking(move || {
                group
                    .into_iter()
                    .map(|(d, p)| match std::fs::read(&p) {
                        Ok(data) => Ok((d, Bytes::from(data))),
                        Err(source) => Err(ClientError::Io {
                            op: "read",
                            path: p,
                            source,
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|e| ClientError::Protocol(format!("reader task failed: {e}")))??;
            self.batch_upload(&blobs).await
        }))
        .buffered(parallel.max(1));
        while let Some(answer) = answers.next().await {
            let answer = answer?;
            merged.stored.extend(answer.stored);
            merged.rejected.extend(answer.rejected);
        }
        let mut uploads = futures::stream::iter(large.into_iter().map(|(d, p)| async move {
            match self.upload_file(&d, &p).await {
                Ok(()) => Ok(Ok(d)),
                Err(ClientError::Api { code, message, .. }) if code == "digest_mismatch" => {
                    Ok(Err(RejectedBlob {
                        digest: d,
                        code,
                        error: message,
                    }))
                }
                Err(e) => Err(e),
            }
        }))
        .buffered(parallel.max(1));
        while let Some(r) = uploads.try_next().await? {
            match r {
                Ok(d) => merged.stored.push(d),
                Err(rejected) => merged.rejected.push(rejected),
            }
        }
        Ok(merged)
    }

    /// Downloads blobs into local files (created or truncated): small ones in verified
    /// batches, large ones streamed, up to `parallel` requests in flight. Fails if any blob is
    /// missing (`ClientError::Api` with status 404) or does not verify.
    pub async fn download_paths(
        &self,
        files: &[(Digest, PathBuf)],
        parallel: usize,
    ) -> Result<(), ClientError> {
        let (groups, large) = plan(files);
        let mut batches = futures::stream::iter(groups.into_iter().map(|group| async move {
            let digests: Vec<Digest> = group.iter().map(|(d, _)| *d).collect();
            let got = self.batch_download(&digests).await?;
            tokio::task::spawn_blocking(move || {
                for ((d, path), (_, data)) in group.into_iter().zip(got) {
                    let data = data.ok_or_else(|| ClientError::Api {
                        status: 404,
                        code: "not_found".into(),
                        message: format!("blob {d} not found"),
                    })?;
                    std::fs::write(&path, &data).map_err(|source| ClientError::Io {
                        op: "write",
                        path,
                        source,
                    })?;
                }
                Ok::<(), ClientError>(())
            })
            .await
            .map_err(|e| ClientError::Protocol(format!("writer task failed: {e}")))?
        }))
        .buffer_unordered(parallel.max(1));
        while batches.try_next().await?.is_some() {}
        let mut streams = futures::stream::iter(
            large
                .into_iter()
                .map(|(d, p)| async move { self.download_to_file(&d, &p).await }),
        )
        .buffer_unordered(parallel.max(1));
        while streams.try_next().await?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_respects_the_limits() {
        let small = Digest {
            hash: [1; 32],
            size: 1000,
        };
        let big = Digest {
            hash: [2; 32],
            size: limits::MAX_BATCH_BLOB + 1,
        };
        let mut items: Vec<(Digest, u32)> = (0..25_000).map(|i| (small, i)).collect();
        items.push((big, 0));
        let (groups, large) = plan(&items);
        assert_eq!(large, vec![(big, 0)]);
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 25_000);
        for g in &groups {
            assert!(g.len() <= limits::MAX_BATCH_DIGESTS);
            let bytes: u64 = g
                .iter()
                .map(|(d, _)| d.size + batch::FRAME_HEADER as u64)
                .sum();
            assert!(bytes <= limits::MAX_BATCH_BYTES);
        }
        assert_eq!(groups[0][0].1, 0, "order is kept");
    }
}
