//! The binary form of a `pre_key`'s read-set list in sled: decoding it is on the path of every
//! cache hit, so it avoids JSON and hex (a 200-entry list decodes in microseconds).
//!
//! Layout: `b"RS1\n"`, then per set: its full key (32 bytes), its entry count (u32 BE), and per
//! entry the path length (u32 BE), the path (UTF-8), a flag byte (1: a digest follows), and the
//! digest's hash (32 bytes) and size (u64 BE).

use rmake_cas::Digest;
use rmake_proto::exec::ReadEntry;
use rmake_proto::ActionKey;

use super::lists::StoredSet;

const MAGIC: &[u8; 4] = b"RS1\n";

/// Encodes sets in order.
pub(super) fn encode(sets: &[&StoredSet]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        4 + sets
            .iter()
            .map(|s| 36 + s.entries.iter().map(|e| 45 + e.path.len()).sum::<usize>())
            .sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    for s in sets {
        out.extend_from_slice(&s.key.0);
        out.extend_from_slice(&(s.entries.len() as u32).to_be_bytes());
        for e in &s.entries {
            out.extend_from_slice(&(e.path.len() as u32).to_be_bytes());
            out.extend_from_slice(e.path.as_bytes());
            match &e.digest {
                Some(d) => {
                    out.push(1);
                    out.extend_from_slice(&d.hash);
                    out.extend_from_slice(&d.size.to_be_bytes());
                }
                None => out.push(0),
            }
        }
    }
    out
}

/// A cursor over the bytes being decoded.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_be_bytes(self.array()?) as usize)
    }
}

/// Decodes a list; `None` if the bytes are not one.
pub(super) fn decode(bytes: &[u8]) -> Option<Vec<StoredSet>> {
    let mut r = Reader { rest: bytes };
    if r.take(4)? != MAGIC {
        return None;
    }
    let mut sets = Vec::new();
    while !r.rest.is_empty() {
        let key = ActionKey(r.array()?);
        let n = r.u32()?;
        // Each entry takes at least 5 bytes: a corrupt count cannot make us allocate much.
        let mut entries = Vec::with_capacity(n.min(r.rest.len() / 5));
        for _ in 0..n {
            let len = r.u32()?;
            let path = std::str::from_utf8(r.take(len)?).ok()?.to_string();
            let digest = match r.take(1)?[0] {
                0 => None,
                1 => Some(Digest {
                    hash: r.array()?,
                    size: u64::from_be_bytes(r.array()?),
                }),
                _ => return None,
            };
            entries.push(ReadEntry { path, digest });
        }
        sets.push(StoredSet { key, entries });
    }
    Some(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let a = StoredSet {
            key: ActionKey([7; 32]),
            entries: vec![
                ReadEntry {
                    path: "include/".into(),
                    digest: Some(Digest::of(b"a.h\n")),
                },
                ReadEntry {
                    path: "missing.h".into(),
                    digest: None,
                },
            ],
        };
        let b = StoredSet {
            key: ActionKey([9; 32]),
            entries: vec![],
        };
        let bytes = encode(&[&a, &b]);
        assert_eq!(decode(&bytes), Some(vec![a, b]));
        assert_eq!(decode(&encode(&[])), Some(vec![]));
        assert_eq!(decode(b"garbage"), None);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None, "truncated");
    }
}
