//! Remote execution on a real server: builds, execute streams, the fair queue, workers and
//! leases. The test plays the client and the worker through the real HTTP endpoints (with
//! `CoordinatorClient`), uploading real input trees and output blobs.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;

use rmake_cas::tree::{Directory, Entry, Node};
use rmake_cas::Digest;
use rmake_coordinator::config::SchedSettings;
use rmake_coordinator::sched::FarmStatus;
use rmake_coordinator::{server, Config, Role};
use rmake_proto::exec::{
    ActionSpec, BuildRequest, CommandLine, ExecuteEvent, ExecuteRequest, Lease, LeaseOutcome,
    RegisterRequest, WorkerId,
};
use rmake_proto::{
    ActionResult, BuildId, ClientError, CoordinatorClient, ExecuteStream, LogOutput, OutputFile,
};

/// Longest any single step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(20);

/// A coordinator on 127.0.0.1:0 with its own data dir and scheduler settings.
struct Farm {
    url: String,
    _dir: TempDir,
    running: Option<server::Running>,
}

impl Farm {
    async fn start() -> Farm {
        Farm::with(SchedSettings::default(), Vec::new()).await
    }

    async fn with(sched: SchedSettings, tokens: Vec<(Role, String)>) -> Farm {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::local(dir.path(), 1 << 40);
        config.sched = sched;
        config.tokens = tokens;
        config.fsync = false;
        config.eviction_interval = Duration::from_secs(3600);
        let running = server::spawn(config).await.expect("start coordinator");
        Farm {
            url: running.url.clone(),
            _dir: dir,
            running: Some(running),
        }
    }

    fn state(&self) -> rmake_coordinator::AppState {
        self.running.as_ref().expect("running").state.clone()
    }

    fn client(&self) -> CoordinatorClient {
        CoordinatorClient::new(&self.url, None).expect("client")
    }

    fn client_with(&self, token: &str) -> CoordinatorClient {
        CoordinatorClient::new(&self.url, Some(token.to_string())).expect("client")
    }

    /// Stops the server and waits for it to drain.
    async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("stop");
        }
    }

    async fn farm_status(&self) -> FarmStatus {
        reqwest::get(format!("{}/v1/farm", self.url))
            .await
            .expect("GET /v1/farm")
            .json()
            .await
            .expect("farm status JSON")
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        drop(self.running.take());
    }
}

fn short(ttl_ms: u64) -> SchedSettings {
    SchedSettings {
        lease_ttl: Duration::from_millis(ttl_ms),
        ..SchedSettings::default()
    }
}

/// Uploads a real one-file source tree (`src/<name>.c`) and returns its root.
async fn source_tree(c: &CoordinatorClient, name: &str) -> Digest {
    let text = format!("int {name}(void) {{ return 1; }}\n");
    let file = Digest::of(text.as_bytes());
    c.upload_blob(&file, Bytes::from(text))
        .await
        .expect("upload source");
    let src = Directory::from_entries(vec![Entry {
        name: format!("{name}.c"),
        node: Node::File {
            digest: file,
            executable: false,
        },
    }])
    .expect("src dir");
    let src_bytes = src.encode();
    c.upload_blob(&src.digest(), Bytes::from(src_bytes))
        .await
        .expect("upload src dir");
    let root = Directory::from_entries(vec![Entry {
        name: "src".into(),
        node: Node::Directory {
            digest: src.digest(),
        },
    }])
    .expect("root dir");
    c.upload_blob(&root.digest(), Bytes::from(root.encode()))
        .await
        .expect("upload root");
    root.digest()
}

/// An action compiling `src/<name>.c` into `out/<name>.o`.
fn spec_for(root: Digest, name: &str) -> ActionSpec {
    ActionSpec {
        input_root: root,
        inputs: vec![],
        working_dir: String::new(),
        lines: vec![CommandLine {
            command: format!("cc -c src/{name}.c -o out/{name}.o"),
            ignore_errors: false,
        }],
        oneshell: false,
        shell: "/bin/sh".into(),
        shell_flags: "-c".into(),
        env: vec![],
        outputs: vec![format!("out/{name}.o")],
        platform: BTreeMap::new(),
        timeout_secs: None,
    }
}

async fn action(c: &CoordinatorClient, name: &str) -> ActionSpec {
    spec_for(source_tree(c, name).await, name)
}

/// Submits `spec` under `build` for `target` and returns its event stream.
async fn submit(
    c: &CoordinatorClient,
    build: &BuildId,
    spec: &ActionSpec,
    target: &str,
) -> rmake_proto::ExecuteStream {
    c.execute(build, &request(spec, target))
        .await
        .expect("execute")
}

fn request(spec: &ActionSpec, target: &str) -> ExecuteRequest {
    ExecuteRequest {
        spec: spec.clone(),
        target: target.into(),
        skip_cache_lookup: false,
        cacheable: true,
        prereqs: Vec::new(),
    }
}

async fn open(c: &CoordinatorClient, jobs: u32) -> BuildId {
    c.create_build(&BuildRequest {
        label: format!("test -j{jobs}"),
        jobs,
    })
    .await
    .expect("create build")
}

