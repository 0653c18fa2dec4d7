//! Remote execution: builds (the client's scheduling session), the actions it submits, and the
//! worker side (registration, leases, heartbeats, results). See `docs/farm.md`.
//!
//! The client walks the Makefile's graph (the same `Plan` as local mode) and submits each pure
//! recipe as an [`ActionSpec`] under its build; the coordinator answers from the action cache or
//! queues it, a worker leases it, runs it in a private exec root and reports an
//! [`ActionResult`]; the submit request streams [`ExecuteEvent`]s back until the end.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use rmake_cas::Digest;

use crate::action::{ActionKey, ActionResult, OutputFile};
use crate::types::BuildId;

/// One recipe line, expanded, with make's per-line flags that matter where it runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandLine {
    /// The command as the shell gets it (`@ - +` prefixes already removed).
    pub command: String,
    /// A failure is ignored (`-` prefix, `-i`, `.IGNORE`): the recipe goes on.
    #[serde(default)]
    pub ignore_errors: bool,
}

/// Everything a worker needs to run one recipe, and everything its result depends on: the
/// action key is the SHA-256 of this value's canonical JSON (see [`ActionSpec::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// The source view of the client's tree: a directory tree (see `rmake_cas::tree`) with every
    /// generated file removed.
    pub input_root: Digest,
    /// Files placed over `input_root`: the outputs of the action's prerequisites (transitively),
    /// sorted by path.
    #[serde(default)]
    pub inputs: Vec<OutputFile>,
    /// Directory the commands run in, relative to the root (`""` for the root itself).
    #[serde(default)]
    pub working_dir: String,
    /// The recipe, in order.
    pub lines: Vec<CommandLine>,
    /// `.ONESHELL`: all lines go to one shell invocation.
    #[serde(default)]
    pub oneshell: bool,
    /// `$(SHELL)`.
    pub shell: String,
    /// `$(.SHELLFLAGS)`.
    pub shell_flags: String,
    /// The environment of the commands (sorted by name; session variables such as `PWD`,
    /// `HOME` or `PATH` are the worker's own and are not sent).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// The targets the recipe makes, relative to the root: always reported as outputs.
    pub outputs: Vec<String>,
    /// Properties a worker must have, all of them, to take the action (`os`, `arch`, and any a
    /// team adds, e.g. `toolchain=gcc-12`).
    #[serde(default)]
    pub platform: BTreeMap<String, String>,
    /// Seconds the recipe may run before it is killed (`None`: the worker's default).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl ActionSpec {
    /// Version of the key derivation; bump it when the meaning of a spec changes.
    pub const KEY_VERSION: &'static str = "rmake-action-v1";

    /// The key of the action without its tree (`pre_key` in docs/caching.md): SHA-256 over the
    /// recipe, shell, environment, working directory, targets, platform and the digests of the
    /// direct prerequisites; `input_root`, `inputs` and the timeout are left out. Results are
    /// stored under [`read_set_key`] of this and what the recipe read.
    pub fn pre_key(&self, prereqs: &[OutputFile]) -> ActionKey {
        use sha2::Digest as _;
        let bare = ActionSpec {
            input_root: Digest::of(b""),
            inputs: Vec::new(),
            timeout_secs: None,
            ..self.clone()
        };
        let mut h = sha2::Sha256::new();
        h.update(b"rmake-pre-v1");
        h.update([0u8]);
        h.update(serde_json::to_vec(&bare).unwrap_or_default());
        h.update([0u8]);
        h.update(serde_json::to_vec(prereqs).unwrap_or_default());
        ActionKey(h.finalize().into())
    }

    /// The action key: SHA-256 over the version and the spec's JSON (field order is fixed by the
    /// struct and every list is ordered, so the JSON is canonical).
    pub fn key(&self) -> ActionKey {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(Self::KEY_VERSION.as_bytes());
        h.update([0u8]);
        h.update(serde_json::to_vec(self).unwrap_or_default());
        ActionKey(h.finalize().into())
    }

    /// Every blob a worker needs besides the directory nodes under `input_root`.
    pub fn input_blobs(&self) -> Vec<Digest> {
        self.inputs.iter().map(|f| f.digest).collect()
    }
}

/// One input a recipe read, with its digest in the view of the run that read it: a file
/// (`src/a.h`), or a directory listing (a path ending in `/`; the root's listing is `./`) whose
/// digest is [`listing_digest`] of its names. `digest: None`: absent from the view.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadEntry {
    /// Root-relative path; listings end in `/`.
    pub path: String,
    /// Content digest (files) or listing digest (directories).
    #[serde(default)]
    pub digest: Option<Digest>,
}

