//! Local mode: GNU make on this machine. Loads the makefiles, remakes them (restarting when one
//! changed), then drives the build `Plan` with up to `-j` job threads, printing make's messages.

use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmake_makefile::build::{Event, Outcome, Plan, PlanOptions};
use rmake_makefile::db::{Database, LoadOptions, LoadReport};
use rmake_makefile::host::Host;

use crate::args::{Config, Jobs};
use crate::farm::{Prepared, Ran};
use crate::host::RealHost;
use crate::jobserver::{JobServer, TokenReader};
use crate::runner::{self, Msg, Pids, Prefix};
use crate::signals;

/// What the caller resolved about this process before the build.
pub struct Session {
    /// The parsed command line.
    pub cfg: Config,
    /// `rmake-remote` or `rmake-remote[N]`.
    pub prefix: Prefix,
    /// `$(MAKE)`.
    pub make_program: String,
    /// This make's MAKELEVEL.
    pub makelevel: u32,
    /// The MAKEFLAGS value recipes see.
    pub makeflags: String,
    /// The MAKEFLAGS value while the makefiles are read (make adds `-j` and the jobserver
    /// only afterwards).
    pub parse_makeflags: String,
    /// The jobserver shared with the parent and sub-makes, under `-jN`.
    pub jobserver: Option<Arc<JobServer>>,
    /// The directory to name around synchronised output blocks (when `-w` is in force).
    pub directory: Option<Arc<str>>,
    /// Whether `Entering directory` was already printed (else `-w` from the makefile's
    /// MAKEFLAGS prints it once the makefiles are read).
    pub entered: bool,
    /// The farm pure jobs run on (`None` in local mode).
    pub farm: Option<crate::farm::Farm>,
}

/// Prints one event the way make prints the corresponding message.
pub fn print_event(prefix: &Prefix, ev: Event) {
    crate::farm::progress::clear();
    let p = &prefix.0;
    match &ev {
        Event::Stdout(_) | Event::Error(_) | Event::Message(_) | Event::Stderr(_) => crate::dirlog::ensure(),
        Event::Touch { silent: false, .. } => crate::dirlog::ensure(),
        _ => {}
    }
    match ev {
        Event::Stdout(s) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
        Event::Message(s) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{p}: {s}");
            let _ = out.flush();
        }
        Event::Error(s) => {
            let _ = std::io::stdout().flush();
            eprintln!("{p}: {s}");
        }
        Event::Stderr(s) => {
            let _ = std::io::stdout().flush();
            eprintln!("{s}");
        }
        Event::DeleteTarget { path, before } => delete_target(prefix, &path, before),
        Event::RemoveIntermediates { paths, silent, dry_run } => {
            let mut removed = Vec::new();
            let mut errors = Vec::new();
            for path in paths {
                if dry_run {
                    removed.push(path);
                    continue;
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        errors.push(format!("{p}: unlink: {path}: {}", crate::io_reason(&e)));
                        removed.push(path);
                    }
                }
            }
            if !removed.is_empty() && !silent {
                crate::dirlog::ensure();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "rm {}", removed.join(" "));
                let _ = out.flush();
            }
            for e in errors {
                crate::dirlog::ensure();
                eprintln!("{e}");
            }
        }
        Event::Touch { path, silent, .. } => {
            if !silent {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "touch {path}");
                let _ = out.flush();
            }
        }
    }
}

fn delete_target(prefix: &Prefix, path: &str, before: Option<rmake_makefile::host::Mtime>) {
    let Ok(meta) = std::fs::metadata(path) else { return };
    if !meta.is_file() {
        return;
    }
    if crate::host::file_mtime(path) == before {
        return;
    }
    crate::dirlog::ensure();
    let _ = std::io::stdout().flush();
    eprintln!("{}: *** Deleting file '{path}'", prefix.0);
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("{}: unlink: {path}: {e}", prefix.0);
        }
    }
}

