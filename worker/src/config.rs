//! The worker's configuration: [`Config`] with its defaults, and the optional TOML file
//! ([`FileConfig`]) that the binary layers under the environment and the flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// Default size cap of the local blob cache.
pub const DEFAULT_CACHE_BYTES: u64 = 10 << 30;
/// Default longest run of one recipe.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// How a worker runs.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Base URL of the coordinator (`http://farm:8080`).
    pub coordinator: String,
    /// Bearer token with the `worker` role, if the coordinator needs one.
    pub token: Option<String>,
    /// Name shown in results and on the status page.
    pub name: String,
    /// Actions run at once.
    pub slots: u32,
    /// Holds the blob cache (`cache/`), the exec roots (`exec/<lease>`) and each lease's
    /// `HOME` and `TMPDIR` (`scratch/<lease>`).
    pub work_dir: PathBuf,
    /// Size cap of the blob cache; least recently used blobs are evicted after each action.
    pub cache_max_bytes: u64,
    /// Properties announced to the coordinator (`os`, `arch`, and any the team adds).
    pub platform: BTreeMap<String, String>,
    /// Longest a recipe may run when its action names no timeout.
    pub default_timeout: Duration,
    /// Longest wait of one lease long-poll.
    pub lease_wait: Duration,
    /// On shutdown, how long running actions may go on before they are cancelled.
    pub shutdown_grace: Duration,
    /// Time between `SIGTERM` and `SIGKILL` when a recipe is stopped.
    pub kill_grace: Duration,
    /// Exec roots kept after their run, reset to their input tree, for the next action (on the
    /// same tree, or reshaped to another); 0: every exec root is removed after its run.
    /// Default: one per slot.
    pub idle_exec_roots: u32,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never print it.
        f.debug_struct("Config")
            .field("coordinator", &self.coordinator)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("name", &self.name)
            .field("slots", &self.slots)
            .field("work_dir", &self.work_dir)
            .field("cache_max_bytes", &self.cache_max_bytes)
            .field("platform", &self.platform)
            .field("default_timeout", &self.default_timeout)
            .field("idle_exec_roots", &self.idle_exec_roots)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration with the defaults: one slot per core, the host name, the platform
    /// (`os`, `arch`) of this machine, a 10 GiB cache and a one hour timeout.
    pub fn new(coordinator: impl Into<String>, work_dir: impl Into<PathBuf>) -> Config {
        let current = rmake_proto::Platform::current();
        let mut platform = BTreeMap::new();
        platform.insert("os".to_string(), current.os);
        platform.insert("arch".to_string(), current.arch);
        let slots = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(1))
            .unwrap_or(1);
        Config {
            coordinator: coordinator.into(),
            token: None,
            name: hostname(),
            slots,
            work_dir: work_dir.into(),
            cache_max_bytes: DEFAULT_CACHE_BYTES,
            platform,
            default_timeout: DEFAULT_TIMEOUT,
            lease_wait: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            kill_grace: Duration::from_secs(2),
            idle_exec_roots: slots,
        }
    }
}

/// This machine's host name, or `worker` when it cannot be read.
pub fn hostname() -> String {
    for path in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(s) = std::fs::read_to_string(path) {
            let s = s.trim();
            if !s.is_empty() {
                return s.to_string();
            }
        }
    }
    "worker".to_string()
}

/// The TOML config file: the same keys as the flags.
///
/// ```toml
/// coordinator = "http://farm:8080"
/// token = "…"
/// name = "builder-1"
/// slots = 8
/// work-dir = "/var/lib/rmake-worker"
/// cache-size = "20GiB"
/// timeout-secs = 3600
/// idle-exec-roots = 2
/// [platform]
/// toolchain = "gcc-12"
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    /// Coordinator URL.
    pub coordinator: Option<String>,
    /// Bearer token.
    pub token: Option<String>,
    /// Worker name.
    pub name: Option<String>,
    /// Slots.
    pub slots: Option<u32>,
    /// Work directory.
    pub work_dir: Option<PathBuf>,
    /// Cache size: bytes, or a number with a `K`/`M`/`G`/`T` (`iB`) suffix.
    pub cache_size: Option<Size>,
    /// Default recipe timeout in seconds.
    pub timeout_secs: Option<u64>,
    /// Idle exec roots kept for reuse (0: none).
    pub idle_exec_roots: Option<u32>,
    /// Extra platform properties (added to `os` and `arch`, which they may override).
    #[serde(default)]
    pub platform: BTreeMap<String, String>,
}

/// A size in bytes written as a number or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SizeRepr")]
pub struct Size(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Bytes(u64),
    Text(String),
}

impl TryFrom<SizeRepr> for Size {
    type Error = String;

    fn try_from(r: SizeRepr) -> Result<Size, String> {
        match r {
            SizeRepr::Bytes(n) => Ok(Size(n)),
            SizeRepr::Text(s) => parse_size(&s).map(Size).map_err(|e| e.to_string()),
        }
    }
}

impl FileConfig {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// Parses `1234`, `10K`, `512MiB`, `20GB`, `1T` (binary units either way).
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("invalid size {text:?}: expected a number of bytes"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => bail!("invalid size {text:?}: unknown unit {other:?}"),
    };
    n.checked_mul(1u64 << shift)
        .with_context(|| format!("invalid size {text:?}: too large"))
}

/// Parses a `key=value` platform property.
pub fn parse_property(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => bail!("invalid platform property {text:?}: expected key=value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::new("http://127.0.0.1:1", "/tmp/w");
        assert!(c.slots >= 1);
        assert!(!c.name.is_empty());
        assert_eq!(
            c.platform.get("os").map(String::as_str),
            Some(std::env::consts::OS)
        );
        assert_eq!(
            c.platform.get("arch").map(String::as_str),
            Some(std::env::consts::ARCH)
        );
        assert_eq!(c.default_timeout, Duration::from_secs(3600));
        let c = Config {
            token: Some("s3cret".into()),
            ..c
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1234").ok(), Some(1234));
        assert_eq!(parse_size("10K").ok(), Some(10 << 10));
        assert_eq!(parse_size("512MiB").ok(), Some(512 << 20));
        assert_eq!(parse_size("2 GB").ok(), Some(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1Q").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn file_keys() {
        let f: FileConfig = toml::from_str(
            "coordinator = \"http://x:1\"\nslots = 3\nwork-dir = \"/w\"\ncache-size = \"1GiB\"\n[platform]\ntoolchain = \"gcc-12\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.slots, Some(3));
        assert_eq!(f.cache_size, Some(Size(1 << 30)));
        assert_eq!(
            f.platform.get("toolchain").map(String::as_str),
            Some("gcc-12")
        );
        let f: FileConfig = toml::from_str("cache-size = 42").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.cache_size, Some(Size(42)));
        assert!(toml::from_str::<FileConfig>("colour = 1").is_err());
        assert!(parse_property("a=b").is_ok());
        assert!(parse_property("=b").is_err());
        assert!(parse_property("ab").is_err());
    }
}
