//! What a build left behind: every file, directory and symlink of a tree with its content
//! (tree paths normalised to `<TREE>`), and a readable diff between two such snapshots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Dir,
    /// A file compared by content (and executable bit).
    File {
        /// The content, with the tree's absolute path replaced by `<TREE>` when it is text.
        content: Vec<u8>,
        /// Whether any executable bit is set.
        executable: bool,
    },
    /// A file whose content is not compared (compiler output).
    Exists,
    /// A symbolic link and its target.
    Symlink(String),
}

/// A tree: relative path (`/`-separated) to entry.
pub type Snapshot = BTreeMap<String, Entry>;

/// Whether `pattern` (`*` matches any run of characters) matches `text`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Whether `rel` is named by one of `patterns` (a pattern without `/` also matches a base name).
pub fn is_nocontent(patterns: &[String], rel: &str) -> bool {
    let base = rel.rsplit('/').next().unwrap_or(rel);
    patterns
        .iter()
        .any(|p| glob_match(p, rel) || (!p.contains('/') && glob_match(p, base)))
}

/// Whether the client may keep private state here (ignored by comparisons).
fn is_private(rel: &str) -> bool {
    rel.split('/')
        .next()
        .is_some_and(|c| c.starts_with(".rmake"))
}

/// Reads the tree `root`.
pub fn take(root: &Path, nocontent: &[String]) -> Result<Snapshot> {
    let mut out = Snapshot::new();
    let tree = root.to_string_lossy().into_owned();
    walk(root, "", &tree, nocontent, &mut out)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    tree: &str,
    nocontent: &[String],
    out: &mut Snapshot,
) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.context("reading directory entry")?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{prefix}{name}");
        if is_private(&rel) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().context("file type")?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).context("reading link")?;
            out.insert(
                rel,
                Entry::Symlink(target.to_string_lossy().replace(tree, "<TREE>")),
            );
        } else if kind.is_dir() {
            out.insert(rel.clone(), Entry::Dir);
            walk(&path, &format!("{rel}/"), tree, nocontent, out)?;
        } else if is_nocontent(nocontent, &rel) {
            out.insert(rel, Entry::Exists);
        } else {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let content = match String::from_utf8(bytes) {
                Ok(text) => text.replace(tree, "<TREE>").into_bytes(),
                Err(e) => e.into_bytes(),
            };
            let mode = entry.metadata().context("metadata")?.permissions().mode();
            out.insert(
                rel,
                Entry::File {
                    content,
                    executable: mode & 0o111 != 0,
                },
            );
        }
    }
    Ok(())
}

fn describe(e: &Entry) -> String {
    match e {
        Entry::Dir => "directory".into(),
        Entry::Exists => "file (content not compared)".into(),
        Entry::Symlink(t) => format!("symlink -> {t}"),
        Entry::File {
            content,
            executable,
        } => {
            let x = if *executable { " (executable)" } else { "" };
            match std::str::from_utf8(content) {
                Ok(t) if t.len() <= 400 => format!("file{x}: {t:?}"),
                _ => format!("file{x}: {} bytes", content.len()),
            }
        }
    }
}

/// The differences between `expected` (make's tree) and `actual` (rmake's), one line each;
/// empty when they agree.
pub fn diff(expected: &Snapshot, actual: &Snapshot) -> String {
    let mut out = String::new();
    for (path, e) in expected {
        match actual.get(path) {
            None => {
                let _ = writeln!(out, "  missing {path}: make left {}", describe(e));
            }
            Some(a) if a != e => {
                let _ = writeln!(
                    out,
                    "  differs {path}: make {} / rmake {}",
                    describe(e),
                    describe(a)
                );
            }
            Some(_) => {}
        }
    }
    for (path, a) in actual {
        if !expected.contains_key(path) {
            let _ = writeln!(out, "  extra   {path}: rmake left {}", describe(a));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.o", "a.o"));
        assert!(glob_match("*.o", "src/a.o"));
        assert!(!glob_match("*.o", "a.c"));
        assert!(glob_match("a*b*c", "aXXbYc"));
        assert!(is_nocontent(&["*.o".into()], "lib/x.o"));
        assert!(is_nocontent(&["app".into()], "build/app"));
        assert!(!is_nocontent(&["build/app".into()], "app"));
    }
}
