//! Actions in flight and the ready queues: submitting (with deduplication by key), waiters
//! coming and going, picking the next action for a worker (round-robin between builds, each
//! build FIFO and within its `-j`), re-queueing and finishing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use rmake_proto::exec::{ActionSpec, ExecuteEvent, ExecuteRequest, LeaseId, WorkerId};
use rmake_proto::{ActionKey, BuildId, OutputFile};

use super::{pin_id, Inner, PIN_TTL};

/// Where an action stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ActionState {
    /// In the queues of the builds waiting for it.
    Queued,
    /// Running under this lease.
    Leased(LeaseId),
    /// A worker reported its result, which is being stored; then it finishes.
    Completing,
}

/// One execute request waiting for an action.
#[derive(Debug)]
pub(crate) struct Waiter {
    /// The build it came from.
    pub(crate) build: BuildId,
    /// Its event stream.
    pub(crate) tx: UnboundedSender<ExecuteEvent>,
}

/// One action in flight (queued, leased or completing), shared by every request for its key.
#[derive(Debug)]
pub(crate) struct Action {
    /// What to run.
    pub(crate) spec: Arc<ActionSpec>,
    /// Its direct prerequisites with digests (of the first request: the spec's key fixes them
    /// but for their order), for the `pre_key` its result is stored under.
    pub(crate) prereqs: Arc<Vec<OutputFile>>,
    /// The target, for logs and messages.
    pub(crate) target: String,
    /// Whether a successful result is stored (if any waiter asked for it).
    pub(crate) cacheable: bool,
    /// The requests waiting for it, by waiter id.
    pub(crate) waiters: HashMap<u64, Waiter>,
    /// Where it stands.
    pub(crate) state: ActionState,
    /// Tries started so far.
    pub(crate) attempts: u32,
    /// When it was first queued.
    pub(crate) queued_at: Instant,
    /// Since when no registered worker could take it (while queued).
    pub(crate) unmatched_since: Option<Instant>,
}

impl Action {
    /// Sends an event to every waiter (a closed stream is cleaned up by its guard).
    pub(crate) fn broadcast(&self, ev: &ExecuteEvent) {
        for w in self.waiters.values() {
            let _ = w.tx.send(ev.clone());
        }
    }

    /// Whether `build` waits for this action.
    fn waited_by(&self, build: &BuildId) -> bool {
        self.waiters.values().any(|w| &w.build == build)
    }

    /// The builds waiting for it, each once.
    fn builds(&self) -> Vec<BuildId> {
        let mut out: Vec<BuildId> = self.waiters.values().map(|w| w.build.clone()).collect();
        out.sort();
        out.dedup();
        out
    }
}

impl Inner {
    /// Adds a waiter for `req` from `build` (which must exist), queueing the action unless it
    /// is already in flight. Sends `queued` (and `started` if it runs already). Returns the
    /// waiter id, or `None` if the build does not exist.
    pub(crate) fn submit(
        &mut self,
        build: &BuildId,
        req: ExecuteRequest,
        key: ActionKey,
        why: Option<Vec<String>>,
        tx: UnboundedSender<ExecuteEvent>,
        now: Instant,
    ) -> Option<u64> {
        if !self.builds.contains_key(build) {
            return None;
        }
        self.next_waiter += 1;
        let id = self.next_waiter;
        let _ = tx.send(ExecuteEvent::Queued { key, why });
        let waiter = Waiter {
            build: build.clone(),
            tx,
        };
        if let Some(action) = self.actions.get_mut(&key) {
            tracing::debug!(%key, target = %req.target, %build, "joins an action in flight");
            action.cacheable |= req.cacheable;
            let first_of_build = !action.waited_by(build);
            if let ActionState::Leased(lease) = &action.state {
                if let Some(l) = self.leases.get(lease) {
                    let _ = waiter.tx.send(ExecuteEvent::Started {
                        worker: l.worker_name.clone(),
                        attempt: l.attempt,
                    });
                }
            }
            let queued = action.state == ActionState::Queued;
            action.waiters.insert(id, waiter);
            if queued && first_of_build {
                if let Some(b) = self.builds.get_mut(build) {
                    b.queue.push_back(key);
                }
            }
        } else {
            tracing::debug!(%key, target = %req.target, %build, "queued");
            self.pins.pin(
                &pin_id(&key),
                std::iter::once(req.spec.input_root).chain(req.spec.input_blobs()),
                PIN_TTL,
                now,
            );
            let target = if req.target.is_empty() {
                req.spec
                    .outputs
                    .first()
                    .cloned()
                    .unwrap_or_else(|| key.to_string())
            } else {
                req.target
            };
            let mut waiters = HashMap::new();
            waiters.insert(id, waiter);
            self.actions.insert(
                key,
                Action {
                    spec: Arc::new(req.spec),
                    prereqs: Arc::new(req.prereqs),
                    target,
                    cacheable: req.cacheable,
                    waiters,
                    state: ActionState::Queued,
                    attempts: 0,
                    queued_at: now,
                    unmatched_since: None,
                },
            );
            if let Some(b) = self.builds.get_mut(build) {
                b.queue.push_back(key);
            }
        }
        self.count_waiter(build, true, now);
        Some(id)
    }

