//! rmake-remote: the GNU make compatible client (argument handling, local executor).

pub mod args;
pub mod argv;
pub mod dirlog;
pub mod farm;
pub mod host;
pub mod jobserver;
pub mod local;
pub mod makeflags;
pub mod runner;
pub mod signals;
mod usage;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use crate::args::{Config, UsageError};
use crate::runner::Prefix;

/// The program name make shows in messages: argv[0]'s basename.
fn program_name(argv0: &str) -> String {
    argv0.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or("rmake-remote").to_string()
}

/// `$(MAKE)`: argv[0], made absolute when it is a relative path with a slash (-C may move us).
fn make_program(argv0: &str) -> String {
    if argv0.contains('/') && !argv0.starts_with('/') {
        if let Ok(cwd) = std::env::current_dir() {
            return format!("{}/{}", cwd.display(), argv0);
        }
    }
    argv0.to_string()
}

/// Runs rmake-remote with `args` (argv including argv[0]); returns the exit status.
///
/// The work runs on a thread with a large stack: make's update walk recurses along dependency
/// chains, and makefiles with chains tens of thousands of files deep exist.
pub fn run(args: Vec<String>) -> ExitCode {
    const STACK: usize = 1 << 30;
    let worker = std::thread::Builder::new().name("rmake".into()).stack_size(STACK).spawn(move || run_on_this_thread(args));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => ExitCode::from(2),
    }
}

fn run_on_this_thread(args: Vec<String>) -> ExitCode {
    let argv0 = args.first().cloned().unwrap_or_else(|| "rmake-remote".into());
    let name = program_name(&argv0);
    let makelevel: u32 = std::env::var("MAKELEVEL").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let prefix_text = if makelevel > 0 { format!("{name}[{makelevel}]") } else { name.clone() };
    let prefix = Prefix(Arc::from(prefix_text.as_str()));
    let gnu_flags = std::env::var("GNUMAKEFLAGS").ok();
    let env_flags = std::env::var("MAKEFLAGS").ok();
    let rest = args.get(1..).unwrap_or(&[]).to_vec();
    let env_values = gnu_flags.iter().chain(env_flags.iter()).map(String::as_str);
    if gnu_flags.is_some() {
        // make folds GNUMAKEFLAGS into MAKEFLAGS and empties it for sub-makes.
        std::env::set_var("GNUMAKEFLAGS", "");
    }
    let mut cfg = match Config::from_args_env(&rest, env_values) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("{}: {e}", prefix.0);
            if matches!(e, UsageError::Arg(_)) {
                eprint!("{}", usage::text(&name));
            }
            return ExitCode::from(2);
        }
    };
    if cfg.help {
        print!("{}", usage::text(&name));
        return ExitCode::SUCCESS;
    }
    if cfg.version {
        print!("{}", usage::version());
        return ExitCode::SUCCESS;
    }
    if std::env::var("RMAKE_LOCAL").is_ok_and(|v| v == "1") {
        cfg.local = true;
    }
    if cfg.local {
        // Sub-makes inherit local mode.
        std::env::set_var("RMAKE_LOCAL", "1");
    }
    let stdin_makefile = match stdin_makefile(&mut cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: *** fopen (temporary file): {}.  Stop.", prefix.0, io_reason(&e));
            return ExitCode::from(2);
        }
    };
    let make_prog = make_program(&argv0);
    for dir in &cfg.directories {
        if let Err(e) = std::env::set_current_dir(dir) {
            let _ = std::io::stdout().flush();
            let reason = io_reason(&e);
            eprintln!("{}: *** {dir}: {reason}.  Stop.", prefix.0);
            return ExitCode::from(2);
        }
    }
    let print_dir = !cfg.no_print_directory
        && (cfg.print_directory
            || (!cfg.silent && (!cfg.directories.is_empty() || makelevel > 0)));
    let argv_jobs = argv::normalize(&rest).is_ok_and(|n| n.options.iter().any(|o| o.starts_with("--jobs")));
    let jobserver = setup_jobserver(&mut cfg, &prefix, argv_jobs);
    let makeflags = makeflags::render(&cfg, jobserver.as_ref().map(|j| j.fds()), print_dir);
    std::env::set_var("MAKEFLAGS", &makeflags);
    signals::install();
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    // Under -Otarget/-Oline with parallel jobs, make names the directory around each output
    // block instead of once for the whole run.
    let parallel = !matches!(cfg.jobs, args::Jobs::One | args::Jobs::Limit(1));
    let blocks_named = parallel && matches!(cfg.output_sync.as_deref(), Some("target") | Some("line"));
    let top_lines = print_dir && !blocks_named;
    if top_lines {
        dirlog::defer(format!("{}: Entering directory '{cwd}'", prefix.0));
    }
    let parse_makeflags = {
        let mut c = cfg.clone();
        c.jobs = args::Jobs::One;
        makeflags::render(&c, None, print_dir)
    };
    if cfg.explain.is_some() {
        return farm::explain::run(&cfg, &prefix);
    }
    let farm = farm::Farm::new(&cfg, &prefix);
    let session = local::Session {
        farm,
        parse_makeflags,
        cfg,
        prefix: prefix.clone(),
        make_program: make_prog,
        makelevel,
        makeflags,
        jobserver: jobserver.map(Arc::new),
        directory: print_dir.then(|| Arc::from(cwd.as_str())),
        entered: top_lines || print_dir,
    };
    let code = local::run(&session);
    if top_lines && dirlog::entered() {
        println!("{}: Leaving directory '{cwd}'", prefix.0);
    }
    if let Some(p) = stdin_makefile {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::io::stdout().flush();
    code
}

