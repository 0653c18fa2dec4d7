//! Recording what a recipe reads: inotify watches on every directory of the exec root report
//! each file opened and each directory listed, by any process. New directories are watched as
//! they appear. A thread drains the queue while the recipe runs; [`ReadRecorder::finish`]
//! drains the rest after it exited. Failed opens and stat-only probes are not seen.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What was recorded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Files opened (`src/a.h`) and directories listed (`src/`, the root `./`), relative to
    /// the root.
    pub opened: BTreeSet<String>,
    /// False when events were lost (queue overflow) or a watch could not be set.
    pub complete: bool,
}

/// A running recorder; [`ReadRecorder::finish`] stops it.
#[derive(Debug)]
pub struct ReadRecorder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Recorded>>,
}

const WATCH_MASK: u32 = libc::IN_OPEN | libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_ONLYDIR;
/// Time between drains of the queue while the recipe runs.
const DRAIN_EVERY: Duration = Duration::from_millis(10);

struct Watcher {
    file: File,
    root: PathBuf,
    dirs: HashMap<i32, String>,
    recorded: Recorded,
}

impl Watcher {
    fn new(root: &Path) -> std::io::Result<Watcher> {
        #[allow(unsafe_code)]
        // SAFETY: inotify_init1 takes flags only and returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        #[allow(unsafe_code)]
        // SAFETY: `fd` was just returned by inotify_init1, is valid and owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Watcher {
            file: File::from(owned),
            root: root.to_path_buf(),
            dirs: HashMap::new(),
            recorded: Recorded {
                opened: BTreeSet::new(),
                complete: true,
            },
        })
    }

    /// Watches the directory `rel` (relative to the root).
    fn watch(&mut self, rel: &str) {
        let abs = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        let Ok(c) = CString::new(abs.as_os_str().as_bytes()) else {
            self.recorded.complete = false;
            return;
        };
        #[allow(unsafe_code)]
        // SAFETY: the descriptor is our open inotify instance and `c` a NUL-terminated path
        // that lives across the call.
        let wd = unsafe { libc::inotify_add_watch(self.file.as_raw_fd(), c.as_ptr(), WATCH_MASK) };
        if wd < 0 {
            let err = std::io::Error::last_os_error();
            // A directory removed before we got to it was not read by anyone through it.
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %abs.display(), error = %err, "cannot watch a directory; reads recorded are incomplete");
                self.recorded.complete = false;
            }
            return;
        }
        self.dirs.insert(wd, rel.to_string());
    }

    /// Watches a directory that appeared, and the directories already inside it.
    fn watch_new_tree(&mut self, rel: &str) {
        let mut stack = vec![rel.to_string()];
        while let Some(d) = stack.pop() {
            self.watch(&d);
            if let Ok(entries) = std::fs::read_dir(self.root.join(&d)) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        if let Some(name) = e.file_name().to_str() {
                            stack.push(format!("{d}/{name}"));
                        }
                    }
                }
            }
        }
    }

    /// Reads every queued event; returns whether any was read.
    fn drain(&mut self) -> bool {
        let mut buf = vec![0u8; 64 * 1024];
        let mut any = false;
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) => return any,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return any,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading inotify events; reads recorded are incomplete");
                    self.recorded.complete = false;
                    return any;
                }
            };
            any = true;
            self.parse(&buf[..n]);
        }
    }

    fn parse(&mut self, mut data: &[u8]) {
        const HEADER: usize = 16;
        let word = |b: &[u8], i: usize| -> [u8; 4] {
            let mut w = [0u8; 4];
            w.copy_from_slice(&b[i..i + 4]);
            w
        };
        while data.len() >= HEADER {
            let wd = i32::from_ne_bytes(word(data, 0));
            let mask = u32::from_ne_bytes(word(data, 4));
            let len = u32::from_ne_bytes(word(data, 12)) as usize;
            let Some(name_bytes) = data.get(HEADER..HEADER + len) else {
                self.recorded.complete = false;
                return;
            };
            let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(len);
            let name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
            data = &data[HEADER + len..];
            self.event(wd, mask, &name);
        }
    }

    fn event(&mut self, wd: i32, mask: u32, name: &str) {
        if mask & libc::IN_Q_OVERFLOW != 0 {
            tracing::warn!("inotify queue overflowed; reads recorded are incomplete");
            self.recorded.complete = false;
            return;
        }
        if mask & libc::IN_IGNORED != 0 {
            self.dirs.remove(&wd);
            return;
        }
        let Some(dir) = self.dirs.get(&wd) else {
            return;
        };
        let path = match (dir.is_empty(), name.is_empty()) {
            (_, true) => dir.clone(),
            (true, false) => name.to_string(),
            (false, false) => format!("{dir}/{name}"),
        };
        if mask & libc::IN_OPEN != 0 {
            // A directory opened is a listing: `dir/`, the root's `./` (see docs/caching.md).
            let read = if mask & libc::IN_ISDIR == 0 {
                path
            } else if path.is_empty() {
                "./".to_string()
            } else {
                format!("{path}/")
            };
            if !read.is_empty() {
                self.recorded.opened.insert(read);
            }
        } else if mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0
            && mask & libc::IN_ISDIR != 0
            && !name.is_empty()
        {
            self.watch_new_tree(&path);
        }
    }
}

