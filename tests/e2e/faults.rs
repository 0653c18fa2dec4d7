//! Builds that meet trouble: a remote recipe failing after writing its target (with and
//! without `.DELETE_ON_ERROR`), a worker SIGKILLed in the middle of an action (its lease expires
//! and the action runs again elsewhere), a worker stopped with SIGTERM mid-action (it finishes
//! the action, deregisters and exits 0), the coordinator SIGKILLed and restarted mid-build (no
//! hang; a rerun ends as make), a failing recipe under `-k`, Ctrl-C during a long
//! remote action (rmake-remote dies like make and the worker's recipe is cancelled), and a
//! coordinator restart between two builds.

use std::time::Duration;

use rmake_tests::cluster::{Cluster, Options};
use rmake_tests::pair::{Farm, Pair};
use rmake_tests::procs;
use rmake_tests::run::Status;
use rmake_tests::serial;

fn start(opts: Options) -> Cluster {
    Cluster::start(opts).unwrap_or_else(|e| panic!("starting the cluster: {e:#}"))
}

/// A build with one slow recipe (3 s) and one fast one, for faults that strike mid-build.
const SLOW_AND_FAST: &str = "all: slow.txt fast.txt\n\
    \t@cat slow.txt fast.txt\n\
    slow.txt:\n\tsleep 3 && echo slow > $@\n\
    fast.txt:\n\techo fast > $@\n";

/// Two workers of one slot each, with a 2 s lease TTL so a lost action is re-queued quickly.
fn two_single_slot_workers() -> Cluster {
    start(Options {
        workers: 2,
        slots: 1,
        lease_ttl_ms: Some(2000),
        ..Options::default()
    })
}

