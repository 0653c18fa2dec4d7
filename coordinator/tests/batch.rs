//! Batch endpoints against a real server: many small blobs up and down, with missing and
//! mismatched entries, and the limits.

use bytes::Bytes;

use rmake_cas::Digest;
use rmake_proto::batch;

use crate::harness::{blob, TestServer};

#[tokio::test]
async fn batch_round_trip_with_missing_and_mismatched() {
    let server = TestServer::start().await;
    let c = server.client();
    let blobs: Vec<(Digest, Bytes)> = (0..500u64)
        .map(|i| blob(100 + i, 1024 + (i as usize * 37) % 7168))
        .collect();
    let answer = c.batch_upload(&blobs).await.expect("batch upload");
    assert_eq!(answer.stored.len(), 500);
    assert!(answer.rejected.is_empty());

    let (bad_d, _) = blob(9999, 100);
    let wrong = Bytes::from(vec![0u8; 100]);
    let (ok_d, ok_b) = blob(10_000, 50);
    let answer = c
        .batch_upload(&[
            (bad_d, wrong),
            (ok_d, ok_b.clone()),
            (Digest::EMPTY, Bytes::new()),
        ])
        .await
        .expect("batch");
    assert_eq!(answer.stored, vec![ok_d, Digest::EMPTY]);
    assert_eq!(answer.rejected.len(), 1);
    assert_eq!(
        (answer.rejected[0].digest, answer.rejected[0].code.as_str()),
        (bad_d, "digest_mismatch")
    );

    let mut want: Vec<Digest> = blobs.iter().map(|(d, _)| *d).collect();
    want.push(bad_d);
    want.push(ok_d);
    let got = c.batch_download(&want).await.expect("batch download");
    assert_eq!(got.len(), want.len());
    for ((d, data), (wd, wb)) in got.iter().zip(&blobs) {
        assert_eq!(d, wd);
        assert_eq!(data.as_ref(), Some(wb));
    }
    assert_eq!(got[500], (bad_d, None));
    assert_eq!(got[501], (ok_d, Some(ok_b)));
    assert_eq!(c.find_missing(&want).await.expect("find"), vec![bad_d]);
}

#[tokio::test]
async fn upload_many_splits_by_the_limits() {
    let server = TestServer::start().await;
    let c = server.client();
    let mut blobs: Vec<(Digest, Bytes)> = (0..12_000u64)
        .map(|i| blob(i, 1000 + (i as usize % 3000)))
        .collect();
    blobs.push(blob(1, 3 << 20));
    let answer = c.upload_many(&blobs, 4).await.expect("upload many");
    assert_eq!(answer.stored.len(), blobs.len());
    let ds: Vec<Digest> = blobs.iter().map(|(d, _)| *d).collect();
    assert!(c.find_missing(&ds).await.expect("find").is_empty());
}

#[tokio::test]
async fn batch_limits_are_enforced() {
    let server = TestServer::start().await;
    let c = server.client();
    // A download whose blobs add up past the batch byte limit is refused before any read.
    let huge = Digest {
        hash: [1; 32],
        size: 1 << 30,
    };
    let err = c.batch_download(&[huge]).await.expect_err("too large");
    assert_eq!(
        (err.status(), err.code()),
        (Some(413), Some("payload_too_large"))
    );
    // Sizes near u64::MAX must not overflow the sum (a debug build would panic).
    let max = Digest {
        hash: [1; 32],
        size: u64::MAX - 1,
    };
    let err = c.batch_download(&[max]).await.expect_err("too large");
    assert_eq!(err.status(), Some(413));
    // An upload body past the limit is refused.
    let (d, b) = blob(3, 1 << 20);
    let many: Vec<(Digest, Bytes)> = (0..20).map(|_| (d, b.clone())).collect();
    let err = c.batch_upload(&many).await.expect_err("too large");
    assert_eq!(err.status(), Some(413));
    // A frame announcing more bytes than the body holds is a 400, not a panic.
    let mut body = Vec::new();
    batch::encode_frame(
        &mut body,
        &Digest {
            hash: [2; 32],
            size: u64::MAX,
        },
        None,
    );
    body[40] = 1;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/batch/upload", server.url))
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn upload_paths_batches_small_files_and_streams_large_ones() {
    let server = TestServer::start().await;
    let c = server.client();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for i in 0..300u64 {
        let (d, b) = blob(i, 100 + (i as usize * 97) % 9000);
        let p = dir.path().join(format!("f{i}"));
        std::fs::write(&p, &b).expect("write");
        files.push((d, p));
    }
    let (big, big_bytes) = blob(7777, (2 << 20) + 1);
    let big_path = dir.path().join("big");
    std::fs::write(&big_path, &big_bytes).expect("write");
    files.push((big, big_path));
    // A file changed after it was hashed is rejected, not stored under the old name.
    let (stale, _) = blob(8888, 500);
    let stale_path = dir.path().join("stale");
    std::fs::write(&stale_path, vec![1u8; 500]).expect("write");
    files.push((stale, stale_path));

    let answer = c.upload_paths(&files, 3).await.expect("upload paths");
    assert_eq!(answer.stored.len(), 301);
    assert_eq!(answer.rejected.len(), 1);
    assert_eq!(answer.rejected[0].digest, stale);
    let all: Vec<Digest> = files.iter().map(|(d, _)| *d).collect();
    assert_eq!(c.find_missing(&all).await.expect("find"), vec![stale]);
    assert_eq!(
        c.download_blob(&big).await.expect("download"),
        Bytes::from(big_bytes.to_vec())
    );

    // And back into another directory.
    let out = tempfile::tempdir().expect("tempdir");
    let good: Vec<(Digest, std::path::PathBuf)> = files[..301]
        .iter()
        .enumerate()
        .map(|(i, (d, _))| (*d, out.path().join(format!("o{i}"))))
        .collect();
    c.download_paths(&good, 3).await.expect("download paths");
    for ((_, src), (_, dst)) in files.iter().zip(&good) {
        assert_eq!(
            std::fs::read(src).expect("src"),
            std::fs::read(dst).expect("dst")
        );
    }
    let err = c
        .download_paths(&[(stale, out.path().join("x"))], 1)
        .await
        .expect_err("missing");
    assert_eq!(err.status(), Some(404));
}
