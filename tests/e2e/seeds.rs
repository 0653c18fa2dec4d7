//! The Makefiles of the five articles (the golden corpus's `seeds/` cases) built with
//! `rmake-remote` on a 2-worker loopback farm and with GNU make: same status, output and files.
//! Each case runs with its own command line and, when that names no job count, again with `-j4`
//! (output lines then compared unordered), except the ML cases: their `.PHONY` steps rely on
//! running in order, so even GNU make's `-j4` runs of them differ from one run to the next. Two more tests look at where recipes ran: the ML
//! pipeline's `.PHONY` steps on the client, and `-j2`'s two inference shards on two workers.

use std::path::PathBuf;
use std::time::Duration;

use rmake_tests::case::Case;
use rmake_tests::cluster::{Cluster, Options};
use rmake_tests::pair::{Farm, Pair};
use rmake_tests::procs;
use rmake_tests::serial;

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/seeds")
}

/// The seed cases whose name starts with one of `prefixes` (or with `err_` and one of them).
fn cases(prefixes: &[&str]) -> Vec<Case> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(seeds_dir())
        .unwrap_or_else(|e| panic!("reading seeds: {e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "case"))
        .filter(|p| {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bare = stem.strip_prefix("err_").unwrap_or(&stem);
            prefixes.iter().any(|pre| bare.starts_with(pre))
        })
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| Case::load(p).unwrap_or_else(|e| panic!("{e:#}")))
        .collect()
}

