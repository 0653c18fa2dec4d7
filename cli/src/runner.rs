//! Running one job on this machine: each command through `SHELL .SHELLFLAGS` (one shell for the
//! whole recipe under .ONESHELL), echoing as make does, `-`/-i failures reported `(ignored)`.
//! Jobs run on their own threads; the pids of running commands are shared so a fatal signal can
//! stop them.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use rmake_makefile::build::{ExitKind, Job, JobId, JobResult};

/// What the executor's threads report to it.
#[derive(Debug)]
pub enum Msg {
    /// A job ended.
    Done(JobId, JobResult),
    /// The jobserver gave us a token.
    Token,
}

/// The pids of running commands, by job.
pub type Pids = Arc<Mutex<HashMap<JobId, u32>>>;

/// How messages are prefixed: `rmake-remote` or `rmake-remote[1]`.
#[derive(Clone, Debug)]
pub struct Prefix(pub Arc<str>);

fn where_of(line: &rmake_makefile::build::JobLine) -> String {
    match &line.loc {
        Some(l) if l.line > 0 => format!("{}:{}", l.file, l.line),
        _ => "<builtin>".to_string(),
    }
}

/// Prints the first command's echo when the job starts (in the thread that starts jobs, so
/// echoes appear in start order, as make prints them); returns whether it printed.
pub fn echo_first(job: &Job) -> bool {
    match job.lines.first() {
        Some(line) if line.echo => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", line.command);
            let _ = out.flush();
            true
        }
        _ => false,
    }
}

/// Runs `job` to completion on the calling thread (`first_echoed`: see [`echo_first`]).
/// `jobserver`: descriptors that recursive commands inherit.
pub fn run_job(job: &Job, prefix: &Prefix, pids: &Pids, first_echoed: bool, jobserver: Option<(i32, i32)>) -> JobResult {
    for (i, line) in job.lines.iter().enumerate() {
        if line.echo && !(i == 0 && first_echoed) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", line.command);
            let _ = out.flush();
        }
        if !line.execute {
            continue;
        }
        if let Some(sig) = crate::signals::pending() {
            // make starts nothing after a fatal signal.
            return JobResult::Failed { line: i, exit: ExitKind::Signal(sig) };
        }
        let fds = if line.recursive { jobserver } else { None };
        let exit = run_command(job, &line.command, prefix, pids, fds);
        let Some(exit) = exit else { continue };
        if line.ignore_errors {
            if !job.silent {
                let what = match exit {
                    ExitKind::Code(c) => format!("Error {c}"),
                    ExitKind::Signal(s) => signal_text(s),
                };
                let _ = std::io::stdout().flush();
                eprintln!("{}: [{}: {}] {} (ignored)", prefix.0, where_of(line), job.target, what);
            }
            continue;
        }
        return JobResult::Failed { line: i, exit };
    }
    JobResult::Success
}

fn signal_text(sig: i32) -> String {
    match sig {
        2 => "Interrupt".into(),
        9 => "Killed".into(),
        15 => "Terminated".into(),
        11 => "Segmentation fault".into(),
        n => format!("Signal {n}"),
    }
}

/// Shell builtins and keywords make never runs without a shell.
const SH_CMDS: &[&str] = &[
    ".", ":", "alias", "bg", "break", "case", "cd", "command", "continue", "eval", "exec", "exit", "export", "fc",
    "fg", "for", "getopts", "hash", "if", "jobs", "login", "logout", "read", "readonly", "return", "set", "shift",
    "test", "trap", "type", "ulimit", "umask", "unalias", "unset", "wait", "while",
];

/// make's fast path: a simple command under the default shell runs directly, without `sh -c`
/// (which changes the message when the program does not exist).
fn direct_argv<'a>(job: &Job, command: &'a str) -> Option<Vec<&'a str>> {
    if job.shell != "/bin/sh" || !(job.shell_flags == "-c" || job.shell_flags == "-ec") {
        return None;
    }
    const SPECIAL: &str = "#;\"*?[]&|<>(){}$`^~!\\'\n=";
    if command.chars().any(|c| SPECIAL.contains(c)) {
        return None;
    }
    let words: Vec<&str> = command.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
    let first = words.first()?;
    if SH_CMDS.contains(first) {
        return None;
    }
    Some(words)
}

/// The executable `program` names through the PATH of `env` (as execvp would find it).
fn resolve_in_path(program: &str, env: &[(String, String)]) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return None;
    }
    let path = env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str())?;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = format!("{dir}/{program}");
        if let Ok(meta) = std::fs::metadata(&cand) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Some(cand);
            }
        }
    }
    None
}

/// Runs one command; `None` on success, else how it failed.
fn run_command(job: &Job, command: &str, prefix: &Prefix, pids: &Pids, fds: Option<(i32, i32)>) -> Option<ExitKind> {
    let direct = direct_argv(job, command);
    let program = match &direct {
        Some(words) => words[0],
        None => job.shell.as_str(),
    };
    // Resolving the program here (not in the child) lets std use posix_spawn instead of fork.
    let resolved = if direct.is_some() { resolve_in_path(program, &job.env) } else { None };
    let mut c = Command::new(resolved.as_deref().unwrap_or(program));
    match &direct {
        Some(words) => {
            if resolved.is_some() {
                c.arg0(program);
            }
            c.args(&words[1..]);
        }
        None => {
            for f in job.shell_flags.split_whitespace() {
                c.arg(f);
            }
            c.arg(command);
        }
    }
    c.env_clear();
    c.envs(job.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    c.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    if let Some((r, w)) = fds {
        #[allow(unsafe_code)]
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which
        // is async-signal-safe; it clears close-on-exec so a sub-make inherits the jobserver.
        unsafe {
            c.pre_exec(move || {
                for fd in [r, w] {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                    }
                }
                Ok(())
            });
        }
    }
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            let _ = std::io::stdout().flush();
            let reason = match e.kind() {
                std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
                std::io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
                _ => e.to_string(),
            };
            eprintln!("{}: {program}: {reason}", prefix.0);
            return Some(ExitKind::Code(127));
        }
    };
    if let Ok(mut p) = pids.lock() {
        p.insert(job.id, child.id());
    }
    // A SIGTERM that arrived while this command was starting must reach it too.
    if crate::signals::pending() == Some(libc::SIGTERM) {
        crate::signals::kill(child.id(), libc::SIGTERM);
    }
    let status = child.wait();
    if let Ok(mut p) = pids.lock() {
        p.remove(&job.id);
    }
    match status {
        Ok(s) if s.success() => None,
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Some(ExitKind::Code(code)),
            (None, Some(sig)) => Some(ExitKind::Signal(sig)),
            _ => Some(ExitKind::Code(1)),
        },
        Err(_) => Some(ExitKind::Code(127)),
    }
}
