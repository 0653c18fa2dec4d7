//! The remote-execution scheduler: builds, the fair ready queue, workers and leases.
//!
//! All state sits in one [`Inner`] behind a `std::sync::Mutex` that is never held across an
//! `.await`; the methods of [`Scheduler`] lock it, change it and return. Lease requests wait on
//! a `tokio::sync::Notify` woken whenever work may have become available. The state lives in
//! memory: a coordinator restart forgets builds, workers and leases (workers re-register,
//! clients resubmit) but keeps the action cache. See `docs/farm.md`.

mod builds;
mod error;
mod ids;
mod leases;
mod queue;
mod status;
mod sweeper;
pub(crate) mod validate;
mod workers;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::sync::Notify;

use rmake_proto::exec::ActionSpec;
use rmake_proto::exec::{
    BuildRequest, ExecuteEvent, ExecuteRequest, ExecuteResponse, HeartbeatResponse, Lease, LeaseId,
    LeaseOutcome, RegisterRequest, RegisterResponse, WorkerId,
};
use rmake_proto::{ActionKey, ActionResult, BuildId, OutputFile};

use crate::config::SchedSettings;
use crate::error::StoreError;
use crate::pins::Pins;
use crate::readsets::{NotStored, ReadSetCache};

pub use error::SchedError;
pub use status::{BuildStatus, FarmStatus, WorkerStatus};
pub use sweeper::{spawn_sweeper, SweepReport, SWEEP_INTERVAL};

use leases::{Completion, LeaseEntry};
use queue::Action;

/// Longest a lease request waits for work.
pub const MAX_LEASE_WAIT: Duration = Duration::from_secs(30);

/// How long the pins of an action in flight last without renewal (the sweeper renews them).
const PIN_TTL: Duration = Duration::from_secs(3600);

/// The pin lease that keeps an action's inputs and outputs from eviction while it is in flight.
fn pin_id(key: &ActionKey) -> BuildId {
    BuildId(format!("action-{key}"))
}

/// The scheduler's tables.
#[derive(Debug)]
struct Inner {
    builds: HashMap<BuildId, builds::Build>,
    /// Builds in the order they are served (round-robin from `cursor`).
    order: Vec<BuildId>,
    cursor: usize,
    actions: HashMap<ActionKey, Action>,
    leases: HashMap<LeaseId, LeaseEntry>,
    workers: HashMap<WorkerId, workers::Worker>,
    next_waiter: u64,
    pins: Arc<Pins>,
    pins_renewed: Instant,
    lease_ttl: Duration,
    max_attempts: u32,
    platform_wait: Duration,
    build_idle: Duration,
    /// The coordinator is stopping: no more leases.
    closing: bool,
}

impl Inner {
    fn new(settings: &SchedSettings, pins: Arc<Pins>) -> Inner {
        Inner {
            builds: HashMap::new(),
            order: Vec::new(),
            cursor: 0,
            actions: HashMap::new(),
            leases: HashMap::new(),
            workers: HashMap::new(),
            next_waiter: 0,
            pins,
            pins_renewed: Instant::now(),
            lease_ttl: settings.lease_ttl,
            max_attempts: settings.max_attempts.max(1),
            platform_wait: settings.platform_wait,
            build_idle: settings.build_idle,
            closing: false,
        }
    }
}

/// The scheduler: shared by every handler (in [`crate::AppState`]) and the sweeper.
pub struct Scheduler {
    inner: Mutex<Inner>,
    /// Woken when an action is queued or a build gets room.
    work: Notify,
    settings: SchedSettings,
    cache: ReadSetCache,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("settings", &self.settings)
            .finish()
    }
}

/// An execute request's events, and the guard that withdraws it when dropped.
#[derive(Debug)]
pub struct Submission {
    /// The events, ending with `finished` or `failed`.
    pub events: UnboundedReceiver<ExecuteEvent>,
    /// Withdraws the request when dropped (the client went away).
    pub guard: WaiterGuard,
}

/// Withdraws one waiter from its action when dropped; an action nobody waits for any more is
/// dropped from the queue or cancelled on its worker.
#[derive(Debug)]
pub struct WaiterGuard {
    sched: Arc<Scheduler>,
    key: ActionKey,
    waiter: u64,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        let withdrawn = self
            .sched
            .lock()
            .remove_waiter(&self.key, self.waiter, Instant::now());
        if withdrawn {
            // A cancelled lease may have freed a build slot.
            self.sched.work.notify_waiters();
        }
    }
}

/// Keeps a worker counted as waiting while its lease request waits.
struct Polling<'a> {
    sched: &'a Scheduler,
    worker: &'a WorkerId,
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        let mut inner = self.sched.lock();
        if let Some(w) = inner.workers.get_mut(self.worker) {
            w.polling = w.polling.saturating_sub(1);
            w.last_seen = Instant::now();
        }
    }
}

