//! Content-addressed storage: SHA-256 digests, blob stores and Merkle trees of directories.
