//! `TreeBuilder`: build or edit a Merkle tree by path — insert files, symlinks and whole
//! subtrees, remove paths — and write the result to a store. Used to assemble exec roots
//! (a snapshot plus the outputs of prerequisites) and output trees.
//!
//! Subtrees that an edit does not reach stay as their digest and are never read.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::error::{CasError, Result};
use crate::store::BlobStore;
use crate::tree::{read_directory, validate_name, validate_target, Directory, Entry, Node};
use crate::walk::MAX_PATH;

/// Splits a relative path from the wire or a caller into validated components: no empty
/// components, no `.` or `..`, not absolute, not empty, at most 4096 bytes.
pub fn split_path(path: &str) -> Result<Vec<&str>> {
    let bad = |reason: &str| CasError::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return Err(bad("empty path"));
    }
    if path.starts_with('/') {
        return Err(bad("absolute path"));
    }
    if path.len() > MAX_PATH {
        return Err(bad("path longer than 4096 bytes"));
    }
    let comps: Vec<&str> = path.split('/').collect();
    for c in &comps {
        validate_name(c).map_err(|e| match e {
            CasError::InvalidPath { reason, .. } => bad(&reason),
            other => other,
        })?;
    }
    Ok(comps)
}

enum BNode {
    /// A file or symlink.
    Leaf(Node),
    /// A directory being edited.
    Dir(BTreeMap<String, BNode>),
    /// A directory left as stored.
    Stored(Digest),
}

/// A tree under construction. See the module docs.
pub struct TreeBuilder {
    root: BTreeMap<String, BNode>,
}

impl Default for TreeBuilder {
    fn default() -> TreeBuilder {
        TreeBuilder::new()
    }
}

fn expand(store: &dyn BlobStore, digest: &Digest) -> Result<BTreeMap<String, BNode>> {
    let dir = read_directory(store, digest)?;
    Ok(dir
        .entries()
        .iter()
        .map(|e| {
            let node = match &e.node {
                Node::Directory { digest } => BNode::Stored(*digest),
                leaf => BNode::Leaf(leaf.clone()),
            };
            (e.name.clone(), node)
        })
        .collect())
}

impl TreeBuilder {
    /// An empty tree.
    pub fn new() -> TreeBuilder {
        TreeBuilder {
            root: BTreeMap::new(),
        }
    }

    /// Starts from the stored tree `root` (only its top node is read now).
    pub fn from_tree(store: &dyn BlobStore, root: &Digest) -> Result<TreeBuilder> {
        Ok(TreeBuilder {
            root: expand(store, root)?,
        })
    }

