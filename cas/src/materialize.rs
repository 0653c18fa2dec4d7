//! `materialize`: write a Merkle tree out as real files — hard links from a local on-disk store
//! where possible, copies otherwise, executable bits and in-tree symlinks kept.
//!
//! The whole tree is read and checked before the first byte is written: names were validated
//! when each node was decoded, every symlink must resolve inside the tree, and every file blob
//! must be present. A tree that fails any check is refused and nothing is written.
//!
//! Hard-linked files share their inode with the store's blob: they are read-only (mode 0444),
//! carry the blob's mtime, and must never be written in place (replace them instead), or the
//! stored blob changes too. Executable files are always copied, since a blob's one inode cannot
//! be both executable and not.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::digest::Digest;
use crate::error::{CasError, IoContext, Result};
use crate::store::{write_error, BlobStore};
use crate::tree::Node;
use crate::walk::{check_symlinks, flatten};

/// How to write files out.
#[derive(Debug, Clone, Copy)]
pub struct MaterializeOptions {
    /// Hard-link non-executable files from the store when it keeps blobs as local files on the
    /// same filesystem (see the module docs for the caveat). Copies otherwise.
    pub hard_links: bool,
    /// Replace files and symlinks already present at a path instead of failing.
    pub replace_existing: bool,
}

impl Default for MaterializeOptions {
    fn default() -> MaterializeOptions {
        MaterializeOptions {
            hard_links: true,
            replace_existing: false,
        }
    }
}

/// What `materialize` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MaterializeStats {
    /// Directories created or reused (the root excluded).
    pub dirs: u64,
    /// Files hard-linked from the store.
    pub linked: u64,
    /// Files copied.
    pub copied: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Bytes of files written or linked.
    pub bytes: u64,
}

/// Writes the tree `root` into `dir` (created if absent). See the module docs.
pub fn materialize(
    store: &dyn BlobStore,
    root: &Digest,
    dir: &Path,
    opts: MaterializeOptions,
) -> Result<MaterializeStats> {
    let entries = flatten(store, root)?;
    check_symlinks(&entries)?;
    let blobs: Vec<Digest> = entries
        .iter()
        .filter_map(|e| match &e.node {
            Node::File { digest, .. } => Some(*digest),
            _ => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if let Some(missing) = store.find_missing(&blobs)?.first() {
        return Err(CasError::NotFound(*missing));
    }

    fs::create_dir_all(dir).ctx("create directory", dir)?;
    let mut stats = MaterializeStats::default();
    for e in &entries {
        let dest = dir.join(&e.path);
        match &e.node {
            Node::Directory { .. } => {
                make_dir(&dest, opts)?;
                stats.dirs += 1;
            }
            Node::File { digest, executable } => {
                clear_for(&dest, opts)?;
                if write_file(store, digest, *executable, &dest, opts)? {
                    stats.linked += 1;
                } else {
                    stats.copied += 1;
                }
                stats.bytes += digest.size;
            }
            Node::Symlink { target } => {
                clear_for(&dest, opts)?;
                std::os::unix::fs::symlink(target, &dest).ctx("create symlink", &dest)?;
                stats.symlinks += 1;
            }
        }
    }
    Ok(stats)
}

/// Creates a directory, or reuses a real one; never goes through a symlink.
fn make_dir(dest: &Path, opts: MaterializeOptions) -> Result<()> {
    match fs::create_dir(dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dest).ctx("stat", dest)?;
            if meta.is_dir() {
                return Ok(());
            }
            if !opts.replace_existing {
                return Err(CasError::io("create directory", dest, e));
            }
            fs::remove_file(dest).ctx("remove", dest)?;
            fs::create_dir(dest).ctx("create directory", dest)
        }
        Err(e) => Err(CasError::io("create directory", dest, e)),
    }
}

/// Removes what is at `dest` if allowed; a directory there is never removed.
fn clear_for(dest: &Path, opts: MaterializeOptions) -> Result<()> {
    if !opts.replace_existing {
        return Ok(());
    }
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => Err(CasError::InvalidPath {
            path: dest.display().to_string(),
            reason: "a directory is in the way of a file".into(),
        }),
        Ok(_) => fs::remove_file(dest).ctx("remove", dest),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CasError::io("stat", dest, e)),
    }
}

/// Writes one file; `Ok(true)` if it was hard-linked, `Ok(false)` if copied.
fn write_file(
    store: &dyn BlobStore,
    digest: &Digest,
    executable: bool,
    dest: &Path,
    opts: MaterializeOptions,
) -> Result<bool> {
    if opts.hard_links && !executable {
        if let Some(src) = store.local_path(digest) {
            match fs::hard_link(&src, dest) {
                Ok(()) => return Ok(true),
                // Another filesystem, too many links, or links not allowed: copy instead.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EXDEV | libc::EMLINK | libc::EPERM | libc::ENOTSUP)
                    ) => {}
                Err(e) => return Err(CasError::io("link", dest, e)),
            }
        }
    }
    let mode = if executable { 0o755 } else { 0o644 };
    let mut reader = store
        .open_read(digest)?
        .ok_or(CasError::NotFound(*digest))?;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)
        .ctx("create", dest)?;
    let copied = io::copy(&mut reader, &mut out).map_err(|e| match e.raw_os_error() {
        Some(_) => CasError::io("write", dest, e),
        None => write_error(digest, e),
    })?;
    if copied != digest.size {
        let msg = format!("blob {digest} gave {copied} bytes");
        return Err(CasError::io(
            "copy",
            dest,
            io::Error::new(io::ErrorKind::UnexpectedEof, msg),
        ));
    }
    // The umask may have cleared bits the tree asks for.
    fs::set_permissions(dest, fs::Permissions::from_mode(mode)).ctx("chmod", dest)?;
    Ok(false)
}
