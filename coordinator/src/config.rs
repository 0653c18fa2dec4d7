//! Configuration: the TOML file, `RMAKE_*` environment variables and command-line flags,
//! layered file < env < flags and resolved into one [`Config`].
//!
//! Example file (every key optional):
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data_dir = "/var/lib/rmake"
//! max_cache_size = "50GiB"
//! eviction_interval_secs = 10
//! max_pin_ttl_secs = 86400
//! fsync = true         # false: faster, but a power loss may lose recent blobs
//! lease_ttl_ms = 10000 # a lease not renewed by a heartbeat for this long is lost
//! max_attempts = 3     # tries of an action before its waiters get `failed`
//! platform_wait_secs = 60  # an action no registered worker can take fails after this long
//! build_idle_secs = 600    # a build with no request in flight for this long expires
//!
//! [[tokens]]
//! role = "client"      # client | worker | reader | admin
//! token = "a-long-random-string"
//!
//! [limits]
//! max_blob_size = "64GiB"
//! max_batch_bytes = "16MiB"
//! max_batch_blobs = 10000
//! max_json_bytes = "4MiB"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use rmake_proto::types::limits;

use crate::auth::Role;

/// Command-line flags of `rmake-coordinator` (the highest layer).
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "rmake-coordinator",
    version,
    about = "The rmake coordinator: CAS and action-cache service"
)]
pub struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8080 [env: RMAKE_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for blobs and metadata [env: RMAKE_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (the lowest layer)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Size cap of the blob store, e.g. 50GiB [env: RMAKE_MAX_CACHE_SIZE] [default: 50GiB]
    #[arg(long, value_name = "SIZE")]
    pub max_cache_size: Option<String>,
}

/// One token entry of the config file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The role the token grants.
    pub role: Role,
    /// The secret itself.
    pub token: String,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenConfig {{ role: {:?}, token: <redacted> }}",
            self.role
        )
    }
}

/// The `[limits]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest single blob accepted, e.g. `"64GiB"`.
    pub max_blob_size: Option<String>,
    /// Largest batch upload/download body, e.g. `"16MiB"`.
    pub max_batch_bytes: Option<String>,
    /// Most blobs or digests in one batch, find-missing or pin request.
    pub max_batch_blobs: Option<usize>,
    /// Largest JSON request body, e.g. `"4MiB"`.
    pub max_json_bytes: Option<String>,
}

/// The config file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Directory for blobs and metadata.
    pub data_dir: Option<PathBuf>,
    /// Size cap, e.g. `"50GiB"`.
    pub max_cache_size: Option<String>,
    /// Bearer tokens and their roles.
    #[serde(default)]
    pub tokens: Option<Vec<TokenConfig>>,
    /// Request size limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Seconds between background eviction passes.
    pub eviction_interval_secs: Option<u64>,
    /// Longest pin lease a client may ask for, in seconds.
    pub max_pin_ttl_secs: Option<u64>,
    /// Whether stored blobs are fsynced before they become visible (default `true`).
    pub fsync: Option<bool>,
    /// Lease length in milliseconds (default 10000); workers heartbeat every quarter of it.
    pub lease_ttl_ms: Option<u64>,
    /// Tries of one action before it fails (default 3).
    pub max_attempts: Option<u32>,
    /// Seconds an action may wait for a worker with its platform (default 60).
    pub platform_wait_secs: Option<u64>,
    /// Seconds a build with nothing in flight lives on (default 600).
    pub build_idle_secs: Option<u64>,
}

impl FileConfig {
    /// Parses the TOML text of a config file.
    pub fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File(e.to_string()))
    }
}

/// The `RMAKE_*` environment variables (the middle layer).
#[derive(Clone, Default)]
pub struct EnvConfig {
    /// `RMAKE_LISTEN`.
    pub listen: Option<String>,
    /// `RMAKE_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `RMAKE_MAX_CACHE_SIZE`.
    pub max_cache_size: Option<String>,
    /// `RMAKE_TOKENS`: `role:token,role:token`.
    pub tokens: Option<String>,
}