fn load_options(s: &Session, restarts: u32) -> LoadOptions {
    let cfg = &s.cfg;
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    let mut eval = cfg.evals.clone();
    if !cfg.vars.is_empty() {
        // As in make: MAKEOVERRIDES refers to the command-line variables, and reaches recipes
        // unexpanded through the environment.
        env.retain(|(k, _)| k != "MAKEOVERRIDES");
        env.push(("MAKEOVERRIDES".into(), "${-*-command-variables-*-}".into()));
        eval.insert(0, format!("-*-command-variables-*- := {}", crate::makeflags::overrides(cfg).replace('$', "$$")));
    }
    LoadOptions {
        makefiles: cfg.makefiles.clone(),
        cmdline_vars: cfg.vars.clone(),
        env,
        env_overrides: cfg.env_overrides,
        no_builtin_rules: cfg.no_builtin_rules || cfg.no_builtin_variables,
        no_builtin_vars: cfg.no_builtin_variables,
        include_dirs: cfg.include_dirs.clone(),
        goals: cfg.goals.clone(),
        makeflags: s.parse_makeflags.clone(),
        make_program: s.make_program.clone(),
        makelevel: s.makelevel,
        eval,
        restarts,
    }
}

/// The Plan's options; while remaking makefiles `-n`, `-q` and `-t` do not apply (make runs
/// those recipes for real), nor does `-B` after a restart (it would loop forever).
fn plan_options(cfg: &Config, rebuilding: bool, restarts: u32) -> PlanOptions {
    PlanOptions {
        serial: matches!(cfg.jobs, Jobs::One | Jobs::Limit(1)),
        keep_going: cfg.keep_going,
        just_print: cfg.just_print && !rebuilding,
        question: cfg.question && !rebuilding,
        touch: cfg.touch && !rebuilding,
        always_make: cfg.always_make && !(rebuilding && restarts > 0),
        ignore_errors: cfg.ignore_errors,
        silent: cfg.silent,
        trace: cfg.trace,
        old_files: cfg.old_files.clone(),
        new_files: cfg.new_files.clone(),
        rebuilding_makefiles: rebuilding,
    }
}

fn report_load_error(prefix: &Prefix, e: &rmake_makefile::error::Error) {
    crate::dirlog::ensure();
    let _ = std::io::stdout().flush();
    if e.loc.is_some() {
        eprintln!("{e}");
    } else {
        eprintln!("{}: {e}", prefix.0);
    }
}

/// Runs the whole local build; returns make's exit status.
pub fn run(s: &Session) -> ExitCode {
    let late_dir = std::cell::Cell::new(false);
    let code = run_build(s, &late_dir);
    if let Some(farm) = &s.farm {
        farm.finish();
    }
    if late_dir.get() {
        let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
        println!("{}: Leaving directory '{cwd}'", s.prefix.0);
    }
    code
}