    /// The editable directory at `comps`, creating missing directories and reading stored ones.
    fn dir_mut<'a>(
        &'a mut self,
        store: &dyn BlobStore,
        path: &str,
        comps: &[&str],
        create: bool,
    ) -> Result<Option<&'a mut BTreeMap<String, BNode>>> {
        let mut cur = &mut self.root;
        for c in comps {
            if !cur.contains_key(*c) {
                if !create {
                    return Ok(None);
                }
                cur.insert(c.to_string(), BNode::Dir(BTreeMap::new()));
            }
            let slot = match cur.get_mut(*c) {
                Some(s) => s,
                None => return Ok(None),
            };
            if let BNode::Stored(d) = slot {
                *slot = BNode::Dir(expand(store, d)?);
            }
            cur = match slot {
                BNode::Dir(children) => children,
                _ => {
                    return Err(CasError::InvalidPath {
                        path: path.to_string(),
                        reason: format!("{c:?} is not a directory"),
                    })
                }
            };
        }
        Ok(Some(cur))
    }

    /// Puts `node` at `path`, creating parent directories and replacing whatever was there
    /// (a whole directory included). A parent that is a file or symlink is an error.
    pub fn insert(&mut self, store: &dyn BlobStore, path: &str, node: Node) -> Result<()> {
        let comps = split_path(path)?;
        if let Node::Symlink { target } = &node {
            validate_target(target)?;
        }
        let (name, parents) = comps.split_last().ok_or_else(|| CasError::InvalidPath {
            path: path.to_string(),
            reason: "empty path".into(),
        })?;
        let dir =
            self.dir_mut(store, path, parents, true)?
                .ok_or_else(|| CasError::InvalidPath {
                    path: path.to_string(),
                    reason: "parent missing".into(),
                })?;
        let bnode = match node {
            Node::Directory { digest } => BNode::Stored(digest),
            leaf => BNode::Leaf(leaf),
        };
        dir.insert(name.to_string(), bnode);
        Ok(())
    }

    /// Creates an empty directory at `path` (and its parents) unless one is there.
    pub fn mkdir(&mut self, store: &dyn BlobStore, path: &str) -> Result<()> {
        let comps = split_path(path)?;
        self.dir_mut(store, path, &comps, true).map(|_| ())
    }

    /// Removes `path` (a directory with everything under it); `Ok(false)` if it was absent.
    pub fn remove(&mut self, store: &dyn BlobStore, path: &str) -> Result<bool> {
        let comps = split_path(path)?;
        let Some((name, parents)) = comps.split_last() else {
            return Ok(false);
        };
        match self.dir_mut(store, path, parents, false) {
            Ok(Some(dir)) => Ok(dir.remove(*name).is_some()),
            Ok(None) => Ok(false),
            // A file where a parent directory would be: nothing to remove there.
            Err(CasError::InvalidPath { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Encodes the tree, stores every new directory node in one batch, and returns the root.
    pub fn write(self, store: &dyn BlobStore) -> Result<Digest> {
        let mut nodes: Vec<(Digest, Vec<u8>)> = Vec::new();
        let root = encode(self.root, &mut nodes)?;
        let refs: Vec<(Digest, &[u8])> = nodes.iter().map(|(d, b)| (*d, b.as_slice())).collect();
        for r in store.put_many(&refs) {
            r?;
        }
        Ok(root)
    }
}

fn encode(children: BTreeMap<String, BNode>, out: &mut Vec<(Digest, Vec<u8>)>) -> Result<Digest> {
    let mut entries = Vec::with_capacity(children.len());
    for (name, child) in children {
        let node = match child {
            BNode::Leaf(n) => n,
            BNode::Stored(digest) => Node::Directory { digest },
            BNode::Dir(grand) => Node::Directory {
                digest: encode(grand, out)?,
            },
        };
        entries.push(Entry { name, node });
    }
    let bytes = Directory::from_entries(entries)?.encode();
    let digest = Digest::of(&bytes);
    out.push((digest, bytes));
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_store::MemoryStore;
    use crate::walk::flatten;

    fn file(store: &MemoryStore, data: &[u8]) -> Node {
        Node::File {
            digest: store.put_bytes(data).unwrap_or(Digest::EMPTY),
            executable: false,
        }
    }

    fn paths(store: &MemoryStore, root: &Digest) -> Vec<String> {
        flatten(store, root)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn split_path_refuses_unsafe_paths() {
        for bad in [
            "", "/a", "a//b", "a/", "./a", "a/../b", "..", "a/./b", "a\0b",
        ] {
            assert!(split_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(split_path("a/b.c/d").unwrap(), ["a", "b.c", "d"]);
    }

    #[test]
    fn build_edit_and_overlay() {
        let s = MemoryStore::new();
        let mut b = TreeBuilder::new();
        b.insert(&s, "src/main.c", file(&s, b"main")).unwrap();
        b.insert(&s, "src/lib/a.c", file(&s, b"a")).unwrap();
        b.insert(
            &s,
            "link",
            Node::Symlink {
                target: "src/main.c".into(),
            },
        )
        .unwrap();
        b.mkdir(&s, "out").unwrap();
        let base = b.write(&s).unwrap();
        assert_eq!(
            paths(&s, &base),
            ["link", "out", "src", "src/lib", "src/main.c", "src/lib/a.c"]
        );

        // Overlay outputs onto the base without reading untouched subtrees.
        let mut b = TreeBuilder::from_tree(&s, &base).unwrap();
        b.insert(&s, "out/main.o", file(&s, b"obj")).unwrap();
        b.insert(&s, "src/main.c", file(&s, b"main v2")).unwrap();
        assert!(b.remove(&s, "link").unwrap());
        assert!(!b.remove(&s, "nope/x").unwrap());
        assert!(
            b.insert(&s, "src/main.c/x", file(&s, b"x")).is_err(),
            "a file is not a directory"
        );
        let edited = b.write(&s).unwrap();
        assert_eq!(
            paths(&s, &edited),
            [
                "out",
                "src",
                "out/main.o",
                "src/lib",
                "src/main.c",
                "src/lib/a.c"
            ]
        );

        // Rebuilding the same content from scratch gives the same root.
        let mut b = TreeBuilder::new();
        b.insert(&s, "src/lib/a.c", file(&s, b"a")).unwrap();
        b.insert(&s, "src/main.c", file(&s, b"main v2")).unwrap();
        b.insert(&s, "out/main.o", file(&s, b"obj")).unwrap();
        assert_eq!(b.write(&s).unwrap(), edited);

        // A whole subtree can be grafted by digest.
        let mut b = TreeBuilder::new();
        let src = flatten(&s, &edited)
            .unwrap()
            .into_iter()
            .find(|e| e.path == "src")
            .unwrap();
        b.insert(&s, "vendor/src", src.node).unwrap();
        let grafted = b.write(&s).unwrap();
        assert!(paths(&s, &grafted).contains(&"vendor/src/lib/a.c".to_string()));
    }
}
