//! The GNU Make language: parsing and evaluating Makefiles, and planning builds. Pure: no I/O but through `Host`.
//!
//! The language half (this crate's root modules) reads makefiles into a [`Database`]: variables with
//! make's flavors and origins, rules as written, pattern rules (user, converted suffix rules, built-in),
//! special targets and vpath directives. The build half (`build`) plans builds over it.
//!
//! Reading follows GNU make 4.3's `read.c` line by line rather than building an AST first, because
//! make's language is defined by that interleaving: conditionals, assignments and `$(eval)` change
//! how the following lines are read. [`lexer`] joins physical lines; `eval` (the reader) handles each
//! logical line as make's `eval()` does; `expand` and `functions` implement references and the
//! built-in functions. Messages and locations are make's (recipe lines are numbered from the start of
//! their recipe, `$(eval)` text keeps the line of the call, as make reports them).
//!
//! Deeply recursive makefiles (`$(call)` recursion over long lists) need stack: expansion stops with an
//! error after about 6 MiB, so run loading and recipe expansion on a thread with at least 8 MiB.
#![warn(missing_docs)]

pub mod build;
mod builtin;
pub mod db;
pub mod error;
mod eval;
mod expand;
mod functions;
pub mod glob;
pub mod host;
pub mod lexer;
pub mod loc;
pub mod pattern;
mod varorder;
pub mod vars;

pub use db::{
    AutoVars, Database, LoadOptions, LoadReport, MakefileRead, PatternRule, Recipe, RecipeLine,
    Rule, Scope, Specials, VpathDirective,
};
pub use error::{Error, ErrorKind};
pub use host::{Host, MemHost, Mtime, ShellResult};
pub use loc::Loc;
pub use vars::{Export, Flavor, Origin, Variable};
