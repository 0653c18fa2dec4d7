//! `MemoryStore`: a `BlobStore` kept in a hash map, for tests and small embedded uses.

use std::collections::HashMap;
use std::io::{self, Cursor};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::digest::{Digest, Hasher};
use crate::error::{CasError, Result};
use crate::store::{BlobInfo, BlobStore, BlobWriter, ReadSeek};

/// Blobs held in memory. Cloning shares the same map.
#[derive(Clone, Default)]
pub struct MemoryStore {
    blobs: Arc<Mutex<HashMap<Digest, Entry>>>,
}

#[derive(Clone)]
struct Entry {
    data: Arc<Vec<u8>>,
    written_at: SystemTime,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Number of blobs held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no blob.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Digest, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated (every update is a
        // single insert or remove), so a poisoned lock is still safe to use.
        self.blobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A cursor over shared bytes, so readers do not copy the blob.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl BlobStore for MemoryStore {
    fn has_many(&self, digests: &[Digest]) -> Result<Vec<bool>> {
        let map = self.lock();
        Ok(digests.iter().map(|d| map.contains_key(d)).collect())
    }

    fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().get(digest).map(|e| e.data.as_ref().clone()))
    }

    fn open_read(&self, digest: &Digest) -> Result<Option<Box<dyn ReadSeek>>> {
        Ok(self
            .lock()
            .get(digest)
            .map(|e| Box::new(Cursor::new(SharedBytes(e.data.clone()))) as Box<dyn ReadSeek>))
    }

    fn begin_write(&self, digest: &Digest) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(MemoryWriter {
            store: self.clone(),
            expected: *digest,
            hasher: Hasher::new(),
            // Do not trust the claimed size for the allocation: it comes from the caller.
            buf: Vec::with_capacity(digest.size.min(1 << 20) as usize),
        }))
    }

    fn delete(&self, digest: &Digest) -> Result<bool> {
        Ok(self.lock().remove(digest).is_some())
    }

    fn list(&self) -> Result<Vec<BlobInfo>> {
        Ok(self
            .lock()
            .iter()
            .map(|(d, e)| BlobInfo {
                digest: *d,
                stored_size: e.data.len() as u64,
                written_at: e.written_at,
            })
            .collect())
    }
}

struct MemoryWriter {
    store: MemoryStore,
    expected: Digest,
    hasher: Hasher,
    buf: Vec<u8>,
}

impl io::Write for MemoryWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let written = self.hasher.len() + data.len() as u64;
        if written > self.expected.size {
            return Err(io::Error::other(CasError::SizeExceeded {
                expected: self.expected,
                written,
            }));
        }
        self.hasher.update(data);
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for MemoryWriter {
    fn expected(&self) -> Digest {
        self.expected
    }

    fn written(&self) -> u64 {
        self.hasher.len()
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let MemoryWriter {
            store,
            expected,
            hasher,
            buf,
        } = *self;
        let actual = hasher.finish();
        if actual != expected {
            return Err(CasError::DigestMismatch { expected, actual });
        }
        store.lock().entry(expected).or_insert_with(|| Entry {
            data: Arc::new(buf),
            written_at: SystemTime::now(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn put_get_round_trip_and_mismatch() {
        let s = MemoryStore::new();
        let d = s.put_bytes(b"hello").unwrap();
        assert_eq!(s.get(&d).unwrap().as_deref(), Some(&b"hello"[..]));
        assert!(s.has(&d).unwrap());
        let bad = Digest::of(b"other");
        assert!(matches!(
            s.put(&bad, b"hello"),
            Err(CasError::DigestMismatch { .. })
        ));
        assert!(!s.has(&bad).unwrap());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn streaming_writer_refuses_overlong_and_wrong_bytes() {
        let s = MemoryStore::new();
        let d = Digest::of(b"abc");
        let mut w = s.begin_write(&d).unwrap();
        assert!(w.write_all(b"abcd").is_err());
        drop(w);
        let mut w = s.begin_write(&d).unwrap();
        w.write_all(b"abd").unwrap();
        assert!(matches!(w.commit(), Err(CasError::DigestMismatch { .. })));
        assert!(s.is_empty());
        assert!(matches!(
            s.put_stream(&d, &mut &b"abcdef"[..]),
            Err(CasError::SizeExceeded { written: 6, .. })
        ));
    }

    #[test]
    fn open_read_seeks() {
        let s = MemoryStore::new();
        let d = s.put_bytes(b"0123456789").unwrap();
        let mut r = s.open_read(&d).unwrap().unwrap();
        r.seek(SeekFrom::Start(4)).unwrap();
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "456789");
        assert!(s.open_read(&Digest::of(b"x")).unwrap().is_none());
    }

    #[test]
    fn find_missing_dedups_and_keeps_order() {
        let s = MemoryStore::new();
        let a = s.put_bytes(b"a").unwrap();
        let b = Digest::of(b"b");
        let c = Digest::of(b"c");
        assert_eq!(s.find_missing(&[c, a, b, c]).unwrap(), vec![c, b]);
        assert!(s.delete(&a).unwrap());
        assert!(!s.delete(&a).unwrap());
    }
}