fn start(workers: usize, slots: u32) -> Cluster {
    Cluster::start(Options {
        workers,
        slots,
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"))
}

/// Seed cases that differ from make on a farm today, and why. Their differences are printed
/// on every run but do not fail the test (`RMAKE_TESTS_STRICT=1` makes them fail); a known case
/// that agrees again is printed as `FIXED` so it can be taken off the list.
const KNOWN: &[(&str, &str)] = &[(
    "ml_named_runs",
    "three actions append to one runs.log that none declares: each appends to its own copy \
         and the last download wins (make leaves all three lines)",
)];

/// Prints to the process's stderr directly: the test harness captures `eprintln!` of passing
/// tests, and a known difference must show in every run.
fn note(text: String) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Runs every case of `prefixes` on one cluster (also with `-j4` when `parallel_too`); panics
/// listing every case that differs, unless it is listed in [`KNOWN`].
fn check_seeds(prefixes: &[&str], parallel_too: bool) {
    let strict = std::env::var_os("RMAKE_TESTS_STRICT").is_some_and(|v| v != "0");
    let _serial = serial();
    let all = cases(prefixes);
    assert!(!all.is_empty(), "no seed cases for {prefixes:?}");
    let cluster = start(2, 4);
    let mut failures = Vec::new();
    for case in &all {
        let mut variants: Vec<(Vec<String>, bool)> = vec![(case.args.clone(), false)];
        if parallel_too && !case.has_jobs_flag() {
            let mut j = vec!["-j4".to_string()];
            j.extend(case.args.iter().cloned());
            variants.push((j, true));
        }
        for (args, parallel) in variants {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let result = Pair::from_case(case).and_then(|mut pair| {
                if parallel {
                    pair.unordered_stdout = true;
                    pair.unordered_stderr = true;
                }
                pair.check(&args, Farm::Cluster(&cluster))
            });
            let known = KNOWN
                .iter()
                .find(|(n, _)| *n == case.name)
                .map(|(_, why)| *why);
            match result {
                Ok(cmp) => {
                    let p = cmp.problems();
                    match (p.is_empty(), known) {
                        (true, Some(_)) => note(format!(
                            "FIXED {} {args:?}: agrees with make, take it off KNOWN",
                            case.name
                        )),
                        (false, Some(why)) if !strict => {
                            note(format!("known {} {args:?} ({why}):\n{p}", case.name))
                        }
                        (false, _) => failures.push(format!("=== {} {:?}\n{p}", case.name, args)),
                        (true, None) => {}
                    }
                }
                Err(e) => failures.push(format!(
                    "=== {} {:?}\nharness error: {e:#}",
                    case.name, args
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} seed runs differ from make:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn ml_pipeline_cases_match_make() {
    check_seeds(&["ml_"], false);
}

#[test]
fn c_project_cases_match_make() {
    check_seeds(&["c_project_"], true);
}

#[test]
fn nonrecursive_cases_match_make() {
    check_seeds(&["nonrecursive_"], true);
}

#[test]
fn summary_cases_match_make() {
    check_seeds(&["summary_"], true);
}

#[test]
fn intermediate_cases_match_make() {
    check_seeds(&["intermediate_"], true);
}

/// The pipeline of `ml_pipeline_all` with each `.PHONY` step also appending its working
/// directory to `$STEPLOG` (a file outside the tree): a step run by the client runs in the
/// tree itself, one run by a worker in an exec root elsewhere.
#[test]
fn ml_phony_steps_run_on_the_client() {
    let _serial = serial();
    let cluster = start(2, 4);
    let makefile = "outdir ?= path/to/output\n\
        download_dir ?= $(outdir)/downloads\n\
        preprocess_path ?= $(outdir)/processed\n\
        ckpt_path ?= $(outdir)/ckpts\n\
        .PHONY: download preprocess train all\n\
        download:\n\t@pwd >> \"$$STEPLOG\"\n\tmkdir -p $(download_dir) && echo raw > $(download_dir)/data.txt\n\
        preprocess:\n\t@pwd >> \"$$STEPLOG\"\n\tmkdir -p $(preprocess_path) && tr a-z A-Z < $(download_dir)/data.txt > $(preprocess_path)/data.txt\n\
        train:\n\t@pwd >> \"$$STEPLOG\"\n\tmkdir -p $(ckpt_path) && cat $(preprocess_path)/data.txt > $(ckpt_path)/model.ckpt\n\
        all: download preprocess train\n";
    let mut pair = Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
    let log = pair.dir().join("steps.log");
    pair.env
        .push(("STEPLOG".into(), log.to_string_lossy().into_owned()));
    let cmp = pair
        .check(&["all", "outdir=out"], Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    cmp.assert_same("ml pipeline with step log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let rmake_tree = pair.rmake_tree().to_string_lossy().into_owned();
    let make_tree = pair.make_tree().to_string_lossy().into_owned();
    let rmake_steps: Vec<&str> = text.lines().filter(|l| *l != make_tree).collect();
    assert_eq!(
        rmake_steps,
        vec![rmake_tree.as_str(); 3],
        "every phony step of rmake-remote must run in the client's tree"
    );
}

/// `-j2 eval` with the two inference shards as file targets (so they are pure actions): on a
/// farm of two 1-slot workers they run at the same time, one on each worker.
#[test]
fn ml_eval_shards_run_on_two_workers() {
    let _serial = serial();
    let cluster = start(2, 1);
    let makefile = ".PHONY: eval\n\
        eval: metrics.txt\n\
        metrics.txt: shard1.txt shard2.txt\n\
        \t@cat $^ | wc -l | sed 's/^ *//; s/^/predictions: /' > $@; cat $@\n\
        shard1.txt:\n\t@sleep 2; seq 0 4 | sed 's/^/pred /' > $@; echo shard1 done\n\
        shard2.txt:\n\t@sleep 2; seq 5 9 | sed 's/^/pred /' > $@; echo shard2 done\n";
    let mut pair = Pair::from_files(&[("Makefile", makefile)]).unwrap_or_else(|e| panic!("{e:#}"));
    pair.unordered_stdout = true;
    let args = ["-j2", "eval"];
    let make = pair.run_make(&args).unwrap_or_else(|e| panic!("{e:#}"));
    let mut run = pair
        .spawn_rmake(&args, Farm::Cluster(&cluster))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (mut on1, mut on2, mut together) = (None, None, false);
    procs::wait_until(Duration::from_secs(40), || {
        let w1 = cluster.worker_running("seq 0 4");
        let w2 = cluster.worker_running("seq 5 9");
        on1 = on1.or(w1);
        on2 = on2.or(w2);
        together |= w1.is_some() && w2.is_some();
        run.has_exited()
    });
    let out = run
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    pair.compare(&args, make, out)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .assert_same("ml eval shards");
    assert!(
        together,
        "the two shards never ran at the same time (shard1 on {on1:?}, shard2 on {on2:?})"
    );
    assert!(
        on1.is_some() && on2.is_some() && on1 != on2,
        "the shards ran on workers {on1:?} and {on2:?}, not on two different ones"
    );
}
