//! The worker's life: register (retrying while the coordinator is unreachable), heartbeat
//! (renewing running leases, killing cancelled ones, re-registering when forgotten), `slots`
//! long-polling lease loops, and a graceful stop: no new leases, running actions finish within
//! the grace period or are cancelled and reported as errors (so they are re-queued), then the
//! worker deregisters.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use rmake_exec::CancelHandle;
use rmake_proto::exec::{Lease, LeaseId, LeaseOutcome, RegisterRequest, WorkerId};
use rmake_proto::{ClientError, CoordinatorClient};

use crate::config::Config;
use crate::lease::{Executor, LeaseRun};

/// First wait after a failed request; doubled up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Runs a worker until `shutdown` completes, then stops gracefully (see the module docs).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let client = CoordinatorClient::new(&config.coordinator, config.token.clone())
        .context("coordinator address")?;
    std::fs::create_dir_all(&config.work_dir)
        .with_context(|| format!("creating work directory {}", config.work_dir.display()))?;
    let mut executor = Executor::new(
        client.clone(),
        config.work_dir.clone(),
        config.cache_max_bytes,
        config.name.clone(),
    )?;
    executor = executor.with_idle_roots(config.idle_exec_roots as usize);
    executor.default_timeout = config.default_timeout;
    executor.kill_grace = config.kill_grace;
    let (stop_tx, stop_rx) = watch::channel(false);
    let agent = Arc::new(Agent {
        client,
        executor,
        config: config.clone(),
        registration: tokio::sync::Mutex::new(None),
        running: Mutex::new(HashMap::new()),
        cancelled_by_coordinator: Mutex::new(HashSet::new()),
        stop: stop_rx,
    });
    tokio::pin!(shutdown);
    tokio::select! {
        r = agent.register() => r,
        () = &mut shutdown => {
            tracing::info!("stopped before registering");
            return Ok(());
        }
    }
    let heartbeat = tokio::spawn(agent.clone().heartbeat_loop());
    let mut slots = tokio::task::JoinSet::new();
    for slot in 0..config.slots.max(1) {
        slots.spawn(agent.clone().slot_loop(slot));
    }
    shutdown.await;
    tracing::info!("stopping: no new leases; waiting for running actions");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while slots.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(grace = ?config.shutdown_grace, "actions still running after the grace period: cancelling them");
        agent.cancel_all();
        while slots.join_next().await.is_some() {}
    }
    heartbeat.abort();
    agent.executor.settle().await;
    let id = agent
        .registration
        .lock()
        .await
        .as_ref()
        .map(|r| r.worker.clone());
    if let Some(id) = id {
        match tokio::time::timeout(Duration::from_secs(5), agent.client.deregister_worker(&id))
            .await
        {
            Ok(Ok(())) => tracing::info!(worker = %id, "deregistered"),
            Ok(Err(e)) => tracing::warn!(worker = %id, error = %e, "could not deregister"),
            Err(_) => tracing::warn!(worker = %id, "deregistering timed out"),
        }
    }
    Ok(())
}

struct Registration {
    worker: WorkerId,
    heartbeat: Duration,
}

struct Agent {
    client: CoordinatorClient,
    executor: Executor,
    config: Config,
    registration: tokio::sync::Mutex<Option<Registration>>,
    /// Leases running now, with the handle that stops each.
    running: Mutex<HashMap<LeaseId, CancelHandle>>,
    /// Leases the coordinator told us to abandon (report nothing for them).
    cancelled_by_coordinator: Mutex<HashSet<LeaseId>>,
    stop: watch::Receiver<bool>,
}

fn is_unknown_worker(e: &ClientError) -> bool {
    e.status() == Some(404) && e.code() == Some("unknown_worker")
}

impl Agent {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Registers, retrying with backoff until it works.
    async fn register(&self) {
        let mut reg = self.registration.lock().await;
        self.register_locked(&mut reg).await;
    }

