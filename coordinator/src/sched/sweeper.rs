//! The background sweeper: every 250 ms it loses expired leases, forgets silent workers,
//! expires idle builds, fails actions no worker can take, and renews the pins of actions in
//! flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmake_proto::exec::ExecuteEvent;
use rmake_proto::ActionKey;

use super::queue::ActionState;
use super::workers::describe;
use super::{pin_id, Inner, Scheduler, PIN_TTL};

/// How often the sweeper runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// How often the pins of actions in flight are renewed.
const PIN_RENEW: Duration = Duration::from_secs(60);

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Live leases lost to expiry.
    pub leases_lost: usize,
    /// Workers forgotten.
    pub workers_forgotten: usize,
    /// Builds expired.
    pub builds_expired: usize,
    /// Actions failed because no worker can take their platform.
    pub unplaceable: usize,
}

/// Runs [`Scheduler::sweep`] every [`SWEEP_INTERVAL`] until aborted.
pub fn spawn_sweeper(sched: Arc<Scheduler>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let report = sched.sweep(Instant::now());
            if report != SweepReport::default() {
                tracing::debug!(?report, "sweep");
            }
        }
    })
}

impl Inner {
    /// One sweep at `now`.
    pub(crate) fn sweep(&mut self, now: Instant) -> SweepReport {
        let ttl = self.lease_ttl;
        let report = SweepReport {
            leases_lost: self.expire_leases(now),
            workers_forgotten: now
                .checked_sub(ttl * 3)
                .map_or(0, |cutoff| self.forget_silent_workers(cutoff)),
            builds_expired: now
                .checked_sub(self.build_idle)
                .map_or(0, |cutoff| self.expire_idle_builds(cutoff)),
            unplaceable: self.fail_unplaceable(now),
        };
        if now.saturating_duration_since(self.pins_renewed) >= PIN_RENEW {
            self.pins_renewed = now;
            for key in self.actions.keys() {
                self.pins.pin(&pin_id(key), [], PIN_TTL, now);
            }
        }
        report
    }

    /// Queued actions that no registered worker could take for `platform_wait` fail.
    fn fail_unplaceable(&mut self, now: Instant) -> usize {
        // Distinct platforms are few: decide each once per sweep.
        let mut fits: Vec<(BTreeMap<String, String>, bool)> = Vec::new();
        let mut doomed: Vec<(ActionKey, String)> = Vec::new();
        for (key, a) in self.actions.iter_mut() {
            if a.state != ActionState::Queued {
                continue;
            }
            let ok = match fits.iter().find(|(p, _)| p == &a.spec.platform) {
                Some((_, ok)) => *ok,
                None => {
                    let ok = self.workers.values().any(|w| w.can_take(&a.spec.platform));
                    fits.push((a.spec.platform.clone(), ok));
                    ok
                }
            };
            if ok {
                a.unmatched_since = None;
                continue;
            }
            let since = *a.unmatched_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.platform_wait {
                doomed.push((
                    *key,
                    format!(
                        "no worker can run {}: none with platform {} registered within {:?}",
                        a.target,
                        describe(&a.spec.platform),
                        self.platform_wait
                    ),
                ));
            }
        }
        let n = doomed.len();
        for (key, reason) in doomed {
            tracing::warn!(%key, %reason, "action cannot be placed");
            self.finish_action(&key, ExecuteEvent::Failed { reason }, now);
        }
        n
    }
}
