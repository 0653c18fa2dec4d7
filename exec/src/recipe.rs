//! Running a whole recipe in a directory as make would: line by line (or as one script under
//! `.ONESHELL`), output captured with the order of its segments, stopping at the first failing
//! line that is not ignored, with a timeout and a cancel handle that kill each line's whole
//! process tree.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::cancel::{signal_group, CancelHandle};
use crate::capture::{spawn_reader, spawn_waiter, Event, StreamKind};
use crate::command::{line_command, spawn_error_text};

/// One recipe line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The command as the shell gets it (make's `@ - +` prefixes already removed).
    pub command: String,
    /// A failure does not stop the recipe (`-`, `-i`, `.IGNORE`).
    pub ignore_errors: bool,
}

/// A recipe to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The lines, in order.
    pub lines: Vec<Line>,
    /// `$(SHELL)`, possibly with words of its own.
    pub shell: String,
    /// `$(.SHELLFLAGS)`.
    pub shell_flags: String,
    /// `.ONESHELL`: all lines joined with newlines run as one command; the first line's
    /// `ignore_errors` applies to it.
    pub oneshell: bool,
    /// The whole environment of the commands.
    pub env: Vec<(String, String)>,
    /// The directory the commands run in.
    pub dir: PathBuf,
}

/// How a run may be stopped from outside.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Longest the whole recipe may run; then the running line's process group is killed.
    pub timeout: Option<Duration>,
    /// Cancels the run from another thread.
    pub cancel: Option<CancelHandle>,
    /// Time between `SIGTERM` and `SIGKILL` when a line is stopped, and how long output pipes
    /// held open by leftover processes are waited for after a line exits.
    pub kill_grace: Duration,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            timeout: None,
            cancel: None,
            kill_grace: Duration::from_secs(2),
        }
    }
}

/// The next `len` bytes of `stream` were written while line `line` ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index of the line (0 under `.ONESHELL`).
    pub line: u32,
    /// The stream.
    pub stream: StreamKind,
    /// Bytes.
    pub len: u64,
}

/// A line that ended unsuccessfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFailure {
    /// Index of the line.
    pub line: u32,
    /// Its exit status, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// It could not be started: `prog: No such file or directory` (then `code` is 127).
    pub spawn_error: Option<String>,
}

/// Why a run ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// The cancel handle was pulled.
    Cancelled,
    /// The timeout passed.
    TimedOut,
}

/// What a recipe did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipeOutput {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// How the two interleave, in arrival order (adjacent pieces of one line and stream merged).
    pub segments: Vec<Segment>,
    /// Every line that failed, ignored ones included; when `exit_code` is not 0, the last one
    /// stopped the recipe.
    pub failures: Vec<LineFailure>,
    /// Lines started (under `.ONESHELL`, all of them once the script started).
    pub lines_run: u32,
    /// 0, or the stopping line's status (128 + signal when killed; 128 + SIGTERM for a run
    /// interrupted between lines).
    pub exit_code: i32,
    /// Set when a cancel or the timeout stopped the run.
    pub interrupted: Option<Interruption>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// A run could not be carried out at all (helper threads could not be started).
#[derive(Debug)]
pub struct ExecError {
    /// What was being done.
    pub what: &'static str,
    /// The OS error.
    pub source: std::io::Error,
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Longest wait for an event before deadlines are checked again.
const TICK: Duration = Duration::from_millis(100);

/// Runs `recipe` to its end (or until stopped) on the calling thread.
pub fn run_recipe(recipe: &Recipe, opts: &RunOptions) -> Result<RecipeOutput, ExecError> {
    let start = Instant::now();
    let mut run = Run {
        recipe,
        opts,
        deadline: opts.timeout.map(|t| start + t),
        out: RecipeOutput::default(),
    };
    let units: Vec<(String, bool)> = if recipe.oneshell {
        let script: Vec<&str> = recipe.lines.iter().map(|l| l.command.as_str()).collect();
        let ignore = recipe.lines.first().is_some_and(|l| l.ignore_errors);
        if recipe.lines.is_empty() {
            Vec::new()
        } else {
            vec![(script.join("\n"), ignore)]
        }
    } else {
        recipe
            .lines
            .iter()
            .map(|l| (l.command.clone(), l.ignore_errors))
            .collect()
    };
    for (index, (command, ignore)) in units.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        if let Some(why) = run.interruption() {
            run.out.interrupted = Some(why);
            break;
        }
        run.out.lines_run = if recipe.oneshell {
            u32::try_from(recipe.lines.len()).unwrap_or(u32::MAX)
        } else {
            index + 1
        };
        let Some(failure) = run.line(index, command)? else {
            continue;
        };
        let stop_code = failure
            .code
            .or(failure.signal.map(|s| 128 + s))
            .unwrap_or(1);
        run.out.failures.push(failure);
        if *ignore && run.out.interrupted.is_none() {
            continue;
        }
        run.out.exit_code = stop_code;
        break;
    }
    if run.out.interrupted.is_some() && run.out.exit_code == 0 {
        // Stopped between lines, or a line that shrugged off SIGTERM: still not a success.
        run.out.exit_code = 128 + libc::SIGTERM;
    }
    run.out.elapsed = start.elapsed();
    Ok(run.out)
}

struct Run<'a> {
    recipe: &'a Recipe,
    opts: &'a RunOptions,
    deadline: Option<Instant>,
    out: RecipeOutput,
}

