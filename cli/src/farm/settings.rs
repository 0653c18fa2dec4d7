//! The client's farm settings, layered: `~/.config/rmake/config.toml`, then `.rmake.toml` at the
//! tree's root, then the environment, then flags (each later layer wins), and the cache dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::args::{Config, Download};

/// One config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Base URL of the farm's coordinator.
    pub coordinator: Option<String>,
    /// Client token.
    pub token: Option<String>,
    /// `all`, `goals` or `none`.
    pub download: Option<String>,
    /// Always build locally.
    pub local: Option<bool>,
    /// Properties every remote action asks of its worker (e.g. `toolchain = "gcc-12"`).
    #[serde(default)]
    pub platform: BTreeMap<String, String>,
}

/// The settings in force for one build.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Coordinator URL, or `None` for the embedded farm.
    pub coordinator: Option<String>,
    /// Client token.
    pub token: Option<String>,
    /// What to download.
    pub download: Download,
    /// Extra platform properties.
    pub platform: BTreeMap<String, String>,
    /// Where the embedded farm and the snapshot index live.
    pub cache_dir: PathBuf,
}

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SettingsError {
    path: String,
    reason: String,
}

fn read(path: &Path) -> Result<FileSettings, SettingsError> {
    let err = |reason: String| SettingsError { path: path.display().to_string(), reason };
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileSettings::default()),
        Err(e) => Err(err(e.to_string())),
    }
}

/// `$XDG_CONFIG_HOME/rmake/config.toml` or `~/.config/rmake/config.toml`.
fn user_config() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("rmake").join("config.toml"))
}

/// `RMAKE_CACHE_DIR`, else `$XDG_CACHE_HOME/rmake`, else `~/.cache/rmake`, else a directory
/// under the system's temporary directory.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RMAKE_CACHE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("rmake");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".cache").join("rmake");
    }
    std::env::temp_dir().join("rmake-cache")
}

/// Resolves the settings for a build whose tree is rooted at `root`. `cfg` carries the flags
/// and the environment (clap reads `RMAKE_COORDINATOR` and `RMAKE_TOKEN`); files fill in what
/// they left unset. Returns whether the files ask for local mode too.
pub fn resolve(cfg: &Config, root: &Path) -> Result<(Settings, bool), SettingsError> {
    let mut files = Vec::new();
    if let Some(p) = user_config() {
        files.push(read(&p)?);
    }
    files.push(read(&root.join(".rmake.toml"))?);
    let mut s = Settings {
        coordinator: None,
        token: None,
        download: Download::All,
        platform: BTreeMap::new(),
        cache_dir: cache_dir(),
    };
    let mut local = false;
    for f in files {
        s.coordinator = f.coordinator.or(s.coordinator);
        s.token = f.token.or(s.token);
        if let Some(d) = f.download {
            s.download = match d.as_str() {
                "all" => Download::All,
                "goals" => Download::Goals,
                "none" => Download::None,
                other => {
                    return Err(SettingsError {
                        path: ".rmake.toml".into(),
                        reason: format!("invalid download value '{other}' (expected all, goals or none)"),
                    })
                }
            };
        }
        local = f.local.unwrap_or(local);
        s.platform.extend(f.platform);
    }
    if cfg.coordinator.is_some() {
        s.coordinator.clone_from(&cfg.coordinator);
    }
    if cfg.token.is_some() {
        s.token.clone_from(&cfg.token);
    }
    if cfg.download_set {
        s.download = cfg.download;
    }
    s.coordinator = s.coordinator.filter(|c| !c.trim().is_empty());
    Ok((s, local))
}
