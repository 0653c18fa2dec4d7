//! Resetting a used exec root to its input tree, so the next action on the same tree skips
//! materializing it again: everything the action added goes (its overlay, outputs, new
//! directories, special files), every tree entry it changed, removed or re-moded is written
//! again from the blob cache. Whatever cannot be put back exactly (a `.git` the scan does not
//! see, an error) makes the caller discard the root instead. When the output scan was bounded
//! to the directories that changed, so is the reset.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context};

use rmake_cas::{BlobStore, FlatEntry, Node};

use crate::exec_root::{remove_tree, write_blob, Before, ExecRoot};

/// Mode of the directories `materialize` creates (before the umask, which it does not undo).
const DIR_MODE: u32 = 0o755;

/// Resets `exec` to its baseline, given the scan of the root after the run (`after`) and the
/// paths that scan left out (`skipped`). `scanned_dirs`: the directories the scan was bounded
/// to (`after` holds only their entries; everything else is known untouched), or `None` when
/// it covered the whole root.
pub fn restore(
    store: &dyn BlobStore,
    exec: &ExecRoot,
    after: &[FlatEntry],
    skipped: &[String],
    scanned_dirs: Option<&BTreeSet<String>>,
) -> anyhow::Result<()> {
    match scanned_dirs {
        Some(dirs) => reshape_in(
            store,
            &exec.root,
            &exec.baseline.entries,
            after,
            skipped,
            Some((dirs, &exec.baseline.map)),
        ),
        None => reshape(store, &exec.root, &exec.baseline.entries, after, skipped),
    }
}

/// Makes the tree at `root`, which holds `after` (and the left-out `skipped` paths), hold
/// exactly `base`: also how an idle root of one tree becomes a root of another.
pub fn reshape(
    store: &dyn BlobStore,
    root: &Path,
    base: &[FlatEntry],
    after: &[FlatEntry],
    skipped: &[String],
) -> anyhow::Result<()> {
    reshape_in(store, root, base, after, skipped, None)
}

/// [`reshape`], looking only at the entries of the directories `scope` (and of those it has
/// to create again) when given, with `base` by path.
fn reshape_in(
    store: &dyn BlobStore,
    root: &Path,
    base: &[FlatEntry],
    after: &[FlatEntry],
    skipped: &[String],
    scope: Option<(&BTreeSet<String>, &HashMap<String, Before>)>,
) -> anyhow::Result<()> {
    // Directories whose entries are checked against the tree (all when `None`); grows with
    // the directories created again.
    let mut open: Option<HashSet<&str>> =
        scope.map(|(s, _)| s.iter().map(String::as_str).collect());
    let base_paths: HashMap<&str, &Node> = if scope.is_some() {
        HashMap::new()
    } else {
        base.iter().map(|e| (e.path.as_str(), &e.node)).collect()
    };
    let in_base = |p: &str| match scope {
        Some((_, map)) => map.contains_key(p),
        None => base_paths.contains_key(p),
    };
    let after_map: HashMap<&str, &Node> =
        after.iter().map(|e| (e.path.as_str(), &e.node)).collect();

    // The scan never sees `.git`: refuse to reuse a root where one appeared (a bounded scan
    // lists every directory where a name appeared).
    let dirs: Vec<&str> = match &open {
        Some(o) => o.iter().copied().collect(),
        None => std::iter::once("")
            .chain(
                after
                    .iter()
                    .filter(|e| matches!(e.node, Node::Directory { .. }))
                    .map(|e| e.path.as_str()),
            )
            .collect(),
    };
    for d in dirs {
        let git = if d.is_empty() {
            root.join(".git")
        } else {
            root.join(d).join(".git")
        };
        if fs::symlink_metadata(&git).is_ok() {
            bail!("{} appeared", git.display());
        }
    }

    // Directories of the tree writable again first, so what is inside can be removed.
    set_mode(root, DIR_MODE)?;
    for e in base {
        if let Node::Directory { .. } = e.node {
            if open.as_ref().is_some_and(|o| !o.contains(e.path.as_str())) {
                continue;
            }
            let abs = root.join(&e.path);
            if let Ok(m) = fs::symlink_metadata(&abs) {
                if m.is_dir() && m.permissions().mode() & 0o7777 != DIR_MODE {
                    set_mode(&abs, DIR_MODE)?;
                }
            }
        }
    }

    // Whatever is not in the tree goes, topmost paths only.
    let mut extra: Vec<&str> = after
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| !in_base(p))
        .chain(skipped.iter().map(String::as_str))
        .collect();
    extra.sort_unstable();
    let mut last_removed: Option<&str> = None;
    for p in extra {
        if let Some(parent) = last_removed {
            if p.len() > parent.len() && p.starts_with(parent) && p.as_bytes()[parent.len()] == b'/'
            {
                continue;
            }
        }
        remove_path(&root.join(p))?;
        last_removed = Some(p);
    }

    for e in base {
        if let Some(o) = &open {
            let parent = e.path.rsplit_once('/').map_or("", |(p, _)| p);
            if !o.contains(parent) {
                continue;
            }
        }
        let abs = root.join(&e.path);
        let now = fs::symlink_metadata(&abs).ok();
        match &e.node {
            Node::Directory { .. } => match now {
                Some(m) if m.is_dir() => {
                    if m.permissions().mode() & 0o7777 != DIR_MODE {
                        set_mode(&abs, DIR_MODE)?;
                    }
                }
                other => {
                    if other.is_some() {
                        remove_path(&abs)?;
                    }
                    fs::create_dir(&abs).with_context(|| format!("creating {}", abs.display()))?;
                    set_mode(&abs, DIR_MODE)?;
                    // Everything the tree has in it is to be written.
                    if let Some(o) = &mut open {
                        o.insert(e.path.as_str());
                    }
                }
            },
            Node::File { digest, executable } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                let same_content = after_map.get(e.path.as_str()) == Some(&&e.node);
                match now {
                    Some(m) if m.is_file() && same_content => {
                        if m.permissions().mode() & 0o7777 != mode {
                            set_mode(&abs, mode)?;
                        }
                    }
                    other => {
                        if other.is_some() {
                            remove_path(&abs)?;
                        }
                        write_blob(store, &abs, digest, *executable)?;
                    }
                }
            }
            Node::Symlink { target } => {
                let same = now.as_ref().is_some_and(|m| m.file_type().is_symlink())
                    && fs::read_link(&abs).ok().as_deref() == Some(std::path::Path::new(target));
                if !same {
                    if now.is_some() {
                        remove_path(&abs)?;
                    }
                    std::os::unix::fs::symlink(target, &abs)
                        .with_context(|| format!("creating symlink {}", abs.display()))?;
                }
            }
        }
    }
    Ok(())
}

fn set_mode(path: &std::path::Path, mode: u32) -> anyhow::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// Removes a file, symlink or whole directory at `path`.
fn remove_path(path: &std::path::Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            remove_tree(path);
            if fs::symlink_metadata(path).is_ok() {
                bail!("could not remove {}", path.display());
            }
            Ok(())
        }
        Ok(_) => fs::remove_file(path).with_context(|| format!("removing {}", path.display())),
        Err(_) => Ok(()),
    }
}