impl Run<'_> {
    /// Whether the run must stop now.
    fn interruption(&self) -> Option<Interruption> {
        if self
            .opts
            .cancel
            .as_ref()
            .is_some_and(CancelHandle::is_cancelled)
        {
            return Some(Interruption::Cancelled);
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Some(Interruption::TimedOut),
            _ => None,
        }
    }

    fn record(&mut self, line: u32, stream: StreamKind, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match stream {
            StreamKind::Stdout => self.out.stdout.extend_from_slice(data),
            StreamKind::Stderr => self.out.stderr.extend_from_slice(data),
        }
        let len = data.len() as u64;
        match self.out.segments.last_mut() {
            Some(s) if s.line == line && s.stream == stream => s.len += len,
            _ => self.out.segments.push(Segment { line, stream, len }),
        }
    }

    /// Runs one line; `None` when it succeeded.
    fn line(&mut self, index: u32, text: &str) -> Result<Option<LineFailure>, ExecError> {
        let r = self.recipe;
        let mut lc = line_command(text, &r.shell, &r.shell_flags, &r.env);
        lc.command
            .current_dir(&r.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = match spawn(&mut lc.command) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(line = index, program = %lc.program, error = %e, "could not start");
                return Ok(Some(LineFailure {
                    line: index,
                    code: Some(127),
                    signal: None,
                    spawn_error: Some(spawn_error_text(&lc.program, &e)),
                }));
            }
        };
        let pgid = i32::try_from(child.id()).unwrap_or(0);
        if let Some(c) = &self.opts.cancel {
            c.set_running(Some(pgid));
        }
        let (tx, rx) = mpsc::channel();
        let setup = (|| {
            if let Some(o) = child.stdout.take() {
                spawn_reader(o, StreamKind::Stdout, tx.clone())?;
            }
            if let Some(e) = child.stderr.take() {
                spawn_reader(e, StreamKind::Stderr, tx.clone())?;
            }
            spawn_waiter(child, tx)
        })();
        if let Err(source) = setup {
            signal_group(pgid, libc::SIGKILL);
            if let Some(c) = &self.opts.cancel {
                c.set_running(None);
            }
            return Err(ExecError {
                what: "starting output capture threads",
                source,
            });
        }
        let status = self.supervise(index, pgid, &rx);
        if let Some(c) = &self.opts.cancel {
            c.set_running(None);
            // The handle's SIGTERM may have ended the line before the loop saw the flag.
            if c.is_cancelled() && self.out.interrupted.is_none() {
                self.out.interrupted = Some(Interruption::Cancelled);
            }
        }
        Ok(failure_of(index, status))
    }

    /// Drains the line's events until it exited and its pipes closed, enforcing cancel,
    /// timeout and the grace periods. Returns its status (`None` if waiting failed).
    fn supervise(
        &mut self,
        index: u32,
        pgid: i32,
        rx: &mpsc::Receiver<Event>,
    ) -> Option<ExitStatus> {
        let grace = self.opts.kill_grace;
        let mut status: Option<Option<ExitStatus>> = None;
        let mut exited_at: Option<Instant> = None;
        let (mut out_eof, mut err_eof) = (false, false);
        let mut term_at: Option<Instant> = None;
        let mut killed = false;
        loop {
            if status.is_some() && out_eof && err_eof {
                break;
            }
            let now = Instant::now();
            if status.is_none() && self.out.interrupted.is_none() {
                if let Some(why) = self.interruption() {
                    tracing::debug!(line = index, ?why, "stopping recipe line");
                    self.out.interrupted = Some(why);
                    signal_group(pgid, libc::SIGTERM);
                    term_at = Some(now);
                }
            }
            if let Some(t) = term_at {
                if !killed && now >= t + grace {
                    signal_group(pgid, libc::SIGKILL);
                    killed = true;
                }
            }
            if let Some(t) = exited_at {
                // The line ended but something it started still holds the pipes open.
                if !killed && now >= t + grace {
                    tracing::warn!(
                        line = index,
                        "recipe line exited but its output stayed open; killing its process group"
                    );
                    signal_group(pgid, libc::SIGKILL);
                    killed = true;
                }
                if now >= t + grace.saturating_mul(2) {
                    tracing::warn!(
                        line = index,
                        "giving up on output held open by a process outside the line's group"
                    );
                    break;
                }
            }
            match rx.recv_timeout(TICK) {
                Ok(Event::Data(stream, data)) => self.record(index, stream, &data),
                Ok(Event::Eof(StreamKind::Stdout)) => out_eof = true,
                Ok(Event::Eof(StreamKind::Stderr)) => err_eof = true,
                Ok(Event::Exited(st)) => {
                    status = Some(
                        st.map_err(|e| tracing::warn!(error = %e, "waiting for recipe line"))
                            .ok(),
                    );
                    exited_at = Some(Instant::now());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        status.flatten()
    }
}

/// Spawns `command`, retrying a few times when the program is "text file busy": an executable
/// just written by this process can be held open for writing for an instant by a child another
/// thread is forking, and exec refuses it until that child has exec'd in turn.
fn spawn(command: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let mut delay = Duration::from_millis(5);
    for _ in 0..6 {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                tracing::debug!(?delay, "program busy; retrying");
                std::thread::sleep(delay);
                delay *= 2;
            }
            other => return other,
        }
    }
    command.spawn()
}

/// The failure record of a line that ended with `status` (`None`: unknown, counted as 1).
fn failure_of(index: u32, status: Option<ExitStatus>) -> Option<LineFailure> {
    let Some(status) = status else {
        return Some(LineFailure {
            line: index,
            code: Some(1),
            signal: None,
            spawn_error: None,
        });
    };
    if status.success() {
        return None;
    }
    Some(LineFailure {
        line: index,
        code: status.code(),
        signal: status.signal(),
        spawn_error: None,
    })
}
