//! Unit tests of the build plan over `MemHost`: a scripted executor "runs" each job by writing
//! its target (or failing), and the tests check the jobs, their order and make's messages.

use std::collections::HashSet;

use crate::build::{Event, Job, JobResult, Outcome, Plan, PlanOptions};
use crate::db::{Database, LoadOptions};
use crate::host::MemHost;

struct Run {
    jobs: Vec<Job>,
    events: Vec<Event>,
    outcome: Outcome,
}

impl Run {
    fn targets(&self) -> Vec<&str> {
        self.jobs.iter().map(|j| j.target.as_str()).collect()
    }

    fn commands(&self) -> Vec<String> {
        self.jobs
            .iter()
            .flat_map(|j| j.lines.iter().map(|l| l.command.clone()))
            .collect()
    }

    fn messages(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) | Event::Error(m) | Event::Stdout(m) | Event::Stderr(m) => {
                    Some(m.clone())
                }
                _ => None,
            })
            .collect()
    }
}

/// Loads `makefile` into `host` and builds `goals`; jobs for targets in `fail` fail with status 1.
fn build_with(
    host: &mut MemHost,
    makefile: &str,
    goals: &[&str],
    opts: PlanOptions,
    fail: &[&str],
) -> Run {
    host.add_file("Makefile", makefile);
    let lo = LoadOptions {
        no_builtin_rules: true,
        ..LoadOptions::default()
    };
    let (db, _) = Database::load(host, &lo).expect("makefile loads");
    let goals: Vec<(String, bool)> = goals.iter().map(|g| (g.to_string(), false)).collect();
    let mut plan = Plan::new(db, host, &goals, opts);
    let fail: HashSet<&str> = fail.iter().copied().collect();
    let mut run = Run {
        jobs: Vec::new(),
        events: Vec::new(),
        outcome: Outcome::Failed,
    };
    for _ in 0..1000 {
        plan.poll(host);
        run.events.extend(plan.take_events());
        let mut started = Vec::new();
        while let Some(job) = plan.next_job(host) {
            started.push(job);
        }
        run.events.extend(plan.take_events());
        if started.is_empty() && plan.is_done() && plan.running_jobs() == 0 {
            break;
        }
        for job in started {
            let result = if fail.contains(job.target.as_str()) {
                JobResult::Failed {
                    line: 0,
                    exit: crate::build::ExitKind::Code(1),
                }
            } else {
                if job.lines.iter().any(|l| l.execute) {
                    host.add_file(&job.target, "made");
                }
                JobResult::Success
            };
            plan.job_finished(job.id, result, host);
            run.events.extend(plan.take_events());
            run.jobs.push(job);
        }
    }
    run.outcome = plan.finish(host);
    run.events.extend(plan.take_events());
    run
}

fn build(host: &mut MemHost, makefile: &str, goals: &[&str]) -> Run {
    build_with(
        host,
        makefile,
        goals,
        PlanOptions {
            serial: true,
            ..PlanOptions::default()
        },
        &[],
    )
}

#[test]
fn up_to_date_tree_has_nothing_to_do() {
    let mut h = MemHost::new().with_file("a.c", "").with_file("a.o", "");
    let r = build(
        &mut h,
        "all: a.o\na.o: a.c\n\tcc -c a.c\n.PHONY: all\n",
        &[],
    );
    assert!(r.jobs.is_empty());
    assert_eq!(r.messages(), ["Nothing to be done for 'all'."]);
    assert_eq!(r.outcome, Outcome::Success { remade: false });
}

#[test]
fn newer_prerequisite_remakes_target_and_dependents() {
    let mut h = MemHost::new()
        .with_file("a.o", "")
        .with_file("prog", "")
        .with_file("a.c", "");
    let r = build(
        &mut h,
        "prog: a.o\n\tld -o $@ $^\na.o: a.c\n\tcc -c $< -o $@\n",
        &[],
    );
    assert_eq!(r.commands(), ["cc -c a.c -o a.o", "ld -o prog a.o"]);
}

#[test]
fn goal_is_up_to_date_message() {
    let mut h = MemHost::new().with_file("a.c", "").with_file("a.o", "");
    let r = build(&mut h, "a.o: a.c\n\tcc -c a.c\n", &["a.o"]);
    assert_eq!(r.messages(), ["'a.o' is up to date."]);
}

#[test]
fn missing_prerequisite_without_rule_stops() {
    let mut h = MemHost::new();
    let r = build(&mut h, "all: nothere\n\techo $@\n", &[]);
    assert_eq!(
        r.messages(),
        ["*** No rule to make target 'nothere', needed by 'all'.  Stop."]
    );
    assert_eq!(r.outcome, Outcome::Failed);
}

