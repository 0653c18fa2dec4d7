//! `BlobService`: the blob store and its metadata kept in step — uploads, reads, presence
//! checks, pins and single-blob eviction, with per-digest locking against races.
//!
//! Every method blocks (file and sled I/O); handlers call them inside `spawn_blocking`.
//!
//! Locking: 256 read/write stripes keyed by the digest's first byte. Writers of a blob (which
//! store the file, then record it in sled) hold the stripe's read lock; eviction of a blob
//! (which checks pins and last use, removes the sled entry, then the file) holds the write
//! lock, so a blob is never deleted between another writer's store and its record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use rmake_cas::store::write_error;
use rmake_cas::{BlobStore, CasError, Digest, ReadSeek};
use rmake_proto::BuildId;

use crate::error::StoreError;
use crate::meta::{now_ms, Meta};
use crate::pins::Pins;

const STRIPES: usize = 256;

/// A chunk of an upload body as it arrives, or why the body broke off.
pub type UploadChunk = Result<Bytes, String>;

/// The blob store, its metadata and pins, used together.
pub struct BlobService {
    store: Arc<dyn BlobStore>,
    meta: Arc<Meta>,
    pins: Arc<Pins>,
    stripes: Vec<RwLock<()>>,
    max_cache_bytes: u64,
    evictions: AtomicU64,
    evicted_bytes: AtomicU64,
    /// Held by an eviction pass, so two passes never interleave.
    pass: std::sync::Mutex<()>,
    /// Woken when a write takes the store over its cap.
    pub over_cap: tokio::sync::Notify,
}

impl std::fmt::Debug for BlobService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BlobService {{ {:?}, cap: {} }}",
            self.meta, self.max_cache_bytes
        )
    }
}

impl BlobService {
    /// Joins a store, its metadata and the pin table under a size cap.
    pub fn new(
        store: Arc<dyn BlobStore>,
        meta: Arc<Meta>,
        pins: Arc<Pins>,
        max_cache_bytes: u64,
    ) -> BlobService {
        BlobService {
            store,
            meta,
            pins,
            stripes: (0..STRIPES).map(|_| RwLock::new(())).collect(),
            max_cache_bytes,
            evictions: AtomicU64::new(0),
            evicted_bytes: AtomicU64::new(0),
            pass: std::sync::Mutex::new(()),
            over_cap: tokio::sync::Notify::new(),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// The metadata database.
    pub fn meta(&self) -> &Arc<Meta> {
        &self.meta
    }

    /// The pin table.
    pub fn pins(&self) -> &Arc<Pins> {
        &self.pins
    }

    /// The size cap in bytes.
    pub fn max_cache_bytes(&self) -> u64 {
        self.max_cache_bytes
    }

    /// (blobs evicted, bytes evicted) since start.
    pub fn eviction_counts(&self) -> (u64, u64) {
        (
            self.evictions.load(Ordering::Relaxed),
            self.evicted_bytes.load(Ordering::Relaxed),
        )
    }

    /// Serialises eviction passes: a second pass waits for the first (and then sees its
    /// flushed last-use times and freed bytes) instead of evicting by stale data.
    pub fn eviction_pass(&self) -> std::sync::MutexGuard<'_, ()> {
        self.pass.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stripe(&self, d: &Digest) -> &RwLock<()> {
        &self.stripes[usize::from(d.hash[0]) % STRIPES]
    }

    fn read_lock(&self, d: &Digest) -> Option<RwLockReadGuard<'_, ()>> {
        // A poisoned stripe only means another thread panicked while holding it; the data it
        // guards is on disk, so carrying on is safe.
        Some(self.stripe(d).read().unwrap_or_else(|p| p.into_inner()))
    }

    fn recorded(&self, d: &Digest) -> Result<(), StoreError> {
        self.meta.record_blob(d, now_ms())?;
        if self.meta.blob_bytes() > self.max_cache_bytes {
            self.over_cap.notify_one();
        }
        Ok(())
    }

    /// Stores a blob from chunks received on `rx`, verifying its digest before it becomes
    /// visible. Nothing is stored if the chunks stop with an error, overflow the size or do
    /// not hash to `digest`.
    pub fn put_chunks(
        &self,
        digest: &Digest,
        rx: &mut tokio::sync::mpsc::Receiver<UploadChunk>,
    ) -> Result<u64, StoreError> {
        let _guard = self.read_lock(digest);
        let mut w = self.store.begin_write(digest)?;
        while let Some(chunk) = rx.blocking_recv() {
            let chunk = chunk.map_err(StoreError::Interrupted)?;
            w.write_all(&chunk).map_err(|e| write_error(digest, e))?;
        }
        let n = w.written();
        w.commit()?;
        self.recorded(digest)?;
        Ok(n)
    }

    /// Stores one blob held in memory, verifying it.
    pub fn put(&self, digest: &Digest, data: &[u8]) -> Result<(), StoreError> {
        let _guard = self.read_lock(digest);
        self.store.put(digest, data)?;
        self.recorded(digest)
    }

    /// Stores many small blobs with one flush to disk; one result per blob, in order.
    pub fn put_many(&self, blobs: &[(Digest, &[u8])]) -> Vec<Result<(), StoreError>> {
        let mut idx: Vec<usize> = blobs
            .iter()
            .map(|(d, _)| usize::from(d.hash[0]) % STRIPES)
            .collect();
        idx.sort_unstable();
        idx.dedup();
        // Ascending order, so two batches can never wait on each other.
        let _guards: Vec<_> = idx
            .iter()
            .map(|&i| self.stripes[i].read().unwrap_or_else(|p| p.into_inner()))
            .collect();
        let results = self.store.put_many(blobs);
        let now = now_ms();
        let results: Vec<Result<(), StoreError>> = blobs
            .iter()
            .zip(results)
            .map(|((d, _), r)| {
                r?;
                self.meta.record_blob(d, now)?;
                Ok(())
            })
            .collect();
        if self.meta.blob_bytes() > self.max_cache_bytes {
            self.over_cap.notify_one();
        }
        results
    }

    /// For each digest, whether it is stored; present ones count as used.
    pub fn has_many(&self, digests: &[Digest]) -> Result<Vec<bool>, StoreError> {
        let present = self.store.has_many(digests)?;
        self.meta.touch(
            digests
                .iter()
                .zip(&present)
                .filter(|(_, p)| **p)
                .map(|(d, _)| *d),
        );
        Ok(present)
    }

    /// A whole (small) blob, verified by the store; counts as a use.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let data = self.store.get(digest)?;
        if data.is_some() {
            self.meta.touch([*digest]);
        }
        Ok(data)
    }

