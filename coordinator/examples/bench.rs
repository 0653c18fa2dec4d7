//! Loopback benchmark of the coordinator: 1 GiB as 64 MiB blobs and 20,000 blobs of 1–8 KiB
//! through the batch endpoints, up and down, beside `cp -r` of the same files on the same disk.
//!
//! Run through `bench/coordinator.sh` (release build). Usage: `bench [SCRATCH_DIR]`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::StreamExt;

use rmake_cas::{testdata, Digest};
use rmake_coordinator::{server, AppState, Config};
use rmake_proto::CoordinatorClient;

const LARGE_BLOBS: usize = 16;
const LARGE_SIZE: usize = 64 << 20;
const SMALL_BLOBS: usize = 20_000;
const PARALLEL: usize = 4;

fn cp_r(from: &Path, to: &Path) -> Result<Duration> {
    let t = Instant::now();
    let st = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .context("running cp")?;
    if !st.success() {
        bail!("cp -r failed");
    }
    Ok(t.elapsed())
}

/// `cp -r` followed by a sync of the filesystem: the durable copy our uploads are compared to.
fn cp_r_sync(from: &Path, to: &Path) -> Result<Duration> {
    let t = Instant::now();
    cp_r(from, to)?;
    let st = Command::new("sync")
        .arg("-f")
        .arg(to)
        .status()
        .context("running sync")?;
    if !st.success() {
        bail!("sync -f failed");
    }
    Ok(t.elapsed())
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

struct Row {
    what: &'static str,
    ours: Duration,
    cp: Duration,
    /// For uploads (which fsync): `cp -r` plus a filesystem sync.
    cp_sync: Option<Duration>,
    bytes: u64,
    blobs: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RMAKE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let scratch = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("rmake-bench");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let result = run(&scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn run(scratch: &Path) -> Result<()> {
    // The data set, as files on disk.
    let large_dir = scratch.join("src/large");
    let small_dir = scratch.join("src/small");
    std::fs::create_dir_all(&large_dir)?;
    let mut large = Vec::new();
    // BENCH_ONLY=small or BENCH_ONLY=large runs only that half (for profiling).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let large_count = if only == "small" { 0 } else { LARGE_BLOBS };
    let small_count = if only == "large" { 0 } else { SMALL_BLOBS };
    for i in 0..large_count {
        let data = testdata::bytes(i as u64, LARGE_SIZE);
        let path = large_dir.join(format!("blob{i:02}"));
        std::fs::write(&path, &data)?;
        large.push((Digest::of(&data), path));
    }
    let mut small = Vec::new();
    for i in 0..small_count {
        let dir = small_dir.join(format!("d{:02}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        let len = 1024 + (i * 7919) % (7 * 1024 + 1);
        let data = testdata::bytes(1_000_000 + i as u64, len);
        let path = dir.join(format!("f{i:05}"));
        std::fs::write(&path, &data)?;
        small.push((Digest::of(&data), path));
    }
    let small_bytes: u64 = small.iter().map(|(d, _)| d.size).sum();
    let large_bytes = (LARGE_BLOBS * LARGE_SIZE) as u64;
    let _ = Command::new("sync").status();

    // The coordinator, in this process, on loopback.
    let mut config = Config::local(scratch.join("coordinator"), 1 << 40);
    // BENCH_FSYNC=0 measures the non-durable store (`fsync = false`); the default is durable.
    config.fsync = std::env::var("BENCH_FSYNC").as_deref() != Ok("0");
    let durability = if config.fsync {
        "durable uploads"
    } else {
        "fsync OFF"
    };
    let cfg = config.clone();
    let (state, _) = tokio::task::spawn_blocking(move || AppState::open(&cfg)).await??;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(server::serve(
        listener,
        state,
        Duration::from_secs(3600),
        std::future::pending(),
    ));
    let client = CoordinatorClient::new(&url, None)?;
    client.health().await?;

    let mut rows = Vec::new();

    // Large: upload files, download into files (each verified).
    if large_count > 0 {
        let t = Instant::now();
        let mut ups = futures::stream::iter(large.iter().map(|(d, p)| {
            let c = client.clone();
            async move { c.upload_file(d, p).await }
        }))
        .buffer_unordered(PARALLEL);
        while let Some(r) = ups.next().await {
            r?;
        }
        let up = t.elapsed();
        let cp_large = cp_r(&large_dir, &scratch.join("cp-large"))?;
        let cp_large_sync = cp_r_sync(&large_dir, &scratch.join("cp-large-sync"))?;
        std::fs::remove_dir_all(scratch.join("cp-large-sync"))?;
        rows.push(Row {
            what: "large upload",
            ours: up,
            cp: cp_large,
            cp_sync: Some(cp_large_sync),
            bytes: large_bytes,
            blobs: LARGE_BLOBS,
        });
        let dl_dir = scratch.join("dl-large");
        std::fs::create_dir_all(&dl_dir)?;
        let t = Instant::now();
        let mut downs = futures::stream::iter(large.iter().enumerate().map(|(i, (d, _))| {
            let c = client.clone();
            let path = dl_dir.join(format!("blob{i:02}"));
            async move { c.download_to_file(d, &path).await }
        }))
        .buffer_unordered(PARALLEL);
        while let Some(r) = downs.next().await {
            r?;
        }
        let down = t.elapsed();
        let cp_large2 = cp_r(&large_dir, &scratch.join("cp-large2"))?;
        rows.push(Row {
            what: "large download",
            ours: down,
            cp: cp_large2,
            cp_sync: None,
            bytes: large_bytes,
            blobs: LARGE_BLOBS,
        });
        std::fs::remove_dir_all(scratch.join("cp-large"))?;
        std::fs::remove_dir_all(scratch.join("cp-large2"))?;
        std::fs::remove_dir_all(&dl_dir)?;
    }

    if small_count == 0 {
        print_rows(&rows, &[], durability);
        return Ok(());
    }
    // Small: read the files and upload them in batches; download in batches and write files.
    let t = Instant::now();
    let paths: Vec<(Digest, PathBuf)> = small.clone();
    let blobs = tokio::task::spawn_blocking(move || -> Result<Vec<(Digest, Bytes)>> {
        paths
            .into_iter()
            .map(|(d, p)| Ok((d, Bytes::from(std::fs::read(p)?))))
            .collect()
    })
    .await??;
    let t_net = Instant::now();
    let answer = client.upload_many(&blobs, PARALLEL).await?;
    let up_net = t_net.elapsed();
    if answer.stored.len() != SMALL_BLOBS {
        bail!(
            "only {} of {SMALL_BLOBS} small blobs stored",
            answer.stored.len()
        );
    }
    let up = t.elapsed();
    let cp_small = cp_r(&small_dir, &scratch.join("cp-small"))?;
    let cp_small_sync = cp_r_sync(&small_dir, &scratch.join("cp-small-sync"))?;
    rows.push(Row {
        what: "small upload (batch)",
        ours: up,
        cp: cp_small,
        cp_sync: Some(cp_small_sync),
        bytes: small_bytes,
        blobs: SMALL_BLOBS,
    });

    let dl_dir = scratch.join("dl-small");
    let t = Instant::now();
    let digests: Vec<Digest> = small.iter().map(|(d, _)| *d).collect();
    let mut batches = futures::stream::iter(digests.chunks(2000).map(|chunk| {
        let c = client.clone();
        async move { c.batch_download(chunk).await }
    }))
    .buffered(PARALLEL);
    let mut got = Vec::with_capacity(SMALL_BLOBS);
    while let Some(r) = batches.next().await {
        got.extend(r?);
    }
    let down_net = t.elapsed();
    let dir = dl_dir.clone();
    let written = tokio::task::spawn_blocking(move || -> Result<usize> {
        let mut n = 0;
        for (i, (_, data)) in got.iter().enumerate() {
            let sub = dir.join(format!("d{:02}", i / 1000));
            if i % 1000 == 0 {
                std::fs::create_dir_all(&sub)?;
            }
            let data = data.as_ref().context("a small blob is missing")?;
            std::fs::write(sub.join(format!("f{i:05}")), data)?;
            n += 1;
        }
        Ok(n)
    })
    .await??;
    let down = t.elapsed();
    if written != SMALL_BLOBS {
        bail!("downloaded {written} of {SMALL_BLOBS}");
    }
    let cp_small2 = cp_r(&small_dir, &scratch.join("cp-small2"))?;
    rows.push(Row {
        what: "small download (batch)",
        ours: down,
        cp: cp_small2,
        cp_sync: None,
        bytes: small_bytes,
        blobs: SMALL_BLOBS,
    });

    let small_rate = |d: Duration| SMALL_BLOBS as f64 / d.as_secs_f64();
    let endpoint_lines = [
        format!(
            "small upload, endpoint only (no local file reads): {:.2}s, {:.0} blobs/s",
            up_net.as_secs_f64(),
            small_rate(up_net)
        ),
        format!(
            "small download, endpoint only (verified, no file writes): {:.2}s, {:.0} blobs/s",
            down_net.as_secs_f64(),
            small_rate(down_net)
        ),
    ];
    print_rows(&rows, &endpoint_lines, durability);
    Ok(())
}

/// Prints the table of results and the extra lines.
fn print_rows(rows: &[Row], extra: &[String], durability: &str) {
    println!(
        "rmake coordinator on loopback vs cp -r on the same disk ({} cores, {durability})",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<24} {:>8} {:>8} {:>9} {:>8} {:>8} {:>7} {:>10} {:>8}",
        "", "time", "MB/s", "blobs/s", "cp -r", "cp MB/s", "vs cp", "cp+sync", "vs c+s"
    );
    for r in rows {
        let (cs, vs) = match r.cp_sync {
            Some(d) => (
                format!("{:.2}s", d.as_secs_f64()),
                format!("{:.2}x", d.as_secs_f64() / r.ours.as_secs_f64()),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        println!(
            "{:<24} {:>7.2}s {:>8.0} {:>9.0} {:>7.2}s {:>8.0} {:>6.2}x {:>10} {:>8}",
            r.what,
            r.ours.as_secs_f64(),
            mbps(r.bytes, r.ours),
            r.blobs as f64 / r.ours.as_secs_f64(),
            r.cp.as_secs_f64(),
            mbps(r.bytes, r.cp),
            r.cp.as_secs_f64() / r.ours.as_secs_f64(),
            cs,
            vs,
        );
    }
    println!("\"vs cp\" = cp time / our time (above 1: faster than cp). Uploads are durable (fsync), so they are");
    println!("also compared with cp -r followed by `sync -f` (cp+sync). Downloads verify every digest and write files.");
    for line in extra {
        println!("{line}");
    }
}
