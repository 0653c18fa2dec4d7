//! Registered workers: their slots and platform, when they were last heard from, the leases
//! they hold; registration, deregistration and forgetting silent ones.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use rmake_proto::exec::{LeaseId, RegisterRequest, WorkerId};

use super::{ids, Inner};

/// One registered worker.
#[derive(Debug)]
pub(crate) struct Worker {
    /// Its human-readable name (need not be unique).
    pub(crate) name: String,
    /// Actions it runs at once (as it announced).
    pub(crate) slots: u32,
    /// Its properties.
    pub(crate) platform: BTreeMap<String, String>,
    /// The last request it made (register, lease, heartbeat).
    pub(crate) last_seen: Instant,
    /// Lease requests of it waiting right now (a worker waiting for work is alive).
    pub(crate) polling: u32,
    /// Leases it holds, cancelled ones included until it is told.
    pub(crate) leases: HashSet<LeaseId>,
}

impl Worker {
    /// Whether this worker has every property `wanted` asks for, with the same value.
    pub(crate) fn can_take(&self, wanted: &BTreeMap<String, String>) -> bool {
        platform_fits(wanted, &self.platform)
    }
}

/// Whether `have` holds every entry of `wanted` with an equal value.
pub(crate) fn platform_fits(
    wanted: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) -> bool {
    wanted.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// `os=linux, arch=x86_64`, for messages.
pub(crate) fn describe(platform: &BTreeMap<String, String>) -> String {
    if platform.is_empty() {
        return "(any)".into();
    }
    platform
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Inner {
    /// Registers a worker under a fresh id.
    pub(crate) fn register(&mut self, req: RegisterRequest, now: Instant) -> WorkerId {
        let id = WorkerId(ids::fresh("w"));
        tracing::info!(worker = %id, name = %req.name, slots = req.slots, platform = %describe(&req.platform), "worker registered");
        self.workers.insert(
            id.clone(),
            Worker {
                name: req.name,
                slots: req.slots,
                platform: req.platform,
                last_seen: now,
                polling: 0,
                leases: HashSet::new(),
            },
        );
        id
    }

    /// Removes a worker; its running leases are lost at once (re-queued, counting as a try).
    /// `false` if it was not registered.
    pub(crate) fn deregister(&mut self, id: &WorkerId) -> bool {
        let Some(worker) = self.workers.remove(id) else {
            return false;
        };
        tracing::info!(worker = %id, name = %worker.name, leases = worker.leases.len(), "worker deregistered");
        for lease in worker.leases {
            self.lose_lease(&lease, "stopped");
        }
        true
    }

    /// Forgets workers not heard from since `cutoff` (and not waiting in a lease request);
    /// their leases are lost. Returns how many went.
    pub(crate) fn forget_silent_workers(&mut self, cutoff: Instant) -> usize {
        let silent: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| w.polling == 0 && w.last_seen <= cutoff)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &silent {
            if let Some(worker) = self.workers.remove(id) {
                tracing::warn!(worker = %id, name = %worker.name, "worker went silent; forgetting it");
                for lease in worker.leases {
                    self.lose_lease(&lease, "went silent");
                }
            }
        }
        silent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn platform_subset_with_equal_values() {
        let have = map(&[("os", "linux"), ("arch", "x86_64"), ("toolchain", "gcc-12")]);
        assert!(platform_fits(&map(&[]), &have));
        assert!(platform_fits(&map(&[("os", "linux")]), &have));
        assert!(platform_fits(
            &map(&[("os", "linux"), ("toolchain", "gcc-12")]),
            &have
        ));
        assert!(!platform_fits(&map(&[("os", "macos")]), &have));
        assert!(!platform_fits(&map(&[("gpu", "yes")]), &have));
        assert_eq!(
            describe(&map(&[("os", "plan9"), ("arch", "mips")])),
            "arch=mips, os=plan9"
        );
    }
}
