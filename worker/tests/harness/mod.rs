//! Test harness: a real coordinator on 127.0.0.1:0 with a temp data dir, input trees uploaded
//! to it, workers started in-process, and actions executed through the client API.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;

use rmake_cas::{BlobStore, Digest, MemoryStore, Node, TreeBuilder};
use rmake_coordinator::{server, Config as CoordinatorConfig};
use rmake_proto::exec::{ActionSpec, BuildRequest, CommandLine, ExecuteEvent, ExecuteRequest};
use rmake_proto::{ActionResult, BuildId, CoordinatorClient, LogOutput, OutputFile};

/// A coordinator served in-process.
pub(crate) struct Farm {
    pub(crate) url: String,
    pub(crate) client: CoordinatorClient,
    pub(crate) dir: TempDir,
    running: Option<server::Running>,
    workers: Vec<WorkerHandle>,
}

/// A worker started in-process.
pub(crate) struct WorkerHandle {
    pub(crate) work_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
}

impl WorkerHandle {
    /// Asks it to stop and waits for `run` to return.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t.await?,
            None => Ok(()),
        }
    }
}

fn must<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

impl Farm {
    /// A coordinator whose leases last `lease_ttl` (heartbeats every quarter of it).
    pub(crate) async fn start(lease_ttl: Duration) -> Farm {
        Farm::start_at(lease_ttl, std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Like [`Farm::start`], listening on `listen`.
    pub(crate) async fn start_at(lease_ttl: Duration, listen: std::net::SocketAddr) -> Farm {
        let dir = must(tempfile::tempdir(), "tempdir");
        let mut config = CoordinatorConfig::local(dir.path().join("coordinator"), 1 << 40);
        config.listen = listen;
        config.fsync = false;
        config.eviction_interval = Duration::from_secs(3600);
        config.sched.lease_ttl = lease_ttl;
        let running = must(server::spawn(config).await, "start coordinator");
        let url = running.url.clone();
        Farm {
            client: must(CoordinatorClient::new(&url, None), "client"),
            url,
            dir,
            running: Some(running),
            workers: Vec::new(),
        }
    }

    /// A worker configuration for this farm with its own work dir.
    pub(crate) fn worker_config(&self, work_dir: &Path) -> rmake_worker::Config {
        let mut c = rmake_worker::Config::new(self.url.clone(), work_dir);
        c.name = "test-worker".into();
        c.slots = 2;
        c.lease_wait = Duration::from_secs(2);
        c.shutdown_grace = Duration::from_secs(2);
        c.kill_grace = Duration::from_millis(500);
        c
    }

    /// Starts a worker with `config` (its work dir is replaced by a fresh temp dir).
    pub(crate) fn start_worker_with(&self, mut config: rmake_worker::Config) -> WorkerHandle {
        let dir = must(tempfile::tempdir(), "tempdir");
        config.work_dir = dir.path().join("work");
        let work_dir = config.work_dir.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(rmake_worker::run(config, async move {
            let _ = rx.await;
        }));
        WorkerHandle {
            work_dir,
            stop: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// The registered workers' ids, from `GET /v1/farm`.
    pub(crate) async fn worker_ids(&self) -> Vec<String> {
        let Ok(resp) = reqwest::get(format!("{}/v1/farm", self.url)).await else {
            return Vec::new();
        };
        let Ok(v) = resp.json::<serde_json::Value>().await else {
            return Vec::new();
        };
        v["workers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (up to 20 s) until the farm lists a worker other than those in `not`; returns it.
    pub(crate) async fn wait_worker(&self, not: &[String]) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(id) = self
                .worker_ids()
                .await
                .into_iter()
                .find(|w| !not.contains(w))
            {
                return id;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no worker registered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a default worker.
    pub(crate) fn start_worker(&self) -> WorkerHandle {
        let config = self.worker_config(Path::new("/nonexistent"));
        self.start_worker_with(config)
    }

    /// Uploads `files` (path, content, executable) as a tree; returns its root.
    pub(crate) async fn upload_tree(&self, files: &[(&str, &[u8], bool)]) -> Digest {
        let mem = MemoryStore::new();
        let mut b = TreeBuilder::new();
        for (path, data, executable) in files {
            let digest = must(mem.put_bytes(data), "put");
            must(
                b.insert(
                    &mem,
                    path,
                    Node::File {
                        digest,
                        executable: *executable,
                    },
                ),
                "insert",
            );
        }
        let root = must(b.write(&mem), "write tree");
        let mut blobs = Vec::new();
        for info in must(mem.list(), "list") {
            let data = must(mem.get(&info.digest), "get").unwrap_or_default();
            blobs.push((info.digest, Bytes::from(data)));
        }
        must(self.client.upload_many(&blobs, 4).await, "upload tree");
        root
    }

    /// Uploads one blob.
    pub(crate) async fn upload(&self, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        must(
            self.client
                .upload_blob(&d, Bytes::copy_from_slice(data))
                .await,
            "upload blob",
        );
        d
    }

    /// Opens a build.
    pub(crate) async fn build(&self) -> BuildId {
        must(
            self.client
                .create_build(&BuildRequest {
                    label: "worker-test".into(),
                    jobs: 0,
                })
                .await,
            "create build",
        )
    }

    /// Runs `spec` through the coordinator and returns the result (panics on `failed`).
    pub(crate) async fn execute(&self, spec: ActionSpec) -> ActionResult {
        let build = self.build().await;
        match self.execute_in(&build, spec).await {
            ExecuteEvent::Finished(resp) => resp.result,
            other => panic!("expected a result, got {other:?}"),
        }
    }

    /// Runs `spec` under `build` and returns the last event.
    pub(crate) async fn execute_in(&self, build: &BuildId, spec: ActionSpec) -> ExecuteEvent {
        let req = ExecuteRequest {
            spec,
            target: "t".into(),
            skip_cache_lookup: true,
            cacheable: false,
            prereqs: Vec::new(),
        };
        let stream = must(self.client.execute(build, &req).await, "execute");
        must(
            tokio::time::timeout(Duration::from_secs(60), stream.finish()).await,
            "execute timed out",
        )
        .unwrap_or_else(|e| panic!("execute stream: {e}"))
    }

    /// The text of a log, inline or downloaded.
    pub(crate) async fn log(&self, log: &LogOutput) -> String {
        match log {
            LogOutput::Inline { text } => text.clone(),
            LogOutput::Blob { digest } => {
                let b = must(self.client.download_blob(digest).await, "download log");
                String::from_utf8_lossy(&b).into_owned()
            }
        }
    }

    /// The content of an output file.
    pub(crate) async fn content(&self, f: &OutputFile) -> String {
        let b = must(
            self.client.download_blob(&f.digest).await,
            "download output",
        );
        String::from_utf8_lossy(&b).into_owned()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.stop().await;
        }
    }
}

/// A spec running `lines` (none ignored) in the tree `root` under `/bin/sh -c`.
pub(crate) fn spec(root: Digest, lines: &[&str], outputs: &[&str]) -> ActionSpec {
    ActionSpec {
        input_root: root,
        inputs: vec![],
        working_dir: String::new(),
        lines: lines
            .iter()
            .map(|l| CommandLine {
                command: l.to_string(),
                ignore_errors: false,
            })
            .collect(),
        oneshell: false,
        shell: "/bin/sh".into(),
        shell_flags: "-c".into(),
        env: vec![],
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        platform: Default::default(),
        timeout_secs: None,
    }
}

/// The entries of a directory (empty when it does not exist).
pub(crate) fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The exec roots of leases under `exec` (idle roots kept for reuse left out).
pub(crate) fn lease_roots(exec: &Path) -> Vec<String> {
    entries(exec)
        .into_iter()
        .filter(|e| !e.starts_with("idle-"))
        .collect()
}

/// Waits until `cond` holds (up to 10 s).
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