/// `-f -`: like make, copy standard input to a temporary file and read that.
fn stdin_makefile(cfg: &mut Config) -> std::io::Result<Option<String>> {
    if !cfg.makefiles.iter().any(|f| f == "-") {
        return Ok(None);
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut text)?;
    let dir = std::env::var("TMPDIR").ok().filter(|d| !d.is_empty()).unwrap_or_else(|| "/tmp".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let path = format!("{dir}/Gm{:x}{:x}", std::process::id(), nanos);
    std::fs::write(&path, text)?;
    for f in cfg.makefiles.iter_mut().filter(|f| *f == "-") {
        f.clone_from(&path);
    }
    Ok(Some(path))
}

/// The jobserver of this make: inherited from the parent (`--jobserver-auth` in MAKEFLAGS),
/// or created for a top-level `-jN`; without usable descriptors a sub-make falls back to -j1
/// with make's warning.
fn setup_jobserver(cfg: &mut Config, prefix: &Prefix, argv_jobs: bool) -> Option<jobserver::JobServer> {
    if let (Some(_), true, args::Jobs::Limit(n)) = (&cfg.jobserver_auth, argv_jobs, cfg.jobs) {
        // An explicit -jN on a sub-make's command line starts a jobserver of its own.
        let _ = std::io::stdout().flush();
        eprintln!("{}: warning: -j{n} forced in submake: resetting jobserver mode.", prefix.0);
        cfg.jobserver_auth = None;
    }
    if let Some(auth) = cfg.jobserver_auth.clone() {
        if let Some(js) = jobserver::JobServer::from_auth(&auth) {
            return Some(js);
        }
        if matches!(cfg.jobs, args::Jobs::Limit(n) if n > 1) {
            let _ = std::io::stdout().flush();
            eprintln!("{}: warning: jobserver unavailable: using -j1.  Add '+' to parent make rule.", prefix.0);
            cfg.jobs = args::Jobs::Limit(1);
        }
        return None;
    }
    match cfg.jobs {
        args::Jobs::Limit(n) if n > 1 => jobserver::JobServer::create(n - 1).ok(),
        _ => None,
    }
}

/// The system's reason for an I/O error, as strerror words it.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        std::io::ErrorKind::IsADirectory => "Is a directory".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(program_name("/usr/bin/rmake-remote"), "rmake-remote");
        assert_eq!(program_name("make"), "make");
        assert_eq!(make_program("/abs/x"), "/abs/x");
        assert_eq!(make_program("rmake-remote"), "rmake-remote");
        assert!(make_program("./x").ends_with("/./x"));
    }
}
