//! `TreeViews`: a small LRU of flattened input trees by root digest, so the thousand actions of
//! one build (which share one `input_root`) flatten it once. Two requests for a root not yet
//! flattened wait for one flatten rather than both doing it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rmake_cas::{BlobStore, Digest};

use super::view::BaseView;
use crate::error::StoreError;

/// Flattened trees kept (a tree of 100,000 files takes some tens of MB).
pub const CAPACITY: usize = 8;

/// One root's slot: filled by the first request, which holds its lock while flattening.
type Slot = Arc<Mutex<Option<Arc<BaseView>>>>;

/// The LRU of flattened trees.
pub struct TreeViews {
    store: Arc<dyn BlobStore>,
    slots: Mutex<VecDeque<(Digest, Slot)>>,
    capacity: usize,
    flattens: AtomicU64,
}

impl std::fmt::Debug for TreeViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TreeViews {{ flattens: {} }}", self.flattens())
    }
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data is a cache: a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TreeViews {
    /// An empty cache of `capacity` trees (at least 1) read from `store`.
    pub fn new(store: Arc<dyn BlobStore>, capacity: usize) -> TreeViews {
        TreeViews {
            store,
            slots: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            flattens: AtomicU64::new(0),
        }
    }

    /// How many times a tree was flattened (misses of this cache).
    pub fn flattens(&self) -> u64 {
        self.flattens.load(Ordering::Relaxed)
    }

    /// The flattened tree of `root` (blocking: it may read every directory node of the tree).
    pub fn get(&self, root: &Digest) -> Result<Arc<BaseView>, StoreError> {
        let slot = {
            let mut slots = relock(&self.slots);
            match slots.iter().position(|(d, _)| d == root) {
                Some(i) => {
                    let found = slots.remove(i);
                    let slot = found.as_ref().map(|(_, s)| s.clone());
                    if let Some(entry) = found {
                        slots.push_front(entry);
                    }
                    slot.unwrap_or_default()
                }
                None => {
                    let slot: Slot = Arc::default();
                    slots.push_front((*root, slot.clone()));
                    slots.truncate(self.capacity);
                    slot
                }
            }
        };
        let mut filled = relock(&slot);
        if let Some(view) = filled.as_ref() {
            return Ok(view.clone());
        }
        self.flattens.fetch_add(1, Ordering::Relaxed);
        let t = std::time::Instant::now();
        let entries = rmake_cas::flatten(self.store.as_ref(), root)?;
        let view = Arc::new(BaseView::from_flat(entries));
        tracing::debug!(%root, paths = view.len(), ms = t.elapsed().as_millis() as u64, "input tree flattened");
        *filled = Some(view.clone());
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmake_cas::tree::{put_directory, Directory, Entry, Node};
    use rmake_cas::MemoryStore;

    fn tree(store: &MemoryStore, name: &str) -> Digest {
        let d = Directory::from_entries(vec![Entry {
            name: name.into(),
            node: Node::File {
                digest: Digest::of(b"x"),
                executable: false,
            },
        }])
        .unwrap_or_default();
        put_directory(store, &d).unwrap_or(Digest::EMPTY)
    }

    #[test]
    fn flattens_each_root_once_while_it_stays_in_the_lru() {
        let store = Arc::new(MemoryStore::new());
        let roots: Vec<Digest> = ["a", "b", "c"].iter().map(|n| tree(&store, n)).collect();
        let views = TreeViews::new(store, 2);
        for _ in 0..10 {
            assert_eq!(views.get(&roots[0]).map(|v| v.len()).ok(), Some(1));
        }
        assert_eq!(views.flattens(), 1);
        assert!(views.get(&roots[1]).is_ok());
        assert!(views.get(&roots[0]).is_ok(), "still cached (most recent)");
        assert_eq!(views.flattens(), 2);
        assert!(views.get(&roots[2]).is_ok(), "pushes out b");
        assert!(views.get(&roots[1]).is_ok());
        assert_eq!(views.flattens(), 4);
        assert!(
            views.get(&Digest::of(b"not a tree")).is_err(),
            "a missing root is an error"
        );
    }
}
