//! The `rmake-coordinator` binary's configuration handling: bad config is a clear error, and
//! tokens from the environment are enforced and never logged.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use rmake_proto::CoordinatorClient;

#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("coordinator.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\nmax_cache_sise = \"1GiB\"\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_rmake-coordinator"))
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rmake-coordinator: error: invalid config file"),
        "{stderr}"
    );
    assert!(stderr.contains("max_cache_sise"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_rmake-coordinator"))
        .env_remove("RMAKE_DATA_DIR")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data-dir"));
}

#[tokio::test]
async fn env_tokens_are_enforced_and_never_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmake-coordinator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--max-cache-size",
            "1GiB",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RMAKE_TOKENS", "reader:sup3r-s3cret-r,admin:sup3r-s3cret-a")
        .env("RMAKE_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut sent = false;
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&all);
            if !sent {
                if let Some(addr) = text
                    .lines()
                    .filter(|l| l.contains("listening"))
                    .find_map(|l| {
                        l.split_whitespace()
                            .find_map(|w| w.strip_prefix("addr="))
                            .map(str::to_string)
                    })
                {
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("address");
    let url = format!("http://{addr}");
    let anon = CoordinatorClient::new(&url, None).expect("client");
    assert_eq!(anon.status().await.expect_err("401").status(), Some(401));
    let reader_c = CoordinatorClient::new(&url, Some("sup3r-s3cret-r".into())).expect("client");
    assert_eq!(
        reader_c.status().await.expect("status").max_cache_bytes,
        1 << 30
    );
    let err = reader_c
        .upload_blob(&rmake_cas::Digest::EMPTY, bytes::Bytes::new())
        .await
        .expect_err("403");
    assert_eq!(err.status(), Some(403));
    let admin = CoordinatorClient::new(&url, Some("sup3r-s3cret-a".into())).expect("client");
    admin
        .upload_blob(&rmake_cas::Digest::EMPTY, bytes::Bytes::new())
        .await
        .expect("admin uploads");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful stop on SIGTERM: {status:?}");
    let log = reader.join().expect("reader");
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains("sup3r-s3cret"), "a token was logged:\n{log}");
    assert!(
        !log.contains("only loopback"),
        "tokens are configured, no loopback warning"
    );
}

#[test]
fn without_tokens_the_start_warns_about_loopback_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmake-coordinator"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("RMAKE_TOKENS")
        .env("RMAKE_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            if all.contains("only loopback") {
                let _ = tx.send(());
                break;
            }
        }
    });
    let warned = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "no loopback-only warning at start");
}
