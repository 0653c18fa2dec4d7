//! The action cache keyed by read sets, on a real server: the test plays the client and a
//! worker through the real endpoints, uploading real trees and outputs, and checks what hits,
//! what misses, what is never stored, and what `POST /v1/explain` says.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use rmake_cas::tree::Node;
use rmake_cas::{BlobStore, Digest, MemoryStore, TreeBuilder};
use rmake_coordinator::readsets::lists::{self, MAX_READ_SETS};
use rmake_proto::exec::{
    ActionSpec, BuildRequest, CommandLine, ExecuteEvent, ExecuteRequest, ExplainRequest,
    ExplainResponse, Lease, LeaseOutcome, RegisterRequest, WorkerId,
};
use rmake_proto::{ActionKey, ActionResult, BuildId, CoordinatorClient, LogOutput, OutputFile};

use crate::harness::TestServer;

/// Longest any single step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(20);

/// The files every test tree starts from.
const BASE: &[(&str, &str)] = &[
    ("Makefile", "out/main.o: src/main.c include/config.h\n"),
    (
        "src/main.c",
        "#include \"config.h\"\nint main(void) { return 0; }\n",
    ),
    ("include/config.h", "#define LEVEL 1\n"),
    ("include/unused.h", "#define UNUSED 1\n"),
    ("docs/readme", "read me\n"),
];

/// What the test worker "reads" when it runs the compile.
const READS: &[&str] = &["src/main.c", "include/config.h", "include/"];

/// A coordinator, a client, an open build and a registered test worker.
struct Bench {
    server: TestServer,
    c: CoordinatorClient,
    build: BuildId,
    worker: WorkerId,
}

/// How one execute request ended.
#[derive(Debug)]
struct Outcome {
    key: ActionKey,
    result: ActionResult,
    cached: bool,
}

impl Bench {
    async fn start() -> Bench {
        Bench::on(TestServer::start().await).await
    }

    /// A bench on an already-started server.
    async fn on(server: TestServer) -> Bench {
        let c = server.client();
        let build = c
            .create_build(&BuildRequest {
                label: "readsets test".into(),
                jobs: 0,
            })
            .await
            .expect("create build");
        let worker = c
            .register_worker(&RegisterRequest {
                name: "tester".into(),
                slots: 4,
                platform: BTreeMap::new(),
            })
            .await
            .expect("register")
            .worker;
        Bench {
            server,
            c,
            build,
            worker,
        }
    }

    /// Uploads a tree of `BASE` with `changes` applied (`None` removes a file) and returns its
    /// root.
    async fn tree(&self, changes: &[(&str, Option<&str>)]) -> Digest {
        let mut files: BTreeMap<&str, &str> = BASE.iter().copied().collect();
        for (path, text) in changes {
            match text {
                Some(t) => files.insert(path, t),
                None => files.remove(path),
            };
        }
        let local = MemoryStore::new();
        let mut tb = TreeBuilder::new();
        for (path, text) in files {
            let digest = local.put_bytes(text.as_bytes()).expect("put file");
            tb.insert(
                &local,
                path,
                Node::File {
                    digest,
                    executable: false,
                },
            )
            .expect("insert");
        }
        let root = tb.write(&local).expect("write tree");
        for info in local.list().expect("list") {
            let data = local.get(&info.digest).expect("get").expect("present");
            self.c
                .upload_blob(&info.digest, Bytes::from(data))
                .await
                .expect("upload");
        }
        root
    }

