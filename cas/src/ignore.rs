//! `Ignore`: which paths a snapshot leaves out — `.git`, explicitly excluded paths (the store's
//! own directories, the index file) and glob patterns from a `.rmakeignore` file.
//!
//! Pattern lines follow a small subset of gitignore: blank lines and `#` comments are skipped;
//! `*`, `?` and `[...]` (with `!` or `^` to negate, `a-z` ranges) match within one path
//! component; `**` as a whole component matches any number of components; a pattern with no `/`
//! (other than a trailing one) matches the name at any depth, otherwise it is anchored at the
//! tree root; a trailing `/` matches directories only. Negation (`!pattern`) is not supported
//! and is reported as an error rather than silently misread.

use std::path::Path;

use crate::error::{CasError, Result};

/// Name of the per-tree ignore file read by [`Ignore::for_root`].
pub const IGNORE_FILE: &str = ".rmakeignore";

/// A set of ignore rules for one tree.
#[derive(Debug, Clone)]
pub struct Ignore {
    patterns: Vec<Pattern>,
    /// Exact relative paths that are left out (with everything under them).
    paths: Vec<String>,
}

#[derive(Debug, Clone)]
struct Pattern {
    comps: Vec<String>,
    anchored: bool,
    dir_only: bool,
}

impl Default for Ignore {
    fn default() -> Ignore {
        Ignore::new()
    }
}

impl Ignore {
    /// Rules that ignore only `.git` (at any depth).
    pub fn new() -> Ignore {
        let mut ig = Ignore {
            patterns: Vec::new(),
            paths: Vec::new(),
        };
        ig.patterns.push(Pattern {
            comps: vec![".git".into()],
            anchored: false,
            dir_only: false,
        });
        ig
    }

    /// The default rules plus the patterns of `<root>/.rmakeignore`, if that file exists.
    pub fn for_root(root: &Path) -> Result<Ignore> {
        let mut ig = Ignore::new();
        let file = root.join(IGNORE_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => ig.add_lines(&text, &file.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CasError::io("read", file, e)),
        }
        Ok(ig)
    }

    /// Adds the pattern lines of an ignore file; `origin` names the file in errors.
    pub fn add_lines(&mut self, text: &str, origin: &str) -> Result<()> {
        for (n, line) in text.lines().enumerate() {
            self.add_pattern(line).map_err(|e| match e {
                CasError::InvalidPath { path, reason } => CasError::InvalidPath {
                    path,
                    reason: format!("{origin}:{}: {reason}", n + 1),
                },
                other => other,
            })?;
        }
        Ok(())
    }

    /// Adds one pattern line (blank and `#` lines are accepted and ignored).
    pub fn add_pattern(&mut self, line: &str) -> Result<()> {
        let line = line.trim_end_matches(['\r', ' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        if line.starts_with('!') {
            return Err(CasError::InvalidPath {
                path: line.to_string(),
                reason: "negated patterns ('!') are not supported".into(),
            });
        }
        let dir_only = line.ends_with('/');
        let body = line.trim_end_matches('/');
        let anchored = body.contains('/');
        let body = body.trim_start_matches('/');
        if body.is_empty() {
            return Err(CasError::InvalidPath {
                path: line.to_string(),
                reason: "pattern matches nothing".into(),
            });
        }
        let comps: Vec<String> = body
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        self.patterns.push(Pattern {
            comps,
            anchored,
            dir_only,
        });
        Ok(())
    }

    /// Leaves out one exact relative path (and everything under it).
    pub fn add_path(&mut self, rel: &str) {
        let rel = rel.trim_matches('/');
        if !rel.is_empty() {
            self.paths.push(rel.to_string());
        }
    }

    /// Leaves out `abs` if it lies inside `root` (e.g. a store or index kept in the tree).
    pub fn exclude_abs(&mut self, root: &Path, abs: &Path) {
        let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        if let Ok(rel) = canon(abs).strip_prefix(canon(root)) {
            if let Some(rel) = rel.to_str() {
                self.add_path(rel);
            }
        }
    }

    /// Whether the relative path `rel` (with `/` separators) is ignored.
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        if self.paths.iter().any(|p| p == rel) {
            return true;
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let mut comps: Option<Vec<&str>> = None;
        self.patterns.iter().any(|p| {
            if p.dir_only && !is_dir {
                return false;
            }
            if p.anchored {
                match_path(
                    &p.comps,
                    comps.get_or_insert_with(|| rel.split('/').collect()),
                )
            } else {
                p.comps.len() == 1 && glob_match(p.comps[0].as_bytes(), name.as_bytes())
            }
        })
    }
}

/// Matches pattern components against path components, `**` spanning any number of them.
fn match_path(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_path(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, prest)) => {
                glob_match(first.as_bytes(), p.as_bytes()) && match_path(rest, prest)
            }
            None => false,
        },
    }
}

