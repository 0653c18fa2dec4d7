//! Benchmark of the CAS layer: re-snapshot of an unchanged 10,000-file tree (no index, cold
//! index loaded from disk, warm index in memory) and disk-store put/get throughput for large and
//! small blobs beside `cp -r` of the same data on the same disk. Run it through `bench/cas.sh`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rmake_cas::index::RACY_WINDOW;
use rmake_cas::testdata::fill;
use rmake_cas::{snapshot, BlobStore, Digest, DiskStore, Ignore, Index};

struct Args {
    dir: PathBuf,
    files: usize,
    big_mib: usize,
    small: usize,
    /// Only repeat the warm scan this many times (for a profiler) and stop.
    scan_loop: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        dir: std::env::temp_dir(),
        files: 10_000,
        big_mib: 1024,
        small: 20_000,
        scan_loop: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(val()),
            "--files" => a.files = val().parse().unwrap_or(a.files),
            "--big-mib" => a.big_mib = val().parse().unwrap_or(a.big_mib),
            "--small" => a.small = val().parse().unwrap_or(a.small),
            "--scan-loop" => a.scan_loop = val().parse().unwrap_or(0),
            // cargo bench passes --bench; ignore anything unknown.
            _ => {}
        }
    }
    a
}

fn small_size(i: usize) -> usize {
    1024 + (i * 2654435761) % (7 * 1024)
}

