//! Fetching what an action needs into the local blob cache: the directory nodes of its input
//! root (level by level, so each level is one batch), the file blobs they name, and the blobs
//! of its `inputs` overlay. Small blobs come in batches, large ones streamed.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::StreamExt;

use rmake_cas::tree::read_directory;
use rmake_cas::{BlobStore, Digest, Node};
use rmake_proto::CoordinatorClient;

use crate::blob_cache::BlobCache;

/// Largest blob fetched in a batch; larger ones are streamed.
const BATCH_BLOB_MAX: u64 = 1 << 20;
/// Bytes asked for in one batch request.
const BATCH_BYTES: u64 = 8 << 20;
/// Blobs asked for in one batch request.
const BATCH_COUNT: usize = 2000;
/// Large blobs streamed at once.
const PARALLEL_STREAMS: usize = 4;

/// Every blob an action needs, once each: its directory nodes and file blobs.
#[derive(Debug, Default)]
pub struct Needed {
    /// Directory nodes of the input root, the root first.
    pub dirs: Vec<Digest>,
    /// File blobs of the tree and the overlay.
    pub files: Vec<Digest>,
}

impl Needed {
    /// All of them.
    pub fn all(&self) -> Vec<Digest> {
        self.dirs.iter().chain(&self.files).copied().collect()
    }
}

/// Trees recently found complete in the cache, with their blobs: an action on one of them skips
/// walking the tree and checking every blob (O(files) per action otherwise), as long as no
/// eviction ran since.
#[derive(Debug, Default)]
pub struct KnownTrees {
    entries: std::sync::Mutex<Vec<KnownTree>>,
}

/// A tree found whole in the cache at an eviction epoch, with its blobs.
#[derive(Debug)]
struct KnownTree {
    root: Digest,
    epoch: u64,
    blobs: Arc<Vec<Digest>>,
}

/// Trees remembered.
const KNOWN_TREES: usize = 16;

impl KnownTrees {
    fn get(&self, root: &Digest) -> Option<(u64, Arc<Vec<Digest>>)> {
        let e = self.entries.lock().ok()?;
        e.iter()
            .find(|k| k.root == *root)
            .map(|k| (k.epoch, k.blobs.clone()))
    }

    fn insert(&self, root: Digest, epoch: u64, blobs: Vec<Digest>) {
        if let Ok(mut e) = self.entries.lock() {
            e.retain(|k| k.root != root);
            e.insert(
                0,
                KnownTree {
                    root,
                    epoch,
                    blobs: Arc::new(blobs),
                },
            );
            e.truncate(KNOWN_TREES);
        }
    }
}

/// Makes sure the cache holds the tree `root` and the blobs `extra`, and pins everything the
/// action needs (returned, for unpinning). Fails when the coordinator lacks a blob.
pub async fn fetch_and_pin(
    client: &CoordinatorClient,
    cache: &Arc<BlobCache>,
    known: &KnownTrees,
    root: Digest,
    extra: &[Digest],
) -> anyhow::Result<Vec<Digest>> {
    if let Some((epoch, tree)) = known.get(&root) {
        cache.pin(&tree);
        // Pinned now: if nothing was evicted up to here, the whole tree is still there.
        if cache.epoch() == epoch {
            cache.pin(extra);
            let pinned: Vec<Digest> = tree.iter().chain(extra).copied().collect();
            let missing = missing(cache, extra).await;
            let fetched = match missing {
                Ok(m) => download(client, cache, &m).await,
                Err(e) => Err(e),
            };
            return match fetched {
                Ok(()) => Ok(pinned),
                Err(e) => {
                    cache.unpin(&pinned);
                    Err(e)
                }
            };
        }
        cache.unpin(&tree);
    }
    let epoch = cache.epoch();
    let needed = fetch_inputs(client, cache, root, &[]).await?;
    let tree = needed.all();
    cache.pin(&tree);
    let missing = missing(cache, extra).await;
    let fetched = match missing {
        Ok(m) => download(client, cache, &m).await,
        Err(e) => Err(e),
    };
    cache.pin(extra);
    let pinned: Vec<Digest> = tree.iter().chain(extra).copied().collect();
    if let Err(e) = fetched {
        cache.unpin(&pinned);
        return Err(e);
    }
    known.insert(root, epoch, tree);
    Ok(pinned)
}

