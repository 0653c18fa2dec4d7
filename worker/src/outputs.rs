//! Finding an action's outputs after its recipe ran: every file created or changed in the exec
//! root (a scan compared with the input view; only files whose stamp changed are hashed), plus
//! the declared outputs that exist. When the read recorder saw every change, only the
//! directories where names changed (and those created) are listed; otherwise the whole root.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::Context;

use rmake_cas::{scan, walk, BlobStore, Digest, FlatEntry, Ignore, MemoryStore, Node};
use rmake_proto::OutputFile;

use crate::exec_root::{Before, ExecRoot};

/// The outputs of a run and where their bytes are.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Sorted by path.
    pub files: Vec<OutputFile>,
    /// Directories the recipe created, sorted (not those the worker made for the working
    /// directory).
    pub dirs: Vec<String>,
    /// One file holding each output blob.
    pub paths: HashMap<Digest, PathBuf>,
    /// Everything the scan found in the root, parents first.
    pub after: Vec<FlatEntry>,
    /// Paths the scan left out (special files, escaping symlinks).
    pub skipped: Vec<String>,
    /// The directories listed when the scan was bounded to them (`after` then holds only their
    /// entries); `None` when the whole root was scanned.
    pub scanned_dirs: Option<BTreeSet<String>>,
}

/// What a scan of the root (or of some of its directories) found.
struct Found {
    after: Vec<FlatEntry>,
    files: HashMap<Digest, PathBuf>,
    skipped: Vec<String>,
    scanned_dirs: Option<BTreeSet<String>>,
}

/// Scans the exec root and lists the files the recipe created or changed, and the `declared`
/// ones (relative to the root) that exist as regular files. Symlinks and removed files are not
/// reported (a result cannot carry them). `changed` (from the read recorder) bounds the scan to
/// those directories (plus the ones the worker wrote into while preparing the root); `None`
/// scans the whole root.
pub fn find_outputs(
    exec: &mut ExecRoot,
    declared: &[String],
    changed: Option<&BTreeSet<String>>,
) -> anyhow::Result<Outputs> {
    let bounded = match changed {
        Some(c) => {
            let mut dirs = c.clone();
            dirs.extend(exec.touched.iter().cloned());
            scan_dirs(exec, &dirs)?
        }
        None => None,
    };
    let scanned = match bounded {
        Some(found) => found,
        None => scan_all(exec)?,
    };
    let after = scanned.after;
    let mut found: BTreeMap<String, OutputFile> = BTreeMap::new();
    let mut files_after: HashMap<&str, (Digest, bool)> = HashMap::new();
    for e in &after {
        if let Node::File { digest, executable } = &e.node {
            files_after.insert(e.path.as_str(), (*digest, *executable));
            let unchanged = exec.before.get(&e.path)
                == Some(&Before::File {
                    digest: *digest,
                    executable: *executable,
                });
            if !unchanged {
                found.insert(
                    e.path.clone(),
                    OutputFile {
                        path: e.path.clone(),
                        digest: *digest,
                        executable: *executable,
                    },
                );
            }
        }
    }
    let mut dirs: Vec<String> = after
        .iter()
        .filter(|e| matches!(e.node, Node::Directory { .. }))
        .filter(|e| !exec.before.contains_key(&e.path) && !exec.worker_dirs.contains(&e.path))
        .map(|e| e.path.clone())
        .collect();
    dirs.sort();
    for path in declared {
        let here = match files_after.get(path.as_str()) {
            Some(f) => Some(*f),
            // Bounded scan: a file in a directory where nothing changed is as it was.
            None => match (&scanned.scanned_dirs, exec.before.get(path)) {
                (Some(listed), Some(Before::File { digest, executable }))
                    if !listed.contains(parent(path)) =>
                {
                    Some((*digest, *executable))
                }
                _ => None,
            },
        };
        if let Some((digest, executable)) = here {
            found.entry(path.clone()).or_insert_with(|| OutputFile {
                path: path.clone(),
                digest,
                executable,
            });
        }
    }
    let mut paths = HashMap::new();
    for f in found.values() {
        let p = scanned
            .files
            .get(&f.digest)
            .cloned()
            .unwrap_or_else(|| exec.root.join(&f.path));
        paths.insert(f.digest, p);
    }
    Ok(Outputs {
        files: found.into_values().collect(),
        dirs,
        paths,
        after,
        skipped: scanned.skipped,
        scanned_dirs: scanned.scanned_dirs,
    })
}

