//! File-name globbing (`*`, `?`, `[...]`) through the `Host`, as make's `$(wildcard)` and wildcard
//! targets/prerequisites use it: results of one pattern sorted, hidden files only for `.` patterns.

use crate::host::Host;

fn has_meta(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Shell-style matching of one path component.
pub fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    if !name.is_empty() && name[0] == b'.' && pat.first() != Some(&b'.') {
        return false;
    }
    match_from(pat, name)
}

fn match_from(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((ok, next)) = class(pat, p, name[n]) {
                        if ok {
                            p = next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pat.len() => {
                    if pat[p + 1] == name[n] {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c => {
                    if c == name[n] {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

/// Match `c` against the bracket expression at `pat[p]`; `None` if it is not closed.
fn class(pat: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = p + 1;
    let negate = i < pat.len() && (pat[i] == b'!' || pat[i] == b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pat.len() {
        if pat[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = pat[i];
        if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
            if lo <= c && c <= pat[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// Whether `path` names a directory entry, even a dangling symlink (make's glob uses lstat): the mtime
/// when it resolves, else a look at the parent directory's listing.
fn exists_no_follow(host: &mut dyn Host, path: &str) -> bool {
    if host.mtime(path).is_some() {
        return true;
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() != path.len() || trimmed.is_empty() {
        return false;
    }
    let (dir, base) = match trimmed.rfind('/') {
        Some(0) => ("/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (".", trimmed),
    };
    if base == "." || base == ".." {
        return false;
    }
    host.list_dir(dir)
        .is_ok_and(|names| names.iter().any(|n| n == base))
}

impl crate::db::Database {
    /// make's tilde expansion of a file name: `~` and `~/...` start at `$(HOME)` (expanded, else the
    /// environment's HOME; make's last resort, the password entry of its uid, is not tried), `~user`
    /// and `~user/...` at that user's home as `/etc/passwd` gives it. Anything else stays as is.
    pub(crate) fn tilde<'a>(
        &mut self,
        host: &mut dyn Host,
        word: &'a str,
    ) -> std::borrow::Cow<'a, str> {
        let Some(rest) = word.strip_prefix('~') else {
            return std::borrow::Cow::Borrowed(word);
        };
        let (user, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let home = if user.is_empty() {
            // An empty $(HOME) falls back to the environment's HOME, as in make.
            self.expand(host, "$(HOME)", &crate::db::Scope::GLOBAL)
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    let env = self.state.env.iter().rev();
                    env.into_iter()
                        .find(|(k, _)| k == "HOME")
                        .map(|(_, v)| v.clone())
                        .filter(|h| !h.is_empty())
                })
        } else {
            passwd_home(host, user)
        };
        match home {
            Some(h) => std::borrow::Cow::Owned(format!("{h}{tail}")),
            None => std::borrow::Cow::Borrowed(word),
        }
    }
}

/// The home directory of `user` in `/etc/passwd` (make asks getpwnam).
fn passwd_home(host: &mut dyn Host, user: &str) -> Option<String> {
    let text = host.read_file("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(':').collect();
        (fields.len() >= 7 && fields[0] == user).then(|| fields[5].to_string())
    })
}

/// The names matching `pattern`, sorted; a pattern without wildcards gives itself if it exists.
pub fn glob(host: &mut dyn Host, pattern: &str) -> Vec<String> {
    if !has_meta(pattern) {
        let p = unescape(pattern);
        let base = p.trim_end_matches('/');
        if base.len() != p.len() && !base.is_empty() {
            // `name/`: a directory keeps one slash, a file loses them (as make's glob answers).
            if host.is_dir(base) {
                return vec![format!("{base}/")];
            }
            return if host.mtime(base).is_some() {
                vec![base.to_string()]
            } else {
                Vec::new()
            };
        }
        return if exists_no_follow(host, &p) {
            vec![p]
        } else {
            Vec::new()
        };
    }
    let (mut cur, rest) = match pattern.strip_prefix('/') {
        Some(r) => (vec!["/".to_string()], r),
        None => (vec![String::new()], pattern),
    };
    let comps: Vec<&str> = rest.split('/').collect();
    let n = comps.len();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == n;
        let mut next = Vec::new();
        for prefix in &cur {
            if comp.is_empty() {
                // `a//b` or a trailing slash: nothing to match at this level.
                next.push(prefix.clone());
                continue;
            }
            if !has_meta(comp) {
                let p = format!("{prefix}{}", unescape(comp));
                if !last {
                    next.push(format!("{p}/"));
                } else if host.mtime(&p).is_some() {
                    next.push(p);
                }
                continue;
            }
            let dir = if prefix.is_empty() {
                ".".to_string()
            } else {
                prefix.clone()
            };
            let Ok(mut entries) = host.list_dir(&dir) else {
                continue;
            };
            entries.sort();
            for e in entries {
                if !fnmatch(comp.as_bytes(), e.as_bytes()) {
                    continue;
                }
                let p = format!("{prefix}{e}");
                if last {
                    next.push(p);
                } else if host.is_dir(&p) {
                    next.push(format!("{p}/"));
                }
            }
        }
        cur = next;
        if cur.is_empty() {
            break;
        }
    }
    if pattern.ends_with('/') {
        cur.retain(|p| host.is_dir(p.trim_end_matches('/')));
    }
    cur.sort();
    cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::MemHost;

    #[test]
    fn matching() {
        assert!(fnmatch(b"*.c", b"a.c"));
        assert!(!fnmatch(b"*.c", b".a.c"));
        assert!(fnmatch(b"a?[0-9]", b"ab7"));
        assert!(fnmatch(b"[!x]*", b"y"));
        assert!(!fnmatch(b"[!x]*", b"x"));
    }

    #[test]
    fn globbing() {
        let mut h = MemHost::new()
            .with_file("src/b.c", "")
            .with_file("src/a.c", "")
            .with_file("src/x/c.c", "");
        assert_eq!(glob(&mut h, "src/*.c"), vec!["src/a.c", "src/b.c"]);
        assert_eq!(glob(&mut h, "*/*/*.c"), vec!["src/x/c.c"]);
        assert_eq!(glob(&mut h, "src/a.c"), vec!["src/a.c"]);
        assert!(glob(&mut h, "nope/*.c").is_empty());
    }
}
