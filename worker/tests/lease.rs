//! The lease runner on its own: `Executor::run` on hand-made leases, with a real coordinator
//! for the blobs (no scheduler involved).

mod harness;

use std::time::Duration;

use rmake_exec::CancelHandle;
use rmake_proto::exec::{Lease, LeaseId};
use rmake_proto::{ActionKey, CoordinatorClient, OutputFile};
use rmake_worker::{Executor, LeaseRun};

use harness::{entries, lease_roots, spec, Farm};

fn executor(farm: &Farm, dir: &std::path::Path) -> Executor {
    let client = CoordinatorClient::new(&farm.url, None).unwrap_or_else(|e| panic!("{e}"));
    Executor::new(client, dir.to_path_buf(), 1 << 30, "unit".into())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn lease(id: &str, spec: rmake_proto::exec::ActionSpec) -> Lease {
    Lease {
        id: LeaseId(id.into()),
        key: ActionKey([7; 32]),
        spec,
        target: "t".into(),
        attempt: 1,
    }
}

#[tokio::test]
async fn compiles_reads_writes_and_cleans_up() {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let root = farm
        .upload_tree(&[
            ("src/a.c", b"#include \"a.h\"\nint a;\n", false),
            ("inc/a.h", b"#define A 1\n", false),
            ("inc/unused.h", b"#define U 1\n", false),
            ("tool.sh", b"#!/bin/sh\necho tool \"$@\"\n", true),
        ])
        .await;
    let s = spec(
        root,
        &[
            "mkdir -p out",
            "cat inc/a.h src/a.c > out/a.o && echo 'out/a.o: src/a.c inc/a.h' > out/a.d",
            "./tool.sh ran",
        ],
        &["out/a.o"],
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ex = executor(&farm, dir.path());
    let LeaseRun::Completed(result) = ex.run(&lease("l1", s), CancelHandle::new()).await else {
        panic!("expected a completed run");
    };
    assert_eq!(result.exit_code, 0);
    assert_eq!(farm.log(&result.stdout).await, "tool ran\n");
    let paths: Vec<&str> = result
        .output_files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, vec!["out/a.d", "out/a.o"]);
    let obj: &OutputFile = &result.output_files[1];
    assert_eq!(
        farm.content(obj).await,
        "#define A 1\n#include \"a.h\"\nint a;\n"
    );
    assert!(
        result.read_paths.contains(&"inc/a.h".to_string()),
        "{:?}",
        result.read_paths
    );
    assert!(result.read_paths.contains(&"src/a.c".to_string()));
    assert!(result.read_paths.contains(&"tool.sh".to_string()));
    assert!(!result.read_paths.contains(&"inc/unused.h".to_string()));
    assert!(
        !result.read_paths.iter().any(|p| p.starts_with("out")),
        "outputs are not inputs"
    );
    assert!(result.reads_complete);
    assert_eq!(result.worker, "unit");
    // Every output blob is on the coordinator; nothing is left on the worker but its cache.
    let digests: Vec<_> = result.output_files.iter().map(|f| f.digest).collect();
    assert!(farm
        .client
        .find_missing(&digests)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .is_empty());
    ex.settle().await;
    assert!(lease_roots(&dir.path().join("exec")).is_empty());
    assert!(entries(&dir.path().join("scratch")).is_empty());
    assert_eq!(
        ex.idle_roots(),
        1,
        "the root is kept for the next action on the tree"
    );
    farm.stop().await;
}

#[tokio::test]
async fn listings_and_created_directories() {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let root = farm
        .upload_tree(&[("inc/a.h", b"a", false), ("src/x.c", b"x", false)])
        .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ex = executor(&farm, dir.path());
    let mut s = spec(
        root,
        &["ls ../../inc > /dev/null; ls ../.. > /dev/null; mkdir -p out/empty ../../gen"],
        &[],
    );
    s.working_dir = "work/here".into();
    let LeaseRun::Completed(r) = ex.run(&lease("d1", s), CancelHandle::new()).await else {
        panic!("expected a completed run");
    };
    assert_eq!(r.exit_code, 0, "{:?}", farm.log(&r.stderr).await);
    assert!(
        r.read_paths.contains(&"inc/".to_string()),
        "{:?}",
        r.read_paths
    );
    assert!(
        r.read_paths.contains(&"./".to_string()),
        "{:?}",
        r.read_paths
    );
    assert!(
        !r.read_paths.iter().any(|p| p.starts_with("work")),
        "the worker made work/here: {:?}",
        r.read_paths
    );
    assert_eq!(
        r.output_dirs,
        vec![
            "gen".to_string(),
            "work/here/out".into(),
            "work/here/out/empty".into()
        ],
        "created directories, not the working directory the worker made"
    );
    farm.stop().await;
}

#[tokio::test]
async fn writing_into_an_input_never_changes_the_cache() {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let root = farm.upload_tree(&[("v.txt", b"one\n", false)]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ex = executor(&farm, dir.path());
    let s = spec(root, &["echo two >> v.txt"], &[]);
    let LeaseRun::Completed(r) = ex.run(&lease("w1", s), CancelHandle::new()).await else {
        panic!("expected a completed run");
    };
    assert_eq!(r.output_files.len(), 1, "a changed input is an output");
    assert_eq!(farm.content(&r.output_files[0]).await, "one\ntwo\n");
    // A second run sees the original again.
    let s = spec(root, &["cat v.txt"], &[]);
    let LeaseRun::Completed(r) = ex.run(&lease("w2", s), CancelHandle::new()).await else {
        panic!("expected a completed run");
    };
    assert_eq!(farm.log(&r.stdout).await, "one\n");
    assert!(r.output_files.is_empty());
    farm.stop().await;
}

#[tokio::test]
async fn missing_inputs_are_an_error_and_leave_nothing_behind() {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ex = executor(&farm, dir.path());
    let s = spec(rmake_cas::Digest::of(b"never uploaded"), &["true"], &[]);
    match ex.run(&lease("m1", s), CancelHandle::new()).await {
        LeaseRun::Error(reason) => assert!(
            reason.contains("not stored") || reason.contains("404"),
            "{reason}"
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    ex.settle().await;
    assert!(entries(&dir.path().join("exec")).is_empty());
    farm.stop().await;
}

#[tokio::test]
async fn a_cancelled_lease_reports_nothing() {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let root = farm.upload_tree(&[("x", b"x", false)]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ex = executor(&farm, dir.path());
    let cancel = CancelHandle::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let t = std::time::Instant::now();
    let run = ex
        .run(&lease("c1", spec(root, &["sleep 30"], &[])), cancel)
        .await;
    assert_eq!(run, LeaseRun::Cancelled);
    assert!(t.elapsed() < Duration::from_secs(10));
    ex.settle().await;
    assert!(
        entries(&dir.path().join("exec")).is_empty(),
        "a cancelled root is not reused"
    );
    farm.stop().await;
}

/// Lists the tree under the working directory: files with mode and size, directories with
/// mode, symlinks with target, anything else by name; then two contents.
const INSPECT: &str =
    "find . -path ./.rmake-x -prune -o -type f -exec stat -c 'f %n %a %s' {} + | LC_ALL=C sort; \
    find . -type d -exec stat -c 'd %n %a' {} + | LC_ALL=C sort; \
    find . -type l -exec stat -c 'l %N' {} + | LC_ALL=C sort; \
    find . ! -type f ! -type d ! -type l | LC_ALL=C sort; cat a.txt sub/deep/c.txt";

/// Changes every kind of thing a recipe can change in its tree.
const MUTATE: &str = "printf 'bbbb\\n' > a.txt; rm dir/b.txt; mkdir dir/b.txt; \
    chmod 600 sub/deep/c.txt; chmod -x exe.sh; rm link; ln -s dir link2; ln -sf exe.sh link2b; \
    ln -sfn dir/x link; mkdir -p new/x && echo n > new/x/f; mkfifo fifo; chmod 700 sub; \
    rm -r many; touch dir/extra; chmod 555 dir; ln -s ../../etc up";

/// The same changes, with directories moved about too (the recorder then cannot vouch for the
/// paths it saw change, so the whole root is scanned).
const MUTATE_MOVING: &str = "mkdir -p sub/deep/n && echo q > sub/deep/n/q; mv sub/deep sub/moved; \
    echo w > sub/moved/w; mv many gone; printf 'bbbb\\n' > a.txt";

/// A write through a hard link to a file of another directory (which sees no event).
const MUTATE_LINKING: &str = "ln dir/b.txt hl; echo more >> hl; printf 'bbbb\\n' > a.txt";

/// Runs `mutate` on a root of a small tree (plus `extra_files` in `many/`), then checks that
/// the reused root looks exactly like a fresh one, that the output scan was bounded to the
/// changed directories (or not) as `bounded` says, and that it found what a whole scan finds.
async fn reuse_case(extra_files: usize, mutate: &str, bounded: bool) {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let many: Vec<(String, Vec<u8>)> = (0..extra_files)
        .map(|i| (format!("many/m{i}"), format!("{i}\n").into_bytes()))
        .collect();
    let mut files: Vec<(&str, &[u8], bool)> = vec![
        ("a.txt", b"aaaa\n", false),
        ("dir/b.txt", b"b\n", false),
        ("exe.sh", b"#!/bin/sh\n", true),
        ("sub/deep/c.txt", b"c\n", false),
    ];
    files.extend(many.iter().map(|(p, d)| (p.as_str(), d.as_slice(), false)));
    // The tree, with a symlink too.
    let root = {
        let mem = rmake_cas::MemoryStore::new();
        let client = &farm.client;
        let mut dirs = Vec::new();
        let mut b = rmake_cas::TreeBuilder::new();
        for (p, d, x) in &files {
            let digest = rmake_cas::BlobStore::put_bytes(&mem, d).unwrap_or_else(|e| panic!("{e}"));
            b.insert(
                &mem,
                p,
                rmake_cas::Node::File {
                    digest,
                    executable: *x,
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        b.insert(
            &mem,
            "link",
            rmake_cas::Node::Symlink {
                target: "a.txt".into(),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let root = b.write(&mem).unwrap_or_else(|e| panic!("{e}"));
        for info in rmake_cas::BlobStore::list(&mem).unwrap_or_else(|e| panic!("{e}")) {
            let data = rmake_cas::BlobStore::get(&mem, &info.digest)
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_default();
            dirs.push((info.digest, bytes::Bytes::from(data)));
        }
        client
            .upload_many(&dirs, 4)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        root
    };
    let fresh_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fresh = executor(&farm, fresh_dir.path());
    let LeaseRun::Completed(want) = fresh
        .run(
            &lease("f1", spec(root, &[INSPECT], &[])),
            CancelHandle::new(),
        )
        .await
    else {
        panic!("inspect failed");
    };
    assert_eq!(want.exit_code, 0, "{:?}", farm.log(&want.stderr).await);
    let want = farm.log(&want.stdout).await;
    assert!(want.contains("l './link' -> 'a.txt'"), "{want}");

    let whole_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let whole = executor(&farm, whole_dir.path()).with_bounded_scan(false);
    let LeaseRun::Completed(w) = whole
        .run(
            &lease("w1", spec(root, &[mutate], &["a.txt", "exe.sh"])),
            CancelHandle::new(),
        )
        .await
    else {
        panic!("mutate failed");
    };
    assert_eq!(whole.output_scans(), (0, 1));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ex = executor(&farm, dir.path());
    let LeaseRun::Completed(m) = ex
        .run(
            &lease("m1", spec(root, &[mutate], &["a.txt", "exe.sh"])),
            CancelHandle::new(),
        )
        .await
    else {
        panic!("mutate failed");
    };
    assert_eq!(m.exit_code, 0, "{:?}", farm.log(&m.stderr).await);
    assert_eq!(
        ex.output_scans(),
        if bounded { (1, 0) } else { (0, 1) },
        "bounded output scan"
    );
    assert_eq!(
        m.output_files, w.output_files,
        "the same outputs as a whole scan"
    );
    assert_eq!(m.output_dirs, w.output_dirs, "the same new directories");
    assert!(
        m.output_files.iter().any(|f| f.path == "exe.sh"),
        "a declared output, changed or not: {:?}",
        m.output_files
    );
    assert!(
        m.output_files.iter().any(|f| f.path == "a.txt"),
        "a same-size rewrite is seen: {:?}",
        m.output_files
    );
    ex.settle().await;
    assert_eq!(ex.idle_roots(), 1, "the mutated root was reset and kept");
    assert_eq!(ex.root_origins(), (0, 0, 1));
    for id in ["i1", "i2"] {
        let LeaseRun::Completed(got) = ex
            .run(&lease(id, spec(root, &[INSPECT], &[])), CancelHandle::new())
            .await
        else {
            panic!("inspect failed");
        };
        assert_eq!(
            farm.log(&got.stdout).await,
            want,
            "a reused root looks fresh"
        );
        assert!(got.output_files.is_empty(), "{:?}", got.output_files);
        ex.settle().await;
        assert_eq!(ex.idle_roots(), 1);
    }
    assert_eq!(
        ex.root_origins(),
        (2, 0, 1),
        "both inspections reused the root"
    );
    farm.stop().await;
}

#[tokio::test]
async fn a_reused_exec_root_is_reset_to_its_tree() {
    reuse_case(3, MUTATE, true).await;
}

#[tokio::test]
async fn a_hard_link_makes_the_scan_whole_and_the_root_is_still_reset() {
    reuse_case(3, MUTATE_LINKING, false).await;
}

#[tokio::test]
async fn moved_directories_make_the_scan_whole_and_the_root_is_still_reset() {
    reuse_case(3, MUTATE_MOVING, false).await;
}

#[tokio::test]
async fn a_reused_exec_root_of_a_stamped_tree_is_reset_too() {
    reuse_case(100, MUTATE, true).await;
}

#[tokio::test]
async fn an_idle_root_of_another_tree_is_reshaped() {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let one = farm
        .upload_tree(&[
            ("a.txt", b"aaaa\n", false),
            ("dir/b.txt", b"b\n", false),
            ("gone.txt", b"gone\n", false),
            ("sub/deep/c.txt", b"c\n", false),
            ("becomes/dir", b"file\n", false),
        ])
        .await;
    let two = farm
        .upload_tree(&[
            ("a.txt", b"AAAA\n", false),
            ("dir/b.txt", b"b\n", true),
            ("new.txt", b"new\n", false),
            ("sub/deep/c.txt", b"c\n", false),
            ("becomes/dir/x", b"x\n", false),
        ])
        .await;
    let fresh_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fresh = executor(&farm, fresh_dir.path());
    let LeaseRun::Completed(want) = fresh
        .run(&lease("f", spec(two, &[INSPECT], &[])), CancelHandle::new())
        .await
    else {
        panic!("inspect failed");
    };
    let want = farm.log(&want.stdout).await;

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ex = executor(&farm, dir.path());
    let LeaseRun::Completed(_) = ex
        .run(
            &lease("o", spec(one, &["echo x > out"], &[])),
            CancelHandle::new(),
        )
        .await
    else {
        panic!("first action failed");
    };
    ex.settle().await;
    let LeaseRun::Completed(got) = ex
        .run(&lease("t", spec(two, &[INSPECT], &[])), CancelHandle::new())
        .await
    else {
        panic!("inspect failed");
    };
    assert_eq!(farm.log(&got.stdout).await, want);
    assert!(got.output_files.is_empty(), "{:?}", got.output_files);
    assert_eq!(
        ex.root_origins(),
        (0, 1, 1),
        "the second root was reshaped, not materialized"
    );
    farm.stop().await;
}

#[tokio::test]
async fn an_evicted_tree_is_fetched_again() {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let root = farm
        .upload_tree(&[("a.txt", b"a\n", false), ("b/c.txt", b"c\n", false)])
        .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let client = CoordinatorClient::new(&farm.url, None).unwrap_or_else(|e| panic!("{e}"));
    // A one-byte cache: everything is evicted after each action; no idle roots either.
    let ex = Executor::new(client, dir.path().to_path_buf(), 1, "tiny".into())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_idle_roots(0);
    for id in ["e1", "e2", "e3"] {
        let run = ex
            .run(
                &lease(id, spec(root, &["cat a.txt b/c.txt"], &[])),
                CancelHandle::new(),
            )
            .await;
        let LeaseRun::Completed(r) = run else {
            panic!("{id}: expected a completed run, got {run:?}");
        };
        assert_eq!(farm.log(&r.stdout).await, "a\nc\n");
        ex.settle().await;
        assert_eq!(ex.cache.total_bytes(), 0, "evicted");
    }
    assert_eq!(ex.root_origins(), (0, 0, 3));
    farm.stop().await;
}

#[tokio::test]
async fn a_known_tree_skips_the_walk_but_still_gets_its_overlay() {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let root = farm.upload_tree(&[("a.txt", b"a\n", false)]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ex = executor(&farm, dir.path());
    for (i, text) in ["one\n", "two\n", "three\n"].iter().enumerate() {
        let d = farm.upload(text.as_bytes()).await;
        let mut s = spec(root, &["cat a.txt gen.txt"], &[]);
        s.inputs = vec![OutputFile {
            path: "gen.txt".into(),
            digest: d,
            executable: false,
        }];
        let LeaseRun::Completed(r) = ex
            .run(&lease(&format!("k{i}"), s), CancelHandle::new())
            .await
        else {
            panic!("expected a completed run");
        };
        assert_eq!(farm.log(&r.stdout).await, format!("a\n{text}"));
        ex.settle().await;
    }
    farm.stop().await;
}

#[tokio::test]
async fn the_next_action_waits_for_its_tree_s_root_being_reset() {
    let farm = Farm::start(Duration::from_secs(10)).await;
    let files: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| (format!("d{}/f{i}", i % 10), format!("{i}\n").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8], bool)> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice(), false))
        .collect();
    let root = farm.upload_tree(&refs).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ex = executor(&farm, dir.path());
    for i in 0..5 {
        // No settle in between: the reset of the last root is still under way, or just done.
        let line = format!("rm d1/f1; echo {i} > d2/out; cat d3/f3");
        let LeaseRun::Completed(r) = ex
            .run(
                &lease(&format!("r{i}"), spec(root, &[line.as_str()], &[])),
                CancelHandle::new(),
            )
            .await
        else {
            panic!("run {i} failed");
        };
        assert_eq!(r.exit_code, 0, "{:?}", farm.log(&r.stderr).await);
        let paths: Vec<&str> = r.output_files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["d2/out"], "run {i}");
        assert_eq!(r.read_paths, vec!["d3/f3".to_string()], "run {i}");
    }
    ex.settle().await;
    assert_eq!(
        ex.root_origins(),
        (4, 0, 1),
        "every action after the first reused the root"
    );
    assert_eq!(ex.output_scans(), (5, 0));
    farm.stop().await;
}