    /// Runs `req`: the coordinator answers from the cache or leases it to the test worker,
    /// which uploads the blobs and reports the result `work(lease)` gives.
    async fn run_with(
        &self,
        req: &ExecuteRequest,
        work: impl FnOnce(&Lease) -> (ActionResult, Vec<Bytes>),
    ) -> Outcome {
        let mut s = self.c.execute(&self.build, req).await.expect("execute");
        let first = tokio::time::timeout(STEP, s.next())
            .await
            .expect("an event in time")
            .expect("read event")
            .expect("an event");
        if let ExecuteEvent::Finished(r) = first {
            return Outcome {
                key: r.key,
                result: r.result,
                cached: r.cached,
            };
        }
        assert!(matches!(first, ExecuteEvent::Queued { .. }), "{first:?}");
        let lease = tokio::time::timeout(STEP, self.c.lease(&self.worker, 5_000))
            .await
            .expect("lease in time")
            .expect("lease")
            .lease
            .expect("a lease");
        let (result, blobs) = work(&lease);
        for data in blobs {
            self.c
                .upload_blob(&Digest::of(&data), data)
                .await
                .expect("upload output");
        }
        let accepted = self
            .c
            .complete_lease(&lease.id, &LeaseOutcome::Completed { result })
            .await
            .expect("complete");
        assert!(accepted);
        match tokio::time::timeout(STEP, s.finish())
            .await
            .expect("the end in time")
            .expect("read to the end")
        {
            ExecuteEvent::Finished(r) => Outcome {
                key: r.key,
                result: r.result,
                cached: r.cached,
            },
            other => panic!("expected finished, got {other:?}"),
        }
    }

    /// Runs `req` with a worker that reads `reads` and succeeds.
    async fn run(&self, req: &ExecuteRequest, reads: &[&str]) -> Outcome {
        let reads: Vec<String> = reads.iter().map(|r| r.to_string()).collect();
        self.run_with(req, |lease| ok_result(lease, reads)).await
    }

    async fn explain(&self, req: &ExecuteRequest) -> ExplainResponse {
        self.c
            .explain(&ExplainRequest {
                target: req.target.clone(),
                spec: req.spec.clone(),
                prereqs: req.prereqs.clone(),
            })
            .await
            .expect("explain")
    }

    fn read_sets(&self, req: &ExecuteRequest) -> usize {
        let pre_key = req.spec.pre_key(&req.prereqs);
        lists::read_sets(self.server.state.blobs.meta().read_sets(), &pre_key)
            .expect("read sets")
            .len()
    }
}

/// A successful result of `lease` that read `reads`, with one fresh output per target.
fn ok_result(lease: &Lease, reads: Vec<String>) -> (ActionResult, Vec<Bytes>) {
    let mut blobs = Vec::new();
    let mut output_files = Vec::new();
    for o in &lease.spec.outputs {
        let data = Bytes::from(format!("object code of {o} made under lease {}", lease.id));
        output_files.push(OutputFile {
            path: o.clone(),
            digest: Digest::of(&data),
            executable: false,
        });
        blobs.push(data);
    }
    let result = ActionResult {
        output_files,
        stdout: LogOutput::Inline {
            text: String::new(),
        },
        exit_code: 0,
        lines_run: lease.spec.lines.len() as u32,
        read_paths: reads,
        reads_complete: true,
        ..ActionResult::default()
    };
    (result, blobs)
}

fn compile(root: Digest, flags: &str) -> ExecuteRequest {
    ExecuteRequest {
        spec: ActionSpec {
            input_root: root,
            inputs: vec![],
            working_dir: String::new(),
            lines: vec![CommandLine {
                command: format!("cc {flags} -Iinclude -c src/main.c -o out/main.o"),
                ignore_errors: false,
            }],
            oneshell: false,
            shell: "/bin/sh".into(),
            shell_flags: "-c".into(),
            env: vec![("CFLAGS".into(), flags.into())],
            outputs: vec!["out/main.o".into()],
            platform: BTreeMap::new(),
            timeout_secs: None,
        },
        target: "out/main.o".into(),
        skip_cache_lookup: false,
        cacheable: true,
        prereqs: Vec::new(),
    }
}

