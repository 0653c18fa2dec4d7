//! `BlobStore`: the synchronous trait every blob store implements, and the reader/writer types it hands out.
//!
//! The trait is deliberately blocking (no async, no tokio in this crate): an async server calls
//! it inside `tokio::task::spawn_blocking`, and everything else calls it directly. A store is
//! `Send + Sync` and is shared as `Arc<dyn BlobStore>`.
//!
//! Invariants every implementation keeps:
//! - a blob is readable only after all of its bytes were received and hashed to its digest;
//! - a failed or abandoned write leaves nothing readable behind;
//! - a blob, once stored, is never replaced by different bytes.

use std::io::{self, Read, Seek};
use std::path::PathBuf;
use std::time::SystemTime;

use crate::digest::Digest;
use crate::error::{CasError, Result};

/// A readable, seekable blob body (a `File` for the disk store, a cursor for the memory store).
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// One stored blob, as listed for eviction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's digest.
    pub digest: Digest,
    /// Bytes it occupies in the store (its length; block rounding is not counted).
    pub stored_size: u64,
    /// When it was written (its file's mtime for the disk store).
    pub written_at: SystemTime,
}

/// An in-progress streaming write of one blob.
///
/// Bytes go in through [`io::Write`]; they are hashed as they arrive and nothing is visible to
/// readers until [`BlobWriter::commit`] has verified the digest. Dropping a writer without
/// committing abandons the write and removes whatever it wrote.
pub trait BlobWriter: io::Write + Send {
    /// The digest this writer was opened for.
    fn expected(&self) -> Digest;
    /// Bytes received so far.
    fn written(&self) -> u64;
    /// Verifies size and hash and makes the blob visible. On a mismatch nothing is stored and
    /// the error is [`CasError::DigestMismatch`].
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A content-addressed blob store. See the module docs for the invariants and why it is sync.
pub trait BlobStore: Send + Sync {
    /// For each digest, whether the store holds it (same order as the input).
    fn has_many(&self, digests: &[Digest]) -> Result<Vec<bool>>;

    /// The whole blob, or `None` if absent. Meant for small blobs: it reads everything into memory.
    fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>>;

    /// A seekable reader over the blob (for streaming and `Range` requests), or `None` if absent.
    fn open_read(&self, digest: &Digest) -> Result<Option<Box<dyn ReadSeek>>>;

    /// Starts a streaming write of `digest`. The returned writer must be committed.
    fn begin_write(&self, digest: &Digest) -> Result<Box<dyn BlobWriter>>;

    /// Removes a blob; `Ok(false)` if it was not there.
    fn delete(&self, digest: &Digest) -> Result<bool>;

    /// Every stored blob with its size and write time, for eviction.
    fn list(&self) -> Result<Vec<BlobInfo>>;

    /// The file that holds the blob, if this store keeps blobs as plain files and has it.
    /// Used to hard-link blobs into a tree and to serve them with the OS's file APIs. The file
    /// must be treated as read-only.
    fn local_path(&self, _digest: &Digest) -> Option<PathBuf> {
        None
    }

    /// Total bytes of stored blobs.
    fn size_on_disk(&self) -> Result<u64> {
        Ok(self.list()?.iter().map(|b| b.stored_size).sum())
    }

    /// Whether the store holds `digest`.
    fn has(&self, digest: &Digest) -> Result<bool> {
        Ok(self
            .has_many(std::slice::from_ref(digest))?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// The digests from `digests` that the store lacks, in input order, without duplicates.
    fn find_missing(&self, digests: &[Digest]) -> Result<Vec<Digest>> {
        let present = self.has_many(digests)?;
        let mut seen = std::collections::HashSet::new();
        Ok(digests
            .iter()
            .zip(present)
            .filter(|(d, p)| !p && seen.insert(**d))
            .map(|(d, _)| *d)
            .collect())
    }

    /// Stores `data` under `digest` after checking that it hashes to it. Storing a blob that is
    /// already present succeeds without rewriting it.
    fn put(&self, digest: &Digest, data: &[u8]) -> Result<()> {
        let actual = Digest::of(data);
        if actual != *digest {
            return Err(CasError::DigestMismatch {
                expected: *digest,
                actual,
            });
        }
        if self.has(digest)? {
            return Ok(());
        }
        let mut w = self.begin_write(digest)?;
        w.write_all(data).map_err(|e| write_error(digest, e))?;
        w.commit()
    }

    /// Stores everything `reader` yields under `digest`, streaming with a bounded buffer, and
    /// verifies the digest before the blob becomes visible. Returns the bytes read.
    fn put_stream(&self, digest: &Digest, reader: &mut dyn Read) -> Result<u64> {
        let mut w = self.begin_write(digest)?;
        let mut buf = vec![0u8; STREAM_BUF];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(CasError::Io {
                        op: "read upload of",
                        path: digest.to_string().into(),
                        source: e,
                    })
                }
            };
            w.write_all(&buf[..n]).map_err(|e| write_error(digest, e))?;
        }
        let n = w.written();
        w.commit()?;
        Ok(n)
    }

    /// Stores many small blobs at once, each verified like [`BlobStore::put`]. Returns one result
    /// per input, in order, so one bad blob does not fail the others. Stores may override this to
    /// amortise the cost of making a batch durable.
    fn put_many(&self, blobs: &[(Digest, &[u8])]) -> Vec<Result<()>> {
        blobs.iter().map(|(d, data)| self.put(d, data)).collect()
    }

    /// Stores a blob and returns its digest (computed here).
    fn put_bytes(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of(data);
        self.put(&d, data)?;
        Ok(d)
    }
}

/// Buffer size for streaming copies: large enough for throughput, small enough to bound memory.
pub const STREAM_BUF: usize = 1024 * 1024;

/// Turns an `io::Error` coming out of a [`BlobWriter`] back into the `CasError` it carries, if any.
///
/// Writers report typed failures (size exceeded, no space) through `io::Error::other(CasError)`
/// because `io::Write` cannot return anything else; this recovers them.
pub fn write_error(digest: &Digest, e: io::Error) -> CasError {
    if e.get_ref().is_some_and(|inner| inner.is::<CasError>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(cas) = inner.downcast::<CasError>() {
                return *cas;
            }
        }
        return CasError::Io {
            op: "write blob",
            path: digest.to_string().into(),
            source: io::Error::other("lost error"),
        };
    }
    CasError::io("write blob", digest.to_string(), e)
}
