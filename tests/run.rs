//! Running a program to completion (or to a timeout) with its output captured in files, so a
//! chatty child never blocks on a full pipe; the exit status as make reports it.

use std::fmt;
use std::io::{Read, Seek};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Code(c) => write!(f, "exit {c}"),
            Status::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

impl From<std::process::ExitStatus> for Status {
    fn from(s: std::process::ExitStatus) -> Status {
        match (s.code(), s.signal()) {
            (Some(c), _) => Status::Code(c),
            (None, Some(sig)) => Status::Signal(sig),
            (None, None) => Status::Code(-1),
        }
    }
}

/// What a finished process printed and how it ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit status.
    pub status: Status,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
    /// Whether it was killed for running past its timeout.
    pub timed_out: bool,
}

/// A process started by [`spawn`], in its own process group (its pid is the group id).
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdout: std::fs::File,
    stderr: std::fs::File,
    started: Instant,
    finished: bool,
}

/// Starts `cmd` with stdin closed and stdout/stderr going to anonymous files, as the leader of a
/// new process group (so the whole job can be signalled like a terminal does).
pub fn spawn(cmd: Command) -> Result<Running> {
    spawn_with(cmd, false)
}

/// Like [`spawn`]; with `merged`, stderr goes to the same open file as stdout (one shared
/// offset, like a terminal), so the outcome's `stdout` shows how the two interleave and its
/// `stderr` is empty.
pub fn spawn_with(mut cmd: Command, merged: bool) -> Result<Running> {
    let stdout = tempfile::tempfile().context("creating a file for stdout")?;
    let stderr = tempfile::tempfile().context("creating a file for stderr")?;
    let err_target = if merged { &stdout } else { &stderr };
    cmd.stdin(Stdio::null())
        .stdout(stdout.try_clone().context("cloning stdout file")?)
        .stderr(err_target.try_clone().context("cloning stderr file")?)
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    Ok(Running {
        child,
        stdout,
        stderr,
        started: Instant::now(),
        finished: false,
    })
}

fn read_all(f: &mut std::fs::File) -> String {
    let mut buf = Vec::new();
    if f.rewind().is_ok() {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

impl Running {
    /// Its pid (and process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time since it started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether it has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends `sig` to its whole process group.
    pub fn signal_group(&self, sig: &str) -> Result<()> {
        crate::procs::signal(self.pid(), sig, true)
    }

    /// Waits for it up to `timeout`; past that its process group is SIGKILLed.
    pub fn wait(mut self, timeout: Duration) -> Result<Outcome> {
        let deadline = self.started + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(s) = self.child.try_wait().context("waiting for child")? {
                break s;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                let _ = crate::procs::signal(self.pid(), "KILL", true);
                break self.child.wait().context("waiting for killed child")?;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.finished = true;
        let elapsed = self.started.elapsed();
        Ok(Outcome {
            status: status.into(),
            stdout: read_all(&mut self.stdout),
            stderr: read_all(&mut self.stderr),
            elapsed,
            timed_out,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished && !self.has_exited() {
            let _ = crate::procs::signal(self.pid(), "KILL", true);
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub fn run(cmd: Command, timeout: Duration) -> Result<Outcome> {
    spawn(cmd)?.wait(timeout)
}

/// [`run`] with stderr merged into stdout (see [`spawn_with`]).
pub fn run_with(cmd: Command, timeout: Duration, merged: bool) -> Result<Outcome> {
    spawn_with(cmd, merged)?.wait(timeout)
}
