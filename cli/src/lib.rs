//! rmake-remote: the GNU make compatible client (argument handling, local executor).

pub mod args;
pub mod argv;
pub mod makeflags;
