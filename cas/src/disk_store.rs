//! `DiskStore`: blobs as read-only files under `<root>/blobs/ab/<hex>`, written crash-safely.
//!
//! A write goes to a fresh file in `<root>/tmp/` (same filesystem), is hashed as it is written,
//! checked against its digest, fsynced, and then renamed into its final name, after which the
//! shard directory is fsynced. Only verified bytes are ever renamed in, so a stored blob is never
//! replaced by different bytes. A reader
//! therefore only ever sees complete, verified blobs; a crash leaves at most a temp file, which
//! lives outside `blobs/`, is never read, and is removed by the next `open`.
//!
//! One level of 256 shard directories keeps directories small enough (a million blobs is ~4,000
//! per directory, which ext4's hashed directories handle well) while a batch of small blobs does
//! not pay for creating a directory per blob, as a second level of 65,536 would.
//!
//! Not here: metadata such as last use, pins or size caps (the coordinator keeps those).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::digest::Digest;
use crate::disk_writer::DiskWriter;
use crate::error::{CasError, IoContext, Result};
use crate::par::par_map;
use crate::store::{BlobInfo, BlobStore, BlobWriter, ReadSeek};

/// Temp files older than this are removed at open even if their writer's pid looks alive
/// (the pid may have been reused).
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);

/// Sequence number that makes temp names unique within this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A blob store on the local filesystem. Cheap to clone; clones share the same directory.
#[derive(Debug, Clone)]
pub struct DiskStore {
    root: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
    pub(crate) fsync: bool,
}

impl DiskStore {
    /// Opens (creating if needed) a store rooted at `root`, and removes temp files left by
    /// writers that are gone (a crash, a kill).
    pub fn open(root: impl Into<PathBuf>) -> Result<DiskStore> {
        let root = root.into();
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        fs::create_dir_all(&blobs).ctx("create directory", &blobs)?;
        fs::create_dir_all(&tmp).ctx("create directory", &tmp)?;
        let store = DiskStore {
            root,
            blobs,
            tmp,
            fsync: true,
        };
        store.clean_temp_files()?;
        Ok(store)
    }

    /// Turns fsync off (or back on). Without it a power loss may lose recent blobs, though a
    /// process crash still cannot expose a partial one. Meant for caches that can be rebuilt.
    pub fn with_fsync(mut self, fsync: bool) -> DiskStore {
        self.fsync = fsync;
        self
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs.join(&hex[0..2]).join(hex)
    }