fn run_build(s: &Session, late_dir: &std::cell::Cell<bool>) -> ExitCode {
    let mut host = RealHost::new();
    host.set_symlink_times(s.cfg.check_symlink_times);
    let mut restarts = 0;
    loop {
        let opts = load_options(s, restarts);
        let (mut db, report) = match Database::load(&mut host, &opts) {
            Ok(x) => x,
            Err(e) => {
                report_load_error(&s.prefix, &e);
                return ExitCode::from(2);
            }
        };
        let cfg = flags_from_makefile(s, &mut host, &mut db);
        if cfg.print_directory && !cfg.no_print_directory && !s.entered && !late_dir.get() {
            let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
            println!("{}: Entering directory '{cwd}'", s.prefix.0);
            late_dir.set(true);
        }
        let before: Vec<Option<rmake_makefile::host::Mtime>> =
            report.makefiles.iter().map(|m| host.mtime(&m.name)).collect();
        // make tries to remake every makefile it read, the last read first.
        // A double-colon makefile rule without prerequisites would remake it forever: make skips it.
        let loops = |name: &str| {
            db.rules_for(name).iter().filter_map(|&i| db.rules.get(i)).any(|r| {
                r.double_colon && r.prereqs.is_empty() && r.order_only.is_empty() && r.recipe.is_some()
            })
        };
        // Optional and missing makefiles fail quietly here (reported afterwards if required);
        // an existing makefile whose rule fails is an ordinary error.
        let mk_goals: Vec<(String, bool)> = report
            .makefiles
            .iter()
            .rev()
            .filter(|m| !loops(&m.name))
            .map(|m| (m.name.clone(), m.optional || m.missing))
            .collect();
        let mut plan = Plan::new(db, &mut host, &mk_goals, plan_options(&cfg, true, restarts));
        if drive(s, &cfg, &mut host, &mut plan) == Outcome::Failed && plan.is_dying() {
            return ExitCode::from(2);
        }
        // Restart when a makefile was remade (its time changed), whatever else failed.
        let any_remade = report
            .makefiles
            .iter()
            .zip(&before)
            .any(|(m, b)| plan.makefile_updated_ok(&m.name) && host.mtime(&m.name) != *b && host.mtime(&m.name).is_some());
        if any_remade {
            // Under -k make names the makefiles it could not remake before re-executing.
            if cfg.keep_going {
                // Its exit code is not the end here: make re-executes after naming them.
                let mut reported = false;
                let _ = check_required_makefiles(s, &cfg, &mut host, &mut plan, &report, &mut reported);
            }
            restarts += 1;
            if restarts > 20 {
                return ExitCode::from(2);
            }
            host.invalidate();
            continue;
        }
        let mut makefile_failed = false;
        if let Some(code) = check_required_makefiles(s, &cfg, &mut host, &mut plan, &report, &mut makefile_failed) {
            return code;
        }
        if cfg.goals.is_empty() {
            match plan.database().default_goal() {
                None => {
                    let found_any = report.makefiles.iter().any(|m| !m.missing);
                    let msg = if found_any { "*** No targets.  Stop." } else { "*** No targets specified and no makefile found.  Stop." };
                    crate::dirlog::ensure();
                    let _ = std::io::stdout().flush();
                    eprintln!("{}: {msg}", s.prefix.0);
                    return ExitCode::from(2);
                }
                Some(g) if g.split_whitespace().count() > 1 => {
                    crate::dirlog::ensure();
                    let _ = std::io::stdout().flush();
                    eprintln!("{}: *** .DEFAULT_GOAL contains more than one target.  Stop.", s.prefix.0);
                    return ExitCode::from(2);
                }
                Some(_) => {}
            }
        }
        if let Some(farm) = &s.farm {
            let goals = if cfg.goals.is_empty() { plan.database().default_goal().into_iter().collect() } else { cfg.goals.clone() };
            farm.set_goals(goals);
        }
        plan.start_goals(&goal_list(&cfg.goals), plan_options(&cfg, false, restarts));
        let outcome = drive(s, &cfg, &mut host, &mut plan);
        return match outcome {
            _ if makefile_failed => ExitCode::from(2),
            Outcome::Success { .. } => ExitCode::SUCCESS,
            Outcome::Question => ExitCode::from(1),
            Outcome::Failed => ExitCode::from(2),
        };
    }
}

