//! Building an action's private exec root from the blob cache: the input tree materialized as
//! copies (a recipe writing into an input must never change a cached blob), the `inputs`
//! overlay written over it, the working directory created; and what was there before the run,
//! for finding outputs and filtering reads afterwards. An idle root of the same tree (see
//! `restore`) is moved into place instead of materializing again.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use rmake_cas::{
    materialize, split_path, walk, BlobStore, Digest, FlatEntry, Index, MaterializeOptions, Node,
};
use rmake_proto::exec::ActionSpec;

/// What was at a path of the exec root before the recipe ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// A file with this content and mode.
    File {
        /// Its content.
        digest: Digest,
        /// Its executable bit.
        executable: bool,
    },
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// The pristine input tree of an exec root, as materialized: what a reused root is reset to.
#[derive(Debug)]
pub struct Baseline {
    /// The tree's digest.
    pub input_root: Digest,
    /// Its entries, parents before children.
    pub entries: Vec<FlatEntry>,
    /// The same, by path.
    pub map: HashMap<String, Before>,
    /// Its directories, `""` (the root) first, parents before children.
    pub dirs: Vec<String>,
}

/// What an exec root held before the run: its input tree (shared by every action on it) with
/// the action's overlay over it.
#[derive(Debug)]
pub struct InputView {
    baseline: Arc<Baseline>,
    overlay: HashMap<String, Before>,
}

impl InputView {
    /// What was at `path` (relative to the root).
    pub fn get(&self, path: &str) -> Option<&Before> {
        self.overlay
            .get(path)
            .or_else(|| self.baseline.map.get(path))
    }

    /// Whether anything was at `path`.
    pub fn contains_key(&self, path: &str) -> bool {
        self.get(path).is_some()
    }
}

impl Baseline {
    fn of(store: &dyn BlobStore, input_root: Digest) -> anyhow::Result<Baseline> {
        let entries = walk::flatten(store, &input_root)
            .with_context(|| format!("listing input root {input_root}"))?;
        let map = entries
            .iter()
            .map(|e| {
                let b = match e.node {
                    Node::File { digest, executable } => Before::File { digest, executable },
                    Node::Directory { .. } => Before::Dir,
                    Node::Symlink { .. } => Before::Symlink,
                };
                (e.path.clone(), b)
            })
            .collect();
        let mut dirs: Vec<String> = std::iter::once(String::new())
            .chain(
                entries
                    .iter()
                    .filter(|e| matches!(e.node, Node::Directory { .. }))
                    .map(|e| e.path.clone()),
            )
            .collect();
        sort_parents_first(&mut dirs);
        Ok(Baseline {
            input_root,
            entries,
            map,
            dirs,
        })
    }
}

/// An idle exec root reset to its baseline, ready for the next action on the same tree.
#[derive(Debug)]
pub struct Pooled {
    /// Where it is now.
    pub path: PathBuf,
    /// What is in it.
    pub baseline: Arc<Baseline>,
    /// Stamps of its files.
    pub index: Index,
}

/// Where a prepared exec root came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An idle root of the same tree.
    Reused,
    /// An idle root of another tree, changed where the trees differ.
    Reshaped,
    /// Materialized afresh.
    Fresh,
}

/// A prepared exec root.
#[derive(Debug)]
pub struct ExecRoot {
    /// Where it came from.
    pub origin: Origin,
    /// The root directory (`work_dir/exec/<lease>`).
    pub root: PathBuf,
    /// Where the recipe runs (`root/working_dir`).
    pub cwd: PathBuf,
    /// Every path of the input view (tree plus overlay), relative to the root.
    pub before: InputView,
    /// Stamps of the files written, so the scan afterwards hashes only what changed.
    pub index: Index,
    /// The input tree alone (without the overlay).
    pub baseline: Arc<Baseline>,
    /// Directories the worker created for the working directory (not outputs).
    pub worker_dirs: HashSet<String>,
    /// Directories the worker wrote into while preparing the root (the overlay's, the working
    /// directory's parents): a bounded output scan lists them too.
    pub touched: Vec<String>,
}

