//! Walking a Merkle tree: `flatten` it into a path list, check that its symlinks stay inside,
//! and `diff` two flattened trees.

use std::collections::{BTreeMap, HashMap};

use crate::digest::Digest;
use crate::error::{CasError, Result};
use crate::store::BlobStore;
use crate::tree::{read_directory, Directory, Node};

/// Most entries `flatten` will produce; a DAG that shares subtrees can describe far more paths
/// than it has blobs, so a hostile tree is cut off here.
pub const MAX_ENTRIES: usize = 5_000_000;
/// Longest relative path accepted (PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// Most symlinks followed while resolving one link (like the kernel's limit).
const MAX_LINK_HOPS: usize = 40;

/// One path of a flattened tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatEntry {
    /// Relative path with `/` separators, never empty, never starting with `/`.
    pub path: String,
    /// What is there (for a directory, its node digest).
    pub node: Node,
}

/// Lists every path under `root`: parents before children, siblings in name order.
pub fn flatten(store: &dyn BlobStore, root: &Digest) -> Result<Vec<FlatEntry>> {
    let mut out = Vec::new();
    let mut cache: HashMap<Digest, Directory> = HashMap::new();
    // Explicit stack of (path prefix, directory digest) so depth cannot overflow the call stack.
    let mut stack: Vec<(String, Digest)> = vec![(String::new(), *root)];
    while let Some((prefix, digest)) = stack.pop() {
        let dir = match cache.get(&digest) {
            Some(d) => d.clone(),
            None => {
                let d = read_directory(store, &digest)?;
                cache.insert(digest, d.clone());
                d
            }
        };
        let mut children = Vec::new();
        for e in dir.entries() {
            let path = if prefix.is_empty() {
                e.name.clone()
            } else {
                format!("{prefix}/{}", e.name)
            };
            if path.len() > MAX_PATH {
                return Err(CasError::InvalidPath {
                    path,
                    reason: "path longer than 4096 bytes".into(),
                });
            }
            if out.len() >= MAX_ENTRIES {
                return Err(CasError::InvalidTree {
                    digest: *root,
                    reason: format!("more than {MAX_ENTRIES} entries"),
                });
            }
            if let Node::Directory { digest } = &e.node {
                children.push((path.clone(), *digest));
            }
            out.push(FlatEntry {
                path,
                node: e.node.clone(),
            });
        }
        // Pop in name order; entries of a child follow all of the parent's own entries, which
        // keeps "parents before children" (all that materialize needs).
        stack.extend(children.into_iter().rev());
    }
    Ok(out)
}

/// Refuses a tree with a symlink that is absolute or resolves (through the tree's own links)
/// outside the tree.
pub fn check_symlinks(entries: &[FlatEntry]) -> Result<()> {
    let map: HashMap<&str, &Node> = entries.iter().map(|e| (e.path.as_str(), &e.node)).collect();
    for e in entries {
        if let Node::Symlink { target } = &e.node {
            if let Err(reason) = resolve_link(&map, &e.path, target) {
                return Err(CasError::InvalidPath {
                    path: format!("{} -> {target}", e.path),
                    reason,
                });
            }
        }
    }
    Ok(())
}

/// Where the symlink at `link_path` with `target` points, as tree components; an error if it
/// leaves the tree. Dangling links that stay inside are fine.
pub fn resolve_link(
    map: &HashMap<&str, &Node>,
    link_path: &str,
    target: &str,
) -> Result<Vec<String>, String> {
    let mut parent: Vec<String> = link_path.split('/').map(str::to_string).collect();
    parent.pop();
    let mut hops = 0;
    resolve_from(map, parent, target, &mut hops)
}

fn resolve_from(
    map: &HashMap<&str, &Node>,
    mut cur: Vec<String>,
    target: &str,
    hops: &mut usize,
) -> Result<Vec<String>, String> {
    if target.starts_with('/') {
        return Err("symlink target is absolute".into());
    }
    *hops += 1;
    if *hops > MAX_LINK_HOPS {
        return Err("too many levels of symbolic links".into());
    }
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if cur.pop().is_none() {
                    return Err("symlink escapes the tree".into());
                }
            }
            name => {
                cur.push(name.to_string());
                if let Some(Node::Symlink { target: next }) = map.get(cur.join("/").as_str()) {
                    cur.pop();
                    cur = resolve_from(map, cur, next, hops)?;
                }
            }
        }
    }
    Ok(cur)
}

