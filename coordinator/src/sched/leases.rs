//! Leases: one try of one action on one worker. Granting, renewing by heartbeat, losing on
//! expiry or worker loss, cancelling, and the first half of completing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmake_proto::exec::{
    ActionSpec, ExecuteEvent, HeartbeatResponse, Lease, LeaseId, LeaseOutcome, WorkerId,
};
use rmake_proto::{ActionKey, ActionResult, BuildId, OutputFile};

use super::queue::ActionState;
use super::{ids, validate, Inner};

/// A lease as the coordinator keeps it.
#[derive(Debug)]
pub(crate) struct LeaseEntry {
    /// The action.
    pub(crate) key: ActionKey,
    /// The worker holding it.
    pub(crate) worker: WorkerId,
    /// The worker's name, for events and messages.
    pub(crate) worker_name: String,
    /// The build whose `-j` it counts against.
    pub(crate) build: BuildId,
    /// 1 for the first try.
    pub(crate) attempt: u32,
    /// Lost unless renewed before this.
    pub(crate) expires: Instant,
    /// The action was dropped or failed: the worker is told to stop at its next heartbeat
    /// and its result will be refused.
    pub(crate) cancelled: bool,
    /// How long the action waited in the queue before this lease.
    pub(crate) queued_ms: u64,
}

/// What a `complete` amounts to, decided under the lock.
#[derive(Debug)]
pub(crate) enum Completion {
    /// The lease is not current (unknown, expired, cancelled): the result is dropped.
    Refused,
    /// The worker could not run it; the action was re-queued or failed.
    Retried,
    /// The result names a bad output path; the action was re-queued or failed.
    BadResult(String),
    /// A result to deliver (and to store first when `store`).
    Deliver {
        /// The action key.
        key: ActionKey,
        /// The result, with `worker` set.
        result: Box<ActionResult>,
        /// The action (for the key its result is stored under).
        spec: Arc<ActionSpec>,
        /// Its direct prerequisites.
        prereqs: Arc<Vec<OutputFile>>,
        /// Whether to store it in the action cache.
        store: bool,
        /// The target, for messages.
        target: String,
    },
}

impl Inner {
    /// Leases the next action `worker` may run, if any: the action is marked leased, its
    /// build charged, its waiters told `started`.
    pub(crate) fn grant_lease(
        &mut self,
        worker: &WorkerId,
        ttl: Duration,
        now: Instant,
    ) -> Option<Lease> {
        let w = self.workers.get(worker)?;
        let live = w
            .leases
            .iter()
            .filter(|l| self.leases.get(*l).is_some_and(|e| !e.cancelled))
            .count();
        if live >= w.slots as usize {
            // Every slot is busy: a worker asks for more than it announced.
            return None;
        }
        let (key, build) = self.pick(worker)?;
        let worker_name = self.workers.get(worker)?.name.clone();
        let id = LeaseId(ids::fresh("l"));
        let action = self.actions.get_mut(&key)?;
        action.attempts += 1;
        action.state = ActionState::Leased(id.clone());
        let attempt = action.attempts;
        let queued_ms = now.saturating_duration_since(action.queued_at).as_millis() as u64;
        action.broadcast(&ExecuteEvent::Started {
            worker: worker_name.clone(),
            attempt,
        });
        let lease = Lease {
            id: id.clone(),
            key,
            spec: (*action.spec).clone(),
            target: action.target.clone(),
            attempt,
        };
        tracing::debug!(lease = %id, %key, target = %lease.target, worker = %worker_name, attempt, %build, "leased");
        if let Some(b) = self.builds.get_mut(&build) {
            b.running += 1;
        }
        if let Some(w) = self.workers.get_mut(worker) {
            w.leases.insert(id.clone());
        }
        self.leases.insert(
            id,
            LeaseEntry {
                key,
                worker: worker.clone(),
                worker_name,
                build,
                attempt,
                expires: now + ttl,
                cancelled: false,
                queued_ms,
            },
        );
        Some(lease)
    }

    /// Frees the build slot of a live lease and marks it cancelled (kept until the worker
    /// hears of it at a heartbeat, or it expires).
    pub(crate) fn cancel_lease(&mut self, id: &LeaseId) {
        let Some(entry) = self.leases.get_mut(id) else {
            return;
        };
        if entry.cancelled {
            return;
        }
        entry.cancelled = true;
        let build = entry.build.clone();
        if let Some(b) = self.builds.get_mut(&build) {
            b.running = b.running.saturating_sub(1);
        }
    }

    /// Removes a lease from the table and its worker; frees its build slot if it was live.
    fn release(&mut self, id: &LeaseId) -> Option<LeaseEntry> {
        let entry = self.leases.remove(id)?;
        if let Some(w) = self.workers.get_mut(&entry.worker) {
            w.leases.remove(id);
        }
        if !entry.cancelled {
            if let Some(b) = self.builds.get_mut(&entry.build) {
                b.running = b.running.saturating_sub(1);
            }
        }
        Some(entry)
    }

