//! Finding the built `rmake-remote`, `rmake-coordinator` and `rmake-worker` next to the test
//! executable (`target/debug/`), building them once (under a lock file) when one is missing.
//!
//! `RMAKE_TESTS_REBUILD=1` builds them even when present (cargo does nothing when they are up to
//! date), for a run right after pulling others' changes. `RMAKE_TESTS_BIN_DIR=dir` takes them
//! from `dir` instead (e.g. release builds) and never builds.

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
    let force = std::env::var_os("RMAKE_TESTS_REBUILD").is_some_and(|v| v != "0");
    if all_present(&bins) && !force {
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
    if all_present(&bins) && !force {
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
    if !status.success() && !all_present(&bins) {
        bail!("cargo build --bins {PACKAGES:?} failed ({status})");
    }
    if !all_present(&bins) {
        bail!(
            "after cargo build, the binaries are still missing in {}",
            dir.display()
        );
    }
    Ok(bins)
}