async fn register(c: &CoordinatorClient, name: &str, platform: &[(&str, &str)]) -> WorkerId {
    let r = c
        .register_worker(&RegisterRequest {
            name: name.into(),
            slots: 4,
            platform: platform
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .await
        .expect("register");
    assert!(r.worker.0.starts_with("w-"), "{:?}", r.worker);
    r.worker
}

async fn next(s: &mut ExecuteStream) -> ExecuteEvent {
    tokio::time::timeout(STEP, s.next())
        .await
        .expect("an event in time")
        .expect("read event")
        .expect("an event before the end")
}

async fn last(s: ExecuteStream) -> ExecuteEvent {
    tokio::time::timeout(STEP, s.finish())
        .await
        .expect("the end in time")
        .expect("read to the end")
}

async fn lease(c: &CoordinatorClient, w: &WorkerId, wait_ms: u64) -> Option<Lease> {
    tokio::time::timeout(STEP, c.lease(w, wait_ms))
        .await
        .expect("lease answers in time")
        .expect("lease")
        .lease
}

async fn must_lease(c: &CoordinatorClient, w: &WorkerId) -> Lease {
    lease(c, w, 5_000).await.expect("a lease")
}

/// What a worker reports after running `lease`: it uploads one object per output first.
async fn run(c: &CoordinatorClient, lease: &Lease, exit_code: i32, note: &str) -> ActionResult {
    let mut output_files = Vec::new();
    for out in &lease.spec.outputs {
        let data = format!("object code of {out} ({note})");
        let d = Digest::of(data.as_bytes());
        c.upload_blob(&d, Bytes::from(data))
            .await
            .expect("upload output");
        output_files.push(OutputFile {
            path: out.clone(),
            digest: d,
            executable: false,
        });
    }
    ActionResult {
        output_files,
        stdout: LogOutput::Inline {
            text: format!("{note}\n"),
        },
        exit_code,
        lines_run: 1,
        worker: "whatever the worker claims".into(),
        read_paths: vec!["src/".into()],
        reads_complete: true,
        ..ActionResult::default()
    }
}

async fn complete(c: &CoordinatorClient, lease: &Lease, result: ActionResult) -> bool {
    c.complete_lease(&lease.id, &LeaseOutcome::Completed { result })
        .await
        .expect("complete")
}

fn finished(ev: ExecuteEvent) -> (ActionResult, bool) {
    let (_, result, cached) = finished_key(ev);
    (result, cached)
}

/// The key a finished result is stored under, the result, and whether it was a hit.
fn finished_key(ev: ExecuteEvent) -> (rmake_proto::ActionKey, ActionResult, bool) {
    match ev {
        ExecuteEvent::Finished(r) => (r.key, r.result, r.cached),
        other => panic!("expected finished, got {other:?}"),
    }
}

fn failed(ev: ExecuteEvent) -> String {
    match ev {
        ExecuteEvent::Failed { reason } => reason,
        other => panic!("expected failed, got {other:?}"),
    }
}

fn api_error(e: ClientError) -> (u16, String, String) {
    match e {
        ClientError::Api {
            status,
            code,
            message,
        } => (status, code, message),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn runs_on_a_worker_then_hits_the_cache() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 4).await;
    assert!(build.0.starts_with("b-") && build.0.len() == 18, "{build}");
    let w = register(&c, "alpha", &[]).await;
    let spec = action(&c, "main").await;
    let mut s = submit(&c, &build, &spec, "out/main.o").await;
    assert_eq!(
        next(&mut s).await,
        ExecuteEvent::Queued {
            key: spec.key(),
            why: Some(vec!["no earlier build of this target in the cache".into()])
        }
    );
    let l = must_lease(&c, &w).await;
    assert_eq!(
        (l.key, l.attempt, l.target.as_str()),
        (spec.key(), 1, "out/main.o")
    );
    assert_eq!(l.spec, spec);
    assert_eq!(
        next(&mut s).await,
        ExecuteEvent::Started {
            worker: "alpha".into(),
            attempt: 1
        }
    );
    let result = run(&c, &l, 0, "first run").await;
    assert!(complete(&c, &l, result.clone()).await);
    let (stored_key, got, cached) = finished_key(last(s).await);
    assert!(!cached);
    assert_ne!(
        stored_key,
        spec.key(),
        "stored under the key of what it read"
    );
    assert_eq!(got.worker, "alpha", "the coordinator names the worker");
    assert_eq!(got.output_files, result.output_files);

    // Stored under the key; a second submit is a hit with nothing queued.
    let stored = c
        .lookup_action(&stored_key)
        .await
        .expect("lookup")
        .expect("stored");
    assert_eq!(stored.output_files, result.output_files);
    let again = submit(&c, &build, &spec, "out/main.o").await;
    let (hit, cached) = finished(last(again).await);
    assert!(cached);
    assert_eq!(hit.output_files, result.output_files);
    assert_eq!(lease(&c, &w, 200).await, None, "a cache hit is not leased");
    let st = farm.farm_status().await;
    assert_eq!(
        (st.queued, st.running, st.workers.len(), st.builds.len()),
        (0, 0, 1, 1)
    );
}

/// The contents sent with a finished result, by digest.
fn inline_of(ev: &ExecuteEvent) -> Vec<(Digest, String)> {
    match ev {
        ExecuteEvent::Finished(r) => r
            .inline
            .iter()
            .map(|i| (i.digest, i.text.clone()))
            .collect(),
        other => panic!("expected finished, got {other:?}"),
    }
}

#[tokio::test]
async fn small_outputs_ride_with_the_result_and_a_miss_says_why() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 4).await;
    let w = register(&c, "alpha", &[]).await;
    let spec = action(&c, "main").await;
    let mut s = submit(&c, &build, &spec, "out/main.o").await;
    match next(&mut s).await {
        ExecuteEvent::Queued { why: Some(why), .. } => assert!(!why.is_empty(), "{why:?}"),
        other => panic!("expected queued with reasons, got {other:?}"),
    }
    let l = must_lease(&c, &w).await;
    let mut result = run(&c, &l, 0, "first run").await;
    // A binary output stays a blob to fetch; the text one comes inline.
    let binary = vec![0xffu8, 0x00, 0xfe];
    let bd = Digest::of(&binary);
    c.upload_blob(&bd, Bytes::from(binary))
        .await
        .expect("upload");
    result.output_files.push(OutputFile {
        path: "out/blob.bin".into(),
        digest: bd,
        executable: false,
    });
    let text = "object code of out/main.o (first run)".to_string();
    let want = vec![(Digest::of(text.as_bytes()), text)];
    assert!(complete(&c, &l, result).await);
    let done = last(s).await;
    assert_eq!(inline_of(&done), want, "a run's small text output");

    let again = submit(&c, &build, &spec, "out/main.o").await;
    let hit = last(again).await;
    assert!(finished(hit.clone()).1, "a hit");
    assert_eq!(inline_of(&hit), want, "a hit's small text output");

    // -B: the cache is not consulted, so the queued event has no reasons.
    let mut req = request(&spec, "out/main.o");
    req.skip_cache_lookup = true;
    let mut forced = c.execute(&build, &req).await.expect("execute");
    assert!(matches!(
        next(&mut forced).await,
        ExecuteEvent::Queued { why: None, .. }
    ));
}

