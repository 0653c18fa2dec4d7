//! Capturing a child's stdout and stderr through pipes while keeping the order in which the
//! bytes arrived across the two: a reader thread per pipe and a waiter thread send events to
//! one channel, which the runner drains in arrival order.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::sync::mpsc::Sender;

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What the helper threads of one running line report.
#[derive(Debug)]
pub(crate) enum Event {
    /// Bytes read from a stream.
    Data(StreamKind, Vec<u8>),
    /// The stream reached its end (every writer closed it).
    Eof(StreamKind),
    /// The child exited (or waiting for it failed).
    Exited(std::io::Result<ExitStatus>),
}

/// Size of one read from a pipe.
const CHUNK: usize = 64 * 1024;

/// Starts a thread that forwards everything `reader` yields, then `Eof`.
pub(crate) fn spawn_reader(
    mut reader: impl Read + Send + 'static,
    stream: StreamKind,
    tx: Sender<Event>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("rmake-exec-{stream:?}").to_lowercase())
        .spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(Event::Data(stream, buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!(?stream, error = %e, "reading recipe output");
                        break;
                    }
                }
            }
            let _ = tx.send(Event::Eof(stream));
        })
        .map(drop)
}

/// Starts a thread that waits for `child` and reports its status.
pub(crate) fn spawn_waiter(mut child: Child, tx: Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("rmake-exec-wait".into())
        .spawn(move || {
            let status = child.wait();
            let _ = tx.send(Event::Exited(status));
        })
        .map(drop)
}