/// CPU time (user + system) of this process so far, in ms, from /proc (0 where unavailable).
fn cpu_ms() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name; 100 ticks/s.
    (ticks(11) + ticks(12)) * 10.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn du(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Lists and lstats every entry under `dir` (the least any snapshot must do); returns the file count.
fn walk(dir: &Path) -> usize {
    let mut files = 0;
    for e in fs::read_dir(dir).expect("list").flatten() {
        match e.metadata() {
            Ok(m) if m.is_dir() => files += walk(&e.path()),
            Ok(_) => files += 1,
            Err(_) => {}
        }
    }
    files
}

/// `cp -r src dst` followed by a sync of that filesystem, timed.
fn time_cp(src: &Path, dst: &Path) -> Duration {
    let t = Instant::now();
    let ok = Command::new("cp")
        .arg("-r")
        .arg(src)
        .arg(dst)
        .status()
        .is_ok_and(|s| s.success());
    let synced = Command::new("sync")
        .arg("-f")
        .arg(dst)
        .status()
        .is_ok_and(|s| s.success());
    let d = t.elapsed();
    assert!(ok && synced, "cp -r or sync failed");
    d
}

fn main() {
    let args = parse_args();
    let work = tempfile::Builder::new()
        .prefix("rmake-cas-bench")
        .tempdir_in(&args.dir)
        .expect("temp dir");
    let w = work.path();
    println!(
        "# rmake-cas benchmark (work dir {}, {} cores)",
        w.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // ---- snapshot of an unchanged tree ----
    let tree = w.join("tree");
    let mut buf = vec![0u8; 8192];
    let per_dir = 100;
    for i in 0..args.files {
        let d = tree.join(format!("d{:03}", i / per_dir));
        if i % per_dir == 0 {
            fs::create_dir_all(&d).expect("mkdir");
        }
        let n = small_size(i);
        fill(&mut buf[..n], i as u64);
        fs::write(d.join(format!("f{i:05}.c")), &buf[..n]).expect("write");
    }
    std::thread::sleep(RACY_WINDOW + Duration::from_millis(100));
    let store = DiskStore::open(w.join("store-tree")).expect("store");
    let ignore = Ignore::for_root(&tree).expect("ignore");
    let index_path = w.join("index");

    let t = Instant::now();
    let mut index = Index::load(&index_path).expect("index");
    let first = snapshot(&tree, &store, &mut index, &ignore).expect("snapshot");
    index.save().expect("save");
    let first_t = t.elapsed();
    println!(
        "snapshot, first (hash {} files, upload {} blobs, {:.1} MB): {:.0} ms",
        first.stats.hashed,
        first.stats.uploaded_blobs,
        first.stats.uploaded_bytes as f64 / 1e6,
        ms(first_t)
    );

    if args.scan_loop > 0 {
        let mut idx = Index::load(&index_path).expect("index");
        let (t, cpu) = (Instant::now(), cpu_ms());
        for _ in 0..args.scan_loop {
            rmake_cas::scan(&tree, &mut idx, &ignore).expect("scan");
        }
        let n = args.scan_loop as f64;
        println!(
            "scan: {:.1} ms wall, {:.1} ms cpu each",
            ms(t.elapsed()) / n,
            (cpu_ms() - cpu) / n
        );
        let (t, cpu) = (Instant::now(), cpu_ms());
        for _ in 0..args.scan_loop {
            walk(&tree);
        }
        println!(
            "walk: {:.1} ms wall, {:.1} ms cpu each",
            ms(t.elapsed()) / n,
            (cpu_ms() - cpu) / n
        );
        return;
    }
    let mut no_index = Vec::new();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut scan_only = Vec::new();
    let mut walk_only = Vec::new();
    let mut warm_index = Index::load(&index_path).expect("index");
    for _ in 0..5 {
        let t = Instant::now();
        let s = snapshot(&tree, &store, &mut Index::in_memory(), &ignore).expect("snapshot");
        no_index.push(t.elapsed());
        assert_eq!(s.root, first.root);

        let t = Instant::now();
        let mut idx = Index::load(&index_path).expect("index");
        let s = snapshot(&tree, &store, &mut idx, &ignore).expect("snapshot");
        idx.save().expect("save");
        cold.push(t.elapsed());
        assert_eq!((s.root, s.stats.hashed), (first.root, 0));

        let t = Instant::now();
        let s = snapshot(&tree, &store, &mut warm_index, &ignore).expect("snapshot");
        warm.push(t.elapsed());
        assert_eq!((s.root, s.stats.hashed), (first.root, 0));

        let t = Instant::now();
        let s = rmake_cas::scan(&tree, &mut warm_index, &ignore).expect("scan");
        scan_only.push(t.elapsed());
        assert_eq!(s.root, first.root);

        let t = Instant::now();
        let n = walk(&tree);
        walk_only.push(t.elapsed());
        assert_eq!(n, args.files);
    }
    println!("re-snapshot {} unchanged files, median of 5:", args.files);
    println!(
        "  no index (re-hash everything):      {:7.1} ms",
        ms(median(no_index))
    );
    println!(
        "  index loaded from disk (new process): {:5.1} ms   (target < 100 ms)",
        ms(median(cold))
    );
    println!(
        "  index already in memory:            {:7.1} ms",
        ms(median(warm))
    );
    println!(
        "  scan only (tree digest, no store check): {:4.1} ms",
        ms(median(scan_only))
    );
    println!(
        "  floor: readdir + lstat of every entry:   {:4.1} ms",
        ms(median(walk_only))
    );

    // ---- large blobs ----
    let big_src = w.join("big-src");
    fs::create_dir_all(&big_src).expect("mkdir");
    let blob_mib = 64usize;
    let count = (args.big_mib / blob_mib).max(1);
    let mut big = vec![0u8; blob_mib << 20];
    let mut big_digests = Vec::new();
    for i in 0..count {
        fill(&mut big, 1000 + i as u64);
        let p = big_src.join(format!("blob{i}"));
        fs::write(&p, &big).expect("write");
        big_digests.push((Digest::of(&big), p));
    }
    drop(big);
    let big_bytes = (count * (blob_mib << 20)) as u64;
    let _ = Command::new("sync").arg("-f").arg(w).status();
    println!(
        "large blobs: {count} x {blob_mib} MiB = {:.0} MB",
        big_bytes as f64 / 1e6
    );
    for fsync in [true, false] {
        let s = DiskStore::open(w.join(format!("store-big-{fsync}")))
            .expect("store")
            .with_fsync(fsync);
        let t = Instant::now();
        for (d, p) in &big_digests {
            let mut f = fs::File::open(p).expect("open");
            s.put_stream(d, &mut f).expect("put");
        }
        if !fsync {
            let _ = Command::new("sync").arg("-f").arg(w).status();
        }
        let put = t.elapsed();
        let t = Instant::now();
        let mut rbuf = vec![0u8; 1 << 20];
        for (d, _) in &big_digests {
            let mut r = s.open_read(d).expect("open").expect("present");
            while r.read(&mut rbuf).expect("read") > 0 {}
        }
        let get = t.elapsed();
        println!(
            "  put_stream (fsync {}, then sync): {:7.0} MB/s   get (read through): {:7.0} MB/s",
            if fsync { "each" } else { "off " },
            mbps(big_bytes, put),
            mbps(big_bytes, get)
        );
        if fsync {
            let cp = time_cp(&big_src, &w.join("big-cp"));
            println!(
                "  cp -r + sync:                    {:7.0} MB/s   put/cp ratio {:.2}",
                mbps(du(&big_src), cp),
                cp.as_secs_f64() / put.as_secs_f64()
            );
        }
    }

    // ---- small blobs ----
    let small_src = w.join("small-src");
    let mut small = Vec::with_capacity(args.small);
    for i in 0..args.small {
        let n = small_size(i);
        let mut b = vec![0u8; n];
        fill(&mut b, 50_000 + i as u64);
        small.push(b);
    }
    for (i, b) in small.iter().enumerate() {
        let d = small_src.join(format!("d{:03}", i / 200));
        if i % 200 == 0 {
            fs::create_dir_all(&d).expect("mkdir");
        }
        fs::write(d.join(format!("s{i}")), b).expect("write");
    }
    let _ = Command::new("sync").arg("-f").arg(w).status();
    let small_bytes: u64 = small.iter().map(|b| b.len() as u64).sum();
    let digests: Vec<Digest> = small.iter().map(|b| Digest::of(b)).collect();
    println!(
        "small blobs: {} of 1-8 KiB ({:.1} MB), batches of 1000",
        args.small,
        small_bytes as f64 / 1e6
    );
    let mut put = Duration::ZERO;
    for fsync in [false, true] {
        let s = DiskStore::open(w.join(format!("store-small-{fsync}")))
            .expect("store")
            .with_fsync(fsync);
        let t = Instant::now();
        for chunk in digests.iter().zip(&small).collect::<Vec<_>>().chunks(1000) {
            let batch: Vec<(Digest, &[u8])> =
                chunk.iter().map(|(d, b)| (**d, b.as_slice())).collect();
            for r in s.put_many(&batch) {
                r.expect("put");
            }
        }
        put = t.elapsed();
        if !fsync {
            println!(
                "  put_many (fsync off):            {:8.0} blobs/s {:6.1} MB/s",
                args.small as f64 / put.as_secs_f64(),
                mbps(small_bytes, put)
            );
        }
    }
    let s = DiskStore::open(w.join("store-small-true")).expect("store");
    let t = Instant::now();
    for chunk in digests.chunks(1000) {
        assert!(s.has_many(chunk).expect("has").iter().all(|&b| b));
    }
    let has = t.elapsed();
    let t = Instant::now();
    for d in &digests {
        s.get(d).expect("get").expect("present");
    }
    let get = t.elapsed();
    let cp = time_cp(&small_src, &w.join("small-cp"));
    let per_s = |d: Duration| args.small as f64 / d.as_secs_f64();
    println!(
        "  put_many (one syncfs per batch): {:8.0} blobs/s {:6.1} MB/s",
        per_s(put),
        mbps(small_bytes, put)
    );
    println!(
        "  has_many:                        {:8.0} blobs/s",
        per_s(has)
    );
    println!(
        "  get (verified):                  {:8.0} blobs/s {:6.1} MB/s",
        per_s(get),
        mbps(small_bytes, get)
    );
    println!(
        "  cp -r + sync:                    {:8.0} files/s {:6.1} MB/s   put/cp ratio {:.2}",
        per_s(cp),
        mbps(small_bytes, cp),
        cp.as_secs_f64() / put.as_secs_f64()
    );
}
