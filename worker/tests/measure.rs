//! Measurements, not checks (ignored by default; run with
//! `cargo test -p rmake-worker --test measure -- --ignored --nocapture`): the round trip of a
//! trivial action through coordinator and worker, throughput with several in flight, and the
//! cost of an exec root of many files.

mod harness;

use std::time::{Duration, Instant};

use harness::{spec, Farm};

/// Logs to stderr when `RMAKE_LOG` is set (e.g. `rmake_worker=debug` for per-phase times).
fn logs() {
    if let Ok(filter) = std::env::var("RMAKE_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

fn report(what: &str, n: usize, took: Duration) {
    let per = took.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "{what}: {n} in {:.2}s, {per:.2} ms each",
        took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn action_overhead() {
    logs();
    let farm = Farm::start(Duration::from_secs(10)).await;
    let mut config = farm.worker_config(std::path::Path::new("/nonexistent"));
    config.slots = 4;
    let worker = farm.start_worker_with(config);
    let small = farm.upload_tree(&[("a.c", b"int a;\n", false)]).await;

    // Warm up (registration, first fetch).
    let _ = farm.execute(spec(small, &["true"], &[])).await;
    let n = 100;
    let t = Instant::now();
    for i in 0..n {
        let line = format!("echo {i} > out.txt");
        let r = farm
            .execute(spec(small, &[line.as_str()], &["out.txt"]))
            .await;
        assert_eq!(r.exit_code, 0);
    }
    report("sequential trivial actions (1 file tree)", n, t.elapsed());

    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let url = farm.url.clone();
    let build = farm.build().await;
    for i in 0..n {
        let s = spec(
            small,
            &[format!("echo {i} > out.txt").as_str()],
            &["out.txt"],
        );
        let (url, build) = (url.clone(), build.clone());
        tasks.spawn(async move {
            let client =
                rmake_proto::CoordinatorClient::new(&url, None).unwrap_or_else(|e| panic!("{e}"));
            let req = rmake_proto::exec::ExecuteRequest {
                spec: s,
                target: "t".into(),
                skip_cache_lookup: true,
                cacheable: false,
                prereqs: Vec::new(),
            };
            let stream = client
                .execute(&build, &req)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            stream.finish().await.unwrap_or_else(|e| panic!("{e}"))
        });
    }
    while tasks.join_next().await.is_some() {}
    report("concurrent trivial actions (4 slots)", n, t.elapsed());

    let files: Vec<(String, Vec<u8>)> = (0..2000)
        .map(|i| {
            (
                format!("d{}/f{i}.c", i % 20),
                format!("int f{i};\n").into_bytes(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8], bool)> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice(), false))
        .collect();
    let big = farm.upload_tree(&refs).await;
    let t = Instant::now();
    let r = farm.execute(spec(big, &["true"], &[])).await;
    report(
        "first action on a 2000-file tree (fetch + exec root)",
        1,
        t.elapsed(),
    );
    println!("  worker timings: {:?}", r.timings);
    let n = 10;
    let t = Instant::now();
    let mut last = None;
    for i in 0..n {
        let line = format!("cat d{}/f{i}.c > o{i}", i % 20);
        last = Some(farm.execute(spec(big, &[line.as_str()], &[])).await);
    }
    report(
        "actions on the 2000-file tree (cached blobs)",
        n,
        t.elapsed(),
    );
    if let Some(r) = last {
        println!("  worker timings: {:?}", r.timings);
    }
    worker.stop().await.unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

/// Runs `n` trivial leases (each writing one file) on the tree `root` with one executor, after
/// a first one that prepares the root; prints the mean of each phase and of the reset.
async fn lease_runner_on(
    farm: &Farm,
    root: rmake_cas::Digest,
    what: &str,
    n: usize,
    bounded: bool,
) {
    use rmake_exec::CancelHandle;
    use rmake_proto::exec::{Lease, LeaseId};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let client =
        rmake_proto::CoordinatorClient::new(&farm.url, None).unwrap_or_else(|e| panic!("{e}"));
    let ex = rmake_worker::Executor::new(client, dir.path().to_path_buf(), 1 << 30, "m".into())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_bounded_scan(bounded);
    let mut sums = [0u64; 3];
    let mut settle = Duration::ZERO;
    let mut total = Duration::ZERO;
    for i in 0..=n {
        let line = format!("echo {i} > out.txt");
        let lease = Lease {
            id: LeaseId(format!("l{i}")),
            key: rmake_proto::ActionKey([1; 32]),
            spec: spec(root, &[line.as_str()], &["out.txt"]),
            target: "t".into(),
            attempt: 1,
        };
        let t = Instant::now();
        let r = match ex.run(&lease, CancelHandle::new()).await {
            rmake_worker::LeaseRun::Completed(r) => r,
            other => panic!("{other:?}"),
        };
        let ran = t.elapsed();
        let t = Instant::now();
        ex.settle().await;
        if i > 0 {
            total += ran;
            settle += t.elapsed();
            sums[0] += r.timings.input_fetch_ms;
            sums[1] += r.timings.execution_ms;
            sums[2] += r.timings.output_upload_ms;
        }
    }
    report(
        &format!("lease runner alone, trivial actions, {what}"),
        n,
        total,
    );
    println!(
        "  mean fetch+root {} ms, run {} ms, outputs {} ms; reset afterwards {:.2} ms; scans (bounded, whole) {:?}",
        sums[0] / n as u64,
        sums[1] / n as u64,
        sums[2] / n as u64,
        settle.as_secs_f64() * 1000.0 / n as f64,
        ex.output_scans(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn lease_runner_overhead() {
    logs();
    let farm = Farm::start(Duration::from_secs(10)).await;
    let small = farm.upload_tree(&[("a.c", b"int a;\n", false)]).await;
    lease_runner_on(&farm, small, "1-file tree", 50, true).await;
    let files: Vec<(String, Vec<u8>)> = (0..2000)
        .map(|i| {
            (
                format!("d{}/f{i}.c", i % 20),
                format!("int f{i};\n").into_bytes(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8], bool)> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice(), false))
        .collect();
    let big = farm.upload_tree(&refs).await;
    lease_runner_on(&farm, big, "2000-file tree", 20, true).await;
    lease_runner_on(&farm, big, "2000-file tree, whole-root scans", 20, false).await;
    farm.stop().await;
}
