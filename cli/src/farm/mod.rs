//! Farm mode: the `Plan` runs here exactly as in local mode, and each pure job becomes an action
//! on the farm (a shared coordinator, or the embedded one): snapshot, inputs, submit, replay the
//! output like make, download the outputs. Phony and volatile jobs run here. See docs/farm.md.

pub mod classify;
pub mod download;
pub mod embedded;
pub mod explain;
pub mod progress;
pub mod replay;
pub mod settings;
pub mod tree;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rmake_makefile::build::{ExitKind, Job, JobResult, Plan};
use rmake_proto::exec::{ActionSpec, BuildRequest, CommandLine, ExecuteEvent, ExecuteRequest};
use rmake_proto::{BuildId, CoordinatorClient, LogOutput, OutputFile};

use crate::args::{Config, Download, Jobs};
use crate::runner::Prefix;

pub use classify::Overrides;
use classify::Class;
use embedded::Embedded;
use settings::Settings;
use tree::{PathMap, View};

/// A farm build in progress; cheap to clone into job threads.
#[derive(Clone)]
pub struct Farm {
    inner: Arc<Inner>,
}

struct Inner {
    rt: tokio::runtime::Runtime,
    settings: Settings,
    map: PathMap,
    index_path: PathBuf,
    prefix: Prefix,
    skip_cache: bool,
    jobs: u32,
    /// The connection, once the first remote job needed it (`Err`: the farm is unusable).
    conn: Mutex<Option<Result<Arc<Conn>, String>>>,
    state: Mutex<State>,
    cancelled: tokio::sync::watch::Sender<bool>,
}

struct Conn {
    client: CoordinatorClient,
    /// The build, replaced when the coordinator forgot it (restarted, or idle too long).
    build: Mutex<BuildId>,
    opened_with: BuildRequest,
    url: String,
    embedded: Mutex<Option<Embedded>>,
}

impl Conn {
    fn build(&self) -> BuildId {
        self.build.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Submits an action, opening the build again if the coordinator no longer knows it.
    async fn execute(&self, req: &ExecuteRequest) -> Result<rmake_proto::ExecuteStream, rmake_proto::ClientError> {
        let build = self.build();
        match self.client.execute(&build, req).await {
            Err(rmake_proto::ClientError::Api { status: 404, code, .. }) if code == "unknown_build" => {
                let fresh = self.client.create_build(&self.opened_with).await?;
                {
                    let mut b = self.build.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *b == build {
                        *b = fresh;
                    }
                }
                self.client.execute(&self.build(), req).await
            }
            r => r,
        }
    }
}

#[derive(Default)]
struct State {
    view: Option<Arc<View>>,
    /// A local recipe ran since the snapshot: the tree may have changed.
    dirty: bool,
    /// Outputs of the actions of this build, by root-relative target path.
    made: HashMap<String, Vec<OutputFile>>,
    /// Outputs not written locally (`--download=goals|none`).
    not_downloaded: HashMap<String, OutputFile>,
    /// The goals, as make names them.
    goals: Vec<String>,
    /// What the farm did, for the summary line.
    tally: Tally,
    /// The actions that ran (missed the cache), for `--explain`.
    misses: Vec<explain::Miss>,
}

/// Counts for the summary line.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    actions: u64,
    hits: u64,
    remote: u64,
    local: u64,
    saved_ms: u64,
    /// Actions that failed on the farm and ran here again.
    retried: u64,
}

/// Why an action missed the cache: said by the coordinator, or being asked.
enum Why {
    Told(Vec<String>),
    Asking(tokio::task::JoinHandle<Vec<String>>),
}

/// A job the farm runs.
pub struct RemoteJob {
    req: ExecuteRequest,
    targets: Vec<String>,
    /// The generated files it depends on (root-relative), for a run here after all.
    closure: Vec<String>,
}

/// How a remote job ended for the executor.
pub enum Ran {
    /// Done: tell the `Plan` this.
    Done(JobResult),
    /// The recipe failed on the farm: run it here, where it sees the whole tree as under make
    /// (a recipe reading a generated file it does not declare fails in an exec root); only if it
    /// fails here too has the target failed. `needs`: the files to fetch first.
    RetryHere {
        /// Generated files it depends on (root-relative).
        needs: Vec<String>,
    },
}

/// How the executor should run a job.
pub enum Prepared {
    /// On the farm.
    Remote(Box<RemoteJob>),
    /// Here; `needs` are root-relative files it depends on that must be on disk first.
    Local {
        /// Files to fetch before it runs.
        needs: Vec<String>,
    },
}

