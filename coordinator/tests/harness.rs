//! Test harness: a coordinator served on 127.0.0.1:0 in-process, with its temp data dir, and
//! helpers for deterministic data.

use std::time::Duration;

use tempfile::TempDir;

use rmake_cas::Digest;
use rmake_coordinator::config::Limits;
use rmake_coordinator::{server, AppState, Config, Role};
use rmake_proto::CoordinatorClient;

/// A running in-process coordinator. Dropping it stops the server.
pub(crate) struct TestServer {
    pub(crate) url: String,
    pub(crate) state: AppState,
    pub(crate) dir: TempDir,
    running: Option<server::Running>,
}

/// Options for [`TestServer::start`].
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) max_cache_bytes: u64,
    pub(crate) tokens: Vec<(Role, String)>,
    pub(crate) limits: Limits,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_cache_bytes: 1 << 40,
            tokens: Vec::new(),
            limits: Limits::default(),
        }
    }
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        TestServer::with(Options::default()).await
    }

    pub(crate) async fn with(opts: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        TestServer::in_dir(dir, opts).await
    }

    pub(crate) async fn in_dir(dir: TempDir, opts: Options) -> TestServer {
        let mut config = Config::local(dir.path(), opts.max_cache_bytes);
        config.tokens = opts.tokens;
        config.limits = opts.limits;
        config.eviction_interval = Duration::from_secs(3600);
        let running = server::spawn(config).await.expect("start coordinator");
        TestServer {
            url: running.url.clone(),
            state: running.state.clone(),
            dir,
            running: Some(running),
        }
    }

    pub(crate) fn client(&self) -> CoordinatorClient {
        CoordinatorClient::new(&self.url, None).expect("client")
    }

    pub(crate) fn client_with(&self, token: &str) -> CoordinatorClient {
        CoordinatorClient::new(&self.url, Some(token.to_string())).expect("client")
    }

    /// Stops serving and waits for the server task (which flushes metadata).
    pub(crate) async fn stop(mut self) -> TempDir {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("stop");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }
}

/// A blob and its digest.
pub(crate) fn blob(seed: u64, len: usize) -> (Digest, bytes::Bytes) {
    let d = rmake_cas::testdata::bytes(seed, len);
    (Digest::of(&d), bytes::Bytes::from(d))
}
