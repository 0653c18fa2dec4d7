//! The real `rmake-coordinator` binary SIGKILLed in the middle of uploads: after a restart no
//! blob reads as valid unless it is, sled reopens, and completed blobs are still there.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;

use rmake_cas::{BlobStore, Digest, DiskStore};
use rmake_proto::CoordinatorClient;

use crate::harness::blob;

/// Starts the binary on 127.0.0.1:0 and returns it with its URL (read from its log).
fn spawn_coordinator(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmake-coordinator"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RMAKE_LOG", "info")
        .env_remove("RMAKE_TOKENS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coordinator");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening") {
                if let Some(addr) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("addr="))
                {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.to_string());
                    }
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("coordinator did not report its address");
    (child, format!("http://{addr}"))
}

fn slow_stream(
    data: Bytes,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(0usize, move |off| {
        let data = data.clone();
        async move {
            if off >= data.len() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            let end = (off + (1 << 20)).min(data.len());
            Some((Ok(data.slice(off..end)), end))
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_leaves_no_partial_blob() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, url) = spawn_coordinator(dir.path());
    let c = CoordinatorClient::new(&url, None).expect("client");
    let (done, done_bytes) = blob(1, 3 << 20);
    c.upload_blob(&done, done_bytes.clone())
        .await
        .expect("upload before the kill");
    let small: Vec<(Digest, Bytes)> = (0..200u64).map(|i| blob(1000 + i, 2000)).collect();
    c.batch_upload(&small).await.expect("batch before the kill");

    let inflight: Vec<(Digest, Bytes)> = (0..4u64).map(|i| blob(10 + i, 24 << 20)).collect();
    let mut tasks = Vec::new();
    for (d, b) in inflight.clone() {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.upload_stream(&d, slow_stream(b)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    for t in tasks {
        let r = t.await.expect("join");
        assert!(
            r.is_err(),
            "an upload cut by the kill must not report success"
        );
    }

    let (mut child, url) = spawn_coordinator(dir.path());
    let c = CoordinatorClient::new(&url, None).expect("client");
    let st = c
        .status()
        .await
        .expect("status after restart (sled reopened)");
    assert_eq!(
        c.download_blob(&done)
            .await
            .expect("completed blob survives"),
        done_bytes
    );
    let ds: Vec<Digest> = small.iter().map(|(d, _)| *d).collect();
    assert!(
        c.find_missing(&ds).await.expect("find").is_empty(),
        "acknowledged batch survives"
    );
    let in_ds: Vec<Digest> = inflight.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        c.find_missing(&in_ds).await.expect("find"),
        in_ds,
        "half-uploaded blobs must not appear"
    );
    assert_eq!(st.blob_count, 201);
    // The interrupted uploads' temp files are gone.
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("cas/tmp"))
        .expect("tmp")
        .collect();
    assert!(tmp.is_empty(), "temp files survived the restart: {tmp:?}");
    // And an interrupted blob can be uploaded in full now.
    c.upload_blob(&inflight[0].0, inflight[0].1.clone())
        .await
        .expect("upload after restart");
    child.kill().expect("kill");
    let _ = child.wait();

    // Every blob file on disk hashes to its name.
    let store = DiskStore::open(dir.path().join("cas")).expect("store");
    let listed = store.list().expect("list");
    assert_eq!(listed.len(), 202);
    for info in listed {
        assert!(
            store.verify(&info.digest).expect("verify"),
            "{} is corrupt",
            info.digest
        );
    }
}