impl std::fmt::Debug for EnvConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("max_cache_size", &self.max_cache_size)
            .field("tokens", &self.tokens.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl EnvConfig {
    /// Reads the variables from the process environment (empty values count as unset).
    pub fn from_env() -> EnvConfig {
        EnvConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the variables through `get` (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> EnvConfig {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        EnvConfig {
            listen: get("RMAKE_LISTEN"),
            data_dir: get("RMAKE_DATA_DIR").map(PathBuf::from),
            max_cache_size: get("RMAKE_MAX_CACHE_SIZE"),
            tokens: get("RMAKE_TOKENS"),
        }
    }
}

/// Request size limits, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single blob accepted.
    pub max_blob_size: u64,
    /// Largest batch body, and largest sum of sizes in a batch download.
    pub max_batch_bytes: u64,
    /// Most blobs/digests per batch, find-missing or pin request.
    pub max_batch_blobs: usize,
    /// Largest JSON request body.
    pub max_json_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_blob_size: 64 << 30,
            max_batch_bytes: limits::MAX_BATCH_BYTES,
            max_batch_blobs: limits::MAX_BATCH_DIGESTS,
            max_json_bytes: limits::MAX_JSON_BYTES,
        }
    }
}

/// The resolved configuration the coordinator runs with.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for blobs (`<dir>/cas`) and metadata (`<dir>/meta`).
    pub data_dir: PathBuf,
    /// Size cap of the blob store in bytes.
    pub max_cache_bytes: u64,
    /// Bearer tokens with their roles; empty means loopback-only, unauthenticated access.
    pub tokens: Vec<(Role, String)>,
    /// Request size limits.
    pub limits: Limits,
    /// Time between background eviction passes.
    pub eviction_interval: Duration,
    /// Longest pin lease granted.
    pub max_pin_ttl: Duration,
    /// Whether blobs are fsynced before they become visible. Without it a process crash still
    /// never exposes a partial blob, but a power loss may lose (or, on a filesystem that does
    /// not order data before names, corrupt) recently stored ones.
    pub fsync: bool,
    /// The scheduler's timing and retry settings.
    pub sched: SchedSettings,
}

/// Settings of the remote-execution scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedSettings {
    /// A lease not renewed by a heartbeat within this long is lost and its action re-queued.
    pub lease_ttl: Duration,
    /// Tries of one action (lost leases and worker errors count) before its waiters get
    /// `failed`.
    pub max_attempts: u32,
    /// An action that no registered worker can take for this long fails.
    pub platform_wait: Duration,
    /// A build with no execute request in flight for this long expires.
    pub build_idle: Duration,
}

