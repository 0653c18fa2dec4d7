//! The lease runner on its own: `Executor::run` on hand-made leases, with a real coordinator
//! for the blobs (no scheduler involved).

mod harness;

use std::time::Duration;

use rmake_exec::CancelHandle;
use rmake_proto::exec::{Lease, LeaseId};
use rmake_proto::{ActionKey, CoordinatorClient, OutputFile};
use rmake_worker::{Executor, LeaseRun};

use harness::{entries, spec, Farm};

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
    assert!(entries(&dir.path().join("exec")).is_empty());
    assert!(entries(&dir.path().join("scratch")).is_empty());
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
    assert!(entries(&dir.path().join("exec")).is_empty());
    farm.stop().await;
}
