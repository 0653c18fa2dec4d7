//! A farm on loopback for one test: a real `rmake-coordinator` process with a temporary data
//! directory and N real `rmake-worker` processes (each with its own work directory and name
//! `w0`, `w1`, ...). It waits for `/healthz` and for the workers to register, can SIGKILL a
//! worker (with everything it started, as if its machine died), restart the coordinator on the
//! same port and data, and kills everything on drop. Each process logs to a file in the
//! cluster's directory; the logs are printed when a test panics with the cluster alive.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bins::bins;
use crate::http;
use crate::procs;

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of workers.
    pub workers: usize,
    /// Slots of each worker (`--slots`).
    pub slots: u32,
    /// Lease TTL of the coordinator (`lease_ttl_ms` in its config file; workers heartbeat
    /// every quarter of it), if not the default.
    pub lease_ttl_ms: Option<u64>,
    /// Configure tokens (`RMAKE_TOKENS`: a client, a worker and an admin token): the workers
    /// get theirs, clients must send [`Cluster::client_token`].
    pub tokens: bool,
    /// Extra lines of the coordinator's config file (TOML), e.g. `platform_wait_secs = 2`.
    pub coordinator_config: String,
    /// Extra flags per worker, by index (e.g. `--platform toolchain=special` for worker 1).
    pub worker_args: Vec<(usize, Vec<String>)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            workers: 2,
            slots: 4,
            lease_ttl_ms: None,
            tokens: false,
            coordinator_config: String::new(),
            worker_args: Vec::new(),
        }
    }
}

/// One child process of the cluster.
#[derive(Debug)]
struct Proc {
    child: Child,
}

impl Proc {
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILLs the process, its group and every descendant (a machine dying).
    fn kill_hard(&mut self) {
        let pid = self.child.id();
        let kids = procs::descendants(pid);
        let _ = procs::signal(pid, "KILL", true);
        let _ = self.child.kill();
        for k in kids {
            let _ = procs::signal(k.pid, "KILL", false);
        }
        let _ = self.child.wait();
    }
}

/// One worker slot of the cluster.
#[derive(Debug)]
struct Worker {
    name: String,
    work_dir: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
}

/// A running farm: coordinator plus workers.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    data_dir: PathBuf,
    opts: Options,
    coordinator: Option<Proc>,
    coordinator_log: PathBuf,
    workers: Vec<Worker>,
    tokens: Option<Tokens>,
}

/// The secrets of a cluster started with [`Options::tokens`].
#[derive(Debug, Clone)]
struct Tokens {
    client: String,
    worker: String,
    admin: String,
}

impl Tokens {
    /// Tokens unique to this cluster (its directory's random name and the clock).
    fn new(seed: &str) -> Tokens {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let base = format!("{seed}-{nanos}");
        Tokens {
            client: format!("client-{base}"),
            worker: format!("worker-{base}"),
            admin: format!("admin-{base}"),
        }
    }
}

/// A port free on 127.0.0.1 right now (bound, then released).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr().context("local address")?.port())
}

fn log_file(path: &Path) -> Result<(Stdio, Stdio)> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log {}", path.display()))?;
    let g = f.try_clone().context("cloning log handle")?;
    Ok((Stdio::from(f), Stdio::from(g)))
}

