//! Running one job on this machine: each command through `SHELL .SHELLFLAGS` (one shell for the
//! whole recipe under .ONESHELL), echoing as make does, `-`/-i failures reported `(ignored)`.
//! Jobs run on their own threads; the pids of running commands are shared so a fatal signal can
//! stop them.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use rmake_makefile::build::{ExitKind, Job, JobId, JobResult};

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

/// Runs `job` to completion on the calling thread.
pub fn run_job(job: &Job, prefix: &Prefix, pids: &Pids) -> JobResult {
    for (i, line) in job.lines.iter().enumerate() {
        if line.echo {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", line.command);
            let _ = out.flush();
        }
        if !line.execute {
            continue;
        }
        let exit = run_command(job, &line.command, pids);
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

/// Runs one command; `None` on success, else how it failed.
fn run_command(job: &Job, command: &str, pids: &Pids) -> Option<ExitKind> {
    let mut c = Command::new(&job.shell);
    for f in job.shell_flags.split_whitespace() {
        c.arg(f);
    }
    c.arg(command);
    c.env_clear();
    c.envs(job.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    c.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("{}: {}", job.shell, e);
            return Some(ExitKind::Code(127));
        }
    };
    if let Ok(mut p) = pids.lock() {
        p.insert(job.id, child.id());
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
