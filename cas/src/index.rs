//! `Index`: the persistent local cache of path → (size, mtime, ctime, inode, device, mode,
//! digest) that lets a snapshot skip re-hashing files that did not change, like git's index.
//!
//! A file whose stamp was taken within [`RACY_WINDOW`] of its last change is recorded as
//! untrusted and re-hashed next time: a write in the same timestamp tick as the stat would
//! otherwise go unnoticed. The file format is versioned and ends in a SHA-256 of its content; an
//! index that does not check out is discarded (it is only a cache) with a warning.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::Digest;
use crate::error::{CasError, IoContext, Result};

const MAGIC: &[u8; 8] = b"RMIDX1\n\0";

/// Files changed more recently than this before being stamped are re-hashed next time.
pub const RACY_WINDOW: Duration = Duration::from_secs(1);

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Length in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status-change time, nanoseconds since the epoch (cannot be set by `touch`).
    pub ctime_ns: i64,
    /// Inode number.
    pub ino: u64,
    /// Device number.
    pub dev: u64,
    /// Mode bits (type and permissions).
    pub mode: u32,
}

impl Stamp {
    /// The stamp of `meta` (from `lstat`/`fstat`).
    pub fn of(meta: &Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
            mode: meta.mode(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    stamp: Stamp,
    digest: Digest,
    trusted: bool,
    /// The pass (see [`Index::begin_pass`]) that last looked this path up.
    pass: u64,
}

/// The index for one tree. Load it, pass it to `snapshot`, save it.
#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<String, IndexEntry>,
    path: Option<PathBuf>,
    hashed: u64,
    dirty: bool,
    pass: u64,
}

impl Index {
    /// An empty index that is not saved anywhere.
    pub fn in_memory() -> Index {
        Index::default()
    }

    /// Loads the index saved at `path`; an absent or damaged file gives an empty index (which
    /// [`Index::save`] will write there).
    pub fn load(path: impl Into<PathBuf>) -> Result<Index> {
        let path = path.into();
        let mut index = Index {
            path: Some(path.clone()),
            ..Index::default()
        };
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(index),
            Err(e) => return Err(CasError::io("read", path, e)),
        };
        match decode(&data) {
            Some(entries) => index.entries = entries,
            None => {
                tracing::warn!(path = %path.display(), "local index is damaged or from another version; rebuilding it");
                index.dirty = true;
            }
        }
        Ok(index)
    }

    /// Number of files this index has hashed since it was created or loaded. Tests and
    /// benchmarks use it to see that unchanged files are not re-read.
    pub fn hashes(&self) -> u64 {
        self.hashed
    }

    /// Number of paths recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no path is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The digest of the file `rel` (at `abs`, with `meta` from `lstat`): from the index when the
    /// stamp is unchanged and trusted, otherwise by reading and hashing the file.
    pub fn digest_file(&mut self, rel: &str, abs: &Path, meta: &Metadata) -> Result<Digest> {
        if let Some(d) = self.lookup(rel, meta) {
            return Ok(d);
        }
        let (digest, trusted) = hash_file(abs, meta)?;
        self.record(rel, meta, digest, trusted);
        Ok(digest)
    }

    /// The recorded digest of `rel` if its stamp is unchanged and trusted. Marks `rel` as seen
    /// in the current pass either way.
    pub fn lookup(&mut self, rel: &str, meta: &Metadata) -> Option<Digest> {
        let pass = self.pass;
        let e = self.entries.get_mut(rel)?;
        e.pass = pass;
        (e.trusted && e.stamp == Stamp::of(meta)).then_some(e.digest)
    }

    /// Records a digest computed by [`hash_file`] (and counts it in [`Index::hashes`]).
    pub fn record(&mut self, rel: &str, meta: &Metadata, digest: Digest, trusted: bool) {
        let stamp = Stamp::of(meta);
        self.hashed += 1;
        self.entries.insert(
            rel.to_string(),
            IndexEntry {
                stamp,
                digest,
                trusted,
                pass: self.pass,
            },
        );
        self.dirty = true;
    }

    /// Starts a pass over the tree: [`Index::end_pass`] then forgets every path that
    /// [`Index::digest_file`] was not asked about in between (deleted or now-ignored files).
    pub fn begin_pass(&mut self) {
        self.pass += 1;
    }

    /// Ends a pass started by [`Index::begin_pass`]; see there.
    pub fn end_pass(&mut self) {
        let before = self.entries.len();
        let pass = self.pass;
        self.entries.retain(|_, e| e.pass == pass);
        if self.entries.len() != before {
            self.dirty = true;
        }
    }

    /// Writes the index back to the file it was loaded from, atomically, if it changed.
    pub fn save(&mut self) -> Result<()> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        self.save_to(&path)?;
        self.dirty = false;
        Ok(())
    }

    /// Writes the index to `path` atomically (temp file, fsync, rename).
    pub fn save_to(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).ctx("create directory", parent)?;
        }
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let data = encode(&self.entries);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(CasError::io("write", tmp, e));
        }
        fs::rename(&tmp, path).ctx("rename into place", path)
    }
}

