//! What make does to run recipe lines, shared by the client's local mode and the worker: the
//! shell-less fast path ([`direct`]), the command of one line ([`command`]), and whole recipes
//! with captured, ordered output, timeouts and cancellation ([`recipe`]). Synchronous: no tokio.
#![warn(missing_docs)]

pub mod cancel;
mod capture;
pub mod command;
pub mod direct;
pub mod recipe;

pub use cancel::CancelHandle;
pub use capture::StreamKind;
pub use command::{line_command, resolve_in_path, spawn_error_text, LineCommand};
pub use recipe::{
    run_recipe, ExecError, Interruption, Line, LineFailure, Recipe, RecipeOutput, RunOptions,
    Segment,
};