#[tokio::test]
async fn a_change_to_a_file_it_did_not_read_still_hits() {
    let b = Bench::start().await;
    let first = b.run(&compile(b.tree(&[]).await, "-O2"), READS).await;
    assert!(!first.cached);
    // Another branch: a different root, but nothing the recipe read differs (a file of a
    // listed directory changed its content, not its name).
    let other = b
        .tree(&[
            ("include/unused.h", Some("#define UNUSED 2\n")),
            ("docs/readme", Some("changed\n")),
            ("docs/new", Some("new\n")),
        ])
        .await;
    let again = b.run(&compile(other, "-O2"), READS).await;
    assert!(again.cached, "a hit");
    assert_eq!(again.key, first.key, "the same entry");
    assert_eq!(again.result.output_files, first.result.output_files);
}

#[tokio::test]
async fn a_change_to_a_file_it_read_misses() {
    let b = Bench::start().await;
    let first = b.run(&compile(b.tree(&[]).await, "-O2"), READS).await;
    let changed = b
        .tree(&[("include/config.h", Some("#define LEVEL 2\n"))])
        .await;
    let again = b.run(&compile(changed, "-O2"), READS).await;
    assert!(!again.cached, "ran again");
    assert_ne!(again.key, first.key);
    assert_ne!(again.result.output_files, first.result.output_files);
    // A file it read going away misses too.
    let gone = b.tree(&[("src/main.c", None)]).await;
    assert!(!b.run(&compile(gone, "-O2"), READS).await.cached);
}

#[tokio::test]
async fn a_file_added_to_a_directory_it_listed_misses() {
    let b = Bench::start().await;
    b.run(&compile(b.tree(&[]).await, "-O2"), READS).await;
    let added = b.tree(&[("include/extra.h", Some("int x;\n"))]).await;
    assert!(!b.run(&compile(added, "-O2"), READS).await.cached);
    // The inputs overlay is part of the view: a generated file placed in `include/` changes
    // its listing as well.
    let mut req = compile(b.tree(&[]).await, "-O2");
    let gen = Bytes::from_static(b"#define GEN 1\n");
    b.c.upload_blob(&Digest::of(&gen), gen.clone())
        .await
        .expect("upload");
    req.spec.inputs = vec![OutputFile {
        path: "include/gen.h".into(),
        digest: Digest::of(&gen),
        executable: false,
    }];
    assert!(!b.run(&req, READS).await.cached);
    assert!(b.run(&req, READS).await.cached, "and then hits itself");
}

#[tokio::test]
async fn two_branches_under_one_pre_key_both_hit_afterwards() {
    let b = Bench::start().await;
    let a_root = b
        .tree(&[("include/config.h", Some("#define BRANCH_A\n"))])
        .await;
    let b_root = b
        .tree(&[("include/config.h", Some("#define BRANCH_B\n"))])
        .await;
    let (a_req, b_req) = (compile(a_root, "-O2"), compile(b_root, "-O2"));
    assert_eq!(
        a_req.spec.pre_key(&[]),
        b_req.spec.pre_key(&[]),
        "same pre_key"
    );
    let a1 = b.run(&a_req, READS).await;
    let b1 = b.run(&b_req, READS).await;
    assert!(!a1.cached && !b1.cached);
    assert_eq!(b.read_sets(&a_req), 2);
    let a2 = b.run(&a_req, READS).await;
    let b2 = b.run(&b_req, READS).await;
    assert!(a2.cached && b2.cached, "both branches hit");
    assert_eq!((a2.key, b2.key), (a1.key, b1.key));
    assert_eq!(a2.result.output_files, a1.result.output_files);
    assert_eq!(b2.result.output_files, b1.result.output_files);
    assert_ne!(a2.result.output_files, b2.result.output_files);
    // Each root was flattened once, however many lookups and stores used it.
    assert_eq!(b.server.state.readsets.trees().flattens(), 2);
}

#[tokio::test]
async fn incomplete_reads_are_never_stored() {
    let b = Bench::start().await;
    let req = compile(b.tree(&[]).await, "-O2");
    let first = b
        .run_with(&req, |l| {
            let (mut r, blobs) = ok_result(l, vec!["src/main.c".into()]);
            r.reads_complete = false;
            (r, blobs)
        })
        .await;
    assert_eq!((first.cached, first.result.exit_code), (false, 0));
    assert_eq!(b.server.state.actions.len(), 0, "nothing stored");
    assert_eq!(b.read_sets(&req), 0);
    assert!(!b.run(&req, READS).await.cached, "runs again");
    assert!(b.run(&req, READS).await.cached, "a complete run is stored");
}

