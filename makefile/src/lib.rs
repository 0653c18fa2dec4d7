//! The GNU Make language: parsing and evaluating Makefiles, and planning builds. Pure: no I/O but through `Host`.
//!
//! The language half (this crate's root modules) reads makefiles into a [`Database`]: variables with
//! make's flavors and origins, rules as written, pattern rules (user, converted suffix rules, built-in),
//! special targets and vpath directives. The build half (`build`) plans builds over it.
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
pub mod vars;

pub use db::{
    AutoVars, Database, LoadOptions, LoadReport, MakefileRead, PatternRule, Recipe, RecipeLine,
    Rule, Scope, Specials, VpathDirective,
};
pub use error::{Error, ErrorKind};
pub use host::{Host, MemHost, Mtime, ShellResult};
pub use loc::Loc;
pub use vars::{Export, Flavor, Origin, Variable};