    /// A live lease is lost (`how`: "expired", "stopped", …): its action is re-queued or, after
    /// the last try, fails naming the worker and the target. A cancelled one is just removed.
    pub(crate) fn lose_lease(&mut self, id: &LeaseId, how: &str) {
        let now = Instant::now();
        let Some(entry) = self.release(id) else {
            return;
        };
        if entry.cancelled {
            return;
        }
        let Some(action) = self.actions.get(&entry.key) else {
            return;
        };
        if action.state != ActionState::Leased(id.clone()) {
            return;
        }
        let reason = format!(
            "lost by {} while running {}: the worker {how}",
            entry.worker_name, action.target
        );
        self.retry_or_fail(&entry.key, reason, self.max_attempts, now);
    }

    /// Loses every lease whose time ran out by `now`. Returns how many live ones were lost.
    pub(crate) fn expire_leases(&mut self, now: Instant) -> usize {
        let due: Vec<(LeaseId, bool)> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires <= now)
            .map(|(id, l)| (id.clone(), l.cancelled))
            .collect();
        let mut lost = 0;
        for (id, cancelled) in due {
            if !cancelled {
                lost += 1;
                tracing::warn!(lease = %id, "lease expired");
            }
            self.lose_lease(&id, "stopped renewing its lease");
        }
        lost
    }

    /// A heartbeat: renews the listed leases the worker still holds; answers the ones to
    /// abandon (cancelled, lost or unknown).
    pub(crate) fn heartbeat(
        &mut self,
        worker: &WorkerId,
        leases: Vec<LeaseId>,
        ttl: Duration,
        now: Instant,
    ) -> HeartbeatResponse {
        let Some(w) = self.workers.get_mut(worker) else {
            return HeartbeatResponse {
                cancel: leases,
                unknown_worker: true,
            };
        };
        w.last_seen = now;
        let mut cancel = Vec::new();
        for id in leases {
            match self.leases.get_mut(&id) {
                Some(l) if &l.worker == worker && !l.cancelled => l.expires = now + ttl,
                Some(l) if &l.worker == worker => {
                    // Told once; a later heartbeat listing it finds it unknown and cancels again.
                    self.release(&id);
                    cancel.push(id);
                }
                _ => cancel.push(id),
            }
        }
        HeartbeatResponse {
            cancel,
            unknown_worker: false,
        }
    }

    /// The first half of `complete`: checks the lease is current and ends it. An error
    /// outcome re-queues; a result is marked completing and handed back for storing and
    /// delivery.
    pub(crate) fn begin_complete(
        &mut self,
        id: &LeaseId,
        outcome: LeaseOutcome,
        now: Instant,
    ) -> Completion {
        match self.leases.get(id) {
            None => return Completion::Refused,
            Some(l) if l.cancelled => {
                self.release(id);
                return Completion::Refused;
            }
            Some(l) if l.expires <= now => {
                self.lose_lease(id, "reported after its lease expired");
                return Completion::Refused;
            }
            Some(_) => {}
        }
        let Some(entry) = self.release(id) else {
            return Completion::Refused;
        };
        let current = self
            .actions
            .get(&entry.key)
            .is_some_and(|a| a.state == ActionState::Leased(id.clone()));
        if !current {
            return Completion::Refused;
        }
        let target = self
            .actions
            .get(&entry.key)
            .map(|a| a.target.clone())
            .unwrap_or_default();
        match outcome {
            LeaseOutcome::Error { reason } => {
                let reason = format!("{} could not run {target}: {reason}", entry.worker_name);
                self.retry_or_fail(&entry.key, reason, self.max_attempts, now);
                Completion::Retried
            }
            LeaseOutcome::Completed { mut result } => {
                if let Err(e) = validate::outputs(&result.output_files) {
                    let reason = format!(
                        "{} reported a bad result for {target}: {e}",
                        entry.worker_name
                    );
                    self.retry_or_fail(&entry.key, reason, self.max_attempts, now);
                    return Completion::BadResult(e);
                }
                result.worker = entry.worker_name.clone();
                if result.timings.queued_ms == 0 {
                    result.timings.queued_ms = entry.queued_ms;
                }
                let Some(action) = self.actions.get_mut(&entry.key) else {
                    return Completion::Refused;
                };
                action.state = ActionState::Completing;
                let store = result.exit_code == 0 && action.cacheable;
                Completion::Deliver {
                    key: entry.key,
                    result: Box::new(result),
                    spec: action.spec.clone(),
                    prereqs: action.prereqs.clone(),
                    store,
                    target,
                }
            }
        }
    }
}
