//! The client's tree: where its root is, how make's file names map to root-relative paths, and
//! the snapshot a farm build sends (the whole tree, and the source view with generated files
//! removed).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use rmake_cas::{BlobStore, Digest, Ignore, Index, MemoryStore, Node, TreeBuilder};
use rmake_proto::{CoordinatorClient, OutputFile};

/// The root of the tree a build sends: the nearest ancestor of `cwd` holding `.git` or
/// `.rmake.toml`, else `cwd` itself.
pub fn find_root(cwd: &Path) -> PathBuf {
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        if d.join(".git").exists() || d.join(".rmake.toml").is_file() {
            return d.to_path_buf();
        }
        dir = d.parent();
    }
    cwd.to_path_buf()
}

/// A file name for the snapshot index of the tree at `root`: a hash of its path.
pub fn root_key(root: &Path) -> String {
    let d = Digest::of(root.to_string_lossy().as_bytes());
    d.hex()[..24].to_string()
}

/// Maps make's file names (relative to the working directory, or absolute) to paths relative
/// to the root.
#[derive(Debug, Clone)]
pub struct PathMap {
    /// The root, absolute.
    pub root: PathBuf,
    /// The working directory relative to the root (`""` at the root).
    pub cwd_rel: String,
}

impl PathMap {
    /// A map for a build run in `cwd` under `root`.
    pub fn new(root: PathBuf, cwd: &Path) -> PathMap {
        let cwd_rel = cwd
            .strip_prefix(&root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        PathMap { root, cwd_rel }
    }

    /// The root-relative path of `name`, or `None` when it lies outside the tree (or is the
    /// root itself).
    pub fn to_rel(&self, name: &str) -> Option<String> {
        let joined = if name.starts_with('/') {
            Path::new(name).strip_prefix(&self.root).ok()?.to_path_buf()
        } else {
            Path::new(&self.cwd_rel).join(name)
        };
        let mut parts: Vec<String> = Vec::new();
        for c in joined.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_str()?.to_string()),
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop()?;
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        if parts.is_empty() {
            return None;
        }
        Some(parts.join("/"))
    }

    /// The absolute local path of a root-relative path.
    pub fn abs(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// One snapshot of the tree, as sent to the farm.
#[derive(Debug)]
pub struct View {
    /// The source view: the tree without the files recipes generate.
    pub root: Digest,
    /// Every file of the whole tree: path -> (digest, executable).
    pub files: HashMap<String, (Digest, bool)>,
}

/// Scans the tree (re-hashing only what the index cannot vouch for), removes the `generated`
/// root-relative paths, uploads whatever the coordinator lacks, and returns the view.
pub async fn snapshot(
    client: &CoordinatorClient,
    map: &PathMap,
    index_path: &Path,
    generated: Vec<String>,
) -> anyhow::Result<View> {
    let root = map.root.clone();
    let index_path = index_path.to_path_buf();
    let (scan, store, view_root, files) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut index = Index::load(&index_path)?;
        let ignore = Ignore::for_root(&root)?;
        let scan = rmake_cas::scan(&root, &mut index, &ignore)?;
        if let Err(e) = index.save() {
            tracing::debug!(error = %e, "cannot save the snapshot index");
        }
        let store = MemoryStore::new();
        for (d, bytes) in &scan.dirs {
            store.put(d, bytes)?;
        }
        let mut files = HashMap::new();
        for e in rmake_cas::flatten(&store, &scan.root)? {
            if let Node::File { digest, executable } = e.node {
                files.insert(e.path, (digest, executable));
            }
        }
        let mut builder = TreeBuilder::from_tree(&store, &scan.root)?;
        for g in &generated {
            if files.contains_key(g) {
                builder.remove(&store, g)?;
            }
        }
        let view_root = builder.write(&store)?;
        Ok((scan, store, view_root, files))
    })
    .await??;
    upload(client, &scan, &store, &view_root).await?;
    Ok(View { root: view_root, files })
}

