//! The view of an action: the files of its `input_root` with the `inputs` overlay on top, as
//! its recipe finds them in the exec root, and the digest a read entry has in it (a file's
//! content digest, a directory's listing digest, `None` when absent).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use rmake_cas::{Digest, FlatEntry, Node};
use rmake_proto::exec::{listing_digest, ReadEntry};
use rmake_proto::OutputFile;

/// Most symlinks followed while resolving one path (the kernel's limit).
const MAX_LINK_HOPS: usize = 40;

/// A flattened `input_root`: every path with its node, and every directory's names. Shared
/// (in [`super::trees::TreeViews`]) by every action of a build that has the same root.
#[derive(Debug, Default)]
pub struct BaseView {
    nodes: HashMap<String, Node>,
    /// Directory path (`""` for the root) → its entry names, sorted.
    names: HashMap<String, Vec<String>>,
}

impl BaseView {
    /// The view of a flattened tree (`rmake_cas::flatten` lists parents before children and
    /// siblings in name order, so every name list comes out sorted).
    pub fn from_flat(entries: Vec<FlatEntry>) -> BaseView {
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        names.insert(String::new(), Vec::new());
        let mut nodes = HashMap::with_capacity(entries.len());
        for e in entries {
            let (parent, name) = split_parent(&e.path);
            names
                .entry(parent.to_string())
                .or_default()
                .push(name.to_string());
            if matches!(e.node, Node::Directory { .. }) {
                names.entry(e.path.clone()).or_default();
            }
            nodes.insert(e.path, e.node);
        }
        for list in names.values_mut() {
            list.sort_unstable();
        }
        BaseView { nodes, names }
    }

    /// Paths in the tree.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// One action's view: a shared base tree and the action's own overlay of input files.
#[derive(Debug)]
pub struct View {
    base: Arc<BaseView>,
    files: HashMap<String, Digest>,
    /// Names the overlay adds to directories (its files and the directories leading to them).
    names: HashMap<String, BTreeSet<String>>,
}

impl View {
    /// The view of `base` with `inputs` placed over it.
    pub fn new(base: Arc<BaseView>, inputs: &[OutputFile]) -> View {
        let mut files = HashMap::with_capacity(inputs.len());
        let mut names: HashMap<String, BTreeSet<String>> = HashMap::new();
        for f in inputs {
            files.insert(f.path.clone(), f.digest);
            let mut path = f.path.as_str();
            loop {
                let (parent, name) = split_parent(path);
                names
                    .entry(parent.to_string())
                    .or_default()
                    .insert(name.to_string());
                if parent.is_empty() {
                    break;
                }
                path = parent;
            }
        }
        View { base, files, names }
    }

    /// The digest `path` (a read entry's path: a file, or a listing ending in `/`, the root's
    /// being `./`) has in this view.
    pub fn digest(&self, path: &str) -> Option<Digest> {
        if path == "./" {
            return self.listing("");
        }
        match path.strip_suffix('/') {
            Some(dir) => self.listing(dir),
            None => self.file(path, 0),
        }
    }

    /// The read entries of `paths` in this view, sorted by path, each once.
    pub fn entries(&self, paths: &[String]) -> Vec<ReadEntry> {
        let unique: BTreeSet<&String> = paths.iter().collect();
        unique
            .into_iter()
            .map(|p| ReadEntry {
                path: p.clone(),
                digest: self.digest(p),
            })
            .collect()
    }