/// Flags a makefile set through `MAKEFLAGS` (`MAKEFLAGS += -rs -j2`) take effect after
/// reading, as in make; `-r` then removes the built-in rules.
fn flags_from_makefile(s: &Session, host: &mut RealHost, db: &mut Database) -> Config {
    let mut cfg = s.cfg.clone();
    let Ok(value) = db.expand(host, "$(MAKEFLAGS)", &rmake_makefile::db::Scope::GLOBAL) else { return cfg };
    let mflags_now = db.expand(host, "$(MFLAGS)", &rmake_makefile::db::Scope::GLOBAL).unwrap_or_default();
    // make writes ` -- $(MAKEOVERRIDES)` when MAKEOVERRIDES (unexpanded) is not empty.
    let overrides = match db.var("MAKEOVERRIDES") {
        Some(v) if !v.value.is_empty() => {
            db.expand(host, "$(MAKEOVERRIDES)", &rmake_makefile::db::Scope::GLOBAL).ok()
        }
        _ => None,
    };
    let unchanged = value == s.makeflags && mflags_now == crate::makeflags::mflags(&value);
    let words = crate::makeflags::split_env(&value);
    let extra = if unchanged { None } else { Config::from_args(&words, None).ok() };
    if !unchanged && extra.is_none() {
        return cfg;
    }
    if let Some(extra) = extra {
        if cfg.add_makefile_flags(extra) {
            db.pattern_rules.retain(|r| !r.builtin);
        }
    }
    // make rewrites MAKEFLAGS (and MFLAGS) from its flags once the makefiles are read.
    let js = s.jobserver.as_ref().map(|j| j.fds());
    let rendered = crate::makeflags::render_with(&cfg, js, s.directory.is_some(), overrides.as_deref());
    if rendered != value || mflags_now != crate::makeflags::mflags(&rendered) {
        // `$()` keeps a leading blank, which `:=` would strip.
        let quote = |v: &str| format!("$(){}", v.replace('$', "$$").replace('#', "\\#"));
        let text = format!(
            "MAKEFLAGS := {}\nMFLAGS := {}\n",
            quote(&rendered),
            quote(&crate::makeflags::mflags(&rendered))
        );
        if let Err(e) = db.eval_text(host, "<command-line>", &text) {
            tracing::debug!(%e, "cannot rewrite MAKEFLAGS");
        }
    }
    cfg
}


/// After remaking makefiles: a required makefile that is still missing because it could not be
/// remade stops the build with make's two messages.
/// With -k the build goes on after `Failed to remake makefile 'x'.` (and exits 2 at the end).
fn check_required_makefiles(
    s: &Session,
    cfg: &Config,
    host: &mut RealHost,
    plan: &mut Plan,
    report: &LoadReport,
    failed: &mut bool,
) -> Option<ExitCode> {
    // make looks at the makefiles last read first: the missing ones are reported, then (under
    // -k) every one that could not be remade is named.
    let mut not_remade: Vec<&str> = Vec::new();
    for m in report.makefiles.iter().rev() {
        if !m.missing || m.optional || host.mtime(&m.name).is_some() || !plan.makefile_failed(&m.name) {
            continue;
        }
        crate::dirlog::ensure();
        let _ = std::io::stdout().flush();
        match &m.loc {
            Some(loc) => eprintln!("{loc}: {}: No such file or directory", m.name),
            None => eprintln!("{}: {}: No such file or directory", s.prefix.0, m.name),
        }
        if cfg.keep_going {
            plan.report_failed_makefile(&m.name, true);
            flush_events(s, plan);
            not_remade.push(&m.name);
            continue;
        }
        plan.report_failed_makefile(&m.name, false);
        flush_events(s, plan);
        return Some(ExitCode::from(2));
    }
    for m in report.makefiles.iter().rev() {
        let existing_failed = !m.missing && !m.optional && plan.makefile_failed(&m.name);
        if existing_failed || not_remade.contains(&m.name.as_str()) {
            crate::dirlog::ensure();
            let _ = std::io::stdout().flush();
            eprintln!("{}: Failed to remake makefile '{}'.", s.prefix.0, m.name);
            *failed = true;
        }
    }
    None
}

fn goal_list(goals: &[String]) -> Vec<(String, bool)> {
    goals.iter().map(|g| (g.clone(), false)).collect()
}

