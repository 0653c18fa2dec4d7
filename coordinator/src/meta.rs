//! `Meta`: the coordinator's metadata in sled — blob sizes and last use, and action-cache entries.
//!
//! Trees:
//! - `blobs`: key `hash[32] ++ size u64 BE` → value last use (unix ms, u64 BE);
//! - `actions`: key action key `[32]` → value the `ActionResult` as JSON;
//! - `read_sets`: key an action's `pre_key` `[32]` → the read sets seen under it (JSON, see
//!   `crate::readsets::lists`);
//! - `targets`: key a first output path → the last stored actions that made it (JSON).
//!
//! Last-use updates on reads are buffered in memory and written in one batch by
//! [`Meta::flush_touches`] (the eviction task calls it), so a read costs no sled write.
//! All methods block: async callers use `spawn_blocking`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rmake_cas::Digest;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The sled key of a blob.
pub fn blob_key(d: &Digest) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&d.hash);
    k[32..].copy_from_slice(&d.size.to_be_bytes());
    k
}

fn digest_of_key(k: &[u8]) -> Option<Digest> {
    if k.len() != 40 {
        return None;
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&k[..32]);
    let mut size = [0u8; 8];
    size.copy_from_slice(&k[32..]);
    Some(Digest {
        hash,
        size: u64::from_be_bytes(size),
    })
}

fn u64_of(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if v.len() == 8 {
        b.copy_from_slice(v);
    }
    u64::from_be_bytes(b)
}

/// The metadata database.
pub struct Meta {
    db: sled::Db,
    blobs: sled::Tree,
    actions: sled::Tree,
    read_sets: sled::Tree,
    targets: sled::Tree,
    touches: Mutex<HashMap<Digest, u64>>,
    count: AtomicU64,
    bytes: AtomicU64,
    actions_count: AtomicU64,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Meta {{ blobs: {}, bytes: {} }}",
            self.blob_count(),
            self.blob_bytes()
        )
    }
}