    /// The entries of a stored read set whose digest differs in this view.
    pub fn mismatches<'a>(&self, entries: &'a [ReadEntry]) -> Vec<&'a ReadEntry> {
        entries
            .iter()
            .filter(|e| self.digest(&e.path) != e.digest)
            .collect()
    }

    /// Whether every entry of a stored read set has the same digest in this view.
    pub fn matches(&self, entries: &[ReadEntry]) -> bool {
        entries.iter().all(|e| self.digest(&e.path) == e.digest)
    }

    fn is_dir(&self, dir: &str) -> bool {
        dir.is_empty()
            || self.names.contains_key(dir)
            || matches!(self.base.nodes.get(dir), Some(Node::Directory { .. }))
    }

    /// The listing digest of a directory, `None` if it is not one in this view.
    fn listing(&self, dir: &str) -> Option<Digest> {
        if !self.is_dir(dir) {
            return None;
        }
        let base = self.base.names.get(dir).map(Vec::as_slice).unwrap_or(&[]);
        match self.names.get(dir) {
            None => Some(listing_digest(base.iter().map(String::as_str))),
            Some(extra) => {
                let all: BTreeSet<&str> = base
                    .iter()
                    .map(String::as_str)
                    .chain(extra.iter().map(String::as_str))
                    .collect();
                Some(listing_digest(all))
            }
        }
    }

    /// The content digest of a file; a symlink is followed inside the view (one that leaves
    /// it, or loops, stands for its own text); a directory opened as a file has its listing's.
    fn file(&self, path: &str, hops: usize) -> Option<Digest> {
        if let Some(d) = self.files.get(path) {
            return Some(*d);
        }
        match self.base.nodes.get(path) {
            Some(Node::File { digest, .. }) => Some(*digest),
            Some(Node::Directory { .. }) => self.listing(path),
            Some(Node::Symlink { target }) => {
                let (parent, _) = split_parent(path);
                match resolve(parent, target) {
                    Some(to) if hops < MAX_LINK_HOPS => self.file(&to, hops + 1),
                    _ => Some(Digest::of(format!("symlink\0{target}").as_bytes())),
                }
            }
            None if self.names.contains_key(path) => self.listing(path),
            None => None,
        }
    }
}

/// The root-relative path a link in `dir` with `target` points at; `None` if it is absolute
/// or climbs out of the root.
fn resolve(dir: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> FlatEntry {
        FlatEntry {
            path: path.into(),
            node: Node::File {
                digest: Digest::of(text.as_bytes()),
                executable: false,
            },
        }
    }

    fn dir(path: &str) -> FlatEntry {
        FlatEntry {
            path: path.into(),
            node: Node::Directory {
                digest: Digest::of(path.as_bytes()),
            },
        }
    }

    fn base() -> Arc<BaseView> {
        Arc::new(BaseView::from_flat(vec![
            file("Makefile", "all:"),
            dir("src"),
            dir("inc"),
            file("src/a.c", "int a;"),
            file("inc/a.h", "#define A"),
            FlatEntry {
                path: "inc/link.h".into(),
                node: Node::Symlink {
                    target: "a.h".into(),
                },
            },
        ]))
    }

    #[test]
    fn files_listings_overlay_and_links() {
        let v = View::new(
            base(),
            &[OutputFile {
                path: "gen/x.h".into(),
                digest: Digest::of(b"gen"),
                executable: false,
            }],
        );
        assert_eq!(v.digest("src/a.c"), Some(Digest::of(b"int a;")));
        assert_eq!(v.digest("inc/link.h"), Some(Digest::of(b"#define A")));
        assert_eq!(v.digest("gen/x.h"), Some(Digest::of(b"gen")));
        assert_eq!(v.digest("nope.h"), None);
        assert_eq!(v.digest("nope/"), None);
        assert_eq!(
            v.digest("./"),
            Some(listing_digest(["Makefile", "gen", "inc", "src"]))
        );
        assert_eq!(v.digest("inc/"), Some(listing_digest(["a.h", "link.h"])));
        assert_eq!(v.digest("gen/"), Some(listing_digest(["x.h"])));
        let e = v.entries(&["src/a.c".into(), "inc/".into(), "src/a.c".into()]);
        assert_eq!(
            e.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            ["inc/", "src/a.c"]
        );
        assert!(v.matches(&e));
        let plain = View::new(base(), &[]);
        assert_eq!(
            plain.digest("./"),
            Some(listing_digest(["Makefile", "inc", "src"]))
        );
        let gone = vec![ReadEntry {
            path: "gen/x.h".into(),
            digest: Some(Digest::of(b"gen")),
        }];
        assert_eq!(plain.mismatches(&gone).len(), 1);
    }

    #[test]
    fn an_input_over_a_tree_file_wins() {
        let v = View::new(
            base(),
            &[OutputFile {
                path: "src/a.c".into(),
                digest: Digest::of(b"generated"),
                executable: false,
            }],
        );
        assert_eq!(v.digest("src/a.c"), Some(Digest::of(b"generated")));
        assert_eq!(
            v.digest("src/"),
            Some(listing_digest(["a.c"])),
            "no new name"
        );
    }

    #[test]
    fn links_that_leave_the_root_stand_for_their_text() {
        assert_eq!(resolve("a/b", "../c"), Some("a/c".into()));
        assert_eq!(resolve("", "../c"), None);
        assert_eq!(resolve("a", "/etc/passwd"), None);
    }
}