    /// A waiter went away (its stream was dropped). An action nobody waits for any more is
    /// dropped from the queue, or its lease is cancelled. Returns whether the waiter was still
    /// there (it is not after its last event).
    pub(crate) fn remove_waiter(&mut self, key: &ActionKey, waiter: u64, now: Instant) -> bool {
        let Some(action) = self.actions.get_mut(key) else {
            return false;
        };
        let Some(w) = action.waiters.remove(&waiter) else {
            return false;
        };
        let empty = action.waiters.is_empty();
        self.count_waiter(&w.build, false, now);
        if empty {
            tracing::debug!(%key, "no client waits for the action any more; cancelling it");
            self.drop_action(key);
        }
        true
    }

    /// Drops an action nobody waits for: out of the queues (lazily), its lease cancelled, its
    /// pins released. An action being completed is left to finish.
    pub(crate) fn drop_action(&mut self, key: &ActionKey) {
        let Some(action) = self.actions.get(key) else {
            return;
        };
        match action.state.clone() {
            ActionState::Completing => {}
            ActionState::Queued => {
                self.actions.remove(key);
                self.pins.unpin(&pin_id(key));
            }
            ActionState::Leased(lease) => {
                self.cancel_lease(&lease);
                self.actions.remove(key);
                self.pins.unpin(&pin_id(key));
            }
        }
    }

    /// Ends an action: every waiter gets `ev` (its last event), the action and its pins go.
    pub(crate) fn finish_action(&mut self, key: &ActionKey, ev: ExecuteEvent, now: Instant) {
        let Some(action) = self.actions.remove(key) else {
            return;
        };
        if let ActionState::Leased(lease) = &action.state {
            self.cancel_lease(lease);
        }
        action.broadcast(&ev);
        for w in action.waiters.values() {
            self.count_waiter(&w.build, false, now);
        }
        self.pins.unpin(&pin_id(key));
    }

    /// A try ended without a result (`reason` says how): the action goes back to the front of
    /// its builds' queues, or, after the last try, every waiter gets `failed`.
    pub(crate) fn retry_or_fail(
        &mut self,
        key: &ActionKey,
        reason: String,
        max_attempts: u32,
        now: Instant,
    ) {
        let Some(action) = self.actions.get_mut(key) else {
            return;
        };
        if action.attempts >= max_attempts {
            let tries = action.attempts;
            tracing::warn!(%key, target = %action.target, %reason, tries, "action failed for good");
            let plural = if tries == 1 { "try" } else { "tries" };
            self.finish_action(
                key,
                ExecuteEvent::Failed {
                    reason: format!("{reason} ({tries} {plural})"),
                },
                now,
            );
            return;
        }
        tracing::info!(%key, target = %action.target, %reason, attempt = action.attempts, "re-queued");
        action.state = ActionState::Queued;
        action.unmatched_since = None;
        for b in action.builds() {
            if let Some(build) = self.builds.get_mut(&b) {
                build.queue.push_front(*key);
            }
        }
    }

    /// Whether the queue entry `key` of `build` still stands for a queued action it waits for.
    fn entry_live(&self, build: &BuildId, key: &ActionKey) -> bool {
        self.actions
            .get(key)
            .is_some_and(|a| a.state == ActionState::Queued && a.waited_by(build))
    }

    /// The next action `worker` may run: builds are visited round-robin from the cursor, one
    /// with room under its `-j` offers the oldest queued action whose platform the worker has.
    /// Removes it from that queue and returns it with the build it is charged to.
    pub(crate) fn pick(&mut self, worker: &WorkerId) -> Option<(ActionKey, BuildId)> {
        let n = self.order.len();
        let platform = &self.workers.get(worker)?.platform;
        for i in 0..n {
            let idx = (self.cursor + i) % n;
            let bid = &self.order[idx];
            let Some(build) = self.builds.get(bid) else {
                continue;
            };
            if !build.has_room() || build.queue.is_empty() {
                continue;
            }
            let mut stale = Vec::new();
            let mut found = None;
            for (pos, key) in build.queue.iter().enumerate() {
                if !self.entry_live(bid, key) {
                    stale.push(pos);
                    continue;
                }
                let fits = self
                    .actions
                    .get(key)
                    .is_some_and(|a| super::workers::platform_fits(&a.spec.platform, platform));
                if fits {
                    found = Some(pos);
                    break;
                }
            }
            let bid = bid.clone();
            if let Some(build) = self.builds.get_mut(&bid) {
                let mut taken = None;
                // Remove from the back so earlier positions stay valid.
                let mut remove: Vec<usize> = stale;
                remove.extend(found);
                remove.sort_unstable();
                for pos in remove.into_iter().rev() {
                    let k = build.queue.remove(pos);
                    if Some(pos) == found {
                        taken = k;
                    }
                }
                if let Some(key) = taken {
                    self.cursor = (idx + 1) % n;
                    return Some((key, bid));
                }
            }
        }
        None
    }

    /// Queued actions and leased ones, over all builds.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let mut queued = 0;
        let mut running = 0;
        for a in self.actions.values() {
            match a.state {
                ActionState::Queued => queued += 1,
                ActionState::Leased(_) | ActionState::Completing => running += 1,
            }
        }
        (queued, running)
    }
}
