//! `Pins`: leases, keyed by build id, that keep blobs from eviction while a build lives.
//!
//! A build pins the blobs it references (its snapshot, its actions' inputs and outputs) and
//! renews the lease while it runs; an expired lease is dropped at the next eviction pass. The
//! clock is passed in (`now`), so expiry is testable without sleeping.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmake_cas::Digest;
use rmake_proto::BuildId;

#[derive(Debug)]
struct Lease {
    expires: Instant,
    blobs: HashSet<Digest>,
}

#[derive(Debug, Default)]
struct Inner {
    builds: HashMap<BuildId, Lease>,
    /// How many live leases pin each blob.
    counts: HashMap<Digest, u32>,
}

impl Inner {
    fn drop_build(&mut self, build: &BuildId) -> bool {
        let Some(lease) = self.builds.remove(build) else {
            return false;
        };
        for d in lease.blobs {
            if let Some(c) = self.counts.get_mut(&d) {
                *c -= 1;
                if *c == 0 {
                    self.counts.remove(&d);
                }
            }
        }
        true
    }
}

/// The pin table. Cheap, in memory: builds do not outlive the coordinator process.
#[derive(Debug, Default)]
pub struct Pins {
    inner: Mutex<Inner>,
}

impl Pins {
    /// An empty table.
    pub fn new() -> Pins {
        Pins::default()
    }

    /// Pins `digests` for `build` until `now + ttl` (adding to and renewing an existing lease).
    pub fn pin(
        &self,
        build: &BuildId,
        digests: impl IntoIterator<Item = Digest>,
        ttl: Duration,
        now: Instant,
    ) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let inner = &mut *inner;
        let lease = inner.builds.entry(build.clone()).or_insert_with(|| Lease {
            expires: now + ttl,
            blobs: HashSet::new(),
        });
        lease.expires = now + ttl;
        for d in digests {
            if lease.blobs.insert(d) {
                *inner.counts.entry(d).or_insert(0) += 1;
            }
        }
    }

    /// Drops every pin of `build`; `false` if it held none.
    pub fn unpin(&self, build: &BuildId) -> bool {
        self.inner
            .lock()
            .map(|mut i| i.drop_build(build))
            .unwrap_or(false)
    }

    /// Drops leases that expired before `now`; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let Ok(mut inner) = self.inner.lock() else {
            return 0;
        };
        let dead: Vec<BuildId> = inner
            .builds
            .iter()
            .filter(|(_, l)| l.expires <= now)
            .map(|(b, _)| b.clone())
            .collect();
        for b in &dead {
            inner.drop_build(b);
        }
        dead.len()
    }

    /// Whether a live lease pins `d` (call [`Pins::expire`] first to drop stale leases).
    pub fn is_pinned(&self, d: &Digest) -> bool {
        // A poisoned lock means a panic elsewhere: treat everything as pinned, the safe answer.
        self.inner
            .lock()
            .map(|i| i.counts.contains_key(d))
            .unwrap_or(true)
    }

    /// (builds holding leases, distinct blobs pinned).
    pub fn stats(&self) -> (u64, u64) {
        self.inner
            .lock()
            .map(|i| (i.builds.len() as u64, i.counts.len() as u64))
            .unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_overlap_renew_and_expire() {
        let pins = Pins::new();
        let t0 = Instant::now();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let (b1, b2) = (BuildId("one".into()), BuildId("two".into()));
        pins.pin(&b1, [a, b], Duration::from_secs(10), t0);
        pins.pin(&b2, [a], Duration::from_secs(100), t0);
        assert_eq!(pins.stats(), (2, 2));
        assert_eq!(pins.expire(t0 + Duration::from_secs(11)), 1);
        assert!(pins.is_pinned(&a), "still pinned by the other build");
        assert!(!pins.is_pinned(&b));
        pins.pin(
            &b2,
            [],
            Duration::from_secs(100),
            t0 + Duration::from_secs(50),
        );
        assert_eq!(pins.expire(t0 + Duration::from_secs(120)), 0, "renewed");
        assert!(pins.unpin(&b2));
        assert!(!pins.unpin(&b2));
        assert!(!pins.is_pinned(&a));
        assert_eq!(pins.stats(), (0, 0));
    }
}
