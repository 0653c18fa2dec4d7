//! The build half: the target graph over a `Database`, implicit-rule search, directory search,
//! make's up-to-date decisions, and the build `Plan`, a state machine that hands out jobs.
//!
//! The Plan follows GNU make 4.3's `remake.c` closely (update_file / check_dep /
//! notice_finished_file), because the order in which make looks at files decides which recipes
//! run and in which order their output appears. It performs no I/O of its own beyond `Host`
//! queries (mtimes, directory listings): deleting files, touching and running recipes are
//! `Event`s and `Job`s for the executor. See docs in `plan.rs` for the driving protocol.

mod dircache;
mod events;
mod file;
mod graph;
mod hashorder;
mod implicit;
mod inspect;
mod job;
mod pattern;
mod plan;
mod remake;
mod start;
mod update;

pub use events::Event;
pub use inspect::{JobGraph, PrereqView};
pub use job::{ExitKind, Job, JobId, JobLine, JobResult};
pub use plan::{Outcome, Plan, PlanOptions};

#[cfg(test)]
mod tests;
