//! The worker's local blob cache: a `DiskStore` under `work_dir/cache` with a size cap kept by
//! least-recently-used eviction, run after each action. Blobs an action in flight needs are
//! pinned and never evicted under it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;

use rmake_cas::{BlobStore, Digest, DiskStore};

/// The local cache of blobs (file contents and directory nodes).
pub struct BlobCache {
    store: DiskStore,
    max_bytes: u64,
    state: Mutex<LruState>,
    /// Eviction passes that removed something: a tree found complete in the cache stays
    /// complete while this does not change.
    epoch: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for BlobCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobCache")
            .field("root", &self.store.root())
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct LruState {
    /// Blob → (last use tick, size).
    entries: HashMap<Digest, (u64, u64)>,
    total: u64,
    tick: u64,
    /// Blobs in use by running actions, with how many use each.
    pins: HashMap<Digest, u32>,
}

impl BlobCache {
    /// Opens (or creates) the cache at `dir`; blobs already there count in the order they were
    /// written. Blobs are not fsynced: the cache is only a copy of the coordinator's store.
    pub fn open(dir: &Path, max_bytes: u64) -> anyhow::Result<BlobCache> {
        let store = DiskStore::open(dir)
            .with_context(|| format!("opening the blob cache {}", dir.display()))?
            .with_fsync(false);
        let mut listed = store
            .list()
            .with_context(|| format!("listing the blob cache {}", dir.display()))?;
        listed.sort_by_key(|b| b.written_at);
        let mut state = LruState::default();
        for b in listed {
            state.tick += 1;
            state.total += b.digest.size;
            state.entries.insert(b.digest, (state.tick, b.digest.size));
        }
        Ok(BlobCache {
            store,
            max_bytes,
            state: Mutex::new(state),
            epoch: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Changes whenever eviction removes blobs.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The store itself (for materializing and reading).
    pub fn store(&self) -> &DiskStore {
        &self.store
    }

    /// Bytes of blobs held, as counted by the cache.
    pub fn total_bytes(&self) -> u64 {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruState> {
        // A panic while holding the lock leaves consistent-enough bookkeeping: go on with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The digests among `digests` the cache lacks (duplicates kept once).
    pub fn missing(&self, digests: &[Digest]) -> anyhow::Result<Vec<Digest>> {
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<Digest> = digests
            .iter()
            .copied()
            .filter(|d| seen.insert(*d))
            .collect();
        self.store
            .find_missing(&unique)
            .context("looking up the blob cache")
    }

    /// Records that `digest` (just stored) is in the cache.
    pub fn note_stored(&self, digest: &Digest) {
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        if st.entries.insert(*digest, (tick, digest.size)).is_none() {
            st.total += digest.size;
        }
    }

    /// Pins `digests` for an action and marks them used now; [`BlobCache::unpin`] releases.
    pub fn pin(&self, digests: &[Digest]) {
        let mut st = self.lock();
        for d in digests {
            st.tick += 1;
            let tick = st.tick;
            if let Some(e) = st.entries.get_mut(d) {
                e.0 = tick;
            }
            *st.pins.entry(*d).or_insert(0) += 1;
        }
    }

    /// Releases pins taken by [`BlobCache::pin`].
    pub fn unpin(&self, digests: &[Digest]) {
        let mut st = self.lock();
        for d in digests {
            if let Some(n) = st.pins.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    st.pins.remove(d);
                }
            }
        }
    }

    /// Evicts least recently used, unpinned blobs until the cache is within its cap; returns
    /// how many bytes went.
    pub fn evict(&self) -> u64 {
        let victims: Vec<Digest> = {
            let st = self.lock();
            if st.total <= self.max_bytes {
                return 0;
            }
            let mut by_age: Vec<(u64, Digest, u64)> = st
                .entries
                .iter()
                .filter(|(d, _)| !st.pins.contains_key(d))
                .map(|(d, (tick, size))| (*tick, *d, *size))
                .collect();
            by_age.sort_unstable_by_key(|(tick, _, _)| *tick);
            let mut over = st.total - self.max_bytes;
            let mut out = Vec::new();
            for (_, d, size) in by_age {
                if over == 0 {
                    break;
                }
                out.push(d);
                over = over.saturating_sub(size.max(1));
            }
            out
        };
        let mut freed = 0;
        if !victims.is_empty() {
            self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        for d in victims {
            match self.store.delete(&d) {
                Ok(_) => {
                    let mut st = self.lock();
                    if st.pins.contains_key(&d) {
                        // Pinned meanwhile: it will be fetched again if it is needed.
                        tracing::debug!(blob = %d, "evicted a blob pinned meanwhile");
                    }
                    if let Some((_, size)) = st.entries.remove(&d) {
                        st.total = st.total.saturating_sub(size);
                        freed += size;
                    }
                }
                Err(e) => tracing::warn!(blob = %d, error = %e, "could not evict a cached blob"),
            }
        }
        if freed > 0 {
            tracing::debug!(freed, "blob cache eviction");
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_and_never_pinned() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cache = BlobCache::open(dir.path(), 250).unwrap_or_else(|e| panic!("{e}"));
        let blobs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 100]).collect();
        let digests: Vec<Digest> = blobs.iter().map(|b| Digest::of(b)).collect();
        for (d, b) in digests.iter().zip(&blobs) {
            cache.store().put(d, b).unwrap_or_else(|e| panic!("{e}"));
            cache.note_stored(d);
        }
        assert_eq!(cache.total_bytes(), 400);
        // Blob 0 used again, blob 1 pinned: 2 and 3 are the oldest unpinned.
        cache.pin(&digests[0..1]);
        cache.unpin(&digests[0..1]);
        cache.pin(&digests[1..2]);
        assert_eq!(cache.evict(), 200);
        let missing = cache.missing(&digests).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(missing, vec![digests[2], digests[3]]);
        cache.unpin(&digests[1..2]);
        // Reopening counts what is on disk.
        drop(cache);
        let cache = BlobCache::open(dir.path(), 250).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache.total_bytes(), 200);
    }
}
