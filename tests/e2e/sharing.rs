//! Two builds sharing one farm: a `-j64` build of 200 sleeping actions from one tree and a
//! `-j1` build of the C project from another, at the same time. Both must match make, and the
//! small build must finish while the big one is still running (fair sharing, no starvation).
//! And two copies of the C project built at the same moment (identical actions in flight from
//! two builds): both as make; `-j2` holds on a farm of 8 slots; an undeclared script changed in
//! a second tree is not served from the cache.

use std::time::Duration;

use rmake_tests::cluster::{Cluster, Options};
use rmake_tests::fixture;
use rmake_tests::pair::{Farm, Pair};
use rmake_tests::serial;

/// A Makefile of `n` independent targets, each sleeping `secs` then writing its name.
fn sleepers(n: usize, secs: &str) -> String {
    let names: Vec<String> = (1..=n).map(|i| format!("s{i:03}.out")).collect();
    format!(
        "all: {}\n%.out:\n\t@sleep {secs} && echo $@ > $@\n",
        names.join(" ")
    )
}

#[test]
fn small_build_is_not_starved_by_a_big_one_and_both_are_right() {
    let _serial = serial();
    let cluster = Cluster::start(Options {
        workers: 2,
        slots: 4,
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));

    let big_mk = sleepers(200, "0.5");
    let mut big =
        Pair::from_files(&[("Makefile", big_mk.as_str())]).unwrap_or_else(|e| panic!("{e:#}"));
    big.unordered_stdout = true;
    big.unordered_stderr = true;
    let mut small = Pair::from_dir(&fixture("cproj")).unwrap_or_else(|e| panic!("{e:#}"));
    small.nocontent = vec!["*.o".into(), "*.a".into(), "build/app".into()];

    let big_args = ["-j64"];
    let small_args = ["-j1"];
    let big_make = big.run_make(&big_args).unwrap_or_else(|e| panic!("{e:#}"));
    let small_make = small
        .run_make(&small_args)
        .unwrap_or_else(|e| panic!("{e:#}"));

    let mut big_run = big
        .spawn_rmake(&big_args, Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Let the big build fill every slot before the small one arrives.
    let filled = rmake_tests::procs::wait_until(Duration::from_secs(20), || {
        cluster.workers_running("sleep 0.5").len() == 2
    });
    assert!(
        filled,
        "the big build never reached both workers\n{}",
        cluster.logs(30)
    );
    let small_out = small
        .run_rmake(&small_args, Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let big_still_running = !big_run.has_exited();
    let big_out = big_run
        .wait(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));

    small
        .compare(&small_args, small_make, small_out.clone())
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("the -j1 build during the big one");
    big.compare(&big_args, big_make, big_out.clone())
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("the -j64 build of 200 sleepers");
    assert!(
        big_still_running,
        "the small build ({:?}) only finished after the big one ({:?}): it was starved",
        small_out.elapsed, big_out.elapsed
    );
}

#[test]
fn two_copies_of_one_tree_built_at_once_both_match_make() {
    let _serial = serial();
    let cluster = Cluster::start(Options::default())
        .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));
    let pairs: Vec<Pair> = (0..2)
        .map(|_| {
            let mut p = Pair::from_dir(&fixture("cproj")).unwrap_or_else(|e| panic!("{e:#}"));
            p.nocontent = vec!["*.o".into(), "*.a".into(), "build/app".into()];
            p.unordered_stdout = true;
            p.unordered_stderr = true;
            p
        })
        .collect();
    let args = ["-j8"];
    let makes: Vec<_> = pairs
        .iter()
        .map(|p| p.run_make(&args).unwrap_or_else(|e| panic!("{e:#}")))
        .collect();
    let runs: Vec<_> = pairs
        .iter()
        .map(|p| {
            p.spawn_rmake(&args, Farm::Cluster(&cluster))
                .unwrap_or_else(|e| panic!("{e:#}"))
        })
        .collect();
    for ((pair, make), run) in pairs.iter().zip(makes).zip(runs) {
        let out = run
            .wait(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e:#}"));
        pair.compare(&args, make, out)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .assert_same("one of two identical builds at once");
    }
}

/// The paper pipeline of `seeds/summary_paper.case` runs `python3 stats.py`, a script no rule
/// names as a prerequisite. A second tree on the same farm whose only change is that script
/// must get summaries made by the new script, never the first tree's cached ones.
#[test]
fn an_undeclared_script_changed_in_another_tree_is_not_served_from_cache() {
    let _serial = serial();
    let cluster = Cluster::start(Options::default())
        .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));
    let case = rmake_tests::case::Case::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/seeds/summary_paper.case"),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let first = Pair::from_case(&case).unwrap_or_else(|e| panic!("{e:#}"));
    first
        .check(
            &case.args.iter().map(String::as_str).collect::<Vec<_>>(),
            Farm::Cluster(&cluster),
        )
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("the first tree");

    let second = Pair::from_case(&case).unwrap_or_else(|e| panic!("{e:#}"));
    second
        .setup("sed -i 's/summary of/digest of/' stats.py")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let cmp = second
        .check(
            &case.args.iter().map(String::as_str).collect::<Vec<_>>(),
            Farm::Cluster(&cluster),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    cmp.assert_same("the tree with a changed stats.py");
    let summary = cmp
        .rmake
        .files
        .get("summary-1.dat")
        .cloned()
        .unwrap_or_else(|| panic!("no summary-1.dat"));
    assert_eq!(
        summary,
        rmake_tests::snapshot::Entry::File {
            content: b"digest of 2 files\n".to_vec(),
            executable: false
        }
    );
}

/// `-j2` on a farm of 8 slots: never more than two of the build's recipes run at once, and two
/// do run together.
#[test]
fn jobs_limit_holds_on_a_bigger_farm() {
    let _serial = serial();
    let cluster = Cluster::start(Options::default())
        .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));
    let mk = sleepers(8, "0.7");
    let mut pair =
        Pair::from_files(&[("Makefile", mk.as_str())]).unwrap_or_else(|e| panic!("{e:#}"));
    pair.unordered_stdout = true;
    let args = ["-j2"];
    let make = pair.run_make(&args).unwrap_or_else(|e| panic!("{e:#}"));
    let mut run = pair
        .spawn_rmake(&args, Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut most = 0;
    rmake_tests::procs::wait_until(Duration::from_secs(60), || {
        most = most.max(cluster.count_running("sleep 0.7"));
        run.has_exited()
    });
    let out = run
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}"));
    pair.compare(&args, make, out)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("-j2 on 8 slots");
    assert_eq!(
        most, 2,
        "at most -j2 recipes at once, and two did run together"
    );
}