impl Default for SchedSettings {
    fn default() -> SchedSettings {
        SchedSettings {
            lease_ttl: Duration::from_millis(10_000),
            max_attempts: 3,
            platform_wait: Duration::from_secs(60),
            build_idle: Duration::from_secs(600),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let roles: Vec<Role> = self.tokens.iter().map(|(r, _)| *r).collect();
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("max_cache_bytes", &self.max_cache_bytes)
            .field("token_roles", &roles)
            .field("limits", &self.limits)
            .field("eviction_interval", &self.eviction_interval)
            .field("max_pin_ttl", &self.max_pin_ttl)
            .field("fsync", &self.fsync)
            .field("sched", &self.sched)
            .finish()
    }
}

/// Why the configuration cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema.
    #[error("invalid config file: {0}")]
    File(String),
    /// A value is malformed.
    #[error("invalid {what} {value:?}: {reason}")]
    Value {
        /// Which setting.
        what: &'static str,
        /// The value given (never a token).
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A required setting is missing.
    #[error("{0}")]
    Missing(&'static str),
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default size cap.
pub const DEFAULT_MAX_CACHE_SIZE: &str = "50GiB";

impl Config {
    /// Resolves flags, the process environment and the config file named by `--config`.
    pub fn from_args(args: &Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                FileConfig::parse(&text)?
            }
            None => FileConfig::default(),
        };
        Config::from_layers(file, EnvConfig::from_env(), args)
    }

    /// Resolves the three layers: `file` < `env` < `args`.
    pub fn from_layers(
        file: FileConfig,
        env: EnvConfig,
        args: &Args,
    ) -> Result<Config, ConfigError> {
        let listen_text = args
            .listen
            .clone()
            .or(env.listen)
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::Value {
                what: "listen address",
                value: listen_text.clone(),
                reason: e.to_string(),
            })?;
        let data_dir = args
            .data_dir
            .clone()
            .or(env.data_dir)
            .or(file.data_dir)
            .ok_or(ConfigError::Missing(
                "no data directory: pass --data-dir DIR or set RMAKE_DATA_DIR",
            ))?;
        let cap_text = args
            .max_cache_size
            .clone()
            .or(env.max_cache_size)
            .or(file.max_cache_size)
            .unwrap_or_else(|| DEFAULT_MAX_CACHE_SIZE.into());
        let max_cache_bytes = parse_size("max cache size", &cap_text)?;
        let tokens = match env.tokens {
            Some(text) => parse_tokens(&text)?,
            None => file
                .tokens
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.role, t.token))
                .collect(),
        };
        for (role, token) in &tokens {
            if token.is_empty() {
                return Err(ConfigError::Value {
                    what: "token",
                    value: format!("{role:?}"),
                    reason: "a token must not be empty".into(),
                });
            }
        }
        let defaults = Limits::default();
        let sched = SchedSettings::default();
        let l = &file.limits;
        let opt_size = |what, v: &Option<String>, default: u64| {
            v.as_deref().map_or(Ok(default), |t| parse_size(what, t))
        };
        let limits = Limits {
            max_blob_size: opt_size("max_blob_size", &l.max_blob_size, defaults.max_blob_size)?,
            max_batch_bytes: opt_size(
                "max_batch_bytes",
                &l.max_batch_bytes,
                defaults.max_batch_bytes,
            )?,
            max_batch_blobs: l.max_batch_blobs.unwrap_or(defaults.max_batch_blobs),
            max_json_bytes: usize::try_from(opt_size(
                "max_json_bytes",
                &l.max_json_bytes,
                defaults.max_json_bytes as u64,
            )?)
            .unwrap_or(usize::MAX),
        };
        Ok(Config {
            listen,
            data_dir,
            max_cache_bytes,
            tokens,
            limits,
            eviction_interval: Duration::from_secs(
                file.eviction_interval_secs.unwrap_or(10).max(1),
            ),
            max_pin_ttl: Duration::from_secs(file.max_pin_ttl_secs.unwrap_or(24 * 3600).max(1)),
            fsync: file.fsync.unwrap_or(true),
            sched: SchedSettings {
                lease_ttl: Duration::from_millis(
                    file.lease_ttl_ms
                        .unwrap_or(sched.lease_ttl.as_millis() as u64)
                        .max(100),
                ),
                max_attempts: file.max_attempts.unwrap_or(sched.max_attempts).max(1),
                platform_wait: Duration::from_secs(
                    file.platform_wait_secs
                        .unwrap_or(sched.platform_wait.as_secs())
                        .max(1),
                ),
                build_idle: Duration::from_secs(
                    file.build_idle_secs
                        .unwrap_or(sched.build_idle.as_secs())
                        .max(1),
                ),
            },
        })
    }

    /// A configuration for tests and the embedded farm: loopback, no tokens, default limits.
    pub fn local(data_dir: impl Into<PathBuf>, max_cache_bytes: u64) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            max_cache_bytes,
            tokens: Vec::new(),
            limits: Limits::default(),
            eviction_interval: Duration::from_secs(10),
            max_pin_ttl: Duration::from_secs(24 * 3600),
            fsync: true,
            sched: SchedSettings::default(),
        }
    }
}

/// Parses `role:token,role:token` (the `RMAKE_TOKENS` format). Errors never echo a token.
pub fn parse_tokens(text: &str) -> Result<Vec<(Role, String)>, ConfigError> {
    let mut out = Vec::new();
    for (i, item) in text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let bad = |reason: &str| ConfigError::Value {
            what: "RMAKE_TOKENS entry",
            value: format!("#{}", i + 1),
            reason: reason.to_string(),
        };
        let (role, token) = item
            .split_once(':')
            .ok_or_else(|| bad("expected role:token"))?;
        let role = Role::parse(role.trim())
            .ok_or_else(|| bad("role must be client, worker, reader or admin"))?;
        if token.is_empty() {
            return Err(bad("empty token"));
        }
        out.push((role, token.to_string()));
    }
    Ok(out)
}