/// The last `n` lines of a file (for failure reports).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Cluster {
    /// Starts a coordinator and `opts.workers` workers and waits until all are registered.
    pub fn start(opts: Options) -> Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("rmake-cluster-")
            .tempdir()
            .context("creating the cluster directory")?;
        let data_dir = dir.path().join("coordinator-data");
        let coordinator_log = dir.path().join("coordinator.log");
        let workers = (0..opts.workers)
            .map(|i| Worker {
                name: format!("w{i}"),
                work_dir: dir.path().join(format!("w{i}")),
                log: dir.path().join(format!("w{i}.log")),
                proc: None,
            })
            .collect();
        let tokens = opts.tokens.then(|| {
            Tokens::new(
                &dir.path()
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        });
        let mut cluster = Cluster {
            tokens,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            data_dir,
            opts,
            coordinator: None,
            coordinator_log,
            workers,
        };
        let mut last_err = None;
        for _ in 0..3 {
            cluster.addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            match cluster.start_coordinator() {
                Ok(()) => {
                    last_err = None;
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        if let Some(e) = last_err {
            return Err(e);
        }
        for i in 0..cluster.workers.len() {
            cluster.start_worker(i)?;
        }
        cluster.wait_workers(cluster.workers.len(), Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// The coordinator's URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token a client must send (`RMAKE_TOKEN`), when the cluster has tokens.
    pub fn client_token(&self) -> Option<&str> {
        self.tokens.as_ref().map(|t| t.client.as_str())
    }

    /// `GET path` on the coordinator, with the admin token when the cluster has tokens.
    pub fn get(&self, path: &str) -> Result<http::Response> {
        http::get_as(
            self.addr,
            path,
            self.tokens.as_ref().map(|t| t.admin.as_str()),
        )
    }

    /// The coordinator's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The cluster's scratch directory (logs, data, work dirs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Number of workers (alive or not).
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The name of worker `i` (`w<i>`).
    pub fn worker_name(&self, i: usize) -> &str {
        &self.workers[i].name
    }

    /// The pid of worker `i`, if running.
    pub fn worker_pid(&self, i: usize) -> Option<u32> {
        self.workers[i].proc.as_ref().map(|p| p.child.id())
    }

    /// Everything worker `i` logged so far.
    pub fn worker_log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.workers[i].log).unwrap_or_default()
    }

    /// Everything the coordinator logged so far.
    pub fn coordinator_log(&self) -> String {
        std::fs::read_to_string(&self.coordinator_log).unwrap_or_default()
    }

    fn start_coordinator(&mut self) -> Result<()> {
        let b = bins()?;
        let (out, err) = log_file(&self.coordinator_log)?;
        let mut cmd = Command::new(&b.coordinator);
        cmd.arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("RMAKE_LISTEN")
            .env_remove("RMAKE_DATA_DIR")
            .env("RMAKE_LOG", log_filter())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        match &self.tokens {
            Some(t) => cmd.env(
                "RMAKE_TOKENS",
                format!("client:{},worker:{},admin:{}", t.client, t.worker, t.admin),
            ),
            None => cmd.env_remove("RMAKE_TOKENS"),
        };
        let mut toml = self.opts.coordinator_config.clone();
        if let Some(ttl) = self.opts.lease_ttl_ms {
            toml.push_str(&format!("\nlease_ttl_ms = {ttl}\n"));
        }
        if !toml.trim().is_empty() {
            let file = self.dir.path().join("coordinator.toml");
            std::fs::write(&file, toml).with_context(|| format!("writing {}", file.display()))?;
            cmd.arg("--config").arg(file);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", b.coordinator.display()))?;
        self.coordinator = Some(Proc { child });
        self.wait_healthy(Duration::from_secs(30))
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = http::get(self.addr, "/healthz") {
                if r.status == 200 {
                    return Ok(());
                }
            }
            let alive = self.coordinator.as_mut().is_some_and(Proc::alive);
            if !alive {
                bail!(
                    "the coordinator exited before it was healthy; its log:\n{}",
                    tail(&self.coordinator_log, 30)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "the coordinator at {} was not healthy within {timeout:?}; its log:\n{}",
                    self.addr,
                    tail(&self.coordinator_log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn start_worker(&mut self, i: usize) -> Result<()> {
        let b = bins()?;
        let url = self.url();
        let slots = self.opts.slots;
        let token = self.tokens.as_ref().map(|t| t.worker.clone());
        let extra: Vec<String> = self
            .opts
            .worker_args
            .iter()
            .filter(|(w, _)| *w == i)
            .flat_map(|(_, a)| a.iter().cloned())
            .collect();
        let w = &mut self.workers[i];
        std::fs::create_dir_all(&w.work_dir)
            .with_context(|| format!("creating {}", w.work_dir.display()))?;
        let (out, err) = log_file(&w.log)?;
        let mut cmd = Command::new(&b.worker);
        match token {
            Some(t) => cmd.env("RMAKE_TOKEN", t),
            None => cmd.env_remove("RMAKE_TOKEN"),
        };
        let child = cmd
            .arg("--coordinator")
            .arg(&url)
            .arg("--slots")
            .arg(slots.to_string())
            .arg("--work-dir")
            .arg(&w.work_dir)
            .arg("--name")
            .arg(&w.name)
            .args(&extra)
            .env("RMAKE_COORDINATOR", &url)
            .env("RMAKE_LOG", log_filter())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", b.worker.display()))?;
        w.proc = Some(Proc { child });
        Ok(())
    }

    /// How many workers the coordinator says are registered, if it says (the `workers` list of
    /// `GET /v1/farm`, or a `workers` count or list in `GET /v1/status`).
    pub fn registered_workers(&self) -> Option<usize> {
        let count = |v: &serde_json::Value| -> Option<usize> {
            match v {
                serde_json::Value::Array(a) => Some(a.len()),
                serde_json::Value::Number(n) => n.as_u64().map(|n| n as usize),
                serde_json::Value::Object(o) => ["workers", "registered", "count"]
                    .iter()
                    .find_map(|k| o.get(*k))
                    .and_then(|w| match w {
                        serde_json::Value::Array(a) => Some(a.len()),
                        serde_json::Value::Number(n) => n.as_u64().map(|n| n as usize),
                        _ => None,
                    }),
                _ => None,
            }
        };
        for path in ["/v1/farm", "/v1/status"] {
            let Ok(r) = self.get(path) else {
                continue;
            };
            if r.status != 200 {
                continue;
            }
            let Ok(v) = r.json() else { continue };
            let found = if path == "/v1/status" {
                v.get("workers").and_then(count)
            } else {
                count(&v)
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Waits until `n` workers are registered. When the coordinator offers no way to count
    /// them, waits for each running worker to log a line about registering instead.
    pub fn wait_workers(&mut self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            for (i, w) in self.workers.iter_mut().enumerate() {
                if let Some(p) = w.proc.as_mut() {
                    if !p.alive() {
                        bail!("worker {i} exited; its log:\n{}", tail(&w.log, 30));
                    }
                }
            }
            let ok = match self.registered_workers() {
                Some(c) => c >= n,
                None => {
                    self.workers
                        .iter()
                        .filter(|w| w.proc.is_some())
                        .filter(|w| {
                            std::fs::read_to_string(&w.log)
                                .unwrap_or_default()
                                .to_ascii_lowercase()
                                .contains("regist")
                        })
                        .count()
                        >= n
                }
            };
            if ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .workers
                    .iter()
                    .map(|w| format!("--- {} ---\n{}", w.name, tail(&w.log, 15)))
                    .collect();
                bail!(
                    "{n} workers did not register within {timeout:?}\n{}\n--- coordinator ---\n{}",
                    logs.join("\n"),
                    tail(&self.coordinator_log, 15)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs worker `i` and every process it started.
    pub fn kill_worker(&mut self, i: usize) {
        if let Some(mut p) = self.workers[i].proc.take() {
            p.kill_hard();
        }
    }

    /// Stops worker `i` gracefully (SIGTERM) and waits up to `timeout` for it to exit; returns
    /// how it ended (`None` if it had to be SIGKILLed).
    pub fn stop_worker(&mut self, i: usize, timeout: Duration) -> Option<crate::run::Status> {
        let mut p = self.workers[i].proc.take()?;
        let _ = procs::signal(p.child.id(), "TERM", false);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Some(status.into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        p.kill_hard();
        None
    }

    /// Starts worker `i` again (after [`Cluster::kill_worker`]).
    pub fn restart_worker(&mut self, i: usize) -> Result<()> {
        self.kill_worker(i);
        self.start_worker(i)
    }

    /// The indices of the workers running a process whose command line contains `needle`.
    pub fn workers_running(&self, needle: &str) -> Vec<usize> {
        let all = procs::all();
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                w.proc.as_ref().is_some_and(|p| {
                    procs::descendants_in(&all, p.child.id())
                        .iter()
                        .any(|d| d.cmdline.contains(needle))
                })
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// How many processes whose command line is exactly `cmdline` the workers run.
    pub fn count_running(&self, cmdline: &str) -> usize {
        let all = procs::all();
        self.workers
            .iter()
            .filter_map(|w| w.proc.as_ref())
            .map(|p| {
                procs::descendants_in(&all, p.child.id())
                    .iter()
                    .filter(|d| d.cmdline == cmdline)
                    .count()
            })
            .sum()
    }

    /// The first worker running a process whose command line contains `needle`.
    pub fn worker_running(&self, needle: &str) -> Option<usize> {
        self.workers_running(needle).first().copied()
    }

    /// Stops the coordinator (SIGTERM when `graceful`, else SIGKILL) and starts it again on the
    /// same address and data directory, then waits for the live workers to register again.
    pub fn restart_coordinator(&mut self, graceful: bool) -> Result<()> {
        if let Some(mut p) = self.coordinator.take() {
            if graceful {
                let _ = procs::signal(p.child.id(), "TERM", false);
                let stopped = procs::wait_until(Duration::from_secs(10), || {
                    matches!(p.child.try_wait(), Ok(Some(_)))
                });
                if !stopped {
                    p.kill_hard();
                }
            } else {
                p.kill_hard();
            }
        }
        self.start_coordinator()?;
        let live = self.workers.iter().filter(|w| w.proc.is_some()).count();
        self.wait_workers(live, Duration::from_secs(30))
    }

    /// `GET path` on the coordinator, as JSON.
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let r = self.get(path)?;
        if r.status != 200 {
            bail!("GET {path}: HTTP {}: {:.300}", r.status, r.body);
        }
        r.json()
    }

    /// The number of entries in the coordinator's action cache (`GET /v1/status`).
    pub fn action_cache_entries(&self) -> Result<u64> {
        let v = self.get_json("/v1/status")?;
        v.get("action_cache_entries")
            .and_then(serde_json::Value::as_u64)
            .context("no action_cache_entries in /v1/status")
    }

    /// Every log of the cluster, for a failure report.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = format!(
            "--- coordinator ({}) ---\n{}\n",
            self.url(),
            tail(&self.coordinator_log, lines)
        );
        for w in &self.workers {
            out.push_str(&format!(
                "--- worker {} ---\n{}\n",
                w.name,
                tail(&w.log, lines)
            ));
        }
        out
    }
}

/// The `RMAKE_LOG` filter for the cluster's processes (`RMAKE_TESTS_LOG` overrides it).
fn log_filter() -> String {
    std::env::var("RMAKE_TESTS_LOG").unwrap_or_else(|_| "info".to_string())
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "cluster logs (in {}):\n{}",
                self.dir.path().display(),
                self.logs(40)
            );
        }
        for w in &mut self.workers {
            if let Some(mut p) = w.proc.take() {
                p.kill_hard();
            }
        }
        if let Some(mut p) = self.coordinator.take() {
            p.kill_hard();
        }
        if std::env::var_os("RMAKE_TESTS_KEEP").is_some() {
            let kept = std::mem::replace(
                &mut self.dir,
                match tempfile::tempdir() {
                    Ok(d) => d,
                    Err(_) => return,
                },
            );
            eprintln!("kept cluster directory {}", kept.keep().display());
        }
    }
}