    /// Re-reads a stored blob and checks its hash. `Ok(false)` if it is absent or corrupt.
    pub fn verify(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(CasError::io("open", path, e)),
        };
        Ok(Digest::of_reader(&mut f).ctx("read", &path)? == *digest)
    }

    /// Removes temp files whose writer is no longer running, and any older than a day.
    fn clean_temp_files(&self) -> Result<()> {
        let me = std::process::id();
        let can_check_pids = Path::new("/proc/self").exists();
        let entries = fs::read_dir(&self.tmp).ctx("list", &self.tmp)?;
        let mut removed = 0usize;
        for entry in entries {
            let entry = entry.ctx("list", &self.tmp)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let pid = temp_owner(&name);
            let old = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
            let owner_gone = match pid {
                None => true,
                Some(pid) if pid == me => false,
                Some(pid) => can_check_pids && !Path::new(&format!("/proc/{pid}")).exists(),
            };
            if owner_gone || old {
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    // Never read as a blob either way; not worth refusing to open the store.
                    Err(e) => {
                        tracing::warn!(?e, path = %path.display(), "could not remove a stale temp file")
                    }
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %self.tmp.display(), "removed temp files left by interrupted writes");
        }
        Ok(())
    }

    /// Creates a new, uniquely named, read-only temp file for `digest`.
    fn create_temp(&self, digest: &Digest) -> Result<(PathBuf, File)> {
        loop {
            let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
            let path = self
                .tmp
                .join(format!("{}.{}.{seq}.tmp", digest.hex(), std::process::id()));
            // Mode 0444: the blob is read-only from birth (the open fd may still write it).
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&path)
            {
                Ok(f) => return Ok((path, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(CasError::io("create temp file", path, e)),
            }
        }
    }

    /// The stored file for `digest` if it exists and has the right length.
    fn present(&self, digest: &Digest) -> Result<Option<PathBuf>> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() && m.len() == digest.size => Ok(Some(path)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CasError::io("stat", path, e)),
        }
    }

    /// Moves a stored file that failed verification out of `blobs/` so it can be re-uploaded.
    fn quarantine(&self, digest: &Digest, path: &Path) {
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let dest = self.tmp.join(format!("{}.corrupt.{seq}", digest.hex()));
        tracing::error!(%digest, path = %path.display(), "stored blob does not match its digest; removing it");
        if let Err(e) = fs::rename(path, &dest) {
            tracing::warn!(?e, path = %path.display(), "could not move corrupt blob aside");
        }
    }

    /// Publishes a verified temp file as `digest` by renaming it into place, then (with `sync`)
    /// fsyncs the shard directory; a batch passes `false` and syncs once at the end.
    ///
    /// The rename may replace a copy that a concurrent writer published meanwhile: both hold
    /// the same verified bytes, so readers see no difference (a reader holding the old file
    /// keeps reading it).
    pub(crate) fn publish(&self, digest: &Digest, tmp_path: &Path, sync: bool) -> Result<()> {
        let final_path = self.blob_path(digest);
        let shard = final_path.parent().unwrap_or(&self.blobs).to_path_buf();
        let mut renamed = fs::rename(tmp_path, &final_path);
        if matches!(&renamed, Err(e) if e.kind() == io::ErrorKind::NotFound) {
            self.ensure_shard(&shard, sync)?;
            renamed = fs::rename(tmp_path, &final_path);
        }
        if let Err(e) = renamed {
            remove_quietly(tmp_path);
            return Err(CasError::io("rename into place", &final_path, e));
        }
        if sync && self.fsync {
            sync_dir(&shard)?;
        }
        Ok(())
    }

    /// Creates the shard directory `blobs/ab` if missing, fsyncing `blobs/` after.
    fn ensure_shard(&self, shard: &Path, sync: bool) -> Result<()> {
        match fs::create_dir(shard) {
            Ok(()) => {
                if sync && self.fsync {
                    sync_dir(&self.blobs)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(CasError::io("create directory", shard, e)),
        }
    }

    /// Flushes every pending write of the filesystem holding the store (one call for a batch).
    fn sync_filesystem(&self) -> Result<()> {
        let dir = File::open(&self.tmp).ctx("open", &self.tmp)?;
        syncfs(&dir).ctx("sync filesystem of", &self.tmp)
    }
}

/// The pid encoded in a temp file name `<hex>.<pid>.<seq>.tmp`.
fn temp_owner(name: &str) -> Option<u32> {
    let mut parts = name.split('.');
    let _hex = parts.next()?;
    parts.next()?.parse().ok()
}

pub(crate) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(?e, path = %path.display(), "could not remove temp file");
        }
    }
}

/// fsyncs a directory so that entries created in it survive a power loss.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

