//! Content-addressed storage: SHA-256 digests, blob stores and Merkle trees of directories.
//!
//! Everything here is synchronous; async callers wrap calls in `spawn_blocking`.
#![warn(missing_docs)]

pub mod builder;
pub mod digest;
pub mod disk_store;
mod disk_writer;
pub mod error;
pub mod ignore;
pub mod index;
pub mod materialize;
pub mod memory_store;
mod par;
pub mod snapshot;
pub mod store;
pub mod testdata;
pub mod tree;
pub mod walk;

pub use builder::{split_path, TreeBuilder};
pub use digest::{Digest, DigestParseError, Hasher};
pub use disk_store::DiskStore;
pub use error::{CasError, Result};
pub use ignore::Ignore;
pub use index::Index;
pub use materialize::{materialize, MaterializeOptions, MaterializeStats};
pub use memory_store::MemoryStore;
pub use snapshot::{scan, snapshot, upload, Scan, Snapshot, SnapshotStats};
pub use store::{BlobInfo, BlobStore, BlobWriter, ReadSeek};
pub use tree::{Directory, Entry, Node};
pub use walk::{check_symlinks, diff, flatten, Change, FlatEntry};