impl ExecRoot {
    /// Every directory of the root, relative (`""` is the root), parents first.
    pub fn dirs(&self) -> Vec<String> {
        let extra: Vec<String> = self
            .before
            .overlay
            .iter()
            .filter(|(p, b)| matches!(b, Before::Dir) && !self.baseline.map.contains_key(*p))
            .map(|(p, _)| p.clone())
            .collect();
        if extra.is_empty() {
            return self.baseline.dirs.clone();
        }
        let mut dirs = self.baseline.dirs.clone();
        dirs.extend(extra);
        sort_parents_first(&mut dirs);
        dirs
    }
}

/// Sorts relative directory paths by depth (`""` first), then by name.
fn sort_parents_first(dirs: &mut [String]) {
    dirs.sort_by_cached_key(|p| {
        (
            p.matches('/').count() + usize::from(!p.is_empty()),
            p.clone(),
        )
    });
}

/// Fresh trees with at most this many files are not stamped: the scan after the run hashes them.
const STAMP_MIN_FILES: usize = 64;
/// Longer than one tick of the kernel's coarse file-time clock.
const TIME_TICK: Duration = Duration::from_millis(20);

/// Builds the exec root for `spec` at `root` from blobs already in `store`: from `pooled`
/// (an idle root of the same tree, moved there) when given, else materialized afresh.
pub fn prepare(
    store: &dyn BlobStore,
    spec: &ActionSpec,
    root: &Path,
    pooled: Option<Pooled>,
) -> anyhow::Result<ExecRoot> {
    if fs::symlink_metadata(root).is_ok() {
        // Left over by a crash: never reuse it.
        remove_tree(root);
    }
    let mut origin = Origin::Fresh;
    let (baseline, index) = match pooled {
        Some(p) if p.baseline.input_root == spec.input_root => {
            fs::rename(&p.path, root)
                .with_context(|| format!("moving idle exec root {}", p.path.display()))?;
            origin = Origin::Reused;
            (p.baseline, p.index)
        }
        Some(p) => {
            // An idle root of another tree (an earlier snapshot, mostly): change what differs.
            fs::rename(&p.path, root)
                .with_context(|| format!("moving idle exec root {}", p.path.display()))?;
            let baseline = Arc::new(Baseline::of(store, spec.input_root)?);
            match crate::restore::reshape(store, root, &baseline.entries, &p.baseline.entries, &[])
            {
                Ok(()) => {
                    origin = Origin::Reshaped;
                    (baseline, p.index)
                }
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), "idle exec root not reusable for another tree");
                    remove_tree(root);
                    fresh(store, spec, root)?
                }
            }
        }
        None => fresh(store, spec, root)?,
    };
    let mut before = HashMap::new();
    let mut touched: HashSet<String> = HashSet::new();
    for input in &spec.inputs {
        touched.extend(ancestors(&input.path));
        // Not stamped: the scan after the run hashes these few files again.
        overlay(
            store,
            root,
            &input.path,
            &input.digest,
            input.executable,
            &mut before,
        )
        .with_context(|| format!("placing input {}", input.path))?;
    }
    let mut worker_dirs = HashSet::new();
    let cwd = if spec.working_dir.is_empty() {
        root.to_path_buf()
    } else {
        let comps = split_path(&spec.working_dir).context("working directory")?;
        let mut rel = String::new();
        for c in comps {
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(c);
            if fs::symlink_metadata(root.join(&rel)).is_err() {
                touched.extend(ancestors(&rel));
                worker_dirs.insert(rel.clone());
            }
        }
        let cwd = root.join(&spec.working_dir);
        fs::create_dir_all(&cwd)
            .with_context(|| format!("creating working directory {}", spec.working_dir))?;
        cwd
    };
    let before = InputView {
        baseline: baseline.clone(),
        overlay: before,
    };
    Ok(ExecRoot {
        worker_dirs,
        touched: touched.into_iter().collect(),
        origin,
        root: root.to_path_buf(),
        cwd,
        before,
        index,
        baseline,
    })
}

/// The directories above a relative path: `""`, `a`, `a/b` for `a/b/c`.
fn ancestors(rel: &str) -> Vec<String> {
    let comps: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut out = vec![String::new()];
    for i in 1..comps.len() {
        out.push(comps[..i].join("/"));
    }
    out
}

