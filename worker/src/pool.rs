//! Idle exec roots, reset to their input tree and kept for the next action on the same tree
//! (all the actions of one build share one): most recently used first, at most `max` of them.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rmake_cas::Digest;

use crate::exec_root::{remove_tree, ExecRoot, Pooled};

/// The idle roots of one worker, kept under `dir` as `idle-<n>`.
#[derive(Debug)]
pub struct RootPool {
    dir: PathBuf,
    max: usize,
    idle: Mutex<VecDeque<Pooled>>,
    seq: AtomicU64,
}

impl RootPool {
    /// A pool under `dir` holding at most `max` roots (0: none are kept).
    pub fn new(dir: PathBuf, max: usize) -> RootPool {
        RootPool {
            dir,
            max,
            idle: Mutex::new(VecDeque::new()),
            seq: AtomicU64::new(0),
        }
    }

    /// Takes an idle root of the tree `input_root` if there is one, else the most recently
    /// used idle root of another tree (to be reshaped), if any.
    pub fn take(&self, input_root: &Digest) -> Option<Pooled> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pos = idle
            .iter()
            .position(|p| p.baseline.input_root == *input_root)
            .unwrap_or(0);
        idle.remove(pos)
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
            let mut idle = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            idle.push_front(Pooled {
                path,
                baseline: exec.baseline,
                index: exec.index,
            });
            let keep = self.max.min(idle.len());
            idle.drain(keep..).collect()
        };
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
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Whether no root is idle.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
