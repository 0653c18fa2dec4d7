//! Finding the built `rmake-remote`, `rmake-coordinator` and `rmake-worker` next to the test
//! executable (`target/debug/`), building them once (under a lock file) when one is missing or
//! older than a source file of the workspace (`cargo test -p rmake-tests` does not rebuild other
//! packages' binaries, and a stale client fails tests for nothing). When that build fails (a
//! work in progress elsewhere) the binaries present are used, with a warning.
//!
//! `RMAKE_TESTS_REBUILD=1` runs the build even when they look fresh; `RMAKE_TESTS_NO_BUILD=1`
//! never builds when they exist; `RMAKE_TESTS_BIN_DIR=dir` takes them from `dir` instead (e.g.
//! release builds) and never builds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// Paths of the three programs under test.
#[derive(Debug, Clone)]
pub struct Bins {
    /// The client, `rmake-remote`.
    pub remote: PathBuf,
    /// The coordinator, `rmake-coordinator`.
    pub coordinator: PathBuf,
    /// The worker, `rmake-worker`.
    pub worker: PathBuf,
}

/// The packages whose binaries the tests run.
const PACKAGES: &[&str] = &["rmake-cli", "rmake-coordinator", "rmake-worker"];

/// The programs, built if needed (once per test process).
pub fn bins() -> Result<&'static Bins> {
    static BINS: OnceLock<std::result::Result<Bins, String>> = OnceLock::new();
    BINS.get_or_init(|| locate_or_build().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The profile directory holding the binaries: the test executable lives in `<dir>/deps/`.
pub fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let deps = exe
        .parent()
        .context("test executable has no parent directory")?;
    if deps.file_name().is_some_and(|n| n == "deps") {
        if let Some(dir) = deps.parent() {
            return Ok(dir.to_path_buf());
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    Ok(target.join("debug"))
}

fn paths_in(dir: &Path) -> Bins {
    Bins {
        remote: dir.join("rmake-remote"),
        coordinator: dir.join("rmake-coordinator"),
        worker: dir.join("rmake-worker"),
    }
}

fn all_present(b: &Bins) -> bool {
    [&b.remote, &b.coordinator, &b.worker]
        .iter()
        .all(|p| p.is_file())
}

fn locate_or_build() -> Result<Bins> {
    if let Some(dir) = std::env::var_os("RMAKE_TESTS_BIN_DIR") {
        let bins = paths_in(Path::new(&dir));
        if !bins.remote.is_file() {
            bail!(
                "RMAKE_TESTS_BIN_DIR: no rmake-remote in {}",
                bins.remote.display()
            );
        }
        return Ok(bins);
    }
    let dir = profile_dir()?;
    let bins = paths_in(&dir);
    let flag = |name: &str| std::env::var_os(name).is_some_and(|v| v != "0");
    let force = flag("RMAKE_TESTS_REBUILD");
    let fresh = |b: &Bins| all_present(b) && (flag("RMAKE_TESTS_NO_BUILD") || !stale(b));
    if fresh(&bins) && !force {
        return Ok(bins);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock_path = dir.join(".rmake-tests-build.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    // Another test process may have built them while this one waited for the lock.
    if fresh(&bins) && !force {
        return Ok(bins);
    }
    let target_dir = dir.parent().context("profile directory has no parent")?;
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build").arg("--bins");
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    cmd.env("CARGO_TARGET_DIR", target_dir)
        .current_dir(crate::workspace_root());
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        if !all_present(&bins) {
            bail!("cargo build --bins {PACKAGES:?} failed ({status})");
        }
        eprintln!(
            "warning: cargo build --bins failed ({status}); testing the binaries already built"
        );
    }
    if !all_present(&bins) {
        bail!(
            "after cargo build, the binaries are still missing in {}",
            dir.display()
        );
    }
    Ok(bins)
}

/// Whether a binary is older than the newest source file (`*.rs`, `Cargo.toml`, `Cargo.lock`)
/// of the workspace's crates.
fn stale(b: &Bins) -> bool {
    let oldest_bin = [&b.remote, &b.coordinator, &b.worker]
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .min();
    let Some(oldest_bin) = oldest_bin else {
        return true;
    };
    let root = crate::workspace_root();
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for krate in [
        "cli",
        "coordinator",
        "worker",
        "exec",
        "proto",
        "cas",
        "makefile",
    ] {
        newest_source(&root.join(krate), &mut newest);
    }
    for f in ["Cargo.toml", "Cargo.lock"] {
        if let Ok(t) = std::fs::metadata(root.join(f)).and_then(|m| m.modified()) {
            newest = newest.max(t);
        }
    }
    newest > oldest_bin
}

fn newest_source(dir: &Path, newest: &mut std::time::SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            if e.file_name() != "target" && e.file_name() != "tests" {
                newest_source(&path, newest);
            }
        } else if path.extension().is_some_and(|x| x == "rs") || e.file_name() == "Cargo.toml" {
            if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(t);
            }
        }
    }
}
