//! Finding an action's outputs after its recipe ran: every file created or changed in the exec
//! root (a scan compared with the input view; only files whose stamp changed are hashed), plus
//! the declared outputs that exist.

use std::collections::{BTreeMap, HashMap};
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
}

/// Scans the exec root and lists the files the recipe created or changed, and the `declared`
/// ones (relative to the root) that exist as regular files. Symlinks and removed files are not
/// reported (a result cannot carry them).
pub fn find_outputs(exec: &mut ExecRoot, declared: &[String]) -> anyhow::Result<Outputs> {
    let scanned = scan(&exec.root, &mut exec.index, &Ignore::new())
        .with_context(|| format!("scanning the exec root {}", exec.root.display()))?;
    let mem = MemoryStore::new();
    for (d, data) in &scanned.dirs {
        mem.put(d, data)
            .context("keeping a scanned directory node")?;
    }
    let after = walk::flatten(&mem, &scanned.root).context("listing the scanned exec root")?;
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
        if let Some((digest, executable)) = files_after.get(path.as_str()) {
            found.entry(path.clone()).or_insert_with(|| OutputFile {
                path: path.clone(),
                digest: *digest,
                executable: *executable,
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
    })
}