#[allow(unsafe_code)]
fn syncfs(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `syncfs` only reads the descriptor number; `file` owns that descriptor and keeps
    // it open for the whole call.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl BlobStore for DiskStore {
    fn has_many(&self, digests: &[Digest]) -> Result<Vec<bool>> {
        // One stat per digest: a long list is spread over the cores.
        par_map(digests.len(), |i| Ok(self.present(&digests[i])?.is_some()))
            .into_iter()
            .collect()
    }

    fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let Some(path) = self.present(digest)? else {
            return Ok(None);
        };
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CasError::io("open", path, e)),
        };
        let mut data = Vec::with_capacity(digest.size.min(64 << 20) as usize);
        f.read_to_end(&mut data).ctx("read", &path)?;
        // Whole-blob reads are for small blobs, so checking them is cheap insurance against
        // on-disk damage; streaming reads rely on the size check alone.
        if Digest::of(&data) != *digest {
            self.quarantine(digest, &path);
            return Ok(None);
        }
        Ok(Some(data))
    }

    fn open_read(&self, digest: &Digest) -> Result<Option<Box<dyn ReadSeek>>> {
        let path = self.blob_path(digest);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CasError::io("open", path, e)),
        };
        let meta = f.metadata().ctx("stat", &path)?;
        if !meta.is_file() || meta.len() != digest.size {
            return Ok(None);
        }
        Ok(Some(Box::new(f)))
    }

    fn begin_write(&self, digest: &Digest) -> Result<Box<dyn BlobWriter>> {
        let (tmp_path, file) = self.create_temp(digest)?;
        Ok(Box::new(DiskWriter::new(
            self.clone(),
            *digest,
            file,
            tmp_path,
        )))
    }

    fn put(&self, digest: &Digest, data: &[u8]) -> Result<()> {
        match self.put_many(&[(*digest, data)]).pop() {
            Some(r) => r,
            None => Ok(()),
        }
    }

    fn put_many(&self, blobs: &[(Digest, &[u8])]) -> Vec<Result<()>> {
        // Stage 1 (parallel): verify, skip present blobs, write temp files. Stage 2: one flush
        // to disk. Stage 3 (parallel): rename into place. Stage 4: one flush for the names.
        enum Staged {
            Done(Result<()>),
            Pending(PathBuf),
            SameAs(usize),
        }
        let t0 = std::time::Instant::now();
        let verified: Vec<Option<CasError>> = par_map(blobs.len(), |i| {
            let (digest, data) = blobs[i];
            let actual = Digest::of(data);
            (actual != digest).then_some(CasError::DigestMismatch {
                expected: digest,
                actual,
            })
        });
        // The first valid copy of each digest is written; later copies share its outcome.
        let mut first: HashMap<Digest, usize> = HashMap::new();
        let writer_of: Vec<Option<usize>> = (0..blobs.len())
            .map(|i| {
                if verified[i].is_some() {
                    None
                } else {
                    Some(*first.entry(blobs[i].0).or_insert(i))
                }
            })
            .collect();
        let mut verified = verified;
        let mut staged: Vec<Staged> = par_map(blobs.len(), |i| match writer_of[i] {
            None => Staged::Done(Ok(())), // replaced by the mismatch error below
            Some(w) if w != i => Staged::SameAs(w),
            Some(_) => {
                let (digest, data) = blobs[i];
                match self.present(&digest) {
                    Ok(Some(_)) => Staged::Done(Ok(())),
                    Ok(None) => match self.write_temp(&digest, data) {
                        Ok(path) => Staged::Pending(path),
                        Err(e) => Staged::Done(Err(e)),
                    },
                    Err(e) => Staged::Done(Err(e)),
                }
            }
        });
        for (i, err) in verified.iter_mut().enumerate() {
            if let Some(e) = err.take() {
                staged[i] = Staged::Done(Err(e));
            }
        }
        let pending: Vec<(usize, PathBuf)> = staged
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Staged::Pending(p) => Some((i, p.clone())),
                _ => None,
            })
            .collect();
        let t_written = t0.elapsed();
        // A lone blob is cheaper to make durable with its own fsyncs than with a filesystem sync.
        let single = pending.len() == 1;
        if self.fsync && !pending.is_empty() {
            // Measured on ext4 (2026-11-22, bench/cas-results.md): one `syncfs` per stage beats
            // fdatasync of each file from 8 threads plus one fsync per touched shard directory.
            let synced = if single {
                File::open(&pending[0].1)
                    .and_then(|f| f.sync_all())
                    .ctx("fsync", &pending[0].1)
            } else {
                self.sync_filesystem()
            };
            if let Err(e) = synced {
                let no_space = e.is_no_space();
                let msg = e.to_string();
                for (i, path) in &pending {
                    remove_quietly(path);
                    staged[*i] = Staged::Done(Err(if no_space {
                        CasError::NoSpace { path: path.clone() }
                    } else {
                        CasError::io("sync", path, io::Error::other(msg.clone()))
                    }));
                }
            }
        }
        let t_synced = t0.elapsed();
        let pending: Vec<(usize, PathBuf)> = pending
            .into_iter()
            .filter(|(i, _)| matches!(staged[*i], Staged::Pending(_)))
            .collect();
        let published = par_map(pending.len(), |k| {
            let (i, path) = &pending[k];
            self.publish(&blobs[*i].0, path, single)
        });
        let any_published = published.iter().any(|r| r.is_ok());
        for ((i, _), r) in pending.iter().zip(published) {
            staged[*i] = Staged::Done(r);
        }
        // One flush makes every new directory entry of the batch durable.
        if self.fsync && any_published && !single {
            if let Err(e) = self.sync_filesystem() {
                tracing::warn!(%e, "could not sync the store after a batch");
            }
        }
        tracing::debug!(
            blobs = blobs.len(),
            written_ms = t_written.as_millis() as u64,
            synced_ms = t_synced.as_millis() as u64,
            total_ms = t0.elapsed().as_millis() as u64,
            "put_many"
        );
        let outcome = |s: &Staged| -> Result<()> {
            match s {
                Staged::Done(Ok(())) => Ok(()),
                Staged::Done(Err(e)) => Err(clone_error(e)),
                _ => Ok(()),
            }
        };
        (0..blobs.len())
            .map(|i| match &staged[i] {
                Staged::SameAs(w) => outcome(&staged[*w]),
                s => outcome(s),
            })
            .collect()
    }

    fn delete(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(CasError::io("remove", path, e)),
        }
    }

    fn list(&self) -> Result<Vec<BlobInfo>> {
        let mut out = Vec::new();
        for shard in read_dir_sorted(&self.blobs)? {
            for file in read_dir_sorted(&shard)? {
                let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let mut hash = [0u8; 32];
                if name.len() != 64 || hex::decode_to_slice(name, &mut hash).is_err() {
                    continue;
                }
                let meta = match fs::symlink_metadata(&file) {
                    Ok(m) if m.is_file() => m,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(CasError::io("stat", file, e)),
                };
                out.push(BlobInfo {
                    digest: Digest {
                        hash,
                        size: meta.len(),
                    },
                    stored_size: meta.len(),
                    written_at: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
        Ok(out)
    }

    fn local_path(&self, digest: &Digest) -> Option<PathBuf> {
        self.present(digest).ok().flatten()
    }
}

impl DiskStore {
    /// Writes `data` (already verified) into a new temp file, without fsync.
    fn write_temp(&self, digest: &Digest, data: &[u8]) -> Result<PathBuf> {
        let (path, mut f) = self.create_temp(digest)?;
        if let Err(e) = f.write_all(data) {
            drop(f);
            remove_quietly(&path);
            return Err(CasError::io("write", path, e));
        }
        Ok(path)
    }
}

/// A copy of an error for the duplicates of one blob in a batch (io errors keep kind and text).
fn clone_error(e: &CasError) -> CasError {
    match e {
        CasError::DigestMismatch { expected, actual } => CasError::DigestMismatch {
            expected: *expected,
            actual: *actual,
        },
        CasError::SizeExceeded { expected, written } => CasError::SizeExceeded {
            expected: *expected,
            written: *written,
        },
        CasError::NotFound(d) => CasError::NotFound(*d),
        CasError::NoSpace { path } => CasError::NoSpace { path: path.clone() },
        CasError::Io { op, path, source } => CasError::Io {
            op,
            path: path.clone(),
            source: io::Error::new(source.kind(), source.to_string()),
        },
        other => CasError::Io {
            op: "store",
            path: PathBuf::new(),
            source: io::Error::other(other.to_string()),
        },
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(CasError::io("list", dir, e)),
    };
    for entry in entries {
        out.push(entry.ctx("list", dir)?.path());
    }
    out.sort();
    Ok(out)
}
