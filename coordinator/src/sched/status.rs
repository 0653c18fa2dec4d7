//! `FarmStatus`: what `GET /v1/farm` answers — workers, builds, queued and running actions.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

use super::queue::ActionState;
use super::Inner;

/// The scheduler's state at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmStatus {
    /// Registered workers, by id.
    pub workers: Vec<WorkerStatus>,
    /// Open builds, by id.
    pub builds: Vec<BuildStatus>,
    /// Actions waiting for a worker.
    pub queued: u64,
    /// Actions leased (or whose result is being stored).
    pub running: u64,
}

/// One registered worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Actions it runs at once.
    pub slots: u32,
    /// Its properties.
    pub platform: BTreeMap<String, String>,
    /// Leases it holds.
    pub leases: u32,
    /// Milliseconds since it was last heard from.
    pub idle_ms: u64,
}

/// One open build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStatus {
    /// Its id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Its `-j` (0: no limit).
    pub jobs: u32,
    /// Its actions waiting for a worker.
    pub queued: u32,
    /// Leases charged to it.
    pub running: u32,
    /// Its execute requests waiting.
    pub waiting: u32,
}

impl Inner {
    /// A snapshot of the tables.
    pub(crate) fn status(&self, now: Instant) -> FarmStatus {
        let mut workers: Vec<WorkerStatus> = self
            .workers
            .iter()
            .map(|(id, w)| WorkerStatus {
                id: id.to_string(),
                name: w.name.clone(),
                slots: w.slots,
                platform: w.platform.clone(),
                leases: w.leases.len() as u32,
                idle_ms: now.saturating_duration_since(w.last_seen).as_millis() as u64,
            })
            .collect();
        workers.sort_by(|a, b| a.id.cmp(&b.id));
        let mut builds: Vec<BuildStatus> = self
            .builds
            .iter()
            .map(|(id, b)| BuildStatus {
                id: id.to_string(),
                label: b.label.clone(),
                jobs: b.jobs,
                queued: self
                    .actions
                    .values()
                    .filter(|a| {
                        a.state == ActionState::Queued && a.waiters.values().any(|w| &w.build == id)
                    })
                    .count() as u32,
                running: b.running,
                waiting: b.waiters,
            })
            .collect();
        builds.sort_by(|a, b| a.id.cmp(&b.id));
        let (queued, running) = self.counts();
        FarmStatus {
            workers,
            builds,
            queued,
            running,
        }
    }
}