#[test]
fn chain_through_intermediate_files_removes_them() {
    let mut h = MemHost::new().with_file("a.z", "").with_file("b.z", "");
    let mk = "all: a.x b.x\n%.x: %.y\n\tcp $< $@\n%.y: %.z\n\tcp $< $@\n.PHONY: all\n";
    let r = build(&mut h, mk, &[]);
    assert_eq!(
        r.commands(),
        ["cp a.z a.y", "cp a.y a.x", "cp b.z b.y", "cp b.y b.x"]
    );
    let removed: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| matches!(e, Event::RemoveIntermediates { .. }))
        .collect();
    assert_eq!(
        removed,
        [&Event::RemoveIntermediates {
            paths: vec!["a.y".into(), "b.y".into()],
            silent: false,
            dry_run: false
        }]
    );
}

#[test]
fn secondary_intermediates_are_kept() {
    let mut h = MemHost::new().with_file("a.z", "");
    let mk = "all: a.x\n%.x: %.y\n\tcp $< $@\n%.y: %.z\n\tcp $< $@\n.SECONDARY:\n.PHONY: all\n";
    let r = build(&mut h, mk, &[]);
    assert_eq!(r.targets(), ["a.y", "a.x"]);
    assert!(!r
        .events
        .iter()
        .any(|e| matches!(e, Event::RemoveIntermediates { .. })));
}

#[test]
fn keep_going_reports_targets_not_remade() {
    let mut h = MemHost::new();
    let opts = PlanOptions {
        keep_going: true,
        serial: true,
        ..PlanOptions::default()
    };
    let r = build_with(
        &mut h,
        "all: x y\n\techo all\nx:\n\tfalse\ny:\n\techo y\n",
        &[],
        opts,
        &["x"],
    );
    assert_eq!(r.targets(), ["x", "y"]);
    assert_eq!(
        r.messages(),
        [
            "*** [Makefile:4: x] Error 1",
            "Target 'all' not remade because of errors."
        ]
    );
    assert_eq!(r.outcome, Outcome::Failed);
}

#[test]
fn failure_without_keep_going_stops_everything() {
    let mut h = MemHost::new();
    let r = build_with(
        &mut h,
        "all: x y\nx:\n\tfalse\ny:\n\techo y\n",
        &[],
        PlanOptions {
            serial: true,
            ..PlanOptions::default()
        },
        &["x"],
    );
    assert_eq!(r.targets(), ["x"]);
    assert_eq!(r.messages(), ["*** [Makefile:3: x] Error 1"]);
}

#[test]
fn circular_dependency_is_dropped_with_a_warning() {
    let mut h = MemHost::new();
    let r = build(&mut h, "a: b\n\t@echo a\nb: a\n\t@echo b\n", &[]);
    assert_eq!(r.messages()[0], "Circular b <- a dependency dropped.");
    assert_eq!(r.targets(), ["b", "a"]);
}

#[test]
fn phony_target_runs_even_when_file_exists() {
    let mut h = MemHost::new().with_file("clean", "");
    let r = build(&mut h, "clean:\n\trm -f x\n.PHONY: clean\n", &["clean"]);
    assert_eq!(r.commands(), ["rm -f x"]);
}

#[test]
fn force_style_empty_target_forces_rebuild() {
    let mut h = MemHost::new().with_file("out", "");
    let r = build(&mut h, "out: FORCE\n\techo > out\nFORCE:\n", &["out"]);
    assert_eq!(r.commands(), ["echo > out"]);
}

#[test]
fn double_colon_rules_run_independently() {
    let mut h = MemHost::new()
        .with_file("a", "")
        .with_file("log", "")
        .with_file("b", "");
    let r = build(
        &mut h,
        "log:: a\n\techo a >> log\nlog:: b\n\techo b >> log\n",
        &["log"],
    );
    assert_eq!(r.commands(), ["echo b >> log"]);
}

#[test]
fn grouped_targets_run_their_recipe_once() {
    let mut h = MemHost::new();
    let r = build(&mut h, "all: x y\nx y &:\n\ttouch x y\n.PHONY: all\n", &[]);
    assert_eq!(r.commands(), ["touch x y"]);
}

#[test]
fn vpath_found_prerequisite_is_used_in_automatic_variables() {
    let mut h = MemHost::new().with_file("src/a.c", "");
    let r = build(
        &mut h,
        "vpath %.c src\na.o: a.c\n\tcc -c $< -o $@\n",
        &["a.o"],
    );
    assert_eq!(r.commands(), ["cc -c src/a.c -o a.o"]);
}

#[test]
fn question_mode_reports_out_of_date_without_jobs() {
    let mut h = MemHost::new();
    let opts = PlanOptions {
        question: true,
        serial: true,
        ..PlanOptions::default()
    };
    let r = build_with(&mut h, "x:\n\ttouch x\n", &["x"], opts, &[]);
    assert!(r.jobs.is_empty());
    assert_eq!(r.outcome, Outcome::Question);
}

#[test]
fn dry_run_prints_but_does_not_execute_except_recursive_lines() {
    let mut h = MemHost::new();
    let opts = PlanOptions {
        just_print: true,
        serial: true,
        ..PlanOptions::default()
    };
    let r = build_with(&mut h, "x:\n\t@touch x\n\t+echo sub\n", &["x"], opts, &[]);
    let lines = &r.jobs[0].lines;
    assert!(lines[0].echo && !lines[0].execute);
    assert!(lines[1].echo && lines[1].execute && lines[1].recursive);
}

