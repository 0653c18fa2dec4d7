//! `snapshot`: turn a directory into a Merkle tree — `scan` it (hashing only what the index
//! cannot vouch for) and `upload` the blobs the store lacks.
//!
//! Symlinks are recorded, never followed. A symlink that is absolute or leads out of the tree is
//! left out with a warning (it could never be materialized); so are sockets, FIFOs and devices.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{CasError, IoContext, Result};
use crate::ignore::Ignore;
use crate::index::{hash_file, Index};
use crate::par::par_map_min;
use crate::store::BlobStore;
use crate::tree::{validate_name, validate_target, Directory, Entry, Node};
use crate::walk::resolve_link;

/// Files up to this size are uploaded in batches through `put_many`; larger ones are streamed.
const BATCH_FILE_MAX: u64 = 1 << 20;
/// Bytes gathered in memory for one upload batch.
const BATCH_BYTES: u64 = 32 << 20;

/// The result of scanning a directory: its root digest and where every blob's bytes come from.
#[derive(Debug)]
pub struct Scan {
    /// Digest of the root directory node.
    pub root: Digest,
    /// Encoded directory nodes by digest.
    pub dirs: HashMap<Digest, Vec<u8>>,
    /// One file holding each file blob.
    pub files: HashMap<Digest, PathBuf>,
    /// Counts of what was seen.
    pub stats: SnapshotStats,
    /// Relative paths left out (escaping symlinks, special files), for the caller to report.
    pub skipped: Vec<String>,
}

/// Counts describing a snapshot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Regular files.
    pub files: u64,
    /// Directories, the root included.
    pub dirs: u64,
    /// Symlinks kept.
    pub symlinks: u64,
    /// Total bytes of regular files.
    pub bytes: u64,
    /// Files read and hashed (the rest came from the index).
    pub hashed: u64,
    /// Blobs uploaded to the store (files and directory nodes).
    pub uploaded_blobs: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
}

/// A finished snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Digest of the root directory node.
    pub root: Digest,
    /// What was seen and done.
    pub stats: SnapshotStats,
    /// Relative paths left out.
    pub skipped: Vec<String>,
}

/// Scans `dir` into a tree and uploads whatever `store` lacks. The index is updated (the caller
/// saves it).
pub fn snapshot(
    dir: &Path,
    store: &dyn BlobStore,
    index: &mut Index,
    ignore: &Ignore,
) -> Result<Snapshot> {
    let mut scan = scan(dir, index, ignore)?;
    upload(&mut scan, store)?;
    Ok(Snapshot {
        root: scan.root,
        stats: scan.stats,
        skipped: scan.skipped,
    })
}

/// In-memory tree built while scanning, before encoding.
enum ScanNode {
    File { digest: Digest, executable: bool },
    Symlink { target: String },
    Dir(BTreeMap<String, ScanNode>),
}

/// One entry of a directory listing, before digests are known.
struct Listed {
    name: String,
    kind: ListedKind,
}

enum ListedKind {
    Dir,
    File {
        meta: std::fs::Metadata,
        digest: Option<Digest>,
    },
    Symlink(String),
}

/// Walks `dir` and builds its tree without storing anything.
///
/// Three phases: list and `lstat` every directory (a level at a time, directories spread over
/// threads), hash the files the index cannot vouch for (spread over threads), then assemble and
/// encode the tree.
pub fn scan(dir: &Path, index: &mut Index, ignore: &Ignore) -> Result<Scan> {
    let mut scan = Scan {
        root: Digest::EMPTY,
        dirs: HashMap::new(),
        files: HashMap::new(),
        stats: SnapshotStats::default(),
        skipped: Vec::new(),
    };
    if !fs::metadata(dir).ctx("stat", dir)?.is_dir() {
        return Err(CasError::InvalidPath {
            path: dir.display().to_string(),
            reason: "not a directory".into(),
        });
    }

    // Phase 1: listings of every directory, keyed by relative path ("" is the root).
    let mut listings: HashMap<String, Vec<Listed>> = HashMap::new();
    let mut level = vec![String::new()];
    while !level.is_empty() {
        let results = par_map_min(level.len(), 8, |i| list_dir(dir, &level[i], ignore));
        let mut next = Vec::new();
        for (rel, res) in level.iter().zip(results) {
            let (entries, skipped) = res?;
            scan.skipped.extend(skipped);
            for e in &entries {
                if matches!(e.kind, ListedKind::Dir) {
                    next.push(join_rel(rel, &e.name));
                }
            }
            listings.insert(rel.clone(), entries);
        }
        level = next;
    }

    // Phase 2: digests from the index, hashing only the misses.
    let hashed_before = index.hashes();
    index.begin_pass();
    let mut misses: Vec<(String, usize, String)> = Vec::new();
    for (rel, entries) in listings.iter_mut() {
        for (i, e) in entries.iter_mut().enumerate() {
            if let ListedKind::File { meta, digest } = &mut e.kind {
                let child = join_rel(rel, &e.name);
                *digest = index.lookup(&child, meta);
                if digest.is_none() {
                    misses.push((rel.clone(), i, child));
                }
            }
        }
    }
    let metas: Vec<&std::fs::Metadata> = misses
        .iter()
        .filter_map(|(rel, i, _)| {
            match listings.get(rel).and_then(|l| l.get(*i)).map(|e| &e.kind) {
                Some(ListedKind::File { meta, .. }) => Some(meta),
                _ => None,
            }
        })
        .collect();
    let hashed = par_map_min(misses.len(), 16, |k| {
        hash_file(&dir.join(&misses[k].2), metas[k])
    });
    let mut found: Vec<(String, usize, Digest)> = Vec::with_capacity(misses.len());
    for ((rel, i, child), (res, meta)) in misses.iter().zip(hashed.into_iter().zip(metas)) {
        let (digest, trusted) = res?;
        index.record(child, meta, digest, trusted);
        found.push((rel.clone(), *i, digest));
    }
    for (rel, i, d) in found {
        if let Some(ListedKind::File { digest, .. }) = listings
            .get_mut(&rel)
            .and_then(|l| l.get_mut(i))
            .map(|e| &mut e.kind)
        {
            *digest = Some(d);
        }
    }
    index.end_pass();

    // Phase 3: the tree.
    let mut root = build(dir, "", &mut listings, &mut scan);
    if scan.stats.symlinks > 0 {
        drop_escaping_links(&mut root, &mut scan.skipped);
    }
    // Counted again, for the links that were kept, while encoding.
    scan.stats.symlinks = 0;
    let ScanNode::Dir(children) = root else {
        return Err(CasError::InvalidPath {
            path: dir.display().to_string(),
            reason: "not a directory".into(),
        });
    };
    scan.root = encode_dir(children, &mut scan)?;
    scan.stats.hashed = index.hashes() - hashed_before;
    Ok(scan)
}

fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Lists one directory (relative path `rel` under `root`): kept entries, and paths left out.
fn list_dir(root: &Path, rel: &str, ignore: &Ignore) -> Result<(Vec<Listed>, Vec<String>)> {
    let abs = root.join(rel);
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for entry in fs::read_dir(&abs).ctx("list", &abs)? {
        let entry = entry.ctx("list", &abs)?;
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            return Err(CasError::InvalidPath {
                path: entry.path().display().to_string(),
                reason: "file name is not UTF-8".into(),
            });
        };
        let child_rel = join_rel(rel, name);
        validate_name(name).map_err(|_| CasError::InvalidPath {
            path: child_rel.clone(),
            reason: "file name cannot be stored in a tree".into(),
        })?;
        // DirEntry::metadata does not follow symlinks.
        let meta = match entry.metadata() {
            Ok(m) => m,
            // Deleted between listing and stat: it is simply not part of this snapshot.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CasError::io("stat", entry.path(), e)),
        };
        let ft = meta.file_type();
        if ignore.is_ignored(&child_rel, ft.is_dir()) {
            continue;
        }
        let kind = if ft.is_dir() {
            ListedKind::Dir
        } else if ft.is_file() {
            ListedKind::File { meta, digest: None }
        } else if ft.is_symlink() {
            let path = entry.path();
            let target = fs::read_link(&path).ctx("read link", &path)?;
            let Some(target) = target.to_str().map(str::to_string) else {
                tracing::warn!(path = %child_rel, "symlink target is not UTF-8; left out of the snapshot");
                skipped.push(child_rel);
                continue;
            };
            validate_target(&target)?;
            ListedKind::Symlink(target)
        } else {
            tracing::warn!(path = %child_rel, "not a file, directory or symlink; left out of the snapshot");
            skipped.push(child_rel);
            continue;
        };
        out.push(Listed {
            name: name.to_string(),
            kind,
        });
    }
    Ok((out, skipped))
}

/// Assembles the in-memory tree of `rel` from the listings.
fn build(
    root: &Path,
    rel: &str,
    listings: &mut HashMap<String, Vec<Listed>>,
    scan: &mut Scan,
) -> ScanNode {
    let mut children = BTreeMap::new();
    for e in listings.remove(rel).unwrap_or_default() {
        let child = join_rel(rel, &e.name);
        let node = match e.kind {
            ListedKind::Dir => build(root, &child, listings, scan),
            ListedKind::File { meta, digest } => {
                // Every file got a digest in phase 2 (or the scan failed there).
                let Some(digest) = digest else { continue };
                scan.stats.files += 1;
                scan.stats.bytes += digest.size;
                scan.files
                    .entry(digest)
                    .or_insert_with(|| root.join(&child));
                ScanNode::File {
                    digest,
                    executable: meta.permissions().mode() & 0o111 != 0,
                }
            }
            ListedKind::Symlink(target) => {
                scan.stats.symlinks += 1;
                ScanNode::Symlink { target }
            }
        };
        children.insert(e.name, node);
    }
    ScanNode::Dir(children)
}

