//! Running real recipes with `run_recipe`: output order, failures, `.ONESHELL`, shells and
//! flags, timeouts and cancels that kill the whole process tree.

use std::path::Path;
use std::time::{Duration, Instant};

use rmake_exec::{
    run_recipe, CancelHandle, Interruption, Line, LineFailure, Recipe, RecipeOutput, RunOptions,
    Segment, StreamKind,
};

fn env() -> Vec<(String, String)> {
    vec![(
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
    )]
}

fn recipe(dir: &Path, lines: &[(&str, bool)]) -> Recipe {
    Recipe {
        lines: lines
            .iter()
            .map(|(c, i)| Line {
                command: c.to_string(),
                ignore_errors: *i,
            })
            .collect(),
        shell: "/bin/sh".into(),
        shell_flags: "-c".into(),
        oneshell: false,
        env: env(),
        dir: dir.to_path_buf(),
    }
}

fn run(r: &Recipe) -> RecipeOutput {
    run_recipe(r, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn seg(line: u32, stream: StreamKind, len: u64) -> Segment {
    Segment { line, stream, len }
}

#[test]
fn segments_keep_the_order_across_streams_and_lines() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = recipe(
        dir.path(),
        &[
            (
                "printf 'a\\n'; sleep 0.1; printf 'bb\\n' >&2; sleep 0.1; printf 'ccc\\n'",
                false,
            ),
            ("printf 'dddd\\n' >&2", false),
            ("printf 'e\\n'", false),
        ],
    );
    let out = run(&r);
    assert_eq!(out.exit_code, 0);
    assert_eq!(text(&out.stdout), "a\nccc\ne\n");
    assert_eq!(text(&out.stderr), "bb\ndddd\n");
    use StreamKind::{Stderr, Stdout};
    assert_eq!(
        out.segments,
        vec![
            seg(0, Stdout, 2),
            seg(0, Stderr, 3),
            seg(0, Stdout, 4),
            seg(1, Stderr, 5),
            seg(2, Stdout, 2)
        ]
    );
    assert_eq!(out.lines_run, 3);
    assert!(out.failures.is_empty());
}

#[test]
fn an_ignored_failure_goes_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(&recipe(dir.path(), &[("exit 3", true), ("echo ok", false)]));
    assert_eq!(out.exit_code, 0);
    assert_eq!(text(&out.stdout), "ok\n");
    assert_eq!(out.lines_run, 2);
    assert_eq!(
        out.failures,
        vec![LineFailure {
            line: 0,
            code: Some(3),
            signal: None,
            spawn_error: None
        }]
    );
}

#[test]
fn a_failing_line_stops_the_recipe() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(&recipe(
        dir.path(),
        &[("echo a", false), ("exit 4", false), ("echo never", false)],
    ));
    assert_eq!(out.exit_code, 4);
    assert_eq!(text(&out.stdout), "a\n");
    assert_eq!(out.lines_run, 2);
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].line, 1);
    assert_eq!(out.failures[0].code, Some(4));
}

#[test]
fn a_program_that_cannot_start_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(&recipe(
        dir.path(),
        &[("no-such-prog-xyz -c a.c", false), ("echo never", false)],
    ));
    assert_eq!(out.exit_code, 127);
    assert_eq!(out.lines_run, 1);
    assert_eq!(
        out.failures,
        vec![LineFailure {
            line: 0,
            code: Some(127),
            signal: None,
            spawn_error: Some("no-such-prog-xyz: No such file or directory".into()),
        }]
    );
    assert!(
        out.stderr.is_empty(),
        "the message is the caller's to print"
    );
    // Through the shell it is the shell's own 127 and message.
    let out = run(&recipe(dir.path(), &[("no-such-prog-xyz; exit $?", false)]));
    assert_eq!(out.exit_code, 127);
    assert_eq!(out.failures[0].spawn_error, None);
    assert!(text(&out.stderr).contains("no-such-prog-xyz"));
}

#[test]
fn oneshell_runs_one_script() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let lines = [("X=1", false), ("echo x$X", false), ("echo y >&2", false)];
    let mut r = recipe(dir.path(), &lines);
    assert_eq!(
        text(&run(&r).stdout),
        "x\n",
        "separate shells do not share variables"
    );
    r.oneshell = true;
    let out = run(&r);
    assert_eq!(text(&out.stdout), "x1\n");
    assert_eq!(out.lines_run, 3);
    assert!(out.segments.iter().all(|s| s.line == 0));
    assert_eq!(out.segments.len(), 2);
    // The first line's `-` covers the script.
    let mut r = recipe(dir.path(), &[("false", true), ("exit 5", false)]);
    r.oneshell = true;
    let out = run(&r);
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].code, Some(5));
}

