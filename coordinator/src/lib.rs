//! The rmake coordinator: the content-addressed store, the action cache (keyed by what recipes
//! read: [`readsets`]) and the
//! remote-execution scheduler (builds, workers, leases) behind an HTTP API.
//!
//! `app(state)` builds the axum router; [`AppState::open`] opens the blob directory and the sled
//! metadata (reconciling them after a crash); [`server::serve`] runs it on a listener. The
//! binary `rmake-coordinator` is a thin wrapper around these. The API is documented in
//! `docs/api.md`.
#![warn(missing_docs)]

pub mod action_cache;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod error;
pub mod eviction;
pub mod inline;
pub mod meta;
pub mod pins;
pub mod range;
pub mod readsets;
pub mod reconcile;
pub mod routes;
pub mod sched;
pub mod server;
pub mod state;

pub use action_cache::ActionCache;
pub use auth::{Permission, Role};
pub use blobs::BlobService;
pub use config::{Args, Config};
pub use error::{ApiError, StoreError};
pub use readsets::ReadSetCache;
pub use routes::app;
pub use sched::Scheduler;
pub use state::AppState;