#[tokio::test]
async fn a_failed_action_is_never_stored() {
    let b = Bench::start().await;
    let req = compile(b.tree(&[]).await, "-O2");
    let first = b
        .run_with(&req, |l| {
            let (mut r, blobs) = ok_result(l, vec!["src/main.c".into()]);
            r.exit_code = 1;
            (r, blobs)
        })
        .await;
    assert_eq!((first.cached, first.result.exit_code), (false, 1));
    assert_eq!(b.server.state.actions.len(), 0);
    assert_eq!(b.read_sets(&req), 0);
    // Not cacheable (`.RMAKE_NOCACHE`, phony): never stored either.
    let mut nocache = req.clone();
    nocache.cacheable = false;
    assert!(!b.run(&nocache, READS).await.cached);
    assert_eq!(b.server.state.actions.len(), 0);
}

#[tokio::test]
async fn skip_cache_lookup_runs_and_still_stores() {
    let b = Bench::start().await;
    let req = compile(b.tree(&[]).await, "-O2");
    let first = b.run(&req, READS).await;
    let mut forced = req.clone();
    forced.skip_cache_lookup = true;
    let second = b.run(&forced, READS).await;
    assert!(!second.cached, "-B runs it");
    assert_eq!(second.key, first.key, "same read set, same entry");
    let third = b.run(&req, READS).await;
    assert!(third.cached);
    assert_eq!(
        third.result.output_files, second.result.output_files,
        "the -B result replaced the first"
    );
}

#[tokio::test]
async fn an_entry_whose_output_blob_is_gone_misses() {
    let b = Bench::start().await;
    let req = compile(b.tree(&[]).await, "-O2");
    let first = b.run(&req, READS).await;
    let out = first.result.output_files[0].digest;
    assert!(b
        .server
        .state
        .blobs
        .store()
        .delete(&out)
        .expect("delete output"));
    let explained = b.explain(&req).await;
    assert!(!explained.hit);
    assert_eq!(
        explained.reasons,
        ["the cached result's outputs were evicted from the store"]
    );
    let again = b.run(&req, READS).await;
    assert!(!again.cached, "never served without its outputs");
    assert!(b.run(&req, READS).await.cached, "the new run is served");
}

#[tokio::test]
async fn explain_names_the_file_or_listing_that_changed() {
    let b = Bench::start().await;
    let req = compile(b.tree(&[]).await, "-O2");
    assert_eq!(
        b.explain(&req).await,
        ExplainResponse {
            hit: false,
            reasons: vec!["no earlier build of this target in the cache".into()],
        }
    );
    b.run(&req, READS).await;
    assert_eq!(
        b.explain(&req).await,
        ExplainResponse {
            hit: true,
            reasons: vec![],
        }
    );
    let changed = compile(
        b.tree(&[("include/config.h", Some("#define LEVEL 9\n"))])
            .await,
        "-O2",
    );
    let e = b.explain(&changed).await;
    assert!(!e.hit);
    assert_eq!(e.reasons, ["file it read changed: include/config.h"]);
    let listed = compile(b.tree(&[("include/zz.h", Some("\n"))]).await, "-O2");
    assert_eq!(
        b.explain(&listed).await.reasons,
        ["directory listing changed: include/"]
    );
}