/// Makes sure the cache holds the tree `root` and the blobs `extra`; returns everything the
/// action needs. Fails when the coordinator lacks a blob.
pub async fn fetch_inputs(
    client: &CoordinatorClient,
    cache: &Arc<BlobCache>,
    root: Digest,
    extra: &[Digest],
) -> anyhow::Result<Needed> {
    let mut needed = Needed::default();
    let mut seen_dirs = HashSet::new();
    let mut seen_files = HashSet::new();
    let mut level = vec![root];
    seen_dirs.insert(root);
    while !level.is_empty() {
        needed.dirs.extend(&level);
        let missing = missing(cache, &level).await?;
        download(client, cache, &missing).await?;
        let c = cache.clone();
        let nodes = tokio::task::spawn_blocking(move || {
            level
                .iter()
                .map(|d| {
                    read_directory(c.store(), d)
                        .with_context(|| format!("reading directory node {d}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .await
        .context("directory reader task")??;
        let mut next = Vec::new();
        for dir in nodes {
            for e in dir.entries() {
                match &e.node {
                    Node::Directory { digest } if seen_dirs.insert(*digest) => next.push(*digest),
                    Node::File { digest, .. } if seen_files.insert(*digest) => {
                        needed.files.push(*digest)
                    }
                    _ => {}
                }
            }
        }
        level = next;
    }
    for d in extra {
        if seen_files.insert(*d) {
            needed.files.push(*d);
        }
    }
    let missing = missing(cache, &needed.files).await?;
    download(client, cache, &missing).await?;
    Ok(needed)
}

async fn missing(cache: &Arc<BlobCache>, digests: &[Digest]) -> anyhow::Result<Vec<Digest>> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let c = cache.clone();
    let d = digests.to_vec();
    tokio::task::spawn_blocking(move || c.missing(&d))
        .await
        .context("cache lookup task")?
}

/// Downloads `digests` into the cache: batches of small blobs, then large ones streamed.
async fn download(
    client: &CoordinatorClient,
    cache: &Arc<BlobCache>,
    digests: &[Digest],
) -> anyhow::Result<()> {
    if digests.is_empty() {
        return Ok(());
    }
    let (small, large): (Vec<Digest>, Vec<Digest>) =
        digests.iter().partition(|d| d.size <= BATCH_BLOB_MAX);
    for group in batches(&small) {
        let got = client
            .batch_download(&group)
            .await
            .context("downloading input blobs")?;
        let mut blobs = Vec::with_capacity(got.len());
        for (d, data) in got {
            match data {
                Some(b) => blobs.push((d, b)),
                None => bail!("input blob {d} is not stored on the coordinator"),
            }
        }
        let c = cache.clone();
        tokio::task::spawn_blocking(move || store_all(&c, &blobs))
            .await
            .context("cache writer task")??;
    }
    let mut streams =
        futures::stream::iter(large.into_iter().map(|d| stream_one(client, cache, d)))
            .buffer_unordered(PARALLEL_STREAMS);
    while let Some(r) = streams.next().await {
        r?;
    }
    Ok(())
}

/// Splits digests into groups within the batch limits.
fn batches(digests: &[Digest]) -> Vec<Vec<Digest>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for d in digests {
        if !cur.is_empty() && (bytes + d.size > BATCH_BYTES || cur.len() >= BATCH_COUNT) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += d.size;
        cur.push(*d);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn store_all(cache: &BlobCache, blobs: &[(Digest, Bytes)]) -> anyhow::Result<()> {
    let refs: Vec<(Digest, &[u8])> = blobs.iter().map(|(d, b)| (*d, b.as_ref())).collect();
    for ((d, _), r) in blobs.iter().zip(cache.store().put_many(&refs)) {
        r.with_context(|| format!("storing blob {d} in the cache"))?;
        cache.note_stored(d);
    }
    Ok(())
}

/// Streams one large blob into the cache (verified by the store before it becomes visible).
async fn stream_one(
    client: &CoordinatorClient,
    cache: &Arc<BlobCache>,
    digest: Digest,
) -> anyhow::Result<()> {
    let mut body = client
        .download_stream(&digest)
        .await
        .with_context(|| format!("downloading input blob {digest}"))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let c = cache.clone();
    let writer = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use std::io::Write;
        let mut w = c
            .store()
            .begin_write(&digest)
            .with_context(|| format!("caching blob {digest}"))?;
        while let Some(chunk) = rx.blocking_recv() {
            w.write_all(&chunk)
                .with_context(|| format!("caching blob {digest}"))?;
        }
        w.commit()
            .with_context(|| format!("caching blob {digest}"))?;
        c.note_stored(&digest);
        Ok(())
    });
    let mut failed = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(b) => {
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(tx);
    if let Some(e) = failed {
        // The writer's uncommitted blob is discarded when it is dropped.
        let _ = writer.await;
        return Err(e).with_context(|| format!("downloading input blob {digest}"));
    }
    writer.await.context("cache writer task")?
}
