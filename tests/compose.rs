//! The compose end-to-end test (`tests/compose/run.sh`) as part of `cargo test --workspace`: a
//! farm of real containers built from `Dockerfile` and `docker-compose.yml`, driven by the
//! `rmake-remote` this workspace built. The script prints what each step measured and skips
//! (with a `SKIP:` line) where Docker is missing. The images take the binaries next to this test
//! (the debug build, no release build needed); `RMAKE_COMPOSE=0` skips the test.

use std::process::Command;

#[test]
fn compose_farm_end_to_end() {
    if std::env::var("RMAKE_COMPOSE").is_ok_and(|v| v == "0") {
        println!("SKIP: RMAKE_COMPOSE=0");
        return;
    }
    let bins = rmake_tests::bins::bins().unwrap_or_else(|e| panic!("the binaries: {e:#}"));
    // run.sh takes the binaries from $CARGO_TARGET_DIR/release: point it at ours.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let release = dir.path().join("release");
    std::fs::create_dir_all(&release).unwrap_or_else(|e| panic!("{e}"));
    for (name, path) in [
        ("rmake-remote", &bins.remote),
        ("rmake-coordinator", &bins.coordinator),
        ("rmake-worker", &bins.worker),
    ] {
        std::os::unix::fs::symlink(path, release.join(name)).unwrap_or_else(|e| panic!("{e}"));
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compose/run.sh");
    let status = Command::new("bash")
        .arg(&script)
        .env("CARGO_TARGET_DIR", dir.path())
        .env("RMAKE_E2E_NO_BUILD", "1")
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
}
