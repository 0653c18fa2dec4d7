//! Does a file exist? Answered from cached directory listings (one `list_dir` per directory, as
//! make's dir.c does), so implicit-rule search over thousands of files costs hash lookups.

use crate::vars::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::build::pattern::dir_part;
use crate::host::Host;

/// Cached directory listings, by directory ("" for the current one).
#[derive(Default)]
pub(crate) struct DirCache {
    dirs: HashMap<String, Option<HashSet<String>>>,
}

impl DirCache {
    /// Whether `path` names an existing file or directory.
    pub(crate) fn exists(&mut self, host: &mut dyn Host, path: &str) -> bool {
        if path.is_empty() {
            return false;
        }
        let dir = dir_part(path);
        let base = &path[dir.len()..];
        if base.is_empty()
            || base == "."
            || base == ".."
            || path.contains("/./")
            || path.contains("/../")
        {
            return host.mtime(path).is_some();
        }
        let key = dir.trim_end_matches('/');
        let key = if key.is_empty() && !dir.is_empty() {
            "/"
        } else {
            key
        };
        if !self.dirs.contains_key(key) {
            let listing = host
                .list_dir(if key.is_empty() { "." } else { key })
                .ok()
                .map(|v| v.into_iter().collect());
            self.dirs.insert(key.to_string(), listing);
        }
        match self.dirs.get(key) {
            Some(Some(set)) => set.contains(base),
            _ => false,
        }
    }

    /// Forget what is known about the directory of `path` (a recipe may have created or removed it).
    pub(crate) fn invalidate(&mut self, path: &str) {
        let dir = dir_part(path);
        let key = dir.trim_end_matches('/');
        let key = if key.is_empty() && !dir.is_empty() {
            "/"
        } else {
            key
        };
        self.dirs.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::MemHost;

    #[test]
    fn existence_from_listing() {
        let mut h = MemHost::new().with_file("a.c", "").with_file("src/b.c", "");
        let mut c = DirCache::default();
        assert!(c.exists(&mut h, "a.c"));
        assert!(c.exists(&mut h, "src/b.c"));
        assert!(c.exists(&mut h, "src"));
        assert!(!c.exists(&mut h, "b.c"));
        assert!(!c.exists(&mut h, "nodir/b.c"));
        h.add_file("b.c", "");
        assert!(!c.exists(&mut h, "b.c"));
        c.invalidate("b.c");
        assert!(c.exists(&mut h, "b.c"));
    }
}