impl Farm {
    /// The farm for this invocation, or `None` in local mode (`--local`, `RMAKE_LOCAL=1`,
    /// `local = true` in a config file). A config file error is reported and local mode used.
    pub fn new(cfg: &Config, prefix: &Prefix) -> Option<Farm> {
        if cfg.local {
            return None;
        }
        let cwd = std::env::current_dir().ok()?;
        let root = tree::find_root(&cwd);
        let (settings, local) = match settings::resolve(cfg, &root) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("{}: warning: {e}; building locally", prefix.0);
                return None;
            }
        };
        if local {
            return None;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rmake-farm")
            .enable_all()
            .build()
            .ok()?;
        let index_path = settings.cache_dir.join("index").join(tree::root_key(&root));
        let jobs = match cfg.jobs {
            Jobs::One => 1,
            Jobs::Limit(n) => n,
            Jobs::Unlimited => 0,
        };
        let (cancelled, _) = tokio::sync::watch::channel(false);
        progress::enable();
        Some(Farm {
            inner: Arc::new(Inner {
                rt,
                map: PathMap::new(root, &cwd),
                settings,
                index_path,
                prefix: prefix.clone(),
                skip_cache: cfg.always_make,
                jobs,
                conn: Mutex::new(None),
                state: Mutex::new(State::default()),
                cancelled,
            }),
        })
    }

    /// Decides where `job` (just handed out by `plan`) runs, and for a remote job builds its
    /// action (snapshotting and uploading the tree first when needed).
    pub fn prepare(&self, plan: &Plan, job: &Job) -> Prepared {
        let local = |needs: Vec<String>| Prepared::Local { needs };
        let Some(graph) = plan.job_graph(job.id) else { return local(Vec::new()) };
        let closure: Vec<String> = graph.generated_closure.iter().filter_map(|n| self.inner.map.to_rel(n)).collect();
        let ov = overrides(plan);
        let cacheable = match classify::classify(job, &graph, &self.inner.map, &ov) {
            Class::Local(why) => {
                tracing::debug!(target = %job.target, why, "runs on the client");
                return local(closure);
            }
            Class::Remote { cacheable } => cacheable,
        };
        let Some(conn) = self.connect() else { return local(closure) };
        let view = match self.view(&conn, plan) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}: warning: cannot send the tree to the farm ({e:#}); building '{}' here", self.inner.prefix.0, job.target);
                return local(closure);
            }
        };
        let targets: Vec<String> = graph.targets.iter().filter_map(|t| self.inner.map.to_rel(t)).collect();
        let (inputs, prereqs) = {
            let st = self.lock();
            let direct: Vec<String> = graph.prereqs.iter().filter_map(|p| self.inner.map.to_rel(&p.name)).collect();
            (tree::inputs(&closure, &st.made, &view), tree::digests_of(&direct, &st.made, &view))
        };
        let mut platform = std::collections::BTreeMap::new();
        let p = rmake_proto::Platform::current();
        platform.insert("os".to_string(), p.os);
        platform.insert("arch".to_string(), p.arch);
        platform.extend(self.inner.settings.platform.clone());
        let spec = ActionSpec {
            input_root: view.root,
            inputs,
            working_dir: self.inner.map.cwd_rel.clone(),
            lines: job
                .lines
                .iter()
                .map(|l| CommandLine { command: l.command.clone(), ignore_errors: l.ignore_errors })
                .collect(),
            oneshell: job.oneshell,
            shell: job.shell.clone(),
            shell_flags: job.shell_flags.clone(),
            env: classify::remote_env(job),
            outputs: targets.clone(),
            platform,
            timeout_secs: None,
        };
        let req = ExecuteRequest {
            spec,
            target: job.target.clone(),
            skip_cache_lookup: self.inner.skip_cache,
            cacheable,
            prereqs,
        };
        Prepared::Remote(Box::new(RemoteJob { req, targets, closure }))
    }

    /// The environment a local recipe gets on top of its own: sub-makes (`$(MAKE)` is
    /// `rmake-remote`) use the same farm.
    pub fn env_for_local(&self, job: &Job) -> Vec<(String, String)> {
        if !job.lines.iter().any(|l| l.recursive) {
            return Vec::new();
        }
        match self.connect() {
            Some(conn) => vec![("RMAKE_COORDINATOR".to_string(), conn.url.clone())],
            None => Vec::new(),
        }
    }

    /// Before a local job: writes the outputs it depends on that were not downloaded.
    pub fn before_local(&self, needs: &[String]) {
        progress::step(progress::Step::LocalStart);
        let wanted: Vec<OutputFile> = {
            let st = self.lock();
            needs.iter().filter_map(|n| st.not_downloaded.get(n).cloned()).collect()
        };
        if wanted.is_empty() {
            return;
        }
        if let Some(conn) = self.connect() {
            if let Err(e) = self.inner.rt.block_on(download::fetch(&conn.client, &self.inner.map, &wanted)) {
                eprintln!("{}: warning: cannot download prerequisites: {e:#}", self.inner.prefix.0);
                return;
            }
            let mut st = self.lock();
            for f in &wanted {
                st.not_downloaded.remove(&f.path);
            }
        }
    }

    /// After a local job: the tree may have changed, snapshot it again before the next action.
    pub fn after_local(&self) {
        let mut st = self.lock();
        st.dirty = true;
        st.tally.local += 1;
        drop(st);
        progress::step(progress::Step::LocalDone);
    }

    /// Runs a remote job on the calling (job) thread: submits it, prints its output as make
    /// would (`first_echoed`: the first echo was printed when the job started), downloads
    /// its outputs, and returns what the `Plan` is told.
    pub fn run(&self, remote: RemoteJob, job: &Job, first_echoed: bool) -> Ran {
        let failed = |msg: String| {
            let _ = std::io::Write::flush(&mut std::io::stdout());
            eprintln!("{}: *** [{}] {msg}", self.inner.prefix.0, job.target);
            Ran::Done(JobResult::Failed { line: 0, exit: ExitKind::Code(1) })
        };
        let Some(conn) = self.connect() else { return failed("the farm is not available".into()) };
        let mut cancelled = self.inner.cancelled.subscribe();
        let mut started = false;
        let t0 = std::time::Instant::now();
        progress::step(progress::Step::Queued);
        let mut why: Option<Why> = None;
        let outcome = self.inner.rt.block_on(async {
            let mut stream = conn.execute(&remote.req).await?;
            loop {
                let ev = tokio::select! {
                    ev = stream.next() => ev?,
                    _ = cancelled.wait_for(|c| *c) => return Ok::<_, anyhow::Error>(None),
                };
                match ev {
                    Some(ExecuteEvent::Finished(resp)) => {
                        let stdout = log_bytes(&conn.client, &resp.result.stdout).await?;
                        let stderr = log_bytes(&conn.client, &resp.result.stderr).await?;
                        return Ok(Some((resp, replay::Logs { stdout, stderr })));
                    }
                    Some(ExecuteEvent::Failed { reason }) => anyhow::bail!("{reason}"),
                    Some(ExecuteEvent::Started { .. }) if !started => {
                        started = true;
                        progress::step(progress::Step::Started);
                    }
                    Some(ExecuteEvent::Queued { why: Some(reasons), .. }) if why.is_none() => {
                        // A miss, and the coordinator said why (for --explain).
                        why = Some(Why::Told(reasons));
                    }
                    Some(ExecuteEvent::Queued { .. }) if why.is_none() => {
                        // A miss from a coordinator that does not say why: ask now, before its
                        // result is stored (for --explain).
                        why = Some(Why::Asking(tokio::spawn(explain::why_missed(conn.client.clone(), job.target.clone(), remote.req.clone()))));
                    }
                    Some(_) => {}
                    None => anyhow::bail!("the coordinator ended the action without a result"),
                }
            }
        });
        progress::step(progress::Step::RemoteDone { was_running: started });
        let (resp, logs) = match outcome {
            Ok(Some(x)) => x,
            Ok(None) => return Ran::Done(JobResult::Failed { line: 0, exit: ExitKind::Signal(libc::SIGINT) }),
            Err(e) => return failed(format!("remote execution failed: {e:#}")),
        };
        let result = &resp.result;
        let t1 = std::time::Instant::now();
        {
            let mut st = self.lock();
            st.tally.actions += 1;
            if resp.cached {
                st.tally.hits += 1;
                st.tally.saved_ms += result.timings.execution_ms;
            } else {
                st.tally.remote += 1;
            }
        }
        if !resp.cached {
            let reasons = match why.take() {
                Some(Why::Told(reasons)) => Some(reasons),
                Some(Why::Asking(task)) => self.inner.rt.block_on(async {
                    tokio::time::timeout(std::time::Duration::from_secs(5), task).await.ok().and_then(Result::ok)
                }),
                None => None,
            };
            let outputs = remote.req.spec.outputs.clone();
            self.lock().misses.push(explain::Miss { target: job.target.clone(), outputs, reasons: reasons.unwrap_or_default() });
        }
        if result.exit_code != 0 {
            tracing::debug!(target = %job.target, worker = %result.worker, exit = result.exit_code, "failed on the farm: running it here");
            self.lock().tally.retried += 1;
            return Ran::RetryHere { needs: remote.closure };
        }
        if let Err(e) = download::make_dirs(&self.inner.map, &result.output_dirs) {
            return failed(format!("cannot create the output directories: {e:#}"));
        }
        if let Err(e) = self.keep_outputs(&conn, &remote.targets, &result.output_files, &resp.inline) {
            return failed(format!("cannot write the outputs: {e:#}"));
        }
        let t = &result.timings;
        tracing::debug!(
            target = %job.target,
            cached = resp.cached,
            roundtrip_ms = (t1 - t0).as_secs_f64() * 1000.0,
            download_ms = t1.elapsed().as_secs_f64() * 1000.0,
            queued_ms = t.queued_ms,
            fetch_ms = t.input_fetch_ms,
            exec_ms = t.execution_ms,
            upload_ms = t.output_upload_ms,
            "action done"
        );
        Ran::Done(progress::printing(|| replay::replay(job, result, &logs, &self.inner.prefix, first_echoed)))
    }

    fn keep_outputs(
        &self,
        conn: &Conn,
        targets: &[String],
        outputs: &[OutputFile],
        inline: &[rmake_proto::exec::InlineFile],
    ) -> anyhow::Result<()> {
        let download = self.inner.settings.download == Download::All;
        if download {
            // Small files came with the result; only the others are fetched.
            let rest = download::write_inline(&self.inner.map, outputs, inline)?;
            if !rest.is_empty() {
                self.inner.rt.block_on(download::fetch(&conn.client, &self.inner.map, &rest))?;
            }
        }
        let mut st = self.lock();
        for t in targets {
            st.made.insert(t.clone(), outputs.to_vec());
        }
        if !download {
            for f in outputs {
                st.not_downloaded.insert(f.path.clone(), f.clone());
            }
        }
        Ok(())
    }

    /// Stops every remote action of this build (a fatal signal).
    pub fn cancel(&self) {
        let _ = self.inner.cancelled.send(true);
        let conn = self.inner.conn.lock().ok().and_then(|c| c.as_ref().and_then(|r| r.as_ref().ok().cloned()));
        if let Some(conn) = conn {
            let _ = self.inner.rt.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(2), conn.client.cancel_build(&conn.build())).await
            });
        }
    }

    /// The goals of the build (for `--download=goals`).
    pub fn set_goals(&self, goals: Vec<String>) {
        self.lock().goals = goals;
    }

    /// At the end: under `--download=goals`, writes the goals' outputs; stops an embedded farm.
    pub fn finish(&self) {
        let goals = self.lock().goals.clone();
        let conn = self.inner.conn.lock().ok().and_then(|c| c.as_ref().and_then(|r| r.as_ref().ok().cloned()));
        let Some(conn) = conn else { return };
        if self.inner.settings.download == Download::Goals {
            let wanted: Vec<OutputFile> = {
                let st = self.lock();
                let goals: HashSet<String> = goals.iter().filter_map(|g| self.inner.map.to_rel(g)).collect();
                st.made
                    .iter()
                    .filter(|(t, _)| goals.contains(*t))
                    .flat_map(|(_, outs)| outs.iter().filter(|o| st.not_downloaded.contains_key(&o.path)).cloned())
                    .collect()
            };
            if let Err(e) = self.inner.rt.block_on(download::fetch(&conn.client, &self.inner.map, &wanted)) {
                eprintln!("{}: warning: cannot download the goals: {e:#}", self.inner.prefix.0);
            }
        }
        progress::finish();
        self.summary();
        let misses = std::mem::take(&mut self.lock().misses);
        if let Err(e) = explain::save(&self.inner.settings.cache_dir, &self.inner.map.root, &misses) {
            tracing::debug!(error = %format!("{e:#}"), "cannot record the build for --explain");
        }
        let embedded = conn.embedded.lock().ok().and_then(|mut e| e.take());
        if let Some(e) = embedded {
            self.inner.rt.block_on(e.stop());
        }
    }

    /// One line on stderr after a build that used the farm: actions, cache hits, remote and
    /// local runs, the time the hits saved. Printed on a terminal or with `RMAKE_SUMMARY=1`
    /// (never otherwise: a log must read as make's).
    fn summary(&self) {
        use std::io::IsTerminal;
        let t = self.lock().tally;
        let wanted = match std::env::var("RMAKE_SUMMARY").as_deref() {
            Ok("1") => true,
            Ok("0") => false,
            _ => std::io::stderr().is_terminal(),
        };
        if t.actions == 0 || !wanted {
            return;
        }
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let retried = match t.retried {
            0 => String::new(),
            n => format!("; {n} failed on the farm and ran again here"),
        };
        eprintln!(
            "{}: {} actions: {} cache hits, {} run remotely, {} run locally; hits saved {:.1} s{retried}",
            self.inner.prefix.0,
            t.actions,
            t.hits,
            t.remote,
            t.local,
            t.saved_ms as f64 / 1000.0
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connection to the farm, made on first use: the configured coordinator, or an
    /// embedded one. `None` (after a warning) when the embedded farm cannot start: the build
    /// goes on locally.
    fn connect(&self) -> Option<Arc<Conn>> {
        let mut slot = self.inner.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = slot.as_ref() {
            return r.as_ref().ok().cloned();
        }
        let made = self.inner.rt.block_on(self.open());
        let r = match made {
            Ok(conn) => Ok(Arc::new(conn)),
            Err(e) => {
                eprintln!("{}: warning: {e:#}; building locally", self.inner.prefix.0);
                Err(format!("{e:#}"))
            }
        };
        let out = r.as_ref().ok().cloned();
        *slot = Some(r);
        out
    }

    async fn open(&self) -> anyhow::Result<Conn> {
        let s = &self.inner.settings;
        let (url, embedded) = match &s.coordinator {
            Some(u) => (u.clone(), None),
            None => {
                // -j without a number: as many slots as make would have jobs in practice.
                let slots = if self.inner.jobs == 0 { 64 } else { self.inner.jobs };
                let e = Embedded::start(&s.cache_dir, slots).await?;
                (e.url.clone(), Some(e))
            }
        };
        let client = CoordinatorClient::new(&url, s.token.clone())?;
        let label = format!(
            "{}@{}:{}",
            std::env::var("USER").unwrap_or_default(),
            hostname(),
            self.inner.map.root.display()
        );
        let opened_with = BuildRequest { label, jobs: self.inner.jobs };
        let build = client
            .create_build(&opened_with)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start a build on the farm at {url}: {e}"))?;
        Ok(Conn { client, build: Mutex::new(build), opened_with, url, embedded: Mutex::new(embedded) })
    }

    /// The current snapshot, taken again when a local recipe may have changed the tree.
    fn view(&self, conn: &Conn, plan: &Plan) -> anyhow::Result<Arc<View>> {
        let mut st = self.lock();
        if let (Some(v), false) = (&st.view, st.dirty) {
            return Ok(v.clone());
        }
        let generated: Vec<String> = plan.generated_files().iter().filter_map(|n| self.inner.map.to_rel(n)).collect();
        let view = self.inner.rt.block_on(tree::snapshot(&conn.client, &self.inner.map, &self.inner.index_path, generated))?;
        let view = Arc::new(view);
        st.view = Some(view.clone());
        st.dirty = false;
        Ok(view)
    }
}

/// `.RMAKE_LOCAL`, `.RMAKE_REMOTE` and `.RMAKE_NOCACHE` as the makefiles set them.
fn overrides(plan: &Plan) -> Overrides {
    let db = plan.database();
    let names = |special: &str| -> HashSet<String> {
        db.rules_for(special)
            .iter()
            .filter_map(|&i| db.rules.get(i))
            .flat_map(|r| r.prereqs.iter().cloned())
            .collect()
    };
    Overrides { local: names(".RMAKE_LOCAL"), remote: names(".RMAKE_REMOTE"), nocache: names(".RMAKE_NOCACHE") }
}

async fn log_bytes(client: &CoordinatorClient, log: &LogOutput) -> anyhow::Result<Vec<u8>> {
    Ok(match log {
        LogOutput::Inline { text } => text.clone().into_bytes(),
        LogOutput::Blob { digest } => client.download_blob(digest).await?.to_vec(),
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}