#[tokio::test]
async fn skip_cache_lookup_runs_again_and_stores_the_new_result() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let w = register(&c, "alpha", &[]).await;
    let spec = action(&c, "util").await;
    let s = submit(&c, &build, &spec, "out/util.o").await;
    let l = must_lease(&c, &w).await;
    let first = run(&c, &l, 0, "first").await;
    assert!(complete(&c, &l, first.clone()).await);
    finished(last(s).await);

    let mut req = request(&spec, "out/util.o");
    req.skip_cache_lookup = true;
    let s = c.execute(&build, &req).await.expect("execute -B");
    let l = must_lease(&c, &w).await;
    assert_eq!(l.attempt, 1);
    let second = run(&c, &l, 0, "second").await;
    assert_ne!(first.output_files, second.output_files);
    assert!(complete(&c, &l, second.clone()).await);
    let (stored_key, got, cached) = finished_key(last(s).await);
    assert!(!cached);
    assert_eq!(got.output_files, second.output_files);
    let stored = c
        .lookup_action(&stored_key)
        .await
        .expect("lookup")
        .expect("stored");
    assert_eq!(stored.output_files, second.output_files, "re-stored");
}

#[tokio::test]
async fn identical_actions_of_two_builds_run_once() {
    let farm = Farm::start().await;
    let c = farm.client();
    let (b1, b2) = (open(&c, 2).await, open(&c, 2).await);
    let w = register(&c, "alpha", &[]).await;
    let spec = action(&c, "shared").await;
    let mut s1 = c
        .execute(&b1, &request(&spec, "out/shared.o"))
        .await
        .expect("execute 1");
    let mut s2 = c
        .execute(&b2, &request(&spec, "out/shared.o"))
        .await
        .expect("execute 2");
    assert!(matches!(next(&mut s1).await, ExecuteEvent::Queued { .. }));
    assert!(matches!(next(&mut s2).await, ExecuteEvent::Queued { .. }));
    let l = must_lease(&c, &w).await;
    assert_eq!(lease(&c, &w, 300).await, None, "one action, one lease");
    let result = run(&c, &l, 0, "once").await;
    assert!(complete(&c, &l, result.clone()).await);
    let (r1, _) = finished(last(s1).await);
    let (r2, _) = finished(last(s2).await);
    assert_eq!(r1, r2);
    assert_eq!(r1.output_files, result.output_files);

    // A build joining while the action runs hears `started` too.
    let spec = action(&c, "late").await;
    let s1 = submit(&c, &b1, &spec, "out/late.o").await;
    let l = must_lease(&c, &w).await;
    let mut s2 = c
        .execute(&b2, &request(&spec, "out/late.o"))
        .await
        .expect("join");
    assert!(matches!(next(&mut s2).await, ExecuteEvent::Queued { .. }));
    assert!(matches!(
        next(&mut s2).await,
        ExecuteEvent::Started { attempt: 1, .. }
    ));
    let result = run(&c, &l, 0, "late").await;
    assert!(complete(&c, &l, result).await);
    assert_eq!(finished(last(s1).await), finished(last(s2).await));
}

#[tokio::test]
async fn a_small_build_is_not_starved_by_a_big_one() {
    let farm = Farm::start().await;
    let c = farm.client();
    let big = open(&c, 0).await;
    let small = open(&c, 1).await;
    let root = source_tree(&c, "common").await;
    let mut streams = Vec::new();
    for i in 0..50 {
        let spec = spec_for(root, &format!("big{i}"));
        streams.push(
            c.execute(&big, &request(&spec, &format!("big{i}")))
                .await
                .expect("execute"),
        );
    }
    let tiny = spec_for(root, "tiny");
    let tiny_stream = submit(&c, &small, &tiny, "tiny").await;
    let w = register(&c, "alpha", &[]).await;
    let mut leased = Vec::new();
    for _ in 0..3 {
        leased.push(must_lease(&c, &w).await);
    }
    let pos = leased.iter().position(|l| l.key == tiny.key());
    assert!(
        matches!(pos, Some(0..=1)),
        "the -j1 build's action should be among the first two leases, got {:?}",
        leased.iter().map(|l| &l.target).collect::<Vec<_>>()
    );
    // The big build's own order is FIFO.
    let bigs: Vec<&str> = leased
        .iter()
        .map(|l| l.target.as_str())
        .filter(|t| t.starts_with("big"))
        .collect();
    assert_eq!(bigs, vec!["big0", "big1"]);
    drop(tiny_stream);
    drop(streams);
}

