//! The multi-directory C project of `tests/fixtures/cproj` (objects under `build/`, `-MMD`
//! depfiles included back, a static library made with `ar`, a link, a generated header) built
//! with `rmake-remote -j8` and with make, on a loopback farm and on the embedded farm: the first
//! build, a no-op second build, a rebuild after a header changes, and a phony `check` goal that
//! runs the downloaded program on the client. Also a recursive build (`fixtures/recursive`:
//! `$(MAKE) -C lib`, `$(MAKE) -C app`), whose sub-makes are farm builds again.

use rmake_tests::cluster::{Cluster, Options};
use rmake_tests::fixture;
use rmake_tests::pair::{Farm, Pair};
use rmake_tests::serial;

fn cproj_pair() -> Pair {
    let mut pair = Pair::from_dir(&fixture("cproj")).unwrap_or_else(|e| panic!("{e:#}"));
    pair.nocontent = vec!["*.o".into(), "*.a".into(), "build/app".into()];
    pair.unordered_stdout = true;
    pair.unordered_stderr = true;
    pair
}

/// The first build, the no-op build, a header change and `check`, each compared with make.
fn build_sequence(pair: &Pair, farm: Farm<'_>) {
    let first = pair
        .check(&["-j8"], farm)
        .unwrap_or_else(|e| panic!("{e:#}"));
    first.assert_same("first build");
    assert!(
        first.rmake.files.contains_key("build/src/app/main.d"),
        "the depfile written next to main.o by -MMD came back"
    );

    let second = pair
        .check(&["-j8"], farm)
        .unwrap_or_else(|e| panic!("{e:#}"));
    second.assert_same("second (no-op) build");
    assert_eq!(
        second.rmake.stdout,
        "rmake-remote: Nothing to be done for 'all'.\n"
    );

    pair.setup("touch include/mathutil.h")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let third = pair
        .check(&["-j8"], farm)
        .unwrap_or_else(|e| panic!("{e:#}"));
    third.assert_same("rebuild after touching include/mathutil.h");
    assert!(
        third.rmake.stdout.contains("-o build/src/util/mathutil.o")
            && !third.rmake.stdout.contains("-o build/src/core/list.o"),
        "only the dependents of the header are rebuilt:\n{}",
        third.rmake.stdout
    );

    let check = pair
        .check(&["check"], farm)
        .unwrap_or_else(|e| panic!("{e:#}"));
    check.assert_same("check goal");
    assert!(check.rmake.stdout.contains("app 1.4.2: sum=30 dots=2"));
}

#[test]
fn cproj_on_a_two_worker_farm_matches_make() {
    let _serial = serial();
    let cluster = Cluster::start(Options {
        workers: 2,
        slots: 4,
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));
    build_sequence(&cproj_pair(), Farm::Cluster(&cluster));
    // version.h, 4 objects, the library and the program ran on the farm (twice for the
    // objects and archive the header change rebuilt) and were cached there.
    let entries = cluster
        .action_cache_entries()
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        entries >= 7,
        "only {entries} action-cache entries: the recipes did not run on the farm"
    );

    // A fresh copy of the same tree on the same farm: every action served from the action
    // cache, and still exactly what make does.
    let mut again = cproj_pair();
    again.env.push(("RMAKE_SUMMARY".into(), "1".into()));
    let mut cmp = again
        .check(&["-j8"], Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let summary = cmp.take_summary().unwrap_or_else(|| {
        panic!(
            "no summary line with RMAKE_SUMMARY=1:\n{}",
            cmp.rmake.stderr
        )
    });
    cmp.assert_same("fresh copy of the tree on a warm farm");
    assert_eq!(
        (summary.actions, summary.hits, summary.remote),
        (7, 7, 0),
        "a fresh copy on a warm farm: 7 actions, all cache hits ({summary:?})"
    );

    // -n prints what make would run and runs nothing; -B runs every recipe again on the
    // farm, past the cache, and prints what make -B prints.
    again
        .setup("touch src/core/list.c")
        .unwrap_or_else(|e| panic!("{e:#}"));
    again
        .check(&["-n"], Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("-n after touching a source");
    let mut cmp = again
        .check(&["-B", "-j8"], Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let summary = cmp.take_summary().unwrap_or_else(|| {
        panic!(
            "no summary line with RMAKE_SUMMARY=1:\n{}",
            cmp.rmake.stderr
        )
    });
    cmp.assert_same("-B on a warm farm");
    assert_eq!(
        (summary.actions, summary.hits, summary.remote),
        (7, 0, 7),
        "-B skips the cache: every action runs on a worker ({summary:?})"
    );
}

#[test]
fn cproj_on_the_embedded_farm_matches_make() {
    let _serial = serial();
    let pair = cproj_pair();
    build_sequence(&pair, Farm::Embedded);
    let cache = pair.cache_dir();
    let used = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    assert!(
        used > 0,
        "the embedded farm kept its data under RMAKE_CACHE_DIR ({})",
        cache.display()
    );
}

#[test]
fn recursive_make_on_a_farm_matches_make() {
    let _serial = serial();
    let cluster = Cluster::start(Options::default())
        .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));
    let mut pair = Pair::from_dir(&fixture("recursive")).unwrap_or_else(|e| panic!("{e:#}"));
    pair.nocontent = vec!["*.o".into(), "*.a".into(), "app/hello".into()];
    let farm = Farm::Cluster(&cluster);
    pair.check(&[], farm)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("recursive build");
    let entries = cluster
        .action_cache_entries()
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        entries >= 4,
        "only {entries} action-cache entries: the sub-makes' recipes did not run on the farm"
    );
    pair.check(&[], farm)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("recursive no-op build");
    pair.check(&["-C", "app", "out.txt"], farm)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("make -C app out.txt (runs the program built on the farm)");
}

/// The action cache is right across branches: a fresh clone whose only change is a header
/// (not yet named by any depfile) gets no object compiled against the old header, while the
/// objects that do not include it still come from the cache.
#[test]
fn a_header_changed_on_another_branch_never_gets_a_stale_object() {
    let _serial = serial();
    let cluster = Cluster::start(Options::default())
        .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));
    let farm = Farm::Cluster(&cluster);
    cproj_pair()
        .check(&["-j8"], farm)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("the first branch");

    let mut branch = cproj_pair();
    branch
        .setup("sed -i 's/SCALE 3/SCALE 5/' include/mathutil.h")
        .unwrap_or_else(|e| panic!("{e:#}"));
    branch.env.push(("RMAKE_SUMMARY".into(), "1".into()));
    let mut cmp = branch
        .check(&["-j8", "all", "check"], farm)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let summary = cmp
        .take_summary()
        .unwrap_or_else(|| panic!("no summary line:\n{}", cmp.rmake.stderr));
    cmp.assert_same("the branch with SCALE 5");
    assert!(
        cmp.rmake.stdout.contains("sum=50"),
        "the program uses the branch's header:\n{}",
        cmp.rmake.stdout
    );
    assert!(
        summary.hits >= 3 && summary.remote >= 4,
        "version.h, list.o and strutil.o come from the cache; mathutil.o, main.o, the library \
         and the program are built again ({summary:?})"
    );
}
