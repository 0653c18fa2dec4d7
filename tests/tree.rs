//! Source trees on disk: writing files, copying a fixture directory, and pinning every mtime to
//! 2000-01-01 so only a test's own `touch` decides what is newer (as the golden corpus does).

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

/// 2000-01-01 00:00:00 UTC, the mtime of every file of a fresh tree.
pub fn epoch_2000() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800)
}

/// Writes `content` to `root/rel`, creating parent directories; a `rel` ending in `/` makes an
/// empty directory. Scripts (`#!` first line) are made executable.
pub fn write_file(root: &Path, rel: &str, content: &[u8]) -> Result<()> {
    let path = root.join(rel);
    if rel.ends_with('/') {
        return fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()));
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    if content.starts_with(b"#!") {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    Ok(())
}

/// Copies the directory `src` into `dst` (created), keeping permission bits.
pub fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    for entry in fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry.with_context(|| format!("reading {}", src.display()))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type().context("file type")?;
        if kind.is_dir() {
            copy_dir(&from, &to)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&from).context("reading link")?;
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("linking {}", to.display()))?;
        } else {
            fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// Sets the mtime (and atime) of `dir` and everything below it to `when`.
pub fn set_mtimes(dir: &Path, when: SystemTime) -> Result<()> {
    let times = FileTimes::new().set_accessed(when).set_modified(when);
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.context("reading directory entry")?;
        let path = entry.path();
        let kind = entry.file_type().context("file type")?;
        if kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            set_mtimes(&path, when)?;
        } else {
            set_time(&path, times)?;
        }
    }
    set_time(dir, times)
}

fn set_time(path: &Path, times: FileTimes) -> Result<()> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    f.set_times(times)
        .with_context(|| format!("setting times of {}", path.display()))
}