#[tokio::test]
async fn explain_names_the_recipe_line_variable_and_prerequisite_that_changed() {
    let b = Bench::start().await;
    let root = b.tree(&[]).await;
    let prereq = |path: &str, text: &str| OutputFile {
        path: path.into(),
        digest: Digest::of(text.as_bytes()),
        executable: false,
    };
    let mut req = compile(root, "-O2");
    req.prereqs = vec![prereq("src/main.c", "v1"), prereq("lib/a.o", "v1")];
    b.run(&req, READS).await;

    let mut line = req.clone();
    line.spec.lines[0].command = "cc -O3 -Iinclude -c src/main.c -o out/main.o".into();
    assert_eq!(
        b.explain(&line).await.reasons,
        ["recipe line 1 changed: cc -O2 -Iinclude -c src/main.c -o out/main.o -> cc -O3 -Iinclude -c src/main.c -o out/main.o"]
    );
    let mut var = req.clone();
    var.spec.env = vec![("CFLAGS".into(), "-O3".into()), ("LANG".into(), "C".into())];
    assert_eq!(
        b.explain(&var).await.reasons,
        ["variable CFLAGS changed", "variable LANG added"]
    );
    let mut pre = req.clone();
    pre.prereqs[1] = prereq("lib/a.o", "v2");
    assert_eq!(
        b.explain(&pre).await.reasons,
        ["prerequisite changed: lib/a.o"]
    );
    let mut plat = req.clone();
    plat.spec
        .platform
        .insert("toolchain".into(), "gcc-13".into());
    plat.spec.working_dir = "src".into();
    assert_eq!(
        b.explain(&plat).await.reasons,
        [
            "working directory changed: . -> src",
            "platform property toolchain added: gcc-13"
        ]
    );
    let mut other = req.clone();
    other.spec.outputs = vec!["out/other.o".into()];
    other.target = "out/other.o".into();
    assert_eq!(
        b.explain(&other).await.reasons,
        ["no earlier build of this target in the cache"]
    );
}

#[tokio::test]
async fn read_sets_under_one_pre_key_are_bounded() {
    let b = Bench::start().await;
    let mut reqs = Vec::new();
    for i in 0..MAX_READ_SETS + 2 {
        let text = format!("#define BRANCH {i}\n");
        let req = compile(b.tree(&[("include/config.h", Some(&text))]).await, "-O2");
        assert!(!b.run(&req, READS).await.cached);
        reqs.push(req);
    }
    assert_eq!(b.read_sets(&reqs[0]), MAX_READ_SETS);
    // The two oldest read sets were pushed out, their results with them; the newest hit.
    assert_eq!(b.server.state.actions.len(), MAX_READ_SETS as u64);
    assert!(!b.explain(&reqs[0]).await.hit);
    assert!(!b.explain(&reqs[1]).await.hit);
    for req in &reqs[2..] {
        assert!(b.explain(req).await.hit);
    }
    assert!(b.run(&reqs[MAX_READ_SETS + 1], READS).await.cached);
    // Running an old one again puts its set back first, without repeating the others.
    assert!(!b.run(&reqs[0], READS).await.cached);
    assert_eq!(b.read_sets(&reqs[0]), MAX_READ_SETS);
    assert!(b.explain(&reqs[0]).await.hit);
}

#[tokio::test]
async fn explain_is_for_clients() {
    use crate::harness::Options;
    use rmake_coordinator::Role;
    let server = TestServer::with(Options {
        tokens: vec![
            (Role::Client, "client-token".into()),
            (Role::Worker, "worker-token".into()),
        ],
        ..Options::default()
    })
    .await;
    let req = ExplainRequest {
        target: "out/main.o".into(),
        spec: compile(Digest::of(b"no such tree"), "-O2").spec,
        prereqs: vec![],
    };
    let ok = server
        .client_with("client-token")
        .explain(&req)
        .await
        .expect("a client may ask");
    assert!(!ok.hit);
    match server.client_with("worker-token").explain(&req).await {
        Err(rmake_proto::ClientError::Api { status, .. }) => assert_eq!(status, 403),
        other => panic!("a worker may not ask: {other:?}"),
    }
    let mut bad = req.clone();
    bad.spec.outputs = vec!["../escape".into()];
    match server.client_with("client-token").explain(&bad).await {
        Err(rmake_proto::ClientError::Api { status, .. }) => assert_eq!(status, 400),
        other => panic!("a bad path is refused: {other:?}"),
    }
}

