//! Builds: a client's session with its `-j` limit, its FIFO ready queue and how many of its
//! actions are leased; opening, cancelling, expiring, and the round-robin order the scheduler
//! serves them in.

use std::collections::VecDeque;
use std::time::Instant;

use rmake_proto::exec::{BuildRequest, ExecuteEvent};
use rmake_proto::{ActionKey, BuildId};

use super::{ids, Inner};

/// One open build.
#[derive(Debug)]
pub(crate) struct Build {
    /// Who and what, for logs and the status.
    pub(crate) label: String,
    /// Most actions leased at once; 0 means no limit.
    pub(crate) jobs: u32,
    /// Actions waiting for a worker, oldest first. Entries may be stale (the action was
    /// leased through another build, finished or dropped): they are skipped when met.
    pub(crate) queue: VecDeque<ActionKey>,
    /// Leases charged to this build right now.
    pub(crate) running: u32,
    /// Execute requests of this build waiting for their action.
    pub(crate) waiters: u32,
    /// When `waiters` last became 0 (or the build opened, or a request came).
    pub(crate) idle_since: Instant,
}

impl Build {
    /// Whether the build may have one more action leased.
    pub(crate) fn has_room(&self) -> bool {
        self.jobs == 0 || self.running < self.jobs
    }
}

impl Inner {
    /// Opens a build under a fresh id.
    pub(crate) fn open_build(&mut self, req: BuildRequest, now: Instant) -> BuildId {
        let id = BuildId(ids::fresh("b"));
        tracing::info!(build = %id, label = %req.label, jobs = req.jobs, "build opened");
        self.builds.insert(
            id.clone(),
            Build {
                label: req.label,
                jobs: req.jobs,
                queue: VecDeque::new(),
                running: 0,
                waiters: 0,
                idle_since: now,
            },
        );
        self.order.push(id.clone());
        id
    }

    /// Marks a build as used now; `false` if there is no such build.
    pub(crate) fn touch_build(&mut self, id: &BuildId, now: Instant) -> bool {
        match self.builds.get_mut(id) {
            Some(b) => {
                b.idle_since = now;
                true
            }
            None => false,
        }
    }

    /// Removes a build from the table and the round-robin order.
    fn remove_build(&mut self, id: &BuildId) -> Option<Build> {
        let build = self.builds.remove(id)?;
        if let Some(pos) = self.order.iter().position(|b| b == id) {
            self.order.remove(pos);
            if pos < self.cursor {
                self.cursor -= 1;
            }
        }
        Some(build)
    }

    /// Cancels a build: each of its waiters gets `failed`, an action nobody else waits for is
    /// dropped (or its lease cancelled). `false` if there is no such build.
    pub(crate) fn cancel_build(&mut self, id: &BuildId) -> bool {
        if self.remove_build(id).is_none() {
            return false;
        }
        let keys: Vec<ActionKey> = self
            .actions
            .iter()
            .filter(|(_, a)| a.waiters.values().any(|w| &w.build == id))
            .map(|(k, _)| *k)
            .collect();
        tracing::info!(build = %id, actions = keys.len(), "build cancelled");
        let reason = format!("build {id} was cancelled");
        for key in keys {
            let Some(action) = self.actions.get_mut(&key) else {
                continue;
            };
            action.waiters.retain(|_, w| {
                if &w.build == id {
                    let _ = w.tx.send(ExecuteEvent::Failed {
                        reason: reason.clone(),
                    });
                    false
                } else {
                    true
                }
            });
            if action.waiters.is_empty() {
                self.drop_action(&key);
            }
        }
        true
    }

    /// Builds with no waiter since before `cutoff` expire. Returns how many went.
    pub(crate) fn expire_idle_builds(&mut self, cutoff: Instant) -> usize {
        let idle: Vec<BuildId> = self
            .builds
            .iter()
            .filter(|(_, b)| b.waiters == 0 && b.idle_since <= cutoff)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &idle {
            tracing::info!(build = %id, "build expired (nothing in flight)");
            self.remove_build(id);
        }
        idle.len()
    }

    /// One more waiter for `build` (`more`) or one fewer; either way it was active `now`.
    pub(crate) fn count_waiter(&mut self, build: &BuildId, more: bool, now: Instant) {
        if let Some(b) = self.builds.get_mut(build) {
            if more {
                b.waiters += 1;
            } else {
                b.waiters = b.waiters.saturating_sub(1);
            }
            b.idle_since = now;
        }
    }
}
