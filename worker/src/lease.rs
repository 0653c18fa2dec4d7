//! Running one leased action: fetch its inputs into the blob cache, build the exec root, run
//! the recipe with rmake-exec while recording reads, find and upload the outputs, and build the
//! [`ActionResult`]. Afterwards, in the background, the lease's scratch directory is removed
//! and its exec root reset to its input tree and kept for reuse (see `restore`), or removed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;

use rmake_cas::Digest;
use rmake_exec::{CancelHandle, Interruption, Line, Recipe, RecipeOutput, RunOptions};
use rmake_proto::exec::{ActionSpec, Lease, LeaseOutcome};
use rmake_proto::{
    ActionResult, CoordinatorClient, LineExit, LogOutput, Platform, Segment, Stream, Timings,
};

use crate::blob_cache::BlobCache;
use crate::exec_root::{self, ExecRoot, Origin};
use crate::outputs::find_outputs;
use crate::pool::RootPool;
use crate::reads::ReadRecorder;

/// Idle exec roots kept unless [`Executor::with_idle_roots`] says otherwise.
const DEFAULT_IDLE_ROOTS: usize = 2;

/// Requests in flight while uploading outputs.
const UPLOAD_PARALLEL: usize = 4;

/// Outputs up to this many bytes in all are uploaded without asking which ones the
/// coordinator lacks: sending them costs less than the extra round trip.
const SEND_UNASKED_BYTES: u64 = 64 << 10;

/// How a lease ended on this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseRun {
    /// The recipe ran (with any status); its outputs are uploaded.
    Completed(Box<ActionResult>),
    /// It could not be run (inputs, exec root, upload): the coordinator re-queues it.
    Error(String),
    /// It was cancelled (by the coordinator or a shutdown): nothing to report.
    Cancelled,
}

impl LeaseRun {
    /// What to tell the coordinator, if anything.
    pub fn outcome(self) -> Option<LeaseOutcome> {
        match self {
            LeaseRun::Completed(result) => Some(LeaseOutcome::Completed { result: *result }),
            LeaseRun::Error(reason) => Some(LeaseOutcome::Error { reason }),
            LeaseRun::Cancelled => None,
        }
    }
}

/// What every lease of a worker shares.
#[derive(Debug, Clone)]
pub struct Executor {
    /// The coordinator.
    pub client: CoordinatorClient,
    /// The local blob cache.
    pub cache: Arc<BlobCache>,
    /// The worker's directory (`exec/`, `scratch/` go there).
    pub work_dir: PathBuf,
    /// Name reported in results.
    pub name: String,
    /// Timeout of actions that name none.
    pub default_timeout: Duration,
    /// `SIGTERM` to `SIGKILL` delay.
    pub kill_grace: Duration,
    /// The worker's own `PATH`, given to recipes.
    pub path_env: String,
    /// Idle exec roots kept for reuse.
    pool: Arc<RootPool>,
    /// Clean-ups still running.
    cleanups: Arc<AtomicUsize>,
    /// Exec roots prepared so far: reused, reshaped, fresh.
    origins: Arc<[AtomicUsize; 3]>,
    /// Trees known to be whole in the cache.
    known: Arc<crate::fetch::KnownTrees>,
    /// Whether the output scan may be bounded to the directories the recorder saw change.
    bounded_scan: bool,
    /// Output scans done so far: bounded, whole root.
    scans: Arc<[AtomicUsize; 2]>,
}

