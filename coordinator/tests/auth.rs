//! Tokens and roles enforced per endpoint, on a real server.

use bytes::Bytes;

use rmake_cas::Digest;
use rmake_coordinator::Role;
use rmake_proto::{ActionKey, BuildId, ClientError, PinRequest};

use crate::harness::{blob, Options, TestServer};

fn status_of<T>(r: Result<T, ClientError>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(e) => e.status().unwrap_or_else(|| panic!("transport error: {e}")),
    }
}

#[tokio::test]
async fn roles_are_enforced_per_endpoint() {
    let tokens = vec![
        (Role::Client, "client-secret".to_string()),
        (Role::Worker, "worker-secret".to_string()),
        (Role::Reader, "reader-secret".to_string()),
        (Role::Admin, "admin-secret".to_string()),
    ];
    let server = TestServer::with(Options {
        tokens,
        ..Options::default()
    })
    .await;
    let (d, bytes) = blob(1, 1000);
    let key = ActionKey([3; 32]);
    let pin = PinRequest {
        build_id: BuildId("b1".into()),
        digests: vec![d],
        ttl_secs: 60,
    };

    // token → (upload, batch upload, read, find-missing, status, action lookup, pin)
    let table: [(Option<&str>, [u16; 7]); 6] = [
        (None, [401; 7]),
        (Some("wrong"), [401; 7]),
        (Some("reader-secret"), [403, 403, 200, 200, 200, 404, 403]),
        (Some("worker-secret"), [201, 200, 200, 200, 200, 404, 403]),
        (Some("client-secret"), [201, 200, 200, 200, 200, 404, 200]),
        (Some("admin-secret"), [201, 200, 200, 200, 200, 404, 200]),
    ];
    // Seed the blob so reads can succeed.
    server
        .client_with("admin-secret")
        .upload_blob(&d, bytes.clone())
        .await
        .expect("seed");
    for (token, expect) in table {
        let c = match token {
            Some(t) => server.client_with(t),
            None => server.client(),
        };
        let got = [
            match c.upload_blob(&d, bytes.clone()).await {
                Ok(()) => 201,
                Err(e) => e.status().unwrap_or(0),
            },
            status_of(c.batch_upload(&[(d, bytes.clone())]).await),
            status_of(c.download_blob(&d).await),
            status_of(c.find_missing(&[d]).await),
            status_of(c.status().await),
            match c.lookup_action(&key).await {
                Ok(None) => 404,
                Ok(Some(_)) => 200,
                Err(e) => e.status().unwrap_or(0),
            },
            status_of(c.pin(&pin).await),
        ];
        assert_eq!(got, expect, "token {token:?}");
        // Health needs no token.
        assert_eq!(c.health().await.expect("health").status, "ok");
    }
    let err = server.client().status().await.expect_err("401");
    assert_eq!(err.code(), Some("unauthorized"));
    let err = server
        .client_with("reader-secret")
        .upload_blob(&Digest::EMPTY, Bytes::new())
        .await
        .expect_err("403");
    assert_eq!(err.code(), Some("forbidden"));
}
