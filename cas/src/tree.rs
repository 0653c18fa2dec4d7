//! Merkle tree nodes: a `Directory` of sorted, validated entries, its canonical binary encoding,
//! and reading/writing directory nodes as blobs.
//!
//! Encoding (all integers little-endian), chosen so that one directory has exactly one
//! encoding and decoding checks everything a hostile blob could get wrong:
//!
//! ```text
//! "RMTREE1\n"  u32 entry-count
//! per entry, sorted by name bytes, names unique:
//!   u8 kind (0 file, 1 executable file, 2 symlink, 3 directory)  u16 name-len  name (UTF-8)
//!   kind 0, 1, 3: 32-byte SHA-256  u64 size          (the blob / the child directory node)
//!   kind 2:       u32 target-len  target (UTF-8)
//! ```

use crate::digest::Digest;
use crate::error::{CasError, Result};
use crate::store::BlobStore;

const MAGIC: &[u8; 8] = b"RMTREE1\n";

/// Longest entry name accepted (the common filesystem limit).
pub const MAX_NAME: usize = 255;
/// Longest symlink target accepted (PATH_MAX).
pub const MAX_TARGET: usize = 4096;

/// What a directory entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// A regular file whose content is the blob `digest`.
    File {
        /// The content blob.
        digest: Digest,
        /// Whether the file is executable (mode 0755 rather than 0644).
        executable: bool,
    },
    /// A symbolic link and its target, as `readlink` gives it.
    Symlink {
        /// The link's target.
        target: String,
    },
    /// A subdirectory whose node is the blob `digest`.
    Directory {
        /// The child directory node.
        digest: Digest,
    },
}

/// One named entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// A single path component: not empty, not `.` or `..`, no `/` or NUL.
    pub name: String,
    /// What it is.
    pub node: Node,
}

/// A directory node: entries sorted by name, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Directory {
    entries: Vec<Entry>,
}

/// Checks that `name` is a single safe path component.
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty name"
    } else if name == "." || name == ".." {
        "'.' and '..' are not entry names"
    } else if name.contains('/') {
        "a name may not contain '/'"
    } else if name.contains('\0') {
        "a name may not contain NUL"
    } else if name.len() > MAX_NAME {
        "name longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(CasError::InvalidPath {
        path: name.to_string(),
        reason: reason.to_string(),
    })
}