/// Matches one component against a glob with `*`, `?`, `[...]` and `\` escapes.
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    // Iterative with one backtrack point for the last `*`, so it is linear-ish, never exponential.
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(pat, p, s[i]) {
                        if matched {
                            p = next;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        // An unclosed '[' is a literal.
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pat.len() => {
                    if pat[p + 1] == s[i] {
                        p += 2;
                        i += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[i] {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pat[start] == '['`: `(matched, index after ']')`,
/// or `None` if the class is not closed.
fn class_match(pat: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = start + 1;
    let negate = matches!(pat.get(j), Some(b'!') | Some(b'^'));
    if negate {
        j += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *pat.get(j)?;
        if ch == b']' && !first {
            return Some((matched != negate, j + 1));
        }
        first = false;
        if pat.get(j + 1) == Some(&b'-') && pat.get(j + 2).is_some_and(|&e| e != b']') {
            let hi = pat[j + 2];
            if ch <= c && c <= hi {
                matched = true;
            }
            j += 3;
        } else {
            if ch == c {
                matched = true;
            }
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.o", b"main.o"));
        assert!(!glob_match(b"*.o", b"main.c"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(glob_match(b"[a-c]x", b"bx"));
        assert!(!glob_match(b"[!a-c]x", b"bx"));
        assert!(glob_match(b"*a*b*c", b"xxaybzzc"));
        assert!(!glob_match(b"*a*b*c", b"xxaybzz"));
        assert!(glob_match(b"\\*", b"*"));
        assert!(!glob_match(b"\\*", b"x"));
        assert!(glob_match(b"[x", b"[x"));
        assert!(glob_match(b"*", b""));
    }

    #[test]
    fn rules() {
        let mut ig = Ignore::new();
        ig.add_lines(
            "# comment\n\n*.o\nbuild/\n/out\ndocs/*.tmp\nlogs/**/x\n",
            "test",
        )
        .unwrap();
        assert!(ig.is_ignored(".git", true));
        assert!(ig.is_ignored("sub/.git", true));
        assert!(ig.is_ignored("a/b/c.o", false));
        assert!(ig.is_ignored("build", true));
        assert!(!ig.is_ignored("build", false), "dir-only pattern");
        assert!(ig.is_ignored("sub/build", true));
        assert!(ig.is_ignored("out", false));
        assert!(!ig.is_ignored("sub/out", false), "anchored pattern");
        assert!(ig.is_ignored("docs/a.tmp", false));
        assert!(!ig.is_ignored("docs/sub/a.tmp", false));
        assert!(ig.is_ignored("logs/x", false));
        assert!(ig.is_ignored("logs/a/b/x", false));
        assert!(!ig.is_ignored("main.c", false));
        ig.add_path("/.rmake/");
        assert!(ig.is_ignored(".rmake", true));
    }

    #[test]
    fn negation_is_an_error_with_a_line_number() {
        let err = Ignore::new()
            .add_lines("*.o\n!keep.o\n", ".rmakeignore")
            .unwrap_err();
        assert!(err.to_string().contains(".rmakeignore:2"), "{err}");
    }
}