/// The digest of a directory listing: the sorted names, each followed by a newline.
pub fn listing_digest<'a>(names: impl IntoIterator<Item = &'a str>) -> Digest {
    let mut v: Vec<&str> = names.into_iter().collect();
    v.sort_unstable();
    let mut text = String::new();
    for n in v {
        text.push_str(n);
        text.push('\n');
    }
    Digest::of(text.as_bytes())
}

/// The key a result is stored under: the action's `pre_key` and the read set (sorted by path)
/// it was computed from.
pub fn read_set_key(pre_key: &ActionKey, reads: &[ReadEntry]) -> ActionKey {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"rmake-read-set-v1");
    h.update(pre_key.0);
    h.update(serde_json::to_vec(reads).unwrap_or_default());
    ActionKey(h.finalize().into())
}

/// `POST /v1/explain`: why would this action miss the cache?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// The target, as make names it.
    pub target: String,
    /// The action.
    pub spec: ActionSpec,
    /// Its direct prerequisites with digests.
    #[serde(default)]
    pub prereqs: Vec<OutputFile>,
}

/// `POST /v1/explain` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplainResponse {
    /// The action would be a cache hit now.
    pub hit: bool,
    /// What differs from the nearest stored entry, in words (`file it read changed: a.h`).
    pub reasons: Vec<String>,
}

/// `POST /v1/builds`: opens a build, the unit the scheduler shares workers between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildRequest {
    /// Who and what, for logs and the status page (`alice@laptop:/src/proj`).
    #[serde(default)]
    pub label: String,
    /// Most actions of this build in flight at once (`-j`); 0 means no limit.
    #[serde(default)]
    pub jobs: u32,
}

/// `POST /v1/builds` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildCreated {
    /// The build's id, for its execute requests and its cancellation.
    pub build: BuildId,
}

/// `POST /v1/builds/{id}/execute` request: run one action for this build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The action.
    pub spec: ActionSpec,
    /// The target as make names it, for logs and progress.
    #[serde(default)]
    pub target: String,
    /// Do not look the action up in the cache (`-B`); a successful result is still stored
    /// when `cacheable`.
    #[serde(default)]
    pub skip_cache_lookup: bool,
    /// Store a successful result in the action cache (false for `.RMAKE_NOCACHE`, phony and
    /// volatile targets).
    #[serde(default = "yes")]
    pub cacheable: bool,
    /// The target's direct prerequisites (order-only too) with their digests, in order: part
    /// of the `pre_key`.
    #[serde(default)]
    pub prereqs: Vec<OutputFile>,
}

fn yes() -> bool {
    true
}

/// One line of the newline-delimited JSON stream an execute request answers with; the last is
/// always `finished` or `failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ExecuteEvent {
    /// Waiting for a worker (sent once, when the action was not a cache hit).
    Queued {
        /// The action key.
        key: ActionKey,
        /// Why the cache did not have it, as `POST /v1/explain` would answer then (absent when
        /// the cache was not consulted, and from older coordinators).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<Vec<String>>,
    },
    /// A worker leased it (sent again if a lost lease is re-queued and leased elsewhere).
    Started {
        /// The worker's name.
        worker: String,
        /// 1 for the first try.
        attempt: u32,
    },
    /// The result: a cache hit, or a run that completed (with any exit status).
    Finished(Box<ExecuteResponse>),
    /// No result could be had (workers lost too often, no worker with the platform, the build
    /// was cancelled): the target fails with this reason.
    Failed {
        /// Why, in words for the user.
        reason: String,
    },
}

/// The end of a successful execute stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteResponse {
    /// The action key the result is (or would be) cached under.
    pub key: ActionKey,
    /// The result.
    pub result: ActionResult,
    /// Whether it came from the action cache.
    pub cached: bool,
    /// The contents of small UTF-8 output files (see [`InlineFile`]), so that the client need
    /// not fetch each one: absent from older coordinators, ignored by older clients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inline: Vec<InlineFile>,
}

/// A small output file's contents, sent with the result. The reader checks that `text` hashes
/// to `digest` before trusting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineFile {
    /// The blob these are the contents of.
    pub digest: Digest,
    /// The contents.
    pub text: String,
}

/// Largest output file whose contents ride along with a result.
pub const INLINE_FILE_MAX: u64 = 16 * 1024;

/// Largest total of the inline contents of one result.
pub const INLINE_TOTAL_MAX: u64 = 64 * 1024;

/// The name a worker is known by while registered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(pub String);

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of one lease: one try of one action on one worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseId(pub String);

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `POST /v1/workers`: a worker announces itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// A human-readable name (host name, container name); need not be unique.
    pub name: String,
    /// Actions it runs at once.
    pub slots: u32,
    /// Its properties: `os` and `arch` at least; actions whose `platform` asks for a property
    /// go only to workers that have it with the same value.
    #[serde(default)]
    pub platform: BTreeMap<String, String>,
}