impl Meta {
    /// Opens (or creates) the database in `dir` and counts the blobs it knows.
    pub fn open(dir: &Path) -> sled::Result<Meta> {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(200))
            .open()?;
        let blobs = db.open_tree("blobs")?;
        let actions = db.open_tree("actions")?;
        let read_sets = db.open_tree("read_sets")?;
        let targets = db.open_tree("targets")?;
        let meta = Meta {
            db,
            blobs,
            actions,
            read_sets,
            targets,
            touches: Mutex::new(HashMap::new()),
            count: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            actions_count: AtomicU64::new(0),
        };
        // `Tree::len` walks the tree: count once here, then keep the number up to date.
        meta.actions_count
            .store(meta.actions.len() as u64, Ordering::Relaxed);
        let (mut count, mut bytes) = (0u64, 0u64);
        for item in meta.blobs.iter().keys() {
            if let Some(d) = digest_of_key(&item?) {
                count += 1;
                bytes = bytes.saturating_add(d.size);
            }
        }
        meta.count.store(count, Ordering::Relaxed);
        meta.bytes.store(bytes, Ordering::Relaxed);
        Ok(meta)
    }

    /// Blobs known.
    pub fn blob_count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Bytes of blobs known.
    pub fn blob_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Records a stored blob used at `at_ms`; `true` if it was not known before.
    pub fn record_blob(&self, d: &Digest, at_ms: u64) -> sled::Result<bool> {
        let prev = self.blobs.insert(blob_key(d), &at_ms.to_be_bytes())?;
        if prev.is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(d.size, Ordering::Relaxed);
        }
        Ok(prev.is_none())
    }

    /// Whether the blob is known.
    pub fn has_blob(&self, d: &Digest) -> sled::Result<bool> {
        self.blobs.contains_key(blob_key(d))
    }

    /// Last use of a known blob (unix ms).
    pub fn last_use(&self, d: &Digest) -> sled::Result<Option<u64>> {
        Ok(self.blobs.get(blob_key(d))?.map(|v| u64_of(&v)))
    }

    /// Notes that blobs were used now; written to sled by the next [`Meta::flush_touches`].
    pub fn touch(&self, ds: impl IntoIterator<Item = Digest>) {
        let now = now_ms();
        if let Ok(mut t) = self.touches.lock() {
            for d in ds {
                t.insert(d, now);
            }
        }
    }

    /// Writes buffered last-use times of blobs that are still known (never re-adds a removed one).
    pub fn flush_touches(&self) -> sled::Result<usize> {
        let pending = match self.touches.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => return Ok(0),
        };
        for (d, at) in &pending {
            let at = *at;
            self.blobs.update_and_fetch(blob_key(d), |old| {
                old.map(|v| {
                    if u64_of(v) < at {
                        at.to_be_bytes().to_vec()
                    } else {
                        v.to_vec()
                    }
                })
            })?;
        }
        Ok(pending.len())
    }

    /// Removes a blob's entry only if its last use is still `seen_ms` (nobody used it since the
    /// eviction pass looked). `true` if removed.
    pub fn remove_blob_if_unused(&self, d: &Digest, seen_ms: u64) -> sled::Result<bool> {
        let res = self.blobs.compare_and_swap(
            blob_key(d),
            Some(&seen_ms.to_be_bytes()[..]),
            None::<&[u8]>,
        )?;
        let removed = res.is_ok();
        if removed {
            self.count.fetch_sub(1, Ordering::Relaxed);
            self.bytes.fetch_sub(d.size, Ordering::Relaxed);
        }
        Ok(removed)
    }

    /// Removes a blob's entry; `true` if it was there.
    pub fn remove_blob(&self, d: &Digest) -> sled::Result<bool> {
        let removed = self.blobs.remove(blob_key(d))?.is_some();
        if removed {
            self.count.fetch_sub(1, Ordering::Relaxed);
            self.bytes.fetch_sub(d.size, Ordering::Relaxed);
        }
        Ok(removed)
    }

    /// Every known blob with its last use, oldest first.
    pub fn blobs_by_age(&self) -> sled::Result<Vec<(Digest, u64)>> {
        let mut out = Vec::with_capacity(self.blob_count() as usize);
        for item in self.blobs.iter() {
            let (k, v) = item?;
            if let Some(d) = digest_of_key(&k) {
                out.push((d, u64_of(&v)));
            }
        }
        out.sort_by_key(|(d, at)| (*at, *d));
        Ok(out)
    }

    /// The stored JSON of an action-cache entry.
    pub fn action(&self, key: &[u8; 32]) -> sled::Result<Option<sled::IVec>> {
        self.actions.get(key)
    }

    /// Stores an action-cache entry.
    pub fn put_action(&self, key: &[u8; 32], json: &[u8]) -> sled::Result<()> {
        if self.actions.insert(key, json)?.is_none() {
            self.actions_count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Removes an action-cache entry.
    pub fn remove_action(&self, key: &[u8; 32]) -> sled::Result<bool> {
        let removed = self.actions.remove(key)?.is_some();
        if removed {
            self.actions_count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(removed)
    }

    /// Every action-cache entry (for reconciliation).
    pub fn actions(&self) -> impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> {
        self.actions.iter()
    }

    /// Entries in the action cache (kept in memory; no I/O).
    pub fn action_count(&self) -> u64 {
        self.actions_count.load(Ordering::Relaxed)
    }

    /// The read sets seen under each `pre_key`.
    pub fn read_sets(&self) -> &sled::Tree {
        &self.read_sets
    }

    /// The last stored actions of each target (by first output path), for explanations.
    pub fn targets(&self) -> &sled::Tree {
        &self.targets
    }

    /// Forces everything written so far to disk.
    pub fn flush(&self) -> sled::Result<()> {
        self.db.flush().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_touches_and_conditional_removal() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = Digest::of(b"aaaa");
        let b = Digest::of(b"bb");
        {
            let m = Meta::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.record_blob(&a, 10).ok(), Some(true));
            assert_eq!(m.record_blob(&a, 11).ok(), Some(false));
            assert_eq!(m.record_blob(&b, 5).ok(), Some(true));
            assert_eq!((m.blob_count(), m.blob_bytes()), (2, 6));
            let by_age = m.blobs_by_age().unwrap_or_default();
            assert_eq!(by_age, vec![(b, 5), (a, 11)]);
            m.touch([b]);
            assert!(m.flush_touches().is_ok());
            let seen_b = m.last_use(&b).ok().flatten().unwrap_or(0);
            assert!(seen_b > 11);
            assert_eq!(
                m.remove_blob_if_unused(&b, 5).ok(),
                Some(false),
                "used since"
            );
            assert_eq!(m.remove_blob_if_unused(&b, seen_b).ok(), Some(true));
            m.touch([b]);
            assert!(m.flush_touches().is_ok());
            assert_eq!(
                m.has_blob(&b).ok(),
                Some(false),
                "a touch never resurrects a removed blob"
            );
            assert!(m.flush().is_ok());
        }
        let m = Meta::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (m.blob_count(), m.blob_bytes()),
            (1, 4),
            "counts rebuilt on reopen"
        );
    }
}
