//! A job: the expanded recipe of one target, ready for an executor, and what it reports back.

use crate::loc::Loc;

/// Identifies a job within one Plan.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u32);

/// One command of a recipe, after expansion, with make's per-line flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLine {
    /// The command as the shell gets it (prefix characters and leading blanks removed).
    pub command: String,
    /// Echo the command before running it (no `@`, no `-s`, no `.SILENT`; always under `-n`).
    pub echo: bool,
    /// Run it (always, except under `-n`/`-t`/`-q` for lines without `+` or `$(MAKE)`).
    pub execute: bool,
    /// `-` prefix, `-i` or `.IGNORE`: a failure is reported as `(ignored)` and the recipe goes on.
    pub ignore_errors: bool,
    /// `+` or a `$(MAKE)` reference.
    pub recursive: bool,
    /// The makefile line it came from (for `*** [Makefile:3: x] Error 1`).
    pub loc: Option<Loc>,
}

/// Everything an executor needs to run one target's recipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// This job's id, to report its result with.
    pub id: JobId,
    /// The target being made (`$@`), as make names it in messages.
    pub target: String,
    /// The commands, in order.
    pub lines: Vec<JobLine>,
    /// The whole environment of the commands.
    pub env: Vec<(String, String)>,
    /// `$(SHELL)` for this target.
    pub shell: String,
    /// `$(.SHELLFLAGS)` for this target.
    pub shell_flags: String,
    /// `.ONESHELL`: run all lines in one shell invocation (the executor joins them).
    pub oneshell: bool,
    /// `-s`/`.SILENT` is in force for messages like `(ignored)`.
    pub silent: bool,
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// Exited with this non-zero status.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// What an executor reports for a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobResult {
    /// Every command succeeded (or failed with errors ignored).
    Success,
    /// The command at `line` (index into `Job::lines`) failed and stopped the recipe.
    Failed {
        /// Index of the failing line.
        line: usize,
        /// How it ended.
        exit: ExitKind,
    },
}
