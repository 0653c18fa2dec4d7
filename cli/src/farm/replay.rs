//! Printing a remote result the way make prints a recipe it ran: each line's echo, then what the
//! line wrote to stdout and stderr in the order it wrote it, make's `(ignored)` messages; and
//! the job result the `Plan` gets.

use std::io::Write;

use rmake_makefile::build::{ExitKind, Job, JobResult};
use rmake_proto::{ActionResult, LineExit, Stream};

use crate::runner::{signal_text, where_of, Prefix};

/// The two output streams of a result, fetched.
pub struct Logs {
    /// What the recipe wrote to stdout.
    pub stdout: Vec<u8>,
    /// What it wrote to stderr.
    pub stderr: Vec<u8>,
}

fn exit_of(f: &LineExit) -> ExitKind {
    match (f.signal, f.code) {
        (Some(s), _) => ExitKind::Signal(s),
        (None, Some(c)) => ExitKind::Code(c),
        (None, None) => ExitKind::Code(1),
    }
}

/// Prints `result` as make would have printed the job while running it (`first_echoed`: the
/// first line's echo was printed when the job started) and returns what the `Plan` is told.
/// Everything is written under one lock so a job's output stays together.
pub fn replay(job: &Job, result: &ActionResult, logs: &Logs, prefix: &Prefix, first_echoed: bool) -> JobResult {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let (mut o, mut e) = (0usize, 0usize);
    let lines_run = (result.lines_run as usize).min(job.lines.len().max(1));
    let mut outcome = JobResult::Success;
    for i in 0..lines_run {
        if let Some(line) = job.lines.get(i) {
            if line.echo && !(i == 0 && first_echoed) {
                let _ = writeln!(out, "{}", line.command);
            }
        }
        for seg in result.segments.iter().filter(|s| s.line as usize == i) {
            let len = seg.len as usize;
            match seg.stream {
                Stream::Stdout => {
                    let end = (o + len).min(logs.stdout.len());
                    let _ = out.write_all(&logs.stdout[o..end]);
                    o = end;
                }
                Stream::Stderr => {
                    let _ = out.flush();
                    let end = (e + len).min(logs.stderr.len());
                    let _ = err.write_all(&logs.stderr[e..end]);
                    e = end;
                }
            }
        }
        let Some(failure) = result.failures.iter().find(|f| f.line as usize == i) else { continue };
        let _ = out.flush();
        if let Some(msg) = &failure.spawn_error {
            let _ = writeln!(err, "{}: {msg}", prefix.0);
        }
        let line = job.lines.get(i);
        let ignored = line.is_some_and(|l| l.ignore_errors);
        let exit = exit_of(failure);
        if ignored {
            if !job.silent {
                let what = match exit {
                    ExitKind::Code(c) => format!("Error {c}"),
                    ExitKind::Signal(s) => signal_text(s),
                };
                let place = line.map(where_of).unwrap_or_default();
                let _ = writeln!(err, "{}: [{place}: {}] {what} (ignored)", prefix.0, job.target);
            }
            continue;
        }
        outcome = JobResult::Failed { line: i, exit };
        break;
    }
    // Whatever the segments did not account for (an old worker, a truncated log).
    if o < logs.stdout.len() {
        let _ = out.write_all(&logs.stdout[o..]);
    }
    let _ = out.flush();
    if e < logs.stderr.len() {
        let _ = err.write_all(&logs.stderr[e..]);
    }
    if result.exit_code != 0 && outcome == JobResult::Success {
        let line = result.failures.last().map_or(0, |f| f.line as usize);
        let exit = result.failures.last().map_or(ExitKind::Code(result.exit_code), exit_of);
        outcome = JobResult::Failed { line, exit };
    }
    outcome
}