    /// A seekable reader over a blob; counts as a use.
    pub fn open_read(&self, digest: &Digest) -> Result<Option<Box<dyn ReadSeek>>, StoreError> {
        let r = self.store.open_read(digest)?;
        if r.is_some() {
            self.meta.touch([*digest]);
        }
        Ok(r)
    }

    /// Pins `digests` for `build` and returns the ones not stored. A blob reported present
    /// cannot be evicted until the lease ends.
    pub fn pin(
        &self,
        build: &BuildId,
        digests: &[Digest],
        ttl: Duration,
    ) -> Result<Vec<Digest>, StoreError> {
        self.pins
            .pin(build, digests.iter().copied(), ttl, Instant::now());
        let mut missing = Vec::new();
        for d in digests {
            // Checked under the stripe lock, after pinning: an eviction either finished before
            // (and the blob reads as missing) or will see the pin.
            let _guard = self.read_lock(d);
            if !self.store.has(d)? && !missing.contains(d) {
                missing.push(*d);
            }
        }
        self.meta.touch(digests.iter().copied());
        Ok(missing)
    }

    /// Evicts one blob if it is not pinned, unused since `seen_ms` and not being written in
    /// its stripe right now; `true` if it went.
    pub fn evict(&self, digest: &Digest, seen_ms: u64) -> Result<bool, StoreError> {
        // A busy stripe means a write of this or a neighbouring blob is in progress (a large
        // upload can take minutes): skip it rather than stall the whole pass.
        let _guard = match self.stripe(digest).try_write() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(false),
        };
        if self.pins.is_pinned(digest) || !self.meta.remove_blob_if_unused(digest, seen_ms)? {
            return Ok(false);
        }
        match self.store.delete(digest) {
            Ok(_) => {}
            Err(e) => {
                // Keep sled truthful: the file is still there.
                self.meta.record_blob(digest, seen_ms)?;
                return Err(e.into());
            }
        }
        self.evictions.fetch_add(1, Ordering::Relaxed);
        self.evicted_bytes.fetch_add(digest.size, Ordering::Relaxed);
        tracing::debug!(%digest, "evicted");
        Ok(true)
    }

    /// The first of `digests` that is not stored, if any (no use recorded).
    pub fn first_missing(&self, digests: &[Digest]) -> Result<Option<Digest>, CasError> {
        let present = self.store.has_many(digests)?;
        Ok(digests
            .iter()
            .zip(present)
            .find(|(_, p)| !p)
            .map(|(d, _)| *d))
    }
}
