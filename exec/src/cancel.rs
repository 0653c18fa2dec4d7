//! Stopping a running recipe: a [`CancelHandle`] another thread can pull, and signals sent to a
//! line's whole process group (each line runs as the leader of its own group).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Asks a running recipe to stop; clone it freely and call [`CancelHandle::cancel`] from any
/// thread. The running line's process group gets `SIGTERM` at once, then `SIGKILL` after the
/// recipe's grace period; no further line starts.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    /// The process group of the line running now, if any.
    running: Mutex<Option<i32>>,
}

impl CancelHandle {
    /// A handle not yet cancelled.
    pub fn new() -> CancelHandle {
        CancelHandle::default()
    }

    /// Stops the recipe: `SIGTERM` to the running line's process group now; the runner
    /// escalates to `SIGKILL` after its grace period.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        if let Ok(running) = self.inner.running.lock() {
            if let Some(pgid) = *running {
                signal_group(pgid, libc::SIGTERM);
            }
        }
    }

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Records the process group of the line now running (`None` when it ended).
    pub(crate) fn set_running(&self, pgid: Option<i32>) {
        if let Ok(mut running) = self.inner.running.lock() {
            *running = pgid;
        }
    }
}

/// Sends `sig` to every process of the group `pgid`; a group already gone is not an error.
pub(crate) fn signal_group(pgid: i32, sig: i32) {
    if pgid <= 1 {
        // Never signal "every process" (-1) or our own group (0).
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative pid
    // addresses the process group, which is the recipe line's own (it was spawned as leader).
    let rc = unsafe { libc::kill(-pgid, sig) };
    if rc != 0 {
        tracing::trace!(pgid, sig, error = %std::io::Error::last_os_error(), "signal to process group");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_is_seen_by_clones() {
        let h = CancelHandle::new();
        let c = h.clone();
        assert!(!h.is_cancelled());
        c.cancel();
        assert!(h.is_cancelled());
    }

    #[test]
    fn refuses_to_signal_everyone() {
        // Would kill the test runner's whole session if it went through.
        signal_group(0, libc::SIGTERM);
        signal_group(1, libc::SIGTERM);
        signal_group(-5, libc::SIGTERM);
    }
}