#[test]
fn worker_killed_mid_action_build_still_succeeds() {
    let _serial = serial();
    let mut cluster = two_single_slot_workers();
    let makefile = SLOW_AND_FAST;
    let mut pair = Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
    pair.unordered_stdout = true;
    let args = ["-j2"];
    let make = pair.run_make(&args).unwrap_or_else(|e| panic!("{e:#}"));
    let run = pair
        .spawn_rmake(&args, Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut victim = None;
    procs::wait_until(Duration::from_secs(20), || {
        victim = cluster.worker_running("sleep 3");
        victim.is_some()
    });
    let victim =
        victim.unwrap_or_else(|| panic!("no worker ever ran `sleep 3`\n{}", cluster.logs(30)));
    cluster.kill_worker(victim);
    // Once the lease expires the action runs again, on the other worker.
    let mut rerun_on = None;
    procs::wait_until(Duration::from_secs(20), || {
        rerun_on = cluster.worker_running("sleep 3");
        rerun_on.is_some()
    });
    assert_eq!(
        rerun_on,
        Some(1 - victim),
        "the lost action ran again on the surviving worker\n{}",
        cluster.logs(30)
    );
    let out = run
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    pair.compare(&args, make, out)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("build with a worker killed mid-action");

    // The killed worker, started again, registers anew and takes work: two 1-slot workers
    // run two recipes at once.
    cluster
        .restart_worker(victim)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut restarted = procs::wait_until(Duration::from_secs(30), || {
        cluster.worker_log(victim).matches("registered").count() >= 2
    });
    assert!(
        restarted,
        "the restarted worker never registered\n{}",
        cluster.logs(20)
    );
    let both = "all: p.txt q.txt\np.txt q.txt:\n\tsleep 2.5 && echo $@ > $@\n";
    let mut pair = Pair::from_files(&[("Makefile", both)]).unwrap_or_else(|e| panic!("{e:#}"));
    pair.unordered_stdout = true;
    let make = pair.run_make(&["-j2"]).unwrap_or_else(|e| panic!("{e:#}"));
    let mut run = pair
        .spawn_rmake(&["-j2"], Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    restarted = false;
    procs::wait_until(Duration::from_secs(30), || {
        restarted |= cluster.workers_running("sleep 2.5").contains(&victim);
        run.has_exited()
    });
    let out = run
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}"));
    pair.compare(&["-j2"], make, out)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("build after the worker came back");
    assert!(
        restarted,
        "the restarted worker took none of the work\n{}",
        cluster.logs(20)
    );
}

#[test]
fn worker_stopped_gracefully_finishes_its_action_and_leaves() {
    let _serial = serial();
    let mut cluster = start(Options {
        workers: 2,
        slots: 1,
        ..Options::default()
    });
    let makefile = "all: slow.txt fast.txt\n\
        \t@cat slow.txt fast.txt\n\
        slow.txt:\n\tsleep 3 && echo slow > $@\n\
        fast.txt:\n\techo fast > $@\n";
    let mut pair = Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
    pair.unordered_stdout = true;
    let args = ["-j2"];
    let make = pair.run_make(&args).unwrap_or_else(|e| panic!("{e:#}"));
    let run = pair
        .spawn_rmake(&args, Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut busy = None;
    procs::wait_until(Duration::from_secs(20), || {
        busy = cluster.worker_running("sleep 3");
        busy.is_some()
    });
    let busy = busy.unwrap_or_else(|| panic!("no worker ever ran `sleep 3`\n{}", cluster.logs(30)));
    let ended = cluster.stop_worker(busy, Duration::from_secs(20));
    assert_eq!(
        ended,
        Some(Status::Code(0)),
        "a worker stopped with SIGTERM finishes its action, deregisters and exits 0\n{}",
        cluster.logs(30)
    );
    let out = run
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    pair.compare(&args, make, out)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("build with a worker stopped gracefully mid-action");
    assert_eq!(
        cluster.registered_workers(),
        Some(1),
        "the stopped worker deregistered"
    );
}

#[test]
fn failing_recipe_under_k_builds_the_rest() {
    let _serial = serial();
    let cluster = start(Options::default());
    let makefile = "all: one.txt bad.txt two.txt three.txt\n\
        one.txt two.txt three.txt:\n\techo $@ > $@\n\
        bad.txt:\n\t@echo making $@\n\texit 1\n\
        \techo never > $@\n";
    for (args, parallel) in [(vec!["-k"], false), (vec!["-k", "-j4"], true)] {
        let mut pair =
            Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
        pair.unordered_stdout = parallel;
        pair.unordered_stderr = parallel;
        let cmp = pair
            .check(&args, Farm::Cluster(&cluster))
            .unwrap_or_else(|e| panic!("{e:#}"));
        cmp.assert_same("-k with one failing recipe");
        assert_eq!(cmp.rmake.outcome.status, Status::Code(2));
        assert!(
            cmp.rmake
                .stderr
                .contains("rmake-remote: *** [Makefile:6: bad.txt] Error 1"),
            "{}",
            cmp.rmake.stderr
        );
        for f in ["one.txt", "two.txt", "three.txt"] {
            assert!(
                cmp.rmake.files.contains_key(f),
                "{f} built despite the failure"
            );
        }
    }
}

/// A remote recipe that writes its target and then fails: with `.DELETE_ON_ERROR` make deletes
/// the half-written target (and says so), without it the file stays; rmake-remote does the same.
#[test]
fn failed_remote_target_and_delete_on_error() {
    let _serial = serial();
    let cluster = start(Options::default());
    for header in ["", ".DELETE_ON_ERROR:\n"] {
        let makefile = format!("{header}partial.txt:\n\techo half > $@; exit 3\n");
        let pair = Pair::from_files(&[("Makefile", makefile.as_str())])
            .unwrap_or_else(|e| panic!("{e:#}"));
        let cmp = pair
            .check(&[], Farm::Cluster(&cluster))
            .unwrap_or_else(|e| panic!("{e:#}"));
        cmp.assert_same(&format!("failing recipe, Makefile {makefile:?}"));
        assert_eq!(cmp.rmake.outcome.status, Status::Code(2));
        assert_eq!(
            cmp.rmake.files.contains_key("partial.txt"),
            header.is_empty(),
            "the half-written target is kept only without .DELETE_ON_ERROR"
        );
    }
}

#[test]
fn ctrl_c_stops_the_build_and_cancels_the_remote_action() {
    let _serial = serial();
    let cluster = start(Options {
        workers: 2,
        slots: 2,
        lease_ttl_ms: Some(2000),
        ..Options::default()
    });
    let makefile = "long.txt:\n\tsleep 31 && echo done > $@\n";
    let pair = Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
    let args = ["long.txt"];

    // GNU make first: Ctrl-C reaches the whole foreground process group.
    let make = pair.spawn_make(&args).unwrap_or_else(|e| panic!("{e:#}"));
    let make_pid = make.pid();
    assert!(
        procs::wait_until(Duration::from_secs(10), || procs::descendants(make_pid)
            .iter()
            .any(|p| p.cmdline == "sleep 31")),
        "make never started its recipe"
    );
    make.signal_group("INT").unwrap_or_else(|e| panic!("{e:#}"));
    let make = make
        .wait(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}"));

    let run = pair
        .spawn_rmake(&args, Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        procs::wait_until(Duration::from_secs(20), || cluster
            .worker_running("sleep 31")
            .is_some()),
        "no worker ever ran the recipe\n{}",
        cluster.logs(30)
    );
    run.signal_group("INT").unwrap_or_else(|e| panic!("{e:#}"));
    let out = run
        .wait(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !out.timed_out,
        "rmake-remote did not exit within 15 s of SIGINT"
    );
    let cmp = pair
        .compare(&args, make, out)
        .unwrap_or_else(|e| panic!("{e:#}"));
    cmp.assert_same("Ctrl-C during a remote action");
    assert_eq!(cmp.rmake.outcome.status, Status::Signal(2));
    assert!(
        procs::wait_until(Duration::from_secs(10), || cluster
            .worker_running("sleep 31")
            .is_none()),
        "the worker still runs the cancelled recipe 10 s after Ctrl-C\n{}",
        cluster.logs(30)
    );
    let idle = procs::wait_until(Duration::from_secs(10), || {
        cluster
            .get_json("/v1/farm")
            .is_ok_and(|v| v["running"].as_u64() == Some(0) && v["queued"].as_u64() == Some(0))
    });
    assert!(
        idle,
        "the coordinator still counts the cancelled action: {:?}",
        cluster.get_json("/v1/farm")
    );
}

#[test]
fn coordinator_restart_between_builds_keeps_the_farm_working() {
    let _serial = serial();
    let mut cluster = start(Options::default());
    let makefile = "all: b.txt\nb.txt: a.txt\n\ttr a-z A-Z < $< > $@\na.txt:\n\techo hello > $@\n";
    let first = Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
    first
        .check(&[], Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("before the restart");
    cluster
        .restart_coordinator(true)
        .unwrap_or_else(|e| panic!("restarting the coordinator: {e:#}"));
    let second = Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
    second
        .check(&[], Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("after the restart");
}

/// The coordinator SIGKILLed and restarted while an action runs: the client must not hang. It
/// may carry on or fail the target (`remote execution failed: ...`, status 2, as make reports
/// a failed recipe); either way the next run on the restarted farm ends as make's build did.
#[test]
fn coordinator_killed_mid_build_no_hang_and_the_rerun_is_right() {
    let _serial = serial();
    let mut cluster = two_single_slot_workers();
    let makefile = SLOW_AND_FAST;
    let mut pair = Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
    pair.unordered_stdout = true;
    pair.unordered_stderr = true;
    let args = ["-j2"];
    let make = pair.run_make(&args).unwrap_or_else(|e| panic!("{e:#}"));
    let run = pair
        .spawn_rmake(&args, Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        procs::wait_until(Duration::from_secs(20), || cluster
            .worker_running("sleep 3")
            .is_some()),
        "no worker ever ran `sleep 3`\n{}",
        cluster.logs(30)
    );
    cluster
        .restart_coordinator(false)
        .unwrap_or_else(|e| panic!("restarting the coordinator: {e:#}"));
    let out = run
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !out.timed_out,
        "rmake-remote hung after the coordinator restarted"
    );
    if out.status != Status::Code(0) {
        assert_eq!(out.status, Status::Code(2), "{}", out.stderr);
        assert!(
            out.stderr.contains("[Makefile:4: slow.txt] Error"),
            "the lost target is reported as make reports a failed recipe:\n{}",
            out.stderr
        );
    }
    let rerun = pair
        .run_rmake(&args, Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let cmp = pair
        .compare(&args, make, rerun)
        .unwrap_or_else(|e| panic!("{e:#}"));
    // The rerun only has what the first run left to do; compare the tree and the status.
    assert_eq!(
        cmp.rmake.outcome.status, cmp.make.outcome.status,
        "{}",
        cmp.rmake.stderr
    );
    let files = rmake_tests::snapshot::diff(&cmp.make.files, &cmp.rmake.files);
    assert!(
        files.is_empty(),
        "after the rerun the tree differs from make's:\n{files}"
    );
}

/// A recipe that reads a generated file it does not declare (here a header made by an earlier
/// goal) fails in its exec root, which holds only its prerequisites' outputs; the client runs it
/// again on its own tree, so the build ends as make's does. A recipe that fails for real fails
/// once, with make's message, after its run here.
#[test]
fn a_recipe_failing_on_the_farm_runs_again_on_the_client() {
    let _serial = serial();
    let cluster = start(Options::default());
    let makefile = "all: gen.h prog.txt\n\
        gen.h:\n\techo 42 > gen.h\n\
        prog.txt: prog.in\n\tcat gen.h prog.in > prog.txt\n\
        bad:\n\techo trying; false\n";
    let pair = Pair::from_files(&[("Makefile", makefile), ("prog.in", "in\n")])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let cmp = pair
        .check(&[], Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    cmp.assert_same("an undeclared generated input");
    assert_eq!(cmp.rmake.outcome.status, Status::Code(0));
    let bad = Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
    let cmp = bad
        .check(&["bad"], Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    cmp.assert_same("a recipe that fails for real");
    let printed = cmp.rmake.stdout.lines().filter(|l| *l == "trying").count();
    assert_eq!(printed, 1, "the failed run's output is not printed: {}", cmp.rmake.stdout);
}
