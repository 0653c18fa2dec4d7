//! A full disk (a small tmpfs as the data directory) gives a clear 507 and leaves no entry.
//! Skipped, with the reason printed, where tmpfs cannot be mounted.

use std::process::Command;

use bytes::Bytes;

use rmake_cas::Digest;

use crate::harness::{blob, Options, TestServer};

/// Mounts a tmpfs of `size` on a fresh temp dir; `None` if not permitted here.
fn mount_tmpfs(size: &str) -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().ok()?;
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(dir)
}

#[tokio::test]
async fn full_disk_is_507_and_stores_nothing() {
    let Some(mnt) = mount_tmpfs("12m") else {
        eprintln!(
            "SKIP full_disk_is_507_and_stores_nothing: mounting a tmpfs is not permitted here"
        );
        return;
    };
    let mount_path = mnt.path().to_path_buf();
    let server = TestServer::in_dir(mnt, Options::default()).await;
    let c = server.client();
    let (small, small_bytes) = blob(1, 10_000);
    c.upload_blob(&small, small_bytes.clone())
        .await
        .expect("small upload fits");

    let (big, big_bytes) = blob(2, 40 << 20);
    let err = c
        .upload_blob(&big, big_bytes)
        .await
        .expect_err("must not fit");
    assert_eq!(
        (err.status(), err.code()),
        (Some(507), Some("insufficient_storage")),
        "{err}"
    );
    assert!(err.to_string().contains("disk is full"), "{err}");

    // A batch that cannot fit fails the same way.
    let many: Vec<(Digest, Bytes)> = (0..15u64).map(|i| blob(100 + i, 900_000)).collect();
    let err = c.batch_upload(&many).await.expect_err("batch must not fit");
    assert_eq!(err.status(), Some(507), "{err}");

    // Nothing half-written is visible, and the store still works once space is back.
    assert_eq!(c.find_missing(&[big]).await.expect("find"), vec![big]);
    let store = server.state.blobs.store().clone();
    let listed = tokio::task::spawn_blocking(move || store.list())
        .await
        .expect("join")
        .expect("list");
    for info in &listed {
        let store = server.state.blobs.store().clone();
        let d = info.digest;
        let data = tokio::task::spawn_blocking(move || store.get(&d))
            .await
            .expect("join")
            .expect("get");
        assert!(data.is_some(), "listed blob {d} does not read back valid");
    }
    let tmp: Vec<_> = std::fs::read_dir(server.dir.path().join("cas/tmp"))
        .expect("tmp")
        .collect();
    assert!(tmp.is_empty(), "temp files left: {tmp:?}");
    assert_eq!(
        c.download_blob(&small).await.expect("small still there"),
        small_bytes
    );
    let (after, after_bytes) = blob(3, 5_000);
    c.upload_blob(&after, after_bytes)
        .await
        .expect("upload after the failure");
    let st = c.status().await.expect("status");
    assert_eq!(st.blob_count as usize, listed.len() + 1);

    let dir = server.stop().await;
    let _ = Command::new("umount").arg(&mount_path).status();
    drop(dir);
}