#[test]
fn shell_words_flags_env_and_directory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut r = recipe(dir.path(), &[("false; echo no", false)]);
    r.shell = "/bin/sh -e".into();
    let out = run(&r);
    assert_eq!(out.exit_code, 1);
    assert!(out.stdout.is_empty());

    let mut r = recipe(dir.path(), &[("false; echo no", false)]);
    r.shell_flags = "-ec".into();
    assert_eq!(run(&r).exit_code, 1);

    let mut r = recipe(
        dir.path(),
        &[("echo \"$FOO-$HOME\"", false), ("pwd", false)],
    );
    r.env.push(("FOO".into(), "bar".into()));
    let out = run(&r);
    let canon = std::fs::canonicalize(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text(&out.stdout), format!("bar-\n{}\n", canon.display()));
}

#[test]
fn a_killed_line_reports_its_signal() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(&recipe(dir.path(), &[("kill -9 $$", false)]));
    assert_eq!(out.exit_code, 128 + 9);
    assert_eq!(out.failures[0].signal, Some(9));
    assert_eq!(out.failures[0].code, None);
}

/// Whether `pid` is still a live (not zombie) process.
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

fn read_pid(dir: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(s) = std::fs::read_to_string(dir.join("bg.pid")) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_dead(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn a_timeout_kills_the_whole_tree() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = recipe(
        dir.path(),
        &[
            ("sleep 30 & echo $! > bg.pid; wait", false),
            ("echo never", false),
        ],
    );
    let opts = RunOptions {
        timeout: Some(Duration::from_millis(500)),
        ..RunOptions::default()
    };
    let t = Instant::now();
    let out = run_recipe(&r, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.interrupted, Some(Interruption::TimedOut));
    assert_eq!(out.lines_run, 1);
    assert_eq!(out.exit_code, 128 + libc::SIGTERM);
    assert!(
        wait_dead(read_pid(dir.path())),
        "the background sleep survived"
    );
}

#[test]
fn a_cancel_from_another_thread_kills_the_tree_and_starts_nothing_more() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = recipe(
        dir.path(),
        &[
            ("sleep 30 & echo $! > bg.pid; wait", false),
            ("touch never", false),
        ],
    );
    let cancel = CancelHandle::new();
    let opts = RunOptions {
        cancel: Some(cancel.clone()),
        ..RunOptions::default()
    };
    let path = dir.path().to_path_buf();
    let canceller = std::thread::spawn(move || {
        let pid = read_pid(&path);
        cancel.cancel();
        pid
    });
    let t = Instant::now();
    let out = run_recipe(&r, &opts).unwrap_or_else(|e| panic!("{e}"));
    let pid = canceller
        .join()
        .unwrap_or_else(|_| panic!("canceller panicked"));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.interrupted, Some(Interruption::Cancelled));
    assert_ne!(out.exit_code, 0);
    assert!(!dir.path().join("never").exists());
    assert!(wait_dead(pid), "the background sleep survived");
}

#[test]
fn sigterm_ignored_gets_sigkill_after_the_grace() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = recipe(dir.path(), &[("trap '' TERM; sleep 30", false)]);
    let opts = RunOptions {
        timeout: Some(Duration::from_millis(200)),
        kill_grace: Duration::from_millis(300),
        ..RunOptions::default()
    };
    let t = Instant::now();
    let out = run_recipe(&r, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.interrupted, Some(Interruption::TimedOut));
    assert_eq!(out.failures[0].signal, Some(libc::SIGKILL));
    assert_eq!(out.exit_code, 128 + libc::SIGKILL);
}

#[test]
fn output_held_open_by_a_leftover_is_not_waited_for_forever() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = recipe(
        dir.path(),
        &[
            ("sleep 30 & echo $! > bg.pid; echo started", false),
            ("echo next", false),
        ],
    );
    let opts = RunOptions {
        kill_grace: Duration::from_millis(300),
        ..RunOptions::default()
    };
    let t = Instant::now();
    let out = run_recipe(&r, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.exit_code, 0);
    assert_eq!(text(&out.stdout), "started\nnext\n");
    assert!(wait_dead(read_pid(dir.path())));
}

#[test]
fn an_empty_recipe_does_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(&recipe(dir.path(), &[]));
    assert_eq!(
        out,
        RecipeOutput {
            elapsed: out.elapsed,
            ..RecipeOutput::default()
        }
    );
}