/// Removes symlinks that leave the tree, repeating until none does (removing one can change
/// how another resolves).
fn drop_escaping_links(root: &mut ScanNode, skipped: &mut Vec<String>) {
    loop {
        let mut flat: Vec<(String, Node)> = Vec::new();
        collect(root, "", &mut flat);
        let map: HashMap<&str, &Node> = flat.iter().map(|(p, n)| (p.as_str(), n)).collect();
        let bad: Vec<String> = flat
            .iter()
            .filter_map(|(p, n)| match n {
                Node::Symlink { target } => resolve_link(&map, p, target).err().map(|why| {
                    tracing::warn!(path = %p, %target, reason = %why, "symlink left out of the snapshot");
                    p.clone()
                }),
                _ => None,
            })
            .collect();
        if bad.is_empty() {
            return;
        }
        for p in bad {
            remove_path(root, &p);
            skipped.push(p);
        }
    }
}

fn collect(node: &ScanNode, prefix: &str, out: &mut Vec<(String, Node)>) {
    if let ScanNode::Dir(children) = node {
        for (name, child) in children {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            match child {
                ScanNode::Symlink { target } => out.push((
                    path,
                    Node::Symlink {
                        target: target.clone(),
                    },
                )),
                ScanNode::File { digest, executable } => out.push((
                    path,
                    Node::File {
                        digest: *digest,
                        executable: *executable,
                    },
                )),
                ScanNode::Dir(_) => {
                    out.push((
                        path.clone(),
                        Node::Directory {
                            digest: Digest::EMPTY,
                        },
                    ));
                    collect(child, &path, out);
                }
            }
        }
    }
}

fn remove_path(root: &mut ScanNode, path: &str) {
    let mut node = root;
    let mut comps = path.split('/').peekable();
    while let Some(c) = comps.next() {
        let ScanNode::Dir(children) = node else {
            return;
        };
        if comps.peek().is_none() {
            children.remove(c);
            return;
        }
        match children.get_mut(c) {
            Some(next) => node = next,
            None => return,
        }
    }
}

fn encode_dir(children: BTreeMap<String, ScanNode>, scan: &mut Scan) -> Result<Digest> {
    let mut entries = Vec::with_capacity(children.len());
    for (name, child) in children {
        let node = match child {
            ScanNode::File { digest, executable } => Node::File { digest, executable },
            ScanNode::Symlink { target } => {
                scan.stats.symlinks += 1;
                Node::Symlink { target }
            }
            ScanNode::Dir(grand) => Node::Directory {
                digest: encode_dir(grand, scan)?,
            },
        };
        entries.push(Entry { name, node });
    }
    let dir = Directory::from_entries(entries)?;
    let bytes = dir.encode();
    let digest = Digest::of(&bytes);
    scan.dirs.insert(digest, bytes);
    scan.stats.dirs += 1;
    Ok(digest)
}

/// Uploads the blobs of `scan` that `store` lacks: directory nodes and small files in batches,
/// large files streamed from disk. A file that changed since it was hashed fails the upload
/// with [`CasError::DigestMismatch`].
pub fn upload(scan: &mut Scan, store: &dyn BlobStore) -> Result<()> {
    let all: Vec<Digest> = scan.dirs.keys().chain(scan.files.keys()).copied().collect();
    let missing = store.find_missing(&all)?;
    let mut batch: Vec<(Digest, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0u64;
    for d in missing {
        let data = if let Some(bytes) = scan.dirs.get(&d) {
            bytes.clone()
        } else if let Some(path) = scan.files.get(&d) {
            if d.size > BATCH_FILE_MAX {
                let mut f = File::open(path).ctx("open", path)?;
                store
                    .put_stream(&d, &mut f)
                    .map_err(|e| changed_file(e, path))?;
                scan.stats.uploaded_blobs += 1;
                scan.stats.uploaded_bytes += d.size;
                continue;
            }
            fs::read(path).ctx("read", path)?
        } else {
            continue;
        };
        batch_bytes += data.len() as u64;
        batch.push((d, data));
        if batch_bytes >= BATCH_BYTES {
            flush_batch(&mut batch, store, scan)?;
            batch_bytes = 0;
        }
    }
    flush_batch(&mut batch, store, scan)
}

fn flush_batch(
    batch: &mut Vec<(Digest, Vec<u8>)>,
    store: &dyn BlobStore,
    scan: &mut Scan,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let refs: Vec<(Digest, &[u8])> = batch.iter().map(|(d, b)| (*d, b.as_slice())).collect();
    for ((d, data), res) in batch.iter().zip(store.put_many(&refs)) {
        if let Err(e) = res {
            return Err(match scan.files.get(d) {
                Some(path) => changed_file(e, path),
                None => e,
            });
        }
        scan.stats.uploaded_blobs += 1;
        scan.stats.uploaded_bytes += data.len() as u64;
    }
    batch.clear();
    Ok(())
}

/// Says which file changed when an upload's bytes no longer match the digest taken at scan time.
fn changed_file(e: CasError, path: &Path) -> CasError {
    match e {
        CasError::DigestMismatch { .. } | CasError::SizeExceeded { .. } => CasError::InvalidPath {
            path: path.display().to_string(),
            reason: format!("file changed during the snapshot ({e}); run again"),
        },
        other => other,
    }
}