impl Scheduler {
    /// A scheduler storing results in `cache` and pinning blobs in `pins`.
    pub fn new(settings: SchedSettings, cache: ReadSetCache, pins: Arc<Pins>) -> Scheduler {
        Scheduler {
            inner: Mutex::new(Inner::new(&settings, pins)),
            work: Notify::new(),
            settings,
            cache,
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &SchedSettings {
        &self.settings
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves tables that are still consistent enough to
        // serve: every change is a handful of map operations.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a build.
    pub fn open_build(&self, req: BuildRequest) -> BuildId {
        self.lock().open_build(req, Instant::now())
    }

    /// Cancels a build and everything only it waits for; `false` if unknown.
    pub fn cancel_build(&self, id: &BuildId) -> bool {
        let found = self.lock().cancel_build(id);
        self.work.notify_waiters();
        found
    }

    /// Notes a request of the build (keeping it alive); fails if the build is not open.
    pub fn touch_build(&self, id: &BuildId) -> Result<(), SchedError> {
        if self.lock().touch_build(id, Instant::now()) {
            Ok(())
        } else {
            Err(SchedError::UnknownBuild(id.to_string()))
        }
    }

    /// Queues `req` for `build` (or joins the identical action in flight). The first event
    /// is `queued`.
    pub fn submit(
        self: &Arc<Self>,
        build: &BuildId,
        req: ExecuteRequest,
        key: ActionKey,
    ) -> Result<Submission, SchedError> {
        self.submit_explained(build, req, key, None)
    }

    /// [`Scheduler::submit`], the `queued` event carrying `why` the cache missed.
    pub fn submit_explained(
        self: &Arc<Self>,
        build: &BuildId,
        req: ExecuteRequest,
        key: ActionKey,
        why: Option<Vec<String>>,
    ) -> Result<Submission, SchedError> {
        let (tx, events) = unbounded_channel();
        let waiter = self
            .lock()
            .submit(build, req, key, why, tx, Instant::now())
            .ok_or_else(|| SchedError::UnknownBuild(build.to_string()))?;
        self.work.notify_waiters();
        Ok(Submission {
            events,
            guard: WaiterGuard {
                sched: self.clone(),
                key,
                waiter,
            },
        })
    }

    /// Registers a worker.
    pub fn register(&self, req: RegisterRequest) -> RegisterResponse {
        let worker = self.lock().register(req, Instant::now());
        // It may take actions whose platform nobody had.
        self.work.notify_waiters();
        let ttl = self.settings.lease_ttl.as_millis() as u64;
        RegisterResponse {
            worker,
            heartbeat_ms: (ttl / 4).max(1),
            lease_ttl_ms: ttl,
        }
    }

    /// Deregisters a worker; its leases are re-queued at once. `false` if unknown.
    pub fn deregister(&self, worker: &WorkerId) -> bool {
        let found = self.lock().deregister(worker);
        self.work.notify_waiters();
        found
    }

    /// Waits up to `wait` (at most [`MAX_LEASE_WAIT`]) for an action `worker` may run.
    pub async fn lease(
        &self,
        worker: &WorkerId,
        wait: Duration,
    ) -> Result<Option<Lease>, SchedError> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_LEASE_WAIT);
        {
            let mut inner = self.lock();
            let Some(w) = inner.workers.get_mut(worker) else {
                return Err(SchedError::UnknownWorker(worker.to_string()));
            };
            w.polling += 1;
            w.last_seen = Instant::now();
        }
        let _polling = Polling {
            sched: self,
            worker,
        };
        loop {
            let notified = self.work.notified();
            tokio::pin!(notified);
            // Registered before looking, so a wake-up between the look and the wait is kept.
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                if !inner.workers.contains_key(worker) {
                    return Err(SchedError::UnknownWorker(worker.to_string()));
                }
                if inner.closing {
                    return Ok(None);
                }
                if let Some(lease) =
                    inner.grant_lease(worker, self.settings.lease_ttl, Instant::now())
                {
                    return Ok(Some(lease));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(None);
            }
        }
    }

    /// Renews the listed leases of `worker`; answers the ones to abandon.
    pub fn heartbeat(&self, worker: &WorkerId, leases: Vec<LeaseId>) -> HeartbeatResponse {
        self.lock()
            .heartbeat(worker, leases, self.settings.lease_ttl, Instant::now())
    }

    /// Ends a lease with its outcome. `Ok(false)`: the lease was not current and the result
    /// was dropped. A successful result of a cacheable action is stored (after checking its
    /// blobs) before the waiters get it.
    pub async fn complete(
        self: &Arc<Self>,
        id: &LeaseId,
        outcome: LeaseOutcome,
    ) -> Result<bool, SchedError> {
        let completion = self.lock().begin_complete(id, outcome, Instant::now());
        self.work.notify_waiters();
        let (key, result, action, store, target) = match completion {
            Completion::Refused => {
                tracing::info!(lease = %id, "result of a lease that is no longer current dropped");
                return Ok(false);
            }
            Completion::Retried => return Ok(true),
            Completion::BadResult(e) => return Err(SchedError::bad_request(e)),
            Completion::Deliver {
                key,
                result,
                spec,
                prereqs,
                store,
                target,
            } => (key, result, (spec, prereqs), store, target),
        };
        // In a task of its own: if the worker's connection drops meanwhile, the action must
        // still finish rather than stay `completing` with its waiters hanging.
        let sched = self.clone();
        tokio::spawn(async move { sched.deliver(key, result, action, store, target).await })
            .await?;
        Ok(true)
    }

    /// The second half of `complete`: stores the result (if `store` and the worker recorded
    /// every read) under the key of what it read, then ends the action with `finished`, or
    /// with `failed` if the cache refused the result for missing blobs.
    async fn deliver(
        &self,
        key: ActionKey,
        result: Box<ActionResult>,
        (spec, prereqs): (Arc<ActionSpec>, Arc<Vec<OutputFile>>),
        store: bool,
        target: String,
    ) {
        let mut event = None;
        let mut stored_key = key;
        if store {
            self.lock().pins.pin(
                &pin_id(&key),
                result.referenced_blobs(),
                PIN_TTL,
                Instant::now(),
            );
        }
        // One blocking task stores the result and reads the small outputs sent along with it.
        let cache = self.cache.clone();
        let task = tokio::task::spawn_blocking(move || {
            let stored = store.then(|| cache.store(&spec, &prereqs, &result));
            let inline = cache.inline(&result.output_files);
            (result, stored, inline)
        })
        .await;
        let (result, stored, inline) = match task {
            Ok(x) => x,
            Err(e) => {
                let reason =
                    format!("the coordinator failed while storing the result of {target}: {e}");
                tracing::error!(%key, %reason);
                self.lock()
                    .finish_action(&key, ExecuteEvent::Failed { reason }, Instant::now());
                return;
            }
        };
        match stored {
            None => {}
            Some(Ok(Ok(full))) => {
                stored_key = full;
                tracing::debug!(%key, stored = %full, %target, "result stored in the action cache")
            }
            Some(Ok(Err(NotStored::ReadsIncomplete))) => tracing::info!(
                %key, %target, "result not cached: the worker could not record every file it read"
            ),
            Some(Ok(Err(NotStored::TooManyReads(n)))) => tracing::info!(
                %key, %target, reads = n, "result not cached: it read too many files"
            ),
            Some(Err(StoreError::MissingOutputs { count, example })) => {
                let reason = format!(
                    "the result of {target} refers to {count} blob(s) the coordinator does not \
                     hold (e.g. {example}): the worker did not upload its outputs"
                );
                tracing::warn!(%key, %reason, "result refused");
                event = Some(ExecuteEvent::Failed { reason });
            }
            Some(Err(e)) => {
                tracing::warn!(%key, error = %e, "could not store the result; delivering it anyway")
            }
        }
        let event = event.unwrap_or_else(|| {
            ExecuteEvent::Finished(Box::new(ExecuteResponse {
                key: stored_key,
                result: *result,
                cached: false,
                inline,
            }))
        });
        self.lock().finish_action(&key, event, Instant::now());
    }

    /// One sweep (the background task calls this every [`SWEEP_INTERVAL`]).
    pub fn sweep(&self, now: Instant) -> SweepReport {
        let report = self.lock().sweep(now);
        if report.leases_lost + report.workers_forgotten + report.builds_expired > 0 {
            self.work.notify_waiters();
        }
        report
    }

    /// The coordinator is stopping: every action in flight fails (so execute streams end)
    /// and waiting lease requests return empty.
    pub fn shutdown(&self) {
        {
            let mut inner = self.lock();
            inner.closing = true;
            let keys: Vec<ActionKey> = inner.actions.keys().copied().collect();
            let now = Instant::now();
            for key in keys {
                let reason = "the coordinator is shutting down".to_string();
                inner.finish_action(&key, ExecuteEvent::Failed { reason }, now);
            }
        }
        tracing::info!("scheduler stopped");
        self.work.notify_waiters();
    }

    /// Workers, builds, queued and running counts.
    pub fn status(&self) -> FarmStatus {
        self.lock().status(Instant::now())
    }
}