/// Materializes the input tree of `spec` at `root` and stamps it.
fn fresh(
    store: &dyn BlobStore,
    spec: &ActionSpec,
    root: &Path,
) -> anyhow::Result<(Arc<Baseline>, Index)> {
    materialize(
        store,
        &spec.input_root,
        root,
        MaterializeOptions {
            hard_links: false,
            replace_existing: false,
        },
    )
    .with_context(|| format!("materializing input root {}", spec.input_root))?;
    let baseline = Arc::new(Baseline::of(store, spec.input_root)?);
    let index = stamp_fresh(root, &baseline)?;
    Ok((baseline, index))
}

/// Stamps the files of a freshly materialized tree (when there are many), then waits until
/// the file clock moved on, so that a change the recipe makes can never carry the stamp taken
/// here (same size, same times).
fn stamp_fresh(root: &Path, baseline: &Baseline) -> anyhow::Result<Index> {
    let mut index = Index::in_memory();
    let files: Vec<(&String, &Digest)> = baseline
        .map
        .iter()
        .filter_map(|(p, b)| match b {
            Before::File { digest, .. } => Some((p, digest)),
            _ => None,
        })
        .collect();
    if files.len() <= STAMP_MIN_FILES {
        return Ok(index);
    }
    for (path, digest) in files {
        let abs = root.join(path);
        let meta = fs::symlink_metadata(&abs).with_context(|| format!("stat {}", abs.display()))?;
        index.record(path, &meta, *digest, true);
    }
    // Every file was written before this point; a tick later, any write has a later ctime.
    std::thread::sleep(TIME_TICK);
    Ok(index)
}

/// Writes the blob `digest` at `rel` over the tree: parents created (refusing to go through a
/// file or symlink), a file or symlink already there replaced.
fn overlay(
    store: &dyn BlobStore,
    root: &Path,
    rel: &str,
    digest: &Digest,
    executable: bool,
    before: &mut HashMap<String, Before>,
) -> anyhow::Result<()> {
    let comps = split_path(rel)?;
    let mut dir = root.to_path_buf();
    let mut dir_rel = String::new();
    for c in &comps[..comps.len().saturating_sub(1)] {
        dir.push(c);
        if !dir_rel.is_empty() {
            dir_rel.push('/');
        }
        dir_rel.push_str(c);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{dir_rel} is not a directory"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).with_context(|| format!("creating {dir_rel}"))?;
            }
            Err(e) => return Err(e).with_context(|| format!("stat {dir_rel}")),
        }
        before.insert(dir_rel.clone(), Before::Dir);
    }
    let dest = root.join(rel);
    match fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => bail!("a directory is in the way"),
        Ok(_) => fs::remove_file(&dest).context("replacing the file there")?,
        Err(_) => {}
    }
    write_blob(store, &dest, digest, executable)?;
    before.insert(
        rel.to_string(),
        Before::File {
            digest: *digest,
            executable,
        },
    );
    Ok(())
}

/// Writes the blob `digest` as a new file at `dest` (mode 0755 or 0644 whatever the umask).
pub(crate) fn write_blob(
    store: &dyn BlobStore,
    dest: &Path,
    digest: &Digest,
    executable: bool,
) -> anyhow::Result<()> {
    let mut src = store
        .open_read(digest)
        .context("reading the cache")?
        .with_context(|| format!("blob {digest} is not in the cache"))?;
    let mode = if executable { 0o755 } else { 0o644 };
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)
        .with_context(|| format!("creating {}", dest.display()))?;
    io::copy(&mut src, &mut out).with_context(|| format!("writing {}", dest.display()))?;
    // The umask may have narrowed the mode given at creation.
    fs::set_permissions(dest, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dest.display()))?;
    Ok(())
}

/// Removes a directory tree, making read-only directories writable first; failures are logged.
pub fn remove_tree(path: &Path) {
    if let Err(e) = fs::remove_dir_all(path) {
        if e.kind() == io::ErrorKind::NotFound {
            return;
        }
        // A recipe may have left directories without write permission.
        make_writable(path);
        if let Err(e) = fs::remove_dir_all(path) {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a directory");
        }
    }
}

fn make_writable(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(
        path,
        fs::Permissions::from_mode(meta.permissions().mode() | 0o700),
    );
    if let Ok(entries) = fs::read_dir(path) {
        for e in entries.flatten() {
            make_writable(&e.path());
        }
    }
}