#[tokio::test]
async fn a_build_never_has_more_than_jobs_leased() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 2).await;
    let root = source_tree(&c, "j").await;
    let mut streams = Vec::new();
    for i in 0..5 {
        let spec = spec_for(root, &format!("j{i}"));
        streams.push(
            c.execute(&build, &request(&spec, &format!("j{i}")))
                .await
                .expect("execute"),
        );
    }
    let w = register(&c, "alpha", &[]).await;
    let l1 = must_lease(&c, &w).await;
    let _l2 = must_lease(&c, &w).await;
    assert_eq!(
        lease(&c, &w, 400).await,
        None,
        "-j2: a third lease must wait"
    );
    let st = farm.farm_status().await;
    assert_eq!((st.queued, st.running), (3, 2));
    assert_eq!(st.builds[0].running, 2);

    // A waiting lease request gets the next action as soon as a slot frees up.
    let c2 = c.clone();
    let w2 = w.clone();
    let waiting = tokio::spawn(async move { c2.lease(&w2, 10_000).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let result = run(&c, &l1, 0, "one").await;
    assert!(complete(&c, &l1, result).await);
    let l3 = tokio::time::timeout(STEP, waiting)
        .await
        .expect("in time")
        .expect("join")
        .expect("lease")
        .lease
        .expect("a lease once a slot is free");
    assert_eq!(l3.target, "j2");
    drop(streams);
}

#[tokio::test]
async fn an_expired_lease_is_requeued_and_its_late_result_refused() {
    let farm = Farm::with(short(1_000), Vec::new()).await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let spec = action(&c, "slow").await;
    let mut s = submit(&c, &build, &spec, "out/slow.o").await;
    next(&mut s).await;
    let w1 = register(&c, "flaky", &[]).await;
    let l1 = must_lease(&c, &w1).await;
    assert!(matches!(
        next(&mut s).await,
        ExecuteEvent::Started { attempt: 1, .. }
    ));
    // flaky never heartbeats: the lease runs out and the action goes back to the queue.
    let w2 = register(&c, "steady", &[]).await;
    let l2 = must_lease(&c, &w2).await;
    assert_eq!((l2.key, l2.attempt), (spec.key(), 2));
    assert_eq!(
        next(&mut s).await,
        ExecuteEvent::Started {
            worker: "steady".into(),
            attempt: 2
        }
    );
    let late = run(&c, &l1, 0, "late").await;
    assert!(
        !complete(&c, &l1, late).await,
        "a lost lease's result is dropped"
    );
    let hb = c
        .heartbeat(&w2, vec![l2.id.clone()])
        .await
        .expect("heartbeat");
    assert!(hb.cancel.is_empty() && !hb.unknown_worker, "{hb:?}");
    let good = run(&c, &l2, 0, "steady").await;
    assert!(complete(&c, &l2, good.clone()).await);
    let (got, _) = finished(last(s).await);
    assert_eq!(
        (got.worker.as_str(), &got.output_files),
        ("steady", &good.output_files)
    );
}

#[tokio::test]
async fn heartbeats_keep_a_lease_alive() {
    let farm = Farm::with(short(800), Vec::new()).await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let spec = action(&c, "long").await;
    let s = submit(&c, &build, &spec, "out/long.o").await;
    let w = register(&c, "alpha", &[]).await;
    let l = must_lease(&c, &w).await;
    for _ in 0..16 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let hb = c
            .heartbeat(&w, vec![l.id.clone()])
            .await
            .expect("heartbeat");
        assert!(hb.cancel.is_empty(), "{hb:?}");
    }
    let result = run(&c, &l, 0, "long").await;
    assert!(
        complete(&c, &l, result).await,
        "a renewed lease is still current after twice its TTL"
    );
    finished(last(s).await);
}

#[tokio::test]
async fn three_lost_tries_fail_naming_the_target() {
    let farm = Farm::with(short(300), Vec::new()).await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let spec = action(&c, "doomed").await;
    let s = submit(&c, &build, &spec, "out/doomed.o").await;
    for attempt in 1..=3 {
        let w = register(&c, &format!("crashy{attempt}"), &[]).await;
        let l = must_lease(&c, &w).await;
        assert_eq!(l.attempt, attempt);
    }
    let reason = failed(last(s).await);
    assert!(
        reason.contains("lost by crashy3 while running out/doomed.o") && reason.contains("3 tries"),
        "{reason}"
    );
    assert_eq!(farm.state().actions.len(), 0, "nothing cached");
}

