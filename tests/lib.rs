//! The end-to-end test harness of rmake: real `rmake-coordinator` and `rmake-worker` processes on
//! 127.0.0.1 ([`cluster`]), `rmake-remote` and GNU make run side by side on two copies of one
//! tree ([`pair`]), and the comparison of what they printed and left behind ([`snapshot`]).
//!
//! Every test file under `e2e/` takes [`serial`] first: clusters are timing-sensitive and the
//! machines running the suite are small, so the tests of one binary run one after another.

pub mod bins;
pub mod case;
pub mod cluster;
pub mod golden_format;
pub mod http;
pub mod pair;
pub mod procs;
pub mod run;
pub mod snapshot;
pub mod tree;

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of one test binary (a failed test does not block the others).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}
