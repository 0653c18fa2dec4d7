//! Unit tests of the scheduler's tables, with the clock passed in: round-robin order and `-j`,
//! FIFO within a build, expiry re-queueing at the front, dedup, idle builds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use rmake_cas::Digest;
use rmake_proto::exec::{
    ActionSpec, BuildRequest, CommandLine, ExecuteEvent, ExecuteRequest, RegisterRequest, WorkerId,
};
use rmake_proto::BuildId;

use super::Inner;
use crate::config::SchedSettings;
use crate::pins::Pins;

fn inner(ttl_ms: u64) -> Inner {
    let settings = SchedSettings {
        lease_ttl: Duration::from_millis(ttl_ms),
        ..SchedSettings::default()
    };
    Inner::new(&settings, Arc::new(Pins::new()))
}

fn req(name: &str) -> ExecuteRequest {
    ExecuteRequest {
        spec: ActionSpec {
            input_root: Digest::of(b"root"),
            inputs: vec![],
            working_dir: String::new(),
            lines: vec![CommandLine {
                command: format!("make {name}"),
                ignore_errors: false,
            }],
            oneshell: false,
            shell: "/bin/sh".into(),
            shell_flags: "-c".into(),
            env: vec![],
            outputs: vec![name.into()],
            platform: BTreeMap::new(),
            timeout_secs: None,
        },
        target: name.into(),
        skip_cache_lookup: false,
        cacheable: true,
        prereqs: Vec::new(),
    }
}

fn build(i: &mut Inner, jobs: u32, now: Instant) -> BuildId {
    i.open_build(
        BuildRequest {
            label: String::new(),
            jobs,
        },
        now,
    )
}

fn submit(i: &mut Inner, b: &BuildId, name: &str, now: Instant) -> UnboundedReceiver<ExecuteEvent> {
    let (tx, rx) = unbounded_channel();
    let r = req(name);
    let key = r.spec.key();
    assert!(i.submit(b, r, key, None, tx, now).is_some());
    rx
}

fn worker(i: &mut Inner, slots: u32, now: Instant) -> WorkerId {
    i.register(
        RegisterRequest {
            name: "w".into(),
            slots,
            platform: BTreeMap::new(),
        },
        now,
    )
}

#[test]
fn builds_take_turns_within_their_jobs() {
    let t0 = Instant::now();
    let mut i = inner(10_000);
    let (a, b, c) = (
        build(&mut i, 0, t0),
        build(&mut i, 0, t0),
        build(&mut i, 1, t0),
    );
    let mut streams = Vec::new();
    for (bid, p) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        for n in 0..3 {
            streams.push(submit(&mut i, bid, &format!("{p}{n}"), t0));
        }
    }
    let w = worker(&mut i, 100, t0);
    let ttl = Duration::from_secs(10);
    let order: Vec<String> = (0..6)
        .filter_map(|_| i.grant_lease(&w, ttl, t0))
        .map(|l| l.target)
        .collect();
    // c has -j1: after c0 it is skipped until c0 ends.
    assert_eq!(order, ["a0", "b0", "c0", "a1", "b1", "a2"]);
}

#[test]
fn an_expired_lease_goes_back_to_the_front() {
    let t0 = Instant::now();
    let mut i = inner(1_000);
    let b = build(&mut i, 0, t0);
    let _s1 = submit(&mut i, &b, "first", t0);
    let _s2 = submit(&mut i, &b, "second", t0);
    let w = worker(&mut i, 1, t0);
    let l = i
        .grant_lease(&w, Duration::from_secs(1), t0)
        .expect("lease");
    assert_eq!((l.target.as_str(), l.attempt), ("first", 1));
    assert!(
        i.grant_lease(&w, Duration::from_secs(1), t0).is_none(),
        "one slot"
    );
    let report = i.sweep(t0 + Duration::from_millis(1_500));
    assert_eq!(report.leases_lost, 1);
    let w2 = worker(&mut i, 1, t0 + Duration::from_millis(1_500));
    let l = i
        .grant_lease(
            &w2,
            Duration::from_secs(1),
            t0 + Duration::from_millis(1_500),
        )
        .expect("lease");
    assert_eq!(
        (l.target.as_str(), l.attempt),
        ("first", 2),
        "front of the queue, next try"
    );
}

#[test]
fn identical_requests_share_one_action_and_idle_builds_expire() {
    let t0 = Instant::now();
    let mut i = inner(10_000);
    let (a, b) = (build(&mut i, 0, t0), build(&mut i, 0, t0));
    let mut sa = submit(&mut i, &a, "same", t0);
    let mut sb = submit(&mut i, &b, "same", t0);
    assert_eq!(i.actions.len(), 1);
    assert_eq!(i.counts(), (1, 0));
    let w = worker(&mut i, 4, t0);
    let ttl = Duration::from_secs(10);
    assert!(i.grant_lease(&w, ttl, t0).is_some());
    assert!(
        i.grant_lease(&w, ttl, t0).is_none(),
        "the other build's entry is stale"
    );
    for s in [&mut sa, &mut sb] {
        assert!(matches!(s.try_recv(), Ok(ExecuteEvent::Queued { .. })));
        assert!(matches!(
            s.try_recv(),
            Ok(ExecuteEvent::Started { attempt: 1, .. })
        ));
    }
    // Builds with waiters never expire; one without does after the idle time.
    let later = t0 + Duration::from_secs(3_600);
    assert_eq!(i.expire_idle_builds(later), 0);
    let key = req("same").spec.key();
    i.finish_action(
        &key,
        ExecuteEvent::Failed {
            reason: "test".into(),
        },
        t0,
    );
    assert_eq!(i.expire_idle_builds(later), 2);
    assert!(i.builds.is_empty() && i.order.is_empty());
}
