//! Handler tests through `tower::ServiceExt::oneshot`: error shapes, limits, the loopback rule.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use rmake_coordinator::config::Limits;
use rmake_coordinator::{app, AppState, Config};
use rmake_proto::ErrorBody;

fn router(peer: [u8; 4]) -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::local(dir.path(), 1 << 30);
    config.limits = Limits {
        max_json_bytes: 1024,
        max_batch_blobs: 3,
        ..Limits::default()
    };
    let (state, _) = AppState::open(&config).expect("open");
    let app = app(state).layer(MockConnectInfo(SocketAddr::from((peer, 4242))));
    (app, dir)
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, bytes.to_vec())
}

#[track_caller]
fn error_code(body: &[u8]) -> String {
    let e: ErrorBody = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not an error body ({e}): {body:?}"));
    assert!(!e.error.is_empty());
    e.code
}

#[tokio::test]
async fn health_and_status() {
    let (app, _dir) = router([127, 0, 0, 1]);
    let (s, b) = call(&app, Method::GET, "/healthz", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, br#"{"status":"ok"}"#);
    let (s, b) = call(&app, Method::GET, "/v1/status", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    let st: rmake_proto::StatusResponse = serde_json::from_slice(&b).expect("status json");
    assert_eq!(
        (st.blob_count, st.blob_bytes, st.max_cache_bytes),
        (0, 0, 1 << 30)
    );
}

#[tokio::test]
async fn every_error_is_json_with_the_right_status() {
    let (app, _dir) = router([127, 0, 0, 1]);
    let d = rmake_cas::Digest::of(b"x");
    let cases: Vec<(Method, String, Vec<u8>, StatusCode, &str)> = vec![
        (
            Method::GET,
            "/nope".into(),
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/v1/status".into(),
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/v1/blobs/xyz/1".into(),
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            format!("/v1/blobs/{}/01", d.hex()),
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            format!("/v1/blobs/{}/1", d.hex()),
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::POST,
            "/v1/find-missing".into(),
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/find-missing".into(),
            br#"{"digests":["zz/1"]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/find-missing".into(),
            vec![b' '; 4096],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::POST,
            "/v1/find-missing".into(),
            serde_json::to_vec(&serde_json::json!({"digests": [d, d, d, d]})).expect("json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::PUT,
            format!("/v1/blobs/{}/1", d.hex()),
            b"y".to_vec(),
            StatusCode::BAD_REQUEST,
            "digest_mismatch",
        ),
        (
            Method::PUT,
            format!("/v1/blobs/{}/1", d.hex()),
            b"xx".to_vec(),
            StatusCode::BAD_REQUEST,
            "digest_mismatch",
        ),
        (
            Method::GET,
            format!("/v1/actions/{}", "0".repeat(64)),
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/v1/actions/ABC".into(),
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        // There is no way for a client to write an action-cache entry.
        (
            Method::PUT,
            format!("/v1/actions/{}", "0".repeat(64)),
            b"{}".to_vec(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::POST,
            format!("/v1/actions/{}", "0".repeat(64)),
            b"{}".to_vec(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::POST,
            "/v1/batch/upload".into(),
            vec![1, 2, 3],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/pins".into(),
            br#"{"build_id":"../x","ttl_secs":5}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::DELETE,
            "/v1/pins/.hidden".into(),
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let (s, b) = call(&app, method.clone(), &uri, body).await;
        assert_eq!(s, status, "{method} {uri}: {}", String::from_utf8_lossy(&b));
        assert_eq!(error_code(&b), code, "{method} {uri}");
    }
    let (s, _) = call(
        &app,
        Method::PUT,
        &format!("/v1/blobs/{}/1", d.hex()),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn range_answers() {
    let (app, _dir) = router([127, 0, 0, 1]);
    let data = b"0123456789";
    let d = rmake_cas::Digest::of(data);
    let uri = format!("/v1/blobs/{}/{}", d.hex(), d.size);
    assert_eq!(
        call(&app, Method::PUT, &uri, data.to_vec()).await.0,
        StatusCode::CREATED
    );
    let get = |range: &'static str| {
        let app = app.clone();
        let uri = uri.clone();
        async move {
            let req = Request::get(&uri)
                .header("range", range)
                .body(Body::empty())
                .expect("req");
            let resp = app.oneshot(req).await.expect("infallible");
            let status = resp.status();
            let cr = resp
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap_or("").to_string());
            let body = resp
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes()
                .to_vec();
            (status, cr, body)
        }
    };
    assert_eq!(
        get("bytes=2-4").await,
        (
            StatusCode::PARTIAL_CONTENT,
            Some("bytes 2-4/10".into()),
            b"234".to_vec()
        )
    );
    assert_eq!(
        get("bytes=7-").await,
        (
            StatusCode::PARTIAL_CONTENT,
            Some("bytes 7-9/10".into()),
            b"789".to_vec()
        )
    );
    assert_eq!(
        get("bytes=-2").await,
        (
            StatusCode::PARTIAL_CONTENT,
            Some("bytes 8-9/10".into()),
            b"89".to_vec()
        )
    );
    assert_eq!(get("bytes=0-1,4-5").await.0, StatusCode::OK);
    let head = Request::head(&uri).body(Body::empty()).expect("req");
    let resp = app.clone().oneshot(head).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some("10")
    );
    assert!(resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .is_empty());
    let (s, cr, body) = get("bytes=10-").await;
    assert_eq!(
        (s, cr),
        (StatusCode::RANGE_NOT_SATISFIABLE, Some("bytes */10".into()))
    );
    assert_eq!(error_code(&body), "range_not_satisfiable");
}

#[tokio::test]
async fn without_tokens_only_loopback_peers_are_served() {
    let (app, _dir) = router([192, 0, 2, 7]);
    for (method, uri) in [
        (Method::GET, "/v1/status"),
        (Method::POST, "/v1/find-missing"),
        (Method::GET, "/v1/blobs/00/0"),
    ] {
        let (s, b) = call(&app, method, uri, Body::empty()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(error_code(&b), "forbidden");
    }
    // Health checks stay open (they reveal nothing).
    assert_eq!(
        call(&app, Method::GET, "/healthz", Body::empty()).await.0,
        StatusCode::OK
    );

    // Without any peer information the request is refused too (fail closed).
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, _) = AppState::open(&Config::local(dir.path(), 1 << 20)).expect("open");
    let bare = app_without_peer(state);
    assert_eq!(
        call(&bare, Method::GET, "/v1/status", Body::empty())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

fn app_without_peer(state: AppState) -> Router {
    app(state)
}

/// Seeded garbage on every route and method: always an answer, never a 500 or a panic.
#[tokio::test]
async fn garbage_never_panics_or_500s() {
    let (app, _dir) = router([127, 0, 0, 1]);
    let d = rmake_cas::Digest::of(b"x");
    let uris = [
        "/healthz".to_string(),
        "/v1/status".into(),
        "/v1/find-missing".into(),
        format!("/v1/blobs/{}/1", d.hex()),
        format!("/v1/blobs/{}/99999999999999999999", d.hex()),
        "/v1/blobs/%00/%ff".into(),
        "/v1/batch/upload".into(),
        "/v1/batch/download".into(),
        format!("/v1/actions/{}", "f".repeat(64)),
        "/v1/actions/%2e%2e".into(),
        "/v1/pins".into(),
        "/v1/pins/%2e%2e%2fetc".into(),
    ];
    let mut x: u64 = 0x1234_5678;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for uri in &uris {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            for _ in 0..5 {
                let len = (next() % 300) as usize;
                let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                if next() % 3 == 0 {
                    body = br#"{"digests":["#.to_vec();
                }
                let (s, b) = call(&app, method.clone(), uri, body).await;
                assert_ne!(s, StatusCode::INTERNAL_SERVER_ERROR, "{method} {uri}");
                if !s.is_success() {
                    error_code(&b);
                }
            }
        }
    }
}
