//! Recording what a recipe reads and where it wrote: inotify watches on every directory of the
//! exec root report each file opened and each directory listed, by any process, and each name
//! created, written, deleted, moved or re-moded (so the output scan can stay in the directories
//! that changed). New directories are watched as they appear. A thread drains the queue while
//! the recipe runs; [`ReadRecorder::finish`] drains the rest after it exited. Failed opens and
//! stat-only probes are not seen.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

/// What was recorded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Files opened (`src/a.h`) and directories listed (`src/`, the root `./`), relative to
    /// the root.
    pub opened: BTreeSet<String>,
    /// False when events were lost (queue overflow) or a watch could not be set.
    pub complete: bool,
    /// Directories (relative, `""` the root) where a name was created, written, deleted,
    /// moved or re-moded, and every directory created during the run; `None` when that is not
    /// known for sure (events lost, a watch missing, a directory moved): then only a scan of
    /// the whole root finds every change.
    pub changed: Option<BTreeSet<String>>,
}

/// A running recorder; [`ReadRecorder::finish`] stops it.
#[derive(Debug)]
pub struct ReadRecorder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Watcher>>,
}

/// Closing an inotify instance waits for a grace period in the kernel (milliseconds, tens of
/// them under load): one long-lived thread closes them, off the path of the action.
fn close_later(file: File) {
    static CLOSER: OnceLock<Option<Mutex<mpsc::Sender<File>>>> = OnceLock::new();
    let closer = CLOSER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<File>();
        std::thread::Builder::new()
            .name("rmake-inotify-close".into())
            .spawn(move || {
                for file in rx {
                    drop(file);
                }
            })
            .map_err(|e| tracing::debug!(error = %e, "no closer thread; closing inline"))
            .ok()
            .map(|_| Mutex::new(tx))
    });
    let unsent = match closer {
        Some(tx) => match tx.lock() {
            Ok(tx) => tx.send(file).err().map(|e| e.0),
            Err(_) => Some(file),
        },
        None => Some(file),
    };
    drop(unsent);
}

/// Reads (`IN_OPEN`), new directories to watch, and every change of a name or its content or
/// mode (`IN_MODIFY` for a `truncate` without an open; writes through an open end with
/// `IN_CLOSE_WRITE`).
const WATCH_MASK: u32 = libc::IN_OPEN
    | libc::IN_CREATE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_CLOSE_WRITE
    | libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR;
/// Events that change a name in the watched directory (or its content or mode).
const CHANGE_MASK: u32 = libc::IN_CREATE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_CLOSE_WRITE
    | libc::IN_MODIFY
    | libc::IN_ATTRIB;
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
                changed: Some(BTreeSet::new()),
            },
        })
    }

    /// Events were lost or a directory is not watched: nothing recorded is whole.
    fn incomplete(&mut self) {
        self.recorded.complete = false;
        self.recorded.changed = None;
    }

    /// Notes that names in the directory `rel` changed.
    fn changed(&mut self, rel: &str) {
        if let Some(c) = &mut self.recorded.changed {
            if !c.contains(rel) {
                c.insert(rel.to_string());
            }
        }
    }

    /// Watches the directory `rel` (relative to the root).
    fn watch(&mut self, rel: &str) {
        let abs = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        let Ok(c) = CString::new(abs.as_os_str().as_bytes()) else {
            self.incomplete();
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
                self.incomplete();
            }
            return;
        }
        self.dirs.insert(wd, rel.to_string());
    }

    /// Watches a directory that appeared, and the directories already inside it; all of them
    /// count as changed (whatever is in them was written during the run).
    fn watch_new_tree(&mut self, rel: &str) {
        let mut stack = vec![rel.to_string()];
        while let Some(d) = stack.pop() {
            self.watch(&d);
            self.changed(&d);
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
                    self.incomplete();
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
                self.incomplete();
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
            self.incomplete();
            return;
        }
        if mask & libc::IN_IGNORED != 0 {
            self.dirs.remove(&wd);
            return;
        }
        let Some(dir) = self.dirs.get(&wd) else {
            return;
        };
        if mask & libc::IN_MOVE_SELF != 0
            || (mask & libc::IN_MOVED_FROM != 0 && mask & libc::IN_ISDIR != 0)
        {
            // The watches under a moved directory now name the wrong paths.
            tracing::debug!(dir = %dir, "a directory moved; the output scan covers the whole root");
            self.recorded.changed = None;
        }
        if mask & CHANGE_MASK != 0 {
            if name.is_empty() {
                // The watched directory itself (its mode): its entry in its parent.
                let parent = dir.rsplit_once('/').map_or("", |(p, _)| p).to_string();
                self.changed(&parent);
            } else {
                let dir = dir.clone();
                self.changed(&dir);
            }
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
        } else if mask & libc::IN_CREATE != 0 && !name.is_empty() {
            // A hard link: writes through it change a file elsewhere whose directory sees no
            // event.
            let linked = std::fs::symlink_metadata(self.root.join(&path))
                .is_ok_and(|m| m.is_file() && m.nlink() > 1);
            if linked {
                tracing::debug!(path = %path, "a hard link was made; the output scan covers the whole root");
                self.recorded.changed = None;
            }
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
                watcher
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
            Some(Ok(w)) => {
                close_later(w.file);
                w.recorded
            }
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

    #[test]
    fn records_the_directories_where_names_changed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        for d in ["a", "b", "c/d", "e", "f"] {
            std::fs::create_dir_all(root.join(d)).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(root.join("b/old"), "x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("e/x"), "x").unwrap_or_else(|e| panic!("{e}"));
        let all: Vec<String> = ["", "a", "b", "c", "c/d", "e", "f"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rec = ReadRecorder::start(root, &all);
        std::fs::write(root.join("a/new"), "n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(root.join("b/old")).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::read(root.join("e/x"));
        std::fs::set_permissions(
            root.join("c/d"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(root.join("n/m")).unwrap_or_else(|e| panic!("{e}"));
        let got = rec.finish();
        let changed = got.changed.unwrap_or_else(|| panic!("incomplete"));
        for d in ["a", "b", "c", "n", "n/m", ""] {
            assert!(changed.contains(d), "{d:?} in {changed:?}");
        }
        for d in ["e", "f", "c/d"] {
            assert!(!changed.contains(d), "{d:?} not in {changed:?}");
        }

        // A directory moved: the paths of its watches are stale, nothing is vouched for.
        let rec = ReadRecorder::start(root, &all);
        std::fs::rename(root.join("f"), root.join("g")).unwrap_or_else(|e| panic!("{e}"));
        let got = rec.finish();
        assert!(got.complete);
        assert_eq!(got.changed, None);
    }
}
