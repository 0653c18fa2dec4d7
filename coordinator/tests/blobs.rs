//! Single-blob transfers against a real server: round trips (empty, small, multi-GiB sparse),
//! digest mismatches, concurrent uploads of one blob, and ranges.

use bytes::Bytes;
use futures::StreamExt;

use rmake_cas::{Digest, Hasher};
use rmake_proto::ByteRange;

use crate::harness::{blob, TestServer};

#[tokio::test]
async fn empty_and_small_round_trips() {
    let server = TestServer::start().await;
    let c = server.client();
    assert_eq!(c.health().await.expect("health").status, "ok");
    for (d, bytes) in [
        (Digest::EMPTY, Bytes::new()),
        blob(1, 1),
        blob(2, 4096),
        blob(3, 3 * 1024 * 1024 + 17),
    ] {
        assert_eq!(c.find_missing(&[d]).await.expect("find"), vec![d]);
        c.upload_blob(&d, bytes.clone()).await.expect("upload");
        assert_eq!(c.find_missing(&[d, d]).await.expect("find"), vec![]);
        assert_eq!(c.download_blob(&d).await.expect("download"), bytes);
        // Uploading again is fine and changes nothing.
        c.upload_blob(&d, bytes.clone()).await.expect("re-upload");
    }
    let (d, bytes) = blob(3, 3 * 1024 * 1024 + 17);
    let out = server.dir.path().join("downloaded");
    c.download_to_file(&d, &out)
        .await
        .expect("download to file");
    assert_eq!(std::fs::read(&out).expect("read"), bytes);
    let missing = server.dir.path().join("missing");
    let err = c
        .download_to_file(&Digest::of(b"absent"), &missing)
        .await
        .expect_err("404");
    assert_eq!(err.status(), Some(404));
    assert!(!missing.exists());
    let st = c.status().await.expect("status");
    assert_eq!(st.blob_count, 4);
    assert_eq!(st.blob_bytes, 1 + 4096 + 3 * 1024 * 1024 + 17);
}

/// A blob larger than 4 GiB streamed from a sparse file and back, never whole in memory.
#[tokio::test]
async fn multi_gib_sparse_blob_streams_both_ways() {
    let server = TestServer::start().await;
    let c = server.client();
    let size: u64 = (4 << 30) + 4097;
    let src = tempfile::NamedTempFile::new().expect("tmp");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = src.reopen().expect("reopen");
        f.write_all(b"head").expect("write");
        f.seek(SeekFrom::Start(size - 4)).expect("seek");
        f.write_all(b"tail").expect("write");
    }
    let path = src.path().to_path_buf();
    let digest = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(path).expect("open");
        Digest::of_reader(&mut f).expect("hash")
    })
    .await
    .expect("join");
    assert_eq!(digest.size, size);
    c.upload_file(&digest, src.path()).await.expect("upload");
    assert!(c.find_missing(&[digest]).await.expect("find").is_empty());
    let mut stream = c.download_stream(&digest).await.expect("download");
    let mut h = Hasher::new();
    let mut biggest = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("verified chunk");
        biggest = biggest.max(chunk.len());
        h.update(&chunk);
    }
    assert_eq!(h.finish(), digest);
    assert!(
        biggest <= 4 << 20,
        "streamed in bounded chunks, got one of {biggest} bytes"
    );
    let tail = c
        .download_range(&digest, ByteRange::Suffix(4))
        .await
        .expect("range");
    assert_eq!(&tail[..], b"tail");
    // Free the disk at once.
    let store = server.state.blobs.store().clone();
    tokio::task::spawn_blocking(move || store.delete(&digest))
        .await
        .expect("join")
        .expect("delete");
}

#[tokio::test]
async fn mismatched_bytes_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let c = server.client();
    let (d, good) = blob(7, 2 * 1024 * 1024 + 3);
    let mut bad = good.to_vec();
    bad[1_000_000] ^= 1;
    let err = c
        .upload_blob(&d, Bytes::from(bad))
        .await
        .expect_err("must be refused");
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("digest_mismatch")),
        "{err}"
    );
    // Too short and too long (sent chunked, so no Content-Length trims it) are refused too.
    let url = format!("{}/v1/blobs/{}/{}", server.url, d.hex(), d.size);
    for (i, wrong) in [
        good.slice(..good.len() - 1),
        Bytes::from([good.to_vec(), vec![0]].concat()),
    ]
    .into_iter()
    .enumerate()
    {
        let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(wrong)]);
        let resp = reqwest::Client::new()
            .put(&url)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 400, "case {i}");
        let body: rmake_proto::ErrorBody = resp.json().await.expect("error body");
        assert_eq!(body.code, "digest_mismatch", "case {i}");
    }
    assert_eq!(c.find_missing(&[d]).await.expect("find"), vec![d]);
    assert_eq!(c.status().await.expect("status").blob_count, 0);
    let leftovers: Vec<_> = std::fs::read_dir(server.dir.path().join("cas/tmp"))
        .expect("tmp dir")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
    assert!(server.state.blobs.store().list().expect("list").is_empty());
    c.upload_blob(&d, good.clone())
        .await
        .expect("the right bytes are accepted");
    assert_eq!(c.download_blob(&d).await.expect("download"), good);
}

#[tokio::test]
async fn concurrent_uploads_of_one_blob() {
    let server = TestServer::start().await;
    let c = server.client();
    let (d, bytes) = blob(11, 8 * 1024 * 1024 + 5);
    let uploads = (0..8).map(|i| {
        let c = c.clone();
        let bytes = bytes.clone();
        async move {
            // Half stream in small chunks, half send in one piece, to interleave differently.
            if i % 2 == 0 {
                let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
                    .chunks(100_000)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect();
                c.upload_stream(&d, futures::stream::iter(chunks)).await
            } else {
                c.upload_blob(&d, bytes).await
            }
        }
    });
    for r in futures::future::join_all(uploads).await {
        r.expect("every concurrent upload succeeds");
    }
    let st = c.status().await.expect("status");
    assert_eq!((st.blob_count, st.blob_bytes), (1, d.size));
    assert_eq!(c.download_blob(&d).await.expect("download"), bytes);
}

#[tokio::test]
async fn range_requests_through_the_client() {
    let server = TestServer::start().await;
    let c = server.client();
    let (d, bytes) = blob(5, 3 * 1024 * 1024);
    c.upload_blob(&d, bytes.clone()).await.expect("upload");
    let n = bytes.len() as u64;
    let part = c
        .download_range(&d, ByteRange::Inclusive(10, 2_000_009))
        .await
        .expect("range");
    assert_eq!(part, bytes.slice(10..2_000_010));
    let part = c
        .download_range(&d, ByteRange::From(n - 1_500_000))
        .await
        .expect("range");
    assert_eq!(part, bytes.slice((n - 1_500_000) as usize..));
    let part = c
        .download_range(&d, ByteRange::Suffix(100))
        .await
        .expect("range");
    assert_eq!(part, bytes.slice((n - 100) as usize..));
    let err = c
        .download_range(&d, ByteRange::From(n))
        .await
        .expect_err("416");
    assert_eq!(err.status(), Some(416));
    let err = c
        .download_range(&Digest::of(b"nope"), ByteRange::From(0))
        .await
        .expect_err("404");
    assert_eq!(err.status(), Some(404));
}