#[test]
fn order_only_prerequisites_do_not_force_rebuilds() {
    let mut h = MemHost::new()
        .with_file("out", "")
        .with_file("dir/stamp", "");
    let r = build(&mut h, "out: | dir/stamp\n\techo > out\n", &["out"]);
    assert!(r.jobs.is_empty());
    assert_eq!(r.messages(), ["'out' is up to date."]);
}

#[test]
fn static_pattern_rule_sets_stem() {
    let mut h = MemHost::new().with_file("a.c", "").with_file("b.c", "");
    let r = build(
        &mut h,
        "OBJS = a.o b.o\nall: $(OBJS)\n$(OBJS): %.o: %.c\n\techo $* $< $@\n.PHONY: all\n",
        &[],
    );
    assert_eq!(r.commands(), ["echo a a.c a.o", "echo b b.c b.o"]);
}

#[test]
fn newer_list_holds_only_changed_prerequisites() {
    let mut h = MemHost::new()
        .with_file("old.h", "")
        .with_file("out", "")
        .with_file("new.h", "");
    let r = build(&mut h, "out: old.h new.h\n\techo $?\n", &["out"]);
    assert_eq!(r.commands(), ["echo new.h"]);
}

#[test]
fn default_recipe_applies_to_files_without_rules() {
    let mut h = MemHost::new();
    let r = build(
        &mut h,
        "all: a\n\t@:\n.DEFAULT:\n\techo default $@ $<\n",
        &["all"],
    );
    assert_eq!(r.commands()[0], "echo default a a");
}

#[test]
fn old_file_is_not_remade() {
    let mut h = MemHost::new().with_file("out", "").with_file("in", "");
    let opts = PlanOptions {
        old_files: vec!["in".into()],
        serial: true,
        ..PlanOptions::default()
    };
    let r = build_with(
        &mut h,
        "out: in\n\tcp in out\nin:\n\tmake-in\n",
        &["out"],
        opts,
        &[],
    );
    assert!(r.jobs.is_empty());
}

#[test]
fn touch_mode_touches_instead_of_running() {
    let mut h = MemHost::new().with_file("in", "");
    let opts = PlanOptions {
        touch: true,
        serial: true,
        ..PlanOptions::default()
    };
    let r = build_with(&mut h, "out: in\n\tcp in out\n", &["out"], opts, &[]);
    assert!(r.jobs.is_empty());
    assert!(r.events.contains(&Event::Touch {
        path: "out".into(),
        silent: false,
        dry_run: false
    }));
}

#[test]
fn touch_mode_creates_the_file_through_the_host() {
    let mut h = MemHost::new().with_file("in", "");
    let opts = PlanOptions {
        touch: true,
        serial: true,
        ..PlanOptions::default()
    };
    build_with(&mut h, "out: in\n\tcp in out\n", &["out"], opts, &[]);
    assert!(crate::host::Host::mtime(&mut h, "out").is_some());
}

#[test]
fn touch_failure_fails_the_target_and_spares_the_parent() {
    let mut h = MemHost::new();
    let opts = PlanOptions {
        touch: true,
        serial: true,
        ..PlanOptions::default()
    };
    let r = build_with(&mut h, "top: d/stamp\n\tmake-top\nd/stamp:\n\tmake-stamp\n", &["top"], opts, &[]);
    assert!(r.events.contains(&Event::Error(
        "touch: open: d/stamp: No such file or directory".into()
    )));
    assert!(!r.events.iter().any(|e| matches!(e, Event::Touch { path, .. } if path == "top")));
    assert!(crate::host::Host::mtime(&mut h, "top").is_none());
    assert_eq!(r.outcome, Outcome::Failed);
}

#[test]
fn delete_on_error_deletes_failed_target() {
    let mut h = MemHost::new();
    let opts = PlanOptions {
        serial: true,
        ..PlanOptions::default()
    };
    let r = build_with(
        &mut h,
        ".DELETE_ON_ERROR:\nout:\n\tfalse\n",
        &["out"],
        opts,
        &["out"],
    );
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::DeleteTarget { path, .. } if path == "out")));
}

#[test]
fn parallel_mode_hands_out_independent_jobs_together() {
    let mut h = MemHost::new();
    h.add_file("Makefile", "all: a b c\na b c:\n\ttouch $@\n.PHONY: all\n");
    let (db, _) = Database::load(
        &mut h,
        &LoadOptions {
            no_builtin_rules: true,
            ..LoadOptions::default()
        },
    )
    .expect("load");
    let mut plan = Plan::new(db, &mut h, &[], PlanOptions::default());
    plan.poll(&mut h);
    let mut jobs = Vec::new();
    while let Some(j) = plan.next_job(&mut h) {
        jobs.push(j.target);
    }
    assert_eq!(jobs, ["a", "b", "c"]);
    assert!(!plan.is_done());
}
