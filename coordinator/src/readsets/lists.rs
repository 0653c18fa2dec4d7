//! Bounded most-recent-first lists in sled: the read sets seen under each `pre_key` (at most
//! [`MAX_READ_SETS`]) and the last stored actions of each target (at most
//! [`MAX_TARGET_RECORDS`]), each value one JSON array. An identical item is moved to the front
//! rather than repeated; an undecodable value is replaced.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use rmake_proto::exec::{ActionSpec, ReadEntry};
use rmake_proto::{ActionKey, OutputFile};

use crate::error::StoreError;

/// Read sets kept per `pre_key`.
pub const MAX_READ_SETS: usize = 16;
/// Stored actions remembered per target.
pub const MAX_TARGET_RECORDS: usize = 4;

/// One read set: entries sorted by path.
pub type ReadSet = Vec<ReadEntry>;

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

fn read<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Vec<T>, StoreError> {
    let Some(v) = tree.get(key)? else {
        return Ok(Vec::new());
    };
    Ok(serde_json::from_slice(&v).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "undecodable read-set or target list; ignoring it");
        Vec::new()
    }))
}

/// Puts `item` first in the list under `key` (dropping an equal one further down) and keeps
/// at most `max`; returns the items that fell off the end. Atomic against concurrent pushes to
/// the same key.
fn push_front<T>(tree: &sled::Tree, key: &[u8], item: &T, max: usize) -> Result<Vec<T>, StoreError>
where
    T: Serialize + DeserializeOwned + PartialEq,
{
    let mut fail = None;
    let mut dropped = Vec::new();
    tree.update_and_fetch(key, |old| {
        let mut list: Vec<T> = old
            .and_then(|v| serde_json::from_slice(v).ok())
            .unwrap_or_default();
        list.retain(|x| x != item);
        // The closure may run again if another push raced it: only the last run counts.
        dropped = list.split_off(list.len().min(max.saturating_sub(1)));
        let mut out = Vec::with_capacity(list.len() + 1);
        // Encode by reference: the new item first, then the survivors.
        let mut encoded = match serde_json::to_vec(item) {
            Ok(v) => v,
            Err(e) => {
                fail = Some(e.to_string());
                return old.map(<[u8]>::to_vec);
            }
        };
        out.push(b'[');
        out.append(&mut encoded);
        for x in &list {
            out.push(b',');
            match serde_json::to_vec(x) {
                Ok(mut v) => out.append(&mut v),
                Err(e) => {
                    fail = Some(e.to_string());
                    return old.map(<[u8]>::to_vec);
                }
            }
        }
        out.push(b']');
        Some(out)
    })?;
    match fail {
        Some(e) => Err(StoreError::Corrupt(format!(
            "cannot encode a list item: {e}"
        ))),
        None => Ok(dropped),
    }
}

/// The read sets under `pre_key`, most recent first.
pub fn read_sets(tree: &sled::Tree, pre_key: &ActionKey) -> Result<Vec<ReadSet>, StoreError> {
    read(tree, &pre_key.0)
}

/// Records a read set under `pre_key`; returns the sets pushed out.
pub fn add_read_set(
    tree: &sled::Tree,
    pre_key: &ActionKey,
    set: &ReadSet,
) -> Result<Vec<ReadSet>, StoreError> {
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
    rec: &TargetRecord,
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

    #[test]
    fn bounded_most_recent_first_without_repeats() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = sled::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let tree = db.open_tree("t").unwrap_or_else(|e| panic!("{e}"));
        let k = ActionKey([1; 32]);
        assert_eq!(read_sets(&tree, &k).ok(), Some(vec![]));
        for n in 0..20 {
            let dropped = add_read_set(&tree, &k, &set(n)).unwrap_or_default();
            let expect = if n >= 16 { vec![set(n - 16)] } else { vec![] };
            assert_eq!(dropped, expect);
        }
        let got = read_sets(&tree, &k).unwrap_or_default();
        assert_eq!(got.len(), MAX_READ_SETS);
        assert_eq!(got[0], set(19));
        assert_eq!(got[15], set(4));
        assert!(add_read_set(&tree, &k, &set(10)).is_ok());
        let got = read_sets(&tree, &k).unwrap_or_default();
        assert_eq!((got.len(), &got[0], &got[1]), (16, &set(10), &set(19)));
        assert_eq!(got.iter().filter(|s| **s == set(10)).count(), 1);
        assert!(tree.insert(k.0, &b"garbage"[..]).is_ok());
        assert_eq!(read_sets(&tree, &k).ok(), Some(vec![]));
        assert!(add_read_set(&tree, &k, &set(1)).is_ok());
        assert_eq!(read_sets(&tree, &k).ok(), Some(vec![set(1)]));
    }
}
