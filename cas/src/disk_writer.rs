//! `DiskWriter`: the streaming [`BlobWriter`] of [`DiskStore`]. For large blobs a helper thread
//! writes the temp file while the caller's thread hashes, so the two costs overlap instead of
//! adding up; memory stays bounded by a fixed number of 1 MiB buffers.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::digest::{Digest, Hasher};
use crate::disk_store::{remove_quietly, DiskStore};
use crate::error::{CasError, Result};
use crate::store::BlobWriter;

/// Buffer between a small streaming write and its temp file.
const WRITE_BUF: usize = 256 * 1024;
/// Blobs at least this large are written by a helper thread.
const PIPE_MIN: u64 = 8 << 20;
/// Size of the chunks handed to the helper thread.
const CHUNK: usize = 1 << 20;
/// The helper thread asks the kernel to start writing back every this many bytes, so the
/// final fsync has little left to wait for (the disk works while later chunks arrive).
const WRITEBACK_STEP: u64 = 8 << 20;
/// Chunks queued for the helper thread at most (so at most DEPTH + 3 chunks exist at once).
const DEPTH: usize = 4;

/// A streaming write into a temp file; see [`BlobWriter`].
pub(crate) struct DiskWriter {
    store: DiskStore,
    expected: Digest,
    hasher: Hasher,
    sink: Option<Sink>,
    tmp_path: PathBuf,
    /// Set once a write failed (the temp file no longer matches the hasher) or after commit.
    failed: bool,
}

enum Sink {
    Direct(BufWriter<File>),
    Piped(Pipe),
}

impl DiskWriter {
    pub(crate) fn new(
        store: DiskStore,
        expected: Digest,
        file: File,
        tmp_path: PathBuf,
    ) -> DiskWriter {
        let parallel = crate::par::cpus() > 1;
        let sink = if expected.size >= PIPE_MIN && parallel {
            match Pipe::start(file.try_clone()) {
                Some(pipe) => Sink::Piped(pipe),
                None => Sink::Direct(BufWriter::with_capacity(WRITE_BUF, file)),
            }
        } else {
            Sink::Direct(BufWriter::with_capacity(WRITE_BUF, file))
        };
        DiskWriter {
            store,
            expected,
            hasher: Hasher::new(),
            sink: Some(sink),
            tmp_path,
            failed: false,
        }
    }

    fn fail(&mut self, e: CasError) -> io::Error {
        self.failed = true;
        // Free the disk space now rather than when the writer is dropped.
        self.sink = None;
        remove_quietly(&self.tmp_path);
        io::Error::other(e)
    }

    /// Flushes and closes the sink, returning the file.
    fn close(&mut self) -> io::Result<File> {
        match self.sink.take() {
            Some(Sink::Direct(buf)) => buf.into_inner().map_err(|e| e.into_error()),
            Some(Sink::Piped(pipe)) => pipe.finish(),
            None => Err(io::Error::other("blob writer is closed")),
        }
    }
}

impl Write for DiskWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("blob write already failed"));
        }
        let written = self.hasher.len() + data.len() as u64;
        if written > self.expected.size {
            return Err(self.fail(CasError::SizeExceeded {
                expected: self.expected,
                written,
            }));
        }
        let res = match self.sink.as_mut() {
            Some(Sink::Direct(f)) => f.write_all(data),
            Some(Sink::Piped(p)) => p.push(data),
            None => Err(io::Error::other("blob writer is closed")),
        };
        if let Err(e) = res {
            let err = CasError::io("write", self.tmp_path.clone(), e);
            return Err(self.fail(err));
        }
        // With a pipe, this runs while the helper thread writes the chunks queued before.
        self.hasher.update(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for DiskWriter {
    fn expected(&self) -> Digest {
        self.expected
    }

    fn written(&self) -> u64 {
        self.hasher.len()
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if self.failed {
            return Err(CasError::io(
                "write",
                self.tmp_path.clone(),
                io::Error::other("an earlier write failed"),
            ));
        }
        let file = match self.close() {
            Ok(f) => f,
            Err(e) => {
                let err = CasError::io("write", self.tmp_path.clone(), e);
                self.failed = true;
                remove_quietly(&self.tmp_path);
                return Err(err);
            }
        };
        // From here on Drop must not touch the temp file: it is removed or published below.
        self.failed = true;
        let actual = std::mem::take(&mut self.hasher).finish();
        if actual != self.expected {
            drop(file);
            remove_quietly(&self.tmp_path);
            return Err(CasError::DigestMismatch {
                expected: self.expected,
                actual,
            });
        }
        if self.store.fsync {
            if let Err(e) = file.sync_all() {
                drop(file);
                remove_quietly(&self.tmp_path);
                return Err(CasError::io("fsync", self.tmp_path.clone(), e));
            }
        }
        drop(file);
        self.store.publish(&self.expected, &self.tmp_path, true)
    }
}

impl Drop for DiskWriter {
    fn drop(&mut self) {
        if !self.failed {
            self.sink = None;
            remove_quietly(&self.tmp_path);
        }
    }
}

/// Chunks handed to a helper thread that writes them to the file in order.
struct Pipe {
    tx: Option<SyncSender<Vec<u8>>>,
    free: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    handle: Option<JoinHandle<io::Result<File>>>,
}

impl Pipe {
    /// Starts the helper thread; `None` if the file could not be shared or no thread started.
    fn start(file: io::Result<File>) -> Option<Pipe> {
        let mut file = file.ok()?;
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(DEPTH);
        let (free_tx, free) = mpsc::channel::<Vec<u8>>();
        let handle = std::thread::Builder::new()
            .name("rmake-cas-write".into())
            .spawn(move || -> io::Result<File> {
                let (mut written, mut flushed) = (0u64, 0u64);
                for mut buf in rx {
                    // On error the receiver is dropped, so the next send fails and the
                    // caller collects this error from `join`.
                    file.write_all(&buf)?;
                    written += buf.len() as u64;
                    if written - flushed >= WRITEBACK_STEP {
                        start_writeback(&file, flushed, written - flushed);
                        flushed = written;
                    }
                    buf.clear();
                    let _ = free_tx.send(buf);
                }
                Ok(file)
            })
            .ok()?;
        Some(Pipe {
            tx: Some(tx),
            free,
            cur: Vec::with_capacity(CHUNK),
            handle: Some(handle),
        })
    }

    fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = (CHUNK - self.cur.len()).min(data.len());
            self.cur.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.cur.len() == CHUNK {
                self.send_cur()?;
            }
        }
        Ok(())
    }

    fn send_cur(&mut self) -> io::Result<()> {
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.cur, next);
        let sent = match &self.tx {
            Some(tx) => tx.send(full).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(match self.join() {
                Err(e) => e,
                Ok(_) => io::Error::other("blob writer thread stopped"),
            })
        }
    }

    /// Closes the queue and waits for the helper thread.
    fn join(&mut self) -> io::Result<File> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("blob writer thread panicked"))),
            None => Err(io::Error::other("blob writer thread already stopped")),
        }
    }

    /// Sends what is left and returns the written file.
    fn finish(mut self) -> io::Result<File> {
        if !self.cur.is_empty() {
            self.send_cur()?;
        }
        self.join()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.join();
        }
    }
}

/// Starts asynchronous writeback of `len` bytes at `offset` (Linux `sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`). Only a hint: errors are ignored, and durability still comes from
/// the fsync at commit.
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: `sync_file_range` only reads its integer arguments; the descriptor belongs to
    // `file`, which stays open for the whole call.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
}
