//! `ClientError`: what a call through [`crate::CoordinatorClient`] can fail with.

use std::path::PathBuf;

use rmake_cas::Digest;

/// An error from the coordinator client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The base URL cannot be used.
    #[error("invalid coordinator URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request did not complete (connection refused, reset, timeout, body stream error).
    #[error("request to the coordinator failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The coordinator answered with an error status and body.
    #[error("coordinator answered {status}: {message} ({code})")]
    Api {
        /// HTTP status code.
        status: u16,
        /// Machine-readable code from the error body.
        code: String,
        /// Human-readable message from the error body.
        message: String,
    },
    /// Downloaded bytes do not hash to the digest they were asked for.
    #[error("blob {expected} arrived with wrong content (the bytes hash to {actual})")]
    DigestMismatch {
        /// The digest requested.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// A local file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The coordinator's answer does not follow the protocol.
    #[error("malformed answer from the coordinator: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The HTTP status, if the coordinator answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code from the coordinator's error body, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
