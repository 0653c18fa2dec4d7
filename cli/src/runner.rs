//! Running one job on this machine: each command through `SHELL .SHELLFLAGS` (one shell for the
//! whole recipe under .ONESHELL), echoing as make does, `-`/-i failures reported `(ignored)`.
//! Jobs run on their own threads; the pids of running commands are shared so a fatal signal can
//! stop them.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
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

pub(crate) fn where_of(line: &rmake_makefile::build::JobLine) -> String {
    match &line.loc {
        Some(l) if l.line > 0 => format!("{}:{}", l.file, l.line),
        _ => "<builtin>".to_string(),
    }
}

/// `--output-sync` (`-O`): how a job's output is grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Output goes straight through.
    None,
    /// Each command's output is printed when the command ends.
    Line,
    /// Each job's output is printed when the job ends (recursive commands go straight through).
    Target,
    /// Like `Target`, and recursive commands (whole sub-makes) are grouped too.
    Recurse,
}

impl SyncMode {
    /// From `-O`'s argument.
    pub fn parse(arg: Option<&str>) -> SyncMode {
        match arg {
            Some("line") => SyncMode::Line,
            Some("target") => SyncMode::Target,
            Some("recurse") => SyncMode::Recurse,
            _ => SyncMode::None,
        }
    }

    fn syncs(self, recursive: bool) -> bool {
        match self {
            SyncMode::None => false,
            SyncMode::Recurse => true,
            SyncMode::Line | SyncMode::Target => !recursive,
        }
    }
}

/// What every job of one executor shares.
#[derive(Clone)]
pub struct RunCtx {
    /// Message prefix.
    pub prefix: Prefix,
    /// Running commands' pids.
    pub pids: Pids,
    /// Jobserver descriptors for recursive commands.
    pub jobserver: Option<(i32, i32)>,
    /// `-O`
    pub sync: SyncMode,
    /// With `-w` and output sync, each dumped block is wrapped in Entering/Leaving lines.
    pub directory: Option<Arc<str>>,
}

/// Serialises dumps of synchronised output.
static DUMP: Mutex<()> = Mutex::new(());

