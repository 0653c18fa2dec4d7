//! The rmake worker: leases actions from a coordinator, fetches their inputs into a local blob
//! cache, runs each recipe in a private exec root with rmake-exec while recording what it
//! reads, uploads what it wrote and reports the result. [`run`] is the whole worker; the
//! `rmake-worker` binary and the client's embedded farm both call it. See docs/farm.md.
#![warn(missing_docs)]

pub mod blob_cache;
pub mod config;
pub mod exec_root;
pub mod fetch;
pub mod lease;
pub mod outputs;
pub mod pool;
pub mod reads;
pub mod restore;
mod service;

pub use config::Config;
pub use lease::{Executor, LeaseRun};
pub use service::run;
