//! Idle exec roots, reset to their input tree and kept for the next action on the same tree
//! (all the actions of one build share one): most recently used first, at most `max` of them.
//! A root being reset is counted, so an action on its tree waits for it (briefly) rather than
//! materializing the tree again.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rmake_cas::Digest;

use crate::exec_root::{remove_tree, ExecRoot, Pooled};

/// Longest an action waits for a root of its tree being reset.
const RESET_WAIT: Duration = Duration::from_secs(2);
/// Trees with fewer entries are materialized afresh rather than waited for (that costs less
/// than a few thread wake-ups on a loaded machine).
const WAIT_MIN_ENTRIES: usize = 64;

/// The idle roots of one worker, kept under `dir` as `idle-<n>`.
#[derive(Debug)]
pub struct RootPool {
    dir: PathBuf,
    max: usize,
    state: Mutex<State>,
    changed: Condvar,
    seq: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    idle: VecDeque<Pooled>,
    /// Roots being reset, by tree, of trees worth waiting for.
    resetting: HashMap<Digest, usize>,
}

/// A root of `tree` is being reset; dropping this says it is done (kept or not).
#[derive(Debug)]
pub struct Resetting {
    pool: Arc<RootPool>,
    tree: Digest,
    counted: bool,
}

impl Drop for Resetting {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut st = self.pool.lock();
        if let Some(n) = st.resetting.get_mut(&self.tree) {
            *n -= 1;
            if *n == 0 {
                st.resetting.remove(&self.tree);
            }
        }
        drop(st);
        self.pool.changed.notify_all();
    }
}

impl RootPool {
    /// A pool under `dir` holding at most `max` roots (0: none are kept).
    pub fn new(dir: PathBuf, max: usize) -> RootPool {
        RootPool {
            dir,
            max,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            seq: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes an idle root of the tree `input_root` if there is one (waiting a little for one
    /// being reset), else the most recently used idle root of another tree (to be reshaped),
    /// if any. Blocks: call it off the async threads.
    pub fn take(&self, input_root: &Digest) -> Option<Pooled> {
        let deadline = Instant::now() + RESET_WAIT;
        let mut st = self.lock();
        loop {
            if let Some(pos) = st
                .idle
                .iter()
                .position(|p| p.baseline.input_root == *input_root)
            {
                return st.idle.remove(pos);
            }
            let now = Instant::now();
            if !st.resetting.contains_key(input_root) || now >= deadline {
                return st.idle.pop_front();
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Notes that a root of `tree` (of `entries` paths) is being reset, until the guard is
    /// dropped; actions on small trees do not wait for it.
    pub fn resetting(self: &Arc<Self>, tree: Digest, entries: usize) -> Resetting {
        let counted = entries >= WAIT_MIN_ENTRIES;
        if counted {
            *self.lock().resetting.entry(tree).or_insert(0) += 1;
        }
        Resetting {
            pool: self.clone(),
            tree,
            counted,
        }
    }

    /// Keeps `exec` (already reset to its baseline) for later; the least recently used root
    /// beyond the cap is removed.
    pub fn put(&self, exec: ExecRoot) {
        if self.max == 0 {
            remove_tree(&exec.root);
            return;
        }
        let path = self
            .dir
            .join(format!("idle-{}", self.seq.fetch_add(1, Ordering::Relaxed)));
        if let Err(e) = std::fs::rename(&exec.root, &path) {
            tracing::warn!(root = %exec.root.display(), error = %e, "cannot park an exec root; removing it");
            remove_tree(&exec.root);
            return;
        }
        let evicted: Vec<Pooled> = {
            let mut st = self.lock();
            st.idle.push_front(Pooled {
                path,
                baseline: exec.baseline,
                index: exec.index,
            });
            let keep = self.max.min(st.idle.len());
            st.idle.drain(keep..).collect()
        };
        self.changed.notify_all();
        for p in evicted {
            remove_tree(&p.path);
        }
    }

    /// Most roots kept.
    pub fn max(&self) -> usize {
        self.max
    }

    /// How many roots are idle.
    pub fn len(&self) -> usize {
        self.lock().idle.len()
    }

    /// Whether no root is idle.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