/// Drives `plan` to the end with local job threads.
fn drive(s: &Session, cfg: &Config, host: &mut RealHost, plan: &mut Plan) -> Outcome {
    let slots = match cfg.jobs {
        _ if plan.not_parallel() => 1,
        Jobs::One => 1,
        Jobs::Limit(n) => n.max(1) as usize,
        Jobs::Unlimited => usize::MAX,
    };
    let pids: Pids = Arc::new(Mutex::new(Default::default()));
    let sync = if slots > 1 { runner::SyncMode::parse(cfg.output_sync.as_deref()) } else { runner::SyncMode::None };
    let ctx = runner::RunCtx {
        prefix: s.prefix.clone(),
        pids: pids.clone(),
        jobserver: s.jobserver.as_ref().map(|j| j.fds()),
        sync,
        directory: s.directory.clone(),
    };
    let (tx, rx) = mpsc::channel::<Msg>();
    let js = if slots > 1 { s.jobserver.clone() } else { None };
    let reader = js.as_ref().map(|j| TokenReader::start(j.clone(), tx.clone()));
    // Tokens taken from the jobserver: one per running job beyond the first.
    let mut tokens = 0usize;
    let mut running = 0usize;
    let mut idle_polls = 0u32;
    loop {
        if let Some(sig) = signals::pending() {
            if let Some(r) = &reader {
                r.stop();
            }
            interrupt(s, host, plan, sig, Reaping { pids: &pids, rx: &rx, running, pending: None });
        }
        if running < slots {
            plan.poll(host);
            flush_events(s, plan);
        }
        while running < slots && plan.has_waiting_job() {
            if let (Some(j), Some(r)) = (&js, &reader) {
                if running > tokens {
                    // Take a free token at once if there is one (as make's blocking read would).
                    if !r.pending() && j.try_acquire(0) {
                        tokens += 1;
                    } else {
                        r.request();
                        break;
                    }
                }
            }
            if sync != runner::SyncMode::None {
                host.begin_capture();
            }
            let next = plan.next_job(host);
            let expansion = host.end_capture();
            let Some(job) = next else { break };
            flush_events(s, plan);
            let tx = tx.clone();
            let ctx = ctx.clone();
            running += 1;
            if job.lines.iter().any(|l| l.echo || (l.execute && crate::dirlog::starts_process(&l.command))) {
                crate::dirlog::ensure();
            }
            let prepared = s.farm.as_ref().map(|f| (f.clone(), f.prepare(plan, &job)));
            crate::farm::progress::clear();
            let echoed = runner::echo_first(&job, sync);
            std::thread::spawn(move || {
                let (id, result) = match prepared {
                    None => (job.id, runner::run_job(&job, &ctx, echoed, expansion)),
                    Some((farm, Prepared::Remote(remote))) => match farm.run(*remote, &job, echoed) {
                        Ran::Done(result) => (job.id, result),
                        Ran::RetryHere { needs } => run_here(&farm, job, &ctx, echoed, expansion, &needs),
                    },
                    Some((farm, Prepared::Local { needs })) => run_here(&farm, job, &ctx, echoed, expansion, &needs),
                };
                let _ = tx.send(Msg::Done(id, result));
            });
        }
        flush_events(s, plan);
        if running == 0 {
            if plan.is_done() {
                break;
            }
            if !plan.has_waiting_job() {
                idle_polls += 1;
                if idle_polls > 100_000 {
                    tracing::error!("build plan made no progress");
                    break;
                }
            }
            continue;
        }
        idle_polls = 0;
        let mut msg = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        // Handle everything that arrived, like make reaping all dead children before a pass.
        while let Some(m) = msg {
            if let Some(sig) = signals::pending() {
                // The signal handler's work (deleting targets) comes before reaping.
                if let Some(r) = &reader {
                    r.stop();
                }
                interrupt(s, host, plan, sig, Reaping { pids: &pids, rx: &rx, running, pending: Some(m) });
            }
            match m {
                Msg::Done(id, result) => {
                    running -= 1;
                    if tokens > running.saturating_sub(1) {
                        if let Some(j) = &js {
                            j.release();
                        }
                        tokens -= 1;
                    }
                    plan.job_finished(id, result, host);
                    flush_events(s, plan);
                }
                Msg::Token => {
                    if plan.has_waiting_job() && running > tokens {
                        tokens += 1;
                    } else if let Some(j) = &js {
                        j.release();
                    }
                }
            }
            msg = rx.try_recv().ok();
        }
    }
    if let Some(r) = &reader {
        r.stop();
    }
    if let Some(j) = &js {
        while let Ok(m) = rx.try_recv() {
            if matches!(m, Msg::Token) {
                j.release();
            }
        }
        for _ in 0..tokens {
            j.release();
        }
    }
    let outcome = plan.finish(host);
    flush_events(s, plan);
    outcome
}

