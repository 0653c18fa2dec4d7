//! `CasError`: every way a store, a tree or an index operation can fail, as a typed value.

use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, DigestParseError};

/// An error from the content-addressed store, Merkle trees or the local index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CasError {
    /// The bytes offered for a blob do not hash to the digest they were offered under.
    /// Nothing was stored.
    #[error("digest mismatch: expected {expected}, the bytes hash to {actual}")]
    DigestMismatch {
        /// The digest the caller claimed.
        expected: Digest,
        /// The digest of the bytes actually received.
        actual: Digest,
    },
    /// More bytes were written than the digest's size allows. Nothing was stored.
    #[error("blob {expected} is longer than its digest says (at least {written} bytes)")]
    SizeExceeded {
        /// The digest the caller claimed.
        expected: Digest,
        /// Bytes received when the write was refused.
        written: u64,
    },
    /// A blob that was required is not in the store.
    #[error("blob {0} not found")]
    NotFound(Digest),
    /// The filesystem is full (ENOSPC or EDQUOT). Nothing was stored.
    #[error("no space left on device while writing {path}")]
    NoSpace {
        /// The file being written.
        path: PathBuf,
    },
    /// Any other I/O failure, with the path and the operation that failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("create", "rename", "read", ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A path (from a tree, the wire or an ignore file) is not acceptable.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path or entry name.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A blob that should hold a directory node does not decode as one.
    #[error("blob {digest} is not a valid tree node: {reason}")]
    InvalidTree {
        /// The blob's digest.
        digest: Digest,
        /// What is wrong with it.
        reason: String,
    },
    /// A string that should be a digest is not one.
    #[error(transparent)]
    InvalidDigest(#[from] DigestParseError),
}

/// Shorthand for results in this crate.
pub type Result<T, E = CasError> = std::result::Result<T, E>;

impl CasError {
    /// Wraps an I/O error with its operation and path, turning a full disk into [`CasError::NoSpace`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> CasError {
        let path = path.into();
        if is_no_space(&source) {
            CasError::NoSpace { path }
        } else {
            CasError::Io { op, path, source }
        }
    }

    /// Whether this error means the disk is full.
    pub fn is_no_space(&self) -> bool {
        matches!(self, CasError::NoSpace { .. })
    }
}

/// Whether an OS error means "no space left" (ENOSPC) or "quota exceeded" (EDQUOT).
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == libc::ENOSPC || code == libc::EDQUOT)
}

/// Adds an operation and a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps the error with [`CasError::io`].
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| CasError::io(op, path, e))
    }
}