/// Uploads the files and directory nodes of a snapshot that the coordinator lacks.
async fn upload(
    client: &CoordinatorClient,
    scan: &rmake_cas::Scan,
    store: &MemoryStore,
    view_root: &Digest,
) -> anyhow::Result<()> {
    let mut dir_digests: Vec<Digest> = scan.dirs.keys().copied().collect();
    // The view's own nodes (directories that lost a generated file) live only in `store`.
    let view_nodes: Vec<Digest> = rmake_cas::flatten(store, view_root)?
        .into_iter()
        .filter_map(|e| match e.node {
            Node::Directory { digest } => Some(digest),
            _ => None,
        })
        .chain(std::iter::once(*view_root))
        .collect();
    dir_digests.extend(view_nodes);
    dir_digests.sort();
    dir_digests.dedup();
    let mut all: Vec<Digest> = dir_digests.clone();
    all.extend(scan.files.keys().copied());
    let mut missing = Vec::new();
    for chunk in all.chunks(rmake_proto::types::limits::MAX_BATCH_DIGESTS) {
        missing.extend(client.find_missing(chunk).await?);
    }
    if missing.is_empty() {
        return Ok(());
    }
    let missing: std::collections::HashSet<Digest> = missing.into_iter().collect();
    let mut nodes = Vec::new();
    for d in dir_digests.iter().filter(|d| missing.contains(d)) {
        if let Some(bytes) = store.get(d)? {
            nodes.push((*d, bytes::Bytes::from(bytes)));
        }
    }
    let paths: Vec<(Digest, PathBuf)> = scan
        .files
        .iter()
        .filter(|(d, _)| missing.contains(d))
        .map(|(d, p)| (*d, p.clone()))
        .collect();
    let a = client.upload_many(&nodes, 4).await?;
    let b = client.upload_paths(&paths, 4).await?;
    if let Some(r) = a.rejected.iter().chain(b.rejected.iter()).next() {
        anyhow::bail!("the coordinator refused blob {}: {}", r.digest, r.error);
    }
    Ok(())
}

/// The inputs of an action: for every generated file it depends on, its outputs from this build
/// (`made`) or, when it was not remade, its file from the snapshot; sorted by path, each once.
pub fn inputs(
    closure: &[String],
    made: &HashMap<String, Vec<OutputFile>>,
    view: &View,
) -> Vec<OutputFile> {
    let mut out: HashMap<String, OutputFile> = HashMap::new();
    for rel in closure {
        match made.get(rel) {
            Some(outputs) => {
                for f in outputs {
                    out.insert(f.path.clone(), f.clone());
                }
            }
            None => {
                if let Some((digest, executable)) = view.files.get(rel) {
                    out.insert(
                        rel.clone(),
                        OutputFile { path: rel.clone(), digest: *digest, executable: *executable },
                    );
                }
            }
        }
    }
    let mut v: Vec<OutputFile> = out.into_values().collect();
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v
}

/// The digests of `paths` (root-relative), in order: from this build's outputs, else from the
/// snapshot; paths that are neither (phony or missing files) are left out.
pub fn digests_of(
    paths: &[String],
    made: &HashMap<String, Vec<OutputFile>>,
    view: &View,
) -> Vec<OutputFile> {
    paths
        .iter()
        .filter_map(|p| {
            let from_made = made.get(p).and_then(|outs| outs.iter().find(|o| &o.path == p)).cloned();
            from_made.or_else(|| {
                view.files.get(p).map(|(digest, executable)| OutputFile {
                    path: p.clone(),
                    digest: *digest,
                    executable: *executable,
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_into_the_tree() {
        let m = PathMap { root: PathBuf::from("/src/p"), cwd_rel: "sub".into() };
        assert_eq!(m.to_rel("a.o").as_deref(), Some("sub/a.o"));
        assert_eq!(m.to_rel("./x/../b.c").as_deref(), Some("sub/b.c"));
        assert_eq!(m.to_rel("../inc/h.h").as_deref(), Some("inc/h.h"));
        assert_eq!(m.to_rel("../../etc/passwd"), None);
        assert_eq!(m.to_rel("/src/p/sub/a.o").as_deref(), Some("sub/a.o"));
        assert_eq!(m.to_rel("/usr/include/stdio.h"), None);
        assert_eq!(m.to_rel(".."), None);
    }
}