/// `POST /v1/workers` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The id to lease and heartbeat with.
    pub worker: WorkerId,
    /// How often to heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// A lease not renewed by a heartbeat for this long is lost and its action re-queued.
    pub lease_ttl_ms: u64,
}

/// `POST /v1/workers/{id}/lease`: wait up to `wait_ms` for an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// Longest wait, in milliseconds (capped by the coordinator).
    pub wait_ms: u64,
}

/// `POST /v1/workers/{id}/lease` response: an action to run, or none (`lease: null`) when the
/// wait ended empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseResponse {
    /// The action, if one was leased.
    pub lease: Option<Lease>,
}

/// One leased action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Report the result and heartbeat under this id.
    pub id: LeaseId,
    /// The action key.
    pub key: ActionKey,
    /// What to run.
    pub spec: ActionSpec,
    /// The target, for logs.
    pub target: String,
    /// 1 for the first try.
    pub attempt: u32,
}

/// `POST /v1/workers/{id}/heartbeat`: the worker is alive and still running these leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// Leases it is running.
    #[serde(default)]
    pub leases: Vec<LeaseId>,
}

/// `POST /v1/workers/{id}/heartbeat` response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// Leases to abandon: their build was cancelled or they were lost; kill the recipe, report
    /// nothing.
    #[serde(default)]
    pub cancel: Vec<LeaseId>,
    /// The coordinator does not know this worker (it restarted or expired it): register again.
    #[serde(default)]
    pub unknown_worker: bool,
}

/// `POST /v1/leases/{id}/complete`: how a lease ended.
// A message built once per lease and moved straight into a request body: boxing the big
// variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum LeaseOutcome {
    /// The recipe ran (successfully or not); every output blob is already uploaded.
    Completed {
        /// What it did.
        result: ActionResult,
    },
    /// The worker could not run it (inputs missing, exec root not writable, disk full): the
    /// action is re-queued, counting as one try.
    Error {
        /// Why.
        reason: String,
    },
}

/// `POST /v1/leases/{id}/complete` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteResponse {
    /// False when the lease was no longer valid (lost, cancelled): the result was dropped.
    pub accepted: bool,
}

/// Paths of the remote-execution endpoints.
pub mod paths {
    use super::{BuildId, LeaseId, WorkerId};

    /// Open a build.
    pub const BUILDS: &str = "/v1/builds";
    /// Register a worker.
    pub const WORKERS: &str = "/v1/workers";
    /// Why an action would miss the cache.
    pub const EXPLAIN: &str = "/v1/explain";

    /// `/v1/builds/<id>`: `DELETE` cancels the build's queued and running actions.
    pub fn build(id: &BuildId) -> String {
        format!("/v1/builds/{id}")
    }

    /// `/v1/builds/<id>/execute`.
    pub fn execute(id: &BuildId) -> String {
        format!("/v1/builds/{id}/execute")
    }

    /// `/v1/workers/<id>`: `DELETE` deregisters (graceful stop).
    pub fn worker(id: &WorkerId) -> String {
        format!("/v1/workers/{id}")
    }

    /// `/v1/workers/<id>/lease`.
    pub fn lease(id: &WorkerId) -> String {
        format!("/v1/workers/{id}/lease")
    }

    /// `/v1/workers/<id>/heartbeat`.
    pub fn heartbeat(id: &WorkerId) -> String {
        format!("/v1/workers/{id}/heartbeat")
    }

    /// `/v1/leases/<id>/complete`.
    pub fn complete(id: &LeaseId) -> String {
        format!("/v1/leases/{id}/complete")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ActionSpec {
        ActionSpec {
            input_root: Digest::of(b"root"),
            inputs: vec![],
            working_dir: String::new(),
            lines: vec![CommandLine { command: "cc -c a.c".into(), ignore_errors: false }],
            oneshell: false,
            shell: "/bin/sh".into(),
            shell_flags: "-c".into(),
            env: vec![],
            outputs: vec!["a.o".into()],
            platform: BTreeMap::new(),
            timeout_secs: None,
        }
    }

    #[test]
    fn key_changes_with_any_field_and_is_stable() {
        let a = spec();
        assert_eq!(a.key(), spec().key());
        let mut b = spec();
        b.lines[0].command.push_str(" -O2");
        assert_ne!(a.key(), b.key());
        let mut c = spec();
        c.env.push(("CFLAGS".into(), "-O2".into()));
        assert_ne!(a.key(), c.key());
        let mut d = spec();
        d.platform.insert("os".into(), "linux".into());
        assert_ne!(a.key(), d.key());
    }

    #[test]
    fn events_round_trip() {
        let ev = ExecuteEvent::Failed { reason: "lost".into() };
        let json = serde_json::to_string(&ev).unwrap_or_default();
        assert_eq!(json, r#"{"event":"failed","reason":"lost"}"#);
        let back: ExecuteEvent = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, ev);
    }
}