impl Executor {
    /// An executor for `client` with its cache under `work_dir/cache`.
    pub fn new(
        client: CoordinatorClient,
        work_dir: PathBuf,
        cache_max_bytes: u64,
        name: String,
    ) -> anyhow::Result<Executor> {
        for sub in ["exec", "scratch"] {
            let d = work_dir.join(sub);
            // Whatever a crashed run left behind goes.
            exec_root::remove_tree(&d);
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        let cache = Arc::new(BlobCache::open(&work_dir.join("cache"), cache_max_bytes)?);
        let work_dir_exec = work_dir.join("exec");
        Ok(Executor {
            client,
            cache,
            work_dir,
            name,
            default_timeout: crate::config::DEFAULT_TIMEOUT,
            kill_grace: Duration::from_secs(2),
            path_env: std::env::var("PATH")
                .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            pool: Arc::new(RootPool::new(work_dir_exec, DEFAULT_IDLE_ROOTS)),
            cleanups: Arc::new(AtomicUsize::new(0)),
            origins: Arc::new(Default::default()),
            known: Arc::new(crate::fetch::KnownTrees::default()),
            bounded_scan: true,
            scans: Arc::new(Default::default()),
        })
    }

    /// Whether the output scan (and the reset of the root) may stay in the directories where
    /// the read recorder saw names change (default); `false` always scans the whole root.
    pub fn with_bounded_scan(mut self, on: bool) -> Executor {
        self.bounded_scan = on;
        self
    }

    /// How many output scans were bounded to the changed directories, and how many covered
    /// the whole root.
    pub fn output_scans(&self) -> (usize, usize) {
        (
            self.scans[0].load(Ordering::Relaxed),
            self.scans[1].load(Ordering::Relaxed),
        )
    }

    /// Keeps up to `max` idle exec roots for reuse (0: every root is removed after its run).
    pub fn with_idle_roots(mut self, max: usize) -> Executor {
        self.pool = Arc::new(RootPool::new(self.work_dir.join("exec"), max));
        self
    }

    /// Runs `lease` to its end. `cancel` stops the recipe (the run then ends `Cancelled`).
    /// The exec root is reset for reuse (or removed) afterwards, in the background: see
    /// [`Executor::settle`].
    pub async fn run(&self, lease: &Lease, cancel: CancelHandle) -> LeaseRun {
        let name = safe_name(&lease.id.0);
        let root = self.work_dir.join("exec").join(&name);
        let scratch = self.work_dir.join("scratch").join(&name);
        let left = std::sync::Mutex::new(Leftovers::default());
        let run = self
            .run_in(lease, cancel.clone(), root.clone(), scratch.clone(), &left)
            .await;
        let left = left
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.clean_up(left, root, scratch);
        match run {
            Ok(_) if cancel.is_cancelled() => LeaseRun::Cancelled,
            Ok(result) => LeaseRun::Completed(Box::new(result)),
            Err(_) if cancel.is_cancelled() => LeaseRun::Cancelled,
            Err(e) => {
                tracing::warn!(lease = %lease.id, target = %lease.target, error = %format!("{e:#}"), "action could not run");
                LeaseRun::Error(format!("worker {}: {e:#}", self.name))
            }
        }
    }

    /// Waits until the clean-ups of finished leases are done.
    pub async fn settle(&self) {
        while self.cleanups.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Idle exec roots kept for reuse.
    pub fn idle_roots(&self) -> usize {
        self.pool.len()
    }

    /// How many exec roots were prepared from an idle root of the same tree, from one of
    /// another tree, and afresh.
    pub fn root_origins(&self) -> (usize, usize, usize) {
        let n = |i: usize| self.origins[i].load(Ordering::Relaxed);
        (n(0), n(1), n(2))
    }

    /// Resets the exec root into the pool (or removes it), removes the scratch directory,
    /// releases the cache pins and evicts: on a blocking thread, not waited for.
    fn clean_up(&self, left: Leftovers, root: PathBuf, scratch: PathBuf) {
        let cache = self.cache.clone();
        let pool = self.pool.clone();
        let counter = self.cleanups.clone();
        counter.fetch_add(1, Ordering::SeqCst);
        let resetting = match &left.exec {
            Some(exec) if pool_enabled(&pool) && left.scan.is_some() => {
                Some(pool.resetting(exec.baseline.input_root, exec.baseline.entries.len()))
            }
            _ => None,
        };
        tokio::task::spawn_blocking(move || {
            match (left.exec, left.scan) {
                (Some(exec), Some(scan)) if pool_enabled(&pool) => {
                    let t = Instant::now();
                    let reset = crate::restore::restore(
                        cache.store(),
                        &exec,
                        &scan.after,
                        &scan.skipped,
                        scan.scanned_dirs.as_ref(),
                    );
                    tracing::debug!(
                        root = %root.display(),
                        bounded = scan.scanned_dirs.is_some(),
                        reset_us = t.elapsed().as_micros() as u64,
                        "exec root reset"
                    );
                    match reset {
                        Ok(()) => pool.put(exec),
                        Err(e) => {
                            tracing::debug!(root = %root.display(), error = %format!("{e:#}"), "exec root not reusable");
                            exec_root::remove_tree(&root);
                        }
                    }
                }
                _ => exec_root::remove_tree(&root),
            }
            // The root first: the next action on its tree may be waiting for it.
            drop(resetting);
            exec_root::remove_tree(&scratch);
            cache.unpin(&left.pinned);
            cache.evict();
            counter.fetch_sub(1, Ordering::SeqCst);
        });
    }

    async fn run_in(
        &self,
        lease: &Lease,
        cancel: CancelHandle,
        root: PathBuf,
        scratch: PathBuf,
        left: &std::sync::Mutex<Leftovers>,
    ) -> anyhow::Result<ActionResult> {
        let spec = &lease.spec;
        let t0 = Instant::now();
        let pinned = crate::fetch::fetch_and_pin(
            &self.client,
            &self.cache,
            &self.known,
            spec.input_root,
            &spec.input_blobs(),
        )
        .await
        .context("fetching inputs")?;
        if let Ok(mut l) = left.lock() {
            l.pinned = pinned;
        }
        let fetched = t0.elapsed();
        // Root, recipe and output scan in one blocking task: each hop between threads costs
        // a wake-up, milliseconds on a loaded machine.
        let cache = self.cache.clone();
        let spec2 = spec.clone();
        let (root2, scratch2) = (root.clone(), scratch.clone());
        let pool = self.pool.clone();
        let path_env = self.path_env.clone();
        let opts_timeout = spec
            .timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(self.default_timeout);
        let opts = RunOptions {
            timeout: Some(opts_timeout),
            cancel: Some(cancel),
            kill_grace: self.kill_grace,
        };
        let bounded_scan = self.bounded_scan;
        let origins = self.origins.clone();
        let lease_id = lease.id.clone();
        let staged = tokio::task::spawn_blocking(move || -> anyhow::Result<Staged> {
            let t = Instant::now();
            let exec = (|| {
                let pooled = pool.take(&spec2.input_root);
                for d in ["home", "tmp"] {
                    std::fs::create_dir_all(scratch2.join(d))
                        .with_context(|| format!("creating {}", scratch2.join(d).display()))?;
                }
                exec_root::prepare(cache.store(), &spec2, &root2, pooled)
            })()
            .context("building the exec root")?;
            let prepared = t.elapsed();
            let slot = match exec.origin {
                Origin::Reused => 0,
                Origin::Reshaped => 1,
                Origin::Fresh => 2,
            };
            origins[slot].fetch_add(1, Ordering::Relaxed);
            tracing::debug!(lease = %lease_id, origin = ?exec.origin, prepare_us = prepared.as_micros() as u64, "exec root ready");

            let t = Instant::now();
            let recipe = recipe_for(&spec2, &path_env, &exec.cwd, &scratch2);
            let recorder = ReadRecorder::start(&exec.root, &exec.dirs());
            let watching = t.elapsed();
            let out = rmake_exec::run_recipe(&recipe, &opts);
            let ran = t.elapsed();
            let reads = recorder.finish();
            let executed = t.elapsed();
            tracing::debug!(
                watch_us = watching.as_micros() as u64,
                recipe_us = (ran - watching).as_micros() as u64,
                finish_us = (executed - ran).as_micros() as u64,
                "recipe ran"
            );
            let out = out.context("running the recipe")?;
            let mut exec = exec;
            let t = Instant::now();
            let outputs = if out.interrupted == Some(Interruption::Cancelled) {
                None
            } else {
                let changed = reads.changed.clone().filter(|_| bounded_scan);
                Some(find_outputs(&mut exec, &spec2.outputs, changed.as_ref())?)
            };
            Ok(Staged {
                exec,
                prepared,
                executed,
                out,
                reads,
                outputs,
                scanned: t.elapsed(),
            })
        })
        .await
        .context("exec task")??;
        let input_fetch_ms = ms(fetched + staged.prepared);
        let execution_ms = ms(staged.executed);
        let mut out = staged.out;
        let reads = staged.reads;
        let exec = staged.exec;
        let mut outputs = match staged.outputs {
            Some(o) => o,
            None => anyhow::bail!("cancelled"),
        };
        if out.interrupted == Some(Interruption::TimedOut) {
            note_timeout(&mut out, opts_timeout);
        }
        // The output scan's time counts with the upload's.
        let t2 = Instant::now()
            .checked_sub(staged.scanned)
            .unwrap_or_else(Instant::now);
        let kind = usize::from(outputs.scanned_dirs.is_none());
        self.scans[kind].fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            lease = %lease.id,
            bounded = outputs.scanned_dirs.is_some(),
            scan_us = t2.elapsed().as_micros() as u64,
            "outputs found"
        );
        let read_paths: Vec<String> = reads
            .opened
            .into_iter()
            .filter(|p| existed_before(&exec, p))
            .collect();
        if let Ok(mut l) = left.lock() {
            l.scan = Some(AfterScan {
                after: std::mem::take(&mut outputs.after),
                skipped: std::mem::take(&mut outputs.skipped),
                scanned_dirs: outputs.scanned_dirs.take(),
            });
            l.exec = Some(exec);
        }
        self.upload(&outputs).await?;
        let stdout = self.log(&out.stdout).await?;
        let stderr = self.log(&out.stderr).await?;
        Ok(ActionResult {
            output_files: outputs.files,
            stdout,
            stderr,
            exit_code: out.exit_code,
            timings: Timings {
                queued_ms: 0,
                input_fetch_ms,
                execution_ms,
                output_upload_ms: ms(t2.elapsed()),
            },
            platform: Platform::current(),
            segments: segments(&out),
            failures: failures(&out),
            lines_run: out.lines_run,
            worker: self.name.clone(),
            read_paths,
            reads_complete: reads.complete,
            output_dirs: outputs.dirs,
        })
    }

    /// Uploads the output blobs the coordinator lacks; small outputs are sent without asking
    /// first (one request instead of two).
    async fn upload(&self, outputs: &crate::outputs::Outputs) -> anyhow::Result<()> {
        let digests: Vec<Digest> = outputs.paths.keys().copied().collect();
        let bytes: u64 = digests.iter().map(|d| d.size).sum();
        let missing = if bytes <= SEND_UNASKED_BYTES {
            digests
        } else {
            self.client
                .find_missing(&digests)
                .await
                .context("asking which outputs the coordinator lacks")?
        };
        let files: Vec<(Digest, PathBuf)> = missing
            .iter()
            .filter_map(|d| outputs.paths.get(d).map(|p| (*d, p.clone())))
            .collect();
        let answer = self
            .client
            .upload_paths(&files, UPLOAD_PARALLEL)
            .await
            .context("uploading outputs")?;
        if let Some(r) = answer.rejected.first() {
            anyhow::bail!(
                "output blob {} was refused: {} ({})",
                r.digest,
                r.error,
                r.code
            );
        }
        Ok(())
    }

    /// Inline text when small UTF-8, else an uploaded blob.
    async fn log(&self, bytes: &[u8]) -> anyhow::Result<LogOutput> {
        if bytes.len() <= LogOutput::INLINE_MAX {
            if let Ok(text) = std::str::from_utf8(bytes) {
                return Ok(LogOutput::Inline {
                    text: text.to_string(),
                });
            }
        }
        let digest = Digest::of(bytes);
        if !self
            .client
            .find_missing(&[digest])
            .await
            .context("asking whether a log is stored")?
            .is_empty()
        {
            self.client
                .upload_blob(&digest, Bytes::copy_from_slice(bytes))
                .await
                .context("uploading a log")?;
        }
        Ok(LogOutput::Blob { digest })
    }
}

/// The recipe of `spec` run in `cwd`: the spec's environment plus the worker's `PATH`, a
/// private `HOME` and `TMPDIR` under `scratch`, and `PWD`.
fn recipe_for(
    spec: &ActionSpec,
    path_env: &str,
    cwd: &std::path::Path,
    scratch: &std::path::Path,
) -> Recipe {
    const OURS: [&str; 4] = ["PATH", "HOME", "TMPDIR", "PWD"];
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .filter(|(k, _)| !OURS.contains(&k.as_str()))
        .cloned()
        .collect();
    env.push(("PATH".into(), path_env.to_string()));
    env.push(("HOME".into(), scratch.join("home").display().to_string()));
    env.push(("TMPDIR".into(), scratch.join("tmp").display().to_string()));
    env.push(("PWD".into(), cwd.display().to_string()));
    Recipe {
        lines: spec
            .lines
            .iter()
            .map(|l| Line {
                command: l.command.clone(),
                ignore_errors: l.ignore_errors,
            })
            .collect(),
        shell: spec.shell.clone(),
        shell_flags: spec.shell_flags.clone(),
        oneshell: spec.oneshell,
        env,
        dir: cwd.to_path_buf(),
    }
}

/// What the blocking part of a lease gives back.
struct Staged {
    exec: ExecRoot,
    /// Time to take or build the exec root.
    prepared: Duration,
    /// Time to run the recipe, read recorder included.
    executed: Duration,
    out: RecipeOutput,
    reads: crate::reads::Recorded,
    /// `None` when the run was cancelled (nothing scanned).
    outputs: Option<crate::outputs::Outputs>,
    /// Time of the output scan.
    scanned: Duration,
}

/// Whether a recorded read names something of the input view: a file (or a directory opened
/// as one), or a listing (`dir/`, `./`) of a directory that was there.
fn existed_before(exec: &ExecRoot, read: &str) -> bool {
    if read == "./" {
        return true;
    }
    match read.strip_suffix('/') {
        Some(dir) => matches!(exec.before.get(dir), Some(exec_root::Before::Dir)),
        None => exec.before.contains_key(read),
    }
}

/// What a lease leaves to clean up.
#[derive(Default)]
struct Leftovers {
    /// Cache blobs pinned for it.
    pinned: Vec<Digest>,
    /// Its exec root, once the run got that far.
    exec: Option<ExecRoot>,
    /// The scan of the root after the run.
    scan: Option<AfterScan>,
}

/// What the output scan saw, for the reset of the root.
struct AfterScan {
    /// Entries found (only those of `scanned_dirs` when set).
    after: Vec<rmake_cas::FlatEntry>,
    /// Paths left out.
    skipped: Vec<String>,
    /// The directories listed, when the scan was bounded.
    scanned_dirs: Option<std::collections::BTreeSet<String>>,
}

fn pool_enabled(pool: &RootPool) -> bool {
    pool.max() > 0
}

/// A lease id made safe as one path component.
fn safe_name(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if s.is_empty() {
        "lease".into()
    } else {
        s
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Says on stderr why the recipe stopped (make itself would have no such message).
fn note_timeout(out: &mut RecipeOutput, timeout: Duration) {
    let msg = format!(
        "rmake-worker: the recipe ran longer than {}s and was killed\n",
        timeout.as_secs_f64()
    );
    let line = out.lines_run.saturating_sub(1);
    out.stderr.extend_from_slice(msg.as_bytes());
    match out.segments.last_mut() {
        Some(s) if s.line == line && s.stream == rmake_exec::StreamKind::Stderr => {
            s.len += msg.len() as u64
        }
        _ => out.segments.push(rmake_exec::Segment {
            line,
            stream: rmake_exec::StreamKind::Stderr,
            len: msg.len() as u64,
        }),
    }
}

fn segments(out: &RecipeOutput) -> Vec<Segment> {
    out.segments
        .iter()
        .map(|s| Segment {
            line: s.line,
            stream: match s.stream {
                rmake_exec::StreamKind::Stdout => Stream::Stdout,
                rmake_exec::StreamKind::Stderr => Stream::Stderr,
            },
            len: s.len,
        })
        .collect()
}

fn failures(out: &RecipeOutput) -> Vec<LineExit> {
    out.failures
        .iter()
        .map(|f| LineExit {
            line: f.line,
            code: f.code,
            signal: f.signal,
            spawn_error: f.spawn_error.clone(),
        })
        .collect()
}
