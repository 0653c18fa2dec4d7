//! Wire types of the coordinator API (serde), the batch framing, and the typed HTTP client.
//!
//! The API itself is described in `docs/api.md`; the types here are its single source of truth
//! for the coordinator, the worker and the CLI.
#![warn(missing_docs)]

pub mod action;
pub mod batch;
mod bulk;
pub mod client;
pub mod error;
pub mod exec;
mod exec_client;
pub mod paths;
pub mod types;

pub use action::{
    ActionKey, ActionKeyParseError, ActionResult, LineExit, LogOutput, OutputFile, Platform, Segment,
    Stream, Timings,
};
pub use client::{BlobStream, ByteRange, CoordinatorClient};
pub use error::ClientError;
pub use exec_client::ExecuteStream;
pub use rmake_cas::Digest;
pub use types::{
    BatchDownloadRequest, BatchUploadResponse, BuildId, ErrorBody, FindMissingRequest,
    FindMissingResponse, HealthResponse, PinRequest, PinResponse, RejectedBlob, StatusResponse,
};