/// Checks a symlink target's form (whether it escapes is decided where its position is known).
pub fn validate_target(target: &str) -> Result<()> {
    let reason = if target.is_empty() {
        "empty symlink target"
    } else if target.contains('\0') {
        "symlink target contains NUL"
    } else if target.len() > MAX_TARGET {
        "symlink target longer than 4096 bytes"
    } else {
        return Ok(());
    };
    Err(CasError::InvalidPath {
        path: target.to_string(),
        reason: reason.to_string(),
    })
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Directory {
        Directory::default()
    }

    /// Builds a directory from entries in any order; refuses invalid or duplicate names.
    pub fn from_entries(mut entries: Vec<Entry>) -> Result<Directory> {
        for e in &entries {
            validate_name(&e.name)?;
            if let Node::Symlink { target } = &e.node {
                validate_target(target)?;
            }
        }
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        if let Some(w) = entries.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(CasError::InvalidPath {
                path: w[0].name.clone(),
                reason: "duplicate entry name".into(),
            });
        }
        Ok(Directory { entries })
    }

    /// The entries, sorted by name.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.entries
            .binary_search_by(|e| e.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.entries[i].node)
    }

    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.entries.len() * 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            let kind = match &e.node {
                Node::File {
                    executable: false, ..
                } => 0u8,
                Node::File {
                    executable: true, ..
                } => 1,
                Node::Symlink { .. } => 2,
                Node::Directory { .. } => 3,
            };
            out.push(kind);
            out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            out.extend_from_slice(e.name.as_bytes());
            match &e.node {
                Node::File { digest, .. } | Node::Directory { digest } => {
                    out.extend_from_slice(&digest.hash);
                    out.extend_from_slice(&digest.size.to_le_bytes());
                }
                Node::Symlink { target } => {
                    out.extend_from_slice(&(target.len() as u32).to_le_bytes());
                    out.extend_from_slice(target.as_bytes());
                }
            }
        }
        out
    }

    /// The digest of the encoding.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.encode())
    }

    /// Decodes and validates a directory node; `digest` only names it in errors.
    pub fn decode(digest: &Digest, data: &[u8]) -> Result<Directory> {
        let bad = |reason: String| CasError::InvalidTree {
            digest: *digest,
            reason,
        };
        let mut r = Reader { data, pos: 0 };
        if r.take(8).ok_or_else(|| bad("truncated header".into()))? != MAGIC {
            return Err(bad("not a tree node (bad magic)".into()));
        }
        let count = r.u32().ok_or_else(|| bad("truncated header".into()))? as usize;
        // Each entry takes at least 12 bytes, which bounds a hostile count.
        if count > data.len() / 12 {
            return Err(bad(format!("entry count {count} exceeds the node's size")));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for i in 0..count {
            let trunc = || bad(format!("truncated at entry {i}"));
            let kind = r.u8().ok_or_else(trunc)?;
            let name_len = r.u16().ok_or_else(trunc)? as usize;
            let name = std::str::from_utf8(r.take(name_len).ok_or_else(trunc)?)
                .map_err(|_| bad(format!("entry {i}: name is not UTF-8")))?
                .to_string();
            validate_name(&name).map_err(|e| bad(format!("entry {i}: {e}")))?;
            let node = match kind {
                0 | 1 | 3 => {
                    let hash: [u8; 32] = r
                        .take(32)
                        .and_then(|h| h.try_into().ok())
                        .ok_or_else(trunc)?;
                    let size = r.u64().ok_or_else(trunc)?;
                    let digest = Digest { hash, size };
                    if kind == 3 {
                        Node::Directory { digest }
                    } else {
                        Node::File {
                            digest,
                            executable: kind == 1,
                        }
                    }
                }
                2 => {
                    let len = r.u32().ok_or_else(trunc)? as usize;
                    let target = std::str::from_utf8(r.take(len).ok_or_else(trunc)?)
                        .map_err(|_| bad(format!("entry {name:?}: symlink target is not UTF-8")))?
                        .to_string();
                    validate_target(&target).map_err(|e| bad(format!("entry {name:?}: {e}")))?;
                    Node::Symlink { target }
                }
                k => return Err(bad(format!("entry {name:?}: unknown kind {k}"))),
            };
            if let Some(prev) = entries.last() {
                if prev.name.as_bytes() >= name.as_bytes() {
                    return Err(bad(format!("entries not sorted or not unique at {name:?}")));
                }
            }
            entries.push(Entry { name, node });
        }
        if r.pos != data.len() {
            return Err(bad("trailing bytes after the last entry".into()));
        }
        Ok(Directory { entries })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
}

/// Stores a directory node and returns its digest.
pub fn put_directory(store: &dyn BlobStore, dir: &Directory) -> Result<Digest> {
    store.put_bytes(&dir.encode())
}

/// Reads and decodes the directory node `digest`; [`CasError::NotFound`] if absent.
pub fn read_directory(store: &dyn BlobStore, digest: &Digest) -> Result<Directory> {
    // Directory nodes are small; refuse to load something absurd as one.
    if digest.size > 64 << 20 {
        return Err(CasError::InvalidTree {
            digest: *digest,
            reason: "node larger than 64 MiB".into(),
        });
    }
    let data = store.get(digest)?.ok_or(CasError::NotFound(*digest))?;
    Directory::decode(digest, &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, data: &[u8], executable: bool) -> Entry {
        Entry {
            name: name.into(),
            node: Node::File {
                digest: Digest::of(data),
                executable,
            },
        }
    }

    #[test]
    fn encoding_round_trips_and_is_order_independent() {
        let a = Directory::from_entries(vec![
            file("b", b"1", false),
            file("a", b"2", true),
            Entry {
                name: "l".into(),
                node: Node::Symlink { target: "a".into() },
            },
            Entry {
                name: "d".into(),
                node: Node::Directory {
                    digest: Directory::new().digest(),
                },
            },
        ])
        .unwrap();
        let b = Directory::from_entries(a.entries().iter().rev().cloned().collect()).unwrap();
        assert_eq!(a.encode(), b.encode());
        let d = a.digest();
        assert_eq!(Directory::decode(&d, &a.encode()).unwrap(), a);
        assert_eq!(a.get("l"), Some(&Node::Symlink { target: "a".into() }));
        assert_eq!(a.get("zz"), None);
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", ".", "..", "a/b", "/abs", "nul\0"] {
            assert!(
                Directory::from_entries(vec![file(name, b"", false)]).is_err(),
                "{name:?}"
            );
        }
        assert!(
            Directory::from_entries(vec![file("x", b"", false), file("x", b"1", false)]).is_err()
        );
    }

    /// Hand-encodes one file entry with an arbitrary name.
    fn raw_node(names: &[&str]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(names.len() as u32).to_le_bytes());
        for n in names {
            out.push(0);
            out.extend_from_slice(&(n.len() as u16).to_le_bytes());
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(&[0u8; 40]);
        }
        out
    }

    #[test]
    fn decode_refuses_hostile_nodes() {
        let d = Digest::EMPTY;
        for names in [
            &[".."][..],
            &["a/../b"],
            &["/etc"],
            &[""],
            &["."],
            &["b", "a"],
            &["a", "a"],
        ] {
            let err = Directory::decode(&d, &raw_node(names)).unwrap_err();
            assert!(
                matches!(err, CasError::InvalidTree { .. }),
                "{names:?}: {err}"
            );
        }
        let good = raw_node(&["a"]);
        assert!(Directory::decode(&d, &good).is_ok());
        for cut in 0..good.len() {
            assert!(Directory::decode(&d, &good[..cut]).is_err(), "prefix {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(Directory::decode(&d, &trailing).is_err());
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Directory::decode(&d, &huge).is_err());
        let mut kind = good.clone();
        kind[12] = 9;
        assert!(Directory::decode(&d, &kind).is_err());
    }

    #[test]
    fn decode_never_panics_on_mutated_nodes() {
        let dir = Directory::from_entries(vec![
            file("a", b"1", false),
            file("bin", b"2", true),
            Entry {
                name: "l".into(),
                node: Node::Symlink {
                    target: "../x/y".into(),
                },
            },
            Entry {
                name: "sub".into(),
                node: Node::Directory {
                    digest: Digest::EMPTY,
                },
            },
        ])
        .unwrap();
        let good = dir.encode();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut m = good.clone();
            for _ in 0..(next() % 4 + 1) {
                let pos = (next() as usize) % m.len();
                match next() % 3 {
                    0 => m[pos] = next() as u8,
                    1 => m.truncate(pos),
                    _ => m.insert(pos, next() as u8),
                }
                if m.is_empty() {
                    break;
                }
            }
            // Anything that decodes must re-encode to exactly the same bytes (one encoding per tree).
            if let Ok(d) = Directory::decode(&Digest::EMPTY, &m) {
                assert_eq!(d.encode(), m);
            }
        }
    }
}