#[tokio::test]
async fn an_error_outcome_is_requeued_and_counts_as_a_try() {
    let farm = Farm::with(
        SchedSettings {
            max_attempts: 2,
            ..SchedSettings::default()
        },
        Vec::new(),
    )
    .await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let w = register(&c, "alpha", &[]).await;
    let spec = action(&c, "err").await;
    let s = submit(&c, &build, &spec, "out/err.o").await;
    let l = must_lease(&c, &w).await;
    let error = LeaseOutcome::Error {
        reason: "exec root not writable".into(),
    };
    assert!(c.complete_lease(&l.id, &error).await.expect("complete"));
    let l = must_lease(&c, &w).await;
    assert_eq!(l.attempt, 2, "re-queued");
    let result = run(&c, &l, 0, "second").await;
    assert!(complete(&c, &l, result).await);
    finished(last(s).await);

    // With every try used up, the reason reaches the client.
    let spec = action(&c, "err2").await;
    let s = submit(&c, &build, &spec, "out/err2.o").await;
    for _ in 0..2 {
        let l = must_lease(&c, &w).await;
        let disk = LeaseOutcome::Error {
            reason: "disk full".into(),
        };
        assert!(c.complete_lease(&l.id, &disk).await.expect("complete"));
    }
    let reason = failed(last(s).await);
    assert!(
        reason.contains("alpha could not run out/err2.o: disk full") && reason.contains("2 tries"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_failed_result_is_delivered_but_never_cached() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let w = register(&c, "alpha", &[]).await;
    let spec = action(&c, "broken").await;
    let s = submit(&c, &build, &spec, "out/broken.o").await;
    let l = must_lease(&c, &w).await;
    let result = run(&c, &l, 1, "error: expected ';'").await;
    assert!(complete(&c, &l, result).await);
    let (got, cached) = finished(last(s).await);
    assert_eq!((got.exit_code, cached), (1, false));
    assert_eq!(farm.state().actions.len(), 0, "nothing cached");
    let mut again = submit(&c, &build, &spec, "out/broken.o").await;
    assert!(
        matches!(next(&mut again).await, ExecuteEvent::Queued { .. }),
        "runs again"
    );
    let l = must_lease(&c, &w).await;
    assert_eq!(l.key, spec.key());
}

#[tokio::test]
async fn a_result_whose_outputs_were_not_uploaded_fails_and_is_not_cached() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let w = register(&c, "alpha", &[]).await;
    let spec = action(&c, "ghost").await;
    let s = submit(&c, &build, &spec, "out/ghost.o").await;
    let l = must_lease(&c, &w).await;
    let mut result = run(&c, &l, 0, "ok").await;
    result.output_files[0].digest = Digest::of(b"never uploaded");
    assert!(complete(&c, &l, result).await);
    let reason = failed(last(s).await);
    assert!(
        reason.contains("out/ghost.o") && reason.contains("does not hold"),
        "{reason}"
    );
    assert_eq!(farm.state().actions.len(), 0, "nothing cached");
}

#[tokio::test]
async fn a_bad_output_path_in_a_result_is_refused() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let w = register(&c, "alpha", &[]).await;
    let spec = action(&c, "evil").await;
    let _s = submit(&c, &build, &spec, "out/evil.o").await;
    let l = must_lease(&c, &w).await;
    let mut result = run(&c, &l, 0, "ok").await;
    result.output_files[0].path = "../../etc/passwd".into();
    let err = c
        .complete_lease(&l.id, &LeaseOutcome::Completed { result })
        .await
        .expect_err("refused");
    let (status, _, message) = api_error(err);
    assert_eq!(status, 400);
    assert!(message.contains("../../etc/passwd"), "{message}");
    let l = must_lease(&c, &w).await;
    assert_eq!(l.attempt, 2, "the action is re-queued");
}

#[tokio::test]
async fn dropping_the_stream_cancels_the_action() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let w = register(&c, "alpha", &[]).await;

    // Leased: the worker's heartbeat is told to cancel it; its result is refused.
    let spec = action(&c, "ctrlc").await;
    let mut s = submit(&c, &build, &spec, "out/ctrlc.o").await;
    next(&mut s).await;
    let l = must_lease(&c, &w).await;
    drop(s);
    let mut cancelled = false;
    for _ in 0..100 {
        let hb = c
            .heartbeat(&w, vec![l.id.clone()])
            .await
            .expect("heartbeat");
        if hb.cancel.contains(&l.id) {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cancelled, "the heartbeat never cancelled the lease");
    let result = run(&c, &l, 0, "too late").await;
    assert!(!complete(&c, &l, result).await);
    assert_eq!(farm.state().actions.len(), 0, "nothing cached");

    // Queued: dropped from the queue, never leased.
    let spec = action(&c, "never").await;
    let s = submit(&c, &build, &spec, "out/never.o").await;
    drop(s);
    let mut gone = false;
    for _ in 0..100 {
        if farm.farm_status().await.queued == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the dropped action is still queued");
    assert_eq!(lease(&c, &w, 200).await, None);
}

#[tokio::test]
async fn a_dropped_stream_does_not_cancel_what_another_build_waits_for() {
    let farm = Farm::start().await;
    let c = farm.client();
    let (b1, b2) = (open(&c, 0).await, open(&c, 0).await);
    let w = register(&c, "alpha", &[]).await;
    let spec = action(&c, "both").await;
    let s1 = submit(&c, &b1, &spec, "out/both.o").await;
    let s2 = submit(&c, &b2, &spec, "out/both.o").await;
    let l = must_lease(&c, &w).await;
    drop(s1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hb = c
        .heartbeat(&w, vec![l.id.clone()])
        .await
        .expect("heartbeat");
    assert!(hb.cancel.is_empty(), "{hb:?}");
    let result = run(&c, &l, 0, "kept").await;
    assert!(complete(&c, &l, result).await);
    finished(last(s2).await);
}

#[tokio::test]
async fn cancelling_a_build_fails_its_streams_and_cancels_its_leases() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let w = register(&c, "alpha", &[]).await;
    let a = action(&c, "a").await;
    let b = action(&c, "b").await;
    let sa = submit(&c, &build, &a, "out/a.o").await;
    let sb = submit(&c, &build, &b, "out/b.o").await;
    let l = must_lease(&c, &w).await;
    c.cancel_build(&build).await.expect("cancel");
    assert!(failed(last(sa).await).contains("cancelled"));
    assert!(failed(last(sb).await).contains("cancelled"));
    let hb = c
        .heartbeat(&w, vec![l.id.clone()])
        .await
        .expect("heartbeat");
    assert_eq!(hb.cancel, vec![l.id.clone()]);
    assert_eq!(lease(&c, &w, 200).await, None, "nothing left queued");
    let err = c
        .execute(&build, &request(&a, "out/a.o"))
        .await
        .expect_err("gone");
    let (status, code, _) = api_error(err);
    assert_eq!((status, code.as_str()), (404, "unknown_build"));
    assert_eq!(
        api_error(c.cancel_build(&build).await.expect_err("gone")).0,
        404
    );
}

#[tokio::test]
async fn a_deregistered_workers_leases_are_requeued_at_once() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let spec = action(&c, "moving").await;
    let s = submit(&c, &build, &spec, "out/moving.o").await;
    let w1 = register(&c, "leaving", &[]).await;
    let l1 = must_lease(&c, &w1).await;
    c.deregister_worker(&w1).await.expect("deregister");
    let w2 = register(&c, "staying", &[]).await;
    let l2 = lease(&c, &w2, 1_000).await.expect("re-queued at once");
    assert_eq!((l2.key, l2.attempt), (l1.key, 2));
    let result = run(&c, &l2, 0, "moved").await;
    assert!(complete(&c, &l2, result).await);
    assert_eq!(finished(last(s).await).0.worker, "staying");
    let err = c.lease(&w1, 100).await.expect_err("unknown");
    let (status, code, _) = api_error(err);
    assert_eq!((status, code.as_str()), (404, "unknown_worker"));
    let hb = c
        .heartbeat(&w1, vec![l1.id.clone()])
        .await
        .expect("heartbeat");
    assert!(hb.unknown_worker);
    assert_eq!(hb.cancel, vec![l1.id]);
}

