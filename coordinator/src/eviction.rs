//! Size-cap enforcement: least-recently-used eviction, run in the background.
//!
//! A pass flushes buffered last-use times, drops expired pin leases, and, while the store is
//! over its cap, evicts the oldest unpinned blobs. Passes run every `eviction_interval` and
//! as soon as a write takes the store over the cap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::blobs::BlobService;
use crate::error::StoreError;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvictionReport {
    /// Blobs evicted.
    pub evicted: u64,
    /// Bytes evicted.
    pub evicted_bytes: u64,
    /// Over-cap candidates kept because a build pins them.
    pub kept_pinned: u64,
    /// Bytes stored after the pass.
    pub bytes_after: u64,
}

/// Runs one eviction pass (blocking).
pub fn evict_once(blobs: &BlobService) -> Result<EvictionReport, StoreError> {
    let _pass = blobs.eviction_pass();
    let meta = blobs.meta();
    meta.flush_touches()?;
    blobs.pins().expire(Instant::now());
    let cap = blobs.max_cache_bytes();
    let mut report = EvictionReport::default();
    if meta.blob_bytes() > cap {
        for (digest, seen) in meta.blobs_by_age()? {
            if meta.blob_bytes() <= cap {
                break;
            }
            if blobs.pins().is_pinned(&digest) {
                report.kept_pinned += 1;
                continue;
            }
            if blobs.evict(&digest, seen)? {
                report.evicted += 1;
                report.evicted_bytes += digest.size;
            }
        }
    }
    report.bytes_after = meta.blob_bytes();
    if report.evicted > 0 || report.kept_pinned > 0 {
        tracing::info!(
            evicted = report.evicted,
            evicted_bytes = report.evicted_bytes,
            kept_pinned = report.kept_pinned,
            bytes_after = report.bytes_after,
            cap,
            "eviction pass"
        );
    }
    Ok(report)
}

/// Starts the background eviction task on the current tokio runtime.
pub fn spawn_evictor(blobs: Arc<BlobService>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = blobs.over_cap.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
            let b = blobs.clone();
            match tokio::task::spawn_blocking(move || evict_once(&b)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "eviction pass failed"),
                Err(e) => tracing::error!(error = %e, "eviction pass panicked"),
            }
        }
    })
}
