//! Bounded most-recent-first lists in sled: the read sets seen under each `pre_key` (at most
//! [`MAX_READ_SETS`], in the binary form of [`super::codec`]) and the last stored actions of
//! each target (at most [`MAX_TARGET_RECORDS`], one JSON array). An identical item is moved to
//! the front rather than repeated; an undecodable value is replaced.

use serde::{Deserialize, Serialize};

use rmake_proto::exec::{read_set_key, ActionSpec, ReadEntry};
use rmake_proto::{ActionKey, OutputFile};

use super::codec;
use crate::error::StoreError;

/// Read sets kept per `pre_key`.
pub const MAX_READ_SETS: usize = 16;
/// Stored actions remembered per target.
pub const MAX_TARGET_RECORDS: usize = 4;

/// One read set: entries sorted by path.
pub type ReadSet = Vec<ReadEntry>;

/// A read set as stored under its `pre_key`, with the key its result is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSet {
    /// `read_set_key(pre_key, entries)`.
    pub key: ActionKey,
    /// The entries, sorted by path.
    pub entries: ReadSet,
}

/// A stored action of a target, kept to say what changed when the target misses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRecord {
    /// Its `pre_key`.
    pub pre_key: ActionKey,
    /// The spec without its tree (`input_root` emptied, no `inputs`, no timeout).
    pub spec: ActionSpec,
    /// Its direct prerequisites with digests.
    pub prereqs: Vec<OutputFile>,
}

/// How a list is written to and read from sled.
trait Codec: Sized + PartialEq {
    fn decode(bytes: &[u8]) -> Option<Vec<Self>>;
    fn encode(items: &[&Self]) -> Result<Vec<u8>, String>;
}

impl Codec for StoredSet {
    fn decode(bytes: &[u8]) -> Option<Vec<StoredSet>> {
        codec::decode(bytes)
    }
    fn encode(items: &[&StoredSet]) -> Result<Vec<u8>, String> {
        Ok(codec::encode(items))
    }
}

impl Codec for TargetRecord {
    fn decode(bytes: &[u8]) -> Option<Vec<TargetRecord>> {
        serde_json::from_slice(bytes).ok()
    }
    fn encode(items: &[&TargetRecord]) -> Result<Vec<u8>, String> {
        serde_json::to_vec(items).map_err(|e| e.to_string())
    }
}

fn read<T: Codec>(tree: &sled::Tree, key: &[u8]) -> Result<Vec<T>, StoreError> {
    let Some(v) = tree.get(key)? else {
        return Ok(Vec::new());
    };
    Ok(T::decode(&v).unwrap_or_else(|| {
        tracing::warn!("undecodable read-set or target list; ignoring it");
        Vec::new()
    }))
}

/// Puts `item` first in the list under `key` (dropping an equal one further down) and keeps
/// at most `max`; returns the items that fell off the end. Atomic against concurrent pushes to
/// the same key.
fn push_front<T: Codec>(
    tree: &sled::Tree,
    key: &[u8],
    item: T,
    max: usize,
) -> Result<Vec<T>, StoreError> {
    let mut fail = None;
    let mut dropped = Vec::new();
    tree.update_and_fetch(key, |old| {
        let mut list: Vec<T> = old.and_then(T::decode).unwrap_or_default();
        list.retain(|x| *x != item);
        // The closure may run again if another push raced it: only the last run counts.
        dropped = list.split_off(list.len().min(max.saturating_sub(1)));
        let all: Vec<&T> = std::iter::once(&item).chain(&list).collect();
        match T::encode(&all) {
            Ok(v) => Some(v),
            Err(e) => {
                fail = Some(e);
                old.map(<[u8]>::to_vec)
            }
        }
    })?;
    match fail {
        Some(e) => Err(StoreError::Corrupt(format!("cannot encode a list: {e}"))),
        None => Ok(dropped),
    }
}

/// The read sets under `pre_key`, most recent first.
pub fn read_sets(tree: &sled::Tree, pre_key: &ActionKey) -> Result<Vec<StoredSet>, StoreError> {
    read(tree, &pre_key.0)
}

/// Records a read set under `pre_key`; returns it with its key, and the sets pushed out.
pub fn add_read_set(
    tree: &sled::Tree,
    pre_key: &ActionKey,
    entries: ReadSet,
) -> Result<Vec<StoredSet>, StoreError> {
    let set = StoredSet {
        key: read_set_key(pre_key, &entries),
        entries,
    };
    push_front(tree, &pre_key.0, set, MAX_READ_SETS)
}

/// The last stored actions of the target whose first output is `path`, most recent first.
pub fn target_records(tree: &sled::Tree, path: &str) -> Result<Vec<TargetRecord>, StoreError> {
    read(tree, path.as_bytes())
}

/// Records a stored action of the target whose first output is `path`.
pub fn add_target_record(
    tree: &sled::Tree,
    path: &str,
    rec: TargetRecord,
) -> Result<(), StoreError> {
    push_front(tree, path.as_bytes(), rec, MAX_TARGET_RECORDS).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmake_cas::Digest;

    fn set(n: u64) -> ReadSet {
        vec![ReadEntry {
            path: format!("f{n}"),
            digest: Some(Digest::of(&n.to_be_bytes())),
        }]
    }

    fn entries(sets: Vec<StoredSet>) -> Vec<ReadSet> {
        sets.into_iter().map(|s| s.entries).collect()
    }

    #[test]
    fn bounded_most_recent_first_without_repeats() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = sled::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let tree = db.open_tree("t").unwrap_or_else(|e| panic!("{e}"));
        let k = ActionKey([1; 32]);
        assert_eq!(read_sets(&tree, &k).ok(), Some(vec![]));
        for n in 0..20 {
            let dropped = add_read_set(&tree, &k, set(n)).unwrap_or_default();
            let expect = if n >= 16 { vec![set(n - 16)] } else { vec![] };
            assert_eq!(entries(dropped), expect);
        }
        let got = read_sets(&tree, &k).unwrap_or_default();
        assert_eq!(got.len(), MAX_READ_SETS);
        assert_eq!(got[0].entries, set(19));
        assert_eq!(got[0].key, read_set_key(&k, &set(19)));
        assert_eq!(got[15].entries, set(4));
        assert!(add_read_set(&tree, &k, set(10)).is_ok());
        let got = entries(read_sets(&tree, &k).unwrap_or_default());
        assert_eq!((got.len(), &got[0], &got[1]), (16, &set(10), &set(19)));
        assert_eq!(got.iter().filter(|s| **s == set(10)).count(), 1);
        assert!(tree.insert(k.0, &b"garbage"[..]).is_ok());
        assert_eq!(read_sets(&tree, &k).ok(), Some(vec![]));
        assert!(add_read_set(&tree, &k, set(1)).is_ok());
        assert_eq!(
            entries(read_sets(&tree, &k).unwrap_or_default()),
            vec![set(1)]
        );
    }
}