#[tokio::test]
async fn a_platform_mismatch_is_never_leased_and_fails_in_time() {
    let farm = Farm::with(
        SchedSettings {
            platform_wait: Duration::from_secs(1),
            ..SchedSettings::default()
        },
        Vec::new(),
    )
    .await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let linux = register(&c, "penguin", &[("os", "linux"), ("arch", "x86_64")]).await;
    let mut spec = action(&c, "plan9").await;
    spec.platform.insert("os".into(), "plan9".into());
    let s = submit(&c, &build, &spec, "out/plan9.o").await;
    let mut ok = action(&c, "fits").await;
    ok.platform.insert("os".into(), "linux".into());
    let s_ok = submit(&c, &build, &ok, "out/fits.o").await;
    let l = must_lease(&c, &linux).await;
    assert_eq!(
        l.key,
        ok.key(),
        "the fitting action is leased past the other"
    );
    assert_eq!(lease(&c, &linux, 300).await, None, "never the plan9 one");
    let reason = failed(last(s).await);
    assert!(
        reason.contains("os=plan9") && reason.contains("out/plan9.o"),
        "{reason}"
    );
    drop(s_ok);
}

#[tokio::test]
async fn bad_paths_are_refused_with_400() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let good = action(&c, "p").await;
    let cases: Vec<(ActionSpec, &str)> = vec![
        (
            ActionSpec {
                outputs: vec!["../escape.o".into()],
                ..good.clone()
            },
            "../escape.o",
        ),
        (
            ActionSpec {
                outputs: vec!["/etc/passwd".into()],
                ..good.clone()
            },
            "/etc/passwd",
        ),
        (
            ActionSpec {
                working_dir: "a//b".into(),
                ..good.clone()
            },
            "a//b",
        ),
        (
            ActionSpec {
                inputs: vec![OutputFile {
                    path: "gen/../../x.h".into(),
                    digest: Digest::of(b""),
                    executable: false,
                }],
                ..good.clone()
            },
            "gen/../../x.h",
        ),
    ];
    for (spec, path) in cases {
        let err = c
            .execute(&build, &request(&spec, "t"))
            .await
            .expect_err("refused");
        let (status, code, message) = api_error(err);
        assert_eq!((status, code.as_str()), (400, "bad_request"), "{message}");
        assert!(message.contains(path), "{message}");
    }
}

#[tokio::test]
async fn missing_inputs_are_refused_with_400() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let unknown_root = spec_for(Digest::of(b"a tree nobody uploaded"), "x");
    let err = c
        .execute(&build, &request(&unknown_root, "x"))
        .await
        .expect_err("refused");
    let (status, code, message) = api_error(err);
    assert_eq!((status, code.as_str()), (400, "missing_inputs"));
    assert!(
        message.contains(&unknown_root.input_root.to_string()),
        "{message}"
    );

    let mut spec = action(&c, "y").await;
    let header = Digest::of(b"#define GENERATED 1\n");
    spec.inputs.push(OutputFile {
        path: "gen/config.h".into(),
        digest: header,
        executable: false,
    });
    let err = c
        .execute(&build, &request(&spec, "y"))
        .await
        .expect_err("refused");
    let (_, code, message) = api_error(err);
    assert_eq!(code, "missing_inputs");
    assert!(message.contains(&header.to_string()), "{message}");
    c.upload_blob(&header, Bytes::from_static(b"#define GENERATED 1\n"))
        .await
        .expect("upload");
    let mut s = c
        .execute(&build, &request(&spec, "y"))
        .await
        .expect("accepted once uploaded");
    assert!(matches!(next(&mut s).await, ExecuteEvent::Queued { .. }));
    assert_eq!(farm.farm_status().await.queued, 1);
}