/// In farm mode, a job the farm does not run (or whose recipe failed there) runs here, with its
/// prerequisites' outputs on disk first and the farm's address for sub-makes.
fn run_here(
    farm: &crate::farm::Farm,
    mut job: rmake_makefile::build::Job,
    ctx: &runner::RunCtx,
    echoed: bool,
    expansion: (Vec<u8>, Vec<u8>),
    needs: &[String],
) -> (rmake_makefile::build::JobId, rmake_makefile::build::JobResult) {
    farm.before_local(needs);
    let extra = farm.env_for_local(&job);
    job.env.extend(extra);
    let result = runner::run_job(&job, ctx, echoed, expansion);
    farm.after_local();
    (job.id, result)
}

fn flush_events(s: &Session, plan: &mut Plan) {
    for ev in plan.take_events() {
        print_event(&s.prefix, ev);
    }
}

/// The running jobs an interrupt still has to reap.
struct Reaping<'a> {
    pids: &'a Pids,
    rx: &'a mpsc::Receiver<Msg>,
    running: usize,
    /// A message already taken from `rx`.
    pending: Option<Msg>,
}

/// A fatal signal: stop the children, delete the targets being made, and die of the signal.
fn interrupt(s: &Session, host: &mut RealHost, plan: &mut Plan, sig: i32, reap: Reaping<'_>) -> ! {
    let Reaping { pids, rx, mut running, mut pending } = reap;
    if let Some(farm) = &s.farm {
        farm.cancel();
    }
    if sig == libc::SIGTERM {
        if let Ok(p) = pids.lock() {
            for pid in p.values() {
                signals::kill(*pid, sig);
            }
        }
    }
    for (path, before) in plan.interrupted_targets() {
        delete_target(&s.prefix, &path, before);
    }
    plan.interrupt();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while running > 0 && std::time::Instant::now() < deadline {
        let next = match pending.take() {
            Some(m) => Ok(m),
            None => rx.recv_timeout(Duration::from_millis(100)),
        };
        match next {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Commands started since the signal get it as well.
                if sig == libc::SIGTERM {
                    if let Ok(p) = pids.lock() {
                        for pid in p.values() {
                            signals::kill(*pid, sig);
                        }
                    }
                }
            }
            Ok(Msg::Token) => {
                if let Some(j) = &s.jobserver {
                    j.release();
                }
            }
            Ok(Msg::Done(id, result)) => {
                running -= 1;
                plan.job_finished(id, result, host);
                for ev in plan.take_events() {
                    if !matches!(ev, Event::DeleteTarget { .. }) {
                        print_event(&s.prefix, ev);
                    }
                }
            }
            Err(_) => break,
        }
    }
    if !s.cfg.just_print {
        for path in plan.intermediates_to_remove() {
            if std::fs::remove_file(&path).is_ok() {
                crate::dirlog::ensure();
                eprintln!("{}: *** Deleting intermediate file '{path}'", s.prefix.0);
            }
        }
    }
    let _ = std::io::stdout().flush();
    signals::die_of(sig)
}
