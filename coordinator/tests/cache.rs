//! The size cap (LRU eviction that spares pinned blobs) and the action cache (entries whose
//! outputs are gone are misses), on a real server.

use std::time::Duration;

use bytes::Bytes;

use rmake_cas::Digest;
use rmake_coordinator::eviction::evict_once;
use rmake_proto::{
    ActionKey, ActionResult, BuildId, LogOutput, OutputFile, PinRequest, Platform, Timings,
};

use crate::harness::{blob, Options, TestServer};

async fn evict(server: &TestServer) -> rmake_coordinator::eviction::EvictionReport {
    let blobs = server.state.blobs.clone();
    tokio::task::spawn_blocking(move || evict_once(&blobs))
        .await
        .expect("join")
        .expect("evict")
}

async fn pause() {
    // Last use is kept in milliseconds; keep uses apart.
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn cap_evicts_least_recently_used_and_never_pinned() {
    let server = TestServer::with(Options {
        max_cache_bytes: 10_000,
        ..Options::default()
    })
    .await;
    let c = server.client();
    let [a, b, cc, d]: [(Digest, Bytes); 4] = std::array::from_fn(|i| blob(i as u64 + 1, 2500));
    let e = blob(5, 5000);
    for (dg, bytes) in [&a, &b, &cc, &d] {
        c.upload_blob(dg, bytes.clone()).await.expect("upload");
        pause().await;
    }
    // a is used again, so it is now the most recent; b is pinned by a live build.
    c.download_blob(&a.0).await.expect("read a");
    pause().await;
    let pin = PinRequest {
        build_id: BuildId("build-7".into()),
        digests: vec![b.0],
        ttl_secs: 600,
    };
    assert!(c.pin(&pin).await.expect("pin").missing.is_empty());
    pause().await;
    c.upload_blob(&e.0, e.1.clone()).await.expect("upload e");
    // 15,000 bytes over a 10,000 cap: the two oldest unpinned (c, then d) must go.
    // (a, b, c, d exactly filled the cap, which is not over it: nothing went before.)
    // (The background task may already have run the pass; either way the outcome is the same.)
    let report = evict(&server).await;
    assert!(report.bytes_after <= 10_000, "{report:?}");
    let all = [a.0, b.0, cc.0, d.0, e.0];
    assert_eq!(c.find_missing(&all).await.expect("find"), vec![cc.0, d.0]);
    let st = c.status().await.expect("status");
    assert_eq!(
        (
            st.blob_count,
            st.evictions,
            st.evicted_bytes,
            st.pinned_builds
        ),
        (3, 2, 5000, 1)
    );

    // Fill far past the cap: the pinned blob survives every pass.
    for i in 0..10u64 {
        let (dg, bytes) = blob(100 + i, 3000);
        c.upload_blob(&dg, bytes).await.expect("upload");
        pause().await;
    }
    evict(&server).await;
    // (Checked on the store directly: a find-missing would count as a use of b.)
    assert!(
        server.state.blobs.store().has(&b.0).expect("has"),
        "pinned blob was evicted"
    );
    assert!(c.status().await.expect("status").blob_bytes <= 10_000);

    // Once the build unpins, the blob is an ordinary (old) blob and goes first.
    c.unpin(&BuildId("build-7".into())).await.expect("unpin");
    let (dg, bytes) = blob(999, 3000);
    c.upload_blob(&dg, bytes).await.expect("upload");
    evict(&server).await;
    assert_eq!(c.find_missing(&[b.0]).await.expect("find"), vec![b.0]);
}

#[tokio::test]
async fn background_eviction_runs_when_the_cap_is_crossed() {
    let server = TestServer::with(Options {
        max_cache_bytes: 5_000,
        ..Options::default()
    })
    .await;
    let c = server.client();
    for i in 0..6u64 {
        let (dg, bytes) = blob(i, 2000);
        c.upload_blob(&dg, bytes).await.expect("upload");
    }
    let mut st = c.status().await.expect("status");
    for _ in 0..500 {
        // (The counters are read without a lock: wait for both to settle.)
        if st.blob_bytes <= 5_000 && st.evictions >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        st = c.status().await.expect("status");
    }
    assert!(st.blob_bytes <= 5_000 && st.evictions >= 4, "{st:?}");
}

fn result_with(outputs: &[Digest], stderr: Option<Digest>) -> ActionResult {
    ActionResult {
        output_files: outputs
            .iter()
            .enumerate()
            .map(|(i, d)| OutputFile {
                path: format!("out/{i}.o"),
                digest: *d,
                executable: i == 0,
            })
            .collect(),
        stdout: LogOutput::Inline {
            text: "cc -c x.c\n".into(),
        },
        stderr: stderr.map_or_else(LogOutput::empty, |digest| LogOutput::Blob { digest }),
        exit_code: 0,
        timings: Timings {
            execution_ms: 5,
            ..Timings::default()
        },
        platform: Platform::current(),
        ..ActionResult::default()
    }
}

#[tokio::test]
async fn action_cache_hits_and_misses_when_outputs_are_gone() {
    let server = TestServer::start().await;
    let c = server.client();
    let (o1, b1) = blob(1, 100);
    let (o2, b2) = blob(2, 200);
    let (log, blog) = blob(3, 50);
    for (d, b) in [(o1, b1), (o2, b2), (log, blog)] {
        c.upload_blob(&d, b).await.expect("upload");
    }
    let key = ActionKey([7; 32]);
    let result = result_with(&[o1, o2], Some(log));
    let cache = server.state.actions.clone();
    let (k, r) = (key, result.clone());
    tokio::task::spawn_blocking(move || cache.insert(&k, &r))
        .await
        .expect("join")
        .expect("insert");
    assert_eq!(c.lookup_action(&key).await.expect("lookup"), Some(result));
    assert_eq!(c.status().await.expect("status").action_cache_entries, 1);

    // The coordinator refuses to store an entry that points at nothing.
    let cache = server.state.actions.clone();
    let dangling = result_with(&[Digest::of(b"never uploaded")], None);
    let err = tokio::task::spawn_blocking(move || cache.insert(&ActionKey([8; 32]), &dangling))
        .await
        .expect("join");
    assert!(err.is_err());

    // An output blob disappears (evicted, deleted): the entry is a miss, and is dropped.
    let store = server.state.blobs.store().clone();
    tokio::task::spawn_blocking(move || store.delete(&o2))
        .await
        .expect("join")
        .expect("delete");
    assert_eq!(c.lookup_action(&key).await.expect("lookup"), None);
    assert_eq!(c.status().await.expect("status").action_cache_entries, 0);
    // Even after the blob comes back, the dropped entry stays gone.
    c.upload_blob(&o2, blob(2, 200).1).await.expect("re-upload");
    assert_eq!(c.lookup_action(&key).await.expect("lookup"), None);
}

#[tokio::test]
async fn restart_keeps_cache_and_reconciles() {
    let server = TestServer::start().await;
    let c = server.client();
    let (o1, b1) = blob(1, 100);
    let (o2, b2) = blob(2, 5000);
    c.upload_blob(&o1, b1.clone()).await.expect("upload");
    c.upload_blob(&o2, b2).await.expect("upload");
    let cache = server.state.actions.clone();
    let (k1, k2) = (ActionKey([1; 32]), ActionKey([2; 32]));
    tokio::task::spawn_blocking(move || {
        cache.insert(&k1, &result_with(&[o1], None))?;
        cache.insert(&k2, &result_with(&[o2], None))
    })
    .await
    .expect("join")
    .expect("insert");
    let dir = server.stop().await;
    // Behind the coordinator's back: o2's file vanishes, and a stray valid blob appears.
    let store = rmake_cas::DiskStore::open(dir.path().join("cas")).expect("store");
    rmake_cas::BlobStore::delete(&store, &o2).expect("delete");
    let (stray, sb) = blob(50, 777);
    rmake_cas::BlobStore::put(&store, &stray, &sb).expect("put");
    // And a file that claims a name its bytes do not hash to.
    let (liar, liar_bytes) = blob(60, 300);
    let liar_path = store.blob_path(&liar);
    if let Some(parent) = liar_path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&liar_path, vec![0u8; liar_bytes.len()]).expect("write corrupt blob");
    let server = TestServer::in_dir(dir, Options::default()).await;
    let c = server.client();
    assert_eq!(
        c.find_missing(&[liar]).await.expect("find"),
        vec![liar],
        "corrupt file not adopted"
    );
    assert!(!liar_path.exists(), "corrupt file removed");
    let st = c.status().await.expect("status");
    assert_eq!(
        (st.blob_count, st.blob_bytes, st.action_cache_entries),
        (2, 100 + 777, 1)
    );
    assert!(c.lookup_action(&k1).await.expect("lookup").is_some());
    assert!(c.lookup_action(&k2).await.expect("lookup").is_none());
    assert_eq!(c.download_blob(&stray).await.expect("adopted"), sb);
}