/// The directory part of a relative path (`""` for a name at the root).
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// Scans the whole root.
fn scan_all(exec: &mut ExecRoot) -> anyhow::Result<Found> {
    let scanned = scan(&exec.root, &mut exec.index, &Ignore::new())
        .with_context(|| format!("scanning the exec root {}", exec.root.display()))?;
    let mem = MemoryStore::new();
    for (d, data) in &scanned.dirs {
        mem.put(d, data)
            .context("keeping a scanned directory node")?;
    }
    let after = walk::flatten(&mem, &scanned.root).context("listing the scanned exec root")?;
    Ok(Found {
        after,
        files: scanned.files,
        skipped: scanned.skipped,
        scanned_dirs: None,
    })
}

/// Lists the directories `dirs` (relative; those gone or no longer directories are passed
/// over) and, whole, every directory found in them that was not one before the run. Entries of
/// directories not listed are left out of `after` (they are as they were). `None` when
/// something is met that only the full scan handles (a name that is not UTF-8 or cannot be
/// stored, a symlink whose target is not UTF-8).
fn scan_dirs(exec: &mut ExecRoot, dirs: &BTreeSet<String>) -> anyhow::Result<Option<Found>> {
    let ignore = Ignore::new();
    let mut found = Found {
        after: Vec::new(),
        files: HashMap::new(),
        skipped: Vec::new(),
        scanned_dirs: None,
    };
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = dirs
        .iter()
        .filter(|d| is_real_dir(exec, d))
        .cloned()
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(dir) = stack.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let abs = if dir.is_empty() {
            exec.root.clone()
        } else {
            exec.root.join(&dir)
        };
        let entries = match fs::read_dir(&abs) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", abs.display())),
        };
        listed.insert(dir.clone());
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", abs.display()))?;
            let os_name = entry.file_name();
            let Some(name) = os_name.to_str() else {
                return Ok(None);
            };
            if rmake_cas::tree::validate_name(name).is_err() {
                return Ok(None);
            }
            let rel = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("stat {rel}")),
            };
            let ft = meta.file_type();
            if ignore.is_ignored(&rel, ft.is_dir()) {
                continue;
            }
            let node = if ft.is_dir() {
                if !matches!(exec.before.get(&rel), Some(Before::Dir)) {
                    stack.push(rel.clone());
                }
                Node::Directory {
                    digest: Digest::EMPTY,
                }
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    // A hard link: the other name, maybe in a directory not listed, changed too.
                    return Ok(None);
                }
                let path = entry.path();
                let digest = exec
                    .index
                    .digest_file(&rel, &path, &meta)
                    .with_context(|| format!("hashing {rel}"))?;
                found.files.entry(digest).or_insert(path);
                Node::File {
                    digest,
                    executable: meta.permissions().mode() & 0o111 != 0,
                }
            } else if ft.is_symlink() {
                let target =
                    fs::read_link(entry.path()).with_context(|| format!("reading link {rel}"))?;
                let Some(target) = target.to_str() else {
                    return Ok(None);
                };
                Node::Symlink {
                    target: target.to_string(),
                }
            } else {
                found.skipped.push(rel);
                continue;
            };
            found.after.push(FlatEntry { path: rel, node });
        }
    }
    // Parents before children, as a full scan lists them.
    found.after.sort_by(|a, b| a.path.cmp(&b.path));
    found.scanned_dirs = Some(listed);
    Ok(Some(found))
}

/// Whether `dir` (relative) is a directory reached through directories only (never through a
/// symlink a recipe put in place of one).
fn is_real_dir(exec: &ExecRoot, dir: &str) -> bool {
    let mut path = exec.root.clone();
    for c in dir.split('/').filter(|c| !c.is_empty()) {
        path.push(c);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            _ => return false,
        }
    }
    true
}
