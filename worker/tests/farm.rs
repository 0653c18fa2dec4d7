//! End to end: a real coordinator in-process, a worker started with `rmake_worker::run`, and
//! actions submitted through `CoordinatorClient::execute`.

mod harness;

use std::time::{Duration, Instant};

use rmake_proto::exec::{CommandLine, ExecuteEvent};
use rmake_proto::{LineExit, OutputFile, Segment, Stream};

use harness::{entries, eventually, lease_roots, spec, Farm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_logs_segments_and_reads() {
    let farm = Farm::start(Duration::from_secs(4)).await;
    let worker = farm.start_worker();
    let root = farm
        .upload_tree(&[
            ("src/main.c", b"#include \"defs.h\"\nint main;\n", false),
            ("src/defs.h", b"#define X 1\n", false),
            ("src/other.h", b"#define Y 1\n", false),
            ("Makefile", b"all:\n", false),
        ])
        .await;
    let mut s = spec(
        root,
        &[
            "printf 'compiling\\n'; sleep 0.1; printf 'warning: x\\n' >&2",
            "cat defs.h main.c > ../build/main.o && printf 'main.o: main.c defs.h\\n' > ../build/main.d",
        ],
        &["build/main.o"],
    );
    s.working_dir = "src".into();
    s.lines.insert(
        0,
        CommandLine {
            command: "mkdir -p ../build".into(),
            ignore_errors: false,
        },
    );
    let r = farm.execute(s).await;
    assert_eq!(r.exit_code, 0, "{r:?}");
    assert_eq!(r.lines_run, 3);
    let paths: Vec<&str> = r.output_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["build/main.d", "build/main.o"],
        "the -MMD-style depfile comes back too"
    );
    assert_eq!(
        farm.content(&r.output_files[1]).await,
        "#define X 1\n#include \"defs.h\"\nint main;\n"
    );
    assert_eq!(
        farm.content(&r.output_files[0]).await,
        "main.o: main.c defs.h\n"
    );
    assert_eq!(farm.log(&r.stdout).await, "compiling\n");
    assert_eq!(farm.log(&r.stderr).await, "warning: x\n");
    assert_eq!(
        r.segments,
        vec![
            Segment {
                line: 1,
                stream: Stream::Stdout,
                len: 10
            },
            Segment {
                line: 1,
                stream: Stream::Stderr,
                len: 11
            },
        ]
    );
    assert!(
        r.read_paths.contains(&"src/defs.h".to_string()),
        "{:?}",
        r.read_paths
    );
    assert!(r.read_paths.contains(&"src/main.c".to_string()));
    assert!(!r.read_paths.contains(&"src/other.h".to_string()));
    assert!(r.reads_complete);
    assert_eq!(r.worker, "test-worker");
    let exec = worker.work_dir.join("exec");
    eventually("the lease's exec root to go", || {
        lease_roots(&exec).is_empty()
    })
    .await;
    worker.stop().await.unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_compile_with_a_depfile() {
    if std::process::Command::new("cc")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("no cc on this machine: skipped");
        return;
    }
    let farm = Farm::start(Duration::from_secs(4)).await;
    let worker = farm.start_worker();
    let root = farm
        .upload_tree(&[
            (
                "src/main.c",
                b"#include \"defs.h\"\nint main(void) { return X; }\n",
                false,
            ),
            ("inc/defs.h", b"#define X 0\n", false),
            ("inc/unused.h", b"#define Y 1\n", false),
        ])
        .await;
    let s = spec(
        root,
        &[
            "mkdir -p build",
            "cc -MMD -Iinc -c src/main.c -o build/main.o",
            "cc build/main.o -o build/app",
            "./build/app",
        ],
        &["build/app"],
    );
    let r = farm.execute(s).await;
    assert_eq!(r.exit_code, 0, "{:?}", farm.log(&r.stderr).await);
    let paths: Vec<&str> = r.output_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, vec!["build/app", "build/main.d", "build/main.o"]);
    assert!(r.output_files[0].executable);
    assert!(farm
        .content(&r.output_files[1])
        .await
        .contains("inc/defs.h"));
    assert!(
        r.read_paths.contains(&"inc/defs.h".to_string()),
        "{:?}",
        r.read_paths
    );
    assert!(r.read_paths.contains(&"src/main.c".to_string()));
    assert!(!r.read_paths.contains(&"inc/unused.h".to_string()));
    assert!(r.reads_complete);
    assert_eq!(r.output_dirs, vec!["build".to_string()]);
    assert_eq!(r.platform.os, std::env::consts::OS);
    worker.stop().await.unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_ignored_failing_spawn_error_and_oneshell() {
    let farm = Farm::start(Duration::from_secs(4)).await;
    let worker = farm.start_worker();
    let root = farm.upload_tree(&[("f", b"", false)]).await;

    // An ignored failure, then a failing line that stops the recipe.
    let mut s = spec(root, &["exit 3", "echo after", "exit 7", "echo never"], &[]);
    s.lines[0].ignore_errors = true;
    let r = farm.execute(s).await;
    assert_eq!(r.exit_code, 7);
    assert_eq!(r.lines_run, 3);
    assert_eq!(farm.log(&r.stdout).await, "after\n");
    assert_eq!(
        r.failures,
        vec![
            LineExit {
                line: 0,
                code: Some(3),
                signal: None,
                spawn_error: None
            },
            LineExit {
                line: 2,
                code: Some(7),
                signal: None,
                spawn_error: None
            },
        ]
    );

    // make's shell-less path: a program that does not exist.
    let r = farm
        .execute(spec(root, &["no-such-compiler -c x.c"], &[]))
        .await;
    assert_eq!(r.exit_code, 127);
    assert_eq!(
        r.failures,
        vec![LineExit {
            line: 0,
            code: Some(127),
            signal: None,
            spawn_error: Some("no-such-compiler: No such file or directory".into()),
        }]
    );

    // .ONESHELL: one shell for every line.
    let mut s = spec(root, &["X=shared", "echo $X > one.txt"], &["one.txt"]);
    s.oneshell = true;
    let r = farm.execute(s).await;
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.lines_run, 2);
    assert_eq!(r.output_files.len(), 1);
    assert_eq!(farm.content(&r.output_files[0]).await, "shared\n");
    worker.stop().await.unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_overlay_env_and_big_logs() {
    let farm = Farm::start(Duration::from_secs(4)).await;
    let worker = farm.start_worker();
    let root = farm.upload_tree(&[("src/a.c", b"a\n", false)]).await;
    let gen = farm.upload(b"#!/bin/sh\necho generated tool\n").await;
    let hdr = farm.upload(b"#define GEN 1\n").await;
    let mut s = spec(
        root,
        &[
            "./gen/tool",
            "cat gen/deep/gen.h",
            "echo \"$CFLAGS|$HOME|$PWD\" > env.txt",
            "head -c 10000 /dev/zero | tr '\\0' x",
        ],
        &["env.txt"],
    );
    s.inputs = vec![
        OutputFile {
            path: "gen/deep/gen.h".into(),
            digest: hdr,
            executable: false,
        },
        OutputFile {
            path: "gen/tool".into(),
            digest: gen,
            executable: true,
        },
    ];
    s.env = vec![
        ("CFLAGS".into(), "-O2".into()),
        ("HOME".into(), "/home/client".into()),
    ];
    let r = farm.execute(s).await;
    assert_eq!(
        r.exit_code,
        0,
        "{:?} {:?}",
        farm.log(&r.stderr).await,
        r.failures
    );
    let out = farm.log(&r.stdout).await;
    assert!(out.starts_with("generated tool\n#define GEN 1\n"), "{out}");
    assert_eq!(out.len(), "generated tool\n#define GEN 1\n".len() + 10000);
    assert!(r.stdout.digest().is_some(), "a large log is a blob");
    assert!(
        r.read_paths.contains(&"gen/deep/gen.h".to_string()),
        "{:?}",
        r.read_paths
    );
    let env = farm.content(&r.output_files[0]).await;
    let parts: Vec<&str> = env.trim_end().split('|').collect();
    assert_eq!(parts[0], "-O2");
    assert_ne!(parts[1], "/home/client", "HOME is the worker's own");
    assert!(
        !parts[1].contains("/exec/"),
        "HOME is outside the exec root: {}",
        parts[1]
    );
    assert!(
        parts[2].contains("/exec/"),
        "PWD is the working dir: {}",
        parts[2]
    );
    let paths: Vec<&str> = r.output_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, vec!["env.txt"], "inputs are not outputs");
    worker.stop().await.unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_recipe() {
    let farm = Farm::start(Duration::from_secs(4)).await;
    let worker = farm.start_worker();
    let root = farm.upload_tree(&[("f", b"", false)]).await;
    let mut s = spec(root, &["echo start; sleep 30", "echo never"], &[]);
    s.timeout_secs = Some(1);
    let t = Instant::now();
    let r = farm.execute(s).await;
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t.elapsed()
    );
    assert_ne!(r.exit_code, 0);
    assert_eq!(r.lines_run, 1);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].signal, Some(libc::SIGTERM));
    assert!(farm.log(&r.stderr).await.contains("was killed"));
    let exec = worker.work_dir.join("exec");
    eventually("the lease's exec root to go", || {
        lease_roots(&exec).is_empty()
    })
    .await;
    worker.stop().await.unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_build_kills_the_recipe() {
    let farm = Farm::start(Duration::from_secs(2)).await;
    let worker = farm.start_worker();
    let root = farm.upload_tree(&[("f", b"", false)]).await;
    let marks = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pid_file = marks.path().join("pid");
    let line = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    let build = farm.build().await;
    let s = spec(root, &[line.as_str()], &[]);
    let req = rmake_proto::exec::ExecuteRequest {
        spec: s,
        target: "slow".into(),
        skip_cache_lookup: true,
        cacheable: false,
        prereqs: Vec::new(),
    };
    let mut stream = farm
        .client
        .execute(&build, &req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eventually("the recipe to start", || pid_file.exists()).await;
    let pid: i32 = loop {
        if let Ok(Ok(p)) = std::fs::read_to_string(&pid_file).map(|s| s.trim().parse()) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    farm.client
        .cancel_build(&build)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    eventually("the recipe's child to die", || !alive(pid)).await;
    assert!(t.elapsed() < Duration::from_secs(8));
    // The stream ends with `failed` (or is cut); either way no result arrives.
    if let Ok(Ok(Some(ev))) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        assert!(!matches!(ev, ExecuteEvent::Finished(_)), "{ev:?}");
    }
    let exec = worker.work_dir.join("exec");
    eventually("the exec root to go", || entries(&exec).is_empty()).await;
    worker.stop().await.unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_mid_action_hands_it_back() {
    let farm = Farm::start(Duration::from_secs(2)).await;
    let mut config = farm.worker_config(std::path::Path::new("/nonexistent"));
    config.shutdown_grace = Duration::from_millis(300);
    let first = farm.start_worker_with(config);
    let root = farm.upload_tree(&[("f", b"", false)]).await;
    let marks = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let started = marks.path().join("started");
    // Slow on the first try, quick on the next.
    let line = format!(
        "if [ -e {m} ]; then echo second; else touch {m}; sleep 30; fi",
        m = started.display()
    );
    let build = farm.build().await;
    let url = farm.url.clone();
    let exec = tokio::spawn({
        let s = spec(root, &[line.as_str()], &[]);
        let build = build.clone();
        async move {
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
            stream.finish().await
        }
    });
    eventually("the first try to start", || started.exists()).await;
    let t = Instant::now();
    first
        .stop()
        .await
        .unwrap_or_else(|e| panic!("graceful stop: {e}"));
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        t.elapsed()
    );
    let second = farm.start_worker();
    let ev = tokio::time::timeout(Duration::from_secs(30), exec)
        .await
        .unwrap_or_else(|_| panic!("no result"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let ExecuteEvent::Finished(resp) = ev else {
        panic!("expected a result, got {ev:?}")
    };
    assert_eq!(resp.result.exit_code, 0);
    assert_eq!(farm.log(&resp.result.stdout).await, "second\n");
    second.stop().await.unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_again_when_the_coordinator_forgets_it() {
    let farm = Farm::start(Duration::from_millis(800)).await;
    let worker = farm.start_worker();
    let first = farm.wait_worker(&[]).await;
    farm.client
        .deregister_worker(&rmake_proto::exec::WorkerId(first.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let second = farm.wait_worker(std::slice::from_ref(&first)).await;
    assert_ne!(first, second);
    let root = farm.upload_tree(&[("f", b"", false)]).await;
    let r = farm.execute(spec(root, &["echo back"], &[])).await;
    assert_eq!(farm.log(&r.stdout).await, "back\n");
    worker.stop().await.unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_first_waits_for_the_coordinator() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = free.local_addr().unwrap_or_else(|e| panic!("{e}"));
    drop(free);
    let url = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = rmake_worker::Config::new(url, dir.path().join("work"));
    config.slots = 1;
    config.lease_wait = Duration::from_secs(1);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(rmake_worker::run(config, async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let farm = Farm::start_at(Duration::from_secs(4), addr).await;
    farm.wait_worker(&[]).await;
    let root = farm.upload_tree(&[("f", b"", false)]).await;
    let r = farm.execute(spec(root, &["echo late"], &[])).await;
    assert_eq!(farm.log(&r.stdout).await, "late\n");
    let _ = tx.send(());
    task.await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    farm.stop().await;
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}