/// One difference between two flattened trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Only in the new tree.
    Added(FlatEntry),
    /// Only in the old tree.
    Removed(FlatEntry),
    /// In both, with a different node (content, kind, mode or target).
    Modified {
        /// The old entry.
        old: FlatEntry,
        /// The new entry.
        new: FlatEntry,
    },
}

impl Change {
    /// The path this change is about.
    pub fn path(&self) -> &str {
        match self {
            Change::Added(e) | Change::Removed(e) => &e.path,
            Change::Modified { new, .. } => &new.path,
        }
    }
}

/// The changes from `old` to `new`, sorted by path. Directories whose node digest changed are
/// reported as modified too (their contents' changes are listed separately).
pub fn diff(old: &[FlatEntry], new: &[FlatEntry]) -> Vec<Change> {
    let old_map: BTreeMap<&str, &FlatEntry> = old.iter().map(|e| (e.path.as_str(), e)).collect();
    let new_map: BTreeMap<&str, &FlatEntry> = new.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut out = Vec::new();
    for (path, o) in &old_map {
        match new_map.get(path) {
            None => out.push(Change::Removed((*o).clone())),
            Some(n) if n.node != o.node => out.push(Change::Modified {
                old: (*o).clone(),
                new: (*n).clone(),
            }),
            Some(_) => {}
        }
    }
    for (path, n) in &new_map {
        if !old_map.contains_key(path) {
            out.push(Change::Added((*n).clone()));
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(path: &str, target: &str) -> FlatEntry {
        FlatEntry {
            path: path.into(),
            node: Node::Symlink {
                target: target.into(),
            },
        }
    }
    fn dir(path: &str) -> FlatEntry {
        FlatEntry {
            path: path.into(),
            node: Node::Directory {
                digest: Digest::EMPTY,
            },
        }
    }

    #[test]
    fn links_inside_are_accepted() {
        let t = vec![
            dir("a"),
            dir("a/b"),
            link("a/b/up", "../x"),
            link("top", "a/b"),
            link("dot", "."),
            link("dangling", "nope/../y"),
        ];
        check_symlinks(&t).unwrap();
    }

    #[test]
    fn escaping_links_are_refused() {
        for (p, t) in [
            ("l", "/etc/passwd"),
            ("l", ".."),
            ("a/l", "../../x"),
            ("l", "a/../../x"),
        ] {
            let err = check_symlinks(&[dir("a"), link(p, t)]).unwrap_err();
            assert!(matches!(err, CasError::InvalidPath { .. }), "{p} -> {t}");
        }
    }

    #[test]
    fn escapes_through_other_links_are_refused() {
        // `d` is the root itself, so `d/..` is outside even though it looks like the root.
        let err = check_symlinks(&[link("d", "."), link("x", "d/..")]).unwrap_err();
        assert!(err.to_string().contains("escapes"), "{err}");
        // A link into a subdirectory used to climb twice.
        check_symlinks(&[dir("a"), dir("a/b"), link("d", "a/b"), link("x", "d/../..")]).unwrap();
        assert!(check_symlinks(&[
            dir("a"),
            dir("a/b"),
            link("d", "a/b"),
            link("x", "d/../../..")
        ])
        .is_err());
        // Loops are refused rather than followed forever.
        assert!(check_symlinks(&[link("p", "q/x"), link("q", "p/x")]).is_err());
    }

    #[test]
    fn diff_reports_added_removed_modified() {
        let f = |p: &str, data: &[u8]| FlatEntry {
            path: p.into(),
            node: Node::File {
                digest: Digest::of(data),
                executable: false,
            },
        };
        let old = vec![f("a", b"1"), f("b", b"2"), f("c", b"3")];
        let new = vec![f("a", b"1"), f("b", b"changed"), f("d", b"4")];
        let changes = diff(&old, &new);
        let paths: Vec<&str> = changes.iter().map(Change::path).collect();
        assert_eq!(paths, ["b", "c", "d"]);
        assert!(matches!(changes[0], Change::Modified { .. }));
        assert!(matches!(changes[1], Change::Removed(_)));
        assert!(matches!(changes[2], Change::Added(_)));
    }
}