/// Parses a byte size: a whole number with an optional unit (`B`, `K`/`KB` = 1000,
/// `KiB` = 1024, likewise `M`, `G`, `T`), case-insensitive, spaces allowed before the unit.
pub fn parse_size(what: &'static str, text: &str) -> Result<u64, ConfigError> {
    let bad = |reason: &str| ConfigError::Value {
        what,
        value: text.to_string(),
        reason: reason.to_string(),
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(bad("expected a number with an optional unit, e.g. 50GiB"));
    }
    let n: u64 = num.parse().map_err(|_| bad("number out of range"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => {
            return Err(bad(
                "unknown unit (use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB)",
            ))
        }
    };
    n.checked_mul(mult).ok_or_else(|| bad("size out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(listen: Option<&str>, dir: Option<&str>, cap: Option<&str>) -> Args {
        Args {
            listen: listen.map(Into::into),
            data_dir: dir.map(Into::into),
            config: None,
            max_cache_size: cap.map(Into::into),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("x", "50GiB").ok(), Some(50 << 30));
        assert_eq!(parse_size("x", "10 MB").ok(), Some(10_000_000));
        assert_eq!(parse_size("x", "1234").ok(), Some(1234));
        assert_eq!(parse_size("x", "2k").ok(), Some(2000));
        for bad in ["", "GiB", "1.5GiB", "-1", "5 parsecs", "99999999999999TiB"] {
            assert!(parse_size("x", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file = FileConfig::parse(
            r#"
            listen = "127.0.0.1:1"
            data_dir = "/file"
            max_cache_size = "1GiB"
            [[tokens]]
            role = "reader"
            token = "from-file"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let env = EnvConfig {
            listen: Some("127.0.0.1:2".into()),
            data_dir: Some("/env".into()),
            max_cache_size: None,
            tokens: None,
        };
        let c = Config::from_layers(
            file.clone(),
            env.clone(),
            &args(Some("127.0.0.1:3"), None, None),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.port(), 3, "flag wins");
        assert_eq!(c.data_dir, PathBuf::from("/env"), "env beats file");
        assert_eq!(c.max_cache_bytes, 1 << 30, "file used when nothing else");
        assert_eq!(c.tokens, vec![(Role::Reader, "from-file".to_string())]);

        let env2 = EnvConfig {
            tokens: Some("client:a, worker:b".into()),
            ..env
        };
        let c = Config::from_layers(file, env2, &args(None, Some("/flag"), Some("2GiB")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.data_dir, PathBuf::from("/flag"));
        assert_eq!(c.max_cache_bytes, 2 << 30);
        assert_eq!(
            c.tokens,
            vec![(Role::Client, "a".into()), (Role::Worker, "b".into())],
            "env tokens replace file tokens"
        );
    }

    #[test]
    fn defaults_and_missing_data_dir() {
        let c = Config::from_layers(
            FileConfig::default(),
            EnvConfig::default(),
            &args(None, Some("/d"), None),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.max_cache_bytes, 50 << 30);
        assert!(c.tokens.is_empty());
        assert_eq!(c.limits, Limits::default());
        assert!(c.fsync, "durable by default");
        let file = FileConfig::parse("fsync = false").unwrap_or_else(|e| panic!("{e}"));
        let c = Config::from_layers(file, EnvConfig::default(), &args(None, Some("/d"), None))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.fsync);
        assert_eq!(c.sched, SchedSettings::default());
        let file = FileConfig::parse("lease_ttl_ms = 2000\nmax_attempts = 5")
            .unwrap_or_else(|e| panic!("{e}"));
        let c = Config::from_layers(file, EnvConfig::default(), &args(None, Some("/d"), None))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.sched.lease_ttl, Duration::from_millis(2000));
        assert_eq!(c.sched.max_attempts, 5);
        let err = Config::from_layers(
            FileConfig::default(),
            EnvConfig::default(),
            &Args::default(),
        );
        assert!(matches!(err, Err(ConfigError::Missing(_))));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(FileConfig::parse("lisen = \"x\"").is_err());
        assert!(FileConfig::parse("[limits]\nmax_blobs = 3").is_err());
        assert!(FileConfig::parse("[[tokens]]\nrole = \"god\"\ntoken = \"t\"").is_err());
        let file = FileConfig::parse("[limits]\nmax_batch_bytes = \"1MiB\"\nmax_batch_blobs = 5")
            .unwrap_or_default();
        let c = Config::from_layers(file, EnvConfig::default(), &args(None, Some("/d"), None));
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.limits.max_batch_bytes, 1 << 20);
        assert_eq!(c.limits.max_batch_blobs, 5);
        let bad = Config::from_layers(
            FileConfig::default(),
            EnvConfig::default(),
            &args(Some("nowhere"), Some("/d"), None),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn token_env_parsing_never_echoes_secrets() {
        assert!(parse_tokens("client").is_err());
        let err = parse_tokens("king:supersecret")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.contains("supersecret"), "{err}");
        assert!(parse_tokens("client:").is_err());
        assert_eq!(parse_tokens("").ok(), Some(vec![]));
        assert_eq!(
            parse_tokens("admin:x:y").ok(),
            Some(vec![(Role::Admin, "x:y".into())])
        );
        let env = EnvConfig {
            tokens: Some("client:hidden".into()),
            ..EnvConfig::default()
        };
        assert!(!format!("{env:?}").contains("hidden"));
    }
}