/// Uploads the directory nodes of a tree of `dirs` × `per_dir` files (the file blobs are not
/// needed to flatten it) whose `seed` changes one file no recipe reads; returns the root.
async fn big_tree(c: &CoordinatorClient, dirs: usize, per_dir: usize, seed: &str) -> Digest {
    let local = MemoryStore::new();
    let mut tb = TreeBuilder::new();
    for d in 0..dirs {
        for f in 0..per_dir {
            let text = format!("file {f} of dir {d}");
            tb.insert(
                &local,
                &format!("src/d{d}/f{f}.c"),
                Node::File {
                    digest: Digest::of(text.as_bytes()),
                    executable: false,
                },
            )
            .expect("insert");
        }
    }
    tb.insert(
        &local,
        "docs/seed",
        Node::File {
            digest: Digest::of(seed.as_bytes()),
            executable: false,
        },
    )
    .expect("insert");
    let root = tb.write(&local).expect("write");
    for info in local.list().expect("list") {
        let data = local.get(&info.digest).expect("get").expect("present");
        c.upload_blob(&info.digest, Bytes::from(data))
            .await
            .expect("upload");
    }
    root
}

/// Measures lookups on a 20,000-file tree: a hit on a root seen for the first time (which
/// flattens it) and hits on a root already in the LRU. Run with `--ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn lookup_cost_on_a_big_tree() {
    let b = Bench::start().await;
    let reads: Vec<String> = (0..200)
        .map(|i| format!("src/d{}/f{}.c", i % 200, i % 100))
        .chain(["src/".to_string(), "src/d0/".to_string()])
        .collect();
    let reads: Vec<&str> = reads.iter().map(String::as_str).collect();
    let first = big_tree(&b.c, 200, 100, "one").await;
    b.run(&compile(first, "-O2"), &reads).await;
    let mut fresh_ms = Vec::new();
    for i in 0..5 {
        let root = big_tree(&b.c, 200, 100, &format!("other {i}")).await;
        let t = std::time::Instant::now();
        assert!(b.run(&compile(root, "-O2"), &reads).await.cached);
        fresh_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let root = big_tree(&b.c, 200, 100, "other 4").await;
    let n = 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        assert!(b.run(&compile(root, "-O2"), &reads).await.cached);
    }
    let warm = t.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    let cache = b.server.state.readsets.clone();
    let spec = compile(root, "-O2").spec;
    let direct = tokio::task::spawn_blocking(move || {
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert!(cache.lookup(&spec, &[]).expect("lookup").is_some());
        }
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
    })
    .await
    .expect("join");
    println!("lookup alone (no HTTP): {direct:.2} ms");
    println!(
        "20,000 files, read set of {} entries: hit on a new root {:.1} ms (flatten included; runs {:?}), hit on a root in the LRU {warm:.2} ms, flattens {}",
        reads.len(),
        fresh_ms.iter().sum::<f64>() / fresh_ms.len() as f64,
        fresh_ms.iter().map(|m| m.round()).collect::<Vec<_>>(),
        b.server.state.readsets.trees().flattens()
    );
}

#[tokio::test]
async fn read_sets_survive_a_restart() {
    let b = Bench::start().await;
    let req = compile(b.tree(&[]).await, "-O2");
    let first = b.run(&req, READS).await;
    let dir = b.server.stop().await;
    let b = Bench::on(TestServer::in_dir(dir, crate::harness::Options::default()).await).await;
    let again = b.run(&req, READS).await;
    assert!(again.cached, "a hit after the restart");
    assert_eq!(again.key, first.key);
    let mut changed = req.clone();
    changed.spec.lines[0].command.push_str(" -g");
    let e = b.explain(&changed).await;
    assert_eq!(e.reasons.len(), 1, "{e:?}");
    assert!(e.reasons[0].starts_with("recipe line 1 changed: "), "{e:?}");
}