#[tokio::test]
async fn roles_decide_who_submits_and_who_works() {
    let tokens = vec![
        (Role::Client, "client-token".to_string()),
        (Role::Worker, "worker-token".to_string()),
        (Role::Reader, "reader-token".to_string()),
    ];
    let farm = Farm::with(SchedSettings::default(), tokens).await;
    let client = farm.client_with("client-token");
    let worker = farm.client_with("worker-token");
    let reader = farm.client_with("reader-token");
    let req = BuildRequest {
        label: "auth".into(),
        jobs: 1,
    };
    let reg = RegisterRequest {
        name: "w".into(),
        slots: 1,
        platform: BTreeMap::new(),
    };
    assert_eq!(
        api_error(reader.create_build(&req).await.expect_err("reader")).0,
        403
    );
    assert_eq!(
        api_error(worker.create_build(&req).await.expect_err("worker")).0,
        403
    );
    assert_eq!(
        api_error(
            farm.client()
                .create_build(&req)
                .await
                .expect_err("anonymous")
        )
        .0,
        401
    );
    assert_eq!(
        api_error(client.register_worker(&reg).await.expect_err("client")).0,
        403
    );
    assert_eq!(
        api_error(reader.register_worker(&reg).await.expect_err("reader")).0,
        403
    );
    let build = client
        .create_build(&req)
        .await
        .expect("client opens builds");
    let w = worker
        .register_worker(&reg)
        .await
        .expect("worker registers")
        .worker;
    assert_eq!(
        api_error(client.lease(&w, 10).await.expect_err("client")).0,
        403
    );
    assert_eq!(
        api_error(client.heartbeat(&w, vec![]).await.expect_err("client")).0,
        403
    );
    assert!(worker
        .lease(&w, 10)
        .await
        .expect("worker leases")
        .lease
        .is_none());
    let spec = action(&client, "auth").await;
    let err = worker
        .execute(&build, &request(&spec, "auth"))
        .await
        .expect_err("worker");
    assert_eq!(api_error(err).0, 403);
    let s = client
        .execute(&build, &request(&spec, "auth"))
        .await
        .expect("client submits");
    let l = worker
        .lease(&w, 5_000)
        .await
        .expect("lease")
        .lease
        .expect("a lease");
    let result = run(&worker, &l, 0, "auth").await;
    let err = client
        .complete_lease(
            &l.id,
            &LeaseOutcome::Completed {
                result: result.clone(),
            },
        )
        .await
        .expect_err("a client cannot report results");
    assert_eq!(api_error(err).0, 403);
    assert!(worker
        .complete_lease(&l.id, &LeaseOutcome::Completed { result })
        .await
        .expect("complete"));
    finished(last(s).await);
}

#[tokio::test]
async fn idle_builds_expire() {
    let farm = Farm::with(
        SchedSettings {
            build_idle: Duration::from_secs(1),
            ..SchedSettings::default()
        },
        Vec::new(),
    )
    .await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let spec = action(&c, "idle").await;
    // A build with a request in flight stays, however long it waits.
    let s = submit(&c, &build, &spec, "idle").await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(farm.farm_status().await.builds.len(), 1);
    drop(s);
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(
        farm.farm_status().await.builds.is_empty(),
        "expired after 1 s idle"
    );
    let err = c
        .execute(&build, &request(&spec, "idle"))
        .await
        .expect_err("expired");
    assert_eq!(api_error(err).0, 404);
}

#[tokio::test]
async fn a_worker_gets_no_more_leases_than_its_slots() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let w = c
        .register_worker(&RegisterRequest {
            name: "single".into(),
            slots: 1,
            platform: BTreeMap::new(),
        })
        .await
        .expect("register")
        .worker;
    let root = source_tree(&c, "slots").await;
    let (a, b) = (spec_for(root, "a"), spec_for(root, "b"));
    let sa = c.execute(&build, &request(&a, "a")).await.expect("execute");
    let sb = c.execute(&build, &request(&b, "b")).await.expect("execute");
    let la = must_lease(&c, &w).await;
    assert_eq!(lease(&c, &w, 300).await, None, "its one slot is busy");
    let result = run(&c, &la, 0, "a").await;
    assert!(complete(&c, &la, result).await);
    let lb = must_lease(&c, &w).await;
    assert_eq!(lb.key, b.key());
    let result = run(&c, &lb, 0, "b").await;
    assert!(complete(&c, &lb, result).await);
    finished(last(sa).await);
    finished(last(sb).await);
    let zero = RegisterRequest {
        name: "none".into(),
        slots: 0,
        platform: BTreeMap::new(),
    };
    assert_eq!(
        api_error(c.register_worker(&zero).await.expect_err("0 slots")).0,
        400
    );
}