/// Where a job's output goes: straight through, or into buffers dumped as one block.
struct Sink<'a> {
    ctx: &'a RunCtx,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Sink<'_> {
    fn stdout_line(&mut self, buffered: bool, text: &str) {
        if buffered {
            self.out.extend_from_slice(text.as_bytes());
            self.out.push(b'\n');
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    fn stderr_line(&mut self, buffered: bool, text: &str) {
        if buffered {
            self.err.extend_from_slice(text.as_bytes());
            self.err.push(b'\n');
        } else {
            let _ = std::io::stdout().flush();
            eprintln!("{text}");
        }
    }

    fn dump(&mut self) {
        if self.out.is_empty() && self.err.is_empty() {
            return;
        }
        let _guard = DUMP.lock();
        let wrap = self.ctx.sync != SyncMode::Recurse && self.ctx.directory.is_some();
        let mut out = std::io::stdout().lock();
        if let (true, Some(d)) = (wrap, &self.ctx.directory) {
            let _ = writeln!(out, "{}: Entering directory '{d}'", self.ctx.prefix.0);
        }
        let _ = out.write_all(&self.out);
        let _ = out.flush();
        let _ = std::io::stderr().write_all(&self.err);
        if let (true, Some(d)) = (wrap, &self.ctx.directory) {
            let _ = writeln!(out, "{}: Leaving directory '{d}'", self.ctx.prefix.0);
        }
        let _ = out.flush();
        self.out.clear();
        self.err.clear();
    }
}

/// Prints the first command's echo when the job starts (in the thread that starts jobs, so
/// echoes appear in start order, as make prints them); returns whether it printed. Under
/// output sync the echo belongs to the job's block instead.
pub fn echo_first(job: &Job, sync: SyncMode) -> bool {
    match job.lines.first() {
        Some(line) if line.echo && !sync.syncs(line.recursive) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", line.command);
            let _ = out.flush();
            true
        }
        _ => false,
    }
}

/// Runs `job` to completion on the calling thread (`first_echoed`: see [`echo_first`]).
/// `expansion`: what expanding the recipe printed, kept for the job's block under `-O`.
pub fn run_job(job: &Job, ctx: &RunCtx, first_echoed: bool, expansion: (Vec<u8>, Vec<u8>)) -> JobResult {
    let mut sink = Sink { ctx, out: expansion.0, err: expansion.1 };
    let result = run_lines(job, ctx, first_echoed, &mut sink);
    sink.dump();
    result
}

fn run_lines(job: &Job, ctx: &RunCtx, first_echoed: bool, sink: &mut Sink<'_>) -> JobResult {
    for (i, line) in job.lines.iter().enumerate() {
        let buffered = ctx.sync.syncs(line.recursive);
        if line.echo && !(i == 0 && first_echoed) {
            sink.stdout_line(buffered, &line.command);
        }
        if !line.execute {
            continue;
        }
        if let Some(sig) = crate::signals::pending() {
            // make starts nothing after a fatal signal.
            return JobResult::Failed { line: i, exit: ExitKind::Signal(sig) };
        }
        let fds = if line.recursive { ctx.jobserver } else { None };
        let exit = run_command(job, &line.command, ctx, fds, buffered.then_some(&mut *sink));
        if ctx.sync == SyncMode::Line {
            sink.dump();
        }
        let Some(exit) = exit else { continue };
        if line.ignore_errors {
            if !job.silent {
                let what = match exit {
                    ExitKind::Code(c) => format!("Error {c}"),
                    ExitKind::Signal(s) => signal_text(s),
                };
                let msg = format!("{}: [{}: {}] {} (ignored)", ctx.prefix.0, where_of(line), job.target, what);
                sink.stderr_line(buffered, &msg);
            }
            continue;
        }
        return JobResult::Failed { line: i, exit };
    }
    JobResult::Success
}

pub(crate) fn signal_text(sig: i32) -> String {
    match sig {
        2 => "Interrupt".into(),
        9 => "Killed".into(),
        15 => "Terminated".into(),
        11 => "Segmentation fault".into(),
        n => format!("Signal {n}"),
    }
}

/// Runs one command; `None` on success, else how it failed.
fn run_command(
    job: &Job,
    command: &str,
    ctx: &RunCtx,
    fds: Option<(i32, i32)>,
    sink: Option<&mut Sink<'_>>,
) -> Option<ExitKind> {
    let (prefix, pids) = (&ctx.prefix, &ctx.pids);
    // The command as make builds it: the shell-less fast path or SHELL .SHELLFLAGS (rmake-exec).
    let rmake_exec::LineCommand { command: mut c, program, .. } =
        rmake_exec::line_command(command, &job.shell, &job.shell_flags, &job.env);
    c.stdin(Stdio::inherit());
    if sink.is_some() {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else {
        c.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    }
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
            let msg = format!("{}: {}", prefix.0, rmake_exec::spawn_error_text(&program, &e));
            match sink {
                Some(sink) => sink.stderr_line(true, &msg),
                None => {
                    let _ = std::io::stdout().flush();
                    eprintln!("{msg}");
                }
            }
            return Some(ExitKind::Code(127));
        }
    };
    if let Ok(mut p) = pids.lock() {
        p.insert(job.id, child.id());
    }
    let child_pid = child.id();
    crate::signals::track(child_pid);
    // A SIGTERM that arrived while this command was starting must reach it too.
    if crate::signals::pending() == Some(libc::SIGTERM) {
        crate::signals::kill(child.id(), libc::SIGTERM);
    }
    let status = match sink {
        Some(sink) => child.wait_with_output().map(|o| {
            sink.out.extend_from_slice(&o.stdout);
            sink.err.extend_from_slice(&o.stderr);
            o.status
        }),
        None => child.wait(),
    };
    crate::signals::untrack(child_pid);
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
