//! GNU make's jobserver (the pipe protocol of `--jobserver-auth=R,W`): a top-level `-jN` make
//! creates a pipe holding N-1 tokens; every make runs one job on its implicit token and must read
//! a token from the pipe for each further job, writing it back when the job ends. Sub-makes find
//! the pipe in MAKEFLAGS; only recursive recipe lines (`+`, `$(MAKE)`) inherit its descriptors.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use crate::runner::Msg;
use std::sync::Arc;

/// A jobserver pipe this process created or inherited.
#[derive(Debug)]
pub struct JobServer {
    read: RawFd,
    write: RawFd,
}

fn set_cloexec(fd: RawFd, on: bool) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: fcntl on a descriptor number has no memory-safety preconditions; an invalid
    // descriptor only yields an error.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return false;
        }
        let new = if on { flags | libc::FD_CLOEXEC } else { flags & !libc::FD_CLOEXEC };
        libc::fcntl(fd, libc::F_SETFD, new) >= 0
    }
}

fn fd_valid(fd: RawFd) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: F_GETFD only inspects the descriptor table.
    unsafe {
        libc::fcntl(fd, libc::F_GETFD) >= 0
    }
}

impl JobServer {
    /// Creates the pipe with `tokens` tokens (a top-level `-jN` make: N-1).
    pub fn create(tokens: u32) -> io::Result<JobServer> {
        let mut fds = [0 as RawFd; 2];
        #[allow(unsafe_code)]
        // SAFETY: pipe(2) writes two descriptors into the two-element array.
        let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let js = JobServer { read: fds[0], write: fds[1] };
        set_cloexec(js.read, true);
        set_cloexec(js.write, true);
        for _ in 0..tokens {
            js.release();
        }
        Ok(js)
    }

    /// The pipe named by `--jobserver-auth=R,W`, if both descriptors are open in this process.
    pub fn from_auth(auth: &str) -> Option<JobServer> {
        let (r, w) = auth.split_once(',')?;
        let read: RawFd = r.trim().parse().ok()?;
        let write: RawFd = w.trim().parse().ok()?;
        if read < 0 || write < 0 || !fd_valid(read) || !fd_valid(write) {
            return None;
        }
        set_cloexec(read, true);
        set_cloexec(write, true);
        Some(JobServer { read, write })
    }

    /// The `R,W` descriptor numbers for MAKEFLAGS.
    pub fn fds(&self) -> (i32, i32) {
        (self.read, self.write)
    }

    /// Gives a token back.
    pub fn release(&self) {
        let b = [b'+'];
        loop {
            #[allow(unsafe_code)]
            // SAFETY: writes one byte from a live one-byte buffer.
            let n = unsafe { libc::write(self.write, b.as_ptr().cast(), 1) };
            if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }

    /// Waits up to `timeout_ms` for a token; `true` when one was taken.
    pub fn try_acquire(&self, timeout_ms: i32) -> bool {
        let mut pfd = libc::pollfd { fd: self.read, events: libc::POLLIN, revents: 0 };
        #[allow(unsafe_code)]
        // SAFETY: poll on one valid pollfd structure.
        let ready = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if ready <= 0 {
            return false;
        }
        let mut b = [0u8; 1];
        // Another make may take the token between poll and read; then the read waits for the
        // next token, as make's own blocking read does.
        #[allow(unsafe_code)]
        // SAFETY: reads one byte into a live one-byte buffer.
        let n = unsafe { libc::read(self.read, b.as_mut_ptr().cast(), 1) };
        n == 1
    }

    /// Lets the recursive commands of this process inherit the descriptors.
    pub fn inheritable(&self, on: bool) {
        set_cloexec(self.read, !on);
        set_cloexec(self.write, !on);
    }
}

/// Reads tokens on a helper thread while the executor waits for jobs: each request produces one
/// `Msg::Token` (a token taken after `stop` goes straight back to the pipe).
pub struct TokenReader {
    want: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl TokenReader {
    /// Starts the reader; `on_token` is called (from the helper thread) for each token taken.
    pub fn start(js: Arc<JobServer>, on_token: Sender<Msg>) -> TokenReader {
        let want = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s) = (want.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if !w.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                if js.try_acquire(50) {
                    w.store(false, Ordering::SeqCst);
                    if s.load(Ordering::SeqCst) || on_token.send(Msg::Token).is_err() {
                        js.release();
                        return;
                    }
                }
            }
        });
        TokenReader { want, stop }
    }

    /// Asks for one token (no effect while a request is pending).
    pub fn request(&self) {
        self.want.store(true, Ordering::SeqCst);
    }

    /// Whether a request is pending.
    pub fn pending(&self) -> bool {
        self.want.load(Ordering::SeqCst)
    }

    /// Cancels any pending request and stops the thread.
    pub fn stop(&self) {
        self.want.store(false, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
    }
}