#[tokio::test]
async fn stopping_the_coordinator_ends_streams_and_lease_polls() {
    let mut farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    // No worker can take the action, so both the stream and the lease poll wait.
    let mut spec = action(&c, "stop").await;
    spec.platform.insert("os".into(), "nowhere".into());
    let mut s = submit(&c, &build, &spec, "out/stop.o").await;
    next(&mut s).await;
    let w = register(&c, "alpha", &[("os", "linux")]).await;
    let c2 = c.clone();
    let poll = tokio::spawn(async move { c2.lease(&w, 30_000).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(STEP, farm.stop())
        .await
        .expect("stops in time");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(failed(last(s).await).contains("shutting down"));
    let polled = tokio::time::timeout(STEP, poll)
        .await
        .expect("poll ends")
        .expect("join");
    // Empty, or cut off by the stopping server: never a lease.
    assert!(
        polled.map(|r| r.lease.is_none()).unwrap_or(true),
        "no lease while stopping"
    );
}

/// Uploads 5,000 bytes (over the test's cap) and runs an eviction pass.
async fn fill_and_evict(farm: &Farm, seed: u64) -> rmake_coordinator::eviction::EvictionReport {
    let filler = Bytes::from(rmake_cas::testdata::bytes(seed, 5_000));
    farm.client()
        .upload_blob(&Digest::of(&filler), filler)
        .await
        .expect("upload filler");
    let blobs = farm.state().blobs.clone();
    tokio::task::spawn_blocking(move || rmake_coordinator::eviction::evict_once(&blobs))
        .await
        .expect("join")
        .expect("evict")
}

#[tokio::test]
async fn inputs_of_an_action_in_flight_survive_eviction() {
    // A 1,000-byte cap: the inputs fit; a 5,000-byte filler takes the store over it, and then
    // a pass evicts every unpinned blob.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::local(dir.path(), 1_000);
    config.fsync = false;
    config.eviction_interval = Duration::from_secs(3600);
    let running = server::spawn(config).await.expect("start");
    let farm = Farm {
        url: running.url.clone(),
        _dir: dir,
        running: Some(running),
    };
    let c = farm.client();
    let build = open(&c, 0).await;
    let mut spec = action(&c, "pinned").await;
    let header = Bytes::from_static(b"#define PINNED 1\n");
    let hd = Digest::of(&header);
    c.upload_blob(&hd, header).await.expect("upload");
    spec.inputs.push(OutputFile {
        path: "gen/pinned.h".into(),
        digest: hd,
        executable: false,
    });
    let s = submit(&c, &build, &spec, "pinned").await;
    let report = fill_and_evict(&farm, 1).await;
    assert!(report.bytes_after <= 1_000, "{report:?}");
    let wanted = [spec.input_root, hd];
    assert!(
        c.find_missing(&wanted).await.expect("find").is_empty(),
        "inputs kept while queued"
    );
    let w = register(&c, "alpha", &[]).await;
    let l = must_lease(&c, &w).await;
    fill_and_evict(&farm, 2).await;
    assert!(
        c.find_missing(&wanted).await.expect("find").is_empty(),
        "inputs kept while leased"
    );
    let result = run(&c, &l, 1, "failed, so nothing is cached").await;
    assert!(complete(&c, &l, result).await);
    finished(last(s).await);
    fill_and_evict(&farm, 3).await;
    assert_eq!(
        c.find_missing(&wanted).await.expect("find").len(),
        2,
        "released once finished"
    );
}

/// Scheduler throughput and latency over HTTP on loopback: `cargo test -p rmake-coordinator
/// --test integration sched::throughput -- --ignored --nocapture`. Prints actions/s with 32
/// simulated worker slots, and the round trip of one action at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn throughput() {
    let farm = Farm::start().await;
    let c = farm.client();
    let build = open(&c, 0).await;
    let root = source_tree(&c, "bench").await;
    let out = Bytes::from_static(b"the same object for every action");
    let out_digest = Digest::of(&out);
    c.upload_blob(&out_digest, out).await.expect("upload");
    let result = ActionResult {
        output_files: vec![OutputFile {
            path: "out.o".into(),
            digest: out_digest,
            executable: false,
        }],
        read_paths: vec!["src/".into()],
        reads_complete: true,
        ..ActionResult::default()
    };
    let workers: u32 = 4;
    let slots: u32 = 8;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for wi in 0..workers {
        let w = register(&c, &format!("bench{wi}"), &[]).await;
        for _ in 0..slots {
            let (c, w, result, stop) = (c.clone(), w.clone(), result.clone(), stop.clone());
            loops.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(resp) = c.lease(&w, 200).await else {
                        break;
                    };
                    if let Some(l) = resp.lease {
                        let outcome = LeaseOutcome::Completed {
                            result: result.clone(),
                        };
                        let _ = c.complete_lease(&l.id, &outcome).await;
                    }
                }
            }));
        }
    }
    let n = 2_000;
    let t = std::time::Instant::now();
    let mut streams = Vec::new();
    for i in 0..n {
        let (c, build) = (c.clone(), build.clone());
        let spec = spec_for(root, &format!("t{i}"));
        streams.push(tokio::spawn(async move {
            let s = submit(&c, &build, &spec, "t").await;
            finished(s.finish().await.expect("finish"));
        }));
    }
    for s in streams {
        s.await.expect("join");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{n} actions, {} worker slots: {secs:.2} s, {:.0} actions/s",
        workers * slots,
        f64::from(n) / secs
    );
    let t = std::time::Instant::now();
    let m = 200;
    for i in 0..m {
        let spec = spec_for(root, &format!("seq{i}"));
        let s = submit(&c, &build, &spec, "t").await;
        finished(s.finish().await.expect("finish"));
    }
    println!(
        "one at a time: {:.2} ms per action (submit, lease, complete, stored, delivered)",
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(m)
    );
    let t = std::time::Instant::now();
    for i in 0..m {
        let spec = spec_for(root, &format!("seq{i}"));
        let s = submit(&c, &build, &spec, "t").await;
        assert!(finished(s.finish().await.expect("finish")).1);
    }
    println!(
        "cache hits: {:.2} ms per action",
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(m)
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in loops {
        let _ = l.await;
    }
}
