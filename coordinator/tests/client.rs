//! The client never hands out wrong bytes: against a lying server, downloads fail verification.

use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;

use rmake_cas::Digest;
use rmake_proto::{batch, ClientError, CoordinatorClient};

/// A server that answers every blob request with the wrong bytes.
async fn liar() -> String {
    let app = Router::new()
        .route(
            "/v1/blobs/{hash}/{size}",
            get(|| async { Bytes::from_static(b"not what you asked for") }),
        )
        .route(
            "/v1/batch/download",
            post(|body: Bytes| async move {
                let req: rmake_proto::BatchDownloadRequest = serde_json::from_slice(&body)
                    .unwrap_or(rmake_proto::BatchDownloadRequest { digests: vec![] });
                let mut out = Vec::new();
                for d in &req.digests {
                    let wrong = vec![0u8; d.size as usize];
                    batch::encode_frame(&mut out, d, Some(&wrong));
                }
                out
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn downloads_from_a_lying_server_fail_verification() {
    let c = CoordinatorClient::new(&liar().await, None).expect("client");
    let wanted = Digest::of(b"not what you asked for?");
    let err = c.download_blob(&wanted).await.expect_err("must not verify");
    assert!(
        matches!(
            err,
            ClientError::DigestMismatch { .. } | ClientError::Protocol(_)
        ),
        "{err}"
    );
    let same_len = Digest {
        size: 22,
        ..Digest::of(b"x")
    };
    let err = c
        .download_blob(&same_len)
        .await
        .expect_err("must not verify");
    assert!(
        matches!(err, ClientError::DigestMismatch { expected, .. } if expected == same_len),
        "{err}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out");
    let err = c
        .download_to_file(&same_len, &path)
        .await
        .expect_err("must not verify");
    assert!(matches!(err, ClientError::DigestMismatch { .. }), "{err}");
    assert!(!path.exists(), "a file that failed verification is removed");

    let err = c
        .batch_download(&[Digest::of(b"abc")])
        .await
        .expect_err("must not verify");
    assert!(matches!(err, ClientError::DigestMismatch { .. }), "{err}");
}
