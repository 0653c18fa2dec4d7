//! What the Plan asks its executor to show or do besides running jobs: make's messages, in
//! order, and the file operations make performs itself (deleting, touching).

use crate::host::Mtime;

/// One thing for the executor to print or do, in the order the Plan produced them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A line for standard output, without the newline (`rm a.o b.o`, `touch x`).
    Stdout(String),
    /// A message make prints with its program-name prefix on standard error:
    /// the text after `rmake-remote: ` (e.g. `*** [Makefile:3: x] Error 1`).
    Error(String),
    /// A message make prints with its program-name prefix on standard output
    /// (`Nothing to be done for 'all'.`).
    Message(String),
    /// A warning or trace line printed as is on standard error (`Makefile:3: ...`).
    Stderr(String),
    /// Delete a target after a failed or interrupted recipe (`.DELETE_ON_ERROR`): delete `path`
    /// only if it is a regular file whose mtime is no longer `before`, and then print
    /// `*** Deleting file 'path'` as an `Error`.
    DeleteTarget {
        /// The file.
        path: String,
        /// Its mtime before the recipe ran.
        before: Option<Mtime>,
    },
    /// Remove intermediate files at the end of the build; print `rm a b` (unless `silent`) for
    /// those that were removed.
    RemoveIntermediates {
        /// The files, in make's order.
        paths: Vec<String>,
        /// `-s`: remove without printing.
        silent: bool,
        /// `-n`: print only.
        dry_run: bool,
    },
    /// `-t` touched `path` through `Host::touch` (or, under `-n`, would): print `touch path`
    /// unless `silent`. A failure follows as an `Error`.
    Touch {
        /// The file.
        path: String,
        /// `-s`/`.SILENT`
        silent: bool,
        /// `-n` with `-t`: print only.
        dry_run: bool,
    },
}
