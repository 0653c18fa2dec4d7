//! The `rmake-worker` binary: flags over the config file, registration seen by a real
//! coordinator, and a SIGTERM that deregisters and exits 0.

mod harness;

use std::process::{Command, Stdio};
use std::time::Duration;

use harness::Farm;

/// The workers the coordinator lists: (name, platform) pairs.
async fn workers(url: &str) -> Vec<(String, serde_json::Value)> {
    let Ok(resp) = reqwest::get(format!("{url}/v1/farm")).await else {
        return Vec::new();
    };
    let Ok(v) = resp.json::<serde_json::Value>().await else {
        return Vec::new();
    };
    v["workers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|w| {
                    (
                        w["name"].as_str().unwrap_or_default().to_string(),
                        w["platform"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_layered_config_and_stops_on_sigterm() {
    let farm = Farm::start(Duration::from_secs(4)).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("worker.toml");
    std::fs::write(
        &config,
        "coordinator = \"http://127.0.0.1:1\"\nname = \"from-file\"\nslots = 3\ncache-size = \"1GiB\"\n[platform]\ntoolchain = \"gcc-12\"\nlevel = \"file\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmake-worker"))
        .arg("--config")
        .arg(&config)
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .arg("--platform")
        .arg("level=flag")
        .env("RMAKE_COORDINATOR", &farm.url)
        .env_remove("RMAKE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let url = farm.url.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let w = workers(&url).await;
        if !w.is_empty() {
            break w;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed.len(), 1);
    let (name, platform) = &listed[0];
    assert_eq!(
        name, "from-file",
        "the file's name is kept (no flag or env overrides it)"
    );
    assert_eq!(platform["toolchain"], "gcc-12");
    assert_eq!(platform["level"], "flag", "flags win over the file");
    assert_eq!(platform["os"], std::env::consts::OS);

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    let code = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code.code(), Some(0));
    let mut gone = false;
    for _ in 0..100 {
        if workers(&url).await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the worker deregistered");
    farm.stop().await;
}

#[test]
fn refuses_a_missing_coordinator_and_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_rmake-worker"))
        .env_remove("RMAKE_COORDINATOR")
        .env_remove("RMAKE_WORKER_CONFIG")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no coordinator"));
    let out = Command::new(env!("CARGO_BIN_EXE_rmake-worker"))
        .args([
            "--coordinator",
            "http://127.0.0.1:1",
            "--platform",
            "novalue",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key=value"));
}