impl ReadRecorder {
    /// Starts recording under `root`, watching `dirs` (relative; `""` is the root). A recorder
    /// that cannot be set up records nothing and reports itself incomplete.
    pub fn start(root: &Path, dirs: &[String]) -> ReadRecorder {
        let stop = Arc::new(AtomicBool::new(false));
        let mut watcher = match Watcher::new(root) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "inotify is not available; reads are not recorded");
                return ReadRecorder { stop, thread: None };
            }
        };
        for d in dirs {
            watcher.watch(d);
        }
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rmake-reads".into())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    if !watcher.drain() {
                        // `finish` unparks it, so the end is not a whole period late.
                        std::thread::park_timeout(DRAIN_EVERY);
                    }
                }
                // Everything the recipe did is queued by now.
                watcher.drain();
                watcher.recorded
            });
        match thread {
            Ok(t) => ReadRecorder {
                stop,
                thread: Some(t),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the read recorder; reads are not recorded");
                ReadRecorder { stop, thread: None }
            }
        }
    }

    /// Stops recording (call it after the recipe's processes exited) and returns the reads.
    pub fn finish(mut self) -> Recorded {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Recorded::default(),
        }
    }
}

impl Drop for ReadRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_opens_and_listings_in_new_and_old_directories() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        std::fs::create_dir_all(root.join("inc/sub")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("inc/a.h"), "x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("b.c"), "y").unwrap_or_else(|e| panic!("{e}"));
        let rec = ReadRecorder::start(root, &["".into(), "inc".into(), "inc/sub".into()]);
        let _ = std::fs::read(root.join("inc/a.h")).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::read_dir(root.join("inc/sub")).map(|d| d.count());
        std::fs::create_dir_all(root.join("new/deep")).unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(root.join("new/deep/f"), "z").unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::read(root.join("new/deep/f"));
        let got = rec.finish();
        assert!(got.complete);
        assert!(got.opened.contains("inc/a.h"), "{got:?}");
        assert!(got.opened.contains("inc/sub/"), "{got:?}");
        assert!(!got.opened.contains("inc/sub"), "{got:?}");
        assert!(got.opened.contains("new/deep/f"), "{got:?}");
        assert!(!got.opened.contains("b.c"), "{got:?}");
        assert!(!got.opened.contains(""), "{got:?}");
        assert!(
            !got.opened.contains("./"),
            "the root was not listed: {got:?}"
        );
        let rec = ReadRecorder::start(root, &["".into()]);
        let _ = std::fs::read_dir(root).map(|d| d.count());
        assert!(rec.finish().opened.contains("./"));
    }
}