/// Reads and hashes the file at `abs`, whose `lstat` gave `meta`. Also says whether the result
/// may be trusted next time: not if the file changed while it was read (what was hashed may be
/// torn) or so recently that a later change could keep the same timestamps.
pub fn hash_file(abs: &Path, meta: &Metadata) -> Result<(Digest, bool)> {
    let stamp = Stamp::of(meta);
    let mut f = File::open(abs).ctx("open", abs)?;
    let digest = Digest::of_reader(&mut f).ctx("read", abs)?;
    let after = f.metadata().map(|m| Stamp::of(&m)).ok();
    let trusted = after == Some(stamp) && digest.size == stamp.size && !is_racy(&stamp);
    Ok((digest, trusted))
}

/// Whether a file changed so recently that a later change could keep the same timestamps.
fn is_racy(stamp: &Stamp) -> bool {
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(i64::MAX);
    let last_change = stamp.mtime_ns.max(stamp.ctime_ns);
    last_change > now_ns.saturating_sub(RACY_WINDOW.as_nanos() as i64)
}

fn encode(entries: &HashMap<String, IndexEntry>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entries.len() * 120);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for (path, e) in entries {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        let s = &e.stamp;
        out.extend_from_slice(&s.size.to_le_bytes());
        out.extend_from_slice(&s.mtime_ns.to_le_bytes());
        out.extend_from_slice(&s.ctime_ns.to_le_bytes());
        out.extend_from_slice(&s.ino.to_le_bytes());
        out.extend_from_slice(&s.dev.to_le_bytes());
        out.extend_from_slice(&s.mode.to_le_bytes());
        out.push(u8::from(e.trusted));
        out.extend_from_slice(&e.digest.hash);
        out.extend_from_slice(&e.digest.size.to_le_bytes());
    }
    let sum = Digest::of(&out);
    out.extend_from_slice(&sum.hash);
    out
}

fn decode(data: &[u8]) -> Option<HashMap<String, IndexEntry>> {
    let body_len = data.len().checked_sub(32)?;
    let (body, sum) = data.split_at(body_len);
    if Digest::of(body).hash != sum || body.get(..8)? != MAGIC {
        return None;
    }
    let mut pos = 8usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = body.get(pos..pos.checked_add(n)?)?;
        pos += n;
        Some(s)
    };
    let count = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let mut entries = HashMap::with_capacity(count.min(1 << 20) as usize);
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let path = std::str::from_utf8(take(len)?).ok()?.to_string();
        let u64_ = |b: &[u8]| b.try_into().ok().map(u64::from_le_bytes);
        let i64_ = |b: &[u8]| b.try_into().ok().map(i64::from_le_bytes);
        let stamp = Stamp {
            size: u64_(take(8)?)?,
            mtime_ns: i64_(take(8)?)?,
            ctime_ns: i64_(take(8)?)?,
            ino: u64_(take(8)?)?,
            dev: u64_(take(8)?)?,
            mode: u32::from_le_bytes(take(4)?.try_into().ok()?),
        };
        let trusted = take(1)?[0] == 1;
        let hash: [u8; 32] = take(32)?.try_into().ok()?;
        let size = u64_(take(8)?)?;
        entries.insert(
            path,
            IndexEntry {
                stamp,
                digest: Digest { hash, size },
                trusted,
                pass: 0,
            },
        );
    }
    (pos == body.len()).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backdate(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    #[test]
    fn unchanged_files_are_not_rehashed_and_changes_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"one").unwrap();
        backdate(&f);
        let mut idx = Index::in_memory();
        let meta = fs::symlink_metadata(&f).unwrap();
        // ctime is "now", so the first stamp is racy and the file is hashed twice at most.
        let d1 = idx.digest_file("f", &f, &meta).unwrap();
        assert_eq!(d1, Digest::of(b"one"));
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(50));
        idx.digest_file("f", &f, &meta).unwrap();
        let n = idx.hashes();
        for _ in 0..3 {
            assert_eq!(idx.digest_file("f", &f, &meta).unwrap(), d1);
        }
        assert_eq!(idx.hashes(), n, "trusted entry reused");
        fs::write(&f, b"two").unwrap();
        let meta = fs::symlink_metadata(&f).unwrap();
        assert_eq!(idx.digest_file("f", &f, &meta).unwrap(), Digest::of(b"two"));
        assert_eq!(idx.hashes(), n + 1);
    }

    #[test]
    fn save_load_round_trip_and_damage_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"data").unwrap();
        let ipath = dir.path().join("sub/index");
        let mut idx = Index::load(&ipath).unwrap();
        assert!(idx.is_empty());
        idx.digest_file("f", &f, &fs::symlink_metadata(&f).unwrap())
            .unwrap();
        idx.save().unwrap();
        let loaded = Index::load(&ipath).unwrap();
        assert_eq!(loaded.len(), 1);
        let mut bytes = fs::read(&ipath).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        fs::write(&ipath, &bytes).unwrap();
        assert!(Index::load(&ipath).unwrap().is_empty());
        fs::write(&ipath, b"").unwrap();
        assert!(Index::load(&ipath).unwrap().is_empty());
    }
}