    async fn register_locked(&self, reg: &mut Option<Registration>) {
        let req = RegisterRequest {
            name: self.config.name.clone(),
            slots: self.config.slots.max(1),
            platform: self.config.platform.clone(),
        };
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.client.register_worker(&req).await {
                Ok(r) => {
                    tracing::info!(worker = %r.worker, coordinator = %self.client.base_url(), slots = req.slots, "registered");
                    *reg = Some(Registration {
                        worker: r.worker,
                        heartbeat: Duration::from_millis(r.heartbeat_ms.max(50)),
                    });
                    return;
                }
                Err(e) => {
                    tracing::warn!(coordinator = %self.client.base_url(), error = %e, retry_in = ?backoff, "cannot register");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Registers again if the coordinator forgot `old` (and nobody did it meanwhile).
    async fn reregister(&self, old: &WorkerId) {
        let mut reg = self.registration.lock().await;
        if reg.as_ref().is_some_and(|r| &r.worker == old) {
            tracing::warn!(worker = %old, "the coordinator does not know this worker; registering again");
            self.register_locked(&mut reg).await;
        }
    }

    async fn current(&self) -> Option<(WorkerId, Duration)> {
        self.registration
            .lock()
            .await
            .as_ref()
            .map(|r| (r.worker.clone(), r.heartbeat))
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        loop {
            let Some((id, every)) = self.current().await else {
                return;
            };
            tokio::time::sleep(every).await;
            let leases: Vec<LeaseId> = match self.running.lock() {
                Ok(r) => r.keys().cloned().collect(),
                Err(_) => Vec::new(),
            };
            match self.client.heartbeat(&id, leases).await {
                Ok(resp) => {
                    for lease in resp.cancel {
                        self.cancel_for_coordinator(&lease);
                    }
                    if resp.unknown_worker {
                        self.reregister(&id).await;
                    }
                }
                Err(e) if is_unknown_worker(&e) => self.reregister(&id).await,
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
        }
    }

    fn cancel_for_coordinator(&self, lease: &LeaseId) {
        let handle = self.running.lock().ok().and_then(|r| r.get(lease).cloned());
        if let Some(h) = handle {
            tracing::info!(%lease, "the coordinator cancelled a running lease; killing it");
            if let Ok(mut c) = self.cancelled_by_coordinator.lock() {
                c.insert(lease.clone());
            }
            h.cancel();
        }
    }

    fn cancel_all(&self) {
        if let Ok(r) = self.running.lock() {
            for h in r.values() {
                h.cancel();
            }
        }
    }

    async fn slot_loop(self: Arc<Self>, slot: u32) {
        let mut stop = self.stop.clone();
        let mut backoff = BACKOFF_MIN;
        let wait_ms = u64::try_from(self.config.lease_wait.as_millis()).unwrap_or(30_000);
        loop {
            if self.stopping() {
                return;
            }
            let Some((id, _)) = self.current().await else {
                return;
            };
            let got = tokio::select! {
                r = self.client.lease(&id, wait_ms) => r,
                _ = stop.changed() => return,
            };
            match got {
                Ok(resp) => {
                    backoff = BACKOFF_MIN;
                    if let Some(lease) = resp.lease {
                        self.run_one(slot, lease).await;
                    }
                }
                Err(e) if is_unknown_worker(&e) => self.reregister(&id).await,
                Err(e) => {
                    tracing::warn!(slot, error = %e, retry_in = ?backoff, "lease request failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn run_one(&self, slot: u32, lease: Lease) {
        tracing::info!(slot, lease = %lease.id, target = %lease.target, attempt = lease.attempt, "running");
        let cancel = CancelHandle::new();
        if let Ok(mut r) = self.running.lock() {
            r.insert(lease.id.clone(), cancel.clone());
        }
        let run = self.executor.run(&lease, cancel).await;
        if let Ok(mut r) = self.running.lock() {
            r.remove(&lease.id);
        }
        let by_coordinator = self
            .cancelled_by_coordinator
            .lock()
            .map(|mut c| c.remove(&lease.id))
            .unwrap_or(false);
        let outcome = match run {
            LeaseRun::Cancelled if by_coordinator => None,
            LeaseRun::Cancelled => Some(LeaseOutcome::Error {
                reason: format!(
                    "worker {} stopped while running the action",
                    self.config.name
                ),
            }),
            other => {
                if let LeaseRun::Completed(r) = &other {
                    tracing::info!(lease = %lease.id, target = %lease.target, exit = r.exit_code, "done");
                }
                other.outcome()
            }
        };
        let Some(outcome) = outcome else { return };
        self.complete(&lease.id, &outcome).await;
    }

    /// Reports a lease's end, retrying a few times on transport errors.
    async fn complete(&self, lease: &LeaseId, outcome: &LeaseOutcome) {
        let mut backoff = BACKOFF_MIN;
        for attempt in 1..=5 {
            match self.client.complete_lease(lease, outcome).await {
                Ok(true) => return,
                Ok(false) => {
                    tracing::info!(%lease, "the coordinator dropped the result (the lease was no longer current)");
                    return;
                }
                Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                    tracing::warn!(%lease, error = %e, "result refused");
                    return;
                }
                Err(e) => {
                    tracing::warn!(%lease, attempt, error = %e, "reporting the result failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}
